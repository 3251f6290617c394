"""Stable-Baselines3 baselines on memrl's envs: PPO (optionally frame-stacked) and RecurrentPPO.

They train through the same ``memrl train`` command and write the same run directory as memory
PPO: ``config.json``, ``metrics.csv``, TensorBoard events under ``tb/`` and ``checkpoints/``
(``sb3_<steps>_steps.zip`` every ``checkpoint_every`` updates, the newest two kept, ``final.zip``
at the end), so reports compare them with memrl's own agents. SB3's logger writes through memrl's
:class:`~memrl.agents.run_log.RunLog`; its keys that mean what a memory-PPO key means are logged
under that key (``rollout/success_rate`` as ``charts/success_rate``, ...; see ``METRIC_NAMES``),
the others under SB3's own names, except those SB3 keeps out of TensorBoard (its iteration and
time counters). SB3's episode statistics are means over its last 100 episodes. As in memory PPO,
the row at env step S holds the losses of the update made after collecting S env steps: one row
every ``log_every`` updates and one after the last (SB3's own ``log_interval`` dumps before the
update, so its rows carry the previous update's losses and the last update's are never written).

Resuming continues from the intact checkpoint with the most env steps (``final.zip`` included;
each is checked first, and a damaged one is skipped with a warning naming it and the one used, see
:mod:`memrl.agents.checkpoints`): model, optimiser, step and update counts carry over, metric rows
and TensorBoard events logged after that checkpoint are dropped, and a config that differs in
anything but ``total_steps`` and the settings that do not change learning
(``memrl.agents.resume.RESUMABLE_CHANGES``) is refused. The envs start fresh episodes, and the
random generators (torch, numpy, the envs, the action space) are reseeded with
``seed + steps trained``: SB3's ``load`` reseeds them all with ``seed``, which would replay the
run's opening episodes and sampling noise on every resume. A resume is deterministic, but does not
continue the generators of the run it resumes (memory PPO's checkpoints hold those, SB3's do not).
A saved model is the whole state these runs keep (PPO and RecurrentPPO have no replay buffer and
the runs no ``VecNormalize``); every model is written atomically (temp file, fsync, rename).
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, Logger

from memrl.agents.checkpoints import atomic_write, load_newest_intact, verify_archive
from memrl.agents.resume import check_resumable_config
from memrl.agents.run_lock import RunLock
from memrl.agents.run_log import RunLog
from memrl.agents.sb3_config import ALGORITHMS, SB3Config

METRIC_NAMES = {
    "rollout/ep_rew_mean": "charts/episodic_return",
    "rollout/ep_len_mean": "charts/episodic_length",
    "rollout/success_rate": "charts/success_rate",
    "time/fps": "charts/sps",
    "train/learning_rate": "charts/learning_rate",
    "train/policy_gradient_loss": "losses/policy_loss",
    "train/value_loss": "losses/value_loss",
    "train/approx_kl": "losses/approx_kl",
    "train/clip_fraction": "losses/clipfrac",
}
"""SB3 logger keys -> the memory-PPO keys of the same quantity."""
MODEL_MEMBERS = ("data", "policy.pth")
"""Members of every model zip SB3 saves; one without them is damaged."""
FINAL = "final.zip"
"""The model a run ends with, in ``RUN_DIR/checkpoints/``."""


class RunLogOutput(KVWriter):
    """An SB3 logger output that writes the numeric values of each dump to a ``RunLog``.

    Values SB3 excludes from TensorBoard (``time/time_elapsed``, ``train/n_updates``, ...) are left
    out, of ``metrics.csv`` too: a ``RunLog`` writes each metric to both.

    Args:
        log: The run's log (``metrics.csv`` and, if it has one, the TensorBoard writer).
    """

    def __init__(self, log: RunLog) -> None:
        self.log = log

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0
    ) -> None:
        """Log the numbers among ``key_values`` at env step ``step``, under memrl's names."""
        metrics = {
            METRIC_NAMES.get(key, key): float(value)
            for key, value in key_values.items()
            if isinstance(value, int | float | np.number)
            and not isinstance(value, bool)
            and "tensorboard" not in (key_excluded.get(key) or ())
        }
        self.log.write(step, metrics)

    def close(self) -> None:
        """Close the run log."""
        self.log.close()


KEPT_CHECKPOINTS = 2
"""Periodic checkpoints a run keeps, the newest (as memory PPO keeps ``latest`` and
``previous``): one more than needed, so that a damaged newest one costs one interval."""


def prune_checkpoints(directory: Path, keep: int = KEPT_CHECKPOINTS) -> None:
    """Delete all periodic checkpoints but the ``keep`` with the most env steps.

    Periodic checkpoints are the ``sb3_<steps>_steps.zip`` files; ``final.zip`` and files of other
    names are left alone.
    """
    periodic = [p for p in directory.glob("sb3_*_steps.zip")
                if p.name.removeprefix("sb3_").removesuffix("_steps.zip").isdigit()]  # fmt: skip
    for path in sorted(periodic, key=checkpoint_steps)[:-keep]:
        path.unlink()


class CheckpointEveryUpdates(BaseCallback):
    """Saves the model every ``every`` updates, after the update (when the next rollout starts).

    Only the newest :data:`KEPT_CHECKPOINTS` of them are kept.

    Args:
        directory: Where ``sb3_<steps>_steps.zip`` files go.
        every_steps: Env steps between checkpoints (updates times steps per rollout).
    """

    def __init__(self, directory: Path, every_steps: int) -> None:
        super().__init__()
        self.directory = directory
        self.every_steps = every_steps
        self.last_saved = 0

    def _on_training_start(self) -> None:
        self.last_saved = self.model.num_timesteps

    def _on_rollout_start(self) -> None:
        steps = self.model.num_timesteps
        if steps >= self.last_saved + self.every_steps:
            save_model(self.model, self.directory / f"sb3_{steps}_steps.zip")
            prune_checkpoints(self.directory)
            self.last_saved = steps

    def _on_step(self) -> bool:
        return True


class LogAfterUpdates(BaseCallback):
    """Dumps SB3's logger after every ``log_every``-th update and the last, at the update's step.

    An update is done when the next rollout starts (or training ends), so each row holds the
    losses of the update made after collecting ``num_timesteps`` env steps, as in memory PPO.

    Args:
        every_steps: Env steps between rows (``log_every`` updates times steps per rollout).
    """

    def __init__(self, every_steps: int) -> None:
        super().__init__()
        self.every_steps = every_steps
        self.last_logged = 0

    def _on_training_start(self) -> None:
        self.last_logged = self.model.num_timesteps

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps % self.every_steps == 0:
            self._dump()

    def _on_training_end(self) -> None:
        self._dump()

    def _dump(self) -> None:
        if self.model.num_timesteps > self.last_logged:  # an update not logged yet
            self.model.dump_logs()
            self.last_logged = self.model.num_timesteps

    def _on_step(self) -> bool:
        return True


def save_model(model: Any, path: Path) -> None:
    """``model.save(path)`` atomically: a killed save leaves no half-written checkpoint."""
    atomic_write(path, model.save)


@dataclass(frozen=True)
class SB3Run:
    """What ``train_sb3`` did."""

    final: Path
    """The final model."""
    start_step: int
    """Env steps trained before this call (0 unless resumed)."""
    steps: int
    """Env steps trained in all (SB3's num_timesteps)."""


def make_sb3_env(config: SB3Config) -> Any:
    """The SB3 vector env of ``config`` (Monitor-wrapped, frame-stacked if asked)."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack

    venv = make_vec_env(
        config.env_id, n_envs=config.num_envs, seed=config.seed, env_kwargs=config.env_kwargs
    )
    if config.frame_stack > 1:
        venv = VecFrameStack(venv, config.frame_stack)
    return venv


def _algorithm(config: SB3Config) -> Any:
    if config.algorithm == "ppo":
        from stable_baselines3 import PPO

        return PPO
    from sb3_contrib import RecurrentPPO

    return RecurrentPPO


def _policy_name(config: SB3Config, venv: Any) -> str:
    dict_obs = isinstance(venv.observation_space, gymnasium.spaces.Dict)
    if config.algorithm == "ppo":
        return "MultiInputPolicy" if dict_obs else "MlpPolicy"
    return "MultiInputLstmPolicy" if dict_obs else "MlpLstmPolicy"


def hyperparameters(config: SB3Config) -> dict[str, Any]:
    """Keyword arguments of SB3's ``PPO`` / sb3-contrib's ``RecurrentPPO`` for ``config``."""
    from stable_baselines3.common.utils import LinearSchedule

    kwargs: dict[str, Any] = {
        "learning_rate": LinearSchedule(config.learning_rate, 0.0, 1.0)
        if config.anneal_lr
        else config.learning_rate,
        "n_steps": config.num_steps,
        "n_epochs": config.update_epochs,
        "gamma": config.gamma,
        "gae_lambda": config.gae_lambda,
        "clip_range": config.clip_coef,
        "clip_range_vf": config.clip_coef if config.clip_value else None,
        "ent_coef": config.ent_coef,
        "vf_coef": config.vf_coef,
        "max_grad_norm": config.max_grad_norm,
        "seed": config.seed,
        "verbose": 0,
    }
    if config.num_minibatches:
        kwargs["batch_size"] = config.batch_steps // config.num_minibatches
    return kwargs


def checkpoint_steps(path: Path) -> int:
    """The env steps a saved SB3 model had trained (its ``num_timesteps``), without loading it.

    ``sb3_<steps>_steps.zip`` says so in its name; another file is read for the ``num_timesteps``
    of its ``data`` member (JSON; nothing is unpickled).

    Raises:
        ValueError: ``path`` is not a readable SB3 model (e.g. a half-written zip).
    """
    name = path.name.removeprefix("sb3_").removesuffix("_steps.zip")
    if name.isdigit() and path.name == f"sb3_{name}_steps.zip":
        return int(name)
    try:
        with zipfile.ZipFile(path) as archive:
            return int(json.loads(archive.read("data"))["num_timesteps"])
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as error:
        raise ValueError(f"{path} is not a readable SB3 model ({error})") from error


def saved_models(run_dir: Path) -> list[Path]:
    """The saved models of ``run_dir``, most env steps first (``final.zip`` included).

    ``sb3_<steps>_steps.zip`` files are ranked by their names; ``final.zip`` by the steps it
    records, or first if it records none that can be read (so that its damage is reported).
    """
    directory = run_dir / "checkpoints"
    ranked: list[tuple[float, Path]] = []
    for path in [*directory.glob("sb3_*_steps.zip"), *directory.glob(FINAL)]:
        try:
            ranked.append((checkpoint_steps(path), path))
        except ValueError:
            ranked.append((float("inf"), path))
    return [path for _, path in sorted(ranked, reverse=True)]


def _intact_model_steps(path: Path) -> int:
    """The env steps of the saved model ``path``, once it is checked to be intact."""
    verify_archive(path, MODEL_MEMBERS)
    return checkpoint_steps(path)


def latest_checkpoint(run_dir: Path) -> tuple[Path, int] | None:
    """The intact saved model of ``run_dir`` with the most env steps, and those steps.

    A damaged model (truncated, corrupted bytes, members missing) is skipped with a warning that
    names it and the model used instead.

    Returns:
        The model's path and env steps; None if ``run_dir`` has no saved model.

    Raises:
        NoIntactCheckpointError: Every saved model is damaged; names each and why.
    """
    candidates = saved_models(run_dir)
    if not candidates:
        return None
    return load_newest_intact(candidates, _intact_model_steps, run_dir / "checkpoints")


def load_final_model(config: SB3Config, run_dir: Path) -> Any:
    """The model a finished run ended with (for evaluation).

    If ``final.zip`` is damaged, the intact periodic checkpoint with the most env steps is loaded
    instead, with a warning naming both.

    Raises:
        FileNotFoundError: The run has no ``final.zip``: it has not finished.
        NoIntactCheckpointError: ``final.zip`` and every periodic checkpoint are damaged.
    """
    directory = run_dir / "checkpoints"
    final = directory / FINAL
    if not final.exists():
        raise FileNotFoundError(f"no final model at {final}; the run has not finished")
    candidates = [final, *(path for path in saved_models(run_dir) if path != final)]
    path, _ = load_newest_intact(candidates, _intact_model_steps, directory)
    return _algorithm(config).load(path)


def _check_resumable(config: SB3Config, run_dir: Path, trained: int) -> None:
    """Refuse to resume ``run_dir`` (trained for ``trained`` steps) with ``config``.

    Raises:
        ValueError: ``config`` differs from the run's ``config.json`` outside
            ``RESUMABLE_CHANGES``, or ``total_steps`` would have ended the run a rollout or more
            before the steps it has trained.
    """
    config_path = run_dir / "config.json"
    if config_path.exists():
        saved = json.loads(config_path.read_text())
        saved.pop("agent", None)
        # A setting added to SB3Config after the run was written has its default there.
        saved = {**dataclasses.asdict(SB3Config(env_id=config.env_id)), **saved}
        check_resumable_config(run_dir, saved, dataclasses.asdict(config))
    if trained >= config.total_steps + config.batch_steps:
        raise ValueError(
            f"cannot resume {run_dir} with total_steps {config.total_steps}: it has already "
            f"trained {trained} env steps; ask for {trained} or more"
        )


def train_sb3(
    config: SB3Config,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[BaseCallback] = (),
) -> SB3Run:
    """Train an SB3 baseline into ``run_dir``.

    Args:
        config: The run's configuration.
        run_dir: Where config, metrics, checkpoints and TensorBoard events go.
        resume: Continue from the intact saved model of ``run_dir`` with the most env steps
            (the envs start fresh episodes, reseeded with ``seed`` + steps trained; model,
            optimiser, step and update counts continue; metric rows and TensorBoard events
            logged after that model are dropped; damaged models are skipped with a warning).
        progress: Show SB3's progress bar.
        callbacks: More SB3 callbacks for ``learn`` (one that stops training ends the run there,
            with its final model saved).

    Returns:
        The final model's path and the env steps trained before and after this call.

    Raises:
        FileExistsError: ``run_dir`` holds a run and ``resume`` is False.
        RunInUseError: Another process is training ``run_dir``.
        ValueError: A bad config, or one that cannot resume the run (see ``_check_resumable``),
            or every saved model of the run is damaged (``NoIntactCheckpointError``).
    """
    config.validate()
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not resume and config_path.exists():
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume or another --out")
    with RunLock(run_dir):
        return _train_locked(config, run_dir, resume, progress, callbacks)


def _train_locked(
    config: SB3Config,
    run_dir: Path,
    resume: bool,
    progress: bool,
    callbacks: Sequence[BaseCallback],
) -> SB3Run:
    """``train_sb3`` once the config is checked and the run directory is this process's."""
    config_path = run_dir / "config.json"
    found = latest_checkpoint(run_dir) if resume else None
    if found is not None:
        _check_resumable(config, run_dir, found[1])
    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    venv = make_sb3_env(config)
    algorithm = _algorithm(config)
    if found is not None:
        model = algorithm.load(found[0], env=venv)
        # load() reseeded torch, numpy, the envs and the action space with config.seed; a resume
        # must not replay the run's opening episodes and noise, so reseed from its progress.
        model.set_random_seed(config.seed + model.num_timesteps)
    else:
        model = algorithm(_policy_name(config, venv), venv, **hyperparameters(config))
    start_step = model.num_timesteps
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(
        json.dumps({"agent": f"sb3-{config.algorithm}", **dataclasses.asdict(config)}, indent=2)
    )
    log = RunLog(run_dir, tensorboard=config.tensorboard)
    log.truncate_after(start_step)
    model.set_logger(Logger(str(run_dir), [RunLogOutput(log)]))
    final = run_dir / "checkpoints" / FINAL
    try:
        if model.num_timesteps < config.total_steps:
            model.learn(
                config.total_steps - model.num_timesteps,
                callback=[
                    CheckpointEveryUpdates(
                        run_dir / "checkpoints", config.checkpoint_every * config.batch_steps
                    ),
                    LogAfterUpdates(config.log_every * config.batch_steps),
                    *callbacks,
                ],
                log_interval=None,  # LogAfterUpdates dumps the logger
                reset_num_timesteps=found is None,
                progress_bar=progress,
            )
        save_model(model, final)
    finally:
        model.logger.close()
        venv.close()
    return SB3Run(final=final, start_step=start_step, steps=model.num_timesteps)


__all__ = [
    "ALGORITHMS",
    "SB3Config",
    "SB3Run",
    "latest_checkpoint",
    "load_final_model",
    "make_sb3_env",
    "saved_models",
    "train_sb3",
]
