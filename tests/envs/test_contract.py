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
    num_envs = 5
    batched = gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    reference = gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync")
    assert batched.single_observation_space == reference.single_observation_space
    assert batched.single_action_space == reference.single_action_space
    obs_b, _ = batched.reset(seed=42)
    obs_r, _ = reference.reset(seed=42)
    assert _flat(obs_b) == _flat(obs_r)
    batched.action_space.seed(5)
    ended = 0
    for step in range(ALL[env_id].horizon + 40):
        actions = batched.action_space.sample()
        obs_b, rew_b, term_b, trunc_b, _ = batched.step(actions)
        obs_r, rew_r, term_r, trunc_r, _ = reference.step(actions)
        assert _flat(obs_b) == _flat(obs_r), f"observations differ at step {step}"
        np.testing.assert_array_equal(rew_b, rew_r)
        np.testing.assert_array_equal(term_b, term_r)
        np.testing.assert_array_equal(trunc_b, trunc_r)
        ended += int(np.sum(term_b | trunc_b))
    assert ended >= num_envs, "the comparison did not cover episode ends and autoresets"
    assert batched.observation_space.contains(obs_b)
