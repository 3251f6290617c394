from __future__ import annotations

import math

import numpy as np
import pytest

from memrl.agents.scripted import FAMILY_POLICIES
from memrl.demo import chance_level, evaluate, success_rate
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

FALSE_ALARM = 1e-3
"""Probability that a memory-free policy truly at chance fails the chance test (two-sided)."""
LEAK = 0.1
"""A memory-free policy that knows the answer on this fraction of episodes (and guesses on the
others) must fail the chance test..."""
POWER = 0.99
"""...with this probability; the number of episodes is the smallest (in hundreds) that does it."""


def binomial_pmf(n: int, p: float) -> np.ndarray:
    """``P(X = k)`` for ``k = 0..n``, ``X ~ Binomial(n, p)``, computed in log space."""
    k = np.arange(n)
    steps = np.log((n - k) / (k + 1)) + math.log(p) - math.log1p(-p)
    return np.exp(n * math.log1p(-p) + np.concatenate([[0.0], np.cumsum(steps)]))


def acceptance_region(n: int, p: float, false_alarm: float) -> tuple[int, int]:
    """Win counts ``lo..hi`` whose two tails under ``Binomial(n, p)`` hold at most
    ``false_alarm / 2`` each."""
    pmf = binomial_pmf(n, p)
    below = np.cumsum(pmf)  # below[k] = P(X <= k)
    above = np.cumsum(pmf[::-1])[::-1]  # above[k] = P(X >= k)
    lo = int(np.searchsorted(below, false_alarm / 2, side="right"))  # P(X < lo) <= alarm / 2
    hi = int(np.flatnonzero(above > false_alarm / 2)[-1])  # P(X > hi) <= alarm / 2
    return lo, hi


def episodes_to_catch(chance: float, leak: float, false_alarm: float, power: float) -> int:
    """Fewest episodes (a multiple of 100) at which a ``leak`` falls outside the region."""
    leaked = chance + leak * (1 - chance)
    n = 100
    while True:
        lo, hi = acceptance_region(n, chance, false_alarm)
        if binomial_pmf(n, leaked)[lo : hi + 1].sum() <= 1 - power:
            return n
        n += 100


def test_the_binomial_region_is_exact():
    n, p = 60, 0.3
    exact = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    np.testing.assert_allclose(binomial_pmf(n, p), exact, rtol=1e-9)
    lo, hi = acceptance_region(n, p, 0.01)
    assert sum(exact[:lo]) <= 0.005 < sum(exact[: lo + 1])
    assert sum(exact[hi + 1 :]) <= 0.005 < sum(exact[hi:])


@pytest.mark.parametrize("env_id", CASES)
def test_oracle_is_perfect_and_memory_free_sits_at_chance(env_id):
    """Chance within a binomial bound tight enough to catch a memory-free policy that knows the
    answer 10% of the time (a leak of the answer into what it sees)."""
    make_policy = FAMILY_POLICIES[MEMORY[env_id].family]
    assert success_rate(env_id, make_policy(seed=1, oracle=True), episodes=400, seed=1) == 1.0
    chance = chance_level(env_id)
    episodes = episodes_to_catch(chance, LEAK, FALSE_ALARM, POWER)
    free = make_policy(seed=1, oracle=False)
    wins = round(success_rate(env_id, free, episodes, seed=1) * episodes)
    lo, hi = acceptance_region(episodes, chance, FALSE_ALARM)
    assert lo <= wins <= hi, f"memory-free won {wins}/{episodes}; chance {chance:.3f}: {lo}..{hi}"


def test_key_to_door_oracle_opens_the_door_and_random_moves_rarely_do():
    row = evaluate("memrl/KeyToDoor-v0", episodes=200, seed=0)
    assert row.oracle == 1.0
    assert row.memory_free <= 0.15


def test_every_family_has_a_scripted_policy():
    assert {entry.family for entry in MEMORY.values()} <= set(FAMILY_POLICIES)
