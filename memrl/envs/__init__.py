"""Single-task Gymnasium environments that demand episodic memory, and their registration.

Info keys every memory env shares (each env's docstring says what they hold for it):

- ``info["memory"]``: at reset (and on the last step), what the episode asks the agent to
  remember; an oracle or an analysis reads the answer there.
- ``info["is_success"]``: on the step that ends an episode (Ballet, RoomBallet and CuedReach
  give it on every step).
- ``info["action_ignored"]`` (bool): on every step of Ballet, RoomBallet, DelayedMatch,
  KeyToDoor, PassiveVisualMatch and CuedReach, and in their reset infos. It refers to the
  action passed to the ``step`` call that returns the info: True when no action in its place
  could have changed anything (observation, reward, termination, info or any later step),
  False otherwise. ``reset`` reports True: no action was taken, and under a vector env's
  next-step autoreset the reset info is the info of the step whose action was ignored, so that
  a learner can drop those steps from its policy loss with this key alone. Batched envs give a
  bool array ``[num_envs]`` (its ``_action_ignored`` mask is all True).
- ``info["answer"]`` (int): the right answer of the episode's question, the label of a
  supervised probe, at reset and on every step: the target dancer's performing-order index
  (Ballet), the cue (DelayedMatch), the queried visit's dance (RoomBallet; -1 until the active
  variant's question is posed). Batched envs give an int64 array ``[num_envs]``.
"""

from memrl.envs.suites import (
    ALL,
    BALLET,
    CONTROL,
    MEMORY,
    RECALL,
    ROOMS,
    STREAMS,
    SuiteEntry,
    register_memrl_envs,
)

__all__ = [
    "ALL",
    "BALLET",
    "CONTROL",
    "MEMORY",
    "RECALL",
    "ROOMS",
    "STREAMS",
    "SuiteEntry",
    "register_memrl_envs",
]
