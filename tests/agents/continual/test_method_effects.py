"""What each continual method does to training, observed through the update and the trainer.

``test_methods.py`` checks what the methods compute (penalties, Fisher diagonals, masks); these
tests check that training *uses* it, so that removing a method's effect turns one of them red:

- L2 and EWC: after updates on a second task the regularised weights stay near their anchor,
  the heads do not; EWC frees the weights the first task did not use, L2 does not;
- PackNet: retraining after pruning, gradient masks, gradient clipping, per-task evaluation;
- replay, multi-task and fine-tuning: what the trainer's gradient batches hold.

Everything runs on tiny networks; the trainer runs skip evaluation episodes (``_play_evaluation``
is replaced), so each test takes a few seconds.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

import numpy as np
import pytest
import torch
from torch import nn

from memrl.agents.continual.buffers import Batch, ReplayBuffer
from memrl.agents.continual.methods import Method, PackNet, Segment, make_method
from memrl.agents.continual.methods.regularization import FISHER_CLIP
from memrl.agents.continual.sac import ContinualSAC
from memrl.agents.continual.trainer import ContinualTrainer

from .conftest import random_batch, tiny_agent, tiny_config

SECOND_TASK_UPDATES = 20
"""Gradient steps on the second task before displacements are compared."""
Snapshot = dict[int, torch.Tensor]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny updates run fastest on one thread (and the machine is shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _buffer_of(batch: Batch) -> ReplayBuffer:
    """A FIFO buffer holding exactly ``batch``'s transitions."""
    size, obs_dim = batch.observations.shape
    buffer = ReplayBuffer(size, obs_dim, batch.actions.shape[1])
    for row in zip(*(t.numpy() for t in batch), strict=True):
        buffer.add(*row)
    return buffer


def _with_method(agent: ContinualSAC, name: str, **overrides: object) -> Method:
    """The method ``name`` of a tiny two-task config, attached to ``agent``."""
    config = tiny_config(method=name, **overrides)
    method = make_method(config, config.build_stream())
    method.attach(agent)
    agent.method = method
    return method


def _snapshot(agent: ContinualSAC) -> Snapshot:
    """Every parameter's value, by parameter identity."""
    return {
        id(p): p.detach().clone()
        for module in agent.modules().values()
        for p in module.parameters()
    }


def _moved(params: Iterable[nn.Parameter], start: Snapshot) -> float:
    """Total absolute change of ``params`` since ``start``."""
    return sum(float((p.detach() - start[id(p)]).abs().sum()) for p in params)


def _heads(agent: ContinualSAC) -> list[nn.Parameter]:
    return [*agent.actor.mean_head.parameters(), *agent.actor.log_std_head.parameters()]


def _train_second_task(
    name: str, unused_feature: int | None = None, **overrides: object
) -> tuple[ContinualSAC, Method, Snapshot]:
    """Train task 0 briefly, switch to task 1 as the trainer does, train task 1.

    Every method starts from the same weights and sees the same data (the penalties are zero
    during task 0), so the weights at the switch are the same for all of them.

    Args:
        name: The method.
        unused_feature: An observation feature held at 0 in task 0's data (and only there).
        overrides: Config fields.

    Returns:
        The agent, its method, and the weights at the switch.
    """
    torch.manual_seed(0)
    agent = tiny_agent(num_tasks=2, hidden_size=16)
    method = _with_method(agent, name, **overrides)
    first = random_batch(agent, 64, task=0, seed=1)
    if unused_feature is not None:
        first.observations[:, unused_feature] = 0.0
        first.next_observations[:, unused_feature] = 0.0
    buffer = _buffer_of(first)
    for _ in range(10):
        agent.update(buffer.sample(32), method, 0)
    method.on_task_start(agent, method.segments[1], buffer)
    agent.reset_optimizers()
    start = _snapshot(agent)
    for step in range(SECOND_TASK_UPDATES):
        agent.update(random_batch(agent, 32, task=1, seed=100 + step), method, 1)
    return agent, method, start


@pytest.fixture(scope="module")
def finetuned() -> tuple[ContinualSAC, Method, Snapshot]:
    """The reference: the same start and data as the regularised runs, no penalty."""
    return _train_second_task("finetune")


def _same_start(start: Snapshot, other: Snapshot) -> None:
    assert all(torch.equal(a, b) for a, b in zip(start.values(), other.values(), strict=True))


@pytest.mark.parametrize("regularize_critic", [False, True])
def test_l2_holds_the_shared_weights_at_their_anchor_and_leaves_the_heads_free(
    finetuned, regularize_critic
):
    tuned, _, tuned_start = finetuned
    agent, _, start = _train_second_task("l2", regularize_critic=regularize_critic)
    _same_start(start, tuned_start)

    def ratio(params, tuned_params) -> float:
        return _moved(params, start) / _moved(tuned_params, tuned_start)

    # Fine-tuning moves every trunk weight by about the learning rate per step; the penalty
    # (1e5 * distance^2) pulls the regularised ones back to where task 0 left them.
    assert ratio(agent.actor.trunk.parameters(), tuned.actor.trunk.parameters()) < 0.05
    assert ratio(_heads(agent), _heads(tuned)) > 0.3  # the heads are task-specific: free
    critic = ratio(agent.critic1.trunk.parameters(), tuned.critic1.trunk.parameters())
    if regularize_critic:
        assert critic < 0.05
        assert ratio(agent.critic2.trunk.parameters(), tuned.critic2.trunk.parameters()) < 0.05
    else:
        assert critic > 0.3  # Continual World regularises the actor only


def test_ewc_frees_the_weights_the_first_task_did_not_use_and_l2_does_not():
    # Feature 0 is 0 throughout task 0, so the first layer's weights reading it do not change
    # task 0's policy: their Fisher is the floor, 1e-5, and EWC lets them move; L2 does not.
    runs = {
        name: _train_second_task(name, unused_feature=0, **{f"{name}_coef": 1e4})
        for name in ("ewc", "l2")
    }
    tuned, _, tuned_start = _train_second_task("finetune", unused_feature=0)
    fisher = runs["ewc"][1].importance[0]  # the actor's first layer, [hidden, features]
    torch.testing.assert_close(fisher[:, 0], torch.full_like(fisher[:, 0], FISHER_CLIP))
    assert torch.all(fisher[:, 1:] > 100 * FISHER_CLIP)

    def moved(name: str, columns: slice) -> float:
        agent, _, start = runs[name]
        weight = agent.actor.trunk.first.weight
        return float((weight.detach() - start[id(weight)])[:, columns].abs().mean())

    weight = tuned.actor.trunk.first.weight
    tuned_moved = (weight.detach() - tuned_start[id(weight)]).abs()
    unused, used = slice(0, 1), slice(1, None)
    assert moved("ewc", unused) > 0.5 * float(tuned_moved[:, unused].mean())  # like fine-tuning
    assert moved("l2", unused) < 0.05 * float(tuned_moved[:, unused].mean())
    assert moved("ewc", used) < 0.05 * float(tuned_moved[:, used].mean())


# -- PackNet -------------------------------------------------------------------------------------


def _packnet_after_first_task(
    **overrides: object,
) -> tuple[ContinualSAC, PackNet, ReplayBuffer, list[torch.Tensor], int]:
    """Train task 0, then end it (prune, retrain); returns the weights before the pruning and
    how many retraining steps ``on_task_end`` took."""
    torch.manual_seed(0)
    agent = tiny_agent(num_tasks=2, hidden_size=16)
    values = {"packnet_retrain_steps": 5, "packnet_clipnorm": 0.0, **overrides}
    packnet = _with_method(agent, "packnet", **values)
    assert isinstance(packnet, PackNet)
    buffer = _buffer_of(random_batch(agent, 64, task=0, seed=1))
    first = packnet.segments[0]
    packnet.on_task_start(agent, first, buffer)
    for _ in range(5):
        agent.update(buffer.sample(32), packnet, 0)
    before = [w.detach().clone() for w in packnet.weights]
    steps: list[int] = []

    def learn() -> None:
        steps.append(1)
        agent.update(buffer.sample(32), packnet, 0)

    packnet.on_task_end(agent, first, buffer, learn)
    return agent, packnet, buffer, before, len(steps)


def test_packnet_retrains_the_kept_weights_and_the_freed_ones_stay_zero():
    agent, packnet, _, before, retrain_steps = _packnet_after_first_task()
    assert retrain_steps == 5
    assert packnet.frozen_others
    for weight, owner, old in zip(packnet.weights, packnet.owner, before, strict=True):
        assert int((owner == 1).sum()) == weight.numel() // 2  # two tasks: half is freed
        assert torch.all(weight[owner == 1] == 0)  # freed, and not moved by retraining
        assert not torch.equal(weight[owner == 0], old[owner == 0])  # retrained
    for optimizer in agent.optimizers.values():
        assert not optimizer.state  # fresh Adam for the next task


@pytest.mark.parametrize("regularize_critic", [False, True])
def test_packnet_masks_the_gradients_of_weights_the_task_does_not_own(regularize_critic):
    agent, packnet, buffer, _, _ = _packnet_after_first_task(regularize_critic=regularize_critic)
    agent.reset_optimizers()
    packnet.on_task_start(agent, packnet.segments[1], buffer)
    agent.update(random_batch(agent, 32, task=1, seed=7), packnet, 1)
    for weight, owner in zip(packnet.weights, packnet.owner, strict=True):
        assert weight.grad is not None
        assert torch.all(weight.grad[owner != 1] == 0)
        assert torch.count_nonzero(weight.grad[owner == 1]) > 0
    for other in packnet.others:  # biases and LayerNorm: frozen after task 0
        assert other.grad is not None and torch.all(other.grad == 0)
    assert torch.count_nonzero(agent.actor.mean_head.weight.grad) > 0  # heads: never managed
    assert any(w is agent.actor.trunk.first.weight for w in packnet.weights)
    critic_weight = agent.critic1.trunk.first.weight
    assert any(w is critic_weight for w in packnet.weights) == regularize_critic
    if not regularize_critic:  # the critics train freely
        assert critic_weight.grad is not None
        assert float((critic_weight.grad != 0).float().mean()) > 0.9


def test_packnet_clips_each_gradient_to_its_global_norm():
    batch = random_batch(tiny_agent(num_tasks=2), 32, task=0, seed=3)
    agents = []
    for clipnorm in (1e-3, 0.0):
        torch.manual_seed(0)
        agent = tiny_agent(num_tasks=2, hidden_size=16)
        packnet = _with_method(agent, "packnet", packnet_clipnorm=clipnorm)
        torch.manual_seed(1)
        agent.update(batch, packnet, 0)
        agents.append(agent)
    clipped, unclipped = agents

    def groups(agent: ContinualSAC) -> list[list[torch.Tensor]]:
        return [
            [p.grad for p in params if p.grad is not None]
            for params in (
                list(agent.actor.parameters()),
                agent.critic_parameters,
                [agent.log_alpha],
            )
        ]

    for grads, raw in zip(groups(clipped), groups(unclipped), strict=True):
        norm = float(torch.sqrt(sum(g.pow(2).sum() for g in raw)))
        assert norm > 1e-3  # so clipping applies
        assert float(torch.sqrt(sum(g.pow(2).sum() for g in grads))) == pytest.approx(1e-3)
        for g, r in zip(grads, raw, strict=True):
            torch.testing.assert_close(g, r * (1e-3 / norm))  # same direction, scaled down


def test_predict_acts_for_each_task_with_that_tasks_weights():
    agent, packnet, buffer, _, _ = _packnet_after_first_task()
    agent.reset_optimizers()
    packnet.on_task_start(agent, packnet.segments[1], buffer)
    for step in range(5):  # task 1 trains its share: the freed weights become non-zero
        agent.update(random_batch(agent, 32, task=1, seed=50 + step), packnet, 1)
    observations = torch.cat(
        [random_batch(agent, 4, task=t, seed=9).observations for t in (0, 1, 0)]
    ).numpy()
    first_task = observations[:, -2] == 1
    weights = [w.detach().clone() for w in packnet.weights]

    actions, _ = agent.predict(observations, deterministic=True)

    for weight, value in zip(packnet.weights, weights, strict=True):
        assert torch.equal(weight, value)  # put back after predicting
    every_weight = agent.act(observations, deterministic=True)
    np.testing.assert_array_equal(actions[~first_task], every_weight[~first_task])
    with torch.no_grad():
        for weight, owner in zip(packnet.weights, packnet.owner, strict=True):
            weight.masked_fill_(owner == 1, 0.0)  # task 0's view: only the weights it owns
    own_weights = agent.act(observations, deterministic=True)
    np.testing.assert_allclose(actions[first_task], own_weights[first_task], rtol=0, atol=1e-6)
    assert not np.allclose(actions[first_task], every_weight[first_task], atol=1e-4)


# -- what the trainer's gradient batches hold ---------------------------------------------------


def _trained_batches(monkeypatch, run_dir, learn: bool = True, **overrides: object):
    """Train a tiny two-task run; returns the trainer and each gradient step's (stage, tasks).

    ``tasks`` is the task of every transition of the step's batch (from its one-hot). Without
    ``learn`` the batches are recorded but no gradient step is taken (a faster run).
    """
    batches: list[tuple[int, np.ndarray]] = []
    update = ContinualSAC.update

    def recording(self, batch, method, stage):
        batches.append((stage, batch.observations[:, -self.num_tasks :].argmax(dim=1).numpy()))
        return update(self, batch, method, stage) if learn else {}

    def no_episodes(self, entropy):
        zeros = [0.0] * len(self.evaluations.task_names)
        return zeros, zeros

    monkeypatch.setattr(ContinualSAC, "update", recording)
    monkeypatch.setattr(ContinualTrainer, "_play_evaluation", no_episodes)
    values = {"update_every": 10, "checkpoint_every": 600, "eval_every": 300, **overrides}
    trainer = ContinualTrainer(tiny_config(**values), run_dir, progress=False)
    trainer.train()
    trainer.close()
    return trainer, batches


def test_replay_trains_on_earlier_tasks_transitions_in_its_own_batch_size(tmp_path, monkeypatch):
    # A reservoir of 200 transitions: full long before the switch, it still keeps a uniform
    # sample of everything seen (a FIFO buffer of 200 would hold task 1's last 200 steps only).
    trainer, batches = _trained_batches(
        monkeypatch,
        tmp_path,
        method="replay",
        update_after=280,
        replay_batch_size=48,
        replay_buffer_size=200,
    )
    assert len(batches) == 40  # task steps 280 and 290 of each task, 10 gradient steps each
    assert {tasks.size for _, tasks in batches} == {48}  # replay_batch_size, not batch_size
    second = [tasks for stage, tasks in batches if stage == 1]
    assert len(second) == 20
    assert all(np.any(tasks == 0) for tasks in second)  # every batch replays task 0
    # 300 of the 581 or 591 transitions seen are task 0's: about half of the reservoir.
    assert 0.35 < float(np.mean(np.concatenate(second) == 0)) < 0.7
    assert len(trainer.buffer) == 200 and trainer.buffer.seen == 600  # never cleared


def test_finetuning_trains_the_second_task_on_its_own_transitions_only(tmp_path, monkeypatch):
    trainer, batches = _trained_batches(monkeypatch, tmp_path, method="finetune", update_after=280)
    assert {tasks.size for _, tasks in batches} == {32}  # batch_size
    assert [stage for stage, _ in batches] == [0] * 20 + [1] * 20
    assert all(
        np.all(tasks == 1) for stage, tasks in batches if stage == 1
    )  # cleared at the switch
    assert len(trainer.buffer) == 300


def test_multitask_trains_one_segment_on_batches_of_every_task(tmp_path, monkeypatch):
    trainer, batches = _trained_batches(
        monkeypatch, tmp_path, learn=False, method="multitask", update_after=290
    )
    assert trainer.segments == [Segment(0, None, 0, 600)]
    assert len(batches) == 310 and {stage for stage, _ in batches} == {0}  # steps 290..590
    # Episodes of 200 steps alternate: task 0, task 1, task 0. At step 290 the stream's schedule
    # is still in task 0, but task 1's episode started at step 200.
    assert all(np.any(tasks == 1) for _, tasks in batches[:10])
    # From step 560 on the buffer holds 200 transitions of task 1 and 360 or more of task 0.
    assert all(set(tasks.tolist()) == {0, 1} for _, tasks in batches[-40:])
    assert len(trainer.buffer) == 600  # one segment: never cleared


# -- checkpoints ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["l2", "ewc", "packnet"])
def test_a_restored_checkpoint_learns_and_acts_exactly_like_the_original(name):
    if name == "packnet":
        agent, method, buffer, _, _ = _packnet_after_first_task()
        method.on_task_start(agent, method.segments[1], buffer)
    else:
        agent, method, _ = _train_second_task(name)
    saved = io.BytesIO()
    torch.save({"agent": agent.state_dict(), "method": method.state_dict()}, saved)
    saved.seek(0)
    state = torch.load(saved, weights_only=False)
    torch.manual_seed(1)  # other initial weights than the original's
    restored = tiny_agent(num_tasks=2, hidden_size=16)
    restored_method = make_method(method.config, method.stream)
    restored_method.attach(restored)
    restored.method = restored_method
    restored.load_state_dict(state["agent"])
    restored_method.load_state_dict(state["method"])

    observations = torch.cat([random_batch(agent, 3, task=t, seed=4).observations for t in (0, 1)])
    for one, method_ in ((agent, method), (restored, restored_method)):
        torch.manual_seed(5)
        one.update(random_batch(one, 32, task=1, seed=6), method_, 1)
    original, copy = _snapshot(agent), _snapshot(restored)
    assert all(torch.equal(a, b) for a, b in zip(original.values(), copy.values(), strict=True))
    assert torch.equal(agent.log_alpha, restored.log_alpha)
    np.testing.assert_array_equal(
        agent.predict(observations.numpy(), deterministic=True)[0],
        restored.predict(observations.numpy(), deterministic=True)[0],
    )
