"""SB3 baselines: options reach the model, runs resume, the run directory matches memory PPO's."""

from __future__ import annotations

import csv
import json
import re
import shutil
import zipfile

import gymnasium
import numpy as np
import pytest
import torch
from damage import DAMAGE, corrupt, tensorboard_steps, truncate
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnvWrapper

from memrl.agents import sb3_baselines
from memrl.agents.checkpoints import NoIntactCheckpointError
from memrl.agents.loading import FrameStackedAgent, load_agent
from memrl.agents.run_log import RunLog, read_metric
from memrl.agents.sb3_baselines import RunLogOutput, latest_checkpoint
from memrl.cli import main

# sb3-ppo in rollouts of 2 envs x 64 steps = 128 env steps, one epoch each.
TINY_PPO = ["--env", "memrl/DelayedMatch-Easy-v0", "--agent", "sb3-ppo", "--num-envs", "2",
            "--num-steps", "64", "--update-epochs", "1", "--no-tensorboard",
            "--no-progress"]  # fmt: skip
TINY_PPO_TENSORBOARD = [arg for arg in TINY_PPO if arg != "--no-tensorboard"]


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
    # the row holds the second update's losses, made at the end of the annealing (SB3's own
    # logging would show the first's, at 0.25)
    assert float(row["charts/learning_rate"]) == 0.0
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
    assert all(r["losses/value_loss"] for r in after)  # the first row after the resume too
    assert "time/iterations" not in after[0]
    model = PPO.load(run / "checkpoints" / "final.zip")
    assert (model.num_timesteps, model._num_timesteps_at_start) == (640, 256)
    assert model._n_updates == 5  # two before the checkpoint, three after
    assert json.loads((run / "config.json").read_text())["total_steps"] == 640


def test_a_run_keeps_its_two_newest_periodic_checkpoints_and_resumes_from_them(tmp_path, capsys):
    run = tmp_path / "ppo"
    args = ["train", *TINY_PPO, "--out", str(run), "--checkpoint-every", "1"]
    assert main([*args, "--steps", "640"]) == 0  # saved at 128, 256, 384 and 512; final at 640
    checkpoints = run / "checkpoints"
    kept = sorted(p.name for p in checkpoints.iterdir())
    assert kept == ["final.zip", "sb3_384_steps.zip", "sb3_512_steps.zip"]
    (checkpoints / "final.zip").unlink()  # killed before the end
    truncate(checkpoints / "sb3_512_steps.zip")  # and the newest checkpoint damaged
    capsys.readouterr()
    assert main([*args, "--steps", "640", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "damaged checkpoint" in err and "using the older checkpoint" in err
    assert f"{checkpoints / 'sb3_384_steps.zip'} instead" in err, err
    model = PPO.load(checkpoints / "final.zip")
    assert (model.num_timesteps, model._num_timesteps_at_start) == (640, 384)


def test_resume_continues_a_finished_run_from_its_final_model(tmp_path, capsys):
    run = tmp_path / "ppo"
    args = ["train", *TINY_PPO, "--out", str(run)]
    assert main([*args, "--steps", "256"]) == 0  # no periodic checkpoint: final.zip only
    before = _rows(run)
    threads = torch.get_num_threads()
    # options that do not change learning may change on resume
    assert main([*args, "--steps", "512", "--resume", "--log-every", "2", "--threads", "1"]) == 0
    torch.set_num_threads(threads)
    assert "for 512 env steps, resumed at step 256 ->" in capsys.readouterr().out
    after = _rows(run)
    assert after[:2] == before and [r["global_step"] for r in after[2:]] == ["512"]  # update 4
    assert json.loads((run / "config.json").read_text())["log_every"] == 2
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
    err = capsys.readouterr().err
    assert "its config differs in ['learning_rate']" in err and "'threads'" in err
    assert main([*args, "--steps", "128", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "with total_steps 128: it has already trained 256 env steps; ask for 256" in err
    assert main([*args, "--steps", "512"]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert (run / "config.json").read_text() == config
    assert read_metric(run, "charts/sps")[0] == [128, 256]


def test_each_row_holds_the_losses_of_the_update_made_at_its_step(tmp_path):
    run = tmp_path / "ppo"
    args = ["train", *TINY_PPO, "--out", str(run), "--anneal-lr", "--learning-rate", "0.5"]
    assert main([*args, "--steps", "512"]) == 0
    rows = _rows(run)
    # the update after S of 512 steps runs at 0.5 * (1 - S / 512); the last one is logged too
    assert [(r["global_step"], float(r["charts/learning_rate"])) for r in rows] == [
        ("128", 0.375), ("256", 0.25), ("384", 0.125), ("512", 0.0)
    ]  # fmt: skip
    assert all(r["losses/value_loss"] for r in rows)
    assert not {"time/iterations", "time/total_timesteps", "train/n_updates"} & set(rows[0])


def test_run_log_output_leaves_out_what_sb3_keeps_from_tensorboard(tmp_path):
    output = RunLogOutput(RunLog(tmp_path, tensorboard=False))
    values = {"time/fps": 9, "time/iterations": 3, "train/value_loss": 0.5, "policy": "Mlp"}
    output.write(values, {"time/iterations": ("tensorboard",), "time/fps": None}, step=128)
    output.close()
    assert _rows(tmp_path) == [
        {"global_step": "128", "charts/sps": "9.0", "losses/value_loss": "0.5"}
    ]


class _ResetRecorder(VecEnvWrapper):
    """Records the observations of every ``reset`` of the vector env it wraps."""

    resets: list[np.ndarray] = []

    def reset(self):
        observation = self.venv.reset()
        self.resets.append(observation.copy())
        return observation

    def step_wait(self):
        return self.venv.step_wait()


def test_resume_starts_new_episodes_and_is_deterministic(tmp_path, monkeypatch):
    make_env = sb3_baselines.make_sb3_env
    monkeypatch.setattr(sb3_baselines, "make_sb3_env", lambda c: _ResetRecorder(make_env(c)))
    monkeypatch.setattr(_ResetRecorder, "resets", [])
    # 8 envs, so that two different seedings are all but sure to show different cues
    args = ["train", *TINY_PPO, "--num-envs", "8", "--num-steps", "16"]
    assert main([*args, "--out", str(tmp_path / "a"), "--steps", "128"]) == 0
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for run in ("a", "b"):
        assert main([*args, "--out", str(tmp_path / run), "--steps", "256", "--resume"]) == 0
    first, resumed_a, resumed_b = _ResetRecorder.resets
    assert not np.array_equal(first, resumed_a)  # SB3's load alone would replay step 0's
    np.testing.assert_array_equal(resumed_a, resumed_b)
    params = [PPO.load(tmp_path / r / "checkpoints" / "final.zip").get_parameters() for r in "ab"]
    for name, value in params[0]["policy"].items():
        assert torch.equal(value, params[1]["policy"][name]), name
    losses = [read_metric(tmp_path / r, "losses/value_loss") for r in "ab"]
    assert losses[0] == losses[1]


def _zip(path, **members) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)


def test_a_model_save_killed_midway_leaves_the_saved_model_as_it_was(tmp_path):
    class KilledWhileSaving:
        def save(self, path) -> None:
            path.write_bytes(b"PK\x03\x04 half of a model")
            raise KeyboardInterrupt

    path = tmp_path / "checkpoints" / "final.zip"
    path.parent.mkdir()
    path.write_bytes(b"the model saved before")
    with pytest.raises(KeyboardInterrupt):
        sb3_baselines.save_model(KilledWhileSaving(), path)
    assert path.read_bytes() == b"the model saved before"


def test_latest_checkpoint_ranks_by_name_and_skips_damaged_files(tmp_path):
    directory = tmp_path / "checkpoints"
    directory.mkdir()
    assert latest_checkpoint(tmp_path) is None
    model = {"policy.pth": "weights"}
    _zip(directory / "sb3_128_steps.zip", data="", **model)  # ranked by its name, not its data
    _zip(directory / "final.zip", data=json.dumps({"num_timesteps": 192}), **model)
    (directory / "sb3_256_steps.zip").write_bytes(b"PK\x03\x04 half-written")
    with pytest.warns(UserWarning, match="sb3_256_steps.zip \\(truncated or not a zip archive"):
        assert latest_checkpoint(tmp_path) == (directory / "final.zip", 192)
    (directory / "final.zip").write_bytes(b"PK\x03\x04 half-written")
    with pytest.warns(UserWarning) as warned:
        assert latest_checkpoint(tmp_path) == (directory / "sb3_128_steps.zip", 128)
    (message,) = [str(w.message) for w in warned]
    assert "final.zip (truncated" in message and "sb3_256_steps.zip (truncated" in message
    _zip(directory / "sb3_128_steps.zip", data="")  # a zip without the model's weights
    with pytest.raises(
        ValueError, match="sb3_128_steps.zip \\(lacks the members \\['policy.pth'\\]"
    ):
        latest_checkpoint(tmp_path)


def test_load_agent_builds_the_frame_stack_of_the_runs_env_kwargs(tmp_path):
    run = tmp_path / "ppo"
    kwargs = {"num_symbols": 2}
    assert main(["train", *TINY_PPO, "--out", str(run), "--steps", "128", "--frame-stack", "2",
                 "--env-kwargs", json.dumps(kwargs)]) == 0  # fmt: skip
    agent, info = load_agent(run)
    assert info["env_kwargs"] == kwargs
    space = gymnasium.make("memrl/DelayedMatch-Easy-v0", **kwargs).observation_space
    assert agent.observation_space == space  # (5,) with 2 symbols; the default has 7
    assert space != gymnasium.make("memrl/DelayedMatch-Easy-v0").observation_space
    actions, _ = agent.predict(np.stack([space.sample(), space.sample()]))
    assert actions.shape == (2,)


def test_resume_skips_a_damaged_final_model_as_if_killed_before_saving_it(tmp_path, capsys):
    args = ["train", *TINY_PPO_TENSORBOARD, "--checkpoint-every", "2"]
    assert main([*args, "--out", str(tmp_path / "base"), "--steps", "512"]) == 0
    runs = {name: shutil.copytree(tmp_path / "base", tmp_path / name)
            for name in ("killed", *DAMAGE)}  # fmt: skip
    (runs["killed"] / "checkpoints" / "final.zip").unlink()  # the reference: from sb3_256
    for name, damage in DAMAGE.items():
        damage(runs[name] / "checkpoints" / "final.zip")
    capsys.readouterr()
    for name, run in runs.items():
        assert main([*args, "--out", str(run), "--steps", "640", "--resume"]) == 0
        err = capsys.readouterr().err
        damaged, used = run / "checkpoints" / "final.zip", run / "checkpoints" / "sb3_256_steps.zip"
        warning = f"warning: damaged checkpoint {damaged} ("
        assert (warning in err) == (name != "killed"), err
        assert (f"using the older checkpoint {used} instead" in err) == (name != "killed"), err
    reference = PPO.load(runs["killed"] / "checkpoints" / "final.zip")
    for name in DAMAGE:
        model = PPO.load(runs[name] / "checkpoints" / "final.zip")
        assert (model.num_timesteps, model._num_timesteps_at_start) == (640, 256)
        for key, value in model.get_parameters()["policy"].items():
            assert torch.equal(value, reference.get_parameters()["policy"][key]), (name, key)
        assert read_metric(runs[name], "losses/value_loss") == read_metric(
            runs["killed"], "losses/value_loss"
        )
        # Steps 384 and 512, logged again after the resume, show once in TensorBoard too.
        assert tensorboard_steps(runs[name], "losses/value_loss") == [128, 256, 384, 512, 640]
    # Nothing left to train: no new (empty) event file.
    events = sorted((runs["truncated"] / "tb").iterdir())
    assert main([*args, "--out", str(runs["truncated"]), "--steps", "640", "--resume"]) == 0
    assert sorted((runs["truncated"] / "tb").iterdir()) == events


def test_every_model_damaged_is_a_clear_error_and_evaluation_falls_back(tmp_path, capsys):
    run = tmp_path / "ppo"
    checkpoints = run / "checkpoints"
    args = ["train", *TINY_PPO, "--out", str(run), "--checkpoint-every", "1"]
    assert main([*args, "--steps", "256"]) == 0  # sb3_128_steps.zip and final.zip
    corrupt(checkpoints / "final.zip")
    final, periodic = (re.escape(str(checkpoints / n)) for n in ("final.zip", "sb3_128_steps.zip"))
    fallback = f"damaged checkpoint {final} .*using the older checkpoint {periodic} instead"
    with pytest.warns(UserWarning, match=fallback):
        agent, _ = load_agent(run)
    expected = PPO.load(checkpoints / "sb3_128_steps.zip").get_parameters()["policy"]
    for key, value in agent.get_parameters()["policy"].items():
        assert torch.equal(value, expected[key]), key
    truncate(checkpoints / "sb3_128_steps.zip")
    capsys.readouterr()
    assert main([*args, "--steps", "384", "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"error: no intact checkpoint left in {checkpoints}: final.zip (corrupted bytes" in err
    assert re.search(r"final.zip \(.+\), sb3_128_steps.zip \(.+\)\n$", err), err
    with pytest.raises(NoIntactCheckpointError, match="final.zip .*sb3_128_steps.zip"):
        load_agent(run)
