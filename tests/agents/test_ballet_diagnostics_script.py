"""scripts/ballet_diagnostics.py: what each variant gives away, and when."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from memrl.envs.ballet import timeline

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ballet_diagnostics.py"
_spec = importlib.util.spec_from_file_location("ballet_diagnostics", SCRIPT)
assert _spec and _spec.loader
diagnostics = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(diagnostics)


def _episode(variant: str, dancers: int, delay: int, seed: int) -> tuple[list[dict], dict]:
    env = diagnostics.make_variant(variant, dancers, delay)
    obs, info = env.reset(seed=seed)
    observations = [obs]
    for _ in range(info["memory"]["choice_step"] + 3):
        obs, *_ = env.step(0)
        observations.append(obs)
    return observations, info["memory"]


@pytest.mark.parametrize(("dancers", "delay"), [(2, 16), (4, 48)])
def test_dance_variant_names_each_dance_exactly_while_it_is_performed(dancers, delay):
    observations, memory = _episode("dance", dancers, delay, seed=3)
    shown = np.array([int(o["instruction"]) for o in observations])
    expected = np.zeros_like(shown)
    moves = timeline(dancers, delay)  # [dancers, 16]: the step of each move, from the env
    for k, dance in enumerate(memory["dances"]):
        expected[moves[k]] = dance + 1
    expected[memory["choice_step"] :] = memory["target_dance_index"] + 1  # the real instruction
    assert np.array_equal(shown, expected)


def test_target_variant_shows_the_target_slot_from_the_choice_step_on():
    observations, memory = _episode("target", 4, 16, seed=5)
    shown = [int(o["target"]) for o in observations]
    choice = memory["choice_step"]
    slot = diagnostics.DANCER_SLOTS.index(tuple(int(v) for v in memory["target_slot"])) + 1
    assert shown[:choice] == [0] * choice
    assert shown[choice:] == [slot] * (len(shown) - choice)


def test_first_solved_needs_a_sustained_average():
    steps = np.arange(1, 41) * 100
    success = np.r_[np.zeros(10), np.ones(30)]
    # the window ending at index 27 is the first with 18 ones among its 20 updates
    assert diagnostics.first_solved(steps, success) == steps[27]
    assert diagnostics.first_solved(steps, np.full(40, 0.5)) is None


def _instructions(env, seed: int | None) -> tuple[np.ndarray, bool]:
    """Play one episode of ``env`` to past its choice step: its instructions, and if hinted."""
    obs, info = env.reset(seed=seed)
    shown = [int(obs["instruction"])]
    for _ in range(info["memory"]["choice_step"] + 1):
        obs, *_ = env.step(0)
        shown.append(int(obs["instruction"]))
    return np.array(shown), info["hinted"]


def test_a_curriculum_shows_the_names_to_a_share_of_episodes_falling_to_0():
    assert [diagnostics.hint_probability(n, 400) for n in (0, 100, 400, 800)] == [1, 0.75, 0, 0]
    env = diagnostics.make_variant("none", curriculum=64 * 16, num_envs=16)
    named, _ = _instructions(diagnostics.make_variant("dance"), seed=9)
    plain, _ = _instructions(diagnostics.make_variant("none"), seed=9)
    first, hinted = _instructions(env, seed=9)  # the run's first steps: always shown
    assert hinted and np.array_equal(first, named)
    later, hinted = _instructions(env, seed=9)  # 64 steps in: 1,024 of the run's, all of it
    assert not hinted and np.array_equal(later, plain)
    halfway = diagnostics.make_variant("none", curriculum=1000, num_envs=10)
    halfway.steps = 50  # 500 of the run's steps
    shares = [halfway.reset(seed=None if i else 0)[1]["hinted"] for i in range(400)]
    assert 0.4 < np.mean(shares) < 0.6
    with pytest.raises(ValueError, match="variant 'none'"):
        diagnostics.make_variant("dance", curriculum=10)
