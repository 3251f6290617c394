"""The Adaptive Memory Allocator as a contextual bandit."""

from __future__ import annotations

import inspect

import pytest
import torch

from memrl.memory import AdaptiveMemoryAllocator

# A synthetic bandit: 4 contexts (question types), 4 arms (strategies); each context has its own
# best arm. Rewards are Bernoulli(success probability).
SUCCESS = torch.tensor(
    [
        [0.2, 0.8, 0.4, 0.3],  # context 0: arm 1
        [0.3, 0.2, 0.4, 0.7],  # context 1: arm 3
        [0.9, 0.5, 0.6, 0.5],  # context 2: arm 0
        [0.4, 0.3, 0.7, 0.5],  # context 3: arm 2
    ]
)
BEST = SUCCESS.argmax(dim=1)


def _train(allocator: AdaptiveMemoryAllocator, updates: int, batch: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(updates):
        context = torch.randint(0, 4, (batch,), generator=g)
        strategy = allocator.select(context)
        reward = (torch.rand(batch, generator=g) < SUCCESS[context, strategy]).float()
        allocator.update(context, strategy, reward)


def test_the_allocator_converges_to_the_best_arm_of_every_context():
    torch.manual_seed(0)
    allocator = AdaptiveMemoryAllocator(context_dim=4, epsilon_decisions=10_000, seed=0)
    _train(allocator, updates=800, batch=32, seed=1)
    assert allocator.epsilon == pytest.approx(0.2)
    assert torch.equal(allocator.select(torch.arange(4), explore=False), BEST)
    q = allocator.q_values(torch.eye(4)).detach()
    best_q = q.gather(1, BEST[:, None])[:, 0]
    torch.testing.assert_close(best_q, SUCCESS.max(dim=1).values, atol=0.3, rtol=0)


def test_epsilon_falls_linearly_over_the_decisions_then_stays():
    allocator = AdaptiveMemoryAllocator(context_dim=2, epsilon_decisions=100, seed=0)
    assert allocator.epsilon == 1.0
    allocator.select(torch.zeros(50, dtype=torch.int64))
    assert allocator.epsilon == pytest.approx(0.6)
    allocator.select(torch.zeros(80, dtype=torch.int64))
    assert allocator.epsilon == pytest.approx(0.2)
    allocator.select(
        torch.zeros(5, dtype=torch.int64), explore=False
    )  # greedy: no decision counted
    assert int(allocator.decisions) == 130


def test_exploration_is_uniform_at_first_and_greedy_without_exploring():
    allocator = AdaptiveMemoryAllocator(context_dim=4, seed=1)
    chosen = allocator.select(torch.zeros(4000, dtype=torch.int64))
    counts = torch.bincount(chosen, minlength=4).float() / 4000
    assert (counts - 0.25).abs().max() < 0.03
    greedy = allocator.select(torch.zeros(10, dtype=torch.int64), explore=False)
    assert len(set(greedy.tolist())) == 1


def test_the_allocator_is_deterministic_under_a_seed_and_accepts_float_contexts():
    runs = []
    for _ in range(2):
        torch.manual_seed(2)
        allocator = AdaptiveMemoryAllocator(context_dim=4, epsilon_decisions=500)
        _train(allocator, updates=20, batch=8, seed=3)
        runs.append(allocator.select(torch.eye(4)))
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"context_dim": 0}, "context_dim must be an integer >= 1, got 0"),
        ({"context_dim": 4, "num_strategies": 0}, "num_strategies must be an integer >= 1, got 0"),
        ({"context_dim": 4, "hidden": 0}, "hidden must be an integer >= 1, got 0"),
        ({"context_dim": 4, "epsilon_decisions": 0}, "epsilon_decisions must be an integer >= 1"),
        ({"context_dim": 4, "epsilon_start": 0.1, "epsilon_end": 0.2}, "epsilon_end=0.2"),
        ({"context_dim": 4, "epsilon_start": 1.5}, "need 0 <= epsilon_end <= epsilon_start <= 1"),
        ({"context_dim": 4, "epsilon_end": -0.1}, "need 0 <= epsilon_end <= epsilon_start <= 1"),
        ({"context_dim": 4, "learning_rate": 0.0}, "learning_rate must be > 0, got 0.0"),
    ],
)
def test_bad_options_raise_naming_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        AdaptiveMemoryAllocator(**options)


def test_the_smallest_and_the_extreme_settings_are_accepted():
    allocator = AdaptiveMemoryAllocator(
        context_dim=1, num_strategies=1, hidden=1, epsilon_decisions=1, seed=0
    )
    assert allocator.select(torch.zeros(3, dtype=torch.int64)).tolist() == [0, 0, 0]
    greedy_at_the_end = AdaptiveMemoryAllocator(context_dim=2, epsilon_end=0.0)
    assert greedy_at_the_end.epsilon_at(1.0) == 0.0
    constant = AdaptiveMemoryAllocator(context_dim=2, epsilon_start=0.5, epsilon_end=0.5)
    assert constant.epsilon_at(0.0) == constant.epsilon_at(1.0) == 0.5


def test_the_defaults_are_the_papers_schedule():
    """Epsilon 1.0 -> 0.2 over 200k decisions (Cho et al. 2024); a 64-wide hidden layer."""
    defaults = {
        name: p.default
        for name, p in inspect.signature(AdaptiveMemoryAllocator).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    assert defaults == {
        "num_strategies": 4,
        "hidden": 64,
        "epsilon_start": 1.0,
        "epsilon_end": 0.2,
        "epsilon_decisions": 200_000,
        "learning_rate": 1e-2,
        "seed": None,
    }


def test_the_q_network_is_not_linear_in_the_context():
    """A hidden ReLU layer: with float contexts, Q(a + b) != Q(a) + Q(b) - Q(0)."""
    torch.manual_seed(3)
    allocator = AdaptiveMemoryAllocator(context_dim=3)
    a, b = torch.randn(2, 1, 3, generator=torch.Generator().manual_seed(4))
    q = allocator.q_values
    additive = q(a) + q(b) - q(torch.zeros(1, 3))
    assert (q(a + b) - additive).abs().max() > 1e-3


def test_an_explicit_seed_makes_exploration_independent_of_the_global_generator():
    picks = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        allocator = AdaptiveMemoryAllocator(context_dim=2, seed=7)  # epsilon 1: every pick explores
        picks.append(allocator.select(torch.zeros(50, dtype=torch.int64)))
    assert torch.equal(picks[0], picks[1])


def test_integer_contexts_of_any_integer_dtype_and_an_exact_decision_count():
    allocator = AdaptiveMemoryAllocator(context_dim=3, seed=0)
    contexts = torch.tensor([0, 2, 1])
    torch.testing.assert_close(
        allocator.q_values(contexts.to(torch.int32)), allocator.q_values(contexts)
    )
    allocator.select(contexts.to(torch.int32))
    assert allocator.decisions.dtype == torch.int64 and int(allocator.decisions) == 3


def test_bad_contexts_raise():
    allocator = AdaptiveMemoryAllocator(context_dim=4)
    with pytest.raises(ValueError, match="0..3"):
        allocator.select(torch.tensor([4]))
    with pytest.raises(ValueError, match=r"\[B, 4\]"):
        allocator.select(torch.zeros(2, 3))


def test_a_caller_can_anneal_exploration_by_its_own_progress():
    allocator = AdaptiveMemoryAllocator(context_dim=2, epsilon_decisions=10, seed=0)
    assert allocator.epsilon_at(0.0) == 1.0
    assert allocator.epsilon_at(0.5) == pytest.approx(0.6)
    assert allocator.epsilon_at(3.0) == pytest.approx(0.2)
    with torch.no_grad():  # make strategy 2 the greedy choice
        allocator.q_network[-1].bias.copy_(torch.tensor([0.0, 0.0, 9.0, 0.0]))
        allocator.q_network[-1].weight.zero_()
    picks = allocator.select(torch.zeros(2000, dtype=torch.long), progress=1.0)
    explored = (picks != 2).float().mean().item()  # 0.2 explore, 3/4 of those pick another arm
    assert explored == pytest.approx(0.2 * 0.75, abs=0.03)
    picks = allocator.select(torch.zeros(2000, dtype=torch.long), progress=0.0)
    assert (picks != 2).float().mean().item() == pytest.approx(0.75, abs=0.04)


def test_an_update_regresses_the_chosen_strategys_value_onto_the_reward():
    allocator = AdaptiveMemoryAllocator(context_dim=3, learning_rate=0.05, seed=0)
    context, chosen = torch.tensor([1]), torch.tensor([2])
    for reward in (2.0, -1.0):
        before = allocator.q_values(context)[0, 2].item()
        loss = allocator.update(context, chosen, torch.tensor([reward]))
        assert loss == pytest.approx((before - reward) ** 2, rel=1e-5)  # the chosen arm's error
        after = allocator.q_values(context)[0, 2].item()
        assert abs(after - reward) < abs(before - reward)  # one step moves it toward the reward
        for _ in range(100):
            allocator.update(context, chosen, torch.tensor([reward]))
        assert allocator.q_values(context)[0, 2].item() == pytest.approx(reward, abs=0.05)
