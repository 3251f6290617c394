from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from memrl.agents.pretrained.layout import (
    ACTION_DIM,
    STATE_DIM,
    action_mask,
    layout_widths,
    pad_actions,
    pad_states,
)


@pytest.mark.slow
def test_recorded_widths_match_the_l2m_task_lists():
    """Builds all 66 environments of L2M-pretrain and L2M-finetune (about half a minute)."""
    assert layout_widths() == (STATE_DIM, ACTION_DIM)


def test_padding_puts_a_task_first_and_zeros_after():
    states = pad_states(np.ones((2, 5)))
    assert states.shape == (2, STATE_DIM) and states.dtype == np.float32
    assert (states[:, :5] == 1).all() and (states[:, 5:] == 0).all()
    actions = pad_actions(np.full((3, 2), 0.5))
    assert actions.shape == (3, ACTION_DIM)
    assert (actions[:, :2] == 0.5).all() and (actions[:, 2:] == 0).all()
    assert action_mask(4).tolist() == [True] * 4 + [False] * (ACTION_DIM - 4)


def test_too_wide_inputs_are_refused_with_the_allowed_range():
    with pytest.raises(
        ValueError, match=f"states have 40 features, the layout allows 1..{STATE_DIM}"
    ):
        pad_states(np.zeros((1, 40)))
    with pytest.raises(
        ValueError, match=f"actions have 7 dimensions, the layout allows 1..{ACTION_DIM}"
    ):
        pad_actions(np.zeros(7))
    with pytest.raises(ValueError, match=f"task_action_dim must be 1..{ACTION_DIM}, got 0"):
        action_mask(0)


def test_importing_the_model_and_pool_imports_no_simulator_eval_or_cli():
    code = (
        "import sys, memrl.agents.pretrained, memrl.agents.l2m\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('metaworld', 'dm_control', 'mujoco') or m.startswith(('memrl.eval', 'memrl.cli')))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
