"""The Adaptive Memory Allocator as a contextual bandit."""

from __future__ import annotations

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
    "options",
    [
        {"context_dim": 0},
        {"context_dim": 4, "epsilon_start": 0.1, "epsilon_end": 0.2},
        {"context_dim": 4, "epsilon_decisions": 0},
        {"context_dim": 4, "learning_rate": 0.0},
    ],
)
def test_bad_options_raise(options):
    with pytest.raises(ValueError):
        AdaptiveMemoryAllocator(**options)


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
