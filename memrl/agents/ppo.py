"""Memory PPO: memrl's own trainer for agents with a memory core, read top to bottom.

SB3 cannot store a chunked transformer memory in its rollout buffer, so this trainer keeps, for
every rollout, the core state each env started the rollout with, and trains by replaying whole
windows (``num_steps`` long) from those states with the core's sequence form. The loop is
CleanRL's: collect a rollout, compute GAE advantages, run ``update_epochs`` epochs of minibatch
updates (minibatches are groups of envs, each a whole window), log, evaluate, checkpoint.

Objective: ``"rl"`` is PPO. ``"supervised"`` is the Spatially-Aware Transformer's protocol for
question answering (Room Ballet): the same rollouts and windows, but the only loss is the
cross-entropy between the action logits of each episode's last step and the right answer the env
reports in ``info["answer"]``. In passive Room Ballet every other action is ignored, so this is
SAT's sequence classification, with a 13-way label in place of a 1-bit reward. sat-ama's allocator
is rewarded with the episode's success under ``"rl"`` and, as in SAT, with minus the answer's
cross-entropy under ``"supervised"``.

Autoreset: memrl's vector envs (and Gymnasium's) reset an env on the step *after* its episode
ended, ignoring that step's action. Such steps are stored but masked out of every loss; the
observation they carry is the episode's final one, which is what a truncated episode bootstraps
from. The memory core is reset on the first observation of every episode.

Ignored actions: every memrl env reports ``info["action_ignored"]``, true when the action of that
step could not change anything (Ballet while the dancers perform: over 90% of its steps). With
``mask_ignored_actions`` (the default) those steps are left out of the policy loss, the entropy
bonus and the advantages' normalisation statistics, and kept in the value loss (their values
still matter for the advantages of the steps that act). Envs that do not report the key act on
every step.

Resuming: a checkpoint holds the model, the optimiser, the vector env (pickled mid-episode), the
last observation and core state, the random generators and the counters, so ``resume=True``
continues a killed run exactly from its last checkpoint. Checkpoints go to
``checkpoints/latest.pt`` with the one before kept as ``checkpoints/previous.pt``; a damaged
``latest.pt`` is reported and the run continues from ``previous.pt``
(:mod:`memrl.agents.checkpoints`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch
from tqdm import tqdm

from memrl.agents.checkpoints import LATEST, CheckpointStore
from memrl.agents.policy import (
    MemoryPolicy,
    flatten_time,
    index_observation,
    observation_to_tensor,
    parameter_count,
)
from memrl.agents.ppo_config import ATTENTION_CORES, PPOConfig
from memrl.agents.resume import check_resumable_config
from memrl.agents.run_lock import RunLock
from memrl.agents.run_log import RunLog
from memrl.envs.vector import make_vector_env
from memrl.memory.base import State, detach_state, index_state

CHECKPOINT_KEYS = ("config", "policy", "optimizer", "update", "global_step", "envs",
                   "observation", "state", "reset_next", "valid_next", "episode_return",
                   "episode_length", "finished", "rng")  # fmt: skip
"""What a checkpoint must hold to resume (``allocator`` too, for a ``sat-ama`` run)."""

OLDER_CHECKPOINTS = {"grid_encoder": "flat"}
"""Settings of checkpoints written before the setting existed, where its default differs."""

RECENT_EPISODES = 100
"""Training episodes :attr:`PPOTrainer.recent_wins` keeps (SB3's success buffer keeps as many)."""
PROBE_CLASSES = 32
"""Classes of the probe head (``answer_coef``): answers 0..31 (Ballet's 8 dancers, RoomBallet's
13 answers, a DelayedMatch of up to 32 symbols)."""


def build_policy(config: PPOConfig, envs: gymnasium.vector.VectorEnv) -> MemoryPolicy:
    """The agent of ``config`` for ``envs``' spaces."""
    from memrl.memory import make_core

    name = "sat-pm" if config.core == "sat-ama" else config.core
    core_kwargs = dict(config.core_kwargs)
    if config.core in ATTENTION_CORES:
        core_kwargs["detach_window"] = config.memory_gradient == "detached"
    core = make_core(name, config.feature_dim, **core_kwargs)
    return MemoryPolicy(
        envs.single_observation_space,
        envs.single_action_space,
        core,
        config.feature_dim,
        reconstruction=config.reconstruction_coef > 0,
        answer_classes=PROBE_CLASSES if config.answer_coef > 0 else 0,
        observation_shapes=(
            envs.metadata.get("observation_shapes") if config.grid_encoder == "conv" else None
        ),
    )


def _places(observation: Any) -> torch.Tensor | None:
    """The place ids of a batch (RoomBallet's ``place``), for place-aware cores."""
    if isinstance(observation, dict) and "place" in observation:
        return observation["place"].long()
    return None


def _stack_observations(observations: list[Any]) -> Any:
    if isinstance(observations[0], dict):
        return {k: torch.stack([o[k] for o in observations]) for k in observations[0]}
    return torch.stack(observations)


@dataclass
class Rollout:
    """One rollout of ``T`` steps from ``N`` envs (tensors ``[T, N, ...]``)."""

    observations: Any
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    valid: torch.Tensor  # False on autoreset steps: the action was ignored
    acting: torch.Tensor  # valid, and the env did not report the action as ignored
    resets: torch.Tensor  # True on the first observation of an episode
    start_state: State
    next_value: torch.Tensor  # [N]: value of the observation after the last step
    labels: torch.Tensor | None = None  # supervised objective: info["answer"] after each step
    answer_steps: torch.Tensor | None = None  # supervised objective: the steps labels train
    strategies: torch.Tensor | None = None  # sat-ama: the eviction strategy in force at each step


def compute_advantages(rollout: Rollout, gamma: float, gae_lambda: float) -> torch.Tensor:
    """GAE over a rollout with next-step autoreset; ``[T, N]``, zero on invalid steps.

    A terminated step does not bootstrap; a truncated one bootstraps from the value of the next
    stored observation (the episode's final observation); neither propagates advantages back
    across the episode boundary.
    """
    steps = rollout.rewards.shape[0]
    advantages = torch.zeros_like(rollout.rewards)
    last = torch.zeros_like(rollout.next_value)
    for t in reversed(range(steps)):
        next_value = rollout.next_value if t == steps - 1 else rollout.values[t + 1]
        bootstrap = (~rollout.terminated[t]).float()
        carry = (~(rollout.terminated[t] | rollout.truncated[t])).float()
        delta = rollout.rewards[t] + gamma * bootstrap * next_value - rollout.values[t]
        last = delta + gamma * gae_lambda * carry * last
        last = last * rollout.valid[t].float()
        advantages[t] = last
    return advantages


class PPOTrainer:
    """Trains a ``MemoryPolicy`` with PPO; see the module docstring.

    Args:
        config: The run's configuration.
        run_dir: Where config, metrics, checkpoints and TensorBoard events go.
        resume: Continue from ``run_dir/checkpoints/latest.pt`` if it exists (from
            ``previous.pt``, with a warning, if ``latest.pt`` is damaged or missing).
        progress: Show a progress bar.

    Raises:
        RunInUseError: Another trainer holds ``run_dir`` (until its ``train()`` ends).
        NoIntactCheckpointError: Resuming, and both checkpoints are damaged (a ``ValueError``).
    """

    def __init__(
        self, config: PPOConfig, run_dir: str | Path, resume: bool = False, progress: bool = True
    ) -> None:
        config.validate()
        self.config = config
        self.run_dir = Path(run_dir)
        self.checkpoints = CheckpointStore(self.run_dir / "checkpoints")
        self.checkpoint_path = self.checkpoints.latest
        self.progress = progress
        self.lock = RunLock(self.run_dir)  # released when train() ends or this fails
        try:
            self._build(resume)
        except BaseException:
            self.lock.release()
            raise

    def _build(self, resume: bool) -> None:
        """Envs, policy, optimiser and state; the checkpoint's when resuming."""
        config = self.config
        if config.threads:
            torch.set_num_threads(config.threads)
        _seed_everything(config.seed)
        self.envs = make_vector_env(config.env_id, config.num_envs, config.env_kwargs)
        self.policy = build_policy(config, self.envs)
        if config.objective == "supervised" and not self.policy.discrete:
            raise ValueError(
                "objective 'supervised' trains the logits of a Discrete action space (the "
                f"answers); {config.env_id} has {self.envs.single_action_space}"
            )
        self.optimizer = torch.optim.Adam(
            self.policy.parameters(), lr=config.learning_rate, eps=1e-5
        )
        self.update = 0
        self.global_step = 0
        obs, info = self.envs.reset(seed=config.seed)
        self.observation = observation_to_tensor(obs)
        self.state = self.policy.initial_state(config.num_envs)
        self.allocator = self._make_allocator(info) if config.core == "sat-ama" else None
        self.reset_next = torch.ones(config.num_envs, dtype=torch.bool)  # first obs of an episode
        self.valid_next = torch.ones(config.num_envs, dtype=torch.bool)
        self.episode_return = np.zeros(config.num_envs)
        self.episode_length = np.zeros(config.num_envs, dtype=np.int64)
        self.chosen = torch.zeros(config.num_envs, dtype=torch.bool)  # the episode's choice made
        self.finished: list[tuple[float, int, bool]] = []
        self.recent_wins: deque[bool] = deque(maxlen=RECENT_EPISODES)
        if resume and self.checkpoints.exists():
            self._load_checkpoint()
        elif not resume and (self.run_dir / "metrics.csv").exists():
            raise FileExistsError(
                f"{self.run_dir} already holds a run; pass resume=True (--resume) to continue it "
                "or choose another directory"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
        self.log = RunLog(self.run_dir, tensorboard=config.tensorboard)
        self.log.truncate_after(self.global_step)

    # -- the Adaptive Memory Allocator (sat-ama) ------------------------------------------------

    def _make_allocator(self, info: dict[str, Any]) -> Any:
        """SAT's allocator: picks each episode's eviction strategy from its question type."""
        from memrl.envs.room_ballet import QUESTION_TYPES
        from memrl.memory import AdaptiveMemoryAllocator

        if "question_type" not in info:
            raise ValueError(
                f"sat-ama needs an env that reports info['question_type'] (the batched "
                f"RoomBallet envs do); {self.config.env_id} does not"
            )
        self.context = torch.as_tensor(info["question_type"], dtype=torch.long)
        self.strategy = torch.zeros(self.config.num_envs, dtype=torch.long)
        return AdaptiveMemoryAllocator(context_dim=len(QUESTION_TYPES), seed=self.config.seed)

    @property
    def _allocator_progress(self) -> float:
        """How far the allocator's exploration has annealed: a share of the training budget."""
        cfg = self.config
        return self.global_step / (cfg.allocator_explore_fraction * cfg.total_steps)

    def _allocate(self, starting: torch.Tensor) -> None:
        """Choose the strategies of the episodes that start now and write them into the state."""
        from memrl.memory import set_strategy

        assert self.allocator is not None
        if starting.any():
            self.strategy[starting] = self.allocator.select(
                self.context[starting], progress=self._allocator_progress
            )
            self.state = set_strategy(self.state, self.strategy, where=starting)

    def _reward_allocator(
        self, ended: np.ndarray, info: dict[str, Any], outcome: torch.Tensor
    ) -> None:
        """Update the allocator with the outcome of the episodes that ended.

        Args:
            ended: ``[N]`` the episodes that ended on this step.
            info: The step's info (its question types are the next episodes' contexts).
            outcome: ``[N]`` the reward of each env's choice: success under the ``rl`` objective;
                under ``supervised``, minus the answer's cross-entropy, SAT's "minus the
                downstream prediction loss".
        """
        assert self.allocator is not None
        done = torch.as_tensor(ended)
        if done.any():
            with torch.enable_grad():  # collect() runs without gradients
                self.allocator.update(self.context[done], self.strategy[done], outcome[done])
        self.context = torch.as_tensor(info["question_type"], dtype=torch.long)

    def _allocator_metrics(self) -> dict[str, float]:
        """The allocator's exploration rate and, per question type, its greedy strategy's id."""
        from memrl.envs.room_ballet import QUESTION_TYPES

        assert self.allocator is not None
        picks = self.allocator.select(torch.arange(len(QUESTION_TYPES)), explore=False)
        return {
            "allocator/epsilon": self.allocator.epsilon_at(self._allocator_progress),
            **{
                f"allocator/{name}": float(pick)
                for name, pick in zip(QUESTION_TYPES, picks.tolist(), strict=True)
            },
        }

    # -- collect -------------------------------------------------------------------------------

    @torch.no_grad()
    def collect(self) -> Rollout:
        """Step every env ``num_steps`` times with the current policy."""
        cfg = self.config
        start_state = detach_state(self.state)
        observations, actions, log_probs, values, rewards = [], [], [], [], []
        terminated, truncated, valid, resets, labels, acting = [], [], [], [], [], []
        answer_steps = []
        strategies = []
        for _ in range(cfg.num_steps):
            reset = self.reset_next
            if self.allocator is not None:
                self._allocate(reset)
                strategies.append(self.strategy.clone())
            dist, value, self.state = self.policy.act(
                self.observation, self.state, reset, _places(self.observation)
            )
            action = dist.sample()
            obs, reward, term, trunc, info = self.envs.step(self.policy.env_action(action))
            observations.append(self.observation)
            actions.append(action)
            log_probs.append(self.policy.log_prob(dist, action))
            values.append(value)
            rewards.append(torch.as_tensor(reward, dtype=torch.float32))
            terminated.append(torch.as_tensor(term))
            truncated.append(torch.as_tensor(trunc))
            valid.append(self.valid_next)
            acting.append(self.valid_next & ~self._ignored(info))
            resets.append(reset)
            if cfg.objective == "supervised" or cfg.answer_coef > 0:
                labels.append(self._answers(info))
                answer_steps.append(self._answer_step(torch.as_tensor(term), info))
            self._record_episodes(np.asarray(reward), term | trunc, info, self.valid_next.numpy())
            if self.allocator is not None:
                if cfg.objective == "supervised":
                    outcome = dist.log_prob(labels[-1].clamp(min=0))  # minus the cross-entropy
                else:
                    outcome = torch.as_tensor(info["is_success"], dtype=torch.float32)
                self._reward_allocator((term | trunc) & self.valid_next.numpy(), info, outcome)
            ended = torch.as_tensor(term | trunc)
            self.chosen &= ~ended
            # The next step resets the envs that ended: its action is ignored, and the step after
            # it shows the first observation of a new episode.
            self.reset_next = ~self.valid_next
            self.valid_next = ~ended
            self.observation = observation_to_tensor(obs)
            self.global_step += cfg.num_envs
        _, next_value, _ = self.policy.act(
            self.observation, self.state, self.reset_next, _places(self.observation)
        )
        return Rollout(
            observations=_stack_observations(observations),
            actions=torch.stack(actions),
            log_probs=torch.stack(log_probs),
            values=torch.stack(values),
            rewards=torch.stack(rewards),
            terminated=torch.stack(terminated),
            truncated=torch.stack(truncated),
            valid=torch.stack(valid),
            acting=torch.stack(acting),
            resets=torch.stack(resets),
            start_state=start_state,
            next_value=next_value,
            labels=torch.stack(labels) if labels else None,
            answer_steps=torch.stack(answer_steps) if answer_steps else None,
            strategies=torch.stack(strategies) if strategies else None,
        )

    def _ignored(self, info: dict[str, Any]) -> torch.Tensor:
        """``[N]`` True where the env reports this step's action as ignored and that is masked."""
        if not self.config.mask_ignored_actions:
            return torch.zeros(self.config.num_envs, dtype=torch.bool)
        return self._reported_ignored(info)

    def _answer_step(self, terminated: torch.Tensor, info: dict[str, Any]) -> torch.Tensor:
        """``[N]`` True on the steps the supervised objective labels (``answer_step``)."""
        if self.config.answer_step == "last":
            return terminated & self.valid_next
        if "action_ignored" not in info:
            raise ValueError(
                f"answer_step 'choice' needs an env that reports info['action_ignored'] (Ballet, "
                f"RoomBallet and DelayedMatch do); {self.config.env_id} does not"
            )
        choice = self.valid_next & ~self._reported_ignored(info) & ~self.chosen
        self.chosen |= choice
        return choice

    def _reported_ignored(self, info: dict[str, Any]) -> torch.Tensor:
        """``[N]`` True where the env reports this step's action as ignored."""
        num_envs = self.config.num_envs
        if "action_ignored" not in info:
            return torch.zeros(num_envs, dtype=torch.bool)
        ignored = np.asarray(info["action_ignored"], dtype=bool).reshape(num_envs)
        if "_action_ignored" in info:  # Gymnasium's sync vector env: entries an env did not report
            ignored = ignored & np.asarray(info["_action_ignored"], dtype=bool)
        return torch.as_tensor(ignored)

    def _answers(self, info: dict[str, Any]) -> torch.Tensor:
        """The right answers the env reports (supervised objective, probe), -1 where unknown."""
        user = "objective 'supervised'" if self.config.objective == "supervised" else "answer_coef"
        if "answer" not in info:
            raise ValueError(
                f"{user} needs an env that reports info['answer'], the right answer of its "
                f"question (Ballet, RoomBallet, DelayedMatch do); {self.config.env_id} does not"
            )
        answers = np.asarray(info["answer"], dtype=np.int64)
        if "_answer" in info:  # Gymnasium's sync vector env: entries an env did not report
            answers = np.where(info["_answer"], answers, -1)
        if self.config.answer_coef > 0 and answers.max(initial=-1) >= PROBE_CLASSES:
            raise ValueError(
                f"answer_coef: the probe head predicts answers 0..{PROBE_CLASSES - 1}; "
                f"{self.config.env_id} reported {answers.max()}"
            )
        return torch.as_tensor(answers)

    def _record_episodes(
        self, reward: np.ndarray, ended: np.ndarray, info: dict[str, Any], valid: np.ndarray
    ) -> None:
        self.episode_return += reward * valid
        self.episode_length += valid
        success = info.get("is_success")
        for i in np.flatnonzero(ended):
            won = bool(success[i]) if success is not None else False
            self.finished.append((float(self.episode_return[i]), int(self.episode_length[i]), won))
            self.recent_wins.append(won)
            self.episode_return[i] = 0.0
            self.episode_length[i] = 0

    # -- update --------------------------------------------------------------------------------

    def train_on(self, rollout: Rollout) -> dict[str, float]:
        """Epochs of minibatch updates over the rollout; returns the losses and diagnostics.

        Accuracies (``*_accuracy``) are measured in the first epoch only, each minibatch before
        its own update: on answers the model has not trained on yet. Later epochs revisit the same
        few answer steps and would report how well they were memorised.
        """
        cfg = self.config
        advantages = (
            None
            if cfg.objective == "supervised"
            else compute_advantages(rollout, cfg.gamma, cfg.gae_lambda)
        )
        env_groups = np.array_split(np.arange(cfg.num_envs), cfg.num_minibatches)
        stats: dict[str, list[float]] = {}
        for epoch in range(cfg.update_epochs):
            for group in np.random.permutation(len(env_groups)):
                envs = torch.as_tensor(env_groups[group])
                observations = index_observation(rollout.observations, (slice(None), envs))
                dist, value, hidden = self.policy.evaluate_window(
                    observations,
                    index_state(rollout.start_state, envs),
                    rollout.resets[:, envs],
                    _places(observations),
                    None if rollout.strategies is None else rollout.strategies[:, envs],
                )
                if advantages is None:
                    loss, diagnostics = self._answer_loss(dist, rollout, envs)
                else:
                    loss, diagnostics = self._ppo_loss(dist, value, rollout, advantages, envs)
                if self.policy.answer_head is not None:
                    probe = torch.distributions.Categorical(logits=self.policy.answer_head(hidden))
                    probe_loss, probe_stats = self._answer_loss(probe, rollout, envs)
                    loss = loss + cfg.answer_coef * probe_loss
                    diagnostics["losses/probe_loss"] = probe_stats["losses/answer_loss"]
                    diagnostics["losses/probe_accuracy"] = probe_stats["losses/answer_accuracy"]
                if self.policy.decoder is not None:
                    reconstruction = self.policy.decoder.loss(
                        hidden.flatten(0, 1), flatten_time(observations)
                    )
                    loss = loss + cfg.reconstruction_coef * reconstruction
                    diagnostics["losses/reconstruction"] = reconstruction
                self.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                for key, value_ in diagnostics.items():
                    unseen = epoch == 0 or not key.endswith("_accuracy")
                    stats.setdefault(key, []).append(float(value_.detach()) if unseen else math.nan)
        # NaN marks a minibatch without the value (no answer step in it): left out of the mean.
        return {
            k: float(np.nanmean(v)) if not np.isnan(v).all() else math.nan for k, v in stats.items()
        }

    def _ppo_loss(
        self,
        dist: torch.distributions.Distribution,
        value: torch.Tensor,
        rollout: Rollout,
        advantages: torch.Tensor,
        envs: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """PPO's clipped policy loss, value loss and entropy bonus on the windows of ``envs``.

        The value loss covers every valid step; the policy loss, the entropy bonus, the
        advantages' normalisation and the diagnostics cover the steps that act (``acting``).
        """
        cfg = self.config
        m = rollout.valid[:, envs].float()
        count = m.sum().clamp(min=1.0)
        a = rollout.acting[:, envs].float()
        acting_count = a.sum().clamp(min=1.0)
        adv = advantages[:, envs]
        adv_mean = (adv * a).sum() / acting_count
        adv_std = (((adv - adv_mean) ** 2 * a).sum() / acting_count).sqrt()
        adv = (adv - adv_mean) / (adv_std + 1e-8)
        log_prob = self.policy.log_prob(dist, rollout.actions[:, envs])
        log_ratio = log_prob - rollout.log_probs[:, envs]
        ratio = log_ratio.exp()
        policy_loss = torch.max(
            -adv * ratio, -adv * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)
        )
        old_value = rollout.values[:, envs]
        target = advantages[:, envs] + old_value
        value_loss = (value - target) ** 2
        if cfg.clip_value:
            clipped = old_value + (value - old_value).clamp(-cfg.clip_coef, cfg.clip_coef)
            value_loss = torch.max(value_loss, (clipped - target) ** 2)
        entropy = self.policy.entropy(dist)
        policy_loss = (policy_loss * a).sum() / acting_count
        value_loss = 0.5 * (value_loss * m).sum() / count
        entropy_mean = (entropy * a).sum() / acting_count
        loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy_mean
        with torch.no_grad():
            approx_kl = (((ratio - 1) - log_ratio) * a).sum() / acting_count
            clipfrac = (((ratio - 1).abs() > cfg.clip_coef).float() * a).sum() / acting_count
        return loss, {
            "losses/policy_loss": policy_loss,
            "losses/value_loss": value_loss,
            "losses/entropy": entropy_mean,
            "losses/approx_kl": approx_kl,
            "losses/clipfrac": clipfrac,
        }

    def _answer_loss(
        self, dist: torch.distributions.Distribution, rollout: Rollout, envs: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Supervised objective: cross-entropy of each episode's answer step against its answer.

        The answer step is the one ``answer_step`` names (the last: the step whose action ended
        the episode; the choice: its first action that counts); steps whose answer is unknown
        (-1) and autoreset steps are left out.
        """
        assert rollout.labels is not None and isinstance(dist, torch.distributions.Categorical)
        assert rollout.answer_steps is not None
        labels = rollout.labels[:, envs]
        m = (rollout.answer_steps[:, envs] & (labels >= 0)).float()
        count = m.sum().clamp(min=1.0)
        log_prob = dist.log_prob(labels.clamp(min=0))
        loss = -(log_prob * m).sum() / count
        with torch.no_grad():
            correct = (dist.logits.argmax(-1) == labels).float()
            accuracy = (correct * m).sum() / count
            if not bool(m.any()):  # no answer step in this minibatch: nothing to report
                nothing = torch.tensor(math.nan)
                return loss, {"losses/answer_loss": nothing, "losses/answer_accuracy": nothing}
        return loss, {"losses/answer_loss": loss, "losses/answer_accuracy": accuracy}

    # -- the loop ------------------------------------------------------------------------------

    def train(self, stop: Callable[[], bool] | None = None) -> dict[str, float]:
        """Run until ``total_steps``; returns the last logged metrics.

        Args:
            stop: Asked after every update (once it is logged); True ends training there, with a
                checkpoint (``memrl bench learning`` stops at a success level this way).
        """
        cfg = self.config
        bar = tqdm(
            total=cfg.num_updates * cfg.batch_steps,
            initial=self.update * cfg.batch_steps,
            unit="step",
            desc=f"{cfg.core} on {cfg.env_id}",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        metrics: dict[str, float] = {}
        start_time, start_step = time.perf_counter(), self.global_step
        try:
            while self.update < cfg.num_updates:
                if cfg.anneal_lr:
                    fraction = 1.0 - self.update / cfg.num_updates
                    for group in self.optimizer.param_groups:
                        group["lr"] = fraction * cfg.learning_rate
                rollout = self.collect()
                losses = self.train_on(rollout)
                self.update += 1
                bar.update(cfg.batch_steps)
                if self.update % cfg.log_every == 0 or self.update == cfg.num_updates:
                    elapsed = time.perf_counter() - start_time
                    metrics = {
                        **losses,
                        **self._episode_metrics(),
                        "charts/learning_rate": self.optimizer.param_groups[0]["lr"],
                        "charts/sps": (self.global_step - start_step) / max(elapsed, 1e-9),
                    }
                    if self.allocator is not None:
                        metrics |= self._allocator_metrics()
                    self.log.write(self.global_step, metrics)
                    if "charts/success_rate" in metrics:
                        bar.set_postfix(success=f"{metrics['charts/success_rate']:.2f}")
                if stop is not None and stop():
                    self.save_checkpoint()
                    break
                if self.update % cfg.checkpoint_every == 0 or self.update == cfg.num_updates:
                    self.save_checkpoint()
        finally:
            bar.close()
            self.log.close()
            self.lock.release()
        return metrics

    def _episode_metrics(self) -> dict[str, float]:
        if not self.finished:
            return {}
        returns, lengths, wins = zip(*self.finished, strict=True)
        self.finished = []
        return {
            "charts/episodic_return": float(np.mean(returns)),
            "charts/episodic_length": float(np.mean(lengths)),
            "charts/success_rate": float(np.mean(wins)),
            "charts/episodes": float(len(wins)),
        }

    # -- checkpoints ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the envs and free the run directory (``train()`` frees it when it ends).

        For a trainer that is built but not trained (to inspect a checkpoint, say) while another
        trainer of the same run directory is wanted.
        """
        self.lock.release()
        self.envs.close()

    def save_checkpoint(self) -> Path:
        """Write everything needed to continue exactly; returns the checkpoint's path.

        It becomes ``latest.pt``, the last one ``previous.pt`` (atomically: temp file, fsync,
        rename; see :class:`~memrl.agents.checkpoints.CheckpointStore`). The TensorBoard events
        logged so far are flushed to disk first.
        """
        self.log.flush()
        payload = {
            "config": dataclasses.asdict(self.config),
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "update": self.update,
            "global_step": self.global_step,
            "envs": pickle.dumps(self.envs),
            "observation": self.observation,
            "state": self.state,
            "reset_next": self.reset_next,
            "valid_next": self.valid_next,
            "episode_return": self.episode_return,
            "episode_length": self.episode_length,
            "chosen": self.chosen,
            "finished": self.finished,
            "recent_wins": list(self.recent_wins),
            "rng": _rng_states(),
            "allocator": None
            if self.allocator is None
            else {
                "model": self.allocator.state_dict(),
                "optimizer": self.allocator.optimizer.state_dict(),
                "generator": self.allocator.generator.get_state(),
                "context": self.context,
                "strategy": self.strategy,
            },
        }
        return self.checkpoints.save(payload)

    def _load_checkpoint(self) -> None:
        allocator = ("allocator",) if self.allocator is not None else ()
        _, payload = self.checkpoints.load(required=(*CHECKPOINT_KEYS, *allocator))
        # A setting added to PPOConfig after the checkpoint was written has its default there.
        saved = {
            **dataclasses.asdict(PPOConfig(env_id=self.config.env_id)),
            **OLDER_CHECKPOINTS,
            **payload["config"],
        }
        check_resumable_config(self.run_dir, saved, dataclasses.asdict(self.config))
        if self.config.num_updates < payload["update"]:
            raise ValueError(
                f"cannot resume {self.run_dir} with total_steps {self.config.total_steps}: it has "
                f"already trained {payload['global_step']} env steps; ask for "
                f"{payload['global_step']} or more"
            )
        self.policy.load_state_dict(payload["policy"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.update = payload["update"]
        self.global_step = payload["global_step"]
        self.envs.close()
        self.envs = pickle.loads(payload["envs"])
        self.observation = payload["observation"]
        self.state = payload["state"]
        self.reset_next = payload["reset_next"]
        self.valid_next = payload["valid_next"]
        self.episode_return = payload["episode_return"]
        self.episode_length = payload["episode_length"]
        # Checkpoints written before answer_step existed: their runs label the last step only.
        self.chosen = payload.get("chosen", torch.zeros(self.config.num_envs, dtype=torch.bool))
        self.finished = payload["finished"]
        # Checkpoints written before it was saved: the window restarts empty.
        self.recent_wins = deque(payload.get("recent_wins", ()), maxlen=RECENT_EPISODES)
        _set_rng_states(payload["rng"])
        if self.allocator is not None:
            saved_allocator = payload["allocator"]
            self.allocator.load_state_dict(saved_allocator["model"])
            self.allocator.optimizer.load_state_dict(saved_allocator["optimizer"])
            self.allocator.generator.set_state(saved_allocator["generator"])
            self.context = saved_allocator["context"]
            self.strategy = saved_allocator["strategy"]


def read_checkpoint(run_dir: str | Path) -> tuple[Path, dict[str, Any]]:
    """The newest intact checkpoint of a run directory (for evaluation) and its path.

    ``checkpoints/latest.pt``, or ``previous.pt`` with a warning if ``latest.pt`` is damaged.

    Raises:
        FileNotFoundError: The run has no checkpoint.
        NoIntactCheckpointError: Both checkpoints are damaged (a ``ValueError``).
    """
    store = CheckpointStore(Path(run_dir) / "checkpoints")
    if not store.exists():
        raise FileNotFoundError(
            f"no checkpoint at {store.directory / LATEST}; train first with `memrl train`"
        )
    return store.load(required=("config", "policy"))


def load_policy(run_dir: str | Path) -> tuple[MemoryPolicy, PPOConfig]:
    """The trained policy and config of a run directory (from its newest intact checkpoint)."""
    _, payload = read_checkpoint(run_dir)
    return policy_from_checkpoint(payload)


def policy_from_checkpoint(payload: dict[str, Any]) -> tuple[MemoryPolicy, PPOConfig]:
    """The trained policy (in eval mode) and config of a checkpoint's dictionary."""
    config = PPOConfig(**{**OLDER_CHECKPOINTS, **payload["config"]})
    envs = make_vector_env(config.env_id, 1, config.env_kwargs)
    policy = build_policy(config, envs)
    envs.close()
    policy.load_state_dict(payload["policy"])
    policy.eval()
    return policy, config


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_states() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state()}  # fmt: skip


def _set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])


__all__ = [
    "PPOConfig",
    "PPOTrainer",
    "compute_advantages",
    "load_policy",
    "parameter_count",
    "policy_from_checkpoint",
    "read_checkpoint",
]
