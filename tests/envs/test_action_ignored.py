"""``info["action_ignored"]``: True exactly on the steps whose action cannot change anything.

Single envs: along seeded random trajectories, the env is cloned (pickled) before every step, once
per action; each clone takes its action and the outcomes are compared: the step's observation,
reward, termination, truncation and info, and the env's whole state afterwards (its pickle), on
which every later step depends. The flag must be True exactly where every action gives the same.

Batched envs: on flagged steps every action gives that sub-environment the same observation,
reward and ends, and unflagged steps where the action changes them occur. That the batched flags
equal the single env's seed by seed (autoreset steps included) is test_contract's comparison of
every batched env with ``SyncVectorEnv``. CuedReach (continuous, Meta-World) is checked in
test_cued_reach.py.
"""

from __future__ import annotations

import pickle

import gymnasium
import numpy as np
import pytest

import memrl  # noqa: F401  (registers the ids)
from memrl.envs.tvt import DISTRACTOR, FINAL, KEY, KeyToDoorEnv, PassiveVisualMatchEnv

# One id per family and variant whose ignored steps differ; episodes capped at MAX_STEPS steps.
IDS = [
    "memrl/BalletGrid-2-delay16-v0",
    "memrl/Ballet-2-delay16-v0",
    "memrl/RoomBallet-v0",
    "memrl/RoomBallet-Active-v0",
    "memrl/RoomBallet-ShortStay-v0",
    "memrl/DelayedMatch-Easy-v0",
    "memrl/KeyToDoor-v0",
    "memrl/PassiveVisualMatch-v0",
]
MAX_STEPS = 130


def _flat(obs) -> bytes:
    if isinstance(obs, dict):
        return b"".join(np.asarray(obs[k]).tobytes() for k in sorted(obs))
    return np.asarray(obs).tobytes()


def _step_clone(env: gymnasium.Env, action) -> tuple[bytes, float, bool, bool, bytes, bytes]:
    """Outcome of ``action`` on a copy of ``env``, and the copy's state afterwards."""
    clone = pickle.loads(pickle.dumps(env))
    obs, reward, terminated, truncated, info = clone.step(action)
    state = pickle.dumps(clone.unwrapped)
    return _flat(obs), float(reward), terminated, truncated, pickle.dumps(info), state


def _sub_outcome(outcome: tuple, i: int) -> tuple[bytes, float, bool, bool]:
    """Sub-environment ``i``'s part of a batched step's (obs, reward, terminated, truncated)."""
    obs, reward, terminated, truncated = outcome
    part = {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]
    return _flat(part), float(reward[i]), bool(terminated[i]), bool(truncated[i])


def check_single(env: gymnasium.Env, seed: int, max_steps: int = MAX_STEPS) -> list[bool]:
    """Play one seeded random episode checking the flag on every step; return the flags."""
    actions = range(env.action_space.n)
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed)
    assert info["action_ignored"] is True  # reset: no action was taken
    flags = []
    for t in range(1, max_steps + 1):
        outcomes = [_step_clone(env, a) for a in actions]
        same = all(o == outcomes[0] for o in outcomes)
        _, _, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        assert type(info["action_ignored"]) is bool
        assert info["action_ignored"] is same, f"step {t}: flag {info['action_ignored']}"
        flags.append(same)
        if terminated or truncated:
            break
    return flags


@pytest.mark.parametrize("env_id", IDS)
def test_single_env_flags_exactly_the_steps_where_no_action_changes_anything(env_id):
    env = gymnasium.make(env_id)
    flags = [flag for seed in range(3) for flag in check_single(env, seed)]
    assert any(flags) and not all(flags), "both kinds of step should occur"


def test_key_to_door_last_explore_step_counts_when_the_key_is_within_reach():
    """The teleport step ignores the action unless one move picks up the key."""
    from memrl.agents.scripted import first_move_towards

    for seed in range(5):
        # Walk to the key in a long explore phase to learn how many steps it takes ...
        env = KeyToDoorEnv(explore_steps=15)
        obs, info = env.reset(seed=seed)
        key = tuple(info["memory"]["key_position"].tolist())
        steps = 0
        while env.unwrapped._has_key is False:
            obs, *_ = env.step(first_move_towards(obs, key))
            steps += 1
        # ... then end the explore phase on that step: its move is the pickup.
        env = KeyToDoorEnv(explore_steps=steps)
        obs, _ = env.reset(seed=seed)
        for _ in range(steps - 1):
            obs, _, _, _, info = env.step(first_move_towards(obs, key))
            assert info["action_ignored"] is False
        assert env._cells[env._pos + env._moves[first_move_towards(obs, key)]] == KEY
        flags = []
        for action in range(4):
            clone = pickle.loads(pickle.dumps(env))
            _, _, _, _, info = clone.step(action)
            flags.append(info["action_ignored"])
            assert clone._phase == DISTRACTOR
        assert flags == [False] * 4


@pytest.mark.parametrize("apple_reward", [0.0, 0.03])
def test_an_apple_within_reach_on_the_last_distractor_step_counts_if_it_is_worth_something(
    apple_reward,
):
    env = PassiveVisualMatchEnv(
        explore_steps=2, distractor_steps=6, num_apples=44, apple_reward=apple_reward
    )
    env.reset(seed=0)
    # North to the top wall of the apple room, whose every free cell holds an apple: on the last
    # distractor step (step 8) apples lie east and west of the agent.
    for _ in range(7):
        _, _, _, _, info = env.step(0)
        assert info["action_ignored"] is (env._step == 2)  # the painting room has nothing
    assert env._phase == DISTRACTOR
    outcomes = {_step_clone(env, a) for a in range(4)}
    _, _, _, _, info = env.step(0)
    assert env._phase == FINAL
    assert info["action_ignored"] is (apple_reward == 0.0)
    assert (len(outcomes) == 1) is (apple_reward == 0.0)


@pytest.mark.parametrize("env_id", IDS)
def test_batched_env_flags_steps_whose_action_changes_nothing(env_id):
    num_envs = 3
    envs = gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    _, info = envs.reset(seed=11)
    np.testing.assert_array_equal(info["action_ignored"], [True] * num_envs)
    envs.action_space.seed(11)
    n = envs.single_action_space.n
    mattered = 0
    for step in range(2 * MAX_STEPS):
        outcomes = []
        for a in range(n):
            clone = pickle.loads(pickle.dumps(envs))
            outcomes.append(clone.step(np.full(num_envs, a))[:4])
        _, _, _, _, info = envs.step(envs.action_space.sample())
        flags = info["action_ignored"]
        assert flags.dtype == bool and flags.shape == (num_envs,)
        np.testing.assert_array_equal(info["_action_ignored"], [True] * num_envs)
        for i in range(num_envs):
            per_action = [_sub_outcome(outcome, i) for outcome in outcomes]
            same = all(p == per_action[0] for p in per_action)
            if flags[i]:
                assert same, f"step {step}, sub-environment {i}: flagged but the action mattered"
            mattered += not same
    assert mattered > 0
