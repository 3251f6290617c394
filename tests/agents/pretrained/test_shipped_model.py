"""The pretrained model shipped in assets/ loads on a fresh clone and is what its card says."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from memrl.agents.pretrained import load_model
from memrl.agents.pretrained.tasks import DOMAINS

ASSETS = Path(__file__).resolve().parents[3] / "assets" / "pretrained"


def test_the_shipped_model_loads_with_its_statistics_and_task_table():
    model, metadata = load_model(ASSETS / "mddt.safetensors")
    assert sum(p.numel() for p in model.parameters()) == 216_448
    metaworld = DOMAINS.index("metaworld")
    assert not torch.all(model.state_std[metaworld] == 1.0)  # normalised by its data
    tasks = json.loads(metadata["tasks"])
    assert len(tasks) == 44 and {t["domain"] for t in tasks} == {"metaworld", "dm_control"}


def test_the_model_card_names_the_files_hash_and_its_evaluation():
    card = (ASSETS / "README.md").read_text()
    digest = hashlib.sha256((ASSETS / "mddt.safetensors").read_bytes()).hexdigest()
    assert digest in card
    evaluation = json.loads((ASSETS / "evaluation.json").read_text())
    metaworld = [t["success_rate"] for t in evaluation["tasks"] if t["domain"] == "metaworld"]
    assert len(metaworld) == 40
    assert f"MT40 mean success: {sum(metaworld) / len(metaworld):.2f}" in card
