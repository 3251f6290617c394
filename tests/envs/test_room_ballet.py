"""Room Ballet: the questions mean what the docstring says and favour their eviction strategy."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch

import memrl  # noqa: F401  (registers the ids)
from memrl.envs import ROOMS
from memrl.envs.dances import NUM_DANCES
from memrl.envs.room_ballet import (
    MOVE_DELTAS,
    QUESTION_TYPES,
    RoomBalletEnv,
    random_walk,
)
from memrl.envs.room_ballet_vector import EPISODES_PER_REFILL, BatchedRoomBalletEnv
from memrl.memory.eviction import STRATEGIES as EVICTION
from memrl.memory.eviction import choose_victim

PER_TYPE_IDS = {
    "first_seen": "memrl/RoomBallet-FirstSeen-v0",
    "last_seen": "memrl/RoomBallet-LastSeen-v0",
    "most_visited": "memrl/RoomBallet-MostVisited-v0",
    "least_visited": "memrl/RoomBallet-LeastVisited-v0",
}
STRATEGIES = EVICTION
FAVOURED = {
    "first_seen": "lifo",
    "last_seen": "fifo",
    "most_visited": "lvfo",
    "least_visited": "mvfo",
}
"""The strategy SAT designed each question type for (the allocator's intended choice)."""
BEST = {**FAVOURED, "last_seen": "mvfo"}
"""The best strategy under SAT's official rules: on last_seen MVFO keeps every room's latest
visit (a room's newest entry is never the oldest of a room holding two or more)."""
OPPOSITE = {"fifo": "lifo", "lifo": "fifo", "lvfo": "mvfo", "mvfo": "lvfo"}


def _episodes(env_id: str, count: int, seed: int = 0) -> list[dict]:
    """The reset-time plans of ``count`` episodes of a passive id (no stepping needed)."""
    env = gymnasium.make(env_id)
    plans = []
    for i in range(count):
        _, info = env.reset(seed=seed if i == 0 else None)
        plans.append(info["memory"])
    return plans


def _kept(visits: list[int], capacity: int, strategy: str) -> set[int]:
    """Indices of the visits a memory of ``capacity`` visits still holds after the episode.

    The visits go one by one through memrl's eviction (:func:`memrl.memory.eviction.choose_victim`,
    SAT's official rules): FIFO keeps the latest, LIFO the earliest; MVFO/LVFO drop the oldest
    entry of the room holding the most/fewest entries now (ties to the lowest room id), before
    the incoming visit is written.
    """
    strategy_id = torch.tensor([EVICTION.index(strategy)])
    times = torch.full((1, capacity), -1, dtype=torch.int64)
    places = torch.zeros((1, capacity), dtype=torch.int64)
    for t, room in enumerate(visits):
        free = (times[0] < 0).nonzero()
        slot = int(free[0]) if len(free) else int(choose_victim(times, places, strategy_id, 9)[0])
        if slot < capacity:  # LIFO drops the incoming visit (slot == capacity)
            times[0, slot], places[0, slot] = t, room
    return {int(t) for t in times[0] if t >= 0}


def _asked_index(plan: dict) -> int:
    """The index of the visit the question asks about."""
    room, k = plan["queried_room"], plan["queried_visit"]
    return [t for t, r in enumerate(plan["visits"]) if r == room][k - 1]


def strategy_scores(plans: list[dict]) -> dict[str, float]:
    """Fraction of episodes whose asked visit survives each strategy at half capacity."""
    capacity = len(plans[0]["visits"]) // 2
    return {
        s: float(np.mean([_asked_index(p) in _kept(p["visits"], capacity, s) for p in plans]))
        for s in STRATEGIES
    }


# -- the questions -------------------------------------------------------------------------------


@pytest.mark.parametrize("question", QUESTION_TYPES)
def test_question_follows_its_definition(question):
    for plan in _episodes(PER_TYPE_IDS[question], 300):
        assert plan["question_type"] == question
        visits, dances = np.array(plan["visits"]), plan["dances"]
        counts = np.bincount(visits, minlength=9)
        room, k = plan["queried_room"], plan["queried_visit"]
        if question in ("first_seen", "last_seen"):
            eligible = counts >= 2 if (counts >= 2).any() else counts >= 1
            assert eligible[room]
            assert k == (1 if question == "first_seen" else counts[room])
        elif question == "most_visited":
            assert counts[room] == counts.max() and 1 <= k <= counts[room]
        else:
            assert counts[room] == counts[counts > 0].min() and 1 <= k <= counts[room]
        assert plan["answer"] == dances[_asked_index(plan)]


@pytest.mark.parametrize("question", QUESTION_TYPES)
def test_oracle_reading_the_plan_answers_right(question):
    env = gymnasium.make(PER_TYPE_IDS[question])
    successes = []
    for episode in range(200):
        _, info = env.reset(seed=episode)
        answer = info["memory"]["answer"]
        terminated = False
        while not terminated:
            _, reward, terminated, truncated, step_info = env.step(answer)
            assert terminated or not truncated  # the time limit falls on the answer step only
        successes.append(step_info["is_success"])
        assert reward == float(step_info["is_success"])
    assert np.mean(successes) >= 0.99


@pytest.mark.parametrize("movement", ["passive", "active"])
def test_step_info_reports_the_answer_once_known_in_single_and_batched_envs(movement):
    single = gymnasium.make("memrl/RoomBallet-v0", movement=movement)
    batched = gymnasium.make_vec("memrl/RoomBallet-v0", num_envs=1, movement=movement,
                                 vectorization_mode="vector_entry_point")  # fmt: skip
    _, info = single.reset(seed=7)
    _, batched_info = batched.reset(seed=7)
    assert int(batched_info["answer"][0]) == info["answer"] == info["memory"]["answer"]
    answers, terminated = [info["answer"]], False
    while not terminated:
        action = 1
        _, _, terminated, _, info = single.step(action)
        _, _, _, _, batched_info = batched.step(np.array([action]))
        assert int(batched_info["answer"][0]) == info["answer"]
        answers.append(info["answer"])
    assert answers[-1] == info["memory"]["answer"] >= 0
    if movement == "passive":  # known from the reset on
        assert set(answers) == {answers[-1]}
    else:  # known once the walk is over and the question posed
        assert answers[0] == -1 and answers[-2] == answers[-1]


def test_mixed_draws_every_type():
    types = [p["question_type"] for p in _episodes("memrl/RoomBallet-v0", 400)]
    counts = {q: types.count(q) for q in QUESTION_TYPES}
    assert all(60 <= c <= 140 for c in counts.values()), counts


@pytest.mark.parametrize("question", QUESTION_TYPES)
def test_favoured_strategy_wins_at_half_capacity(question):
    scores = strategy_scores(_episodes(PER_TYPE_IDS[question], 400, seed=1))
    favoured = FAVOURED[question]
    assert scores[favoured] > scores[OPPOSITE[favoured]] + 0.2, scores
    assert max(scores, key=scores.get) == BEST[question], scores


# -- observations alone suffice, and nothing less does -------------------------------------------


def _run_batched(env_id: str, episodes: int, policy: str, num_envs: int = 64) -> float:
    """Success rate over ``episodes`` episodes of a batched env.

    ``policy="random"`` answers at random; ``policy="full_memory"`` remembers the dance of every
    visit from the observations (place, view, phase) and answers the question it is asked.
    """
    env = gymnasium.make_vec(env_id, num_envs, vectorization_mode="vector_entry_point")
    spec = ROOMS[env_id].kwargs
    num_events = spec["num_events"]
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    history = np.zeros((num_envs, num_events, 2), dtype=np.int64)  # (place, dance) per visit
    visit = np.zeros(num_envs, dtype=np.int64)
    resetting = np.zeros(num_envs, dtype=bool)  # the next step autoresets these
    outcomes: list[bool] = []
    rows = np.arange(num_envs)
    while len(outcomes) < episodes:
        record = (obs["phase"] == 1) & ~resetting  # the last step of a visit
        history[rows[record], visit[record]] = np.stack(
            [obs["place"][record], obs["view"][record, 2].astype(np.int64) - 1], axis=1
        )
        visit += record
        actions = rng.integers(0, NUM_DANCES, num_envs)
        if policy == "full_memory":
            _, room, k = obs["question"].T
            for i in np.flatnonzero((obs["phase"] == 2) & ~resetting):
                seen = history[i, : visit[i]]
                actions[i] = seen[seen[:, 0] == room[i] - 1, 1][k[i] - 1]
        obs, _, terminated, truncated, info = env.step(actions)
        visit[resetting] = 0
        resetting = terminated | truncated
        outcomes.extend(info["is_success"][resetting].tolist())
    return float(np.mean(outcomes[:episodes]))


@pytest.mark.parametrize("env_id", ["memrl/RoomBallet-v0", "memrl/RoomBallet-ShortStay-v0"])
def test_random_answers_sit_at_chance(env_id):
    rate = _run_batched(env_id, 2000, "random")
    assert abs(rate - 1 / NUM_DANCES) <= 0.03, rate


@pytest.mark.parametrize("env_id", sorted(ROOMS))
def test_remembering_every_visit_from_observations_solves_it(env_id):
    assert _run_batched(env_id, 300, "full_memory") == 1.0


# -- movement ------------------------------------------------------------------------------------


def _observations(env: gymnasium.Env, seed: int, actions: list[int]) -> list[tuple]:
    obs, _ = env.reset(seed=seed)
    out = [tuple(np.asarray(v).tobytes() for v in obs.values())]
    for a in actions:
        obs, *_ = env.step(a)
        out.append(tuple(np.asarray(v).tobytes() for v in obs.values()))
    return out


def test_passive_variant_ignores_actions():
    env = gymnasium.make("memrl/RoomBallet-v0")
    horizon = ROOMS["memrl/RoomBallet-v0"].horizon - 1  # stop before the answer
    rng = np.random.default_rng(3)
    first = _observations(env, 5, rng.integers(0, 13, horizon).tolist())
    second = _observations(env, 5, rng.integers(0, 13, horizon).tolist())
    assert first == second


def test_active_variant_moves_as_commanded_and_walls_block():
    env = RoomBalletEnv(rooms=(3, 4), num_events=12, stay_steps=2, movement="active")
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        row, col = divmod(int(obs["place"]), 4)
        for t in range(env.query_time):
            action = int(rng.integers(0, 13))
            last_of_visit = obs["phase"] == 1
            obs, *_ = env.step(action)
            if last_of_visit and t + 1 < env.query_time and action < 4:
                dr, dc = MOVE_DELTAS[action]
                row, col = min(max(row + dr, 0), 2), min(max(col + dc, 0), 3)
            assert int(obs["place"]) == row * 4 + col, (seed, t)
        assert obs["phase"] == 2
    # Walls: N from the top row, W from the left column, and so on.
    env = RoomBalletEnv(rooms=(2, 2), num_events=6, stay_steps=1, movement="active")
    obs, _ = env.reset(seed=0)
    start = int(obs["place"])
    row, col = divmod(start, 2)
    blocked = [
        a for a, (dr, dc) in enumerate(MOVE_DELTAS) if not (0 <= row + dr < 2 and 0 <= col + dc < 2)
    ]
    assert len(blocked) == 2  # every room of a 2x2 grid is a corner
    for action in blocked:
        obs, *_ = env.step(action)
        assert int(obs["place"]) == start


def test_active_memory_is_completed_at_the_end():
    env = gymnasium.make("memrl/RoomBallet-Active-v0")
    _, info = env.reset(seed=0)
    assert info["memory"]["visits"] is None and info["memory"]["answer_name"] is None
    assert info["memory"]["queried_room"] == info["memory"]["queried_visit"] == -1
    assert info["memory"]["answer"] == -1
    assert info["memory"]["question_type"] in QUESTION_TYPES
    places = []
    terminated = False
    while not terminated:
        obs, _, terminated, _, step_info = env.step(1)  # always east
        if obs["phase"] == 1:
            places.append(int(obs["place"]))
    plan = step_info["memory"]
    assert plan["visits"] == places
    assert plan["dances"][_asked_index(plan)] == plan["answer"]


def test_passive_walk_steps_to_neighbours_and_stays_only_at_walls():
    rng = np.random.default_rng(0)
    rows, cols = 3, 5
    visits = random_walk(rng.integers(0, 15, 500), rng.integers(0, 4, (500, 40)), rows, cols)
    r, c = np.divmod(visits, cols)
    step = np.abs(np.diff(r, axis=1)) + np.abs(np.diff(c, axis=1))
    assert np.isin(step, (0, 1)).all()
    stayed = step == 0
    on_border = (
        (r[:, :-1] == 0) | (r[:, :-1] == rows - 1) | (c[:, :-1] == 0) | (c[:, :-1] == cols - 1)
    )
    assert not (stayed & ~on_border).any()
    corner = (r[:, :-1] == 0) & (c[:, :-1] == 0)
    assert abs(stayed[corner].mean() - 0.5) < 0.05  # two of four moves hit a wall


# -- single and batched agree ---------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ["memrl/RoomBallet-v0", "memrl/RoomBallet-Active-v0"])
def test_batched_episode_memory_matches_single_env(env_id):
    kwargs = ROOMS[env_id].kwargs
    batched = BatchedRoomBalletEnv(3, **kwargs)
    batched.reset(seed=10)
    for i in range(3):
        single = RoomBalletEnv(**kwargs)
        _, info = single.reset(seed=10 + i)
        assert batched.episode_memory(i) == info["memory"]


@pytest.mark.parametrize("env_id", ["memrl/RoomBallet-v0", "memrl/RoomBallet-Active-v0"])
def test_batched_equals_sync_across_buffer_refills(env_id):
    # The batched env pre-draws EPISODES_PER_REFILL episodes per sub-env: run past two refills.
    batched = gymnasium.make_vec(env_id, 2, vectorization_mode="vector_entry_point")
    sync = gymnasium.make_vec(env_id, 2, vectorization_mode="sync")
    obs_b, _ = batched.reset(seed=4)
    obs_s, _ = sync.reset(seed=4)
    rng = np.random.default_rng(0)
    for step in range((2 * EPISODES_PER_REFILL + 3) * ROOMS[env_id].horizon):
        actions = rng.integers(0, 13, 2)
        obs_b, reward_b, *_ = batched.step(actions)
        obs_s, reward_s, *_ = sync.step(actions)
        for key in obs_s:
            np.testing.assert_array_equal(obs_b[key], obs_s[key], err_msg=f"{key} at {step}")
        np.testing.assert_array_equal(reward_b, reward_s)


# -- bad keywords ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"rooms": (0, 3)}, ["rooms", "(0, 3)", "1..8"]),
        ({"rooms": (1, 1)}, ["rooms", "(1, 1)", "at least 2"]),
        ({"rooms": 9}, ["rooms", "9"]),
        ({"num_events": 1}, ["num_events", "2..1000", "1"]),
        ({"stay_steps": 0}, ["stay_steps", "1..64", "0"]),
        ({"question": "sometimes"}, ["question", "first_seen", "mixed", "sometimes"]),
        ({"movement": "teleport"}, ["movement", "passive", "active", "teleport"]),
        ({"render_mode": "human"}, ["render_mode", "rgb_array", "human"]),
    ],
)
@pytest.mark.parametrize("cls", [RoomBalletEnv, BatchedRoomBalletEnv])
def test_bad_keywords_raise(cls, kwargs, words):
    args = (2,) if cls is BatchedRoomBalletEnv else ()
    with pytest.raises(ValueError) as error:
        cls(*args, **kwargs)
    for word in words:
        assert word in str(error.value)


@pytest.mark.parametrize("env_id", ["memrl/RoomBallet-v0", "memrl/RoomBallet-Active-v0"])
def test_single_env_reports_the_question_type_at_reset_and_every_step(env_id):
    """As the batched env does: sat-ama reads info["question_type"] from either form."""
    env = gymnasium.make(env_id)
    for episode in range(3):
        _, info = env.reset(seed=episode)
        expected = QUESTION_TYPES.index(info["memory"]["question_type"])
        assert info["question_type"] == expected and type(info["question_type"]) is int
        terminated = False
        while not terminated:
            _, _, terminated, _, info = env.step(0)
            assert info["question_type"] == expected
    sync = gymnasium.make_vec(env_id, num_envs=4, vectorization_mode="sync")
    batched = gymnasium.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point")
    _, info_s = sync.reset(seed=3)
    _, info_b = batched.reset(seed=3)
    types = [QUESTION_TYPES.index(name) for name in info_s["memory"]["question_type"]]
    np.testing.assert_array_equal(info_s["question_type"], types)
    np.testing.assert_array_equal(info_b["question_type"], types)
    np.testing.assert_array_equal(info_b["_question_type"], np.ones(4, dtype=bool))
