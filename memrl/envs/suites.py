"""The suite as data: every memrl environment, its registration and its description.

The dictionaries here are the one source of truth for "what is in the suite" (POPGym's habit):
registration, the registry-parametrised tests, ``memrl list``, ``memrl bench envs`` and the README
table all read them. Entry points are strings, so reading this module imports no environment code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium


@dataclass(frozen=True)
class SuiteEntry:
    """One registered environment and what a user needs to know about it.

    Attributes:
        id: Gymnasium id, in the ``memrl/`` namespace.
        entry_point: ``"module:Class"`` of the single environment.
        kwargs: Keyword arguments the id stands for.
        max_episode_steps: Time limit applied by Gymnasium's ``TimeLimit``: the longest episode
            wherever the id fixes it (so ``TimeAwareObservation`` and other wrappers that need
            it work), None where keyword arguments meant to be varied set the length (see
            ``_recall_suite`` and ``_streams_suite``).
        vector_entry_point: ``"module:Class"`` of the numpy-batched implementation, or None.
        observation: Short human description of the observation.
        action: Short human description of the action space.
        horizon: Longest possible episode, in steps.
        memory_demand: What must be remembered, for how long, against which distractors.
        family: Family name (module), used to group tables.
    """

    id: str
    entry_point: str
    kwargs: dict[str, Any]
    max_episode_steps: int | None
    vector_entry_point: str | None
    observation: str
    action: str
    horizon: int
    memory_demand: str
    family: str
    tags: tuple[str, ...] = field(default=())


def _ballet_suite() -> dict[str, SuiteEntry]:
    suite: dict[str, SuiteEntry] = {}
    for name, observation, obs_text in (
        ("Ballet", "image", "image 99x99x3 uint8 + instruction Discrete(14)"),
        ("BalletGrid", "grid", "grid 242 uint8 (11x11x2 flattened) + instruction Discrete(14)"),
    ):
        for num_dancers in (2, 4, 8):
            for dance_delay in (16, 48):
                horizon = 320 if dance_delay == 16 else 1024
                # The instruction shows at n * (15 + delay) (the reference's timeline); the
                # first dancer's last move is 15 steps after its first, at reset.
                watch = num_dancers * (15 + dance_delay)
                env_id = f"memrl/{name}-{num_dancers}-delay{dance_delay}-v0"
                suite[env_id] = SuiteEntry(
                    id=env_id,
                    entry_point="memrl.envs.ballet:BalletEnv",
                    kwargs={
                        "num_dancers": num_dancers,
                        "dance_delay": dance_delay,
                        "observation": observation,
                    },
                    max_episode_steps=horizon,
                    vector_entry_point="memrl.envs.ballet_vector:BatchedBalletEnv",
                    observation=obs_text,
                    action="Discrete(8)",
                    horizon=horizon,
                    memory_demand=(
                        f"which of {num_dancers} dancers did the named dance, "
                        f"{dance_delay}-{watch - 15} steps before the question"
                    ),
                    family="ballet",
                )
    return suite


BALLET: dict[str, SuiteEntry] = _ballet_suite()
"""HCAM's Ballet, all six paper levels, with images and with a symbolic grid."""


def _rooms_suite() -> dict[str, SuiteEntry]:
    suite: dict[str, SuiteEntry] = {}
    # (suffix, rooms, num_events, stay_steps, question, movement)
    for suffix, rooms, num_events, stay_steps, question, movement in (
        ("", (3, 3), 18, 2, "mixed", "passive"),
        ("-Active", (3, 3), 18, 2, "mixed", "active"),
        ("-ShortStay", (5, 5), 50, 1, "mixed", "passive"),
        ("-FirstSeen", (3, 3), 18, 2, "first_seen", "passive"),
        ("-LastSeen", (3, 3), 18, 2, "last_seen", "passive"),
        ("-MostVisited", (3, 3), 18, 2, "most_visited", "passive"),
        ("-LeastVisited", (3, 3), 18, 2, "least_visited", "passive"),
    ):
        env_id = f"memrl/RoomBallet{suffix}-v0"
        num_rooms = rooms[0] * rooms[1]
        horizon = num_events * stay_steps + 1
        asked = "mixed question types" if question == "mixed" else question
        suite[env_id] = SuiteEntry(
            id=env_id,
            entry_point="memrl.envs.room_ballet:RoomBalletEnv",
            kwargs={
                "rooms": rooms,
                "num_events": num_events,
                "stay_steps": stay_steps,
                "question": question,
                "movement": movement,
            },
            max_episode_steps=horizon,
            vector_entry_point="memrl.envs.room_ballet_vector:BatchedRoomBalletEnv",
            observation=(
                f"place Discrete({num_rooms}) + view (3,) uint8 + phase + question (3,) int64"
            ),
            action="Discrete(13): moves while watching, the dance when asked",
            horizon=horizon,
            memory_demand=(
                f"the dance of one of {num_events} visits to {num_rooms} rooms ({movement}), "
                f"up to {horizon - 1} steps back; {asked}"
            ),
            family="room_ballet",
        )
    return suite


ROOMS: dict[str, SuiteEntry] = _rooms_suite()
"""Place-centric Room Ballet (Spatially-Aware Transformer)."""


def _recall_suite() -> dict[str, SuiteEntry]:
    suite: dict[str, SuiteEntry] = {}
    # DelayedMatch: the default, then three tiers (see DelayedMatchEnv's docstring for why).
    # No max_episode_steps: `delay` is the knob this family is for (`--env-kwargs '{"delay": 64}'`,
    # recall-vs-delay evaluation up to 4096, delay ranges drawn per episode), and a limit of the
    # id's delay + 2 would silently truncate those episodes before the question. The env ends
    # every episode itself, after delay + 2 steps.
    for tier, num_symbols, delay in (
        ("", 4, 32),
        ("-Easy", 4, 16),
        ("-Medium", 8, 128),
        ("-Hard", 16, 1024),
    ):
        env_id = f"memrl/DelayedMatch{tier}-v0"
        suite[env_id] = SuiteEntry(
            id=env_id,
            entry_point="memrl.envs.delayed_match:DelayedMatchEnv",
            kwargs={"num_symbols": num_symbols, "delay": delay},
            max_episode_steps=None,
            vector_entry_point="memrl.envs.delayed_match_vector:BatchedDelayedMatchEnv",
            observation=f"symbol one-hot + phase flags Box(0, 1, ({num_symbols + 3},), float32)",
            action=f"Discrete({num_symbols})",
            horizon=delay + 2,
            memory_demand=(
                f"one cue out of {num_symbols}, {delay + 1} steps back, "
                f"against {delay} random distractor symbols"
            ),
            family="delayed_match",
        )
    # TVT (Hung et al. 2019), with the pycolab phase lengths: explore 15, distractor 90, final 15.
    for name, high, memory_demand in (
        ("KeyToDoor", 5, "whether the key was picked up, across a 90-step apple room"),
        ("PassiveVisualMatch", 13, "a colour seen passively, across a 90-step apple room"),
    ):
        env_id = f"memrl/{name}-v0"
        suite[env_id] = SuiteEntry(
            id=env_id,
            entry_point=f"memrl.envs.tvt:{name}Env",
            kwargs={"explore_steps": 15, "distractor_steps": 90, "final_steps": 15},
            max_episode_steps=15 + 90 + 15,
            vector_entry_point=f"memrl.envs.tvt_vector:Batched{name}Env",
            observation=f"7x11 room of cell codes, flat Box(0, {high}, (77,), uint8)",
            action="Discrete(4)",
            horizon=15 + 90 + 15,
            memory_demand=memory_demand,
            family="tvt",
        )
    return suite


RECALL: dict[str, SuiteEntry] = _recall_suite()
"""Delayed-recall diagnostics and TVT's credit-assignment tasks."""

CONTROL: dict[str, SuiteEntry] = {
    "memrl/CuedReach-v0": SuiteEntry(
        id="memrl/CuedReach-v0",
        entry_point="memrl.envs.cued_reach:CuedReachEnv",
        kwargs={"cue_steps": 10, "task": "reach-v3", "success": "final"},
        max_episode_steps=200,
        vector_entry_point=None,
        observation="Meta-World reach-v3 state Box(39,) float64; goal shown 10 steps, then 0",
        action="Box(-1, 1, (4,)) float32",
        horizon=200,
        memory_demand="goal position (3 floats) seen for 10 steps (arm held), reached at step 200",
        family="cued_reach",
        tags=("metaworld", "continuous"),
    ),
}
"""Continuous-control memory on Meta-World."""

MEMORY: dict[str, SuiteEntry] = {**BALLET, **ROOMS, **RECALL, **CONTROL}
"""The single-task environments that demand episodic memory."""


def _streams_suite() -> dict[str, SuiteEntry]:
    suite: dict[str, SuiteEntry] = {}
    # (stream name, one-hots, description of its stages; the steps per stage are the stream's own)
    for stream, one_hots, stages in (
        ("CW10", 10, "CW10's 10 Meta-World tasks in order, 1M steps each (10M)"),
        (
            "CW20",
            20,
            "CW10 twice, 1M steps per task (20M); as in Continual World, the second pass's tasks "
            "have one-hots of their own",
        ),
        (
            "PowerLaw",
            10,
            "CW10's tasks over 200 stages of 100k steps; a task recurs with probability "
            "proportional to (1 + stages since last seen)^-1",
        ),
    ):
        env_id = f"memrl/ContinualWorld-{stream}-v0"
        suite[env_id] = SuiteEntry(
            id=env_id,
            entry_point="memrl.streams.continual_env:ContinualEnv",
            kwargs={"stream": stream},
            # No max_episode_steps: an episode is the current task's, and `stream=` / `tasks=`
            # put any task in (DMC6's are 1000 steps); the tasks end their own episodes.
            max_episode_steps=None,
            vector_entry_point=None,
            observation=f"Meta-World v3 state Box(39,) float64 (+{one_hots} task one-hot: "
            "task_one_hot)",
            action="Box(-1, 1, (4,)) float32",
            horizon=200,
            memory_demand=f"across tasks, not within episodes: {stages}; forgetting of earlier "
            "tasks is the measure",
            family="streams",
            tags=("metaworld", "continuous", "continual"),
        )
    return suite


STREAMS: dict[str, SuiteEntry] = _streams_suite()
"""Sequential task streams as single Gymnasium envs (``memrl.streams.ContinualEnv``)."""

ALL: dict[str, SuiteEntry] = {**MEMORY, **STREAMS}
"""Every environment memrl registers."""


def register_memrl_envs() -> None:
    """Register every environment of ``ALL`` with Gymnasium; calling it again is harmless."""
    for entry in ALL.values():
        if entry.id in gymnasium.registry:
            continue
        gymnasium.register(
            id=entry.id,
            entry_point=entry.entry_point,
            vector_entry_point=entry.vector_entry_point,
            max_episode_steps=entry.max_episode_steps,
            kwargs=dict(entry.kwargs),
        )
