from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import gymnasium
import numpy as np
import pytest
import torch

from memrl.agents.ppo import PPOTrainer, Rollout, compute_advantages, load_policy
from memrl.agents.ppo_config import PPOConfig
from memrl.agents.run_log import read_metric

RECALL = "memrl/DelayedMatch-v0"


def _tiny(**overrides) -> PPOConfig:
    values = dict(
        env_id=RECALL,
        env_kwargs={"delay": 2, "num_symbols": 2},
        core="gru",
        total_steps=4 * 16 * 3,
        num_envs=4,
        num_steps=16,
        num_minibatches=2,
        update_epochs=2,
        checkpoint_every=1,
        tensorboard=False,
    )
    values.update(overrides)
    return PPOConfig(**values)


def _rollout(rewards, terminated, truncated, valid, values, next_value) -> Rollout:
    t = lambda x, dt=torch.float32: torch.tensor(x, dtype=dt).reshape(-1, 1)  # noqa: E731
    return Rollout(
        observations=None,
        actions=t([0] * len(rewards), torch.long),
        log_probs=t([0.0] * len(rewards)),
        values=t(values),
        rewards=t(rewards),
        terminated=t(terminated, torch.bool),
        truncated=t(truncated, torch.bool),
        valid=t(valid, torch.bool),
        acting=t(valid, torch.bool),
        resets=t([False] * len(rewards), torch.bool),
        start_state={},
        next_value=torch.tensor([next_value]),
    )


def _loss_on_a_hand_made_rollout(trainer: PPOTrainer, acting: list[bool]):
    """``trainer._ppo_loss`` on 4 steps of one env with known ratios, entropies and values."""
    rollout = _rollout(rewards=[0.0] * 4, terminated=[False] * 4, truncated=[False] * 4,
                       valid=[True] * 4, values=[0.0] * 4, next_value=0.0)  # fmt: skip
    rollout.acting = torch.tensor(acting).reshape(4, 1)
    logits = torch.tensor([[2.0, 0.0], [0.5, 0.1], [-1.0, 1.0], [0.0, 3.0]]).reshape(4, 1, 2)
    logits.requires_grad_(True)
    dist = torch.distributions.Categorical(logits=logits)
    ratios = torch.tensor([1.1, 0.7, 0.95, 1.3]).reshape(4, 1)
    rollout.log_probs = dist.log_prob(rollout.actions).detach() - ratios.log()
    value = torch.tensor([0.5, -1.0, 2.0, 0.25]).reshape(4, 1).requires_grad_(True)
    advantages = torch.tensor([1.0, 5.0, -1.0, 7.0]).reshape(4, 1)
    loss, parts = trainer._ppo_loss(dist, value, rollout, advantages, torch.tensor([0]))
    loss.backward()
    return parts, logits.grad.reshape(4, 2), value.grad.flatten(), dist.entropy().flatten()


def test_ignored_actions_leave_the_policy_terms_and_keep_the_value_loss(tmp_path):
    """Steps 1 and 3 are ignored: the policy loss and entropy are steps 0 and 2's alone (their
    advantages normalised among themselves), no gradient reaches the ignored steps' logits, and
    the value loss still covers all four steps."""
    trainer = PPOTrainer(_tiny(clip_value=False), tmp_path, progress=False)
    clip, ent, vf = trainer.config.clip_coef, trainer.config.ent_coef, trainer.config.vf_coef
    parts, logit_grad, value_grad, entropy = _loss_on_a_hand_made_rollout(
        trainer, [True, False, True, False]
    )
    adv = torch.tensor([1.0, -1.0]) / (1.0 + 1e-8)  # steps 0, 2: mean 0, std 1
    ratio = torch.tensor([1.1, 0.95])
    expected_policy = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)).mean()
    torch.testing.assert_close(parts["losses/policy_loss"], expected_policy)
    torch.testing.assert_close(parts["losses/entropy"], entropy[[0, 2]].mean())
    targets = torch.tensor([1.0, 5.0, -1.0, 7.0])  # advantages + old values (0)
    value = torch.tensor([0.5, -1.0, 2.0, 0.25])
    torch.testing.assert_close(parts["losses/value_loss"], 0.5 * ((value - targets) ** 2).mean())
    assert torch.all(logit_grad[[1, 3]] == 0) and torch.all(logit_grad[[0, 2]].abs().sum(1) > 0)
    torch.testing.assert_close(value_grad, vf * 0.5 * 2 * (value - targets) / 4)
    assert ent > 0


def test_without_ignored_steps_every_valid_step_enters_every_term(tmp_path):
    trainer = PPOTrainer(_tiny(clip_value=False), tmp_path, progress=False)
    parts, logit_grad, _, entropy = _loss_on_a_hand_made_rollout(trainer, [True] * 4)
    torch.testing.assert_close(parts["losses/entropy"], entropy.mean())
    assert torch.all(logit_grad.abs().sum(1) > 0)


def test_collected_rollouts_mark_the_steps_an_env_reports_as_ignored(tmp_path):
    """BalletGrid ignores every action until the choice step; the rollout says so, and with
    ``mask_ignored_actions=False`` every valid step acts."""
    ballet = dict(env_id="memrl/BalletGrid-2-delay16-v0", env_kwargs={}, num_steps=70)
    rollout = PPOTrainer(_tiny(**ballet), tmp_path / "masked", progress=False).collect()
    choice = 62  # the instruction shows after 62 steps (the reference's timeline)
    assert not rollout.acting[:choice].any() and rollout.valid[:choice].all()
    assert rollout.acting[choice].all()  # the first choice step acts in every env
    assert not (rollout.acting & ~rollout.valid).any()
    unmasked = PPOTrainer(_tiny(**ballet, mask_ignored_actions=False), tmp_path / "all",
                          progress=False).collect()  # fmt: skip
    assert torch.equal(unmasked.acting, unmasked.valid)


def test_gae_stops_at_termination_and_bootstraps_truncation():
    gamma, lam = 0.9, 0.5
    # steps: 0 ordinary, 1 terminated, 2 autoreset (invalid), 3 truncated, 4 autoreset, 5 ordinary
    rollout = _rollout(
        rewards=[0.0, 1.0, 0.0, 0.5, 0.0, 0.2],
        terminated=[False, True, False, False, False, False],
        truncated=[False, False, False, True, False, False],
        valid=[True, True, False, True, False, True],
        values=[0.1, 0.2, 0.3, 0.4, 0.6, 0.7],
        next_value=0.8,
    )
    adv = compute_advantages(rollout, gamma, lam).flatten().tolist()
    a5 = 0.2 + gamma * 0.8 - 0.7
    a3 = 0.5 + gamma * 0.6 - 0.4  # bootstraps from the final observation's value (index 4)
    a1 = 1.0 - 0.2  # terminated: no bootstrap
    a0 = (0.0 + gamma * 0.2 - 0.1) + gamma * lam * a1
    assert adv == pytest.approx([a0, a1, 0.0, a3, 0.0, a5])


def test_training_writes_run_directory_and_is_deterministic(tmp_path):
    first = PPOTrainer(_tiny(), tmp_path / "a", progress=False)
    first.train()
    second = PPOTrainer(_tiny(), tmp_path / "b", progress=False)
    second.train()
    for name in ("config.json", "metrics.csv", "checkpoints/latest.pt"):
        assert (tmp_path / "a" / name).exists()
    rows_a = list(csv.DictReader((tmp_path / "a" / "metrics.csv").open()))
    rows_b = list(csv.DictReader((tmp_path / "b" / "metrics.csv").open()))
    assert len(rows_a) == 3
    drop = "charts/sps"
    assert [{k: v for k, v in r.items() if k != drop} for r in rows_a] == [
        {k: v for k, v in r.items() if k != drop} for r in rows_b
    ]
    assert json.loads((tmp_path / "a" / "config.json").read_text())["core"] == "gru"


def test_resume_continues_exactly(tmp_path):
    whole = PPOTrainer(_tiny(), tmp_path / "whole", progress=False)
    whole.train()
    part = PPOTrainer(_tiny(total_steps=4 * 16), tmp_path / "part", progress=False)
    part.train()
    resumed = PPOTrainer(_tiny(), tmp_path / "part", resume=True, progress=False)
    assert resumed.update == 1
    resumed.train()
    for (name, a), (_, b) in zip(
        whole.policy.state_dict().items(), resumed.policy.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    rows = list(csv.DictReader((tmp_path / "part" / "metrics.csv").open()))
    assert [int(r["global_step"]) for r in rows] == [64, 128, 192]
    # The success window of the last 100 episodes (what `memrl bench learning` stops on) too.
    assert 0 < len(part.recent_wins) < len(whole.recent_wins)
    assert list(resumed.recent_wins) == list(whole.recent_wins)


def test_existing_run_directory_needs_resume(tmp_path):
    PPOTrainer(_tiny(total_steps=64), tmp_path, progress=False).train()
    with pytest.raises(FileExistsError, match="resume"):
        PPOTrainer(_tiny(total_steps=64), tmp_path, progress=False)


def test_resume_refuses_a_changed_config(tmp_path):
    PPOTrainer(_tiny(total_steps=64), tmp_path, progress=False).train()
    with pytest.raises(ValueError, match=r"differs in \['learning_rate'\]"):
        PPOTrainer(_tiny(learning_rate=1e-3, threads=1), tmp_path, resume=True, progress=False)


def test_resume_accepts_changes_that_do_not_change_learning(tmp_path):
    PPOTrainer(_tiny(total_steps=64), tmp_path, progress=False).train()
    threads = torch.get_num_threads()
    resumed = PPOTrainer(
        _tiny(total_steps=256, log_every=2, threads=1, checkpoint_every=2),
        tmp_path,
        resume=True,
        progress=False,
    )
    resumed.train()
    assert torch.get_num_threads() == 1
    torch.set_num_threads(threads)
    # --log-every 2 from the resume on: updates 2 and 4, not 3
    assert read_metric(tmp_path, "charts/sps")[0] == [64, 128, 256]
    assert json.loads((tmp_path / "config.json").read_text())["log_every"] == 2


def test_resume_accepts_a_checkpoint_from_before_a_new_setting(tmp_path):
    """A setting added to PPOConfig later is taken at its default for older checkpoints."""
    PPOTrainer(_tiny(total_steps=64), tmp_path, progress=False).train()
    path = tmp_path / "checkpoints" / "latest.pt"
    payload = torch.load(path, weights_only=False)
    del payload["config"]["allocator_explore_fraction"]
    torch.save(payload, path)
    resumed = PPOTrainer(_tiny(total_steps=128), tmp_path, resume=True, progress=False)
    assert resumed.global_step == 64
    resumed.close()  # frees the run directory for the next trainer
    with pytest.raises(ValueError, match="allocator_explore_fraction"):
        PPOTrainer(_tiny(allocator_explore_fraction=0.3), tmp_path, resume=True, progress=False)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_envs", 0),
        ("num_minibatches", 3),
        ("gamma", 1.5),
        ("env_id", "memrl/Nope-v0"),
        ("objective", "bc"),
        ("allocator_explore_fraction", 0.0),
        ("allocator_explore_fraction", 1.5),
    ],
)
def test_bad_config_is_a_clear_error(field, value):
    with pytest.raises(ValueError, match=field if field != "env_id" else "unknown env id"):
        _tiny(**{field: value}).validate()


def test_predict_follows_sb3(tmp_path):
    PPOTrainer(_tiny(total_steps=64), tmp_path, progress=False).train()
    policy, config = load_policy(tmp_path)
    env = gymnasium.make(RECALL, **config.env_kwargs)
    obs, _ = env.reset(seed=0)
    action, state = policy.predict(obs, episode_start=np.array([True]), deterministic=True)
    assert env.action_space.contains(int(action))
    batch = np.stack([obs, obs])
    actions, state = policy.predict(batch, episode_start=np.array([True, True]))
    assert actions.shape == (2,)


def test_gru_agent_learns_one_step_recall(tmp_path):
    config = _tiny(
        env_kwargs={"delay": 0, "num_symbols": 2},
        total_steps=16_384,
        num_envs=16,
        num_steps=32,
        num_minibatches=4,
        update_epochs=4,
        checkpoint_every=1000,
    )
    metrics = PPOTrainer(config, tmp_path, progress=False).train()
    assert metrics["charts/success_rate"] >= 0.9  # chance is 0.5


def test_cli_train_smoke(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "memrl.cli", "train", "--env", RECALL, "--agent", "gru",
         "--steps", "128", "--num-envs", "4", "--num-steps", "16", "--num-minibatches", "2",
         "--out", str(tmp_path / "run"), "--no-progress", "--no-tensorboard",
         "--env-kwargs", '{"delay": 2}'],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "trained gru" in out.stdout
    assert (tmp_path / "run" / "checkpoints" / "latest.pt").exists()


def test_sat_ama_allocates_per_episode_and_resumes(tmp_path):
    config = _tiny(
        env_id="memrl/RoomBallet-v0",
        env_kwargs={},
        core="sat-ama",
        core_kwargs={"num_layers": 1, "width": 32, "heads": 2, "num_places": 9, "capacity": 18},
        total_steps=4 * 16 * 4,
    )
    trainer = PPOTrainer(config, tmp_path, progress=False)
    trainer.train()
    assert trainer.allocator is not None
    assert int(trainer.allocator.decisions) >= 4  # one decision per started episode
    logged = read_metric(tmp_path, "allocator/first_seen")[1]
    greedy = trainer.allocator.select(torch.arange(4), explore=False)
    assert logged[-1] == float(greedy[0])  # the log follows the allocator's greedy choice
    # Exploration anneals from 1.0 to 0.2 over the first half of the training steps.
    steps, epsilons = read_metric(tmp_path, "allocator/epsilon")
    expected = [max(0.2, 1.0 - 0.8 * step / (0.5 * config.total_steps)) for step in steps]
    assert epsilons == pytest.approx(expected)
    assert epsilons[0] > 0.2 and epsilons[-1] == pytest.approx(0.2)
    resumed = PPOTrainer(
        _tiny(**{**config.__dict__, "total_steps": 4 * 16 * 5}),
        tmp_path,
        resume=True,
        progress=False,
    )
    assert torch.equal(resumed.strategy, trainer.strategy)
    resumed.train()


def test_sat_ama_evaluation_uses_the_allocators_greedy_choice(tmp_path):
    from memrl.agents.allocated import AllocatedPolicy
    from memrl.agents.loading import load_agent
    from memrl.eval.evaluate import run_episodes

    config = _tiny(
        env_id="memrl/RoomBallet-v0",
        env_kwargs={},
        core="sat-ama",
        core_kwargs={"num_layers": 1, "width": 32, "heads": 2, "num_places": 9, "capacity": 18},
        total_steps=4 * 16,
    )
    PPOTrainer(config, tmp_path, progress=False).train()
    agent, info = load_agent(tmp_path)
    assert isinstance(agent, AllocatedPolicy)
    assert set(info["allocator_choices"]) == {
        "first_seen", "last_seen", "most_visited", "least_visited"
    }  # fmt: skip
    # Make the allocator prefer one strategy per question type: strategy id = question id.
    last = agent.allocator.q_network[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        agent.allocator.q_network[0].weight.zero_()
        agent.allocator.q_network[0].bias.fill_(1.0)
        last.bias[3] = 1.0  # every context -> lvfo
    assert agent.choices(4) == ["lvfo"] * 4
    envs = gymnasium.make_vec(
        "memrl/RoomBallet-v0", num_envs=3, vectorization_mode="vector_entry_point"
    )
    obs, reset_info = envs.reset(seed=0)
    agent.observe(reset_info)
    _, state = agent.predict(obs, episode_start=np.ones(3, dtype=bool))
    assert state["strategy"].tolist() == [3, 3, 3]
    # A SyncVectorEnv of single envs reports the same question types.
    sync = gymnasium.make_vec("memrl/RoomBallet-v0", num_envs=3, vectorization_mode="sync")
    _, sync_info = sync.reset(seed=0)
    agent.observe(sync_info)
    assert agent.context.tolist() == np.asarray(reset_info["question_type"]).tolist()
    with pytest.raises(ValueError, match="needs the episodes' question types"):
        agent.observe({"is_success": np.zeros(3, bool)})
    result = run_episodes(agent, "memrl/RoomBallet-FirstSeen-v0", {}, episodes=4, seed=1)
    assert 0.0 <= result["success_rate"] <= 1.0


def test_resume_works_for_an_env_without_a_batched_implementation(tmp_path):
    """Any registered env trains and resumes: the sync vector env must pickle into checkpoints."""
    env_id = "test/DelayedMatchSyncOnly-v0"
    if env_id not in gymnasium.registry:
        gymnasium.register(env_id, entry_point="memrl.envs.delayed_match:DelayedMatchEnv")
    assert gymnasium.spec(env_id).vector_entry_point is None
    whole = PPOTrainer(_tiny(env_id=env_id), tmp_path / "whole", progress=False)
    whole.train()
    part = PPOTrainer(_tiny(env_id=env_id, total_steps=4 * 16), tmp_path / "part", progress=False)
    part.train()
    resumed = PPOTrainer(_tiny(env_id=env_id), tmp_path / "part", resume=True, progress=False)
    resumed.train()
    for (name, a), (_, b) in zip(
        whole.policy.state_dict().items(), resumed.policy.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_supervised_objective_learns_room_ballet_answers_where_rl_has_no_signal_yet(tmp_path):
    """SAT's protocol: cross-entropy on the last step's logits against info['answer']."""
    room = {"rooms": [1, 2], "num_events": 2, "stay_steps": 1}  # 3-step episodes
    config = _tiny(env_id="memrl/RoomBallet-v0", env_kwargs=room, core="gru",
                   objective="supervised", total_steps=16 * 128 * 12, num_envs=16,
                   num_steps=128, num_minibatches=4, learning_rate=1e-3)  # fmt: skip
    trainer = PPOTrainer(config, tmp_path, progress=False)
    metrics = trainer.train()
    assert metrics["losses/answer_accuracy"] >= 0.3  # chance is 1/13; RL is still there
    assert "losses/value_loss" not in metrics


def test_supervised_objective_needs_an_env_that_reports_answers(tmp_path):
    config = _tiny(env_id="memrl/PassiveVisualMatch-v0", env_kwargs={}, objective="supervised")
    with pytest.raises(ValueError, match=r"reports info\['answer'\]"):
        PPOTrainer(config, tmp_path, progress=False).train()


def test_supervised_sat_ama_rewards_the_allocator_with_minus_the_answer_loss(tmp_path):
    """SAT's allocator reward: minus the prediction loss (negative), not the 0/1 success."""
    config = _tiny(env_id="memrl/RoomBallet-v0", env_kwargs={"rooms": [2, 2], "num_events": 6},
                   core="sat-ama", objective="supervised", num_envs=8, num_steps=32, seed=0,
                   total_steps=8 * 32 * 3,
                   core_kwargs={"num_layers": 1, "width": 32, "heads": 2, "num_places": 4,
                                "capacity": 6})  # fmt: skip
    trainer = PPOTrainer(config, tmp_path, progress=False)
    assert trainer.allocator is not None
    contexts = torch.arange(4)
    before = trainer.allocator.q_values(contexts).detach()
    trainer.train()
    after = trainer.allocator.q_values(contexts).detach()
    # ~50 episodes ended with rewards near -ln(13) = -2.56: the values fall well below zero
    # (rewarded with the 0/1 success instead, their mean stays near 0: about -0.05 here)
    assert before.mean() > 0 and after.mean() < -0.25


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_afresh(tmp_path):
    fresh = PPOTrainer(_tiny(), tmp_path / "fresh", progress=False)
    fresh.train()
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "metrics.csv").write_text("global_step,charts/sps\n64,1.0\n128,1.0\n")
    resumed = PPOTrainer(_tiny(), killed, resume=True, progress=False)
    assert resumed.update == 0
    resumed.train()
    for (name, a), (_, b) in zip(
        fresh.policy.state_dict().items(), resumed.policy.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    rows = list(csv.DictReader((killed / "metrics.csv").open()))
    assert [int(r["global_step"]) for r in rows] == [64, 128, 192]


SMALL_ROOMS = {"rooms": [2, 2], "num_events": 6}  # 12 observation steps, memories hold 6
SMALL_CORES = {
    "none": {},
    "lstm": {"width": 16},
    "gru": {"width": 16},
    "transformer": {"num_layers": 1, "width": 16, "heads": 2, "window": 8},
    "hcam": {"num_layers": 1, "width": 16, "heads": 2, "chunk_size": 2, "capacity": 3,
             "top_k": 2},
    "sat-fifo": {"num_layers": 1, "width": 16, "heads": 2, "chunk_size": 2, "capacity": 3,
                 "top_k": 2, "num_places": 4},
    "sat-pm": {"num_layers": 1, "width": 16, "heads": 2, "capacity": 6, "top_k": 2,
               "num_places": 4},
    "sat-ama": {"num_layers": 1, "width": 16, "heads": 2, "capacity": 6, "top_k": 2,
                "num_places": 4},
}  # fmt: skip


@pytest.mark.parametrize("core", sorted(SMALL_CORES))
def test_replaying_a_rollout_gives_what_acting_computed(core, tmp_path):
    """The update's forward pass over a stored window equals acting step by step.

    Windows span several episodes, with full memories that evict; under sat-ama each episode
    has its own eviction strategy, which the replay must use too.
    """
    config = _tiny(
        env_id="memrl/RoomBallet-v0",
        env_kwargs=SMALL_ROOMS,
        core=core,
        core_kwargs=SMALL_CORES[core],
        num_steps=48,
    )
    trainer = PPOTrainer(config, tmp_path, progress=False)
    trainer.collect()  # the next window starts mid-episode, with memory
    rollout = trainer.collect()
    assert int(rollout.resets.sum()) >= 8
    if core == "sat-ama":
        assert rollout.strategies is not None
        assert len(set(rollout.strategies.flatten().tolist())) > 1
    with torch.no_grad():
        dist, value, _ = trainer.policy.evaluate_window(
            rollout.observations,
            rollout.start_state,
            rollout.resets,
            rollout.observations["place"].long(),
            rollout.strategies,
        )
    log_probs = trainer.policy.log_prob(dist, rollout.actions)
    torch.testing.assert_close(log_probs, rollout.log_probs, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(value, rollout.values, rtol=1e-4, atol=1e-4)


def test_supervised_choice_step_labels_ballets_first_move_after_the_instruction(tmp_path):
    """answer_step 'choice': one labelled step per episode, the first action that counts.

    On BalletGrid-2-delay16 the instruction shows at step 62 of the reference's timeline: the
    action chosen on that observation (rollout index 62 of an episode started at index 0) is the
    first one the env does not ignore.
    """
    config = _tiny(env_id="memrl/BalletGrid-2-delay16-v0", env_kwargs={}, core="gru",
                   objective="supervised", answer_step="choice", num_envs=2, num_steps=100,
                   total_steps=2 * 100)  # fmt: skip
    trainer = PPOTrainer(config, tmp_path, progress=False)
    rollout = trainer.collect()
    assert rollout.answer_steps is not None and rollout.labels is not None
    assert rollout.answer_steps.nonzero().tolist() == [[62, 0], [62, 1]]
    # The loss is the cross-entropy of exactly those steps' logits against the target dancer.
    dist, _, _ = trainer.policy.evaluate_window(
        rollout.observations, rollout.start_state, rollout.resets, None
    )
    loss, _ = trainer._answer_loss(dist, rollout, torch.arange(2))
    expected = -dist.log_prob(rollout.labels.clamp(min=0))[62].mean()
    torch.testing.assert_close(loss, expected)


def test_supervised_choice_step_is_chosen_once_per_episode_across_rollouts(tmp_path):
    """DelayedMatch's only counted action is its answer, so 'choice' labels what 'last' labels."""
    last = PPOTrainer(_tiny(objective="supervised"), tmp_path / "last", progress=False)
    choice = PPOTrainer(
        _tiny(objective="supervised", answer_step="choice"), tmp_path / "choice", progress=False
    )
    for _ in range(3):  # episodes of 4 steps end across rollout boundaries of 16 steps
        a, b = last.collect(), choice.collect()
        assert a.answer_steps is not None and b.answer_steps is not None
        assert a.answer_steps.any() and torch.equal(a.answer_steps, b.answer_steps)


def test_answer_step_choice_is_refused_without_the_supervised_objective():
    with pytest.raises(ValueError, match="answer_step 'choice' applies to objective 'supervised'"):
        _tiny(answer_step="choice").validate()
    with pytest.raises(ValueError, match=r"answer_step must be one of \('last', 'choice'\)"):
        _tiny(objective="supervised", answer_step="first").validate()


def test_probe_head_trains_on_ballets_choice_step_beside_rl(tmp_path):
    """answer_coef: a probe head reads the core at the choice step; RL still trains the actor."""
    config = _tiny(env_id="memrl/BalletGrid-2-delay16-v0", env_kwargs={}, core="gru",
                   answer_coef=1.0, answer_step="choice", num_envs=2, num_steps=100,
                   total_steps=2 * 100, update_epochs=1)  # fmt: skip
    trainer = PPOTrainer(config, tmp_path, progress=False)
    assert trainer.policy.answer_head is not None
    head = trainer.policy.answer_head.weight.detach().clone()
    metrics = trainer.train()
    assert "losses/probe_accuracy" in metrics and "losses/value_loss" in metrics
    assert metrics["losses/probe_loss"] == pytest.approx(math.log(32), abs=0.1)  # untrained: 1/32
    assert not torch.equal(trainer.policy.answer_head.weight, head)


def test_probe_options_are_checked():
    with pytest.raises(ValueError, match="answer_coef must be >= 0, got -1"):
        _tiny(answer_coef=-1.0).validate()
    with pytest.raises(ValueError, match="answer_coef adds a probe beside objective 'rl'"):
        _tiny(answer_coef=1.0, objective="supervised").validate()


def test_answer_statistics_leave_out_minibatches_without_an_answer_step(tmp_path):
    """A minibatch with no labelled step reports nothing, rather than an accuracy of 0."""
    config = _tiny(objective="supervised", num_envs=2, num_minibatches=2, update_epochs=1)
    trainer = PPOTrainer(config, tmp_path, progress=False)
    rollout = trainer.collect()
    assert rollout.answer_steps is not None and rollout.answer_steps[:, 0].any()
    rollout.answer_steps[:, 1] = False  # env 1's minibatch has no answer step
    metrics = trainer.train_on(rollout)
    assert math.isfinite(metrics["losses/answer_accuracy"])
    rollout.answer_steps[:] = False
    assert math.isnan(trainer.train_on(rollout)["losses/answer_accuracy"])


def test_accuracies_are_measured_before_the_model_trains_on_the_answers(tmp_path, monkeypatch):
    """Only the first epoch's accuracy counts: later epochs report memorised answers."""
    config = _tiny(objective="supervised", num_envs=2, num_minibatches=1, update_epochs=3)
    trainer = PPOTrainer(config, tmp_path, progress=False)
    rollout = trainer.collect()
    answer_loss, calls = trainer._answer_loss, []

    def seen_later(dist, rollout_, envs):  # accuracy 0 in the first epoch, 1 once trained on
        loss, stats = answer_loss(dist, rollout_, envs)
        calls.append(1)
        return loss, {**stats, "losses/answer_accuracy": torch.tensor(float(len(calls) > 1))}

    monkeypatch.setattr(trainer, "_answer_loss", seen_later)
    assert trainer.train_on(rollout)["losses/answer_accuracy"] == 0.0
    assert len(calls) == 3
