from __future__ import annotations

import pytest
import torch

from memrl.agents.pretrained import ActionBinning


def test_round_trip_moves_an_action_by_at_most_half_a_bin():
    binning = ActionBinning(64)
    actions = torch.linspace(-1.0, 1.0, 10_001)
    decoded = binning.decode(binning.encode(actions))
    assert (decoded - actions).abs().max() <= binning.bin_width / 2 + 1e-6


def test_bins_cover_the_range_and_clip_outside_it():
    binning = ActionBinning(64)
    bins = binning.encode(torch.tensor([-5.0, -1.0, -1.0 + 1e-4, 0.0, 1.0 - 1e-4, 1.0, 5.0]))
    assert bins.tolist() == [0, 0, 0, 32, 63, 63, 63]
    assert bins.dtype == torch.long
    centres = binning.decode(torch.arange(64))
    assert torch.allclose(centres[[0, -1]], torch.tensor([-1 + 1 / 64, 1 - 1 / 64]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_bins": 1}, "num_bins must be >= 2, got 1"), ({"low": 1.0}, "high must exceed low")],
)
def test_bad_binning_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ActionBinning(**kwargs)
