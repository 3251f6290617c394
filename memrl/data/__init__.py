"""Offline trajectories in Minari's format: collection, writing and loading.

- :mod:`~memrl.data.metaworld_experts`: Meta-World's scripted experts under memrl's protocol at
  several levels of quality (action noise, random actions), and :func:`scripted_success`, the
  measurement behind ``docs/metaworld_experts.json``.
- :mod:`~memrl.data.collect`: :func:`collect_metaworld`, one Minari dataset per task, resumable.
- :mod:`~memrl.data.minari_io`: writing episodes as Minari datasets with memrl's metadata, and
  :func:`load_episodes`, which reads any Minari dataset into numpy arrays.
- :mod:`~memrl.data.episodes`: :class:`Episode` and :class:`OfflineDataset`.

Importing this package imports neither Minari, h5py, Meta-World nor MuJoCo.
"""

from memrl.data.collect import (
    DEFAULT_EPISODES_PER_TASK,
    DEFAULT_NOISE_LEVELS,
    DEFAULT_RANDOM_FRACTION,
    collect_metaworld,
    metaworld_dataset_id,
)
from memrl.data.episodes import Episode, OfflineDataset
from memrl.data.metaworld_experts import (
    QualityLevel,
    resolve_metaworld_tasks,
    scripted_success,
)
from memrl.data.minari_io import DATA_FORMAT_VERSION, load_episodes

__all__ = [
    "DATA_FORMAT_VERSION",
    "DEFAULT_EPISODES_PER_TASK",
    "DEFAULT_NOISE_LEVELS",
    "DEFAULT_RANDOM_FRACTION",
    "Episode",
    "OfflineDataset",
    "QualityLevel",
    "collect_metaworld",
    "load_episodes",
    "metaworld_dataset_id",
    "resolve_metaworld_tasks",
    "scripted_success",
]
