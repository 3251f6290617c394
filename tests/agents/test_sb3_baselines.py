"""SB3 baselines: options reach the model, runs resume, the run directory matches memory PPO's."""

from __future__ import annotations

import csv
import json

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO

from memrl.agents.loading import FrameStackedAgent, load_agent
from memrl.agents.run_log import read_metric
from memrl.cli import main

# sb3-ppo in rollouts of 2 envs x 64 steps = 128 env steps, one epoch each.
TINY_PPO = ["--env", "memrl/DelayedMatch-Easy-v0", "--agent", "sb3-ppo", "--num-envs", "2",
            "--num-steps", "64", "--update-epochs", "1", "--no-tensorboard",
            "--no-progress"]  # fmt: skip


def _rows(run) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


class _Recorder:
    """A stand-in model that records what it is shown and answers 0."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def predict(self, observation, deterministic=False):
        self.seen.append(observation.copy())
        return np.zeros(len(observation), dtype=np.int64), None


def test_frame_stack_keeps_the_last_observations_and_clears_at_episode_starts():
    model = _Recorder()
    agent = FrameStackedAgent(model, 2, spaces.Box(0, 9, (1,), np.float32))
    obs = lambda *values: np.array(values, np.float32)[:, None]  # noqa: E731
    _, state = agent.predict(obs(1, 2), episode_start=np.array([True, True]))
    _, state = agent.predict(obs(3, 4), state, episode_start=np.array([False, False]))
    _, state = agent.predict(obs(5, 6), state, episode_start=np.array([True, False]))
    np.testing.assert_array_equal(model.seen[0], [[0, 1], [0, 2]])
    np.testing.assert_array_equal(model.seen[1], [[1, 3], [2, 4]])
    np.testing.assert_array_equal(model.seen[2], [[0, 5], [4, 6]])  # env 0 began a new episode


def test_frame_stacked_ppo_trains_and_evaluates(tmp_path):
    run = tmp_path / "ppo4"
    code = main(["train", "--env", "memrl/DelayedMatch-Easy-v0", "--agent", "sb3-ppo",
                 "--frame-stack", "4", "--steps", "256", "--out", str(run),
                 "--no-progress"])  # fmt: skip
    assert code == 0
    # memory PPO's layout: metrics.csv and tb/, nothing of SB3's own in the run root
    files = sorted(p.name for p in run.iterdir())
    assert files == ["checkpoints", "config.json", "metrics.csv", "tb"]
    assert any((run / "tb").iterdir())
    assert [r["global_step"] for r in _rows(run)] == ["1024"]  # one rollout of 8 envs x 128
    assert "charts/sps" in _rows(run)[0]  # SB3's time/fps under memory PPO's name
    agent, info = load_agent(run)
    assert isinstance(agent, FrameStackedAgent) and agent.n_stack == 4
    assert main(["eval", str(run), "--episodes", "8"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["agent"] == "sb3-ppo" and len(report["results"]) == 5  # delays 16..4096


def test_memory_ppo_options_reach_the_recurrent_ppo_model(tmp_path, capsys):
    run = tmp_path / "rppo"
    threads = torch.get_num_threads()
    code = main(["train", "--env", "memrl/DelayedMatch-Easy-v0", "--agent", "sb3-recurrent-ppo",
                 "--steps", "256", "--out", str(run), "--no-progress", "--env-kwargs",
                 '{"delay": 64}', "--num-envs", "2", "--num-steps", "64", "--learning-rate", "0.5",
                 "--anneal-lr", "--ent-coef", "0.05", "--gamma", "0.9", "--gae-lambda", "0.8",
                 "--num-minibatches", "2", "--update-epochs", "1", "--clip-coef", "0.3",
                 "--clip-value", "--vf-coef", "0.7", "--max-grad-norm", "0.4",
                 "--checkpoint-every", "1", "--log-every", "2", "--no-tensorboard",
                 "--threads", "1"])  # fmt: skip
    assert code == 0
    config = json.loads((run / "config.json").read_text())
    assert config["env_kwargs"] == {"delay": 64} and config["num_envs"] == 2
    assert (config["learning_rate"], config["tensorboard"], config["threads"]) == (0.5, False, 1)
    model = RecurrentPPO.load(run / "checkpoints" / "final.zip")
    assert (model.n_envs, model.n_steps, model.batch_size, model.n_epochs) == (2, 64, 64, 1)
    assert (model.gamma, model.gae_lambda, model.ent_coef) == (0.9, 0.8, 0.05)
    assert (model.vf_coef, model.max_grad_norm) == (0.7, 0.4)
    assert model.clip_range(1.0) == 0.3 and model.clip_range_vf(1.0) == 0.3
    assert (model.lr_schedule(1.0), model.lr_schedule(0.5)) == (0.5, 0.25)  # annealed
    assert torch.get_num_threads() == 1
    torch.set_num_threads(threads)
    assert not (run / "tb").exists()
    # --log-every 2: one row, after the second rollout; the delay of 64 makes 66-step episodes
    # (cue, delay, question).
    (row,) = _rows(run)
    assert row["global_step"] == "256" and float(row["charts/episodic_length"]) == 66.0
    assert float(row["charts/learning_rate"]) == 0.25  # the first update ran at half the run
    # one checkpoint per update: after the first (at 128 steps), the second is the final model
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == ["final.zip", "sb3_128_steps.zip"]
    assert "for 256 env steps ->" in capsys.readouterr().out


def test_resume_continues_a_killed_run_from_its_latest_checkpoint(tmp_path, capsys):
    run = tmp_path / "ppo"
    args = ["train", *TINY_PPO, "--out", str(run), "--checkpoint-every", "2"]
    assert main([*args, "--steps", "512"]) == 0
    before = _rows(run)
    assert [r["global_step"] for r in before] == ["128", "256", "384", "512"]
    (run / "checkpoints" / "final.zip").unlink()  # killed after 384 steps: last checkpoint 256
    capsys.readouterr()
    assert main([*args, "--steps", "640", "--resume"]) == 0
    assert "for 640 env steps, resumed at step 256 ->" in capsys.readouterr().out
    after = _rows(run)
    assert [r["global_step"] for r in after] == ["128", "256", "384", "512", "640"]
    assert after[:2] == before[:2]  # rows up to the checkpoint kept as they were
    model = PPO.load(run / "checkpoints" / "final.zip")
    assert (model.num_timesteps, model._num_timesteps_at_start) == (640, 256)
    assert model._n_updates == 5  # two before the checkpoint, three after
    assert json.loads((run / "config.json").read_text())["total_steps"] == 640


def test_resume_continues_a_finished_run_from_its_final_model(tmp_path, capsys):
    run = tmp_path / "ppo"
    args = ["train", *TINY_PPO, "--out", str(run)]
    assert main([*args, "--steps", "256"]) == 0  # no periodic checkpoint: final.zip only
    before = _rows(run)
    assert main([*args, "--steps", "512", "--resume"]) == 0
    assert "for 512 env steps, resumed at step 256 ->" in capsys.readouterr().out
    after = _rows(run)
    assert after[:2] == before and [r["global_step"] for r in after[2:]] == ["384", "512"]
    model = PPO.load(run / "checkpoints" / "final.zip")
    assert (model.num_timesteps, model._num_timesteps_at_start, model._n_updates) == (512, 256, 4)
    # Asking for no more than it has: nothing to train, and the run is left as it is.
    assert main([*args, "--steps", "400", "--resume"]) == 0  # 400 also ends at 512
    assert "has already trained 512 env steps: nothing to train" in capsys.readouterr().out
    assert _rows(run) == after


def test_resume_refuses_a_changed_config_or_fewer_steps_than_trained(tmp_path, capsys):
    run = tmp_path / "ppo"
    args = ["train", *TINY_PPO, "--out", str(run)]
    assert main([*args, "--steps", "256"]) == 0
    config = (run / "config.json").read_text()
    capsys.readouterr()
    assert main([*args, "--steps", "512", "--resume", "--learning-rate", "0.001"]) == 2
    assert "its config differs in ['learning_rate']" in capsys.readouterr().err
    assert main([*args, "--steps", "128", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "with total_steps 128: it has already trained 256 env steps; ask for 256" in err
    assert main([*args, "--steps", "512"]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert (run / "config.json").read_text() == config
    assert read_metric(run, "charts/sps")[0] == [128, 256]
