from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import memrl.agents
from memrl.agents.l2m import attach_lora
from memrl.agents.pretrained import load_model, save_model
from memrl.agents.pretrained.checkpoint import _digest, read_tensors, save_tensors

from .conftest import TINY, make_context

AGENTS = Path(memrl.agents.__file__).parent
SOURCES = [*(AGENTS / "pretrained").glob("*.py"), *(AGENTS / "l2m").glob("*.py")]
UNSAFE_LOADS = re.compile(r"torch\.load\(|import pickle|pickle\.loads?\(|weights_only")


def test_round_trip_is_exact_and_keeps_metadata(model, tmp_path):
    path = save_model(tmp_path / "mddt.safetensors", model, TINY, {"data": "MT40+DMC10"})
    loaded, metadata = load_model(path)
    assert loaded.config == TINY and metadata == {"data": "MT40+DMC10"}
    assert not loaded.training
    original = model.state_dict()
    assert original.keys() == loaded.state_dict().keys()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, original[name]), name
    context = make_context()
    assert torch.equal(loaded(context), model(context))


def test_attached_adapters_are_not_part_of_the_model_checkpoint(model, tmp_path):
    attach_lora(model, num_adapters=2)
    loaded, _ = load_model(save_model(tmp_path / "mddt.safetensors", model))
    assert all(len(block.adapters) == 0 for block in loaded.blocks)


def test_a_missing_file_is_named(tmp_path):
    path = tmp_path / "absent.safetensors"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load_model(path)


def test_a_truncated_file_is_a_clear_error_naming_it(model, tmp_path):
    path = save_model(tmp_path / "mddt.safetensors", model)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        ValueError, match=re.escape(f"checkpoint {path} is not a readable safetensors")
    ):
        load_model(path)


def test_a_file_that_is_not_safetensors_is_a_clear_error_naming_it(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x80\x04\x95 this is a pickle, not safetensors")
    with pytest.raises(
        ValueError, match=re.escape(f"checkpoint {path} is not a readable safetensors")
    ):
        load_model(path)


def test_damaged_tensor_bytes_fail_the_checksum(model, tmp_path):
    path = save_model(tmp_path / "mddt.safetensors", model)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # inside the last tensor's bytes; the header still parses
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=re.escape(f"checkpoint {path} is corrupt")):
        load_model(path)


def _rewrite_header(path: Path, **changes: str | None) -> None:
    """Rewrite a checkpoint's header (None deletes a key), keeping a valid checksum."""
    tensors, metadata = read_tensors(path, "mddt")
    metadata.update(changes)
    metadata = {key: value for key, value in metadata.items() if value is not None}
    metadata["memrl_sha256"] = _digest(tensors)
    save_file(tensors, str(path), metadata=metadata)


def test_another_format_version_is_refused_naming_the_file_and_versions(model, tmp_path):
    path = save_model(tmp_path / "mddt.safetensors", model)
    _rewrite_header(path, memrl_format_version="1")
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"checkpoint {path} has memrl_format_version '1'; this memrl reads version '2': "
            "write it again with this memrl (a pretrained model: re-run `memrl pretrain`)"
        ),
    ):
        load_model(path)


def test_a_safetensors_file_without_memrl_metadata_is_refused(model, tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    with pytest.raises(
        ValueError, match=re.escape(f"checkpoint {path} has no memrl_format_version")
    ):
        load_model(path)


def test_config_that_does_not_fit_the_weights_is_refused_naming_the_file(model, tmp_path):
    path = save_model(tmp_path / "mddt.safetensors", model)
    _rewrite_header(path, memrl_config=json.dumps({**TINY.to_dict(), "embed_dim": 32}))
    with pytest.raises(ValueError, match=re.escape(f"checkpoint {path}: weights do not match")):
        load_model(path)
    _rewrite_header(path, memrl_config="{not json")
    with pytest.raises(ValueError, match=re.escape(f"checkpoint {path} has no valid memrl_config")):
        load_model(path)


def test_another_kind_of_tensors_is_refused(tmp_path):
    path = save_tensors(tmp_path / "pool.safetensors", {"keys": torch.zeros(3, 4)}, "l2m-pool")
    with pytest.raises(
        ValueError, match=re.escape(f"checkpoint {path} holds 'l2m-pool', expected 'mddt'")
    ):
        load_model(path)
    tensors, metadata = read_tensors(path, "l2m-pool")
    assert torch.equal(tensors["keys"], torch.zeros(3, 4))


def test_reserved_metadata_keys_and_a_mismatched_config_are_refused(model, tmp_path):
    with pytest.raises(ValueError, match="metadata keys starting with 'memrl_' are memrl's"):
        save_model(tmp_path / "m.safetensors", model, extra_metadata={"memrl_kind": "x"})
    other = dataclasses.replace(TINY, num_bins=8)
    with pytest.raises(ValueError, match="does not match the model's"):
        save_model(tmp_path / "m.safetensors", model, other)


def test_no_pickle_is_loaded_anywhere_in_the_model_or_pool_code():
    assert SOURCES
    for source in SOURCES:
        assert not UNSAFE_LOADS.search(source.read_text()), source
