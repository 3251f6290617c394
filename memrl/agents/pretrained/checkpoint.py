"""Checkpoints of the multi-domain Decision Transformer, in safetensors only.

A checkpoint is one ``.safetensors`` file: the model's tensors, plus string metadata in the
file's header:

- ``memrl_format_version``: :data:`FORMAT_VERSION`; a file of another version is refused.
  Version 2 added the model's per-domain state statistics (``state_mean``, ``state_std``); a
  version-1 model was trained on unnormalised states and cannot be used with them.
- ``memrl_kind``: what the tensors are (``"mddt"`` for the model).
- ``memrl_config``: the :class:`MDDTConfig` as JSON.
- ``memrl_sha256``: a SHA-256 of the tensors (names, dtypes, shapes and bytes), so that a file
  whose bytes were damaged is refused rather than loaded.
- any ``extra_metadata`` the caller gave (string keys and values, not starting with ``memrl_``).

Nothing here calls ``torch.load`` or unpickles anything: safetensors holds raw tensor bytes and a
JSON header, so a file a user was handed cannot run code. Every error names the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import safetensors
import torch
from safetensors.torch import save_file

from memrl.agents.pretrained.config import MDDTConfig
from memrl.agents.pretrained.model import MultiDomainDecisionTransformer

FORMAT_VERSION = "2"
"""The checkpoint format this memrl writes and reads (2: models carry state statistics)."""
STATISTICS_KEYS = ("state_mean", "state_std")
"""The model's per-domain state statistics: a model file must hold them."""
MODEL_KIND = "mddt"
"""``memrl_kind`` of a multi-domain Decision Transformer checkpoint."""
RESERVED_PREFIX = "memrl_"
"""Metadata keys memrl itself writes."""


def _digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _checked_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """The caller's metadata, checked to map str to str without memrl's reserved keys."""
    extra = dict(metadata or {})
    for key, value in extra.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"metadata must map str to str, got {key!r}: {value!r}")
        if key.startswith(RESERVED_PREFIX):
            raise ValueError(
                f"metadata keys starting with {RESERVED_PREFIX!r} are memrl's, got {key!r}"
            )
    return extra


def _write(
    path: str | Path,
    tensors: Mapping[str, torch.Tensor],
    kind: str,
    metadata: dict[str, str],
) -> Path:
    """Write tensors with memrl's header (version, kind, checksum) plus ``metadata``."""
    path = Path(path)
    stored = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
    header = {
        **metadata,
        "memrl_format_version": FORMAT_VERSION,
        "memrl_kind": kind,
        "memrl_sha256": _digest(stored),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(stored, str(path), metadata=header)
    return path


def save_tensors(
    path: str | Path,
    tensors: Mapping[str, torch.Tensor],
    kind: str,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``tensors`` and metadata to a safetensors file in memrl's format.

    For anything besides the model itself (a fine-tuning run's adapters and pool keys, say);
    :func:`read_tensors` reads it back.

    Args:
        path: The file to write (parent directories are created).
        tensors: Named tensors.
        kind: What they are (``memrl_kind``).
        metadata: Extra string metadata; keys must not start with ``memrl_``.

    Returns:
        The path written.

    Raises:
        ValueError: Metadata that is not string to string or uses a reserved key.
    """
    return _write(path, tensors, kind, _checked_metadata(metadata))


def read_tensors(path: str | Path, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read and verify a file written by :func:`save_tensors`.

    Args:
        path: The file.
        kind: The ``memrl_kind`` it must have.

    Returns:
        ``(tensors, metadata)``; the metadata includes memrl's own keys.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a safetensors file, truncated, damaged (checksum), not memrl's format,
            another format version or another kind. The message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with safetensors.safe_open(str(path), framework="pt") as file:
            metadata = dict(file.metadata() or {})
            tensors = {name: file.get_tensor(name) for name in file.keys()}  # noqa: SIM118
    except (safetensors.SafetensorError, OSError) as error:
        raise ValueError(
            f"checkpoint {path} is not a readable safetensors file (truncated or corrupt?): {error}"
        ) from error
    version = metadata.get("memrl_format_version")
    if version is None:
        raise ValueError(
            f"checkpoint {path} has no memrl_format_version: not a memrl checkpoint "
            f"(this memrl reads version {FORMAT_VERSION})"
        )
    if version != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint {path} has memrl_format_version {version!r}; "
            f"this memrl reads version {FORMAT_VERSION!r}: write it again with this memrl "
            "(a pretrained model: re-run `memrl pretrain`)"
        )
    found_kind = metadata.get("memrl_kind")
    if found_kind != kind:
        raise ValueError(f"checkpoint {path} holds {found_kind!r}, expected {kind!r}")
    if metadata.get("memrl_sha256") != _digest(tensors):
        raise ValueError(f"checkpoint {path} is corrupt: its tensors do not match their checksum")
    return tensors, metadata


def save_model(
    path: str | Path,
    model: MultiDomainDecisionTransformer,
    config: MDDTConfig | None = None,
    extra_metadata: Mapping[str, str] | None = None,
) -> Path:
    """Save the pretrained model's own weights, state statistics and config (not its adapters).

    Args:
        path: The ``.safetensors`` file to write.
        model: The model.
        config: Its config (default ``model.config``; if given it must equal it).
        extra_metadata: Extra string metadata, e.g. the training data and steps.

    Returns:
        The path written.

    Raises:
        ValueError: ``config`` differs from ``model.config``, or bad metadata.
    """
    config = model.config if config is None else config
    if config != model.config:
        raise ValueError(f"config {config} does not match the model's {model.config}")
    tensors = {
        name: tensor for name, tensor in model.state_dict().items() if ".adapters." not in name
    }
    metadata = _checked_metadata(extra_metadata)
    metadata["memrl_config"] = json.dumps(config.to_dict(), sort_keys=True)
    return _write(path, tensors, MODEL_KIND, metadata)


def load_model(path: str | Path) -> tuple[MultiDomainDecisionTransformer, dict[str, str]]:
    """Load a model saved by :func:`save_model`, in evaluation mode.

    Args:
        path: The ``.safetensors`` file.

    Returns:
        ``(model, extra_metadata)`` (memrl's own keys removed from the metadata).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Unreadable, truncated or damaged file, another format version, a bad config,
            no state statistics, or weights that do not fit the config. The message names the
            file.
    """
    tensors, metadata = read_tensors(path, MODEL_KIND)
    try:
        config = MDDTConfig.from_dict(json.loads(metadata["memrl_config"]))
    except (KeyError, json.JSONDecodeError, TypeError, ValueError) as error:
        raise ValueError(f"checkpoint {path} has no valid memrl_config: {error}") from error
    missing = [key for key in STATISTICS_KEYS if key not in tensors]
    if missing:
        raise ValueError(
            f"checkpoint {path} has no state statistics {missing}: the model would see "
            "unnormalised states; re-run `memrl pretrain` to write a model that has them"
        )
    model = MultiDomainDecisionTransformer(config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise ValueError(f"checkpoint {path}: weights do not match its config: {error}") from error
    model.eval()
    extra = {key: value for key, value in metadata.items() if not key.startswith(RESERVED_PREFIX)}
    return model, extra
