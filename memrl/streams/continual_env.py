"""ContinualEnv: one Gymnasium environment that follows a task stream through time."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium.error import ResetNeeded

from memrl.envs.actions import check_action
from memrl.streams.catalogue import Task
from memrl.streams.layout import StreamLayout, TaskSpaces, task_spaces
from memrl.streams.schedules import Schedule, Stage, Timeline
from memrl.streams.stream import Stream, make_stream

_RESET_OPTIONS = ("stream_step",)


def _check_held_out_fits(stream: Stream, described: Sequence[TaskSpaces]) -> None:
    """Refuse held-out tasks that would change the spaces the trained tasks share.

    They are evaluated in the layout that the agent trains in, so they must not widen it (a longer
    observation or another action space would change the agent, i.e. what is learnt).
    """
    trained = StreamLayout(stream.task_names, described[: len(stream.tasks)])
    full = StreamLayout(stream.layout_names, described)
    same_observations = (
        trained.observation_space.shape == full.observation_space.shape
        and trained.observation_space.dtype == full.observation_space.dtype
    )
    if not same_observations or trained.action_space != full.action_space:
        raise ValueError(
            f"held_out tasks must fit the spaces of the trained tasks (observations "
            f"{_brief(trained.observation_space)}, actions {trained.action_space}), but with "
            f"{list(stream.held_out_names)} they become {_brief(full.observation_space)} and "
            f"{full.action_space}: hold out tasks of the same kind as the trained ones"
        )


def _brief(space: gymnasium.Space) -> str:
    """A space without its bounds (a Box's shape and dtype)."""
    if isinstance(space, gymnasium.spaces.Box):
        return f"Box({space.shape}, {space.dtype})"
    return str(space)


class ContinualEnv(gymnasium.Env[Any, Any]):
    """A stream of tasks as one environment: the task changes as training proceeds.

    ## Description

    Follows a stream (`memrl.streams.make_stream`): a list of distinct tasks, a schedule that
    orders them into stages, and `steps_per_task` environment steps per stage. Each episode is
    an episode of the current stage's task (for `scole` stages, of one of the stage's tasks,
    drawn uniformly at each reset). Continual World's CW10 is the default: ten Meta-World tasks,
    one after the other, 1M steps each, 200-step episodes.

    **Switching.** The env counts every `step` (the stream step, kept across episodes and
    resets). A stage lasts exactly its `steps`. The stage, and so the task, is chosen at
    `reset`, from the stream step. If a stage's budget runs out in the middle of an episode, that
    step returns `truncated=True` with `info["stage_end"] = True`, and the next `reset()` starts
    the next stage: every switch happens at an episode boundary and every stage gets exactly its
    budget (with 200-step episodes and budgets that are multiples of 200, as in Continual World,
    no episode is cut). After the last stage the env stays on it.

    ## Observation Space

    The tasks' observation spaces in one layout (`memrl.streams.layout`): 1-D `Box` spaces
    padded with zeros to the longest (bounds: element-wise union), otherwise the tasks' common
    space. With `task_one_hot=True` the one-hot of the task's index in `task_names` is appended
    (the last `num_tasks` entries of a `Box`, or a `"task"` key). For CW10 and PowerLaw:
    Meta-World's `Box(39,)` float64, or `Box(49,)` with the one-hot; for CW20 `Box(59,)`: as in
    Continual World, each of its 20 stages is a task of its own with its own one-hot (the second
    pass's tasks are named `"hammer-v3#2"`, ...; `stream=make_stream("CW20", one_hot="task")`
    gives the 10-task layout in which a re-occurring task keeps its one-hot).

    ## Action Space

    The tasks' common action space, or (for 1-D `Box` spaces of different widths) a `Box` as
    wide as the widest of which each task takes its first `d` components. For Meta-World
    streams: `Box(-1, 1, (4,), float32)`. An action outside this space raises `ValueError`
    (`memrl.envs.actions.check_action`: a `Box` action of another shape or with a NaN or
    infinite entry, a `Discrete` one that is not an integer in range), before the task sees it.

    ## Rewards

    The current task's reward.

    ## Starting State

    The current task's. Seeding: `reset(seed=s)` seeds this env's generator, which draws one
    seed per task; each task's environment is reset with its seed the first time it is used
    after a seeded reset, and continues its own generator afterwards (so a task that recurs
    in a stream continues where it left off; in a stream laid out by stage, such as CW20, a
    later occurrence `"hammer-v3#2"` is a task of its own, with its own environment and seed).
    `scole` stages draw each episode's task from this env's generator. The schedule's own seed,
    not the reset seed, fixes the stages: the stream is part of the benchmark's definition. A
    seeded reset does not rewind the stream (its step is kept across resets):
    `reset(seed=s, options={"stream_step": 0})` replays it from the start, step for step.

    ## Episode End

    The current task's termination and truncation, plus the truncation at a stage end.
    `info` at every step and reset: `info["task"] = {"name", "index", "stage"}`;
    `info["task_switch"]` is True in the reset info that starts a new task (a task other than
    the previous episode's; the first reset counts) and at the first step of that episode;
    `info["is_success"]` is the task's (False when a stage end cuts the episode and the task
    did not report it). Under a Gymnasium vector env with next-step autoreset the reset info
    arrives as a step's info, so a switch is flagged on two consecutive steps of that env: to act
    once per switch, compare `info["task"]["index"]` with the previous step's.

    ## Arguments

    - `stream` (str, `Stream` or None, default `"CW10"`): a name in
      `memrl.streams.NAMED_STREAMS` (`CW10`, `CW20`, `PowerLaw`, `Cyclic`, `SCoLe`, `DMC6`,
      `Recall`), a `Stream`, or None to build one from `tasks` (sequential, 1M steps per task
      unless `schedule` and `steps_per_task` say otherwise).
    - `tasks`, `schedule`, `steps_per_task`, `one_hot`, `held_out`: replace that part of the
      stream (see `make_stream`), e.g. `steps_per_task=20_000`, `schedule={"kind": "power_law",
      "alpha": 0.5}`, `one_hot="task"` (CW20 with one one-hot per distinct task) or
      `held_out=["door-open-v3"]` (tasks that no stage trains, after the trained ones in
      `task_names` and the one-hot: run them with `fixed_task`; they must fit the trained
      tasks' observation length and action space).
    - `task_one_hot` (bool, default False): append the task one-hot to observations.
    - `fixed_task` (str or None): always run this task of the stream, trained or held out (in
      the stream's layout, one-hot included), ignoring the schedule; for evaluating every task of
      a stream with the policy trained on it. `info["task"]["stage"]` is then None.
    - `render_mode` (`"rgb_array"`, `"ansi"` or None): passed to the tasks' environments;
      `render()` renders the current task, at that task's frame size. `metadata["render_fps"]`
      is the first task's: streams of unlike tasks (DMC6, Recall) change frame size and rate
      at a switch, so record videos per task.

    `reset(options={"stream_step": n})` moves the stream to step `n` (e.g. to resume a run).

    ## Memory demand

    Across tasks: what was learnt on earlier stages must survive later ones (forgetting), and a
    recurring task should be picked up again. `info["memory"]` (at reset): `{"task": name,
    "task_index": i, "stage": s, "episode": <the task env's own info["memory"] or None>}`.

    ## Version History

    - v0: initial version.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array", "ansi"], "render_fps": 80}

    def __init__(
        self,
        stream: str | Stream | None = "CW10",
        *,
        tasks: str | Task | Iterable[str | Task] | None = None,
        schedule: str | Mapping[str, Any] | Schedule | None = None,
        steps_per_task: int | None = None,
        one_hot: str | None = None,
        held_out: str | Task | Iterable[str | Task] | None = None,
        task_one_hot: bool = False,
        fixed_task: str | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        if not isinstance(task_one_hot, bool | np.bool_):
            raise ValueError(f"task_one_hot must be True or False, got {task_one_hot!r}")
        self.stream = make_stream(
            stream,
            tasks=tasks,
            schedule=schedule,
            steps_per_task=steps_per_task,
            one_hot=one_hot,
            held_out=held_out,
        )
        self.task_names = self.stream.layout_names
        self.timeline: Timeline = self.stream.timeline
        self.task_one_hot = bool(task_one_hot)
        self.render_mode = render_mode
        self._fixed_task: int | None = None
        if fixed_task is not None:
            if fixed_task not in self.task_names:
                raise ValueError(
                    f"fixed_task must be one of the stream's tasks {list(self.task_names)} or "
                    f"None, got {fixed_task!r}"
                )
            self._fixed_task = self.task_names.index(fixed_task)
        described = [task_spaces(task) for task in self.stream.layout_tasks]
        if self.stream.held_out:
            _check_held_out_fits(self.stream, described)
        self.layout = StreamLayout(self.task_names, described, self.task_one_hot)
        self.observation_space = self.layout.observation_space
        self.action_space = self.layout.action_space
        fps = described[0].render_fps
        if fps is not None:
            self.metadata = {**self.metadata, "render_fps": fps}

        self._envs: list[gymnasium.Env | None] = [None] * len(self.task_names)
        self._env: gymnasium.Env | None = None
        self._stream_step = 0
        self._stage: Stage | None = None
        self._stage_end: int | None = None  # stream step that ends the episode's stage, if any
        self._task_id: int | None = None
        self._task_seeds: list[int] | None = None
        self._unseeded: set[int] = set()
        self._switch_pending = False
        self._task_info: dict[str, Any] = {}

    # -- the stream ------------------------------------------------------------------------------

    @property
    def num_tasks(self) -> int:
        """Number of distinct tasks, held-out ones included (the length of the one-hot)."""
        return len(self.task_names)

    @property
    def stream_step(self) -> int:
        """Environment steps taken so far in the stream."""
        return self._stream_step

    @property
    def stage(self) -> Stage | None:
        """The current episode's stage (None before the first reset or with ``fixed_task``)."""
        return self._stage

    @property
    def current_task(self) -> str | None:
        """The current episode's task (None before the first reset)."""
        return None if self._task_id is None else self.task_names[self._task_id]

    @property
    def finished(self) -> bool:
        """Whether the stream's total budget has been spent."""
        return self._stream_step >= self.timeline.total_steps

    def task_env(self, name: str) -> gymnasium.Env:
        """The environment of the stream's task ``name`` (built on first use)."""
        if name not in self.task_names:
            raise ValueError(
                f"task must be one of the stream's tasks {list(self.task_names)}, got {name!r}"
            )
        return self._task_env(self.task_names.index(name))

    def _task_env(self, task_id: int) -> gymnasium.Env:
        env = self._envs[task_id]
        if env is None:
            env = self.stream.layout_tasks[task_id].make(render_mode=self.render_mode)
            self._envs[task_id] = env
        return env

    # -- Gymnasium API ---------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an episode of the task the stream is at (see Switching)."""
        super().reset(seed=seed)
        if options:
            unknown = sorted(set(options) - set(_RESET_OPTIONS))
            if unknown:
                raise ValueError(
                    f"reset options must be among {list(_RESET_OPTIONS)}, got {unknown}"
                )
            if "stream_step" in options:
                step = options["stream_step"]
                if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
                    raise ValueError(f"stream_step must be an integer >= 0, got {step!r}")
                self._stream_step = operator.index(step)
        if seed is not None or self._task_seeds is None:
            self._task_id = None  # a seeded reset starts afresh: its task counts as a switch
            draws = self.np_random.integers(0, 2**31 - 1, size=self.num_tasks)
            self._task_seeds = [int(s) for s in draws]
            self._unseeded = set(range(self.num_tasks))

        if self._fixed_task is not None:
            stage, task_id, self._stage_end = None, self._fixed_task, None
        else:
            stage = self.timeline.stage_at(self._stream_step)
            if len(stage.task_ids) == 1:
                task_id = stage.task_ids[0]
            else:
                task_id = stage.task_ids[int(self.np_random.integers(len(stage.task_ids)))]
            is_last = stage.index == len(self.timeline.stages) - 1
            self._stage_end = None if is_last else stage.end
        switch = task_id != self._task_id
        env = self._task_env(task_id)
        task_seed = self._task_seeds[task_id] if task_id in self._unseeded else None
        self._unseeded.discard(task_id)
        obs, task_info = env.reset(seed=task_seed)

        self._env, self._task_id, self._stage = env, task_id, stage
        self._switch_pending = switch
        name = self.task_names[task_id]
        stage_index = None if stage is None else stage.index
        self._task_info = {"name": name, "index": task_id, "stage": stage_index}
        info = dict(task_info)
        info["memory"] = {
            "task": name,
            "task_index": task_id,
            "stage": stage_index,
            "episode": task_info.get("memory"),
        }
        info["task"] = dict(self._task_info)
        info["task_switch"] = switch
        return self.layout.observation(task_id, obs), info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step the current task; truncate if the stage's budget runs out."""
        env, task_id = self._env, self._task_id
        if env is None or task_id is None:
            raise ResetNeeded("Call reset() before step().")
        action = check_action(action, self.action_space)
        obs, reward, terminated, truncated, info = env.step(self.layout.action(task_id, action))
        self._stream_step += 1
        if self._stream_step == self._stage_end:
            info["stage_end"] = True
            if not (terminated or truncated):
                truncated = True
                info.setdefault("is_success", False)
        info["task"] = dict(self._task_info)  # a fresh dict: users keep infos
        info["task_switch"] = self._switch_pending
        self._switch_pending = False
        return self.layout.observation(task_id, obs), float(reward), terminated, truncated, info

    def render(self) -> Any:
        """Render the current task's environment."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; returning None.")
            return None
        if self._env is None:
            raise ResetNeeded("Call reset() before render().")
        return self._env.render()

    def close(self) -> None:
        """Close every task environment built so far."""
        for env in self._envs:
            if env is not None:
                env.close()
