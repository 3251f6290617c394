"""Ways a checkpoint file gets damaged, and TensorBoard as a reader sees a run (test helpers)."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def truncate(path: Path) -> None:
    """Cut a file in half, as a save killed midway or a full disk leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def corrupt(path: Path) -> None:
    """Flip bytes inside a zip archive's largest member: the file keeps its size and layout."""
    with zipfile.ZipFile(path) as archive:
        member = max(archive.infolist(), key=lambda info: info.compress_size)
    data = bytearray(path.read_bytes())
    # The local header: 30 bytes, then the name and an extra field of the lengths it records.
    name_length, extra_length = struct.unpack_from("<HH", data, member.header_offset + 26)
    start = member.header_offset + 30 + name_length + extra_length + member.compress_size // 2
    for i in range(start, start + 16):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {"truncated": truncate, "corrupted": corrupt}
"""Each way to damage a file, by name (for ``pytest.mark.parametrize``)."""


def tensorboard_steps(run_dir: Path, tag: str) -> list[int]:
    """The steps of ``tag``'s scalars in a run's ``tb/`` as TensorBoard shows them (purges
    applied)."""
    accumulator = EventAccumulator(str(run_dir / "tb"))
    accumulator.Reload()
    return [event.step for event in accumulator.Scalars(tag)]
