"""CuedReach: the cue schedule, the reset protocol, oracles against memory-free policies.

The registry-wide contract (checkers, seeded rollouts, pickling, rendering) is in test_contract.py;
this file checks what is particular to CuedReach. Success rates below are measured on seeded
episodes, so they are exact for this Meta-World/MuJoCo version, and the thresholds leave margin.
"""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from collections.abc import Callable

import gymnasium
import numpy as np
import pytest

import memrl  # noqa: F401  (registers the ids)
from memrl.envs.cued_reach import GOAL, CuedReachEnv

pytestmark = pytest.mark.filterwarnings(
    # Meta-World's scripted policies warn about their own proportional gains; harmless.
    "ignore:Constant\\(s\\) may be too high:UserWarning"
)

ENV_ID = "memrl/CuedReach-v0"
EPISODES = 20

Policy = Callable[[np.ndarray, dict, CuedReachEnv], np.ndarray]


def _zero(obs: np.ndarray, memory: dict, env: CuedReachEnv) -> np.ndarray:
    return np.zeros(4, dtype=np.float32)


def _scripted(task: str, goal_of: Callable[[np.ndarray, dict, CuedReachEnv], np.ndarray]) -> Policy:
    """Meta-World's scripted expert for ``task``, fed the goal that ``goal_of`` names."""
    from metaworld.policies import ENV_POLICY_MAP

    expert = ENV_POLICY_MAP[task]()

    def policy(obs: np.ndarray, memory: dict, env: CuedReachEnv) -> np.ndarray:
        full = obs[:39].copy()
        full[GOAL] = goal_of(obs, memory, env)
        return expert.get_action(full)

    return policy


def _remembered_goal(obs: np.ndarray, memory: dict, env: CuedReachEnv) -> np.ndarray:
    return np.asarray(memory["goal"])  # a perfect memory of the cue


def _centre_of_goal_box(obs: np.ndarray, memory: dict, env: CuedReachEnv) -> np.ndarray:
    space = env._mw.goal_space
    return (space.low + space.high) / 2  # the best guess without memory


def _coast(obs: np.ndarray, memory: dict, env: CuedReachEnv) -> np.ndarray:
    """Memory-free: head for the goal while it is shown, then keep the hand's velocity."""
    hand, previous_hand = obs[0:3], obs[18:21]
    if np.any(obs[GOAL] != 0):
        direction = obs[GOAL] - hand
    else:
        direction = hand - previous_hand
        if np.abs(direction).max() < 1e-4:
            return np.zeros(4, dtype=np.float32)
    return np.append(direction / np.abs(direction).max(), 0.0).astype(np.float32)


def _goal_blind_sweep() -> Policy:
    """Trace a serpentine through the whole reach-v3 goal box, ignoring the goal."""
    waypoints = []
    for i, (x, y) in enumerate(
        [(-0.07, 0.825), (-0.07, 0.875), (0, 0.875), (0, 0.825), (0.07, 0.825), (0.07, 0.875)]
    ):
        low, high = (0.07, 0.28) if i % 2 == 0 else (0.28, 0.07)
        waypoints += [(x, y, low), (x, y, high)]
    path = np.array(waypoints)
    state = {"next": 0}

    def policy(obs: np.ndarray, memory: dict, env: CuedReachEnv) -> np.ndarray:
        if env._steps == 0:
            state["next"] = 0
        hand = obs[0:3]
        if state["next"] < len(path) - 1 and np.linalg.norm(path[state["next"]] - hand) < 0.02:
            state["next"] += 1
        delta = np.clip(30 * (path[state["next"]] - hand), -1, 1)
        return np.append(delta, 0.0).astype(np.float32)

    return policy


def _success_rate(policy: Policy, episodes: int = EPISODES, **kwargs) -> float:
    """Fraction of seeded episodes (seeds 100, 101, ...) whose last step has is_success."""
    env = gymnasium.make(ENV_ID, **kwargs)
    wins = 0
    for episode in range(episodes):
        obs, info = env.reset(seed=100 + episode)
        memory = info["memory"]
        while True:
            obs, _, terminated, truncated, info = env.step(policy(obs, memory, env.unwrapped))
            if terminated or truncated:
                break
        wins += bool(info["is_success"])
    env.close()
    return wins / episodes


# -- import and arguments -----------------------------------------------------------------------


def test_module_import_does_not_import_metaworld_or_mujoco():
    code = (
        "import sys, memrl.envs.cued_reach; "
        "print(','.join(m for m in ('mujoco', 'metaworld') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cue_steps": 0}, "cue_steps must be an integer in 1..199"),
        ({"cue_steps": 200}, "cue_steps must be an integer in 1..199"),
        ({"cue_steps": 30, "episode_length": 30}, "cue_steps must be an integer in 1..29"),
        ({"cue_steps": 2.5}, "cue_steps"),
        ({"cue_steps": True}, "cue_steps"),
        ({"task": "reach-v2"}, "task must be one of ['reach-v3', 'push-v3', 'pick-place-v3']"),
        ({"task": "door-open-v3"}, "task must be one of"),
        ({"reward_type": "shaped"}, "reward_type must be one of ['dense', 'sparse']"),
        ({"success": "always"}, "success must be one of ['ever', 'final']"),
        ({"episode_length": 1}, "episode_length must be an integer >= 2"),
        ({"hold_during_cue": "yes"}, "hold_during_cue must be True or False"),
        ({"cue_flag": 1}, "cue_flag must be True or False"),
        ({"render_mode": "human"}, "render_mode must be one of ['rgb_array', 'ansi']"),
        ({"width": 0}, "width must be a positive integer"),
    ],
)
def test_bad_keywords_raise(kwargs, message):
    with pytest.raises(ValueError) as error:
        CuedReachEnv(**kwargs)
    assert message in str(error.value)


def test_step_before_reset_raises():
    env = CuedReachEnv()
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.step(env.action_space.sample())


# -- the cue ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cue_steps", [1, 3, 10])
@pytest.mark.parametrize("cue_flag", [False, True])
def test_goal_is_visible_in_exactly_cue_steps_observations(cue_steps, cue_flag):
    """Observation t (the reset one is t=0) shows the goal iff t < cue_steps."""
    env = gymnasium.make(ENV_ID, cue_steps=cue_steps, cue_flag=cue_flag)
    assert env.observation_space.shape == ((40,) if cue_flag else (39,))
    obs, info = env.reset(seed=1)
    goal = np.array(info["memory"]["goal"])
    assert info["memory"]["cue_steps"] == cue_steps
    env.action_space.seed(1)
    for t in range(cue_steps + 6):
        visible = t < cue_steps
        if visible:
            np.testing.assert_array_equal(obs[GOAL], goal)
        else:
            np.testing.assert_array_equal(obs[GOAL], 0.0)
        assert info["cue_visible"] is visible
        if cue_flag:
            assert obs[39] == float(visible)
        obs, _, _, _, info = env.step(env.action_space.sample())


def test_goal_lies_in_metaworlds_goal_box_and_is_never_zero():
    env = gymnasium.make(ENV_ID)
    env.reset(seed=0)
    space = env.unwrapped._mw.goal_space
    for _ in range(20):
        _, info = env.reset()
        goal = np.array(info["memory"]["goal"])
        assert space.contains(goal)
        assert goal[1] >= 0.8  # so the zeros of a hidden goal cannot be mistaken for a goal


@pytest.mark.parametrize("hold", [True, False])
def test_hold_during_cue_ignores_actions_while_the_goal_is_shown(hold):
    cue_steps = 5
    moved = gymnasium.make(ENV_ID, cue_steps=cue_steps, hold_during_cue=hold)
    still = gymnasium.make(ENV_ID, cue_steps=cue_steps, hold_during_cue=hold)
    assert moved.reset(seed=4)[1]["action_ignored"] is True
    still.reset(seed=4)
    push = np.array([1.0, 1.0, 1.0, 1.0], dtype=np.float32)
    for _ in range(cue_steps):
        obs_moved, reward_moved, *_, info_moved = moved.step(push)
        obs_still, reward_still, *_, info_still = still.step(np.zeros(4, dtype=np.float32))
        # info["action_ignored"]: the held steps' actions change nothing.
        assert info_moved["action_ignored"] is info_still["action_ignored"] is hold
        if hold:
            assert np.array_equal(obs_moved, obs_still) and reward_moved == reward_still
    assert np.array_equal(obs_moved, obs_still) is hold
    # After the cue, actions move the arm either way.
    obs_moved, *_, info_moved = moved.step(push)
    obs_still = still.step(np.zeros(4, dtype=np.float32))[0]
    assert not np.array_equal(obs_moved[:3], obs_still[:3])
    assert info_moved["action_ignored"] is False


# -- seeding and the reset protocol -------------------------------------------------------------


def test_seed_makes_episodes_reproducible_and_different_seeds_differ():
    def episode(seed: int) -> list[bytes]:
        env = gymnasium.make(ENV_ID)
        obs, info = env.reset(seed=seed)
        out = [obs.tobytes(), repr(info["memory"]).encode()]
        rng = np.random.default_rng(0)  # the same actions for every seed
        for _ in range(60):
            obs, reward, *_ = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
            out += [obs.tobytes(), np.float64(reward).tobytes()]
        return out

    assert episode(5) == episode(5)
    assert episode(5)[1] != episode(6)[1], "two seeds gave the same goal"


def test_resets_without_a_seed_draw_fresh_goals():
    env = gymnasium.make(ENV_ID)
    _, info = env.reset(seed=0)
    goals = [tuple(info["memory"]["goal"])]
    for _ in range(10):
        _, info = env.reset()
        goals.append(tuple(info["memory"]["goal"]))
    assert len(set(goals)) == len(goals)


def test_positions_equal_metaworlds_own_seeding():
    """reset(seed=s) places puck and goal as Meta-World's env.seed(s); env.reset() does."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    raw = ALL_V3_ENVIRONMENTS["reach-v3"]()
    raw._set_task_called = True
    raw._freeze_rand_vec = False
    raw.seeded_rand_vec = True
    raw.seed(9)
    env = gymnasium.make(ENV_ID)
    env.reset(seed=9)
    for _ in range(3):  # the first episode and the unseeded ones after it
        raw.reset()
        np.testing.assert_array_equal(env.unwrapped.goal, raw._target_pos)
        np.testing.assert_array_equal(env.unwrapped._mw.obj_init_pos, raw.obj_init_pos)
        env.reset()


# -- observations, rewards, episode end ---------------------------------------------------------


def test_observations_stay_in_bounds_without_being_clipped():
    """The finite bounds hold what Meta-World emits: the clip changes nothing in practice."""
    env = gymnasium.make(ENV_ID)
    space = env.observation_space
    assert np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))
    env.action_space.seed(2)
    obs, _ = env.reset(seed=2)
    for _ in range(2 * 200):
        assert space.contains(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        emitted = env.unwrapped._mw._last_stable_obs
        np.testing.assert_array_equal(obs[:36], emitted[:36])
        if terminated or truncated:
            obs, _ = env.reset()


def test_is_success_is_a_bool_on_every_step_and_ever_never_drops():
    env = gymnasium.make(ENV_ID)
    policy = _scripted("reach-v3", _remembered_goal)
    obs, info = env.reset(seed=0)
    memory, previous = info["memory"], False
    for _ in range(200):
        obs, _, terminated, truncated, info = env.step(policy(obs, memory, env.unwrapped))
        assert type(info["is_success"]) is bool
        assert info["is_success"] >= previous
        previous = info["is_success"]
    assert truncated and not terminated and info["is_success"]


def test_sparse_reward_is_one_exactly_on_successful_steps():
    env = gymnasium.make(ENV_ID, reward_type="sparse")
    policy = _scripted("reach-v3", _remembered_goal)
    obs, info = env.reset(seed=0)
    memory, rewards = info["memory"], []
    for _ in range(200):
        obs, reward, _, _, info = env.step(policy(obs, memory, env.unwrapped))
        assert reward == float(info["success"])
        rewards.append(reward)
    assert 0 < sum(rewards) < 200


def test_dense_reward_is_metaworlds():
    env = gymnasium.make(ENV_ID)
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(20):
        _, reward, _, _, info = env.step(env.action_space.sample())
        assert reward == info["unscaled_reward"] and 0 <= reward <= 10


def test_episode_length_truncates_the_unwrapped_env_past_metaworlds_limit():
    env = CuedReachEnv(episode_length=600, cue_steps=10)  # Meta-World alone raises at 500
    env.reset(seed=0)
    for t in range(1, 601):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert not terminated
        assert truncated is (t == 600)


# -- memory: an oracle against memory-free policies --------------------------------------------


def test_oracle_with_the_remembered_goal_succeeds():
    rate = _success_rate(_scripted("reach-v3", _remembered_goal))
    assert rate >= 0.9, rate  # measured: 20/20


@pytest.mark.parametrize("success", ["ever", "final"])
def test_memory_free_policies_mostly_fail(success):
    centre = _success_rate(_scripted("reach-v3", _centre_of_goal_box), success=success)
    stay = _success_rate(_zero, success=success)
    current = _success_rate(_scripted("reach-v3", lambda obs, m, e: obs[GOAL]), success=success)
    # measured, ever and final alike: centre 4/20, stay 0/20, expert on the bare obs 0/20
    assert centre <= 0.4 and stay <= 0.1 and current <= 0.1, (centre, stay, current)


def test_hold_during_cue_closes_the_momentum_loophole():
    """Without the hold, the arm's velocity carries the goal's direction past the cue."""
    free_arm = _success_rate(_coast, hold_during_cue=False, success="ever")
    held_arm = _success_rate(_coast, hold_during_cue=True, success="ever")
    assert free_arm >= 0.5 and held_arm <= 0.1, (free_arm, held_arm)  # measured 19/20, 0/20


def test_a_goal_blind_sweep_passes_ever_success_but_not_final():
    """Why success="final" (or the return) is the sound measure of memory on CuedReach."""
    ever = _success_rate(_goal_blind_sweep(), success="ever")
    final = _success_rate(_goal_blind_sweep(), success="final")
    assert ever >= 0.6 and final <= 0.2, (ever, final)  # measured 19/20, 1/20


@pytest.mark.parametrize("task", ["push-v3", "pick-place-v3"])
def test_other_tasks_oracle_succeeds(task):
    rate = _success_rate(_scripted(task, _remembered_goal), episodes=10, task=task)
    assert rate >= 0.9, rate


# -- pickling and rendering ---------------------------------------------------------------------


@pytest.mark.parametrize("task", ["reach-v3", "push-v3", "pick-place-v3"])
@pytest.mark.parametrize("clone", [pickle.loads, copy.deepcopy])
def test_copies_continue_identically_across_the_cue_and_episode_ends(task, clone):
    kwargs = {"task": task, "cue_steps": 4, "episode_length": 12}
    env = gymnasium.make(ENV_ID, max_episode_steps=12, **kwargs)
    env.reset(seed=3)
    env.action_space.seed(3)
    for _ in range(2):
        env.step(env.action_space.sample())
    twin = clone(pickle.dumps(env)) if clone is pickle.loads else clone(env)
    for _ in range(30):
        action = env.action_space.sample()
        a, b = env.step(action), twin.step(action)
        assert a[0].tobytes() == b[0].tobytes() and a[1:4] == b[1:4]
        assert a[4]["is_success"] == b[4]["is_success"]
        if a[2] or a[3]:
            assert env.reset()[0].tobytes() == twin.reset()[0].tobytes()


def test_an_env_never_reset_pickles():
    env = gymnasium.make(ENV_ID)
    twin = pickle.loads(pickle.dumps(env))
    assert twin.reset(seed=1)[0].tobytes() == env.reset(seed=1)[0].tobytes()


def _green_pixels(frame: np.ndarray) -> int:
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    return int(np.sum((g > 150) & (r < 100) & (b < 100)))


def test_rgb_array_draws_the_goal_only_while_cued():
    env = gymnasium.make(ENV_ID, render_mode="rgb_array", width=160, height=120, cue_steps=2)
    env.reset(seed=1)
    cued = env.render()
    assert cued.shape == (120, 160, 3) and cued.dtype == np.uint8
    env.step(np.zeros(4, dtype=np.float32))
    env.step(np.zeros(4, dtype=np.float32))
    hidden = env.render()
    assert _green_pixels(cued) > 5 and _green_pixels(hidden) == 0
    twin = pickle.loads(pickle.dumps(env))  # the GL context stays behind; the copy makes its own
    np.testing.assert_array_equal(twin.render(), hidden)
    env.close()
    twin.close()


def test_several_envs_render_in_one_process_without_crosstalk():
    first = gymnasium.make(ENV_ID, render_mode="rgb_array", width=96, height=96)
    second = gymnasium.make(ENV_ID, render_mode="rgb_array", width=96, height=96)
    first.reset(seed=1)
    second.reset(seed=2)
    before = first.render()
    second.render()
    after = first.render()
    np.testing.assert_array_equal(before, after)
    assert not np.array_equal(before, second.render())
    first.close()
    second.close()


def test_ansi_reports_step_hand_goal_and_distance():
    env = gymnasium.make(ENV_ID, render_mode="ansi", cue_steps=1)
    env.reset(seed=0)
    text = env.render()
    assert text.startswith("step 0/200 | hand (") and "cued" in text and "distance" in text
    env.step(np.zeros(4, dtype=np.float32))
    assert "goal hidden" in env.render()
