"""The trainer on a tiny two-task Meta-World stream: resets, evaluation log, resume, config errors.

Each run is 2 x 300 env steps with 16-unit nets and one evaluation episode per task (a few seconds).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from memrl.agents.continual import (
    METHODS,
    ContinualConfig,
    EvaluationLog,
    load_continual_agent,
    train_continual,
)
from memrl.agents.continual.config import STREAMS, suggested_eval_every
from memrl.agents.continual.trainer import ContinualTrainer
from memrl.eval.continual import (
    evaluate_continual,
    evaluate_continual_runs,
    evaluation_history,
    load_evaluation_history,
    retention_matrix,
)
from memrl.eval.metrics import EvaluationHistory, continual_world_metrics
from memrl.eval.reference_curves import save_reference_curves

from .conftest import tiny_config


def _assert_same_networks(agent, other) -> None:
    """Every network of two agents holds the same values, bit for bit."""
    for name, module in agent.modules().items():
        for (key, value), theirs in zip(
            module.state_dict().items(), other.modules()[name].state_dict().values(), strict=True
        ):
            assert torch.equal(value, theirs), f"{name}.{key} differs"


@pytest.fixture(scope="module")
def finetune_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("finetune")
    train_continual(tiny_config(), run_dir, progress=False)
    return run_dir


def test_replay_and_optimisers_are_reset_at_the_task_switch(tmp_path):
    trainer = ContinualTrainer(tiny_config(), tmp_path, progress=False)
    trainer.train(stop_at=300)  # the whole first task
    assert len(trainer.buffer) == 300
    assert trainer.agent.actor_optimizer.state  # Adam has moments
    first_actor = trainer.agent.actor_optimizer
    trainer.step()  # the first step of task 1
    assert trainer.segment_index == 1
    assert len(trainer.buffer) == 1  # only the new task's transition
    assert trainer.buffer.observations[0, -2:].tolist() == [0.0, 1.0]  # task 1's one-hot
    assert trainer.agent.actor_optimizer is not first_actor
    for optimizer in trainer.agent.optimizers.values():
        assert not optimizer.state  # fresh Adam
    trainer.close()


def test_replay_method_keeps_its_buffer_across_the_switch(tmp_path):
    trainer = ContinualTrainer(tiny_config(method="replay"), tmp_path, progress=False)
    trainer.train(stop_at=301)
    assert len(trainer.buffer) == 301 and trainer.buffer.capacity == 600  # the whole stream
    trainer.close()


def test_the_evaluation_log_has_evaluation_historys_layout(finetune_run):
    log = EvaluationLog.load(finetune_run)
    assert log.steps == [150, 300, 450, 600] and log.finished
    assert log.task_names == ("reach-v3", "button-press-v3") and log.schedule == (0, 1)
    history = load_evaluation_history(finetune_run)
    assert isinstance(history, EvaluationHistory)
    # The evaluation exactly at the switch (step 300) belongs to the task that just finished.
    np.testing.assert_array_equal(history.window_success(0), np.asarray(log.success)[:2, 0])
    np.testing.assert_array_equal(history.window_success(1), np.asarray(log.success)[2:, 1])
    metrics = continual_world_metrics([history, history])
    assert 0 <= metrics.performance.mean <= 1
    with (finetune_run / "metrics.csv").open() as f:
        header = next(csv.reader(f))
    for task in log.task_names:
        assert f"eval/{task}/success" in header and f"retention/{task}" in header
    assert {"charts/sps", "losses/critic_loss", "charts/episodic_return"} <= set(header)
    config = json.loads((finetune_run / "config.json").read_text())
    assert config["agent"] == "continual-sac" and config["method"] == "finetune"


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, finetune_run):
    config = tiny_config()
    interrupted = ContinualTrainer(config, tmp_path / "run", progress=False)
    interrupted.train(stop_at=450)  # a checkpoint is written at step 450
    interrupted.train(stop_at=520)  # work after the checkpoint, lost when the run is "killed"
    interrupted.close()
    resumed = ContinualTrainer(config, tmp_path / "run", resume=True, progress=False)
    assert resumed.global_step == 450
    resumed.train()
    resumed.close()

    reference, _ = load_continual_agent(finetune_run)
    agent, _ = load_continual_agent(tmp_path / "run")
    _assert_same_networks(agent, reference)
    assert torch.equal(agent.log_alpha, reference.log_alpha)
    assert EvaluationLog.load(tmp_path / "run") == EvaluationLog.load(finetune_run)
    with (tmp_path / "run" / "metrics.csv").open() as f:
        steps = [int(row["global_step"]) for row in csv.DictReader(f)]
    assert steps == sorted(steps) and steps.count(500) == 1  # rows after the checkpoint dropped


def test_a_run_saved_before_a_config_field_existed_resumes(tmp_path):
    config = tiny_config()
    trainer = ContinualTrainer(config, tmp_path, progress=False)
    trainer.train(stop_at=150)
    trainer.close()
    path = tmp_path / "checkpoints" / "latest.pt"
    payload = torch.load(path, weights_only=False)
    del payload["config"]["one_hot"]  # as saved by a version without the field
    torch.save(payload, path)
    resumed = ContinualTrainer(config, tmp_path, resume=True, progress=False)
    assert resumed.global_step == 150
    resumed.close()
    with pytest.raises(ValueError, match="config differs in \\['one_hot'\\]"):
        ContinualTrainer(tiny_config(one_hot="stage"), tmp_path, resume=True, progress=False)


def test_a_cw20_run_saved_before_one_hot_existed_keeps_its_layout(tmp_path):
    # The old CW20 layout.
    old = tiny_config(stream="CW20", steps_per_task=150, update_after=100, one_hot="task")
    trainer = ContinualTrainer(old, tmp_path, progress=False)
    trainer.train(stop_at=150)
    trainer.close()
    path = tmp_path / "checkpoints" / "latest.pt"
    payload = torch.load(path, weights_only=False)
    del payload["config"]["one_hot"]
    torch.save(payload, path)
    agent, config = load_continual_agent(tmp_path)
    assert agent.num_tasks == 2 and config.one_hot == "task"
    with pytest.raises(ValueError, match=r"differs in \['one_hot'\].*--one-hot task"):
        new = tiny_config(stream="CW20", steps_per_task=150, update_after=100)
        ContinualTrainer(new, tmp_path, resume=True, progress=False)
    ContinualTrainer(old, tmp_path, resume=True, progress=False).close()


def test_a_run_directory_is_not_overwritten(finetune_run):
    with pytest.raises(FileExistsError, match="resume"):
        ContinualTrainer(tiny_config(), finetune_run, progress=False)
    with pytest.raises(ValueError, match="config differs in \\['seed'\\]"):
        ContinualTrainer(tiny_config(seed=1), finetune_run, resume=True, progress=False)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "finetune"])
def test_every_method_trains_through_the_stream(tmp_path, method):
    summary = train_continual(tiny_config(method=method), tmp_path, progress=False)
    assert summary["finished"] == 1.0 and summary["global_step"] == 600
    log = EvaluationLog.load(tmp_path)
    assert log.method == method and log.finished
    report = evaluate_continual(tmp_path)
    row = report["metrics"][method]
    assert row["average performance"]["mean"] is not None
    if method == "multitask":
        assert row["forgetting"] is None  # no window belongs to a task


def test_report_and_forward_transfer_over_seeds(tmp_path, finetune_run):
    train_continual(tiny_config(seed=1), tmp_path / "seed1", progress=False)
    reference = save_reference_curves(
        tmp_path / "reference.json",
        {"reach-v3": [[0.0, 0.5], [0.0, 0.0]], "button-press-v3": [[0.5, 0.5], [0.0, 0.5]]},
        steps_per_task=300, eval_every=150, eval_episodes=1, seeds=[0, 1],
    )  # fmt: skip
    report = evaluate_continual_runs(
        [finetune_run, tmp_path / "seed1"], reference=reference, out_dir=tmp_path / "report"
    )
    row = report["metrics"]["finetune"]
    assert row["forward transfer"]["mean"] is not None
    assert row["average performance"]["lower"] <= row["average performance"]["mean"]
    assert "| finetune |" in report["details"]["table"]
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "## Success at the end, per task (mean over seeds)" in markdown
    assert "| method | 1. reach-v3 | 2. button-press-v3 |" in markdown
    for name in ("report.md", "report.json", "success_curves_finetune.png",
                 "retention_finetune.png"):  # fmt: skip
        assert (tmp_path / "report" / name).exists()
    # References must share the budget, the evaluation cadence and the evaluation mode.
    for field, value in (("eval_every", 100), ("deterministic", True)):
        recorded = {"steps_per_task": 300, "eval_every": 150, "eval_episodes": 1, "seeds": [0],
                    field: value}  # fmt: skip
        mismatched = save_reference_curves(
            tmp_path / f"{field}.json",
            {"reach-v3": [[0.0, 0.5]], "button-press-v3": [[0.5, 0.5]]},
            **recorded,
        )
        with pytest.raises(ValueError, match=f"have {field}={value}, the runs {field}="):
            evaluate_continual_runs([tmp_path / "seed1"], reference=mismatched)
    with pytest.raises(ValueError, match="have steps_per_task=999, the runs steps_per_task=300"):
        evaluate_continual_runs(
            [tmp_path / "seed1"],
            reference=save_reference_curves(
                tmp_path / "other.json", {"reach-v3": [[0.5]]}, steps_per_task=999,
                eval_every=1, eval_episodes=1, seeds=[0],
            ),
        )  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"method": "agem"}, "method must be one of \\['finetune', 'l2', 'ewc', 'packnet'"),
        ({"stream": "CW30"}, "stream must be one of \\['CW10', 'CW20'"),
        ({"tasks": "reach-v3,nope-v3"}, "unknown task 'nope-v3'"),
        ({"eval_every": 301}, "eval_every must divide steps_per_task \\(300\\)"),
        ({"eval_every": 200}, "eval_every must divide steps_per_task \\(300\\).*got 200"),
        ({"eval_every": 200, "steps_per_task": 333}, "got 200; e.g. --eval-every 9$"),
        ({"update_after": 300}, "update_after \\(300\\) must be less than steps_per_task"),
        ({"schedule": "repeat"}, 'schedule must be a mapping like {"kind": "repeat"'),
        ({"tasks": ["reach-v3"]}, "tasks must be a string, got \\['reach-v3'\\] \\(list\\)"),
        ({"learning_rate": "1e-4"}, "learning_rate must be a number, got '1e-4'"),
        ({"multi_head": 1}, "multi_head must be true or false"),
        ({"schedule": {"kind": "scole", "num_stages": 4, "tasks_per_stage": 2}}, "one task per"),
        ({"gamma": 1.5}, "gamma must be in \\[0, 1\\]"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"packnet_retrain_steps": -2}, "packnet_retrain_steps must be -1"),
        ({"stream": "Recall", "tasks": ""}, "Box action space"),
        ({"held_out": "drawer-close-v3"}, "held_out needs a task-agnostic agent"),
        ({"held_out": "drawer-close-v3", "multi_head": False, "hide_task_id": False}, "agnostic"),
        ({"held_out": "reach-v3", "multi_head": False}, "must not be trained by the stream"),
        ({"held_out": "cheetah-run", "multi_head": False}, "must fit the spaces of the trained"),
    ],
)
def test_bad_config_values_raise_naming_the_allowed_values(tmp_path, changes, message):
    config = tiny_config(**changes)
    with pytest.raises(ValueError, match=message):
        ContinualTrainer(config, tmp_path, progress=False)


def test_tasks_may_name_task_lists():
    from memrl.streams import TASK_LISTS

    stream = ContinualConfig(tasks="MT40").build_stream()
    assert stream.task_names == TASK_LISTS["MT40"] and stream.name == "MT40"
    stream = ContinualConfig(tasks="CW10, reach-v3", held_out="door-open-v3").build_stream()
    assert stream.task_names == (*TASK_LISTS["CW10"], "reach-v3")
    assert stream.name == "CW10 > reach-v3 (held out: door-open-v3)"
    stream = ContinualConfig(tasks="CW10", held_out="MT40").build_stream()
    assert stream.held_out_names == TASK_LISTS["MT40"]
    with pytest.raises(ValueError, match=r"held_out tasks must not be trained.*\['door-open-v3'\]"):
        ContinualConfig(tasks="CW10,door-open-v3", held_out="MT40").build_stream()


def test_the_streams_continual_sac_trains_are_the_named_streams_it_accepts(tmp_path):
    from memrl.streams import NAMED_STREAMS

    for name in NAMED_STREAMS:
        config = ContinualConfig(stream=name, tasks="")
        if name in STREAMS:
            config.validate()
        else:
            with pytest.raises(ValueError, match="one task per stage|Box action space"):
                ContinualTrainer(config, tmp_path / name, progress=False)


def test_random_actions_for_a_whole_task_are_warned_of(tmp_path):
    with pytest.warns(UserWarning, match="start_steps \\(300\\) >= steps per task \\(300\\)"):
        trainer = ContinualTrainer(tiny_config(start_steps=300), tmp_path / "w", progress=False)
    trainer.close()


@pytest.mark.parametrize("steps_per_task", [1, 7, 20, 333, 50_000, 1_000_000])
def test_the_suggested_eval_every_divides_the_budget(steps_per_task):
    suggested = suggested_eval_every(steps_per_task)
    assert steps_per_task % suggested == 0
    assert suggested == 1 or steps_per_task // suggested >= 10


def test_dm_control_tasks_are_scored_by_normalised_return(tmp_path):
    # dm_control defines no success: the evaluation scores its tasks by return / 1000.
    config = tiny_config(
        stream="DMC6", tasks="cartpole-balance,pendulum-swingup", steps_per_task=100,
        eval_every=100, start_steps=50, update_after=50, checkpoint_every=100,
    )  # fmt: skip
    train_continual(config, tmp_path, progress=False)
    log = EvaluationLog.load(tmp_path)
    assert log.return_scored == ("cartpole-balance", "pendulum-swingup")
    scores, returns = np.asarray(log.success), np.asarray(log.returns)
    np.testing.assert_allclose(scores, returns / 1000.0)  # one episode per evaluation
    assert scores[:, 0].min() > 0  # cartpole-balance pays for every upright step
    report = evaluate_continual(tmp_path)
    assert (
        "pendulum-swingup define no success: their score is the normalised return"
        in (report["details"]["score"])
    )
    assert report["details"]["score"] in (tmp_path / "report.md").read_text()


def test_cw20_trains_a_head_per_stage(tmp_path):
    config = tiny_config(stream="CW20", steps_per_task=150, update_after=100)
    train_continual(config, tmp_path, progress=False)
    log = EvaluationLog.load(tmp_path)
    assert log.task_names == ("reach-v3", "button-press-v3", "reach-v3#2", "button-press-v3#2")
    assert log.schedule == (0, 1, 2, 3) and log.finished
    assert log.stream == "CW20 on reach-v3 > button-press-v3"  # a CW10 run would say no "CW20"
    agent, _ = load_continual_agent(tmp_path)
    assert agent.num_tasks == 4
    assert json.loads((tmp_path / "config.json").read_text())["one_hot"] == ""


def test_held_out_tasks_are_evaluated_and_never_trained(tmp_path):
    config = tiny_config(held_out="drawer-close-v3", multi_head=False)
    trainer = ContinualTrainer(config, tmp_path, progress=False)
    trainer.train(stop_at=1)  # the initial evaluation, then one step
    assert trainer.agent.num_tasks == 3  # the held-out task has the last one-hot
    while trainer.global_step < trainer.total_steps:
        assert trainer.observation[-3:].tolist() != [0.0, 0.0, 1.0]  # never its one-hot
        trainer.step()
    trainer.close()
    log = EvaluationLog.load(tmp_path)
    assert log.task_names == ("reach-v3", "button-press-v3", "drawer-close-v3")
    assert log.held_out == ("drawer-close-v3",) and log.schedule == (0, 1)
    assert len(log.initial_success) == 3 and all(len(row) == 3 for row in log.success)
    # Continual World's metrics read the trained tasks only.
    assert evaluation_history(log).task_names == ("reach-v3", "button-press-v3")
    retention = retention_matrix(log)
    assert retention.stage_labels == ("initial", "0: reach-v3", "1: button-press-v3")
    assert retention.held_out == ("drawer-close-v3",)
    np.testing.assert_allclose(retention.matrix[0], log.initial_success)
    with (tmp_path / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["global_step"] == "0" and rows[0]["eval/drawer-close-v3/success"] != ""
    assert float(rows[0]["eval/average_success"]) == np.mean(log.initial_success[:2])
    assert "eval/held_out_average_success" in rows[0]
    report = evaluate_continual(tmp_path)
    assert "held-out retention" in report["metrics"]["finetune"]
    assert "drawer-close-v3" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "config.json").read_text())["held_out"] == "drawer-close-v3"
    assert log.stream == "reach-v3 > button-press-v3 (held out: drawer-close-v3)"


def test_held_out_averages_and_retention_read_the_held_out_columns(tmp_path, monkeypatch):
    played = []

    def play(self, entropy):  # trained tasks 0.2 and 0.4; held-out 0.8 before training, then 0.4
        played.append(self.global_step)
        return [0.2, 0.4, 0.8 if len(played) == 1 else 0.4], [1.0, 2.0, 3.0]

    monkeypatch.setattr(ContinualTrainer, "_play_evaluation", play)
    train_continual(tiny_config(held_out="drawer-close-v3", multi_head=False), tmp_path,
                    progress=False)  # fmt: skip
    assert played == [0, 150, 300, 450, 600]
    with (tmp_path / "metrics.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["eval/average_success"]]
    assert [float(r["eval/average_success"]) for r in rows] == pytest.approx([0.3] * 5)
    held = [float(r["eval/held_out_average_success"]) for r in rows]
    assert held == pytest.approx([0.8, 0.4, 0.4, 0.4, 0.4])
    report = evaluate_continual(tmp_path)
    assert report["metrics"]["finetune"]["held-out retention"]["mean"] == pytest.approx(0.5)
    assert report["metrics"]["finetune"]["held-out change"]["mean"] == pytest.approx(-0.4)
    assert report["metrics"]["finetune"]["average performance"]["mean"] == pytest.approx(0.3)


def test_a_fresh_start_after_a_kill_before_any_checkpoint_logs_step_0_once(tmp_path):
    killed = ContinualTrainer(tiny_config(), tmp_path, progress=False)
    killed.train(stop_at=100)  # the initial evaluation is logged; no checkpoint yet (150)
    killed.close()
    restarted = ContinualTrainer(tiny_config(), tmp_path, resume=True, progress=False)
    assert restarted.global_step == 0
    restarted.train(stop_at=100)
    with pytest.raises(ValueError, match="initial evaluation must come before training"):
        restarted.evaluate_initial()
    restarted.close()
    with (tmp_path / "metrics.csv").open() as f:
        steps = [int(row["global_step"]) for row in csv.DictReader(f)]
    assert steps.count(0) == 1 and steps == sorted(steps)


def test_the_initial_evaluation_changes_nothing_that_is_learnt(tmp_path, monkeypatch):
    evaluated = ContinualTrainer(tiny_config(), tmp_path / "evaluated", progress=False)
    evaluated.train(stop_at=250)  # past update_after: gradient steps were taken
    assert evaluated.evaluations.initial_success is not None
    monkeypatch.setattr(ContinualTrainer, "evaluate_initial", lambda self: [])
    skipped = ContinualTrainer(tiny_config(), tmp_path / "skipped", progress=False)
    skipped.train(stop_at=250)
    assert skipped.evaluations.initial_success is None
    _assert_same_networks(evaluated.agent, skipped.agent)
    np.testing.assert_array_equal(evaluated.observation, skipped.observation)
    evaluated.close()
    skipped.close()


def test_held_out_tasks_change_nothing_that_is_learnt(tmp_path):
    # One after the other: a trainer seeds torch's global generator when it is built.
    plain = ContinualTrainer(tiny_config(multi_head=False), tmp_path / "plain", progress=False)
    plain.train(stop_at=350)  # gradient steps on both tasks
    held = ContinualTrainer(
        tiny_config(multi_head=False, held_out="drawer-close-v3"), tmp_path / "held",
        progress=False,
    )  # fmt: skip
    held.train(stop_at=350)
    _assert_same_networks(plain.agent, held.agent)
    assert torch.equal(plain.agent.log_alpha, held.agent.log_alpha[:2])
    plain_log, held_log = plain.evaluations, held.evaluations
    np.testing.assert_array_equal(np.asarray(held_log.success)[:, :2], plain_log.success)
    plain.close()
    held.close()
