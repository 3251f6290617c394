"""``memrl bench continual`` on tiny budgets: what is timed and the cost arithmetic, not speed."""

from __future__ import annotations

import json

import pytest

from memrl.bench.continual import continual_sac_rates, format_report, project_run_hours


def test_rates_time_every_phase_of_a_two_task_run():
    steps: list[int] = []
    rates = continual_sac_rates(
        "ewc", random_steps=20, learning_steps=30, eval_episodes=1, progress=steps.append
    )
    json.dumps(rates)  # plain data
    # 30 learning steps round up to one update period (50); the stream's last step is not taken.
    assert rates["steps"] == {"random": 20, "learning": 50, "per_task": 70}
    assert sum(steps) == 2 * 70 - 1
    assert rates["batch_size"] == 128
    assert rates["random_steps_per_s"] > 0
    assert rates["learning_steps_per_s"]["first_task"] > 0
    assert rates["learning_steps_per_s"]["later_tasks"] > 0
    assert len(rates["task_switch_seconds"]) == 1 and rates["eval_seconds_per_episode"] > 0
    report = {"methods": {"ewc": rates}, "projected_hours": {"a run": {"ewc": 1.5}}}
    text = format_report(report)
    assert "ewc" in text and "a run: ewc 1.5" in text


def test_multitask_is_one_segment_and_replay_uses_its_own_batch():
    tiny = {"random_steps": 10, "learning_steps": 50, "eval_episodes": 1}
    multitask = continual_sac_rates("multitask", **tiny)
    assert multitask["learning_steps_per_s"]["later_tasks"] is None
    assert multitask["task_switch_seconds"] == []
    report = {"methods": {"multitask": multitask}, "projected_hours": {}}
    assert "multitask" in format_report(report)
    replay = continual_sac_rates("replay", **tiny)
    assert replay["batch_size"] == 512


def _rates(method: str, later: float | None) -> dict:
    return {
        "method": method,
        "random_steps_per_s": 1000.0,
        "learning_steps_per_s": {"first_task": 50.0, "later_tasks": later},
        "eval_seconds_per_episode": 0.5,
    }


def test_projection_by_hand():
    # 2 tasks x 10,000 steps, 1,000 random steps each, 10 evaluations of 2 tasks x 10 episodes.
    random = 2 * 1_000 / 1000.0
    learning = 9_000 / 50.0 + 9_000 / 40.0
    evaluations = 10 * 2 * 10 * 0.5
    hours = project_run_hours(_rates("ewc", 40.0), 2, 10_000, 2_000)
    assert hours == pytest.approx((random + learning + evaluations) / 3600)
    # PackNet also retrains a tenth of steps_per_task gradient steps after every task but the
    # last, or packnet_retrain_steps when given.
    packnet = project_run_hours(_rates("packnet", 40.0), 2, 10_000, 2_000)
    assert packnet == pytest.approx(hours + 1_000 / 40.0 / 3600)
    packnet = project_run_hours(_rates("packnet", 40.0), 3, 10_000, 2_000, retrain_steps=400)
    three = project_run_hours(_rates("ewc", 40.0), 3, 10_000, 2_000)
    assert packnet == pytest.approx(three + 2 * 400 / 40.0 / 3600)
    # Evaluations cover the stream's distinct tasks, which a stream repeating tasks has fewer of.
    fewer = project_run_hours(_rates("ewc", 40.0), 2, 10_000, 2_000, evaluated_tasks=1)
    assert fewer == pytest.approx(hours - 10 * 1 * 10 * 0.5 / 3600)
    # Multitask: one segment, so random steps once and every other step at the first rate.
    multitask = project_run_hours(_rates("multitask", None), 2, 10_000, 2_000)
    expected = 1_000 / 1000.0 + 19_000 / 50.0 + evaluations
    assert multitask == pytest.approx(expected / 3600)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"method must be one of \['finetune'"):
        continual_sac_rates("si")
    with pytest.raises(ValueError, match="at least two tasks"):
        continual_sac_rates("finetune", tasks=("reach-v3",))
    with pytest.raises(ValueError, match="learning_steps must be >= 1"):
        continual_sac_rates("finetune", learning_steps=0)
