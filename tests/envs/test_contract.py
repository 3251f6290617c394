"""The per-environment contract of DESIGN.md, checked for every registered id.

A new environment is tested here the moment it enters a suite dictionary.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.wrappers import TimeAwareObservation
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import memrl
from memrl.envs import ALL

IDS = sorted(ALL)
VECTOR_IDS = sorted(i for i, e in ALL.items() if e.vector_entry_point)

# Warnings that are expected and harmless; anything else fails the checker tests.
EXPECTED_WARNINGS = (
    # Meta-World's own spaces are float64 with infinite bounds.
    "inf",
    "precision lowered",
)


def _rollout(env: gymnasium.Env, seed: int, steps: int) -> list[tuple]:
    """Reset with a seed, then take seeded random actions across episode ends."""
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    out = [_flat(obs)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        out.append((_flat(obs), float(reward), bool(terminated), bool(truncated)))
        if terminated or truncated:
            obs, _ = env.reset()
            out.append(_flat(obs))
    return out


def _flat(obs) -> tuple:
    if isinstance(obs, dict):
        return tuple((k, np.asarray(v).tobytes()) for k, v in sorted(obs.items()))
    return (np.asarray(obs).tobytes(),)


def _steps_for(env_id: str) -> int:
    return min(ALL[env_id].horizon + 20, 400)


def test_import_is_light():
    code = (
        "import sys, memrl; "
        "heavy = [m for m in ('torch', 'mujoco', 'metaworld', 'dm_control', 'ray') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import memrl imported {out.stdout.strip()}"


def test_every_suite_entry_is_registered():
    for env_id, entry in ALL.items():
        spec = gymnasium.spec(env_id)
        assert spec.entry_point == entry.entry_point
        assert spec.max_episode_steps == entry.max_episode_steps
    memrl.register_memrl_envs()  # idempotent


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_check_env(env_id):
    env = gymnasium.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped, skip_render_check=True)
    unexpected = [
        str(w.message) for w in caught if not any(e in str(w.message) for e in EXPECTED_WARNINGS)
    ]
    assert not unexpected, unexpected
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_sb3_check_env(env_id):
    env = gymnasium.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(env, warn=True)
    unexpected = [
        str(w.message) for w in caught if not any(e in str(w.message) for e in EXPECTED_WARNINGS)
    ]
    assert not unexpected, unexpected
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_seeded_rollouts_repeat_exactly(env_id):
    steps = _steps_for(env_id)
    first = _rollout(gymnasium.make(env_id), seed=7, steps=steps)
    second = _rollout(gymnasium.make(env_id), seed=7, steps=steps)
    other = _rollout(gymnasium.make(env_id), seed=8, steps=steps)
    assert first == second
    assert first != other, "different seeds gave identical rollouts"


@pytest.mark.parametrize("env_id", IDS)
def test_pickled_env_continues_identically(env_id):
    env = gymnasium.make(env_id)
    env.reset(seed=3)
    env.action_space.seed(3)
    for _ in range(5):
        env.step(env.action_space.sample())
    clone = pickle.loads(pickle.dumps(env))
    env.action_space.seed(11)
    for _ in range(30):
        a = env.action_space.sample()
        out_a = env.step(a)
        out_b = clone.step(a)
        assert _flat(out_a[0]) == _flat(out_b[0])
        assert out_a[1:4] == out_b[1:4]
        if out_a[2] or out_a[3]:
            env.reset()
            clone.reset()


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("render_mode", ["rgb_array", "ansi"])
def test_render(env_id, render_mode):
    env = gymnasium.make(env_id, render_mode=render_mode)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    if render_mode == "rgb_array":
        assert isinstance(frame, np.ndarray)
        assert frame.dtype == np.uint8
        assert frame.ndim == 3 and frame.shape[2] == 3
        assert frame.max() > frame.min(), "blank frame"
    else:
        assert isinstance(frame, str) and frame.strip()
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_info_reports_memory_and_success(env_id):
    env = gymnasium.make(env_id)
    _, info = env.reset(seed=0)
    assert "memory" in info, "reset info must say what the episode asks the agent to remember"
    env.action_space.seed(0)
    for _ in range(ALL[env_id].horizon + 1):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        if terminated or truncated:
            break
    assert terminated or truncated, "episode did not end within its horizon"
    assert "is_success" in info
    assert isinstance(info["is_success"], bool | np.bool_)


@pytest.mark.parametrize("env_id", VECTOR_IDS)
def test_batched_env_equals_sync_vector_env(env_id):
    """Observations, rewards, ends and infos of the batched form equal ``SyncVectorEnv``'s.

    Seeded random actions over about two episodes per sub-environment, with masked resets on the
    way (some reseeding some sub-environments), so that episode ends, automatic resets and
    masked resets fall on different steps in different sub-environments.
    """
    num_envs = 3
    batched = gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    reference = gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync")
    assert batched.single_observation_space == reference.single_observation_space
    assert batched.single_action_space == reference.single_action_space
    assert batched.metadata["autoreset_mode"] == reference.metadata["autoreset_mode"]
    _assert_same_reset(batched, reference, seed=42)
    batched.action_space.seed(5)
    steps = 2 * ALL[env_id].horizon + 10
    mask_1_2, mask_0 = np.array([False, True, True]), np.array([True, False, False])
    # Sub-environment 0 restarts one step after 1 and 2: in fixed-length episodes it then ends on
    # the very step they autoreset (a final-step info and reset infos, in that order, in one step).
    masked_resets = {
        steps // 3: {"seed": [100, 101, None], "options": {"reset_mask": mask_1_2}},
        steps // 3 + 1: {"seed": 7, "options": {"reset_mask": mask_0}},
    }
    ended = np.zeros(num_envs, dtype=int)
    for step in range(steps):
        if step in masked_resets:
            _assert_same_reset(batched, reference, **masked_resets[step])
        actions = batched.action_space.sample()
        out_b = batched.step(actions)
        out_r = reference.step(actions)
        assert _flat(out_b[0]) == _flat(out_r[0]), f"observations differ at step {step}"
        for name, b, r in zip(
            ("reward", "terminated", "truncated"), out_b[1:4], out_r[1:4], strict=True
        ):
            np.testing.assert_array_equal(b, r, err_msg=f"{name} at step {step}")
        _assert_vector_info_equal(out_b[4], out_r[4], f"step {step}")
        ended += out_b[2] | out_b[3]
    assert (ended >= 1).all(), f"some sub-environment never ended an episode: {ended}"
    assert batched.observation_space.contains(out_b[0])


def _assert_same_reset(batched, reference, **kwargs) -> None:
    obs_b, info_b = batched.reset(**kwargs)
    obs_r, info_r = reference.reset(**{**kwargs, "options": dict(kwargs.get("options") or {})})
    assert _flat(obs_b) == _flat(obs_r), f"observations differ after reset({kwargs})"
    _assert_vector_info_equal(info_b, info_r, f"reset({kwargs})")


def _assert_vector_info_equal(a: dict, b: dict, where: str) -> None:
    """Equal vector infos: same keys, ``_key`` masks, dtypes and values (objects compared by ==)."""
    assert sorted(a) == sorted(b), f"info keys differ at {where}"
    for key in a:
        if isinstance(b[key], dict):
            assert isinstance(a[key], dict), f"info[{key!r}] at {where}"
            _assert_vector_info_equal(a[key], b[key], f"{where}, info[{key!r}]")
            continue
        value_a, value_b = np.asarray(a[key]), np.asarray(b[key])
        assert value_a.dtype == value_b.dtype, f"dtype of info[{key!r}] at {where}"
        assert value_a.shape == value_b.shape, f"shape of info[{key!r}] at {where}"
        if value_b.dtype == object:
            assert value_a.tolist() == value_b.tolist(), f"info[{key!r}] at {where}"
        else:
            np.testing.assert_array_equal(value_a, value_b, err_msg=f"info[{key!r}] at {where}")


# -- reset(options={"reset_mask": ...}) ------------------------------------------------------------

MASKED_RESET_IDS = [
    "memrl/DelayedMatch-Easy-v0",
    "memrl/KeyToDoor-v0",
    "memrl/PassiveVisualMatch-v0",
    "memrl/RoomBallet-v0",
    "memrl/RoomBallet-Active-v0",
    "memrl/BalletGrid-2-delay16-v0",
]


@pytest.mark.parametrize("env_id", MASKED_RESET_IDS)
def test_masked_reset_leaves_the_other_sub_environments_alone(env_id):
    """A masked-out sub-environment carries on as if no reset had happened, seed or not."""
    masked = gymnasium.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point")
    untouched = gymnasium.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point")
    masked.reset(seed=0)
    untouched.reset(seed=0)
    masked.action_space.seed(1)
    for _ in range(5):
        actions = masked.action_space.sample()
        masked.step(actions)
        last, *_ = untouched.step(actions)
    mask = np.array([True, False, True])
    obs, info = masked.reset(seed=50, options={"reset_mask": mask})
    fresh, fresh_info = gymnasium.make_vec(env_id, num_envs=3).reset(seed=50)
    for key in _keys(obs):
        np.testing.assert_array_equal(_part(obs, key)[1], _part(last, key)[1])  # not reset
        for i in (0, 2):  # reset with seed 50 + i
            np.testing.assert_array_equal(_part(obs, key)[i], _part(fresh, key)[i])
    np.testing.assert_array_equal(info["_memory"], mask)
    for _ in range(ALL[env_id].horizon + 5):
        actions = masked.action_space.sample()
        obs, reward, terminated, truncated, _ = masked.step(actions)
        last, reward_u, terminated_u, truncated_u, _ = untouched.step(actions)
        for key in _keys(obs):
            np.testing.assert_array_equal(_part(obs, key)[1], _part(last, key)[1])
        assert (reward[1], terminated[1], truncated[1]) == (
            reward_u[1],
            terminated_u[1],
            truncated_u[1],
        )


def _keys(obs) -> list:
    return sorted(obs) if isinstance(obs, dict) else [None]


def _part(obs, key):
    return obs if key is None else obs[key]


@pytest.mark.parametrize("mode", ["vector_entry_point", "sync"])
def test_masked_reset_keeps_a_pending_autoreset_of_the_others(mode):
    env = gymnasium.make_vec("memrl/DelayedMatch-Easy-v0", num_envs=3, vectorization_mode=mode)
    env.reset(seed=0)
    for _ in range(ALL["memrl/DelayedMatch-Easy-v0"].horizon):  # every episode ends on the last
        *_, terminated, _, _ = env.step(np.zeros(3, dtype=np.int64))
    assert terminated.all()
    _, info = env.reset(options={"reset_mask": np.array([True, False, True])})
    np.testing.assert_array_equal(info["_memory"], [True, False, True])
    _, reward, terminated, truncated, info = env.step(np.zeros(3, dtype=np.int64))
    # Only sub-environment 1 is autoreset on this step; 0 and 2 take their first step.
    np.testing.assert_array_equal(info["_memory"], [False, True, False])
    assert reward[1] == 0 and not terminated.any() and not truncated.any()
    assert "is_success" not in info  # not the end of any episode


BAD_MASKS = [
    ([True, False, True], TypeError, "must be a numpy array"),
    (np.array([True, False]), ValueError, r"must have shape `\(3,\)`"),
    (np.array([1, 0, 1]), TypeError, "must have `dtype=np.bool_`"),
    (np.zeros(3, dtype=bool), ValueError, "at least one True value"),
]


@pytest.mark.parametrize(("mask", "error", "match"), BAD_MASKS)
@pytest.mark.parametrize("mode", ["vector_entry_point", "sync"])
def test_a_bad_reset_mask_raises_as_in_gymnasium(mode, mask, error, match):
    env = gymnasium.make_vec("memrl/DelayedMatch-Easy-v0", num_envs=3, vectorization_mode=mode)
    env.reset(seed=0)
    with pytest.raises(error, match=match):
        env.reset(options={"reset_mask": mask})


def test_masked_reset_leaves_the_options_dict_as_it_was():
    env = gymnasium.make_vec("memrl/DelayedMatch-Easy-v0", num_envs=3)
    env.reset(seed=0)
    options = {"reset_mask": np.array([False, True, False])}
    env.reset(options=options)
    env.reset(options=options)  # reusable, unlike Gymnasium 1.x's (it pops the mask)
    assert list(options) == ["reset_mask"]


def test_the_first_reset_must_reset_every_sub_environment():
    env = gymnasium.make_vec("memrl/DelayedMatch-Easy-v0", num_envs=3)
    with pytest.raises(gymnasium.error.ResetNeeded, match="first reset"):
        env.reset(options={"reset_mask": np.array([True, False, True])})
    env.reset(seed=0, options={"reset_mask": np.ones(3, dtype=bool)})  # a full mask is fine


# -- the action contract: an action outside the space is a ValueError naming space and value ------

CHEAP_IDS = {i for i, e in ALL.items() if "metaworld" not in e.tags}


def _bad_actions(space: gymnasium.Space) -> list[tuple[object, str]]:
    """Actions outside ``space``, each with the text the error message must show of it."""
    if isinstance(space, gymnasium.spaces.Discrete):
        n = int(space.n)
        return [
            (n, str(n)),  # out of range
            (99, "99"),
            (-1, "-1"),  # negative (KeyToDoor read it as action 3)
            (1.0, "1.0"),  # a float where an int is meant, even an integral one
            (np.float64(0.5), "0.5"),
            (True, "True"),  # a bool is not an action index
            (np.array([0]), "[0]"),  # wrong shape
        ]
    (width,) = space.shape
    nan = np.zeros(width, dtype=space.dtype)
    nan[1] = np.nan
    return [
        (np.zeros(width - 1, dtype=space.dtype), f"shape {(width - 1,)}"),  # wrong shape
        (np.zeros((1, width), dtype=space.dtype), f"shape {(1, width)}"),
        ([*space.high.tolist(), 0.0], f"shape {(width + 1,)}"),
        (nan, "nan"),
        (np.full(width, -np.inf, dtype=space.dtype), "-inf"),
        (np.zeros(width, dtype=bool), "dtype bool"),
    ]


def _good_action(space: gymnasium.Space, step: int) -> object:
    """A valid action in one of the forms agents pass: numpy ints, 0-d arrays, ints, lists."""
    action = space.sample()
    if isinstance(space, gymnasium.spaces.Discrete):
        forms = (np.int64, int, np.array, np.int32, np.uint8)
    else:
        forms = (np.asarray, list, lambda a: a.astype(np.float64))
    return forms[step % len(forms)](action)


def _episode_steps(env_id: str) -> int:
    """Steps to check: a whole episode (the answer step included) where steps are cheap."""
    return ALL[env_id].horizon if env_id in CHEAP_IDS else 25


@pytest.mark.parametrize("env_id", IDS)
def test_an_action_outside_the_space_raises_before_anything_changes(env_id):
    """Every bad action raises on every step; the episode then goes on as if it had not been sent.

    The env's outcomes with rejected actions sent before each valid one are compared with a
    replay of the valid actions alone from the same seed.
    """
    env = gymnasium.make(env_id)
    space = env.action_space
    env.action_space.seed(0)
    env.reset(seed=0)
    valid, outcomes = [], []
    for step in range(_episode_steps(env_id)):
        for action, shown in _bad_actions(space):
            with pytest.raises(ValueError) as error:
                env.step(action)
            message = str(error.value)
            assert str(space) in message and shown in message, (repr(action), message)
        valid.append(_good_action(space, step))
        obs, reward, terminated, truncated, _ = env.step(valid[-1])
        outcomes.append((hash(_flat(obs)), float(reward), terminated, truncated))
        if terminated or truncated:
            break
    env.reset(seed=0)
    assert [
        (hash(_flat(obs)), float(reward), terminated, truncated)
        for obs, reward, terminated, truncated, _ in map(env.step, valid)
    ] == outcomes


def _bad_batches(space: gymnasium.Space, num_envs: int) -> list[tuple[object, str]]:
    """Batches of actions outside the vector env's space, with the text the error must show."""
    if isinstance(space, gymnasium.spaces.Discrete):
        n = int(space.n)
        zeros = np.zeros(num_envs, dtype=np.int64)
        return [
            (zeros[:, None], "shape (2, 1)"),  # used to broadcast into a (2, 2) reward
            (np.int64(0), "shape ()"),
            (np.zeros(num_envs + 1, dtype=np.int64), "shape (3,)"),
            (np.array([0, n]), f"got {n}"),
            (np.array([0, 99]), "got 99"),
            (np.array([-1, 0]), "got -1"),
            (zeros.astype(np.float64), "dtype float64"),
            (zeros.astype(bool), "dtype bool"),
        ]
    # Gymnasium's SyncVectorEnv steps the sub-environments one by one: each checks its row.
    rows = np.zeros((num_envs, *space.shape), dtype=space.dtype)
    nan = rows.copy()
    nan[0, 0] = np.nan
    return [(rows[:, :1], "shape (1,)"), (nan, "nan"), (rows.astype(bool), "dtype bool")]


@pytest.mark.parametrize("env_id", IDS)
def test_a_batch_outside_the_space_raises_before_anything_changes(env_id):
    """``gymnasium.make_vec`` (the batched env where one is registered): bad batches raise."""
    num_envs = 2
    envs = gymnasium.make_vec(env_id, num_envs=num_envs)
    space = envs.single_action_space
    envs.action_space.seed(0)
    envs.reset(seed=0)
    valid, outcomes = [], []
    for step in range(_episode_steps(env_id) + 1):  # one autoreset step included
        for actions, shown in _bad_batches(space, num_envs):
            with pytest.raises(ValueError) as error:
                envs.step(actions)
            message = str(error.value)
            assert str(space) in message and shown in message, (repr(actions), message)
        actions = envs.action_space.sample()
        other = np.int32 if isinstance(space, gymnasium.spaces.Discrete) else np.float64
        valid.append(actions.astype(other) if step % 2 else actions.tolist())
        obs, reward, terminated, truncated, _ = envs.step(valid[-1])
        outcomes.append(
            (hash(_flat(obs)), reward.tolist(), terminated.tolist(), truncated.tolist())
        )
    envs.reset(seed=0)
    assert [
        (hash(_flat(obs)), reward.tolist(), terminated.tolist(), truncated.tolist())
        for obs, reward, terminated, truncated, _ in map(envs.step, valid)
    ] == outcomes


@pytest.mark.parametrize("stream", ["CW10", "DMC6"])
def test_the_tasks_of_a_stream_check_their_own_actions(stream):
    """Meta-World's and dm_control's task envs refuse bad actions themselves, outside a stream."""
    env = gymnasium.make("memrl/ContinualWorld-CW10-v0", stream=stream).unwrapped
    env.reset(seed=0)
    task = env.task_env(env.current_task)
    for action, shown in _bad_actions(task.action_space):
        with pytest.raises(ValueError) as error:
            task.step(action)
        assert str(task.action_space) in str(error.value) and shown in str(error.value)


def test_a_stream_checks_an_action_against_its_own_space_before_a_task_takes_its_part():
    """DMC6 pads actions to 6 and a task takes its first few: a 5-wide action is still wrong."""
    env = gymnasium.make("memrl/ContinualWorld-CW10-v0", stream="DMC6")
    env.reset(seed=0)
    stream = env.unwrapped
    assert stream.layout.pads_actions(stream.task_names.index(stream.current_task))
    with pytest.raises(ValueError, match=r"\(6,\) in Box\(-1.0, 1.0, \(6,\), float32\).*\(5,\)"):
        env.step(np.zeros(5, dtype=np.float32))
    env.step(np.zeros(6, dtype=np.float32))


BOX_IDS = sorted(i for i in IDS if i not in CHEAP_IDS)


@pytest.mark.parametrize("env_id", BOX_IDS)
def test_a_box_action_beyond_the_bounds_is_clipped(env_id):
    """Finite values outside ``[-1, 1]`` are accepted and act as the bound (Meta-World clips)."""
    env = gymnasium.make(env_id)
    high = env.action_space.high
    runs = []
    for scale in (1.0, 5.0):
        env.reset(seed=0)
        runs.append([_flat(env.step(scale * high)[0]) for _ in range(15)])  # 10 cue steps held
    assert runs[0] == runs[1]


# -- max_episode_steps ----------------------------------------------------------------------------

HORIZON_SET_BY_ARGUMENTS = {
    "delayed_match": "`delay` is varied (recall-vs-delay up to 4096, `--env-kwargs`, ranges)",
    "streams": "an episode is the current task's, and `stream=` / `tasks=` take any task",
}
"""Families registered without ``max_episode_steps``, and why (DESIGN.md: only fixed horizons)."""

FIXED_HORIZON_IDS = sorted(i for i in IDS if ALL[i].family not in HORIZON_SET_BY_ARGUMENTS)


def test_every_fixed_horizon_id_registers_its_horizon_as_max_episode_steps():
    for env_id, entry in ALL.items():
        expected = None if entry.family in HORIZON_SET_BY_ARGUMENTS else entry.horizon
        assert gymnasium.spec(env_id).max_episode_steps == expected, env_id


@pytest.mark.parametrize("env_id", FIXED_HORIZON_IDS)
def test_time_aware_observation_counts_the_steps_of_an_episode(env_id):
    """Gymnasium's ``TimeAwareObservation`` needs ``max_episode_steps``; it works on every id."""
    env = TimeAwareObservation(gymnasium.make(env_id), flatten=False)
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    assert env.observation_space.contains(obs) and obs["time"][0] == 0
    for step in range(1, ALL[env_id].horizon + 1):
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and obs["time"][0] == step
        if terminated or truncated:
            break
    assert terminated or truncated, "no episode end within max_episode_steps"
