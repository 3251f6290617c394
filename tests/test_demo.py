from __future__ import annotations

import json

from PIL import Image

from memrl.demo import EVAL_DELAYS, RECALL_ENV, RECALL_KWARGS, run_demo, train_recall_agents


def test_demo_writes_its_table_json_and_gif(tmp_path, capsys):
    rows = run_demo(
        tmp_path, episodes=20, seed=0, env_ids=["memrl/BalletGrid-2-delay16-v0"], train_steps=0,
        l2m_updates_per_task=0,
    )  # fmt: skip
    assert [r.id for r in rows] == ["memrl/BalletGrid-2-delay16-v0"]
    out = capsys.readouterr().out
    assert "memrl/BalletGrid-2-delay16-v0" in out and "oracle" in out
    report = json.loads((tmp_path / "demo.json").read_text())
    assert report["rows"][0]["oracle"] == 1.0
    assert report["trained"] == [] and report["l2m"] is None
    with Image.open(tmp_path / "ballet.gif") as gif:
        assert gif.n_frames > 64  # the whole watch phase and the walk


def test_demo_trains_hcam_and_lstm_and_resumes(tmp_path, monkeypatch):
    from memrl.eval import evaluate

    played: list[dict] = []
    run_episodes = evaluate.run_episodes

    def recorded(agent, env_id, env_kwargs, episodes, **kwargs):
        played.append(dict(env_kwargs))
        return run_episodes(agent, env_id, env_kwargs, episodes, **kwargs)

    monkeypatch.setattr(evaluate, "run_episodes", recorded)
    rows = train_recall_agents(tmp_path, steps=4096, seed=0, episodes=16)
    # Each agent is evaluated at each fixed delay, with the training env's other options.
    assert played == [{"delay": 64, "num_symbols": 4}, {"delay": 1024, "num_symbols": 4}] * 2
    assert [r.agent for r in rows] == ["hcam", "lstm"]
    for row in rows:
        assert row.steps == 4096
        assert row.eval_delays == list(EVAL_DELAYS) == [64, 1024]
        assert len(row.eval_success) == 2 and row.eval_episodes == 16
        assert all(0.0 <= s <= 1.0 for s in row.eval_success)
        config = json.loads((tmp_path / row.agent / "config.json").read_text())
        assert (config["env_id"], config["core"]) == (RECALL_ENV, row.agent)
        assert config["env_kwargs"] == RECALL_KWARGS == {"delay": [0, 128], "num_symbols": 4}
        # The same memory-PPO schedule for both: the defaults, not one starving the LSTM.
        assert (config["update_epochs"], config["num_minibatches"]) == (8, 8)
        assert (tmp_path / row.agent / "checkpoints" / "latest.pt").exists()
    assert (tmp_path / "training_curves.png").exists()
    # Run again: the finished runs are loaded from their checkpoints, not trained again.
    again = train_recall_agents(tmp_path, steps=4096, seed=0, episodes=16)
    assert [r.steps for r in again] == [4096, 4096]
    assert [r.eval_success for r in again] == [r.eval_success for r in rows]
