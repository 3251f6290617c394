"""Scripted experts: quality levels, episode plans, task names and the success measurement."""

from __future__ import annotations

import numpy as np
import pytest

from memrl.data import QualityLevel, resolve_metaworld_tasks, scripted_success
from memrl.data.metaworld_experts import episode_plan
from memrl.streams import CW10, MT40

from .conftest import TASK


def test_scripted_success_per_level_and_weak_experts():
    report = scripted_success(
        TASK, episodes=2, noise_levels=[0.0], include_random=True, episode_length=40
    )
    assert report["success"] == {TASK: {"expert": 1.0, "random": 0.0}}
    assert report["weak_tasks"] == []
    # An expert episode stops at its first success; a random one runs to the end.
    assert 2 * 40 < report["env_steps"] < 4 * 40
    short = scripted_success(TASK, episodes=2, episode_length=5)
    assert short["success"] == {TASK: {"expert": 0.0}}
    assert short["weak_tasks"] == [TASK]


def test_episode_plan_shares_episodes_among_levels():
    plan = episode_plan(10, [0.0, 0.3, 1.0], random_fraction=0.25)  # 2.5 random: rounds up
    names = [level.name for level in plan]
    assert names == ["expert"] * 3 + ["noise-0.3"] * 2 + ["noise-1"] * 2 + ["random"] * 3
    assert [level.name for level in episode_plan(3, [0.0], 1.0)] == ["random"] * 3
    assert [level.name for level in episode_plan(2, [0.0, 0.5, 1.0], 0.0)] == [
        "expert",
        "noise-0.5",
    ]


def test_quality_levels_clip_and_add_noise():
    class Expert:
        def get_action(self, observation):
            return np.array([3.0, -0.2, 0.0, -5.0])

    rng = np.random.default_rng(0)
    expert = QualityLevel(0.0).act(Expert(), np.zeros(39), rng)
    assert expert.dtype == np.float32 and expert.tolist() == pytest.approx([1, -0.2, 0, -1])
    noisy = np.array([QualityLevel(0.2).act(Expert(), np.zeros(39), rng) for _ in range(2000)])
    assert np.all(np.abs(noisy) <= 1)
    assert noisy[:, 1].std() == pytest.approx(0.2, rel=0.1)
    random = np.array([QualityLevel(None).act(Expert(), np.zeros(39), rng) for _ in range(2000)])
    assert random.mean(axis=0) == pytest.approx([0, 0, 0, 0], abs=0.05)


def test_task_lists_expand_and_repeats_are_dropped():
    assert resolve_metaworld_tasks("CW10") == CW10
    assert resolve_metaworld_tasks(["MT40", "CW10", "hammer-v3"]) == MT40 + CW10
    assert resolve_metaworld_tasks("reach-v3") == ("reach-v3",)
    with pytest.raises(ValueError, match="at least one Meta-World task"):
        resolve_metaworld_tasks([])
