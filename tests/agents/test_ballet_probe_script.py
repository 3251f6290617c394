"""scripts/ballet_probe.py: the episodes and labels it trains on, resume, and its archived table."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from memrl.envs.ballet import DANCER_SLOTS, SLOT_ACTIONS, timeline
from memrl.envs.ballet_vector import BatchedBalletEnv

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ballet_probe.py"
ARCHIVE = ROOT / "assets" / "results" / "ballet_probe" / "offline"
_spec = importlib.util.spec_from_file_location("ballet_probe", SCRIPT)
assert _spec and _spec.loader
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)


@pytest.mark.parametrize(("dancers", "delay"), [(2, 16), (4, 48)])
def test_a_batch_ends_on_the_choice_step_and_is_labelled_with_the_move_onto_the_target(
    dancers, delay
):
    env = BatchedBalletEnv(6, dancers, delay, "grid")
    observations, answers = probe.episode_batch(env, seed=7, variant="none")
    _, info = env.reset(seed=7)  # the same episodes again
    memory = info["memory"]
    instruction = observations["instruction"].numpy()
    assert instruction.shape == (env.choice_step + 1, 6)
    assert (instruction[:-1] == 0).all()  # "watch" until the choice step
    assert np.array_equal(instruction[-1], memory["target_dance_index"] + 1)
    slots = [DANCER_SLOTS.index(tuple(int(v) for v in s)) for s in memory["target_slot"]]
    assert answers.tolist() == SLOT_ACTIONS[slots].tolist()


def test_the_dance_variant_names_each_dance_exactly_while_it_is_performed():
    env = BatchedBalletEnv(5, 4, 16, "grid")
    observations, _ = probe.episode_batch(env, seed=3, variant="dance")
    _, info = env.reset(seed=3)
    dances = info["memory"]["dances"]
    expected = np.zeros((env.choice_step + 1, 5), dtype=np.int64)
    for k, steps in enumerate(timeline(4, 16)):
        expected[steps] = dances[:, k] + 1
    expected[-1] = info["memory"]["target_dance_index"] + 1
    assert np.array_equal(observations["instruction"].numpy(), expected)


def test_a_curriculum_shows_the_names_to_a_share_of_episodes_falling_from_1_to_0():
    assert [probe.hint_probability(n, 100) for n in (0, 25, 100, 400)] == [1.0, 0.75, 0.0, 0.0]
    assert probe.hint_probability(0, 0) == 0.0  # no curriculum
    shares = [probe.hinted_episodes(0, b, 1000, 10_000).mean() for b in (0, 5, 10)]
    assert shares[0] == 1.0 and 0.45 < shares[1] < 0.55 and shares[2] == 0.0
    again = probe.hinted_episodes(0, 5, 1000, 10_000)  # drawn the same when resumed
    assert np.array_equal(again, probe.hinted_episodes(0, 5, 1000, 10_000))
    env = BatchedBalletEnv(6, 2, 16, "grid")
    hinted = np.array([True, False, True, False, False, True])
    mixed, _ = probe.episode_batch(env, seed=4, variant="none", hinted=hinted)
    names, _ = probe.episode_batch(env, seed=4, variant="dance")
    plain, _ = probe.episode_batch(env, seed=4, variant="none")
    for episode, given in enumerate(hinted):
        expected = (names if given else plain)["instruction"][:, episode]
        assert torch.equal(mixed["instruction"][:, episode], expected)


def test_a_curriculum_scores_only_the_episodes_without_the_names(tmp_path, monkeypatch):
    """Right on every hinted episode and wrong on every other: accuracy 0 on the scored ones."""
    real_batch, real_logits, last = probe.episode_batch, probe.choice_logits, {}

    def recording(env, seed, variant, hinted=None):
        observations, answers = real_batch(env, seed, variant, hinted)
        last.update(answers=answers, hinted=torch.as_tensor(hinted))
        return observations, answers

    def right_only_when_hinted(policy, observations):
        logits, hidden = real_logits(policy, observations)
        right = torch.nn.functional.one_hot(last["answers"], logits.shape[-1]).bool()
        wanted = torch.where(last["hinted"][:, None], right, ~right)
        return logits + 1e4 * wanted, hidden

    monkeypatch.setattr(probe, "episode_batch", recording)
    monkeypatch.setattr(probe, "choice_logits", right_only_when_hinted)
    probe.main([*_args(tmp_path / "run"), "--curriculum", "192"])
    curve = json.loads((tmp_path / "run" / "result.json").read_text())["curve"]
    expected = [int((~probe.hinted_episodes(0, b, 8, 192)).sum()) for b in range(12)]
    assert [row["scored"] for row in curve] == [sum(expected[i : i + 2]) for i in range(0, 12, 2)]
    assert 0 < sum(expected) < 96  # some episodes of the run were hinted, some not
    assert all(row["accuracy"] == 0.0 for row in curve)


def test_the_logits_trained_are_those_the_agent_acts_with_at_the_choice_step():
    env = BatchedBalletEnv(3, 2, 16, "grid")
    settings = {"core": "hcam", "core_kwargs": probe.CORES["hcam"]}
    policy = probe.build_policy(probe.PPOConfig(**settings), env)
    observations, _ = probe.episode_batch(env, seed=1, variant="none")
    with torch.no_grad():
        logits, hidden = probe.choice_logits(policy, observations)
        state = policy.initial_state(3)
        steps = observations["instruction"].shape[0]
        for t in range(steps):
            step = {key: value[t] for key, value in observations.items()}
            dist, _, state = policy.act(step, state, torch.full((3,), t == 0), None)
    torch.testing.assert_close(logits, dist.logits, atol=1e-5, rtol=1e-5)
    assert hidden.shape == (steps, 3, policy.core.output_dim)


def test_the_reconstruction_loss_trains_the_decoder_with_the_agent(tmp_path):
    """--reconstruction-coef adds memory PPO's decoder loss to the update; without it, none."""
    from memrl.agents.checkpoints import CheckpointStore

    probe.main([*_args(tmp_path / "recon"), "--reconstruction-coef", "1.0"])
    probe.main(_args(tmp_path / "plain"))
    torch.manual_seed(0)  # the run's seed: the same initial weights
    env = BatchedBalletEnv(8, 2, 16, "grid")
    config = probe.PPOConfig(core="gru", reconstruction_coef=1.0)
    initial = probe.build_policy(config, env).state_dict()
    trained = CheckpointStore(tmp_path / "recon" / "checkpoints").load()[1]["policy"]
    decoder = [k for k in initial if k.startswith("decoder.")]
    assert decoder and all(not torch.equal(trained[k], initial[k]) for k in decoder)
    plain = CheckpointStore(tmp_path / "plain" / "checkpoints").load()[1]["policy"]
    assert not any(k.startswith("decoder.") for k in plain)
    recon = json.loads((tmp_path / "recon" / "result.json").read_text())["curve"]
    assert all(row["reconstruction"] > 0 for row in recon)
    assert recon[-1]["reconstruction"] < recon[0]["reconstruction"]


def test_no_episode_is_trained_on_twice(tmp_path, monkeypatch):
    real, episodes = probe.episode_batch, []

    def recording(env, seed, variant, hinted=None):
        observations, answers = real(env, seed, variant, hinted)
        grids = observations["grid"].numpy()  # [T, B, 242]: an episode is its column
        episodes.extend(grids[:, i].tobytes() for i in range(grids.shape[1]))
        return observations, answers

    monkeypatch.setattr(probe, "episode_batch", recording)
    probe.main(_args(tmp_path / "run"))
    assert len(episodes) == 12 * 8
    assert len(set(episodes)) == len(episodes)


def _args(out: Path) -> list[str]:
    return ["--core", "gru", "--labels", "96", "--batch-size", "8", "--log-every", "2",
            "--checkpoint-every", "4", "--no-progress", "--out", str(out)]  # fmt: skip


def test_a_killed_run_resumes_exactly(tmp_path, monkeypatch):
    probe.main(_args(tmp_path / "whole"))
    real = probe.episode_batch

    def dies_at_batch_6(env, seed, variant, hinted=None):
        if seed == probe.first_episode_seed(0, 6, 8):
            raise KeyboardInterrupt
        return real(env, seed, variant, hinted)

    monkeypatch.setattr(probe, "episode_batch", dies_at_batch_6)
    with pytest.raises(KeyboardInterrupt):
        probe.main(_args(tmp_path / "killed"))
    monkeypatch.setattr(probe, "episode_batch", real)
    probe.main(_args(tmp_path / "killed"))
    whole = json.loads((tmp_path / "whole" / "result.json").read_text())
    resumed = json.loads((tmp_path / "killed" / "result.json").read_text())
    for run in (whole, resumed):
        for row in run["curve"]:
            row.pop("seconds")
    assert resumed["curve"] == whole["curve"]
    assert len(whole["curve"]) == 6  # 12 batches, a row per 2


def test_a_run_directory_with_other_settings_is_refused(tmp_path):
    probe.main(_args(tmp_path / "run"))
    with pytest.raises(SystemExit, match="other settings.*learning_rate"):
        probe.main([*_args(tmp_path / "run"), "--learning-rate", "0.01"])


def test_archive_keeps_the_compact_results_and_the_table_reads_them_alone(tmp_path):
    probe.main([*_args(tmp_path / "runs" / "gru"), "--archive", str(tmp_path / "archive")])
    kept = tmp_path / "archive" / "gru"
    assert sorted(p.name for p in kept.iterdir()) == sorted(probe.ARCHIVED)  # no checkpoints
    for name in probe.ARCHIVED:
        assert (kept / name).read_bytes() == (tmp_path / "runs" / "gru" / name).read_bytes()
    assert probe.table([kept]) == probe.table([tmp_path / "runs" / "gru"])


def test_bad_options_are_named():
    for bad, message in ((["--labels", "0"], "--labels must be >= 1"),
                         (["--core-kwargs", "{"], "--core-kwargs is not JSON"),
                         (["--log-every", "3"], "must be a multiple of --log-every"),
                         (["--curriculum", "9", "--variant", "dance"], "needs --variant none"),
                         (["--curriculum", "-1"], "--curriculum must be >= 0")):  # fmt: skip
        result = subprocess.run([sys.executable, str(SCRIPT), "--out", "x", *bad],
                                capture_output=True, text=True)  # fmt: skip
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_the_committed_archive_rebuilds_the_results_table_exactly():
    runs = sorted(str(path) for path in ARCHIVE.iterdir() if path.is_dir())
    table = subprocess.run(
        [sys.executable, str(SCRIPT), "--table", *runs], check=True, capture_output=True, text=True
    ).stdout
    results = (ROOT / "docs" / "RESULTS.md").read_text()
    start = results.index("<!-- ballet-probe-offline:start -->\n")
    start += len("<!-- ballet-probe-offline:start -->\n")
    assert results[start : results.index("<!-- ballet-probe-offline:end -->")] == table
    for run in ("none", "lstm", "transformer", "hcam", "hcam-dance", "hcam-4layers",
                "transformer-dance", "transformer-dance-recon", "hcam-dance-recon",
                "hcam-curriculum-recon", "hcam-4dancers-curriculum-recon",
                "transformer-curriculum-recon"):  # fmt: skip
        assert f"\n| {run} | " in table


def test_spans_weigh_rows_by_the_episodes_they_scored():
    rows = [{"labels": 16, "scored": 0, "accuracy": 0.0, "loss": 0.0},
            {"labels": 32, "scored": 0, "accuracy": 0.0, "loss": 0.0},
            {"labels": 48, "scored": 3, "accuracy": 1.0, "loss": 0.5},
            {"labels": 64, "scored": 1, "accuracy": 0.0, "loss": 2.5}]  # fmt: skip
    first, rest = probe.blocks(rows, 2)
    assert np.isnan(first["accuracy"])  # a span that scored nothing has no accuracy
    assert (rest["accuracy"], rest["loss"]) == (0.75, 1.0)
