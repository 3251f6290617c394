"""KeyToDoor and PassiveVisualMatch: phases, rewards, oracles and memory-free baselines.

The per-env contract (checkers, determinism, batched == SyncVectorEnv) is in test_contract.py.
"""

from __future__ import annotations

from collections import deque

import gymnasium
import numpy as np
import pytest

import memrl  # noqa: F401  (registers the ids)
from memrl.envs.tvt import (
    AGENT,
    APPLE,
    COLS,
    DOOR,
    EAST,
    FIRST_COLOUR,
    FLOOR,
    KEY,
    NORTH,
    SOUTH,
    WALL,
    WEST,
    KeyToDoorEnv,
    PassiveVisualMatchEnv,
)
from memrl.envs.tvt_vector import BatchedKeyToDoorEnv, BatchedPassiveVisualMatchEnv

KEY_TO_DOOR = "memrl/KeyToDoor-v0"
VISUAL_MATCH = "memrl/PassiveVisualMatch-v0"
EXPLORE, DISTRACTOR, FINAL = 15, 90, 15
FINAL_START = EXPLORE + DISTRACTOR


def _agent(obs: np.ndarray) -> tuple[int, int]:
    return divmod(int(np.flatnonzero(obs == AGENT)[0]), COLS)


def _first_move_towards(obs: np.ndarray, goal: tuple[int, int]) -> int:
    """First action of a shortest path from the agent to ``goal`` (breadth-first search).

    The path avoids walls and every door or coloured square but the goal.
    """
    grid = obs.reshape(-1, COLS)
    start = _agent(obs)
    moves = {NORTH: (-1, 0), EAST: (0, 1), SOUTH: (1, 0), WEST: (0, -1)}
    first: dict[tuple[int, int], int | None] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            return first[cell]
        for action, (dr, dc) in moves.items():
            nxt = (cell[0] + dr, cell[1] + dc)
            if nxt not in first and (grid[nxt] in (FLOOR, KEY, APPLE) or nxt == goal):
                first[nxt] = action if first[cell] is None else first[cell]
                queue.append(nxt)
    raise AssertionError(f"{goal} unreachable from {start}")


# -- phases, rooms, rewards --------------------------------------------------------------------


@pytest.mark.parametrize("env_id", [KEY_TO_DOOR, VISUAL_MATCH])
def test_each_phase_lasts_its_length_and_the_episode_their_sum(env_id):
    lengths = {"explore_steps": 4, "distractor_steps": 7, "final_steps": 5}
    env = gymnasium.make(env_id, **lengths)
    obs, info = env.reset(seed=0)
    assert {k: info["memory"][k] for k in lengths} == lengths
    rooms = [obs]
    for step in range(1, 4 + 7 + 5 + 1):
        # WEST never reaches the key (it lies in another half), the door or a square.
        obs, reward, terminated, truncated, info = env.step(WEST)
        rooms.append(obs)
        assert not truncated
        assert terminated == (step == 16), step
    assert info["is_success"] is False and reward == 0.0
    walls = [room == WALL for room in rooms]
    changes = [s for s in range(1, len(walls)) if not np.array_equal(walls[s], walls[s - 1])]
    if env_id == KEY_TO_DOOR:
        assert changes == [4, 11]  # explore -> distractor -> final, by the room's shape
    else:
        assert changes == [4]  # the distractor room doubles as the final room
        assert (rooms[11] >= FIRST_COLOUR).sum() == 3 and (rooms[10] >= FIRST_COLOUR).sum() == 0


@pytest.mark.parametrize("cls", [KeyToDoorEnv, PassiveVisualMatchEnv])
def test_without_distractor_phase_the_final_room_follows_the_explore_room(cls):
    env = cls(explore_steps=3, distractor_steps=0, final_steps=2)
    env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(WEST)
    assert (obs == APPLE).sum() == 0
    assert (obs == DOOR).sum() == 1 if cls is KeyToDoorEnv else (obs >= FIRST_COLOUR).sum() == 3
    env.step(WEST)
    *_, terminated, _, _ = env.step(WEST)
    assert terminated


def test_distractor_room_has_the_apples_and_each_pays_the_episode_apple_reward():
    env = KeyToDoorEnv(num_apples=44, apple_reward=(0.02, 0.04))
    obs, info = env.reset(seed=5)
    apple_reward = info["memory"]["apple_reward"]
    assert 0.02 <= apple_reward <= 0.04
    for _ in range(EXPLORE):
        obs, *_ = env.step(SOUTH)
    assert (obs == APPLE).sum() == 44  # every free cell but the start
    rewards = [env.step(action)[1] for action in [NORTH] * 4 + [EAST] * 4]
    assert rewards == [apple_reward] * 8  # each cell entered held an apple
    obs, reward, *_ = env.step(WEST)  # back onto an eaten cell
    assert reward == 0.0 and (obs == APPLE).sum() == 44 - 8


def test_walls_block_and_the_door_is_a_wall_without_the_key():
    env = KeyToDoorEnv(explore_steps=1, distractor_steps=0, final_steps=6)
    env.reset(seed=0)
    obs, *_ = env.step(SOUTH)  # now in the door room, two cells south of the door
    start = _agent(obs)
    for _ in range(4):
        obs, reward, terminated, *_ = env.step(NORTH)
        assert reward == 0.0 and not terminated
    assert _agent(obs) == (start[0] - 1, start[1])  # stopped below the closed door
    assert (obs == DOOR).sum() == 1


def test_key_is_picked_up_and_opens_the_door_for_reward_one():
    env = KeyToDoorEnv(distractor_steps=3, num_apples=0)
    obs, info = env.reset(seed=2)
    key = tuple(info["memory"]["key_position"])
    assert obs.reshape(-1, COLS)[key] == KEY
    for _ in range(EXPLORE):
        if (obs == KEY).any():
            obs, *_ = env.step(_first_move_towards(obs, key))
        else:
            obs, *_ = env.step(SOUTH)
    for _ in range(3):
        obs, *_ = env.step(WEST)
    assert (obs == DOOR).sum() == 1 and (obs == KEY).sum() == 0
    obs, reward, terminated, _, info = env.step(NORTH)
    assert (reward, terminated) == (0.0, False)
    obs, reward, terminated, _, info = env.step(NORTH)
    assert (reward, terminated, info["is_success"]) == (1.0, True, True)
    assert info["memory"]["has_key"] is True


def test_a_wrong_square_ends_the_episode_with_nothing():
    env = PassiveVisualMatchEnv(explore_steps=1, distractor_steps=0)
    _, info = env.reset(seed=3)
    target_col = int(info["memory"]["target_position"][1])
    wrong_col = 3 if target_col != 3 else 7
    obs, *_ = env.step(WEST)
    for _ in range(abs(wrong_col - 5)):
        obs, *_ = env.step(EAST if wrong_col > 5 else WEST)
    for _ in range(3):
        obs, reward, terminated, _, info = env.step(NORTH)
    assert (reward, terminated, info["is_success"]) == (0.0, True, False)


def test_rgb_and_ansi_renders_draw_the_room():
    env = PassiveVisualMatchEnv(render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (112, 176, 3) and frame.dtype == np.uint8
    text = KeyToDoorEnv(render_mode="ansi")
    text.reset(seed=0)
    drawing = text.render()
    assert drawing.startswith("explore 0/15") and "@" in drawing and "k" in drawing


# -- oracles and memory-free baselines ---------------------------------------------------------


def test_key_to_door_oracle_succeeds():
    env = gymnasium.make(KEY_TO_DOOR)
    rng = np.random.default_rng(0)
    successes = []
    for episode in range(300):
        obs, info = env.reset(seed=episode)
        key = tuple(info["memory"]["key_position"])
        for step in range(EXPLORE + DISTRACTOR + FINAL):
            if step < EXPLORE and (obs == KEY).any():
                action = _first_move_towards(obs, key)
            elif step < FINAL_START:
                action = int(rng.integers(4))
            else:
                action = NORTH
            obs, reward, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        successes.append(info["is_success"])
        assert info["memory"]["has_key"] and reward == 1.0
    assert np.mean(successes) >= 0.99


def test_passive_visual_match_oracle_succeeds():
    env = gymnasium.make(VISUAL_MATCH)
    successes = []
    for episode in range(300):
        obs, info = env.reset(seed=episode)
        target = tuple(info["memory"]["target_position"])
        for step in range(EXPLORE + DISTRACTOR + FINAL):
            action = _first_move_towards(obs, target) if step >= FINAL_START else step % 4
            obs, reward, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        successes.append(info["is_success"])
        assert reward == 1.0
    assert np.mean(successes) >= 0.99


def _run_batched(env, policy, episodes: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Run ``policy(obs, steps) -> actions`` on a batched env (``steps``: taken this episode).

    Returns the success flag, return and largest one-step reward of the first ``episodes``
    finished episodes.
    """
    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    steps = np.zeros(n, dtype=np.int64)
    returns = np.zeros(n)
    largest = np.zeros(n)
    autoresetting = np.zeros(n, dtype=bool)
    success, episode_returns, largest_rewards = [], [], []
    while len(success) < episodes:
        obs, reward, terminated, truncated, info = env.step(policy(obs, steps))
        # Sub-environments that ended last step were reset by this one.
        steps = np.where(autoresetting, 0, steps + 1)
        returns = np.where(autoresetting, 0.0, returns + reward)
        largest = np.where(autoresetting, 0.0, np.maximum(largest, reward))
        autoresetting = terminated | truncated
        for i in np.flatnonzero(autoresetting):
            success.append(bool(info["is_success"][i]))
            episode_returns.append(returns[i])
            largest_rewards.append(largest[i])
    return {
        "success": np.array(success[:episodes]),
        "return": np.array(episode_returns[:episodes]),
        "largest_reward": np.array(largest_rewards[:episodes]),
    }


def test_key_to_door_without_the_key_never_opens_the_door():
    env = BatchedKeyToDoorEnv(num_envs=200)
    rng = np.random.default_rng(1)

    def avoid_the_key(obs, steps):
        random = rng.integers(4, size=len(steps))
        # South keeps the agent in the bottom half of the key room; north walks to the door.
        return np.where(steps < EXPLORE, SOUTH, np.where(steps < FINAL_START, random, NORTH))

    result = _run_batched(env, avoid_the_key, episodes=2000)
    assert not result["success"].any()
    assert result["largest_reward"].max() <= 0.05  # apples only
    assert result["return"].max() <= 10 * 0.05


def test_passive_visual_match_random_choice_sits_at_chance():
    num_choices = 3
    env = BatchedPassiveVisualMatchEnv(num_envs=200, num_choices=num_choices)
    rng = np.random.default_rng(2)
    column = np.zeros(env.num_envs, dtype=np.int64)

    def random_square(obs, steps):
        # Pick a square at random each episode; walk along the bottom row to its column, then up.
        new_episode = steps == 0
        column[new_episode] = 5 + 2 * rng.integers(num_choices, size=new_episode.sum()) - 2
        agent_col = np.flatnonzero(obs == AGENT) % COLS
        sideways = np.where(column > agent_col, EAST, WEST)
        in_final = steps >= FINAL_START
        return np.where(in_final, np.where(agent_col == column, NORTH, sideways), steps % 4)

    result = _run_batched(env, random_square, episodes=2000)
    assert abs(result["success"].mean() - 1 / num_choices) < 0.035, result["success"].mean()
    np.testing.assert_array_equal(result["largest_reward"] == 1.0, result["success"])


# -- batched details and arguments -------------------------------------------------------------


@pytest.mark.parametrize("env_id", [KEY_TO_DOOR, VISUAL_MATCH])
def test_batched_info_matches_sync_vector_env_at_every_step(env_id):
    """Reset info, episode ends and automatic resets, mixed across sub-environments."""
    kwargs = {"explore_steps": 3, "distractor_steps": 2, "final_steps": 6}
    batched = gymnasium.make_vec(env_id, 6, vectorization_mode="vector_entry_point", **kwargs)
    sync = gymnasium.make_vec(env_id, 6, vectorization_mode="sync", **kwargs)
    _, info_b = batched.reset(seed=9)
    _, info_s = sync.reset(seed=9)
    _assert_info_equal(info_b, info_s)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(60):
        actions = np.where(rng.random(6) < 0.5, NORTH, rng.integers(4, size=6))
        *_, terminated, _, info_b = batched.step(actions)
        *_, info_s = sync.step(actions)
        _assert_info_equal(info_b, info_s)
        ended += terminated.sum()
    assert ended > 20


def _assert_info_equal(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        if isinstance(a[key], dict):
            _assert_info_equal(a[key], b[key])
        else:
            assert a[key].dtype == b[key].dtype, key
            np.testing.assert_array_equal(a[key], b[key])


BAD_ARGUMENTS = [
    ({"explore_steps": 0}, "explore_steps must be an integer >= 1, got 0"),
    ({"explore_steps": 1.5}, "explore_steps must be an integer >= 1, got 1.5"),
    ({"distractor_steps": -1}, "distractor_steps must be an integer >= 0, got -1"),
    ({"final_steps": 0}, "final_steps must be an integer >= 1, got 0"),
    ({"num_apples": 45}, r"num_apples must be an integer in 0\.\.44, got 45"),
    ({"apple_reward": (0.5, 0.1)}, r"apple_reward must be .*got \(0\.5, 0\.1\)"),
    ({"apple_reward": -1}, "apple_reward must be .*got -1"),
    ({"apple_reward": "x"}, "apple_reward must be .*got 'x'"),
    ({"apple_reward": (1, 2, 3)}, r"apple_reward must be .*got \(1, 2, 3\)"),
    ({"render_mode": "human"}, "render_mode must be one of"),
]


@pytest.mark.parametrize(
    "cls", [KeyToDoorEnv, PassiveVisualMatchEnv, BatchedKeyToDoorEnv, BatchedPassiveVisualMatchEnv]
)
@pytest.mark.parametrize(("kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_raise(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [PassiveVisualMatchEnv, BatchedPassiveVisualMatchEnv])
@pytest.mark.parametrize("num_choices", [1, 6, 2.0])
def test_bad_num_choices_raise(cls, num_choices):
    with pytest.raises(
        ValueError, match=f"num_choices must be an integer in 2..5, got {num_choices}"
    ):
        cls(num_choices=num_choices)


@pytest.mark.parametrize("num_choices", [2, 3, 4, 5])
def test_final_room_shows_distinct_colours_one_of_them_the_cue(num_choices):
    env = PassiveVisualMatchEnv(explore_steps=1, distractor_steps=0, num_choices=num_choices)
    obs, info = env.reset(seed=num_choices)
    cue_code = FIRST_COLOUR + info["memory"]["colour"]
    assert (obs == cue_code).sum() == 5  # painted on the explore room's top wall
    obs, *_ = env.step(SOUTH)
    squares = obs[obs >= FIRST_COLOUR]
    assert len(squares) == num_choices == len(set(squares.tolist()))
    assert cue_code in squares
    assert obs.reshape(-1, COLS)[tuple(info["memory"]["target_position"])] == cue_code
    assert (obs == FLOOR).sum() > 0
