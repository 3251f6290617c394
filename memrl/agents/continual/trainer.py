"""Continual SAC's trainer: follow the stream, learn, evaluate every task, checkpoint.

One env step at a time, as Continual World's ``SAC.run`` (single env):

1. **Task change.** When the stream enters a new task (a new :class:`Segment`), the method sees
   the previous task's replay first (``on_task_start``: L2/EWC anchor and importance), then the
   replay buffer is cleared (unless the method keeps it) and the optimisers are reset.
2. **Act.** Uniform-random actions for the task's first ``start_steps`` steps, then the policy
   (sampled).
3. **Store** the transition; time limits and stage ends are truncations, not terminal states.
4. **Learn.** From the task's ``update_after``-th step on, every ``update_every`` steps,
   ``update_every`` gradient steps.
5. **Task end.** After the task's last step the method finishes the task (PackNet prunes and
   retrains).
6. **Evaluate** before training (the initial evaluation, at step 0), every ``eval_every`` steps
   and at the end, on every task of the stream, held-out tasks included:
   ``ContinualEnv(fixed_task=...)``, ``eval_episodes`` episodes each, success =
   ``info["is_success"]`` at the episode's end (dm_control tasks define no success: their score
   is the normalised return, episode return / 1000, in [0, 1]); written to ``evaluations.json``
   (:class:`~memrl.agents.continual.evaluation_log.EvaluationLog`: the initial evaluation apart, the
   trained tasks' columns in the layout of ``EvaluationHistory``) and ``metrics.csv``
   (``eval/<task>/success``; ``retention/<task>`` at every task's end).
7. **Log** (``charts/``, ``losses/``) every ``log_every`` steps; **checkpoint** every
   ``checkpoint_every`` steps and at the end.

Evaluation episodes are seeded from ``(seed, evaluation index)`` (the initial evaluation from a
seed of its own) and stochastic evaluations draw their noise from a generator seeded the same
way: an evaluation does not depend on earlier ones, and does not disturb training's random
streams.

Checkpoints (``checkpoints/latest.pt``, the one before kept as ``checkpoints/previous.pt``, and
``checkpoints/buffer/part-*.npz``): networks, optimisers, entropy coefficients, the method's state
(anchors, importances, PackNet masks), the replay buffer (incrementally: only the rows written
since the previous checkpoint, see :mod:`~memrl.agents.continual.buffers`), the training env
pickled mid-episode (Meta-World's simulator state included), the current observation, the random
generators (torch's global one, the exploration and replay generators) and the evaluation log.
``resume=True`` therefore continues a killed run *exactly*: the parameters after resuming equal
those of an uninterrupted run with the same seed, bit for bit, on the same machine and torch build
with the same thread count. Metric rows and TensorBoard events logged after the checkpoint are
dropped (TensorBoard's by a purge); ``charts/sps`` restarts, and so does the progress bar's rate.

A damaged checkpoint (truncated, corrupted, or one of its buffer parts damaged or missing) is
reported by its path, and the run resumes from ``previous.pt`` instead, exactly as from any
checkpoint; the buffer parts ``previous.pt`` needs are kept until a newer checkpoint replaces it
(:mod:`memrl.agents.checkpoints`). ``load_continual_agent`` falls back the same way.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import pickle
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch
from tqdm import tqdm

from memrl.agents.checkpoints import LATEST, CheckpointStore
from memrl.agents.continual.buffers import check_parts, part_names
from memrl.agents.continual.config import ContinualConfig
from memrl.agents.continual.evaluation_log import LOG_FILE, EvaluationLog
from memrl.agents.continual.methods import Method, Segment, make_method
from memrl.agents.continual.sac import ContinualSAC
from memrl.agents.resume import changed_fields
from memrl.agents.run_lock import RunLock
from memrl.agents.run_log import RunLog
from memrl.streams import ContinualEnv
from memrl.streams.dm_control_env import MAX_RETURN

AGENT = "continual-sac"
"""``config.json``'s ``agent`` entry, by which ``memrl eval`` recognises a continual run."""
EVAL_SEED_SALT = 7919
"""Mixed into the evaluation seeds so that they differ from the training env's."""
INITIAL_EVAL_SALT = 7927
"""Seeds the initial evaluation (before any training) apart from the later ones."""
RESUMABLE_CHANGES = ("checkpoint_every", "log_every", "tensorboard", "threads")
"""Config fields that may differ when resuming (they do not change what is learnt)."""
CHECKPOINT_KEYS = ("config", "global_step", "segment_index", "agent", "method", "buffer",
                   "env", "observation", "episode", "finished", "losses", "rng",
                   "evaluations")  # fmt: skip
"""What a checkpoint must hold to resume."""
AGENT_KEYS = ("config", "agent", "method")
"""What a checkpoint must hold to load its agent (for evaluation)."""


def build_agent(config: ContinualConfig, env: gymnasium.Env, num_tasks: int) -> ContinualSAC:
    """The agent of ``config`` for ``env``'s spaces."""
    return ContinualSAC(
        env.observation_space,
        env.action_space,
        num_tasks,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        multi_head=config.multi_head,
        hide_task_id=config.hide_task_id,
        learning_rate=config.learning_rate,
        gamma=config.gamma,
        polyak=config.polyak,
        target_output_std=config.target_output_std,
    )


class ContinualTrainer:
    """Trains continual SAC on a stream with one method; see the module docstring.

    Args:
        config: The run's configuration.
        run_dir: Where config, metrics, evaluations, checkpoints and TensorBoard events go.
        resume: Continue from ``run_dir/checkpoints/latest.pt`` if it exists (from
            ``previous.pt``, with a warning, if ``latest.pt`` or a buffer part it needs is
            damaged or missing).
        progress: Show a progress bar.

    Raises:
        ValueError: A bad config (the message names the allowed values) or a stream whose tasks
            do not have Box actions; resuming, both checkpoints damaged
            (``NoIntactCheckpointError``, naming both and why).
        FileExistsError: ``run_dir`` already holds a run and ``resume`` is False.
    """

    def __init__(
        self,
        config: ContinualConfig,
        run_dir: str | Path,
        resume: bool = False,
        progress: bool = True,
    ) -> None:
        config.validate()
        self.config = config
        self.run_dir = Path(run_dir)
        self.checkpoints = CheckpointStore(self.run_dir / "checkpoints")
        self.checkpoint_path = self.checkpoints.latest
        self.buffer_dir = self.run_dir / "checkpoints" / "buffer"
        self._latest_parts: list[str] = []  # buffer parts of the checkpoint at latest.pt
        self.progress = progress
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)

        self.stream = config.build_stream()
        self.timeline = self.stream.timeline
        self.method: Method = make_method(config, self.stream)
        self.segments = self.method.segments
        self._segment_starts = [segment.start for segment in self.segments]
        self.env = self.method.make_env()
        self.agent = build_agent(config, self.env, len(self.stream.layout_names))
        self.agent.method = self.method
        self.method.attach(self.agent)
        space = self.env.action_space
        assert isinstance(space, gymnasium.spaces.Box)  # ContinualSAC checked it
        self.action_low, self.action_high = space.low, space.high
        self.buffer = self.method.make_buffer(
            self.agent.observation_dim, self.agent.action_dim, config.seed
        )
        self.rng = np.random.default_rng([config.seed, 1])  # exploration
        self.eval_envs: dict[str, ContinualEnv] = {}
        self.evaluations = EvaluationLog(
            task_names=self.stream.layout_names,
            steps_per_task=self.stream.steps_per_task,
            schedule=tuple(stage.task_ids[0] for stage in self.timeline.stages),
            method=config.method,
            stream=self.stream.name,
            seed=config.seed,
            eval_episodes=config.eval_episodes,
            deterministic=config.eval_deterministic,
            return_scored=tuple(
                t.name for t in self.stream.layout_tasks if t.domain == "dm_control"
            ),
            held_out=self.stream.held_out_names,
        )

        self.global_step = 0
        self.segment_index = -1  # no task started yet
        self.episode_return, self.episode_length = 0.0, 0
        self.finished: list[tuple[float, int, bool]] = []  # (return, length, success)
        self.losses: dict[str, float] = {}
        resumed = resume and self.checkpoints.exists()
        if resumed:
            self._load_checkpoint()
        else:
            if not resume and any(
                (self.run_dir / name).exists() for name in ("metrics.csv", LOG_FILE)
            ):
                raise FileExistsError(
                    f"{self.run_dir} already holds a run; resume it (--resume, or resume=True) "
                    "or choose another directory"
                )
            self.observation, _ = self.env.reset(seed=config.seed)
            if config.start_steps >= self.stream.steps_per_task:
                warnings.warn(
                    f"start_steps ({config.start_steps}) >= steps per task "
                    f"({self.stream.steps_per_task}): every training action is uniformly random "
                    "and the policy only acts in evaluations",
                    stacklevel=2,
                )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(
            json.dumps({"agent": AGENT, **dataclasses.asdict(config)}, indent=2) + "\n"
        )
        self.run_log = RunLog(self.run_dir, tensorboard=config.tensorboard)
        # A fresh start in the directory of a run killed before its first checkpoint: drop it all.
        self.run_log.truncate_after(self.global_step if resumed else -1)
        self._clock = (time.perf_counter(), self.global_step)

    @property
    def total_steps(self) -> int:
        """Env steps of the whole stream."""
        return self.timeline.total_steps

    def segment_at(self, step: int) -> Segment:
        """The task segment stream step ``step`` falls in."""
        return self.segments[max(bisect.bisect_right(self._segment_starts, step) - 1, 0)]

    # -- the loop --------------------------------------------------------------------------------

    def train(self, stop_at: int | None = None) -> dict[str, float]:
        """Train to the end of the stream (or until ``stop_at`` env steps); returns a summary."""
        end = self.total_steps if stop_at is None else min(stop_at, self.total_steps)
        bar = tqdm(
            total=self.total_steps,
            initial=self.global_step,
            unit="step",
            desc=f"{self.config.method} on {self.stream.name}",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        try:
            if self.global_step == 0 and self.evaluations.initial_success is None:
                self.evaluate_initial()
            while self.global_step < end:
                self.step()
                bar.update(1)
                if self.global_step % self.config.eval_every == 0:
                    bar.set_postfix(self._postfix())
        finally:
            bar.close()
        return self.summary()

    def step(self) -> None:
        """One env step of the loop (see the module docstring), with what falls due after it."""
        cfg = self.config
        segment = self.segment_at(self.global_step)
        if segment.index != self.segment_index:
            self.start_task(segment)
        task_step = self.global_step - segment.start

        # Act: uniform-random for the first start_steps steps of every task, then the policy.
        if task_step < cfg.start_steps:
            action = self.rng.uniform(self.action_low, self.action_high).astype(np.float32)
        else:
            action = self.agent.act(self.observation[None])[0]
        next_observation, step_reward, terminated, truncated, info = self.env.step(action)
        reward = float(step_reward)

        # Store (truncation is not termination: the critic bootstraps through time limits).
        self.buffer.add(self.observation, action, reward, next_observation, terminated)
        self._record_episode(reward, terminated or truncated, info)
        self.observation = next_observation
        if terminated or truncated:
            self.observation, _ = self.env.reset()

        # Learn: update_every gradient steps every update_every env steps.
        if task_step >= cfg.update_after and task_step % cfg.update_every == 0:
            for _ in range(cfg.update_every):
                self.losses = self.learn(segment)
        self.global_step += 1

        if self.global_step == segment.end:
            self.method.on_task_end(self.agent, segment, self.buffer, lambda: self.learn(segment))
        if self.global_step % cfg.eval_every == 0 or self.global_step == self.total_steps:
            self.evaluate()
        if self.global_step % cfg.log_every == 0:
            self._log_training(segment)
        if self.global_step % cfg.checkpoint_every == 0 or self.global_step == self.total_steps:
            self.save_checkpoint()

    def start_task(self, segment: Segment) -> None:
        """Task change: the method's hook, then the replay and optimiser resets."""
        self.method.on_task_start(self.agent, segment, self.buffer)
        if segment.index > 0:
            if self.method.clears_buffer:
                self.buffer.clear()
            if self.config.reset_optimizer:
                self.agent.reset_optimizers()
        self.segment_index = segment.index

    def learn(self, segment: Segment) -> dict[str, float]:
        """One gradient step on a replay batch."""
        batch = self.buffer.sample(self.method.batch_size)
        return self.agent.update(batch, self.method, segment.index)

    def _record_episode(self, reward: float, ended: bool, info: dict[str, Any]) -> None:
        self.episode_return += float(reward)
        self.episode_length += 1
        if ended:
            success = bool(info.get("is_success", False))
            self.finished.append((self.episode_return, self.episode_length, success))
            self.episode_return, self.episode_length = 0.0, 0

    # -- evaluation ----------------------------------------------------------------------------

    def _eval_env(self, task: str) -> ContinualEnv:
        if task not in self.eval_envs:
            self.eval_envs[task] = ContinualEnv(self.stream, task_one_hot=True, fixed_task=task)
        return self.eval_envs[task]

    def evaluate(self) -> list[float]:
        """Evaluate every task of the stream now; log and return the success rates."""
        index = len(self.evaluations.steps)
        success, returns = self._play_evaluation([self.config.seed, EVAL_SEED_SALT, index])
        self.evaluations.append(self.global_step, success, returns)
        self._log_evaluation(success, returns)
        return success

    def evaluate_initial(self) -> list[float]:
        """Evaluate every task before any training (the retention matrix's "initial" row)."""
        if self.global_step:
            raise ValueError(
                f"the initial evaluation must come before training, not at step {self.global_step}"
            )
        success, returns = self._play_evaluation([self.config.seed, INITIAL_EVAL_SALT])
        self.evaluations.set_initial(success, returns)
        self._log_evaluation(success, returns)
        return success

    def _play_evaluation(self, entropy: list[int]) -> tuple[list[float], list[float]]:
        """Success (or normalised return) and mean return of every task, seeded by ``entropy``."""
        cfg = self.config
        seeds = np.random.SeedSequence(entropy).generate_state(cfg.eval_episodes)
        generator = torch.Generator().manual_seed(int(seeds[0]))
        success, returns = [], []
        for task_id, task in enumerate(self.evaluations.task_names):
            env = self._eval_env(task)
            wins, total = 0.0, 0.0
            by_return = task in self.evaluations.return_scored
            with self.agent.task_view(task_id):
                for seed in seeds:
                    observation, _ = env.reset(seed=int(seed))
                    done, episode_return = False, 0.0
                    while not done:
                        action = self.agent.act(
                            observation[None], cfg.eval_deterministic, generator
                        )[0]
                        observation, reward, terminated, truncated, info = env.step(action)
                        total += float(reward)
                        episode_return += float(reward)
                        done = terminated or truncated
                    if by_return:  # dm_control: no success, the normalised return
                        wins += min(max(episode_return / MAX_RETURN, 0.0), 1.0)
                    else:
                        wins += bool(info["is_success"])
            success.append(wins / len(seeds))
            returns.append(total / len(seeds))
        return success, returns

    def _log_evaluation(self, success: list[float], returns: list[float]) -> None:
        """Save the evaluation log and write an evaluation's metrics at the current step."""
        self.evaluations.save(self.run_dir / LOG_FILE)
        names = self.evaluations.task_names
        metrics = {"eval/average_success": self._trained_mean(success)}
        if self.stream.held_out:
            trained = len(self.stream.task_names)
            metrics["eval/held_out_average_success"] = float(np.mean(success[trained:]))
        for task, rate, mean_return in zip(names, success, returns, strict=True):
            metrics[f"eval/{task}/success"] = rate
            metrics[f"eval/{task}/return"] = mean_return
        if self.global_step > 0 and self.global_step % self.stream.steps_per_task == 0:
            metrics.update({f"retention/{t}": s for t, s in zip(names, success, strict=True)})
        self.run_log.write(self.global_step, metrics)

    # -- logging -------------------------------------------------------------------------------

    def _log_training(self, segment: Segment) -> None:
        start_time, start_step = self._clock
        elapsed = max(time.perf_counter() - start_time, 1e-9)
        metrics = {
            **self.losses,
            "charts/sps": (self.global_step - start_step) / elapsed,
            "charts/segment": float(segment.index),
            "charts/buffer_size": float(len(self.buffer)),
        }
        if segment.task_id is not None:
            metrics["charts/task"] = float(segment.task_id)
            metrics["charts/alpha"] = self.agent.alpha(segment.task_id)
        if self.finished:
            returns, lengths, wins = zip(*self.finished, strict=True)
            metrics.update({
                "charts/episodic_return": float(np.mean(returns)),
                "charts/episodic_length": float(np.mean(lengths)),
                "charts/success_rate": float(np.mean(wins)),
                "charts/episodes": float(len(wins)),
            })  # fmt: skip
            self.finished = []
        self.run_log.write(self.global_step, metrics)

    def _postfix(self) -> dict[str, str]:
        segment = self.segment_at(max(self.global_step - 1, 0))
        task = "all" if segment.task_id is None else self.stream.task_names[segment.task_id]
        postfix = {"task": task}
        if self.evaluations.success:
            postfix["eval"] = f"{self._trained_mean(self.evaluations.success[-1]):.2f}"
        return postfix

    def _trained_mean(self, success: list[float]) -> float:
        """Mean success over the trained tasks of one evaluation (held-out ones left out)."""
        return float(np.mean(success[: len(self.stream.task_names)]))

    def summary(self) -> dict[str, float]:
        """The step reached and the last evaluation (average over trained tasks, and per task)."""
        out = {
            "global_step": float(self.global_step),
            "finished": float(self.global_step >= self.total_steps),
        }
        if self.evaluations.success:
            last = self.evaluations.success[-1]
            out["eval/average_success"] = self._trained_mean(last)
            names = self.evaluations.task_names
            out.update({f"eval/{t}/success": s for t, s in zip(names, last, strict=True)})
        return out

    def close(self) -> None:
        """Close the envs and the TensorBoard writer."""
        self.env.close()
        for env in self.eval_envs.values():
            env.close()
        self.run_log.close()

    # -- checkpoints ---------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """Write everything needed to continue exactly; returns the checkpoint's path.

        The buffer's new part file first, then the checkpoint that refers to it, as
        ``latest.pt`` (the last one becomes ``previous.pt``; atomically), then the part files
        neither of the two refers to are deleted. The TensorBoard events logged so far are
        flushed to disk first.
        """
        self.run_log.flush()
        self.buffer.save_parts(self.buffer_dir)
        buffer_state = self.buffer.state_dict()
        payload = {
            "config": dataclasses.asdict(self.config),
            "global_step": self.global_step,
            "segment_index": self.segment_index,
            "agent": self.agent.state_dict(),
            "method": self.method.state_dict(),
            "buffer": buffer_state,
            "env": pickle.dumps(self.env),
            "observation": self.observation,
            "episode": (self.episode_return, self.episode_length),
            "finished": self.finished,
            "losses": self.losses,
            "rng": {"torch": torch.get_rng_state(), "exploration": self.rng.bit_generator.state},
            "evaluations": self.evaluations.to_dict(),
        }
        path = self.checkpoints.save(payload)
        self.buffer.prune_parts(self.buffer_dir, keep=self._latest_parts)  # previous.pt's
        self._latest_parts = part_names(buffer_state)
        return path

    def _load_checkpoint(self) -> None:
        _, payload = self.checkpoints.load(
            required=CHECKPOINT_KEYS, check=lambda p: check_parts(p["buffer"], self.buffer_dir)
        )
        saved_config = saved_run_config(payload["config"])
        saved = learning_settings(saved_config, with_seed=True)
        mine = learning_settings(self.config, with_seed=True)
        changed = changed_fields(saved, mine, may_change=())
        if changed:
            hint = ""
            if "one_hot" in changed:
                layout = saved["one_hot"]
                hint = f"; the run is laid out with one_hot={layout!r} (--one-hot {layout})"
            raise ValueError(
                f"cannot resume {self.run_dir}: its config differs in {changed} (only "
                f"{list(RESUMABLE_CHANGES)} may change on resume){hint}"
            )
        self.global_step = payload["global_step"]
        self.segment_index = payload["segment_index"]
        self.agent.load_state_dict(payload["agent"])
        self.method.load_state_dict(payload["method"])
        self.buffer.load_state_dict(payload["buffer"], self.buffer_dir)
        self._latest_parts = part_names(payload["buffer"])
        self.env.close()
        self.env = pickle.loads(payload["env"])
        self.observation = payload["observation"]
        self.episode_return, self.episode_length = payload["episode"]
        self.finished = payload["finished"]
        self.losses = payload["losses"]
        torch.set_rng_state(payload["rng"]["torch"])
        self.rng.bit_generator.state = payload["rng"]["exploration"]
        self.evaluations = EvaluationLog.from_dict(payload["evaluations"])
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.evaluations.save(self.run_dir / LOG_FILE)  # drops evaluations after the checkpoint


def train_continual(
    config: ContinualConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, float]:
    """Train continual SAC (``memrl train --stream ... --method ...``).

    Args:
        config: The run's configuration.
        run_dir: The run directory (config.json, metrics.csv, evaluations.json, tb/,
            checkpoints/).
        resume: Continue the run in ``run_dir`` from its last checkpoint.
        progress: Show a progress bar.

    Returns:
        The step reached and the last evaluation's success rates.

    Raises:
        RunInUseError: Another process is training ``run_dir``.
    """
    config.validate()
    with RunLock(run_dir):
        trainer = ContinualTrainer(config, run_dir, resume=resume, progress=progress)
        try:
            return trainer.train()
        finally:
            trainer.close()


def saved_run_config(saved: Mapping[str, Any]) -> ContinualConfig:
    """The config a checkpoint was saved with.

    A field added since then takes its default, except ``one_hot``: a run saved before it existed
    was laid out by task (CW20 included, whose default is now by stage).
    """
    return ContinualConfig(**{"one_hot": "task", **saved})


def learning_settings(config: ContinualConfig, *, with_seed: bool = False) -> dict[str, Any]:
    """What makes runs of ``config`` differ beyond their seed.

    Its fields without what does not change learning, with the stream's own layout and budget
    made explicit.

    Args:
        config: The run's config.
        with_seed: Keep the seed, for comparing one run with itself (a resume, an archived copy)
            rather than seeds of one setting with each other.
    """
    settings = dataclasses.asdict(config)
    for name in RESUMABLE_CHANGES if with_seed else ("seed", *RESUMABLE_CHANGES):
        settings.pop(name)
    stream = config.build_stream()  # "" and 0 mean the stream's own layout and budget
    settings["one_hot"], settings["steps_per_task"] = stream.one_hot, stream.steps_per_task
    return settings


def load_continual_agent(run_dir: str | Path) -> tuple[ContinualSAC, ContinualConfig]:
    """The agent (with its method's state, e.g. PackNet's masks) of a run's newest checkpoint.

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
    _, payload = store.load(required=AGENT_KEYS)
    config = saved_run_config(payload["config"])
    stream = config.build_stream()
    method = make_method(config, stream)
    env = ContinualEnv(stream, task_one_hot=True)
    agent = build_agent(config, env, len(stream.layout_names))
    env.close()
    agent.method = method
    method.attach(agent)
    agent.load_state_dict(payload["agent"])
    method.load_state_dict(payload["method"])
    return agent, config
