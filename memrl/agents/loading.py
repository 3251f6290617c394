"""Load the trained agent of a run directory, whichever trainer wrote it."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def load_agent(run_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """The trained agent of a run directory (memory PPO or SB3) and what it was trained on.

    A damaged checkpoint is skipped for the one before it, with a warning naming both (memory
    PPO: ``latest.pt`` then ``previous.pt``; SB3: ``final.zip`` then the newest intact periodic
    checkpoint).

    A ``sat-ama`` agent comes wrapped in :class:`~memrl.agents.allocated.AllocatedPolicy` (its
    allocator picks each episode's strategy), and the info holds ``allocator_choices``: the
    strategy it picks for each question type.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json)")
    config = json.loads(config_path.read_text())
    if str(config.get("agent", "")).startswith("sb3-"):
        from memrl.agents.sb3_baselines import SB3Config, load_final_model

        sb3 = SB3Config(**{k: v for k, v in config.items() if k != "agent"})
        model = load_final_model(sb3, run_dir)
        info = {"agent": config["agent"], "env_id": sb3.env_id, "env_kwargs": sb3.env_kwargs}
        if sb3.frame_stack > 1:
            import gymnasium

            space = gymnasium.make(sb3.env_id, **sb3.env_kwargs).observation_space
            return FrameStackedAgent(model, sb3.frame_stack, space), info
        return model, info
    from memrl.agents.ppo import policy_from_checkpoint, read_checkpoint

    path, payload = read_checkpoint(run_dir)
    policy, ppo = policy_from_checkpoint(payload)
    info = {"agent": ppo.core, "env_id": ppo.env_id, "env_kwargs": ppo.env_kwargs}
    if ppo.core == "sat-ama":
        from memrl.agents.allocated import AllocatedPolicy, allocator_from_checkpoint
        from memrl.envs.room_ballet import QUESTION_TYPES

        agent = AllocatedPolicy(policy, allocator_from_checkpoint(payload, path))
        picks = agent.choices(len(QUESTION_TYPES))
        info["allocator_choices"] = dict(zip(QUESTION_TYPES, picks, strict=True))
        return agent, info
    return policy, info


class FrameStackedAgent:
    """An SB3 model trained on ``VecFrameStack`` observations, stacking them itself.

    It uses SB3's own ``StackedObservations`` (what ``VecFrameStack`` uses), so the model sees
    exactly what it saw in training: the last ``n_stack`` observations, zeros before an
    episode's first. The stack is the ``state`` of SB3's ``predict``.

    Args:
        model: The trained SB3 model.
        n_stack: Observations per stack (the run's ``frame_stack``).
        observation_space: The env's (unstacked) observation space.
    """

    def __init__(self, model: Any, n_stack: int, observation_space: Any) -> None:
        self.model = model
        self.n_stack = n_stack
        self.observation_space = observation_space

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]:
        """SB3's ``predict`` on a batch; the returned state is the stack, pass it back."""
        from stable_baselines3.common.vec_env.stacked_observations import StackedObservations

        batch = len(
            next(iter(observation.values())) if isinstance(observation, dict) else observation
        )
        if state is None:
            state = StackedObservations(batch, self.n_stack, self.observation_space)
            stacked = state.reset(observation)
        else:
            starts = np.zeros(batch, bool) if episode_start is None else np.asarray(episode_start)
            with warnings.catch_warnings():  # acting needs no stacked terminal observation
                warnings.filterwarnings("ignore", "VecFrameStack wrapping a VecEnv without")
                stacked, _ = state.update(observation, starts, [{} for _ in range(batch)])
        actions, _ = self.model.predict(stacked, deterministic=deterministic)
        return actions, state
