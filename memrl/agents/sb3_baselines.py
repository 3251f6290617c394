"""Stable-Baselines3 baselines on memrl's envs: PPO (optionally frame-stacked) and RecurrentPPO.

They train through the same ``memrl train`` command and write into the same kind of run
directory (``config.json``, ``metrics.csv``, TensorBoard events, ``checkpoints/``), so reports
compare them with memrl's own agents. SB3 logs ``rollout/success_rate`` from ``is_success``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium

ALGORITHMS = ("ppo", "recurrent-ppo")


@dataclass
class SB3Config:
    """Configuration of an SB3 baseline run."""

    env_id: str = "memrl/BalletGrid-2-delay16-v0"
    """Gymnasium id of the training env."""
    algorithm: str = "ppo"
    """ppo (SB3) or recurrent-ppo (sb3-contrib's LSTM PPO)."""
    total_steps: int = 200_000
    """Env steps to train for (summed over envs)."""
    seed: int = 0
    """Seed of the envs and the network."""
    num_envs: int = 8
    """Parallel envs (DummyVecEnv)."""
    num_steps: int = 128
    """Steps per env per rollout (SB3's n_steps)."""
    frame_stack: int = 0
    """Stack this many last observations (PPO only; 0 or 1: none)."""
    learning_rate: float = 3e-4
    """Adam learning rate."""
    ent_coef: float = 0.01
    """Entropy bonus."""
    checkpoint_every: int = 50_000
    """Save a checkpoint every this many env steps."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming any bad field and what is allowed."""
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        for name in ("total_steps", "num_envs", "num_steps", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.frame_stack < 0 or (self.frame_stack > 1 and self.algorithm != "ppo"):
            raise ValueError("frame_stack must be >= 0, and only PPO stacks frames")
        if self.env_id not in gymnasium.registry:
            raise ValueError(f"unknown env id {self.env_id!r}; run `memrl list`")


def make_sb3_env(config: SB3Config) -> Any:
    """The SB3 vector env of ``config`` (Monitor-wrapped, frame-stacked if asked)."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack

    venv = make_vec_env(config.env_id, n_envs=config.num_envs, seed=config.seed)
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


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The SB3 checkpoint of ``run_dir`` with the most steps, if any."""
    found = sorted(
        (run_dir / "checkpoints").glob("sb3_*_steps.zip"),
        key=lambda p: int(p.stem.split("_")[-2]),
    )
    return found[-1] if found else None


def train_sb3(
    config: SB3Config, run_dir: str | Path, resume: bool = False, progress: bool = True
) -> Path:
    """Train an SB3 baseline into ``run_dir``; returns the path of the final model.

    Args:
        config: The run's configuration.
        run_dir: Where config, metrics, checkpoints and TensorBoard events go.
        resume: Continue from the latest checkpoint in ``run_dir`` (the env restarts fresh
            episodes; model, optimiser and step count continue).
        progress: Show SB3's progress bar.
    """
    from stable_baselines3.common.callbacks import CheckpointCallback
    from stable_baselines3.common.logger import configure

    config.validate()
    run_dir = Path(run_dir)
    checkpoint = latest_checkpoint(run_dir) if resume else None
    if not resume and (run_dir / "progress.csv").exists():
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume or another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(
        json.dumps({"agent": f"sb3-{config.algorithm}", **dataclasses.asdict(config)}, indent=2)
    )
    venv = make_sb3_env(config)
    algorithm = _algorithm(config)
    if checkpoint is not None:
        model = algorithm.load(checkpoint, env=venv)
    else:
        model = algorithm(
            _policy_name(config, venv),
            venv,
            n_steps=config.num_steps,
            learning_rate=config.learning_rate,
            ent_coef=config.ent_coef,
            seed=config.seed,
            verbose=0,
        )
    model.set_logger(configure(str(run_dir), ["csv", "tensorboard"]))
    callback = CheckpointCallback(
        save_freq=max(1, config.checkpoint_every // config.num_envs),
        save_path=str(run_dir / "checkpoints"),
        name_prefix="sb3",
    )
    remaining = config.total_steps - model.num_timesteps
    if remaining > 0:
        model.learn(
            remaining,
            callback=callback,
            reset_num_timesteps=checkpoint is None,
            progress_bar=progress,
        )
    final = run_dir / "checkpoints" / "final.zip"
    model.save(final)
    venv.close()
    return final
