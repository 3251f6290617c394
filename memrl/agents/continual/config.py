"""The configuration of a continual-SAC run (torch-free, so ``memrl --help`` stays fast).

Defaults are Continual World's (Wołczyk et al. 2021, ``awarelab/continual_world``: ``run_cl.py``
and ``input_args.py``, and the method coefficients of ``examples/paper_cl_experiments.sh``).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memrl.streams import Stream

METHODS: tuple[str, ...] = ("finetune", "l2", "ewc", "packnet", "replay", "multitask")
"""The continual-learning methods, in Continual World's table order."""
STREAMS: tuple[str, ...] = ("CW10", "CW20", "PowerLaw", "Cyclic", "DMC6")
"""The named streams continual SAC trains: one task per stage, Box actions (of
``memrl.streams.NAMED_STREAMS``, SCoLe trains several tasks per stage, Recall has discrete
actions)."""


def packnet_retrain_steps(configured: int, steps_per_task: int) -> int:
    """PackNet's gradient steps of retraining after each pruning.

    ``configured`` (``packnet_retrain_steps``), or a tenth of ``steps_per_task`` when it is -1
    (Continual World: 100,000 for 1M steps per task).
    """
    return configured if configured >= 0 else steps_per_task // 10


def suggested_eval_every(steps_per_task: int, evaluations: int = 10) -> int:
    """A valid ``eval_every`` for a budget.

    Its largest divisor that gives at least ``evaluations`` evaluations per task (1 if none does).
    """
    most = max(steps_per_task // evaluations, 1)
    return max(d for d in range(1, most + 1) if steps_per_task % d == 0)


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
               dict: "a mapping"}  # fmt: skip


def _names(spec: str) -> list[str]:
    """The names of a comma-separated list."""
    return [name.strip() for name in spec.split(",") if name.strip()]


@dataclass
class ContinualConfig:
    """Configuration of a continual-SAC run (each field is a ``memrl train`` option)."""

    stream: str = "CW10"
    """Named task stream: CW10, CW20, PowerLaw, Cyclic, DMC6 (``STREAMS``; a stream's stages must
    each train one task with Box actions)."""
    tasks: str = ""
    """Comma-separated task names that replace the stream's tasks, e.g.
    "reach-v3,button-press-v3,drawer-close-v3"; a list name (CW10, MT40, ...) stands for its
    tasks; empty: the stream's own."""
    schedule: dict[str, Any] = field(default_factory=dict)
    """Replacement schedule, {"kind": ..., **parameters}, e.g. {"kind": "repeat", "times": 2};
    empty: the stream's own. scole (several tasks per stage) is not supported."""
    steps_per_task: int = 0
    """Env steps per stage (Continual World: 1,000,000); 0: the stream's own."""
    one_hot: str = ""
    """One-hot (so output head, entropy coefficient and evaluation column) per distinct "task",
    or per "stage" (a task's second stage is the task "<name>#2", as in Continual World's CW20);
    empty: the stream's own ("stage" for CW20, "task" otherwise)."""
    held_out: str = ""
    """Comma-separated tasks evaluated at every evaluation (and before training) but never
    trained, e.g. "door-open-v3,window-close-v3": the retention matrix's held-out columns and the
    report's held-out retention. They must fit the trained tasks' observation and action spaces,
    and need a task-agnostic agent, --no-multi-head with --hide-task-id (the default): a head or a
    one-hot input of their own would never be trained. Empty: none."""
    method: str = "finetune"
    """Continual-learning method: finetune, l2, ewc, packnet, replay (reservoir "perfect memory"),
    multitask (upper bound: all tasks interleaved episode by episode for the whole budget)."""
    seed: int = 0
    """Seed of the networks, the exploration, the replay sampling and the env."""
    eval_every: int = 20_000
    """Evaluate every task of the stream every this many env steps; must divide the steps per
    task, so that every task's window ends with an evaluation. Continual World's end-of-task
    values average the last 5 evaluations: give each window at least 5."""
    eval_episodes: int = 10
    """Episodes per task and evaluation (Continual World: 10)."""
    eval_deterministic: bool = False
    """Evaluate the mean action instead of sampling. Continual World's tables use stochastic
    evaluation (its test/stochastic/<task>/success logs), hence the default."""
    hidden_size: int = 256
    """Width of every hidden layer of the actor and the critics."""
    num_layers: int = 4
    """Hidden layers: Dense -> LayerNorm -> tanh, then Dense -> leaky-ReLU."""
    multi_head: bool = True
    """One output head per task, selected by the task one-hot (task-incremental)."""
    hide_task_id: bool = True
    """Feed the networks the observation without the task one-hot (Continual World's default; the
    one-hot then only selects the head and the entropy coefficient)."""
    learning_rate: float = 1e-3
    """Adam learning rate of the actor, the critics and the entropy coefficients."""
    batch_size: int = 128
    """Transitions per gradient step (replay: replay_batch_size instead)."""
    gamma: float = 0.99
    """Discount."""
    polyak: float = 0.995
    """Target critics: target <- polyak * target + (1 - polyak) * critic after every step."""
    buffer_size: int = 1_000_000
    """Replay capacity (FIFO, cleared at every task change)."""
    start_steps: int = 10_000
    """Uniform-random actions for the first this many steps of every task."""
    update_after: int = 1_000
    """First gradient step after this many steps of every task (less than the steps per task)."""
    update_every: int = 50
    """Every this many env steps, this many gradient steps."""
    target_output_std: float = 0.089
    """Entropy tuning targets this standard deviation per action dimension (Continual World:
    0.089, i.e. a target entropy of about -1 per dimension)."""
    reset_optimizer: bool = True
    """Fresh Adam state at every task change."""
    regularize_critic: bool = False
    """l2/ewc/packnet also protect the critics (Continual World: actor only)."""
    l2_coef: float = 1e5
    """l2: weight of the penalty sum_i (theta_i - theta*_i)^2."""
    ewc_coef: float = 1e4
    """ewc: weight of the penalty sum_i F_i (theta_i - theta*_i)^2."""
    ewc_fisher_batches: int = 10
    """ewc: batches of the previous task's replay that estimate the Fisher diagonal."""
    ewc_fisher_batch_size: int = 256
    """ewc: transitions per Fisher batch."""
    packnet_retrain_steps: int = -1
    """packnet: gradient steps that retrain the kept weights after each pruning; -1: a tenth of
    steps_per_task (Continual World: 100,000 for 1M steps per task)."""
    packnet_clipnorm: float = 2e-5
    """packnet: clip each gradient to this global norm (Continual World's PackNet runs); 0: none."""
    replay_batch_size: int = 512
    """replay: transitions per gradient step (Continual World's perfect memory: 512)."""
    replay_buffer_size: int = 0
    """replay: reservoir capacity; 0: the whole stream (perfect memory)."""
    checkpoint_every: int = 20_000
    """Save a checkpoint every this many env steps (and at the end)."""
    log_every: int = 1_000
    """Log training metrics every this many env steps."""
    tensorboard: bool = True
    """Also write TensorBoard events."""
    threads: int = 1
    """torch threads (1 is the fastest for batch-128 updates on this 2-core machine; 0: leave
    torch's default)."""

    def task_list(self) -> list[str]:
        """The replacement task names (empty: the stream's own)."""
        return _names(self.tasks)

    def held_out_list(self) -> list[str]:
        """The held-out task names (empty: none)."""
        return _names(self.held_out)

    def build_stream(self) -> Stream:
        """The stream this run trains on.

        Raises:
            ValueError: An unknown stream, task or schedule; the message names the allowed ones.
        """
        from memrl.streams import NAMED_STREAMS, make_stream

        if self.stream not in NAMED_STREAMS:
            raise ValueError(f"stream must be one of {list(NAMED_STREAMS)}, got {self.stream!r}")
        stream = make_stream(
            self.stream,
            tasks=self.task_list() or None,
            schedule=dict(self.schedule) or None,
            steps_per_task=self.steps_per_task or None,
            one_hot=self.one_hot or None,
            held_out=self.held_out_list() or None,
        )
        if self.task_list():  # name a custom task list by its tasks (and a stream other than CW10)
            tasks = " > ".join(self.task_list())
            name = tasks if self.stream == "CW10" else f"{self.stream} on {tasks}"
            if stream.held_out:
                name = f"{name} (held out: {', '.join(stream.held_out_names)})"
            stream = dataclasses.replace(stream, name=name)
        return stream

    def _check_types(self, name: Callable[[str], str]) -> None:
        """Raise ``ValueError`` for a field whose value is not of its declared type."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), hints[f.name]
            expected = typing.get_origin(kind) or kind
            if expected is float:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
            elif expected is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
            else:
                ok = isinstance(value, expected)
            if not ok:
                example = ' like {"kind": "repeat", "times": 2}' if f.name == "schedule" else ""
                raise ValueError(
                    f"{name(f.name)} must be {_TYPE_NAMES[expected]}{example}, got {value!r} "
                    f"({type(value).__name__})"
                )

    def validate(self, name: Callable[[str], str] = lambda field: field) -> None:
        """Raise ``ValueError`` naming any bad field and what is allowed.

        Args:
            name: How a message names a field: by default the field itself; ``memrl train`` passes
                its options (``eval_every`` -> ``--eval-every``).
        """
        self._check_types(name)
        if self.method not in METHODS:
            raise ValueError(
                f"{name('method')} must be one of {list(METHODS)}, got {self.method!r}"
            )
        positive = (
            "eval_every", "eval_episodes", "hidden_size", "num_layers", "batch_size",
            "buffer_size", "update_every", "ewc_fisher_batches", "ewc_fisher_batch_size",
            "replay_batch_size", "checkpoint_every", "log_every",
        )  # fmt: skip
        non_negative = ("steps_per_task", "seed", "start_steps", "update_after",
                        "replay_buffer_size", "threads")  # fmt: skip
        minimums = {**dict.fromkeys(positive, 1), **dict.fromkeys(non_negative, 0)}
        for key, minimum in minimums.items():  # the types are checked above
            if getattr(self, key) < minimum:
                raise ValueError(
                    f"{name(key)} must be an integer >= {minimum}, got {getattr(self, key)!r}"
                )
        if self.packnet_retrain_steps < -1:
            raise ValueError(
                f"{name('packnet_retrain_steps')} must be -1 (a tenth of "
                f"{name('steps_per_task')}) or >= 0, got {self.packnet_retrain_steps}"
            )
        for key in ("gamma", "polyak"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"{name(key)} must be in [0, 1], got {getattr(self, key)}")
        for key in ("learning_rate", "target_output_std"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{name(key)} must be > 0, got {getattr(self, key)}")
        for key in ("l2_coef", "ewc_coef", "packnet_clipnorm"):
            if not getattr(self, key) >= 0:
                raise ValueError(f"{name(key)} must be >= 0, got {getattr(self, key)}")
        if self.held_out_list() and (self.multi_head or not self.hide_task_id):
            raise ValueError(
                f"{name('held_out')} needs a task-agnostic agent (multi_head false and "
                "hide_task_id true: --no-multi-head --hide-task-id): a held-out task's own output "
                "head or one-hot input weights would never be trained, so its success would "
                "measure them"
            )
        stream = self.build_stream()
        if any(len(stage.task_ids) != 1 for stage in stream.timeline.stages):
            raise ValueError(
                f"{name('schedule')} must train one task per stage (sequential, repeat, cyclic, "
                f"power_law), got {stream.schedule.kind}: several tasks per stage have no "
                "Continual World windows"
            )
        if stream.steps_per_task % self.eval_every:
            raise ValueError(
                f"{name('eval_every')} must divide {name('steps_per_task')} "
                f"({stream.steps_per_task}) so that every task's window ends with an evaluation "
                f"(forgetting and the retention matrix read it), got {self.eval_every}; e.g. "
                f"--eval-every {suggested_eval_every(stream.steps_per_task)}"
            )
        if self.update_after >= stream.steps_per_task:
            raise ValueError(
                f"{name('update_after')} ({self.update_after}) must be less than "
                f"{name('steps_per_task')} ({stream.steps_per_task}): the first gradient step of "
                f"a task comes after {name('update_after')} of its steps, so this run would "
                f"learn nothing; e.g. --update-after {stream.steps_per_task // 10}"
            )
