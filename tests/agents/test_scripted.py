from __future__ import annotations

import pytest

from memrl.demo import chance_level, evaluate
from memrl.envs import MEMORY

# One env per family and variant; CuedReach (Meta-World) is covered in test_cued_reach.py.
CASES = [
    "memrl/BalletGrid-8-delay16-v0",
    "memrl/Ballet-2-delay48-v0",
    "memrl/RoomBallet-Active-v0",
    "memrl/RoomBallet-ShortStay-v0",
    "memrl/DelayedMatch-Medium-v0",
    "memrl/PassiveVisualMatch-v0",
]


@pytest.mark.parametrize("env_id", CASES)
def test_oracle_is_perfect_and_memory_free_sits_at_chance(env_id):
    row = evaluate(env_id, episodes=400, seed=1)
    assert row.oracle == 1.0
    assert abs(row.memory_free - chance_level(env_id)) <= 0.06, row


def test_key_to_door_oracle_opens_the_door_and_random_moves_rarely_do():
    row = evaluate("memrl/KeyToDoor-v0", episodes=200, seed=0)
    assert row.oracle == 1.0
    assert row.memory_free <= 0.15


def test_every_family_has_a_scripted_policy():
    from memrl.agents.scripted import FAMILY_POLICIES

    assert {entry.family for entry in MEMORY.values()} <= set(FAMILY_POLICIES)
