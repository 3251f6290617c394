"""Where Ballet's difficulty lies: BalletGrid with one part of the answer given away.

Ballet asks three things of an agent at once: recognise each dance from the dancer's motion,
remember who danced what until the instruction comes, and walk to that dancer. Each variant here
gives one of them away in an extra observation, so that memory PPO's learning speed on what is
left can be measured apart:

- ``target``: from the choice phase on, ``target`` shows the slot (1-8) of the dancer to walk to.
  Only navigation is left: no recognition, no memory.
- ``dance``: while a dancer performs, the instruction shows the name of its dance (the token the
  choice phase will use to name it) instead of "watch". Recognition is given away, and so is
  matching the instruction to what was seen (the same token, through the same embedding);
  remembering who danced what, and walking there, are left.
- ``none``: the unchanged task, for comparison. With ``--curriculum STEPS`` it weans the agent
  off the ``dance`` variant's names instead: each episode shows them with a chance that falls
  linearly from 1 to 0 over the first STEPS env steps of the run (all envs together), then never.
  (``scripts/ballet_probe.py --curriculum`` is the same schedule, supervised.)

The variants wrap the single BalletGrid env and are registered under ``memrl-diag/`` ids for this
script only; the runs are ordinary memory-PPO run directories (resumable: re-run the command).
OUT/diagnostics.md gets, per run, the training success over the last 10% of its episodes and the
first step at which the success of 20 consecutive updates averaged at least 0.9;
OUT/training_curves.png the curves.

    python scripts/ballet_diagnostics.py --variant target --agent none --steps 400000 \\
        --ppo '{"ent_coef": 0.001}' --out runs/ballet_diag/target-none
    python scripts/ballet_diagnostics.py --variant dance --agent hcam --steps 1500000 \\
        --ppo '{"ent_coef": 0.001, "learning_rate": 0.001}' --out runs/ballet_diag/dance-hcam
    python scripts/ballet_diagnostics.py --variant none --curriculum 1000000 --agent hcam \\
        --steps 2000000 --ppo '{"ent_coef": 0.001, "reconstruction_coef": 1.0, "num_steps": 256}' \\
        --out runs/ballet_diag/curriculum-hcam-recon
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

import memrl  # noqa: F401  (registers the memrl/ ids)
from memrl.agents.checkpoints import CheckpointStore
from memrl.agents.ppo import PPOTrainer
from memrl.agents.ppo_config import PPOConfig
from memrl.agents.run_log import read_metric
from memrl.envs.ballet import DANCER_SLOTS, dance_period, hint_probability
from memrl.envs.dances import DANCE_LENGTH
from memrl.eval.plots import plot_training_curves
from memrl.memory.presets import STUDY_CORES

VARIANTS = ("target", "dance", "none")
CORES = tuple(STUDY_CORES)
SOLVED = 0.9
SMOOTH = 20


class GiveAway(gymnasium.Wrapper):
    """BalletGrid with one extra observation that gives part of the answer away (module doc).

    Args:
        env: A single BalletGrid env.
        variant: One of ``VARIANTS``.
        curriculum: With variant "none": the run's env steps (all ``num_envs`` envs together)
            over which the chance that an episode shows the dance names falls from 1 to 0.
        num_envs: Envs of the run, each stepping as often as this one.
    """

    def __init__(
        self, env: gymnasium.Env, variant: str, curriculum: int = 0, num_envs: int = 1
    ) -> None:
        super().__init__(env)
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if curriculum and variant != "none":
            raise ValueError(f"a curriculum weans off the dance names: variant 'none', not "
                             f"{variant!r}")  # fmt: skip
        self.variant = variant
        self.curriculum, self.num_envs = curriculum, num_envs
        self.steps = 0  # this env's steps since it was made: the run's are num_envs times more
        self.hinted = variant == "dance"
        self._rng = np.random.default_rng(0)
        extra = {"target": {"target": spaces.Discrete(len(DANCER_SLOTS) + 1)}}.get(variant, {})
        assert isinstance(env.observation_space, spaces.Dict)
        self.observation_space = spaces.Dict({**env.observation_space.spaces, **extra})
        self._t = 0
        self._memory: dict[str, Any] = {}

    def reset(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._t = 0
        self._memory = info["memory"]
        if self.curriculum:
            if kwargs.get("seed") is not None:
                self._rng = np.random.default_rng(kwargs["seed"])
            chance = hint_probability(self.steps * self.num_envs, self.curriculum)
            self.hinted = bool(self._rng.random() < chance)
        return self._extend(obs), {**info, "hinted": self.hinted}

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._t += 1
        self.steps += 1
        return self._extend(obs), float(reward), terminated, truncated, info

    def _extend(self, obs: dict[str, Any]) -> dict[str, Any]:
        if self.variant == "target":
            slot = DANCER_SLOTS.index(tuple(int(v) for v in self._memory["target_slot"]))
            return {**obs, "target": np.int64(slot + 1 if obs["instruction"] else 0)}
        if self.hinted and not obs["instruction"]:
            return {**obs, "instruction": np.int64(self._dance_on_stage())}
        return obs

    def _dance_on_stage(self) -> int:
        """Instruction token of the dance performed at this step (0: nobody dances)."""
        k, offset = divmod(self._t, dance_period(int(self._memory["dance_delay"])))
        if k >= int(self._memory["num_dancers"]) or offset >= DANCE_LENGTH:
            return 0
        return int(self._memory["dances"][k]) + 1


def make_variant(
    variant: str, dancers: int = 2, delay: int = 16, curriculum: int = 0, num_envs: int = 1
) -> gymnasium.Env:
    """A BalletGrid level with one part of the answer given away (see :class:`GiveAway`)."""
    env = gymnasium.make(f"memrl/BalletGrid-{dancers}-delay{delay}-v0")
    return GiveAway(env, variant, curriculum, num_envs)


def _create(**kwargs: Any) -> gymnasium.Env:
    return make_variant(**kwargs)


def register(variant: str) -> str:
    """Register the variant's id (once) and return it."""
    env_id = f"memrl-diag/BalletGrid-{variant}-v0"
    if env_id not in gymnasium.registry:
        gymnasium.register(env_id, entry_point=_create, kwargs={"variant": variant})
    return env_id


def first_solved(steps: np.ndarray, success: np.ndarray) -> int | None:
    """First step whose trailing mean over ``SMOOTH`` updates reaches ``SOLVED``."""
    if len(success) < SMOOTH:
        return None
    means = np.convolve(success, np.ones(SMOOTH) / SMOOTH, mode="valid")
    hits = np.flatnonzero(means >= SOLVED)
    return int(steps[hits[0] + SMOOTH - 1]) if len(hits) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", required=True, choices=VARIANTS, help="what is given away")
    parser.add_argument("--agent", default="hcam", choices=CORES, help="memory core")
    parser.add_argument("--dancers", type=int, default=2, choices=(2, 4, 8))
    parser.add_argument("--delay", type=int, default=16, choices=(16, 48))
    parser.add_argument("--steps", type=int, default=1_000_000, help="training steps per run")
    parser.add_argument("--curriculum", type=int, default=0, metavar="STEPS",
                        help="with --variant none: episodes show the dance names with a chance "
                        "falling from 1 to 0 over the first STEPS env steps (default: 0, "
                        "none)")  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--ppo", default="{}", metavar="JSON",
                        help='memory-PPO settings, e.g. \'{"ent_coef": 0.001}\'')  # fmt: skip
    parser.add_argument("--out", required=True, help="output directory (one run per seed)")
    args = parser.parse_args()
    if args.curriculum < 0 or (args.curriculum and args.variant != "none"):
        parser.error(f"--curriculum must be >= 0 steps and needs --variant none, got "
                     f"{args.curriculum} with --variant {args.variant}")  # fmt: skip
    ppo = json.loads(args.ppo)
    own = {"env_id", "env_kwargs", "core", "core_kwargs", "total_steps", "seed", "threads",
           "tensorboard"}  # fmt: skip
    fields = {f.name for f in dataclasses.fields(PPOConfig)} - own  # the script sets the rest
    if not isinstance(ppo, dict) or not set(ppo) <= fields:
        raise SystemExit(f"--ppo must be a JSON object of PPO settings among {sorted(fields)}")

    env_id = register(args.variant)
    out = Path(args.out)
    rows, curves = [], []
    for seed in args.seeds:
        config = PPOConfig(env_id=env_id,
                           env_kwargs={"dancers": args.dancers, "delay": args.delay},
                           core=args.agent, core_kwargs=STUDY_CORES[args.agent],
                           total_steps=args.steps, seed=seed, threads=1, tensorboard=False,
                           **ppo)  # fmt: skip
        if args.curriculum:
            schedule = {"curriculum": args.curriculum, "num_envs": config.num_envs}
            config = dataclasses.replace(config, env_kwargs={**config.env_kwargs, **schedule})
        run_dir = out / f"seed{seed}"
        resume = CheckpointStore(run_dir / "checkpoints").exists()
        PPOTrainer(config, run_dir, resume=resume, progress=False).train()
        steps, success = map(np.asarray, read_metric(run_dir, "charts/success_rate"))
        curves.append((steps, success))
        tail = success[-max(1, len(success) // 10) :]
        solved = first_solved(steps, success)
        rows.append(f"| {seed} | {np.mean(tail):.2f} | {solved if solved else 'not reached'} |")
    text = "\n".join([
        f"BalletGrid, {args.dancers} dancers, delay {args.delay}, variant `{args.variant}`"
        + (f" (curriculum over {args.curriculum:,} steps)" if args.curriculum else "")
        + f", agent "
        f"`{args.agent}`, {args.steps:,} steps, PPO {ppo or 'defaults'}.",
        "",
        f"| seed | training success, last 10% | first step at >= {SOLVED} ({SMOOTH} updates) |",
        "|---|---|---|",
        *rows,
    ])  # fmt: skip
    (out / "diagnostics.md").write_text(text + "\n")
    plot_training_curves({args.agent: curves}, out / "training_curves.png", smooth=SMOOTH,
                         chance=1 / args.dancers,
                         title=f"BalletGrid-{args.dancers}-delay{args.delay}, {args.variant} "
                               "given away")  # fmt: skip
    print(text)


if __name__ == "__main__":
    main()
