"""The action checks every env shares (``memrl.envs.actions``); each env's is in test_contract."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from memrl.envs.actions import (
    check_action,
    check_batched_discrete_actions,
    check_box_action,
    check_discrete_action,
)
from memrl.envs.batched import BatchedEnv

INTEGERS = [3, np.int64(3), np.int8(3), np.uint64(3), np.array(3), np.array(3, dtype=np.uint8)]


@pytest.mark.parametrize("action", INTEGERS, ids=repr)
def test_a_discrete_action_is_any_integer_and_comes_back_as_a_python_int(action):
    checked = check_discrete_action(action, 8)
    assert checked == 3 and type(checked) is int


NOT_INTEGERS = [
    (3.0, "3.0 (float)"),
    (np.float32(3), "3.0"),
    (np.array(3.0), "array(3.)"),
    (True, "True (bool)"),
    (np.True_, "True"),
    (np.array([3]), "array([3])"),
    ("3", "'3' (str)"),
    (None, "None"),
]


@pytest.mark.parametrize(("action", "shown"), NOT_INTEGERS, ids=repr)
def test_a_discrete_action_that_is_not_an_integer_is_refused(action, shown):
    with pytest.raises(ValueError, match="action must be an integer in Discrete") as error:
        check_discrete_action(action, 8)
    assert shown in str(error.value)


@pytest.mark.parametrize("action", [8, -1, 2**70, -(2**70), np.uint64(2**64 - 1)], ids=repr)
def test_a_discrete_action_out_of_range_is_refused(action):
    with pytest.raises(ValueError, match=rf"action must be in Discrete\(8\), got {action}$"):
        check_discrete_action(action, 8)


def test_a_discrete_space_with_a_start_is_checked_from_its_start():
    assert check_discrete_action(-1, 3, start=-1) == -1
    with pytest.raises(ValueError, match=r"in Discrete\(3, start=-1\), got 2"):
        check_discrete_action(2, 3, start=-1)
    assert check_action(np.int64(1), spaces.Discrete(3, start=-1)) == 1


BOX = spaces.Box(-1.0, 1.0, (2,), np.float32)


def test_a_box_action_needs_the_shape_a_number_dtype_and_finite_values():
    assert check_box_action([0.5, 7], BOX).tolist() == [0.5, 7.0]  # beyond the bounds: clipped
    assert check_box_action(np.array([0, 1]), BOX).dtype == np.int64  # integers are numbers
    for bad, shown in (
        (np.zeros(3), "shape (3,)"),
        (0.0, "shape ()"),
        (np.zeros(2, dtype=bool), "dtype bool"),
        (["a", "b"], "dtype <U1"),
        (np.array([0.0, np.nan]), "nan"),
        (np.array([np.inf, 0.0]), "inf"),
    ):
        with pytest.raises(ValueError, match=r"Box\(-1.0, 1.0, \(2,\), float32\)") as error:
            check_box_action(bad, BOX)
        assert shown in str(error.value)


def test_other_spaces_are_checked_by_their_contains():
    space = spaces.MultiDiscrete([2, 3])
    action = np.array([1, 2])
    assert check_action(action, space) is action
    with pytest.raises(ValueError, match=r"action must be in MultiDiscrete\(\[2 3\]\)"):
        check_action(np.array([1, 3]), space)


def test_a_batch_of_discrete_actions_comes_back_as_int64_and_names_the_bad_entry():
    space = spaces.Discrete(4)
    checked = check_batched_discrete_actions([0, 3, 1], space, 3)
    assert checked.dtype == np.int64 and checked.tolist() == [0, 3, 1]
    with pytest.raises(ValueError, match=r"in Discrete\(4\), got 18446744073709551615 for sub-en"):
        check_batched_discrete_actions(np.array([0, 2**64 - 1, 0], dtype=np.uint64), space, 3)
    with pytest.raises(ValueError, match=r"in Discrete\(4\), got -2 for sub-environment 2"):
        check_batched_discrete_actions(np.array([0, 0, -2]), space, 3)
    shifted = spaces.Discrete(4, start=1)
    assert check_batched_discrete_actions(np.array([1, 4]), shifted, 2).tolist() == [1, 4]
    with pytest.raises(ValueError, match=r"start=1\), got 0 for sub-environment 1"):
        check_batched_discrete_actions(np.array([1, 0]), shifted, 2)


def test_a_batched_env_takes_discrete_actions_only():
    with pytest.raises(TypeError, match="batched envs take Discrete actions, got"):
        BatchedEnv(2, spaces.Discrete(2), BOX)
