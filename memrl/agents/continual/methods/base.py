"""The interface every continual-learning method implements, and fine-tuning (the no-op method).

A method is a handful of hooks the trainer calls (Continual World's ``SAC`` subclasses override
the same ones):

| hook               | when                                            | used by                 |
|--------------------|-------------------------------------------------|-------------------------|
| `attach`           | once, after the agent is built                  | L2, EWC, PackNet        |
| `on_task_start`    | a new task begins (before the replay reset)     | L2, EWC: anchor, weight |
| `extra_loss`       | every gradient step, added to actor and critic  | L2, EWC                 |
| `adjust_gradients` | every gradient step, before clipping and Adam   | PackNet: masks          |
| `on_task_end`      | the task's last step (before its evaluation)    | PackNet: prune, retrain |
| `evaluation_view`  | around evaluating (or ``predict``-ing) a task   | PackNet: its weights    |

and a few class attributes: which buffer, whether it is cleared at a task change, the batch size,
gradient clipping, and whether tasks are interleaved (multi-task) rather than sequential.

A *task* here is a :class:`Segment`: a maximal run of consecutive stages of the stream that train
the same task. For CW10 and CW20 (whose second pass is ten tasks of its own, ``"hammer-v3#2"``)
segments are the stages; a ``power_law`` stream that draws the same task twice in a row trains it
as one segment (no reset, no pruning in between).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium
import torch

from memrl.agents.continual.buffers import ReplayBuffer, ReservoirBuffer
from memrl.agents.continual.config import ContinualConfig
from memrl.streams import ContinualEnv, Stream, Timeline

if TYPE_CHECKING:
    from memrl.agents.continual.sac import ContinualSAC, Gradients


@dataclass(frozen=True)
class Segment:
    """Consecutive stream steps that train one task: what the methods call a task.

    Attributes:
        index: Position among the run's segments, from 0 (Continual World's ``current_task_idx``).
        task_id: Index of the trained task in the stream's task list; None when every task is
            interleaved (multi-task).
        start: First stream step of the segment.
        steps: Its length in env steps.
    """

    index: int
    task_id: int | None
    start: int
    steps: int

    @property
    def end(self) -> int:
        """The first stream step after the segment."""
        return self.start + self.steps


def task_segments(timeline: Timeline) -> list[Segment]:
    """The timeline's stages, consecutive stages of the same task merged into one segment."""
    segments: list[Segment] = []
    for stage in timeline.stages:
        (task_id,) = stage.task_ids
        if segments and segments[-1].task_id == task_id:
            last = segments[-1]
            segments[-1] = Segment(last.index, task_id, last.start, last.steps + stage.steps)
        else:
            segments.append(Segment(len(segments), task_id, stage.start, stage.steps))
    return segments


class Method:
    """Base of the continual-learning methods: every hook is a no-op.

    Args:
        config: The run's configuration (method coefficients included).
        stream: The stream the run trains on.
    """

    name: ClassVar[str] = "base"
    clears_buffer: ClassVar[bool] = True
    """Clear the replay buffer at every task change (Continual World: yes, except replay)."""
    interleaves_tasks: ClassVar[bool] = False
    """Train on every task at once (multi-task) instead of following the stream."""

    def __init__(self, config: ContinualConfig, stream: Stream) -> None:
        self.config = config
        self.stream = stream
        self.segments = (
            [Segment(0, None, 0, stream.timeline.total_steps)]
            if self.interleaves_tasks
            else task_segments(stream.timeline)
        )

    # -- what the trainer builds ---------------------------------------------------------------

    def make_env(self) -> gymnasium.Env:
        """The training environment: the stream, with the task one-hot appended."""
        return ContinualEnv(self.stream, task_one_hot=True)

    def make_buffer(self, observation_dim: int, action_dim: int, seed: int) -> ReplayBuffer:
        """A FIFO buffer of ``config.buffer_size`` transitions."""
        return ReplayBuffer(self.config.buffer_size, observation_dim, action_dim, seed)

    @property
    def batch_size(self) -> int:
        """Transitions per gradient step."""
        return self.config.batch_size

    @property
    def clipnorm(self) -> float | None:
        """Clip every gradient to this global norm (None: no clipping)."""
        return None

    # -- hooks ---------------------------------------------------------------------------------

    def attach(self, agent: ContinualSAC) -> None:
        """Called once with the freshly built agent (before any checkpoint is loaded)."""

    def on_task_start(self, agent: ContinualSAC, segment: Segment, buffer: ReplayBuffer) -> None:
        """A task begins; ``buffer`` still holds the previous task's transitions."""

    def extra_loss(self, agent: ContinualSAC, segment: int) -> torch.Tensor:
        """A penalty added to the actor and the critic losses (a scalar tensor)."""
        return torch.zeros(())

    def adjust_gradients(
        self,
        agent: ContinualSAC,
        segment: int,
        actor_grads: Gradients,
        critic_grads: Gradients,
    ) -> tuple[Gradients, Gradients]:
        """Change the gradients before clipping and the optimiser step."""
        return actor_grads, critic_grads

    def on_task_end(
        self,
        agent: ContinualSAC,
        segment: Segment,
        buffer: ReplayBuffer,
        learn: Callable[[], object],
    ) -> None:
        """The task's last env step has been taken; ``learn()`` runs one gradient step."""

    @contextmanager
    def evaluation_view(self, agent: ContinualSAC, task_id: int) -> Iterator[None]:
        """Put the weights with which ``task_id`` is evaluated in place (and back afterwards)."""
        yield

    # -- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The method's own state (anchors, importances, masks)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""


class Finetune(Method):
    """Fine-tuning: plain SAC through the stream, nothing protects earlier tasks (lower bound)."""

    name = "finetune"


class PerfectMemory(Method):
    """Replay ("perfect memory"): a reservoir buffer over the whole stream, never cleared.

    Continual World's version: ``buffer_type=reservoir``, ``reset_buffer_on_task_change=False``,
    ``replay_size=20M`` (all of CW20) and ``batch_size=512``. ``replay_buffer_size=0`` keeps every
    transition of the stream (the capacity is the stream's total steps).
    """

    name = "replay"
    clears_buffer = False

    def make_buffer(self, observation_dim: int, action_dim: int, seed: int) -> ReplayBuffer:
        """A reservoir buffer as large as the stream (or ``replay_buffer_size``)."""
        capacity = self.config.replay_buffer_size or self.stream.timeline.total_steps
        return ReservoirBuffer(capacity, observation_dim, action_dim, seed)

    @property
    def batch_size(self) -> int:
        """``replay_batch_size`` (Continual World: 512)."""
        return self.config.replay_batch_size
