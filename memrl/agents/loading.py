"""Load the trained agent of a run directory, whichever trainer wrote it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load_agent(run_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """The trained agent of a run directory (memory PPO or SB3) and what it was trained on.

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
        from memrl.agents.sb3_baselines import SB3Config, _algorithm

        if config.get("frame_stack", 0) > 1:
            raise ValueError("evaluating frame-stacked SB3 runs is not supported yet")
        final = run_dir / "checkpoints" / "final.zip"
        if not final.exists():
            raise FileNotFoundError(f"no final model at {final}; the run has not finished")
        sb3 = SB3Config(**{k: v for k, v in config.items() if k != "agent"})
        model = _algorithm(sb3).load(final)
        return model, {"agent": config["agent"], "env_id": sb3.env_id, "env_kwargs": {}}
    from memrl.agents.ppo import load_policy

    policy, ppo = load_policy(run_dir)
    info = {"agent": ppo.core, "env_id": ppo.env_id, "env_kwargs": ppo.env_kwargs}
    if ppo.core == "sat-ama":
        from memrl.agents.allocated import load_allocated_policy
        from memrl.envs.room_ballet import QUESTION_TYPES

        agent = load_allocated_policy(run_dir, policy)
        picks = agent.choices(len(QUESTION_TYPES))
        info["allocator_choices"] = dict(zip(QUESTION_TYPES, picks, strict=True))
        return agent, info
    return policy, info
