"""``memrl bench l2m`` on a tiny model and budget: what is timed and the cost arithmetic."""

from __future__ import annotations

import json

import pytest

from memrl.bench.l2m import bench_l2m, format_report, project_offline_run_hours
from memrl.cli import main

TINY_MODEL = {"embed_dim": 16, "num_layers": 1, "num_heads": 2}


def test_every_step_of_the_pipeline_is_timed():
    steps: list[str] = []
    report = bench_l2m(
        episodes_per_task=1, pretrain_updates=3, batch_size=8, updates_per_task=2,
        agents=("ft", "l2m", "multitask"), eval_episodes=1, action_repeats=2, model=TINY_MODEL,
        progress=steps.append,
    )  # fmt: skip
    json.dumps(report)  # plain data
    assert steps == ["data collection", "pretraining", "action latency", "evaluation",
                     "fine-tuning updates"]  # fmt: skip
    assert len(report["load_average"]["before"]) == 3 and report["load_average"]["after"]
    collection = report["collection"]
    assert collection["steps"] == 2 * 200 and collection["steps_per_s_wall"] > 0
    pretraining = report["pretraining"]
    assert pretraining["tokens_per_update"] == 8 * 3 * 5  # 3 tokens per step, 5 steps
    assert pretraining["tokens_per_s_wall"] > 0 and pretraining["tokens_per_s_cpu"] > 0
    latency = [(row["agent"], row["num_envs"]) for row in report["action_latency"]]
    assert latency == [("frozen model", 1), ("frozen model", 10), ("l2m", 1), ("l2m", 10)]
    assert report["evaluation"]["cpu_seconds_per_episode"] > 0
    agents = report["agents"]
    assert list(agents) == ["ft", "l2m", "multitask"]
    assert agents["ft"]["updates"] == 4 and len(agents["ft"]["updates_per_s_wall"]) == 2
    assert agents["ft"]["task_end_cpu_seconds"] >= 0
    assert len(agents["multitask"]["updates_per_s_wall"]) == 1  # one segment
    assert all(report["projected_hours"][agent] > 0 for agent in agents)
    text = format_report(report)
    assert "pretraining (" in text and "tokens/s" in text and "multitask" in text


def test_projection_by_hand():
    rates = {"agents": {"ft": {"updates_per_s_cpu": 20.0}, "l2m": {"updates_per_s_cpu": 10.0}},
             "evaluation": {"cpu_seconds_per_episode": 0.5}}  # fmt: skip
    # 10 tasks x 2,000 updates; 1 + 10 x 5 evaluations of 15 tasks x 10 episodes.
    evaluations = 51 * 15 * 10 * 0.5
    assert project_offline_run_hours(rates, "ft") == pytest.approx((1_000 + evaluations) / 3600)
    # l2m: its identity keys' 1,000 updates too.
    assert project_offline_run_hours(rates, "l2m") == pytest.approx(
        (2_000 + 100 + evaluations) / 3600
    )
    assert project_offline_run_hours(rates, "ft", num_tasks=2, updates_per_task=100,
                                     evaluations_per_task=1, evaluated_tasks=3,
                                     eval_episodes=0) == pytest.approx(10 / 3600)  # fmt: skip
    # The agent's end of every task (EWC's Fisher) when it was measured.
    rates["agents"]["ft"]["task_end_cpu_seconds"] = 3.0
    assert project_offline_run_hours(rates, "ft") == pytest.approx(
        (1_000 + 30 + evaluations) / 3600
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least two tasks"):
        bench_l2m(tasks=("hammer-v3",))
    with pytest.raises(ValueError, match="pretrain_updates must be >= 1, got 0"):
        bench_l2m(pretrain_updates=0)


def test_the_command_checks_its_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "l2m", "--agents", "sgd"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'sgd'" in capsys.readouterr().err
