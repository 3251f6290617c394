"""memrl: episodic-memory and continual reinforcement learning.

Importing memrl registers every environment under the ``memrl/`` namespace with string entry
points, so ``gymnasium.make("memrl/Ballet-2-delay16-v0")`` works after ``import memrl`` and the
import itself stays cheap: it pulls in neither torch, mujoco, metaworld nor dm_control.
"""

from memrl.envs import register_memrl_envs

__version__ = "0.1.0"

register_memrl_envs()

__all__ = ["__version__", "register_memrl_envs"]
