"""Base class for memrl's numpy-batched environments.

A batched environment steps N independent episodes in one call with numpy, and behaves exactly like
Gymnasium's ``SyncVectorEnv`` over N copies of the single environment (wrapped in ``TimeLimit``):

- ``reset(seed=s)`` seeds sub-environment i with ``s + i`` (a list gives one seed each); every
  sub-environment draws its episodes from its own generator, in the order the single env does;
- autoreset is ``NEXT_STEP``: the step after an episode ends resets that sub-environment, ignores
  its action and returns reward 0, ``terminated=False``, ``truncated=False``;
- ``truncated`` is set when the episode reaches ``max_episode_steps``, whether or not it also
  terminated on that step (as ``TimeLimit`` does);
- ``reset(options={"reset_mask": mask})`` resets only the masked sub-environments, as
  ``SyncVectorEnv`` does (see :meth:`BatchedEnv.reset`);
- infos are laid out as ``SyncVectorEnv`` lays out the single env's: the same keys on the same
  steps, values in arrays with a leading ``[N]`` axis, ``_key`` masks;
- ``step`` takes one ``Discrete`` action per sub-environment, an integer array of shape ``[N]``,
  and raises ``ValueError`` for any other shape, dtype or value (``memrl.envs.actions``), before
  anything changes; a sub-environment being reset is checked too, though its action is ignored.

The registry-parametrised tests compare every batched env with ``SyncVectorEnv`` seed by seed.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from memrl.envs.actions import check_batched_discrete_actions


def merge_vector_infos(info: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``info``, both in ``SyncVectorEnv``'s layout, and return ``info``.

    Each key holds one value per sub-environment, and ``_key`` marks the sub-environments that
    have it; nested dicts follow the same layout. Where ``extra`` marks a sub-environment its value
    wins (on an autoreset step a sub-environment either stepped or reset, never both).
    """
    for key, value in extra.items():
        mask = extra.get(f"_{key}")
        if key.startswith("_") and key[1:] in extra:
            continue  # a mask, merged with its key
        if key not in info or mask is None:
            info[key] = value
            if mask is not None:
                info[f"_{key}"] = mask
        elif isinstance(value, dict):
            merge_vector_infos(info[key], value)
            info[f"_{key}"] = info[f"_{key}"] | mask
        else:
            where = mask.reshape(mask.shape + (1,) * (np.ndim(value) - 1))
            info[key] = np.where(where, value, info[key])
            info[f"_{key}"] = info[f"_{key}"] | mask
    return info


class BatchedEnv(VectorEnv):
    """N episodes of one environment family stepped together with numpy.

    Subclasses implement four hooks and keep their state in arrays with a leading ``num_envs`` axis:

    - ``_reset_envs(indices) -> info``: start new episodes in those sub-environments, drawing
      randomness from ``self.rngs[i]`` exactly as the single env draws from ``self.np_random``;
      the info (``SyncVectorEnv`` layout) is merged into the step's info on autoreset steps;
    - ``_step_envs(actions, active) -> (reward, terminated, info)``: advance the sub-environments
      where ``active`` is True; the others are about to be reset and must not draw randomness;
      ``actions`` is an int64 array of shape ``[N]``, each in the single action space;
    - ``_observe() -> observation``: the batched observation of the current state (fresh arrays);
    - ``_render_env(i)``: the render of sub-environment i in ``self.render_mode``.

    Args:
        num_envs: Number of sub-environments.
        single_observation_space: Observation space of one sub-environment.
        single_action_space: Action space of one sub-environment (``Discrete``).
        max_episode_steps: Truncate episodes at this many steps (None: never).
        render_mode: ``"rgb_array"``, ``"ansi"`` or None.
    """

    metadata: dict[str, Any] = {
        "autoreset_mode": AutoresetMode.NEXT_STEP,
        "render_modes": ["rgb_array", "ansi"],
    }

    def __init__(
        self,
        num_envs: int,
        single_observation_space: gymnasium.Space,
        single_action_space: gymnasium.Space,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        if not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        if not isinstance(single_action_space, spaces.Discrete):
            raise TypeError(
                f"batched envs take Discrete actions, got single_action_space={single_action_space}"
            )
        self.num_envs = int(num_envs)
        self.single_observation_space = single_observation_space
        self.single_action_space = single_action_space
        self.observation_space = batch_space(single_observation_space, self.num_envs)
        self.action_space = batch_space(single_action_space, self.num_envs)
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.rngs: list[np.random.Generator] = []
        self._elapsed_steps = np.zeros(self.num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)

    # -- hooks ---------------------------------------------------------------------------------

    @abstractmethod
    def _reset_envs(self, indices: np.ndarray) -> dict[str, Any]:
        """Start new episodes in ``indices``; return vector-style info (may be empty)."""

    @abstractmethod
    def _step_envs(
        self, actions: np.ndarray, active: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Advance the ``active`` sub-environments; return (reward, terminated, info)."""

    @abstractmethod
    def _observe(self) -> Any:
        """Return the batched observation of every sub-environment."""

    def _reseeded(self, indices: np.ndarray) -> None:
        """Called by ``reset`` when ``self.rngs[i]`` for ``i`` in ``indices`` were just replaced.

        Subclasses that pre-draw randomness drop what they drew from the old generators.
        """

    def _render_env(self, index: int) -> Any:
        """Return the render of one sub-environment."""
        raise NotImplementedError(f"{type(self).__name__} does not render")

    # -- Gymnasium API -------------------------------------------------------------------------

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the sub-environments, all of them or those of ``options["reset_mask"]``.

        As ``SyncVectorEnv.reset``: sub-environment i is seeded with ``seed + i`` (a list gives one
        seed each, None leaves a generator as it is). With ``options={"reset_mask": mask}`` (a bool
        array of shape ``[num_envs]`` with at least one True) only the masked sub-environments
        start a new episode: the seeds of the others are ignored, their state, step count and
        pending autoreset are kept and the observation shows their current step; the info holds
        the reset sub-environments' reset infos only (``_key`` masks False elsewhere). Unlike
        Gymnasium 1.x, the caller's ``options`` dict is not modified (Gymnasium pops the mask).
        """
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, int | np.integer):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(
                    f"a list of seeds must have num_envs={self.num_envs} entries, got {len(seeds)}"
                )
        if options is not None and "reset_mask" in options:
            reset_mask = self._check_reset_mask(options["reset_mask"])
        else:
            reset_mask = np.ones(self.num_envs, dtype=bool)
        if not self.rngs:
            if not reset_mask.all():
                raise gymnasium.error.ResetNeeded(
                    "the first reset() must reset every sub-environment; got reset_mask="
                    f"{reset_mask}"
                )
            self.rngs = [seeding.np_random(s)[0] for s in seeds]
            reseeded = np.ones(self.num_envs, dtype=bool)
        else:
            reseeded = reset_mask & np.array([s is not None for s in seeds], dtype=bool)
            for i in np.flatnonzero(reseeded).tolist():
                self.rngs[i] = seeding.np_random(seeds[i])[0]
        if isinstance(seed, int | np.integer):
            self._np_random, self._np_random_seed = seeding.np_random(int(seed))
        if reseeded.any():
            self._reseeded(np.flatnonzero(reseeded))
        indices = np.flatnonzero(reset_mask)
        self._elapsed_steps[indices] = 0
        self._needs_reset[indices] = False
        info = self._reset_envs(indices)
        return self._observe(), info

    def _check_reset_mask(self, reset_mask: Any) -> np.ndarray:
        """Validate ``options["reset_mask"]`` as Gymnasium's vector envs do."""
        if not isinstance(reset_mask, np.ndarray):
            raise TypeError(
                f"`options['reset_mask']` must be a numpy array, got {type(reset_mask)}"
            )
        if reset_mask.shape != (self.num_envs,):
            raise ValueError(
                f"`options['reset_mask']` must have shape `({self.num_envs},)`, "
                f"got {reset_mask.shape}"
            )
        if reset_mask.dtype != np.bool_:
            raise TypeError(
                f"`options['reset_mask']` must have `dtype=np.bool_`, got {reset_mask.dtype}"
            )
        if not reset_mask.any():
            raise ValueError(
                "`options['reset_mask']` must contain a boolean array with at least one True "
                f"value, got reset_mask={reset_mask}"
            )
        return reset_mask

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-environment; those whose episode ended last step are reset instead."""
        if not self.rngs:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        actions = check_batched_discrete_actions(actions, self.single_action_space, self.num_envs)
        resetting = self._needs_reset
        active = ~resetting
        reward, terminated, info = self._step_envs(actions, active)
        reward = np.where(active, reward, 0.0)
        terminated = terminated & active
        self._elapsed_steps += active
        if self.max_episode_steps is None:
            truncated = np.zeros(self.num_envs, dtype=bool)
        else:
            truncated = active & (self._elapsed_steps >= self.max_episode_steps)
        if resetting.any():
            indices = np.flatnonzero(resetting)
            self._elapsed_steps[indices] = 0
            merge_vector_infos(info, self._reset_envs(indices))
        self._needs_reset = terminated | truncated
        return self._observe(), reward, terminated, truncated, info

    def render(self) -> tuple[Any, ...] | None:
        """Render every sub-environment (a tuple, as ``SyncVectorEnv`` does)."""
        if self.render_mode is None:
            return None
        return tuple(self._render_env(i) for i in range(self.num_envs))
