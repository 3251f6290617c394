"""L2M's 16 dm_control tasks: flat observations of fixed size, seeding, episodes, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from memrl.streams import DMC16, get_task
from memrl.streams.dm_control_env import DMControlTaskEnv

# Flattened observation size and action size of every task (dm-control 1.0.28).
DIMS = {
    "cartpole-balance": (5, 1),
    "finger-turn_easy": (12, 2),
    "finger-turn_hard": (12, 2),
    "fish-upright": (21, 5),
    "hopper-stand": (15, 4),
    "pendulum-swingup": (3, 1),
    "point_mass-easy": (4, 2),
    "reacher-hard": (6, 2),
    "walker-stand": (24, 6),
    "walker-run": (24, 6),
    "ball_in_cup-catch": (8, 2),
    "cartpole-swingup": (5, 1),
    "cheetah-run": (17, 6),
    "finger-spin": (9, 2),
    "reacher-easy": (6, 2),
    "walker-walk": (24, 6),
}


def test_the_table_covers_the_catalogue():
    assert set(DIMS) == set(DMC16)


@pytest.mark.parametrize("name", DMC16)
def test_task_builds_and_steps_with_fixed_dims(name):
    env = get_task(name).make(seed=0)
    obs_size, action_size = DIMS[name]
    assert env.observation_space.shape == (obs_size,)
    assert env.action_space.shape == (action_size,)
    assert env.action_space.dtype == np.float32
    obs, info = env.reset()
    assert info["memory"] == {"task": name}
    assert obs.shape == (obs_size,) and obs.dtype == np.float64
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs.shape == (obs_size,) and obs in env.observation_space
        assert 0.0 <= reward <= 1.0 and not (terminated or truncated)
        assert info["is_success"] is False


def test_seeding_matches_construction_seed_and_repeats():
    built = DMControlTaskEnv("reacher", "easy", seed=7)
    reseeded = DMControlTaskEnv("reacher", "easy", seed=0)
    a, _ = built.reset()
    b, _ = reseeded.reset(seed=7)
    assert np.array_equal(a, b)
    c, _ = reseeded.reset(seed=8)
    assert not np.array_equal(a, c)
    # A reset without a seed continues the task's generator.
    reseeded.reset(seed=7)
    assert np.array_equal(built.reset()[0], reseeded.reset()[0])


def test_episode_is_1000_steps_then_reset_needed():
    from gymnasium.error import ResetNeeded

    env = DMControlTaskEnv("pendulum", "swingup", seed=0, success_return=0.0)
    env.reset()
    for step in range(1, 1001):
        _, _, terminated, truncated, info = env.step(np.zeros(1, np.float32))
        assert not terminated and truncated == (step == 1000)
    assert info["is_success"] is True  # threshold 0: any return passes
    with pytest.raises(ResetNeeded):
        env.step(np.zeros(1, np.float32))


def test_pickled_env_continues_identically():
    env = DMControlTaskEnv("cheetah", "run", seed=1)
    env.reset()
    for _ in range(5):
        env.step(env.action_space.sample())
    clone = pickle.loads(pickle.dumps(env))
    rng = np.random.default_rng(0)
    for _ in range(20):
        action = rng.uniform(-1, 1, 6).astype(np.float32)
        a, b = env.step(action), clone.step(action)
        assert np.array_equal(a[0], b[0]) and a[1] == b[1]


def test_bad_arguments():
    with pytest.raises(ValueError, match="domain-task must be one of"):
        DMControlTaskEnv("cheetah", "fly")
    with pytest.raises(ValueError, match="success_return"):
        DMControlTaskEnv("cheetah", "run", success_return=float("nan"))
    with pytest.raises(ValueError, match="success_return must be a finite number or None, got '1'"):
        DMControlTaskEnv("cheetah", "run", success_return="1")
    with pytest.raises(ValueError, match="width must be an integer >= 1, got 0"):
        DMControlTaskEnv("cheetah", "run", width=0)
    # cheetah has 2 cameras: an out-of-range id would make MuJoCo end the process when rendering.
    with pytest.raises(ValueError, match=r"one of the model's 2 cameras \(0..1\), got 5"):
        DMControlTaskEnv("cheetah", "run", camera_id=5)


def test_frames_larger_than_the_models_offscreen_buffer_are_whole():
    # dm_control's models size their offscreen buffer 640x480; a larger frame must not be cropped.
    env = DMControlTaskEnv("cheetah", "run", render_mode="rgb_array", width=800, height=600)
    env.reset(seed=0)
    frame = env.render()
    env.close()
    assert frame.shape == (600, 800, 3)
    assert frame[:, 700:].any() and frame[:100].any()  # right and top strips are drawn


def test_renders():
    env = DMControlTaskEnv("cartpole", "balance", seed=0, render_mode="ansi")
    env.reset()
    env.step(env.action_space.sample())
    assert env.render().startswith("cartpole-balance | step 1/1000")
