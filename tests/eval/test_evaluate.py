from __future__ import annotations

import json

import gymnasium
import numpy as np
import pytest
import torch

from memrl.agents import loading
from memrl.agents.ppo import PPOTrainer
from memrl.agents.ppo_config import PPOConfig
from memrl.cli import main
from memrl.eval import continual, evaluate, report
from memrl.eval.evaluate import DELAYS, evaluate_run, evaluation_cases, run_episodes


def _train(run_dir, env_id, **kwargs):
    config = PPOConfig(
        env_id=env_id, core="gru", total_steps=128, num_envs=4, num_steps=16,
        num_minibatches=2, update_epochs=1, tensorboard=False, **kwargs,
    )  # fmt: skip
    PPOTrainer(config, run_dir, progress=False).train()


def test_cases_follow_the_training_env():
    kind, cases = evaluation_cases("memrl/BalletGrid-4-delay16-v0", {})
    assert kind == "levels" and len(cases) == 6
    assert all(c.env_id.startswith("memrl/BalletGrid-") for c in cases)
    kind, cases = evaluation_cases("memrl/DelayedMatch-Medium-v0", {})
    assert kind == "recall_vs_delay"
    assert [c.env_kwargs["num_symbols"] for c in cases] == [8] * len(DELAYS)
    assert [c.env_kwargs["delay"] for c in cases] == list(DELAYS)
    _, cases = evaluation_cases("memrl/DelayedMatch-v0", {"distractors": False, "num_symbols": 6})
    assert {c.env_kwargs["distractors"] for c in cases} == {False}  # the trained settings stay
    assert {c.env_kwargs["num_symbols"] for c in cases} == {6}
    kind, cases = evaluation_cases("memrl/RoomBallet-v0", {})
    assert kind == "question_types" and len(cases) == 4
    small = {"rooms": [2, 2], "num_events": 6}  # the trained configuration is kept
    kind, cases = evaluation_cases("memrl/RoomBallet-Active-v0", small)
    assert kind == "question_types"
    assert [c.env_kwargs for c in cases] == [
        {**small, "question": q}
        for q in ("first_seen", "last_seen", "most_visited", "least_visited")
    ]
    assert {c.env_id for c in cases} == {"memrl/RoomBallet-Active-v0"}


class _Oracle:
    """Answers DelayedMatch's cue, read from the cue observation (a perfect memory)."""

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        import numpy as np

        cue = obs[:, :-3].argmax(1)
        state = cue if state is None else np.where(episode_start, cue, state)
        return state, state


def test_run_episodes_counts_each_episode_once():
    oracle = run_episodes(_Oracle(), "memrl/DelayedMatch-v0", {"delay": 5}, episodes=100)
    assert oracle["success_rate"] == 1.0 and oracle["episodes"] == 100


class _WinsSlowlyOrLosesFast(gymnasium.Env):
    """Seeded with an even seed, every episode is a 50-step win; with an odd one, a 1-step loss."""

    observation_space = gymnasium.spaces.Box(0.0, 1.0, (1,))
    action_space = gymnasium.spaces.Discrete(2)

    def __init__(self):
        self.wins, self.t = False, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.wins = seed % 2 == 0
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        end = self.t >= (50 if self.wins else 1)
        win = end and self.wins
        return np.zeros(1, np.float32), float(win), end, False, {"is_success": win}


class _Idle:
    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        return np.zeros(len(obs), dtype=int), state


def test_run_episodes_does_not_favour_short_episodes():
    """Every env plays its quota, so short failures are not over-counted.

    Two of the four envs win in 50 steps, two lose in one: the first 40 episodes to end would all
    be losses.
    """
    gymnasium.register("memrl-test/WinsSlowlyOrLosesFast-v0", entry_point=_WinsSlowlyOrLosesFast)
    try:
        result = run_episodes(
            _Idle(), "memrl-test/WinsSlowlyOrLosesFast-v0", {}, episodes=40, num_envs=4
        )
    finally:
        gymnasium.registry.pop("memrl-test/WinsSlowlyOrLosesFast-v0")
    assert result["episodes"] == 40
    assert result["success_rate"] == 0.5
    assert result["mean_return"] == 0.5


def test_eval_writes_recall_report(tmp_path):
    _train(tmp_path, "memrl/DelayedMatch-v0", env_kwargs={"delay": 4})
    assert main(["eval", str(tmp_path), "--episodes", "8"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["kind"] == "recall_vs_delay"
    assert [r["env_kwargs"]["delay"] for r in report["results"]] == list(DELAYS)
    assert all(0.0 <= r["success_rate"] <= 1.0 for r in report["results"])
    assert (tmp_path / "recall_vs_delay.png").stat().st_size > 1000
    text = (tmp_path / "report.md").read_text()
    assert "| delay 16 |" in text
    assert 'trained on `memrl/DelayedMatch-v0` with `{"delay": 4}`' in text
    assert "sampled actions." in text and report["deterministic"] is False
    assert main(["eval", str(tmp_path), "--episodes", "8", "--deterministic"]) == 0
    assert json.loads((tmp_path / "report.json").read_text())["deterministic"] is True
    assert "greedy actions." in (tmp_path / "report.md").read_text()


class _GreedyOnlyOracle(_Oracle):
    """Names the cue when asked to act greedily, and a wrong symbol otherwise."""

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        action, state = super().predict(obs, state, episode_start, deterministic)
        return (action if deterministic else (action + 1) % 4), state


class _Sampler:
    """Answers with torch's global RNG, as a policy sampling its actions does."""

    def __init__(self):
        self.actions = []

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        action = torch.randint(0, 4, (len(obs),)).numpy()
        self.actions.append(action)
        return action, state


def test_a_sampled_evaluation_repeats_under_its_seed():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    runs = [_Sampler() for _ in range(3)]
    results = [run_episodes(agent, "memrl/DelayedMatch-v0", {"delay": 5}, episodes=8, seed=seed)
               for agent, seed in zip(runs, (7, 7, 8), strict=True)]  # fmt: skip
    assert results[0] == results[1]
    assert np.array_equal(np.concatenate(runs[0].actions), np.concatenate(runs[1].actions))
    assert not np.array_equal(np.concatenate(runs[0].actions), np.concatenate(runs[2].actions))
    assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG is left as it was


def test_deterministic_reaches_the_agents_predict():
    greedy = run_episodes(_GreedyOnlyOracle(), "memrl/DelayedMatch-v0", {"delay": 5},
                          episodes=20, deterministic=True)  # fmt: skip
    sampled = run_episodes(_GreedyOnlyOracle(), "memrl/DelayedMatch-v0", {"delay": 5},
                           episodes=20)  # fmt: skip
    assert greedy["success_rate"] == 1.0 and sampled["success_rate"] == 0.0


def test_eval_of_a_directory_without_a_run_is_a_clear_error(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_ballet_levels(tmp_path):
    _train(tmp_path, "memrl/BalletGrid-2-delay16-v0")
    from memrl.agents.loading import load_agent

    agent, info = load_agent(tmp_path)
    report = evaluate_run(agent, info, tmp_path, episodes=16)
    assert [r["env_id"] for r in report["results"]][:3] == [
        f"memrl/BalletGrid-{n}-delay16-v0" for n in (2, 4, 8)
    ]


def test_deterministic_is_refused_for_continual_runs(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"stream": "CW10"}))
    assert main(["eval", str(tmp_path), "--deterministic"]) == 2
    assert "--deterministic cannot be used with continual runs" in capsys.readouterr().err


def _files(directory):
    """Every file under ``directory`` (relative path) with its modification time."""
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns
            for p in directory.rglob("*") if p.is_file()}  # fmt: skip


def test_out_dir_takes_every_file_of_the_report(tmp_path):
    run, out = tmp_path / "run", tmp_path / "out"
    run.mkdir()
    out.mkdir()
    info = {"agent": "oracle", "env_id": "memrl/DelayedMatch-v0", "env_kwargs": {}}
    result = evaluate_run(_Oracle(), info, run, episodes=2, out_dir=out)
    assert [r["success_rate"] for r in result["results"]] == [1.0] * len(DELAYS)
    assert set(_files(out)) == {"report.json", "report.md", "recall_vs_delay.png"}
    assert json.loads((out / "report.json").read_text())["run_dir"] == str(run)
    assert _files(run) == {}


@pytest.mark.parametrize("agent", ["gru", "sb3-ppo"])
def test_eval_out_writes_the_report_there_and_nothing_into_the_run(tmp_path, capsys, agent):
    run, out = tmp_path / "run", tmp_path / "reports" / "new"
    assert main(["train", "--env", "memrl/KeyToDoor-v0", "--agent", agent, "--steps", "64",
                 "--num-envs", "2", "--num-steps", "32", "--num-minibatches", "1",
                 "--update-epochs", "1", "--threads", "1", "--no-tensorboard",
                 "--no-progress", "--out", str(run)]) == 0  # fmt: skip
    before = _files(run)
    assert main(["eval", str(run), "--episodes", "2", "--out", str(out)]) == 0
    assert f"wrote {out / 'report.md'} and report.json" in capsys.readouterr().out
    assert set(_files(out)) == {"report.json", "report.md"}
    assert json.loads((out / "report.json").read_text())["agent"] == agent
    assert _files(run) == before


def _never(*args, **kwargs):
    raise AssertionError("evaluated although the report could not be written")


@pytest.mark.parametrize(
    "config",
    [{"env_id": "memrl/KeyToDoor-v0", "core": "gru"}, {"agent": "sb3-ppo"}, {"stream": "CW10"}],
    ids=["memory PPO", "SB3", "continual SAC"],
)
def test_an_unwritable_out_is_refused_before_anything_is_evaluated(
    tmp_path, capsys, monkeypatch, config
):
    for module, name in ((loading, "load_agent"), (evaluate, "evaluate_run"),
                         (continual, "evaluate_continual_runs")):  # fmt: skip
        monkeypatch.setattr(module, name, _never)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config))
    (tmp_path / "file").write_text("kept")
    under = f"it is under {tmp_path / 'file'}, which is a file"
    for out, reason in (
        (tmp_path / "file" / "reports", under),
        (tmp_path / "file", "it is a file"),
    ):
        assert main(["eval", str(run), "--out", str(out)]) == 2
        assert capsys.readouterr().err == f"error: cannot write a report into {out}: {reason}\n"
    assert (tmp_path / "file").read_text() == "kept"

    def read_only(*args, **kwargs):  # what a read-only directory does (root ignores the mode)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(report.tempfile, "NamedTemporaryFile", read_only)
    assert main(["eval", str(run)]) == 2
    assert capsys.readouterr().err == (
        f"error: cannot write a report into {run}: Permission denied; give --out DIR to write "
        "the report elsewhere\n"
    )
    assert set(_files(run)) == {"config.json"}
