"""The tasks a multi-domain Decision Transformer was pretrained on, and how returns are scaled.

Returns-to-go are divided by a per-domain reward scale (:data:`REWARD_SCALES`), L2M's values
(``reward_scale: {mt50: 200, dmcontrol: 100}`` in its multi-domain config): a Meta-World step
pays 0-10 over 200-step episodes (a return of at most 2,000), a dm_control step 0-1 over
1,000-step episodes (at most 1,000), so both domains' scaled returns-to-go run from 0 to at most
10. One scale per domain, not per task, keeps "10" meaning "the best any task of the domain can
pay", and gives a task the model has never seen (a fine-tuning task) its scale from its domain.
States are normalised per *domain* (:data:`DOMAINS`; the model holds each domain's state mean and
standard deviation, computed from the pretraining data and saved with the weights), not per task
(L2M: ``norm_obs: False``): a per-task normaliser would not exist for a task the model has never
seen, while a fine-tuning task takes its domain's statistics. Without it, Meta-World's states
(standard deviations of 0.01-0.2 per dimension) barely move their tokens next to the timestep
embedding, and the model cannot tell states, or tasks, apart.

A :class:`PretrainTask` is one row of a model's task table: its name and index (the order of
the table, for oracle routing), domain, widths, how much data it had, and the return the model
is asked for when it plays the task (:attr:`PretrainTask.target_return`: the best episode
return in the task's data, scaled). The table is saved with the model (:func:`tasks_to_json`),
so that a shipped model is evaluated without its data.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DOMAINS: tuple[str, ...] = ("metaworld", "dm_control")
"""The domains of the pretrained model, in the order of its per-domain state statistics (a
domain's index is its row in ``state_mean`` and ``state_std``)."""

REWARD_SCALES: Mapping[str, float] = {"metaworld": 200.0, "dm_control": 100.0}
"""Rewards and returns of each domain are divided by this (L2M's values; see the module)."""


def domain_index(domain: str) -> int:
    """A domain's index in :data:`DOMAINS` (its row of the model's state statistics).

    Raises:
        ValueError: An unknown domain; the message lists the known ones.
    """
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}: the pretrained model knows {list(DOMAINS)}")
    return DOMAINS.index(domain)


def reward_scale(domain: str) -> float:
    """The divisor of a domain's rewards and returns.

    Raises:
        ValueError: A domain without a scale; the message lists the domains that have one.
    """
    if domain not in REWARD_SCALES:
        raise ValueError(
            f"no reward scale for domain {domain!r}: the pretrained model knows "
            f"{sorted(REWARD_SCALES)}"
        )
    return REWARD_SCALES[domain]


@dataclass(frozen=True)
class PretrainTask:
    """One task of a pretrained model's data.

    Attributes:
        name: The task's name (``"reach-v3"``, ``"cheetah-run"``).
        domain: ``"metaworld"`` or ``"dm_control"`` (a key of :data:`REWARD_SCALES`).
        index: Its row in the task table (the order the sampler numbers tasks in).
        split: The dataset's split (``"pretrain"``, ``"finetune"``, ...).
        state_dim: The task's own observation width (before padding).
        action_dim: The task's own action width (its real dimensions in the layout).
        episodes: Episodes in its data.
        steps: Steps in its data.
        best_return: The highest episode return in its data, unscaled.
        mean_return: The mean episode return in its data, unscaled.
        datasets: The Minari ids of the datasets it came from.
    """

    name: str
    domain: str
    index: int
    split: str
    state_dim: int
    action_dim: int
    episodes: int
    steps: int
    best_return: float
    mean_return: float
    datasets: tuple[str, ...]

    @property
    def reward_scale(self) -> float:
        """The divisor of this task's rewards and returns (its domain's)."""
        return reward_scale(self.domain)

    @property
    def domain_index(self) -> int:
        """This task's domain's index in :data:`DOMAINS`."""
        return domain_index(self.domain)

    @property
    def target_return(self) -> float:
        """The scaled return-to-go the model starts an episode of this task with."""
        return self.best_return / self.reward_scale

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dictionary."""
        values = dataclasses.asdict(self)
        values["datasets"] = list(self.datasets)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PretrainTask:
        """Rebuild a task from :meth:`to_dict`'s output.

        Raises:
            ValueError: Missing or unknown fields (the message names them).
        """
        allowed = {f.name for f in dataclasses.fields(cls)}
        missing, unknown = sorted(allowed - set(values)), sorted(set(values) - allowed)
        if missing or unknown:
            raise ValueError(
                f"a task entry must have the fields {sorted(allowed)}; missing {missing}, "
                f"unknown {unknown}"
            )
        return cls(**{**values, "datasets": tuple(values["datasets"])})


def tasks_to_json(tasks: Sequence[PretrainTask]) -> str:
    """The task table as JSON (a list of :meth:`PretrainTask.to_dict`)."""
    return json.dumps([task.to_dict() for task in tasks], sort_keys=True)


def tasks_from_json(text: str) -> tuple[PretrainTask, ...]:
    """The task table from :func:`tasks_to_json`'s output.

    Raises:
        ValueError: Not JSON, not a list, or an entry that is no task.
    """
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the task table is not JSON: {error}") from error
    if not isinstance(entries, list):
        raise ValueError(f"the task table must be a JSON list, got {type(entries).__name__}")
    return tuple(PretrainTask.from_dict(entry) for entry in entries)
