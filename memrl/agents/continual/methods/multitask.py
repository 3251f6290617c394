"""Multi-task training, the upper bound: every task of the stream, interleaved, whole budget.

As Continual World's ``MultiTaskEnv`` (``cycle_mode="episode"``): episodes cycle through the tasks
in order (task 0, 1, ..., n-1, 0, ...), one replay buffer holds them all, and training lasts as long
as the whole stream (``len(stages) * steps_per_task`` steps). Nothing is reset along the way: the
run is one segment. Evaluations follow the stream's clock, so the evaluation log has the stream's
windows; only its average performance is meaningful (forgetting and forward transfer compare a
task's window with the end, and no window belongs to a task here).

Continual World trained its multi-task baseline with a learning rate of 1e-4 and (in its best
variant) PopArt-normalised critics; this implementation keeps the run's ``learning_rate`` and has no
PopArt.
"""

from __future__ import annotations

from typing import Any

import gymnasium

from memrl.agents.continual.methods.base import Method
from memrl.streams import ContinualEnv, Stream


class InterleavedTasks(gymnasium.Env[Any, Any]):
    """Every task of a stream, one episode each in turn, in the stream's layout (one-hot on).

    Args:
        stream: The stream whose tasks (and layout) to use.
    """

    def __init__(self, stream: Stream) -> None:
        self.envs = [
            ContinualEnv(stream, task_one_hot=True, fixed_task=n) for n in stream.task_names
        ]
        self.observation_space = self.envs[0].observation_space
        self.action_space = self.envs[0].action_space
        self.current = -1  # the first reset starts task 0
        self.stream_step = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an episode of the next task in turn (``seed`` seeds every task's env)."""
        super().reset(seed=seed)
        if seed is not None:
            for offset, env in enumerate(self.envs):
                env.reset(seed=seed + offset)
        self.current = (self.current + 1) % len(self.envs)
        return self.envs[self.current].reset()

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step the current task."""
        self.stream_step += 1
        return self.envs[self.current].step(action)

    def close(self) -> None:
        """Close every task's env."""
        for env in self.envs:
            env.close()


class Multitask(Method):
    """Multi-task upper bound (see the module docstring)."""

    name = "multitask"
    clears_buffer = False
    interleaves_tasks = True

    def make_env(self) -> gymnasium.Env:
        """All tasks interleaved episode by episode."""
        return InterleavedTasks(self.stream)
