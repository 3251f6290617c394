"""ContinualEnv: switching at stage ends, task one-hot and padding, info, seeding, pickling.

Most checks run on the ``Recall`` stream of memrl's cheap memory envs; the Meta-World ones use a
few hundred steps.
"""

from __future__ import annotations

import itertools
import pickle
import warnings
from dataclasses import dataclass
from typing import ClassVar

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import memrl  # noqa: F401  (registers the ids)
from memrl.envs import STREAMS
from memrl.streams import CW10, NAMED_STREAMS, ContinualEnv, Schedule, make_stream

RECALL = NAMED_STREAMS["Recall"]["tasks"]


def _run(env: ContinualEnv, steps: int, seed: int = 0) -> list[dict]:
    """Random actions for ``steps`` steps across episodes; one record per reset and step."""
    env.action_space.seed(seed)
    obs, info = env.reset(seed=seed)
    records = [{"kind": "reset", "obs": obs, **_keep(info)}]
    for step in range(steps):
        stream_step = env.stream_step
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        records.append(
            {
                "kind": "step",
                "stream_step": stream_step,
                "obs": obs,
                "reward": reward,
                "end": terminated or truncated,
                "stage_end": info.get("stage_end", False),
                **_keep(info),
            }
        )
        if terminated or truncated:
            obs, info = env.reset()
            records.append({"kind": "reset", "obs": obs, "at": step + 1, **_keep(info)})
    return records


def _keep(info: dict) -> dict:
    return {"task": info["task"], "task_switch": info["task_switch"]}


def test_switches_at_stage_ends_with_exact_budgets():
    env = ContinualEnv("Recall", steps_per_task=50)
    timeline = env.timeline
    records = _run(env, 420)
    steps = [r for r in records if r["kind"] == "step"]
    for record in steps:
        stage = timeline.stage_at(record["stream_step"])
        assert record["task"]["stage"] == stage.index
        assert record["task"]["name"] == stage.tasks[0]
        assert record["stage_end"] == (record["stream_step"] + 1 == stage.end)
        if record["stage_end"]:
            assert record["end"], "a stage end must end the episode"
    # Switches happen at resets only, at stream steps that are multiples of the budget.
    resets = [r for r in records if r["kind"] == "reset"]
    switches = [r.get("at", 0) for r in resets if r["task_switch"]]
    changes = [0] + [s.start for a, s in itertools.pairwise(timeline.stages) if s.tasks != a.tasks]
    assert switches == [c for c in changes if c <= 420]
    # task_switch is also True on the first step of the new task's first episode, only there.
    flagged = [r["stream_step"] for r in steps if r["task_switch"]]
    assert flagged == switches


def test_one_hot_and_padding():
    env = ContinualEnv("Recall", steps_per_task=30, task_one_hot=True)
    space = env.observation_space
    assert isinstance(space, gymnasium.spaces.Box)
    assert space.shape == (77 + 4,) and space.dtype == np.float32
    assert np.all(space.low[77:] == 0) and np.all(space.high[77:] == 1)
    for record in _run(env, 200):
        obs, index = record["obs"], record["task"]["index"]
        assert obs in space
        np.testing.assert_array_equal(obs[77:], np.eye(4)[index])
        if record["task"]["name"].startswith("memrl/DelayedMatch"):
            assert not obs[7:77].any()  # 7 observed entries, then zero padding


def test_reset_info_names_the_task_and_memory():
    env = ContinualEnv("Recall", steps_per_task=30)
    _, info = env.reset(seed=0)
    first = env.timeline.stages[0].tasks[0]
    assert info["task"] == {"name": first, "index": RECALL.index(first), "stage": 0}
    assert info["task_switch"] is True
    assert info["memory"]["task"] == first and info["memory"]["stage"] == 0
    assert info["memory"]["episode"] is not None  # the memory env's own


def test_seeded_runs_repeat_and_differ_across_seeds():
    def make() -> ContinualEnv:
        return ContinualEnv(
            "Recall", schedule={"kind": "scole", "num_stages": 20}, steps_per_task=40
        )

    def flat(records: list[dict]) -> list:
        return [(r["obs"].tobytes(), r["task"]["name"]) for r in records]

    first, second, other = (
        _run(make(), 300, seed=3),
        _run(make(), 300, seed=3),
        _run(make(), 300, seed=4),
    )
    assert flat(first) == flat(second)
    assert flat(first) != flat(other)
    # scole stages train two tasks: both occur within stages.
    per_stage: dict[int, set[str]] = {}
    for r in first:
        per_stage.setdefault(r["task"]["stage"], set()).add(r["task"]["name"])
    assert any(len(names) == 2 for names in per_stage.values())


def test_gymnasium_checker_passes_on_a_memory_stream():
    for one_hot in (False, True):
        env = ContinualEnv("Recall", steps_per_task=25, task_one_hot=one_hot)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env, skip_render_check=True)


def test_pickled_stream_continues_identically_across_switches():
    env = ContinualEnv("Recall", steps_per_task=20, task_one_hot=True)
    env.reset(seed=1)
    env.action_space.seed(1)
    for _ in range(15):
        env.step(env.action_space.sample())
    clone = pickle.loads(pickle.dumps(env))
    for _ in range(150):
        action = env.action_space.sample()
        a, b = env.step(action), clone.step(action)
        assert np.array_equal(a[0], b[0]) and a[1:4] == b[1:4] and a[4]["task"] == b[4]["task"]
        if a[2] or a[3]:
            ra, rb = env.reset(), clone.reset()
            assert np.array_equal(ra[0], rb[0]) and ra[1]["task"] == rb[1]["task"]


@dataclass(frozen=True)
class _Stages(Schedule):
    kind: ClassVar[str] = "fixed"
    order: tuple[int, ...] = (0, 0, 1)

    def stages(self, num_tasks: int) -> list[tuple[int, ...]]:
        return [(i,) for i in self.order]


def test_a_stage_that_keeps_the_task_is_no_switch_and_the_last_stage_lasts():
    env = ContinualEnv(
        stream=None,
        tasks=["memrl/DelayedMatch-Easy-v0", "memrl/DelayedMatch-v0"],
        schedule=_Stages(),
        steps_per_task=18,  # exactly one DelayedMatch-Easy episode per stage
    )
    records = _run(env, 18 * 3 + 100)
    resets = [r for r in records if r["kind"] == "reset"]
    assert [(r["task"]["stage"], r["task_switch"]) for r in resets[:3]] == [
        (0, True),
        (1, False),
        (2, True),
    ]
    assert all(r["task"]["stage"] == 2 for r in resets[3:])  # stays on the last stage
    assert env.finished
    assert not any(r.get("stage_end") for r in records if r.get("stream_step", 0) >= 36)


def test_stream_step_option_moves_the_stream():
    env = ContinualEnv("Recall", steps_per_task=30)
    _, info = env.reset(seed=0, options={"stream_step": 95})
    assert env.stream_step == 95 and info["task"]["stage"] == 3
    with pytest.raises(ValueError, match=r"reset options must be among \['stream_step'\]"):
        env.reset(options={"stage": 2})
    with pytest.raises(ValueError, match="stream_step must be an integer >= 0"):
        env.reset(options={"stream_step": -1})


def test_a_seeded_reset_at_stream_step_0_replays_the_stream():
    env = ContinualEnv("Recall", steps_per_task=30)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(100)]

    def play() -> list:
        _, info = env.reset(seed=3, options={"stream_step": 0})
        record = [(info["task"]["name"], info["task_switch"])]
        for action in actions:
            obs, reward, terminated, truncated, info = env.step(action)
            record.append((np.asarray(obs).tolist(), reward, info["task_switch"]))
            if terminated or truncated:
                _, info = env.reset()
                record.append((info["task"]["name"], info["task_switch"]))
        return record

    first = play()
    assert first[0][1]  # the first reset is a switch
    assert play() == first  # same tasks, observations, rewards and switch flags
    env.reset(seed=3, options={"stream_step": 0})
    _, info = env.reset(seed=3, options={"stream_step": 0})  # the same task as the last episode
    assert info["task_switch"]  # yet a seeded reset starts afresh, as the first one did


def test_cw10_switches_task_and_one_hot():
    env = gymnasium.make("memrl/ContinualWorld-CW10-v0", steps_per_task=200, task_one_hot=True)
    assert env.observation_space.shape == (49,)
    obs, info = env.reset(seed=0)
    assert info["task"]["name"] == "hammer-v3" and obs[39] == 1
    for step in range(200):
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        assert not terminated and truncated == (step == 199)
    assert info["stage_end"] and isinstance(info["is_success"], bool)
    obs, info = env.reset()
    assert info["task"] == {"name": "push-wall-v3", "index": 1, "stage": 1}
    assert info["task_switch"] and obs[40] == 1 and obs[39:].sum() == 1


def test_fixed_task_evaluates_one_task_in_the_stream_layout():
    env = ContinualEnv("CW20", task_one_hot=True, fixed_task="push-v3")
    obs, info = env.reset(seed=0)
    assert info["task"] == {"name": "push-v3", "index": 6, "stage": None}
    assert obs.shape == (59,) and obs[39 + 6] == 1
    for _ in range(3):
        obs, *_ = env.step(env.action_space.sample())
    assert env.current_task == "push-v3"


def test_held_out_tasks_follow_the_trained_ones_and_no_stage_trains_them():
    stream = make_stream(tasks=["memrl/DelayedMatch-Easy-v0", "memrl/KeyToDoor-v0"],
                         steps_per_task=40, held_out=["memrl/DelayedMatch-v0"])  # fmt: skip
    assert stream.task_names == ("memrl/DelayedMatch-Easy-v0", "memrl/KeyToDoor-v0")
    assert stream.layout_names == (*stream.task_names, "memrl/DelayedMatch-v0")
    assert stream.to_dict()["held_out"] == ["memrl/DelayedMatch-v0"]
    assert str(stream).endswith("held out: memrl/DelayedMatch-v0")
    env = ContinualEnv(stream, task_one_hot=True)
    assert env.task_names == stream.layout_names and env.observation_space.shape == (77 + 3,)
    records = _run(env, 120)
    assert {r["task"]["name"] for r in records} == set(stream.task_names)
    assert all(r["obs"][-1] == 0 for r in records)
    held = ContinualEnv(stream, task_one_hot=True, fixed_task="memrl/DelayedMatch-v0")
    obs, info = held.reset(seed=0)
    assert info["task"] == {"name": "memrl/DelayedMatch-v0", "index": 2, "stage": None}
    np.testing.assert_array_equal(obs[-3:], [0, 0, 1])
    # Named by the held-out tasks; a stream's held-out tasks can be replaced or removed.
    named = make_stream("CW10", held_out="door-open-v3")
    assert named.name == "CW10 (held out: door-open-v3)"
    assert make_stream(named, held_out=[]).held_out == ()
    assert make_stream(named, held_out=[]).name == "CW10"
    assert make_stream(named, held_out=["window-open-v3"]).name == "CW10 (held out: window-open-v3)"
    assert make_stream("CW10", held_out=iter(["door-open-v3"])).held_out_names == ("door-open-v3",)
    cw20 = make_stream("CW20", held_out=["door-open-v3"])  # after the 20 stage tasks
    assert cw20.layout_names[20:] == ("door-open-v3",) and len(cw20.task_names) == 20
    with pytest.raises(ValueError, match=r"must not be trained by the stream, but \['push-v3'\]"):
        make_stream("CW20", held_out=["push-v3"])  # push-v3 and push-v3#2 are trained
    with pytest.raises(
        ValueError, match=r"held_out tasks must be distinct, got \[.door-open-v3.\]"
    ):
        make_stream("CW10", held_out=["door-open-v3", "door-open-v3#2"])  # one env twice
    with pytest.raises(ValueError, match=r"must fit the spaces of the trained tasks.*\(6,\)"):
        ContinualEnv("CW10", held_out=["cheetah-run"])  # 6 actions where CW10 has 4


def test_cw20_gives_each_stage_its_own_task_as_continual_world():
    stream = make_stream("CW20", steps_per_task=3)
    assert stream.task_names == CW10 + tuple(f"{name}#2" for name in CW10)
    assert stream.one_hot == "stage" and stream.schedule.kind == "sequential"
    second = stream.task("hammer-v3#2")
    assert second.base_name == "hammer-v3" and second.kwargs == stream.task("hammer-v3").kwargs
    env = ContinualEnv(stream, task_one_hot=True)
    obs, info = env.reset(seed=0, options={"stream_step": 30})  # stage 10: hammer's second pass
    assert info["task"] == {"name": "hammer-v3#2", "index": 10, "stage": 10}
    assert obs.shape == (59,) and obs[39 + 10] == 1 and obs[39:].sum() == 1
    assert env.task_env("hammer-v3#2").unwrapped.task == "hammer-v3"
    env.close()
    # Laid out by task, the second pass keeps the first pass's tasks (and one-hots).
    by_task = make_stream("CW20", one_hot="task")
    assert by_task.task_names == CW10 and by_task.schedule.kind == "repeat"
    assert by_task.name == "CW20 (one_hot changed)"
    # Any one-task-per-stage schedule can be laid out by stage; a stage of several tasks cannot.
    cyclic = make_stream(tasks=["reach-v3", "push-v3"], schedule={"kind": "cyclic", "cycles": 2},
                         one_hot="stage")  # fmt: skip
    assert sorted(cyclic.task_names) == ["push-v3", "push-v3#2", "reach-v3", "reach-v3#2"]
    assert make_stream(stream).task_names == stream.task_names  # laying out again: no change
    assert make_stream(stream, steps_per_task=5).task_names == stream.task_names
    with pytest.raises(ValueError, match=r"laid out by stage, so its \['tasks'\] cannot"):
        make_stream(stream, tasks=["reach-v3"])  # the named stream's tasks=... is the way
    env = gymnasium.make("memrl/ContinualWorld-CW20-v0", one_hot="task", task_one_hot=True)
    assert env.observation_space.shape == (49,) and env.unwrapped.stream.one_hot == "task"
    env.close()
    with pytest.raises(ValueError, match="one_hot='stage' needs one task per stage"):
        make_stream("SCoLe", one_hot="stage")
    with pytest.raises(ValueError, match=r"one_hot must be one of \['task', 'stage'\]"):
        make_stream("CW10", one_hot="head")


def test_mixed_domains_pad_observations_and_actions():
    env = ContinualEnv(
        stream=None,
        tasks=["cartpole-balance", "reacher-easy", "push-v3"],
        steps_per_task=5,
        task_one_hot=True,
    )
    assert env.observation_space.shape == (39 + 3,)
    assert env.action_space.shape == (4,)
    records = _run(env, 15)
    seen = {r["task"]["name"]: r["obs"] for r in records if r["kind"] == "step"}
    assert set(seen) == {"cartpole-balance", "reacher-easy", "push-v3"}
    assert not seen["cartpole-balance"][5:39].any() and seen["cartpole-balance"][39] == 1
    assert not seen["reacher-easy"][6:39].any() and seen["reacher-easy"][40] == 1


def test_named_streams_and_registered_ids():
    for name in NAMED_STREAMS:
        stream = make_stream(name)
        assert stream.timeline.total_steps == len(stream.timeline.stages) * stream.steps_per_task
        assert str(stream).startswith(f"stream {name}")
    assert make_stream("CW20").timeline.total_steps == 20_000_000
    assert make_stream("PowerLaw").timeline.total_steps == 20_000_000
    assert set(STREAMS) == {
        "memrl/ContinualWorld-CW10-v0",
        "memrl/ContinualWorld-CW20-v0",
        "memrl/ContinualWorld-PowerLaw-v0",
    }
    assert all(entry.family == "streams" for entry in STREAMS.values())
    assert make_stream("CW10", steps_per_task=5).to_dict()["steps_per_task"] == 5
    # The name says which parts differ from the named stream's, and only those.
    assert make_stream("CW10", steps_per_task=5).name == "CW10 (steps_per_task changed)"
    assert make_stream("CW10", steps_per_task=1_000_000, tasks="CW10").name == "CW10"
    assert make_stream("CW20", schedule={"kind": "repeat", "times": 3}).name == (
        "CW20 (schedule changed)"
    )
    # A registered id takes the stream's own budget, also when another stream is asked for.
    env = gymnasium.make("memrl/ContinualWorld-CW10-v0", stream="PowerLaw")
    assert env.unwrapped.stream.name == "PowerLaw"
    assert env.unwrapped.stream.timeline.total_steps == 20_000_000
    env.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stream": "CW30"}, r"stream must be one of \['CW10', 'CW20', 'PowerLaw'"),
        ({"schedule": "random"}, r"schedule must be one of \['sequential', 'repeat'"),
        ({"steps_per_task": 0}, "steps_per_task must be an integer >= 1, got 0"),
        ({"steps_per_task": 2.5}, "steps_per_task must be an integer >= 1, got 2.5"),
        ({"tasks": ["push-v3", "pusher-v3"]}, "unknown task 'pusher-v3'"),
        ({"fixed_task": "reach-v3"}, "fixed_task must be one of the stream's tasks"),
        ({"task_one_hot": "yes"}, "task_one_hot must be True or False"),
        ({"render_mode": "human"}, "render_mode must be one of"),
        (
            {"tasks": ["memrl/DelayedMatch-Easy-v0", "memrl/DelayedMatch-Medium-v0"]},
            "action spaces must agree",
        ),
        (
            {"tasks": ["memrl/BalletGrid-2-delay16-v0", "memrl/DelayedMatch-v0"]},
            "observation spaces must be 1-D Boxes",
        ),
    ],
)
def test_bad_arguments_name_the_allowed_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ContinualEnv(**kwargs)
