"""DelayedMatch: the documented timeline and rewards, an oracle, memory-free baselines at chance.

The per-env contract (checkers, determinism, batched == SyncVectorEnv) is in test_contract.py.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import memrl  # noqa: F401  (registers the ids)
from memrl.envs.delayed_match import DelayedMatchEnv
from memrl.envs.delayed_match_vector import BatchedDelayedMatchEnv

ENV_ID = "memrl/DelayedMatch-v0"


def _make_vec(num_envs: int, **kwargs) -> gymnasium.vector.VectorEnv:
    return gymnasium.make_vec(
        ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
    )


def _batched_success_rate(num_symbols: int, delay: int, policy: str, episodes: int) -> float:
    """Success rate of a memory-free policy, over whole batches of synchronised episodes.

    Every DelayedMatch episode lasts ``delay + 2`` steps, so all sub-environments end together and
    are reset together (by ``reset(seed=...)``, one seed per batch).
    """
    num_envs = 250
    env = _make_vec(num_envs, num_symbols=num_symbols, delay=delay)
    rng = np.random.default_rng(123)
    successes = []
    for batch in range(episodes // num_envs):
        obs, _ = env.reset(seed=1000 * batch)
        last_seen = np.zeros(num_envs, dtype=np.int64)
        for _ in range(delay + 2):
            shown = obs[:, :num_symbols]
            last_seen = np.where(shown.any(axis=1), shown.argmax(axis=1), last_seen)
            random = rng.integers(num_symbols, size=num_envs)
            actions = random if policy == "random" else last_seen
            obs, reward, terminated, truncated, info = env.step(actions)
        assert terminated.all() and not truncated.any()
        np.testing.assert_array_equal(reward, info["is_success"])
        successes.append(info["is_success"])
    return float(np.mean(np.concatenate(successes)))


def test_timeline_observations_and_rewards():
    num_symbols, delay = 5, 6
    env = gymnasium.make(ENV_ID, num_symbols=num_symbols, delay=delay)
    obs, info = env.reset(seed=0)
    cue = info["memory"]["cue"]
    assert info["memory"] == {"cue": cue, "delay": delay, "num_symbols": num_symbols}
    assert obs.shape == (num_symbols + 3,) and obs.dtype == np.float32
    assert obs[cue] == 1 and obs.sum() == 2 and obs[num_symbols] == 1  # cue + cue flag
    assert (info["answer"], info["action_ignored"]) == (cue, True)
    for _ in range(delay):
        obs, reward, terminated, truncated, info = env.step(0)
        ignored = {"answer": cue, "action_ignored": True}
        assert (reward, terminated, truncated, info) == (0.0, False, False, ignored)
        assert obs[num_symbols + 1] == 1 and obs[:num_symbols].sum() == 1  # a distractor
    obs, reward, terminated, _, info = env.step(0)  # the action on the last distractor is ignored
    assert reward == 0.0 and not terminated and info["action_ignored"]
    query = np.zeros(num_symbols + 3, dtype=np.float32)
    query[num_symbols + 2] = 1
    np.testing.assert_array_equal(obs, query)  # the query carries nothing about the cue
    obs, reward, terminated, truncated, info = env.step(cue)
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["is_success"] is True and info["memory"]["cue"] == cue
    assert (info["answer"], info["action_ignored"]) == (cue, False)
    np.testing.assert_array_equal(obs, query)


@pytest.mark.parametrize("delay", [0, 1, 17])
def test_episode_lasts_delay_plus_two_and_wrong_answers_score_zero(delay):
    env = DelayedMatchEnv(num_symbols=3, delay=delay)
    for seed in range(10):
        _, info = env.reset(seed=seed)
        wrong = (info["memory"]["cue"] + 1) % 3
        steps, terminated = 0, False
        while not terminated:
            _, reward, terminated, truncated, info = env.step(wrong)
            steps += 1
            assert not truncated
        assert steps == delay + 2
        assert reward == 0.0 and info["is_success"] is False


def test_without_distractors_the_delay_is_blank():
    env = DelayedMatchEnv(num_symbols=4, delay=5, distractors=False)
    env.reset(seed=0)
    for _ in range(5):
        obs, *_ = env.step(0)
        assert obs[:4].sum() == 0 and obs[4 + 1] == 1


def test_distractors_are_uniform_over_all_symbols():
    """Distractors include the cue: their statistics say nothing about it."""
    env = DelayedMatchEnv(num_symbols=4, delay=4000)
    _, info = env.reset(seed=1)
    counts = np.zeros(4)
    for _ in range(4000):
        obs, *_ = env.step(0)
        counts += obs[:4]
    assert counts[info["memory"]["cue"]] > 800
    assert np.all(np.abs(counts / 4000 - 0.25) < 0.03)


@pytest.mark.parametrize("delay", [0, 10, 300, 4096])
def test_oracle_reading_the_memory_succeeds(delay):
    num_envs, batches = 100, 3
    env = _make_vec(num_envs, num_symbols=8, delay=delay)
    for batch in range(batches):
        _, info = env.reset(seed=batch)
        cue = info["memory"]["cue"]
        for _ in range(delay + 2):
            _, reward, terminated, _, info = env.step(cue)
        assert terminated.all() and info["is_success"].all() and (reward == 1).all()


def test_oracle_single_env_at_a_long_delay():
    env = gymnasium.make(ENV_ID, delay=5000)
    _, info = env.reset(seed=0)
    cue = info["memory"]["cue"]
    steps, terminated = 0, False
    while not terminated:
        _, reward, terminated, _, info = env.step(cue)
        steps += 1
    assert steps == 5002 and reward == 1.0 and info["is_success"]


@pytest.mark.parametrize("policy", ["random", "last_symbol"])
def test_memory_free_policies_sit_at_chance(policy):
    rate = _batched_success_rate(num_symbols=4, delay=8, policy=policy, episodes=2000)
    assert abs(rate - 0.25) < 0.03, rate


def test_batched_info_matches_sync_vector_env_at_every_step():
    kwargs = {"num_symbols": 3, "delay": 2}
    batched = _make_vec(3, **kwargs)
    sync = gymnasium.make_vec(ENV_ID, num_envs=3, vectorization_mode="sync", **kwargs)
    _, info_b = batched.reset(seed=4)
    _, info_s = sync.reset(seed=4)
    _assert_info_equal(info_b, info_s)
    cue = info_b["memory"]["cue"]
    np.testing.assert_array_equal(info_b["answer"], cue)
    for step in range(12):  # answers on steps 4 and 9, automatic resets on steps 5 and 10
        actions = np.array([0, 1, 2])
        *_, info_b = batched.step(actions)
        *_, info_s = sync.step(actions)
        assert ("is_success" in info_s) == (step in (3, 8))
        assert ("memory" in info_s) == (step in (3, 4, 8, 9))
        _assert_info_equal(info_b, info_s)
        if step in (4, 9):  # an automatic reset: the new cue, and its action was ignored
            cue = info_b["memory"]["cue"]
        np.testing.assert_array_equal(info_b["answer"], cue)
        np.testing.assert_array_equal(info_b["action_ignored"], [step not in (3, 8)] * 3)


def _assert_info_equal(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        if isinstance(a[key], dict):
            _assert_info_equal(a[key], b[key])
        else:
            assert a[key].dtype == b[key].dtype, key
            np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("cls", [DelayedMatchEnv, BatchedDelayedMatchEnv])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_symbols": 1}, "num_symbols must be an integer >= 2, got 1"),
        ({"num_symbols": 2.5}, "num_symbols must be an integer >= 2, got 2.5"),
        ({"num_symbols": True}, "num_symbols must be an integer >= 2, got True"),
        ({"delay": -1}, r"delay must be an integer >= 0 or a \[low, high\] pair .*, got -1"),
        ({"delay": "10"}, "delay must be an integer >= 0 .*, got '10'"),
        ({"delay": [8, 4]}, r"delay must be .*0 <= low <= high, got \[8, 4\]"),
        ({"delay": [1, 2, 3]}, r"delay must be .*, got \[1, 2, 3\]"),
        ({"delay": [1.0, 2]}, r"delay must be .*, got \[1.0, 2\]"),
        ({"distractors": "yes"}, "distractors must be True or False, got 'yes'"),
        ({"render_mode": "human"}, "render_mode must be one of"),
    ],
)
def test_bad_arguments_raise(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_registered_tiers():
    expected = {
        "memrl/DelayedMatch-v0": (4, 32),
        "memrl/DelayedMatch-Easy-v0": (4, 16),
        "memrl/DelayedMatch-Medium-v0": (8, 128),
        "memrl/DelayedMatch-Hard-v0": (16, 1024),
    }
    for env_id, (num_symbols, delay) in expected.items():
        env = gymnasium.make(env_id).unwrapped
        assert (env.num_symbols, env.delay) == (num_symbols, delay)
        assert gymnasium.spec(env_id).max_episode_steps is None
    assert gymnasium.make(ENV_ID, delay=1024).unwrapped.delay == 1024


def test_a_delay_range_draws_every_delay_and_episodes_last_delay_plus_two():
    env = DelayedMatchEnv(num_symbols=3, delay=[2, 5])
    seen = set()
    for episode in range(200):
        _, info = env.reset(seed=episode)
        delay = info["memory"]["delay"]
        assert env.delay == delay
        steps, terminated = 0, False
        while not terminated:
            _, _, terminated, _, step_info = env.step(0)
            steps += 1
        assert steps == delay + 2
        assert step_info["memory"]["delay"] == delay
        seen.add(delay)
    assert seen == {2, 3, 4, 5}


def test_a_delay_range_batched_matches_sync_vector_env():
    kwargs = {"num_symbols": 3, "delay": [0, 6]}
    batched = _make_vec(4, **kwargs)
    sync = gymnasium.make_vec(ENV_ID, num_envs=4, vectorization_mode="sync", **kwargs)
    obs_b, info_b = batched.reset(seed=11)
    obs_s, info_s = sync.reset(seed=11)
    np.testing.assert_array_equal(obs_b, obs_s)
    _assert_info_equal(info_b, info_s)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(60):  # episodes of different lengths end and reset at different steps
        actions = rng.integers(3, size=4)
        obs_b, rew_b, term_b, trunc_b, info_b = batched.step(actions)
        obs_s, rew_s, term_s, trunc_s, info_s = sync.step(actions)
        np.testing.assert_array_equal(obs_b, obs_s)
        np.testing.assert_array_equal(rew_b, rew_s)
        np.testing.assert_array_equal(term_b, term_s)
        _assert_info_equal(info_b, info_s)
        ends += int(term_s.sum())
    assert ends > 20


def test_a_fixed_delay_draws_as_before_a_range_was_possible():
    """A fixed delay consumes no randomness for it: seeded episodes stay what they were."""
    env = DelayedMatchEnv(num_symbols=4, delay=3)
    rng = np.random.default_rng(5)
    cue = int(rng.integers(4))
    distractors = 4 + rng.integers(4, size=3)
    obs, info = env.reset(seed=5)
    assert info["memory"]["cue"] == cue and obs[cue] == 1.0
    for k in range(3):
        obs, *_ = env.step(0)
        assert obs[distractors[k] - 4] == 1.0
