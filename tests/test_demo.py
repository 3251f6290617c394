from __future__ import annotations

import json

from PIL import Image

from memrl.demo import run_demo


def test_demo_writes_its_table_json_and_gif(tmp_path, capsys):
    rows = run_demo(tmp_path, episodes=20, seed=0, env_ids=["memrl/BalletGrid-2-delay16-v0"])
    assert [r.id for r in rows] == ["memrl/BalletGrid-2-delay16-v0"]
    out = capsys.readouterr().out
    assert "memrl/BalletGrid-2-delay16-v0" in out and "oracle" in out
    report = json.loads((tmp_path / "demo.json").read_text())
    assert report["rows"][0]["oracle"] == 1.0
    with Image.open(tmp_path / "ballet.gif") as gif:
        assert gif.n_frames > 64  # the whole watch phase and the walk
