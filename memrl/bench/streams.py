"""``memrl bench streams``: what memrl's stream wrappers cost on Meta-World, and evaluation speed.

Two measurements, returned as plain dicts (JSON-ready) and printed by :func:`format_report`:

1. **Wrapper overhead** (:func:`metaworld_overhead`). For each of several Meta-World tasks, the
   same pre-drawn actions are stepped through four environments, with a reset every 200 steps in
   all of them (Continual World's episode length):

   - ``raw``: Meta-World's own environment class, set up for the Continual World protocol with
     Meta-World's API only (``MT1(task).train_classes``, ``set_task``, ``_freeze_rand_vec =
     False``, ``seeded_rand_vec = True``, ``env.seed``). No memrl code. The reference.
   - ``metaworld_gym``: ``gymnasium.make("Meta-World/MT1", env_name=task, seed=...)``,
     Meta-World's own Gymnasium stack (time limit, success wrapper, episode statistics, task
     selection; its resets also call ``set_task``).
   - ``protocol``: memrl's ``MetaWorldTaskEnv`` (:mod:`memrl.streams.metaworld_protocol`).
   - ``continual``: ``gymnasium.make("memrl/ContinualWorld-CW10-v0", task_one_hot=True,
     fixed_task=task)``: the stream env with Gymnasium's wrappers and the one-hot appended,
     exactly as an agent sees it.

   Each round times one block of ``steps`` steps of every environment, back to back, in an
   order rotated every round; a garbage collection precedes each block. On a shared machine the
   load drifts on the scale of seconds, so the overhead is taken within rounds: the median over
   rounds of ``time(env) / time(raw) - 1`` (paired blocks a fraction of a second apart), per
   task and pooled over the tasks. Target: ``continual`` within 5% of ``raw``.

2. **Retention-matrix evaluation throughput** (:func:`retention_eval_throughput`): evaluating a
   policy on every task of a stream, ``episodes_per_task`` full episodes each, as a retention
   matrix row needs, through ``ContinualEnv(stream, task_one_hot=True, fixed_task=task)`` (the
   layout the agent was trained in). Policies: ``"random"`` (uniform actions drawn beforehand)
   or ``"linear"`` (a fixed random linear map of the observation through ``tanh``, standing in
   for a small network's cost). Reports episodes/s and steps/s of the evaluation loop, with the
   time to build the environments apart, and the success rate per task.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium
import numpy as np

import memrl  # noqa: F401  (registers memrl's ids)
from memrl.streams.catalogue import CW10
from memrl.streams.continual_env import ContinualEnv
from memrl.streams.metaworld_protocol import EPISODE_LENGTH, MetaWorldTaskEnv

DEFAULT_TASKS: tuple[str, ...] = ("hammer-v3", "push-v3", "window-close-v3")
"""Tasks of the overhead measurement: three CW10 tasks with one, one and no free object."""

VARIANTS: tuple[str, ...] = ("raw", "metaworld_gym", "protocol", "continual")
"""The environments compared, the reference first."""

TARGET_OVERHEAD = 0.05
"""The wrapper overhead memrl promises for ``continual`` against ``raw``."""


def _raw_metaworld(task: str, seed: int) -> Any:
    """Meta-World's own env class under the Continual World protocol, by Meta-World's API only."""
    import metaworld

    benchmark = metaworld.MT1(task, seed=seed)
    env = benchmark.train_classes[task]()
    env.set_task(benchmark.train_tasks[0])
    env._freeze_rand_vec = False
    env.seeded_rand_vec = True
    env.seed(seed)
    return env


def _make_variant(variant: str, task: str, seed: int) -> Any:
    if variant == "raw":
        return _raw_metaworld(task, seed)
    if variant == "metaworld_gym":
        # Gymnasium's passive checker is off: it only warns about Meta-World's own spaces.
        return gymnasium.make("Meta-World/MT1", env_name=task, seed=seed, disable_env_checker=True)
    if variant == "protocol":
        return MetaWorldTaskEnv(task)
    if variant == "continual":
        return gymnasium.make("memrl/ContinualWorld-CW10-v0", task_one_hot=True, fixed_task=task)
    raise ValueError(f"variant must be one of {list(VARIANTS)}, got {variant!r}")


def _stepper(env: Any, actions: np.ndarray, seed: int) -> Callable[[int], float]:
    """A function that runs ``n`` more steps (resetting every 200) and returns the seconds."""
    if isinstance(env, gymnasium.Env):
        env.reset(seed=seed)
    else:
        env.reset()
    state = {"i": 0, "t": 0}
    num_actions = len(actions)

    def run(n: int) -> float:
        step, reset = env.step, env.reset
        i, t = state["i"], state["t"]
        gc.collect()
        start = time.perf_counter()
        for _ in range(n):
            step(actions[i % num_actions])
            i += 1
            t += 1
            if t == EPISODE_LENGTH:
                reset()
                t = 0
        elapsed = time.perf_counter() - start
        state["i"], state["t"] = i, t
        return elapsed

    return run


def metaworld_overhead(
    tasks: Sequence[str] = DEFAULT_TASKS,
    steps: int = 200,
    rounds: int = 15,
    seed: int = 0,
) -> dict[str, Any]:
    """Step throughput of memrl's wrappers against raw Meta-World, same actions, one run.

    Args:
        tasks: Meta-World v3 tasks (of CW10, so that the ``continual`` variant can run them).
        steps: Steps per environment per round (a block; 200 is one episode and its reset).
        rounds: Rounds; every round times one block of every environment, in rotated order.
        seed: Seed of the environments and of the actions.

    Returns:
        ``{"tasks": {task: {variant: row}}, "pooled": {variant: row}, "steps", "rounds",
        "episode_length", "target_overhead"}``, a row being ``{"steps_per_s", "us_per_step",
        "overhead"}``: steps/s and µs/step from the median block; ``overhead`` the median over
        rounds of ``time(variant) / time(raw) - 1`` within the round (0.03 = 3% slower). Pooled
        rows sum the tasks' median block times and take the median of the per-round ratios of
        the summed times.
    """
    unknown = [t for t in tasks if t not in CW10]
    if unknown:
        raise ValueError(f"tasks must be CW10 tasks {list(CW10)}, got {unknown}")
    if steps < 1 or rounds < 1:
        raise ValueError(f"steps and rounds must be >= 1, got steps={steps}, rounds={rounds}")
    actions = np.random.default_rng(seed).uniform(-1, 1, (4096, 4)).astype(np.float32)
    per_task: dict[str, dict[str, Any]] = {}
    all_times: dict[str, np.ndarray] = {}
    for task in tasks:
        runners = {v: _stepper(_make_variant(v, task, seed), actions, seed) for v in VARIANTS}
        for runner in runners.values():
            runner(50)  # warm-up: first steps, lazy imports, caches
        times = {v: np.zeros(rounds) for v in VARIANTS}
        for round_index in range(rounds):
            shift = round_index % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                times[variant][round_index] = runners[variant](steps)
        per_task[task] = _rows(times, steps)
        for v in VARIANTS:
            all_times[v] = all_times.get(v, np.zeros(rounds)) + times[v]
    pooled = _rows(all_times, steps * len(tasks))
    return {
        "tasks": per_task,
        "pooled": pooled,
        "steps": steps,
        "rounds": rounds,
        "episode_length": EPISODE_LENGTH,
        "target_overhead": TARGET_OVERHEAD,
    }


def _rows(times: dict[str, np.ndarray], steps: int) -> dict[str, dict[str, float]]:
    """Per variant: steps/s and µs/step of the median block, and the median paired overhead."""
    rows = {}
    for variant, seconds in times.items():
        median = float(np.median(seconds))
        rows[variant] = {
            "steps_per_s": steps / median,
            "us_per_step": 1e6 * median / steps,
            "overhead": float(np.median(seconds / times["raw"])) - 1.0,
        }
    return rows


class _LinearPolicy:
    """``tanh(W obs)``: a fixed random linear policy, SB3's ``predict`` signature."""

    def __init__(self, observation_size: int, action_size: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.weights = rng.normal(0, 1 / np.sqrt(observation_size), (action_size, observation_size))

    def predict(
        self, observation: np.ndarray, *args: Any, **kwargs: Any
    ) -> tuple[np.ndarray, None]:
        """The action for one observation."""
        return np.tanh(self.weights @ observation).astype(np.float32), None


def retention_eval_throughput(
    stream: str = "CW10",
    episodes_per_task: int = 10,
    policy: str = "random",
    seed: int = 0,
) -> dict[str, Any]:
    """Episodes per second of evaluating a policy on every task of a stream.

    Args:
        stream: A named stream of Box-action tasks (``memrl.streams.NAMED_STREAMS``).
        episodes_per_task: Full episodes per task.
        policy: ``"random"`` or ``"linear"``.
        seed: Seed of the environments, the actions and the policy.

    Returns:
        ``{"stream", "tasks", "episodes_per_task", "policy", "episodes", "steps",
        "build_seconds", "eval_seconds", "episodes_per_s", "steps_per_s", "success": {task:
        rate}}``.
    """
    if policy not in ("random", "linear"):
        raise ValueError(f"policy must be one of ['random', 'linear'], got {policy!r}")
    if episodes_per_task < 1:
        raise ValueError(f"episodes_per_task must be >= 1, got {episodes_per_task}")
    start = time.perf_counter()
    probe = ContinualEnv(stream, task_one_hot=True)
    envs = {
        name: ContinualEnv(probe.stream, task_one_hot=True, fixed_task=name)
        for name in probe.task_names
    }
    for env in envs.values():
        env.reset(seed=seed)  # builds the task's environment
    build_seconds = time.perf_counter() - start

    action_space = probe.action_space
    if policy == "linear" and not isinstance(action_space, gymnasium.spaces.Box):
        raise ValueError(f"the linear policy needs a Box action space, got {action_space}")
    observation_size = int(np.prod(probe.observation_space.shape or (1,)))
    action_size = int(np.prod(action_space.shape or (1,)))
    linear = _LinearPolicy(observation_size, action_size, seed)
    action_space.seed(seed)
    pool = [action_space.sample() for _ in range(4096)]
    success: dict[str, float] = {}
    steps = 0
    start = time.perf_counter()
    for index, (name, env) in enumerate(envs.items()):
        wins = 0
        for episode in range(episodes_per_task):
            obs, _ = env.reset(seed=seed + 1000 * index + episode)
            while True:
                if policy == "linear":
                    action, _ = linear.predict(obs)
                else:
                    action = pool[steps % len(pool)]
                obs, _, terminated, truncated, info = env.step(action)
                steps += 1
                if terminated or truncated:
                    wins += bool(info.get("is_success", False))
                    break
        success[name] = wins / episodes_per_task
    eval_seconds = time.perf_counter() - start
    for env in envs.values():
        env.close()
    episodes = episodes_per_task * len(envs)
    return {
        "stream": stream,
        "tasks": list(envs),
        "episodes_per_task": episodes_per_task,
        "policy": policy,
        "episodes": episodes,
        "steps": steps,
        "build_seconds": build_seconds,
        "eval_seconds": eval_seconds,
        "episodes_per_s": episodes / eval_seconds,
        "steps_per_s": steps / eval_seconds,
        "success": success,
    }


def bench_streams(
    tasks: Sequence[str] = DEFAULT_TASKS,
    steps: int = 200,
    rounds: int = 15,
    stream: str = "CW10",
    episodes_per_task: int = 10,
    policy: str = "random",
    seed: int = 0,
) -> dict[str, Any]:
    """Both measurements, with the machine they ran on (what ``memrl bench streams`` prints).

    Args:
        tasks: Tasks of the overhead measurement.
        steps: Steps per environment per round of the overhead measurement.
        rounds: Rounds of the overhead measurement.
        stream: Stream of the evaluation measurement.
        episodes_per_task: Episodes per task of the evaluation measurement.
        policy: Policy of the evaluation measurement (``"random"`` or ``"linear"``).
        seed: Seed of everything.

    Returns:
        ``{"overhead": metaworld_overhead(...), "retention_eval": retention_eval_throughput(...),
        "machine": machine_info(...)}``.
    """
    from memrl.bench.machine import machine_info

    return {
        "overhead": metaworld_overhead(tasks, steps=steps, rounds=rounds, seed=seed),
        "retention_eval": retention_eval_throughput(
            stream, episodes_per_task=episodes_per_task, policy=policy, seed=seed
        ),
        "machine": machine_info(("memrl", "numpy", "gymnasium", "metaworld", "mujoco")),
    }


def format_report(result: dict[str, Any]) -> str:
    """The result of :func:`bench_streams` (or either part of it) as plain-text tables."""
    out: list[str] = []
    overhead = result.get("overhead", result if "pooled" in result else None)
    if overhead:
        out.append(
            f"Meta-World steps/s through memrl's wrappers vs raw Meta-World "
            f"(same actions, reset every {overhead['episode_length']} steps; median of "
            f"{overhead['rounds']} rounds of {overhead['steps']}-step blocks, overhead paired "
            "within rounds)"
        )
        header = ["task", *(f"{v} steps/s (overhead)" for v in VARIANTS)]
        rows = []
        for task, row in [*overhead["tasks"].items(), ("pooled", overhead["pooled"])]:
            cells = [task]
            for v in VARIANTS:
                cell = f"{row[v]['steps_per_s']:,.0f}"
                if v != "raw":
                    cell += f" ({100 * row[v]['overhead']:+.1f}%)"
                cells.append(cell)
            rows.append(cells)
        out.append(_table(header, rows))
        verdict = overhead["pooled"]["continual"]["overhead"]
        target = overhead["target_overhead"]
        out.append(
            f"continual vs raw: {100 * verdict:+.1f}% "
            f"({'within' if verdict <= target else 'ABOVE'} the {100 * target:.0f}% target)"
        )
    evaluation = result.get("retention_eval", result if "episodes_per_s" in result else None)
    if evaluation:
        if out:
            out.append("")
        out.append(
            f"Retention-matrix evaluation: {evaluation['stream']}, {len(evaluation['tasks'])} "
            f"tasks x {evaluation['episodes_per_task']} episodes, {evaluation['policy']} policy: "
            f"{evaluation['episodes_per_s']:.2f} episodes/s, "
            f"{evaluation['steps_per_s']:,.0f} steps/s "
            f"({evaluation['eval_seconds']:.1f} s; "
            f"building the envs {evaluation['build_seconds']:.1f} s)"
        )
        rates = ", ".join(f"{t} {r:.1f}" for t, r in evaluation["success"].items())
        out.append(f"success: {rates}")
    return "\n".join(out)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]
    )
