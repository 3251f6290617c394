"""Ballet tests: oracle and chance levels, timeline, sampling, modes, keywords, renders."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import memrl  # noqa: F401  (registers the ids)
from memrl.envs import BALLET
from memrl.envs.ballet import (
    AGENT_START,
    DANCER_SLOTS,
    GRID_SHAPE,
    OBSERVATIONS,
    RENDER_MODES,
    BalletEnv,
    grid_to_cells,
    timeline,
)
from memrl.envs.ballet_vector import BatchedBalletEnv
from memrl.envs.dances import DANCE_LENGTH, DANCE_NAMES, DANCE_OFFSETS, DIRECTION_DELTAS
from memrl.envs.glyphs import COLOUR_NAMES, SHAPES, render_cells

IDS = sorted(BALLET)
DIRECTIONS = {tuple(d): a for a, d in enumerate(DIRECTION_DELTAS.tolist())}
CENTRE = np.array(AGENT_START)
N, NE, E, SE, S, SW, W, NW = range(8)


def action_towards(slot) -> int:
    """The action that walks straight from the centre to ``slot`` (3 steps; no slot in between)."""
    return DIRECTIONS[tuple(np.sign(np.asarray(slot) - CENTRE).tolist())]


ACTION_AT = np.zeros((11, 11), dtype=np.int64)  # [row, col] -> action from the centre to a slot
for _slot in DANCER_SLOTS:
    ACTION_AT[_slot] = action_towards(_slot)


def room_view(obs) -> np.ndarray:
    """[11, 11, 2] symbolic view of a grid observation."""
    return obs["grid"].reshape(GRID_SHAPE)


def dancer_cells(view: np.ndarray, memory: dict) -> list[tuple[int, int]]:
    """Where each dancer (performing order) is in a view, found by its shape and colour."""
    cells = []
    for shape, colour in zip(memory["shapes"], memory["colours"], strict=True):
        found = np.argwhere((view[..., 0] == 3 + shape) & (view[..., 1] == colour + 1))
        assert len(found) == 1, f"dancer {shape}/{colour} appears {len(found)} times"
        cells.append(tuple(found[0].tolist()))
    return cells


# -- success rates ---------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", IDS)
def test_oracle_reading_memory_at_reset_always_succeeds(env_id):
    """Random (ignored) actions while watching, then straight to info["memory"]'s target."""
    env = gymnasium.make(env_id)
    env.action_space.seed(1)
    episodes, successes = 200, 0
    choice = BALLET[env_id].kwargs["num_dancers"] * (15 + BALLET[env_id].kwargs["dance_delay"])
    for episode in range(episodes):
        obs, info = env.reset(seed=1000 + episode)
        action = action_towards(info["memory"]["target_slot"])
        steps = 0
        while True:
            watching = obs["instruction"] == 0
            obs, reward, terminated, truncated, info = env.step(
                env.action_space.sample() if watching else action
            )
            steps += 1
            if terminated or truncated:
                break
        successes += info["is_success"]
        assert steps == choice + 3
        assert reward == float(info["is_success"])
    assert successes / episodes >= 0.99
    assert successes == episodes


def run_batched(env_id: str, episodes: int, choose, num_envs: int = 250, seed: int = 0):
    """Drive the batched env with a vectorised policy that picks a dancer from info["memory"].

    ``choose(memory, rng) -> [num_envs, 2]`` slot (row, col) per sub-environment, called at reset
    and on autoreset steps (rows masked by ``_memory``). Returns (successes, episodes ended,
    episode lengths).
    """
    envs = gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    rng = np.random.default_rng(seed)
    _, info = envs.reset(seed=seed)
    slots = choose(info["memory"], rng)
    successes, ended, lengths = 0, 0, []
    elapsed = np.zeros(num_envs, dtype=np.int64)
    while ended < episodes:
        actions = ACTION_AT[slots[:, 0], slots[:, 1]]
        _, reward, terminated, truncated, info = envs.step(actions)
        active = info["_is_success"]
        elapsed += active
        done = terminated | truncated
        if done.any():
            take = np.flatnonzero(done)[: episodes - ended]
            successes += int(info["is_success"][take].sum())
            assert np.array_equal(reward[take], info["is_success"][take].astype(float))
            lengths.extend(elapsed[take].tolist())
            ended += len(take)
            elapsed[done] = 0
        if "memory" in info:
            fresh = info["_memory"]
            slots[fresh] = choose(info["memory"], rng)[fresh]
    envs.close()
    return successes, ended, lengths


def oracle_choice(memory, rng):
    return np.asarray(memory["target_slot"])


def random_dancer_choice(memory, rng):
    slots = np.asarray(memory["slots"])  # [N, n, 2]
    pick = rng.integers(slots.shape[1], size=slots.shape[0])
    return slots[np.arange(slots.shape[0]), pick]


@pytest.mark.parametrize("env_id", IDS)
def test_random_dancer_policy_is_at_chance(env_id):
    kwargs = BALLET[env_id].kwargs
    successes, ended, lengths = run_batched(env_id, 2000, random_dancer_choice, seed=7)
    assert ended == 2000
    assert set(lengths) == {kwargs["num_dancers"] * (15 + kwargs["dance_delay"]) + 3}
    assert abs(successes / ended - 1 / kwargs["num_dancers"]) <= 0.03


@pytest.mark.parametrize("env_id", [i for i in IDS if "Grid" in i])
def test_batched_oracle_always_succeeds(env_id):
    successes, ended, _ = run_batched(env_id, 500, oracle_choice, num_envs=100, seed=3)
    assert successes == ended == 500


# -- timeline --------------------------------------------------------------------------------


# DeepMind's pycolab Ballet (hierarchical_transformer_memory/pycolab_ballet), run on pycolab:
# the env.step call after reset whose observation first carries the instruction, per level.
REFERENCE_CHOICE_STEPS = {
    (2, 16): 62,
    (4, 16): 124,
    (8, 16): 248,
    (2, 48): 126,
    (4, 48): 252,
    (8, 48): 504,
}


@pytest.mark.parametrize(("level", "expected"), sorted(REFERENCE_CHOICE_STEPS.items()))
def test_instruction_shows_on_the_reference_step_single_and_batched(level, expected):
    num_dancers, dance_delay = level
    env = BalletEnv(num_dancers=num_dancers, dance_delay=dance_delay, observation="grid")
    assert env.choice_step == expected
    obs, info = env.reset(seed=0)
    assert info["memory"]["choice_step"] == expected
    steps = 0
    while obs["instruction"] == 0:
        obs, *_ = env.step(0)
        steps += 1
    assert steps == expected
    # The reference's first dancer moves in its first frame (reset here): dancer k makes its
    # 16 moves on steps k * (15 + delay) .. k * (15 + delay) + 15.
    starts = timeline(num_dancers, dance_delay)[:, 0]
    assert starts.tolist() == [k * (15 + dance_delay) for k in range(num_dancers)]
    assert (timeline(num_dancers, dance_delay)[:, -1] == starts + 15).all()
    batched = BatchedBalletEnv(3, num_dancers=num_dancers, dance_delay=dance_delay)
    obs, _ = batched.reset(seed=0)
    first_shown = np.full(3, -1)
    for step in range(1, expected + 2):
        obs, *_ = batched.step(np.zeros(3, dtype=np.int64))
        first_shown[(first_shown < 0) & (obs["instruction"] != 0)] = step
    np.testing.assert_array_equal(first_shown, expected)


@pytest.mark.parametrize(("num_dancers", "dance_delay"), [(1, 1), (3, 1), (2, 16), (8, 48)])
def test_timeline_instruction_frozen_agent_and_dance_trajectories(num_dancers, dance_delay):
    env = BalletEnv(num_dancers=num_dancers, dance_delay=dance_delay, observation="grid")
    env.action_space.seed(5)
    choice = num_dancers * (DANCE_LENGTH - 1 + dance_delay)
    period = DANCE_LENGTH - 1 + dance_delay
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        memory = info["memory"]
        assert memory["choice_step"] == choice
        homes = [tuple(s) for s in memory["slots"].tolist()]
        for t in range(choice + 1):
            if t:  # t = 0: the reset observation, the reference's first frame
                obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
                outcome = (reward, terminated, truncated, info["is_success"])
                assert outcome == (0.0, False, False, False)
            view = room_view(obs)
            # The agent never moved: the view centred on it is exactly the room.
            assert (view[0, :, 0] == 1).all() and (view[-1, :, 0] == 1).all()
            assert (view[:, 0, 0] == 1).all() and (view[:, -1, 0] == 1).all()
            assert view[5, 5, 0] == 2
            expected = []
            for k, (home, dance) in enumerate(zip(homes, memory["dances"], strict=True)):
                move = t - k * period  # the move dancer k makes on step t, if any
                offset = DANCE_OFFSETS[dance, move] if 0 <= move < DANCE_LENGTH else (0, 0)
                expected.append((home[0] + int(offset[0]), home[1] + int(offset[1])))
            assert dancer_cells(view, memory) == expected, f"step {t}"
            if t == 0:
                assert expected[0] != homes[0], "the first dancer has moved at reset"
                assert expected[1:] == homes[1:]
            assert obs["instruction"] == (0 if t < choice else memory["target_dance_index"] + 1)
        assert DANCE_NAMES[obs["instruction"] - 1] == memory["target_dance"]
        # First step of the choice phase: the agent moves (the view shifts).
        obs, *_ = env.step(N)
        assert (room_view(obs)[1, :, 0] == 1).all(), "the top wall should now be one row lower"
        assert obs["instruction"] == memory["target_dance_index"] + 1


def test_every_dance_returns_home_and_stays_in_its_block():
    assert (DANCE_OFFSETS[:, -1] == 0).all()
    assert np.abs(DANCE_OFFSETS).max() == 1


def _watch(env: BalletEnv, seed: int):
    obs, info = env.reset(seed=seed)
    while obs["instruction"] == 0:
        obs, *_ = env.step(N)
    return obs, info["memory"]


def test_walls_block_the_agent():
    env = BalletEnv(num_dancers=8, dance_delay=1, observation="grid")
    obs, _ = _watch(env, seed=0)
    # (5,5) -> (4,5) -> (3,6) -> (2,6) -> (1,6): no dancer slot on the way.
    for action in (N, NE, N, N):
        obs, reward, terminated, _, _ = env.step(action)
        assert not terminated
    view = room_view(obs)[..., 0]  # agent at (1,6): view (i, j) shows room (i - 4, j + 1)
    assert (view[4, :10] == 1).all() and view[4, 10] == 0, "the top wall is right above the agent"
    assert (view[:4] == 0).all(), "beyond the walls is floor"
    assert view[5, 5] == 2
    for action in (N, NE, NW, N):
        new, reward, terminated, truncated, info = env.step(action)
        assert (reward, terminated, truncated, info["is_success"]) == (0.0, False, False, False)
        np.testing.assert_array_equal(new["grid"], obs["grid"])
    new, *_ = env.step(E)  # sideways along the wall still works
    assert not np.array_equal(new["grid"], obs["grid"])


@pytest.mark.parametrize("num_dancers", [2, 8])
def test_stepping_on_dancers_ends_the_episode(num_dancers):
    env = BalletEnv(num_dancers=num_dancers, dance_delay=4, observation="grid")
    for seed in range(6):
        _, memory = _watch(env, seed)
        slots = [tuple(s) for s in memory["slots"].tolist()]
        target = tuple(memory["target_slot"].tolist())
        assert target == slots[memory["target"]]
        goal = slots[(memory["target"] + 1 + seed) % num_dancers]  # sometimes the target
        for step in range(3):
            obs, reward, terminated, truncated, info = env.step(action_towards(goal))
            assert terminated == (step == 2) and not truncated
        assert reward == (1.0 if goal == target else 0.0)
        assert info["is_success"] is (goal == target)
        assert room_view(obs)[5, 5, 0] == 2, "the agent is drawn over the dancer"


def test_env_never_truncates_itself_and_time_limit_does():
    env = gymnasium.make("memrl/BalletGrid-2-delay16-v0")
    env.reset(seed=0)
    steps = 0
    while True:
        steps += 1
        # Bounce between (5,5) and (5,6): never reaches a dancer.
        _, _, terminated, truncated, _ = env.step(E if steps % 2 else W)
        if terminated or truncated:
            break
    assert (steps, terminated, truncated) == (320, False, True)


# -- sampling --------------------------------------------------------------------------------


def test_sampling_is_distinct_within_and_covers_everything_across_episodes():
    env = BalletEnv(num_dancers=8, dance_delay=1, observation="grid")
    seen = {"slots": set(), "dances": set(), "shapes": set(), "colours": set()}
    target_counts = np.zeros(8, dtype=int)
    target_slot_counts = {slot: 0 for slot in DANCER_SLOTS}
    env.reset(seed=123)
    episodes = 4000
    for _ in range(episodes):
        _, info = env.reset()
        memory = info["memory"]
        slots = [tuple(s) for s in memory["slots"].tolist()]
        for key, values in (
            ("slots", slots),
            ("dances", memory["dances"].tolist()),
            ("shapes", memory["shapes"].tolist()),
            ("colours", memory["colours"].tolist()),
        ):
            assert len(set(values)) == len(values) == 8, f"{key} repeat within an episode"
            seen[key].update(values)
        assert memory["target_dance"] == DANCE_NAMES[memory["dances"][memory["target"]]]
        assert memory["target_dance_index"] == memory["dances"][memory["target"]]
        target_counts[memory["target"]] += 1
        target_slot_counts[tuple(memory["target_slot"].tolist())] += 1
    assert seen["slots"] == set(DANCER_SLOTS)
    assert seen["dances"] == set(range(len(DANCE_NAMES)))
    assert seen["shapes"] == set(range(len(SHAPES)))
    assert seen["colours"] == set(range(len(COLOUR_NAMES)))
    # Uniform target: every count within 5 standard deviations of episodes / 8.
    sd = np.sqrt(episodes * (1 / 8) * (7 / 8))
    assert np.abs(target_counts - episodes / 8).max() < 5 * sd, target_counts
    assert np.abs(np.array(list(target_slot_counts.values())) - episodes / 8).max() < 5 * sd


def test_fewer_dancers_use_random_slots_and_first_dancer_varies():
    env = BalletEnv(num_dancers=2, dance_delay=1, observation="grid")
    env.reset(seed=0)
    firsts = {tuple(env.reset()[1]["memory"]["slots"][0].tolist()) for _ in range(300)}
    assert firsts == set(DANCER_SLOTS)


# -- observation modes -----------------------------------------------------------------------


@pytest.mark.parametrize("num_dancers", [2, 8])
def test_image_is_the_rendered_grid_and_agent_is_centred(num_dancers):
    image_env = BalletEnv(num_dancers=num_dancers, dance_delay=2, observation="image")
    grid_env = BalletEnv(num_dancers=num_dancers, dance_delay=2, observation="grid")
    rng = np.random.default_rng(0)
    white = np.full((9, 9, 3), 255, dtype=np.uint8)
    for seed in range(3):
        image_obs, image_info = image_env.reset(seed=seed)
        grid_obs, grid_info = grid_env.reset(seed=seed)
        assert image_info["memory"]["target_slot"].tolist() == (
            grid_info["memory"]["target_slot"].tolist()
        )
        for _ in range(400):
            assert image_obs["image"].shape == (99, 99, 3)
            np.testing.assert_array_equal(
                image_obs["image"], render_cells(grid_to_cells(grid_obs["grid"]))
            )
            np.testing.assert_array_equal(image_obs["image"][45:54, 45:54], white)
            assert image_obs["instruction"] == grid_obs["instruction"]
            assert image_env.observation_space.contains(image_obs)
            assert grid_env.observation_space.contains(grid_obs)
            action = int(rng.integers(8))
            image_obs, image_reward, image_term, _, _ = image_env.step(action)
            grid_obs, grid_reward, grid_term, _, _ = grid_env.step(action)
            assert (image_reward, image_term) == (grid_reward, grid_term)
            if image_term:
                break


def test_grid_space_bounds_are_tight():
    space = BalletEnv(observation="grid").observation_space["grid"]
    high = space.high.reshape(GRID_SHAPE)
    assert (high[..., 0] == 3 + len(SHAPES) - 1).all()
    assert (high[..., 1] == len(COLOUR_NAMES)).all()
    assert (space.low == 0).all()


def test_batched_memory_info_matches_sync_vector_env():
    env_id = "memrl/BalletGrid-2-delay16-v0"
    batched = gymnasium.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point")
    reference = gymnasium.make_vec(env_id, num_envs=4, vectorization_mode="sync")
    _, info_b = batched.reset(seed=9)
    _, info_r = reference.reset(seed=9)
    _assert_memory_equal(info_b, info_r)
    batched.action_space.seed(1)
    resets = 0
    for _ in range(400):
        actions = batched.action_space.sample()
        _, _, _, _, info_b = batched.step(actions)
        _, _, _, _, info_r = reference.step(actions)
        np.testing.assert_array_equal(info_b["_is_success"], info_r["_is_success"])
        np.testing.assert_array_equal(
            info_b["is_success"] & info_b["_is_success"], info_r["is_success"]
        )
        assert ("memory" in info_b) == ("memory" in info_r)
        if "memory" in info_r:
            _assert_memory_equal(info_b, info_r)
            resets += 1
    assert resets > 0


def _assert_memory_equal(info_b, info_r):
    np.testing.assert_array_equal(info_b["_memory"], info_r["_memory"])
    memory_b, memory_r = info_b["memory"], info_r["memory"]
    assert set(memory_b) == set(memory_r)
    rows = info_r["_memory"]
    for key, value in memory_r.items():
        assert np.array_equal(np.asarray(memory_b[key])[rows], np.asarray(value)[rows]), key


# -- keywords and rendering ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_dancers": 0}, "num_dancers must be 1..8, got 0"),
        ({"num_dancers": 9}, "num_dancers must be 1..8, got 9"),
        ({"num_dancers": 2.0}, "num_dancers must be an integer in 1..8"),
        ({"num_dancers": True}, "num_dancers must be an integer in 1..8"),
        ({"dance_delay": 0}, "dance_delay must be an integer >= 1, got 0"),
        ({"dance_delay": -1}, "dance_delay must be an integer >= 1, got -1"),
        ({"dance_delay": 1.5}, "dance_delay must be an integer >= 1, got 1.5"),
        ({"observation": "pixels"}, "observation must be one of ('image', 'grid'), got 'pixels'"),
        ({"render_mode": "human"}, "render_mode must be one of ('rgb_array', 'ansi') or None"),
    ],
)
def test_bad_keywords_raise_value_error_naming_allowed_values(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BalletEnv(**kwargs)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BatchedBalletEnv(num_envs=2, **kwargs)
    assert OBSERVATIONS == ("image", "grid") and RENDER_MODES == ("rgb_array", "ansi")


def test_bad_actions_raise():
    env = BalletEnv(observation="grid")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be in Discrete\(8\), got 8"):
        env.step(8)
    envs = BatchedBalletEnv(num_envs=3, observation="grid")
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"in Discrete\(8\), got -1 for sub-environment 1"):
        envs.step(np.array([0, -1, 2]))


def test_rgb_render_shows_the_whole_room_and_the_phase():
    env = BalletEnv(num_dancers=8, dance_delay=1, observation="grid", render_mode="rgb_array")
    env.reset(seed=0)
    watching = env.render()
    assert watching.shape == (396, 396, 3) and watching.dtype == np.uint8
    while env.step(N)[0]["instruction"] == 0:
        pass
    choosing = env.render()
    band = slice(12, 24), slice(36, -36)
    assert not np.array_equal(watching[band], choosing[band])
    assert (choosing[band] == (60, 200, 60)).all()
    # The agent is white at the centre cell, 4x scaled.
    assert (choosing[5 * 36 : 6 * 36, 5 * 36 : 6 * 36] == 255).all()


def test_ansi_render_draws_the_room():
    env = BalletEnv(num_dancers=3, dance_delay=1, observation="image", render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    lines = text.splitlines()
    assert lines[0] == "#" * 11 and lines[5][5] == "A"
    assert sum(line.count(c) for line in lines[:11] for c in "abc") == 3
    assert "watch" in lines[11]
    _, memory = _watch(env, seed=0)
    assert memory["target_dance"] in env.render()


def test_batched_render_returns_one_frame_per_env():
    envs = gymnasium.make_vec(
        "memrl/Ballet-4-delay16-v0",
        num_envs=3,
        vectorization_mode="vector_entry_point",
        render_mode="rgb_array",
    )
    envs.reset(seed=0)
    envs.step(np.zeros(3, dtype=np.int64))
    frames = envs.render()
    assert len(frames) == 3 and all(f.shape == (396, 396, 3) for f in frames)
    single = gymnasium.make("memrl/Ballet-4-delay16-v0", render_mode="rgb_array")
    single.reset(seed=1)
    single.step(0)
    np.testing.assert_array_equal(frames[1], single.render())


@pytest.mark.parametrize("observation", ["grid", "image"])
def test_the_terminating_step_repeats_the_memory(observation):
    """As DelayedMatch, RoomBallet and the TVT envs do on their last step (single and batched)."""
    env = BalletEnv(num_dancers=4, dance_delay=1, observation=observation)
    for seed in range(3):
        _, reset_info = env.reset(seed=seed)
        memory = reset_info["memory"]
        for _ in range(env.choice_step):
            _, _, _, _, info = env.step(0)
            assert "memory" not in info
        _, _, terminated, _, info = env.step(action_towards(memory["target_slot"]))
        while not terminated:
            assert "memory" not in info
            _, _, terminated, _, info = env.step(action_towards(memory["target_slot"]))
        assert info["is_success"]
        assert info["memory"].keys() == memory.keys()
        for key, value in memory.items():
            assert np.array_equal(info["memory"][key], value), key
    batched = BatchedBalletEnv(2, num_dancers=4, dance_delay=1, observation=observation)
    _, reset_info = batched.reset(seed=5)
    target = reset_info["memory"]["target_slot"]
    actions = np.array([action_towards(slot) for slot in target])
    for _ in range(batched.choice_step):
        batched.step(actions)
    for _ in range(3):
        _, _, terminated, _, info = batched.step(actions)
    assert terminated.all()
    np.testing.assert_array_equal(info["_memory"], [True, True])
    for key in ("target", "target_slot", "slots", "dances", "shapes", "colours"):
        np.testing.assert_array_equal(info["memory"][key], reset_info["memory"][key], err_msg=key)
    assert info["memory"]["target_dance"].tolist() == reset_info["memory"]["target_dance"].tolist()


# -- info["answer"] and info["action_ignored"] -----------------------------------------------


@pytest.mark.parametrize("observation", ["grid", "image"])
def test_answer_is_the_move_onto_the_target_and_only_watching_steps_ignore_the_action(observation):
    env = BalletEnv(num_dancers=4, dance_delay=2, observation=observation)
    answers = set()
    for seed in range(12):
        _, info = env.reset(seed=seed)
        target = action = action_towards(info["memory"]["target_slot"])
        answers.add(target)
        assert (info["answer"], info["action_ignored"]) == (target, True)
        assert type(info["answer"]) is int and type(info["action_ignored"]) is bool
        for t in range(1, env.choice_step + 4):
            _, reward, terminated, _, info = env.step(action)
            assert info["answer"] == target, f"step {t}"
            assert info["action_ignored"] is (t <= env.choice_step), f"step {t}"
        assert terminated and reward == 1.0
    assert len(answers) > 4  # the target's slot, not its place in the performing order (0..3)


def test_batched_answer_and_action_ignored_follow_each_episode():
    envs = BatchedBalletEnv(3, num_dancers=2, dance_delay=3, observation="grid")
    _, info = envs.reset(seed=4)
    slots = info["memory"]["target_slot"]
    np.testing.assert_array_equal(info["answer"], ACTION_AT[slots[:, 0], slots[:, 1]])
    np.testing.assert_array_equal(info["action_ignored"], [True] * 3)
    slots = info["memory"]["target_slot"].copy()
    choice = envs.choice_step
    for t in range(1, 2 * (choice + 4) + 1):
        t_episode = t % (choice + 4)  # steps into the episode; 0: the autoreset step
        actions = ACTION_AT[slots[:, 0], slots[:, 1]]
        _, _, terminated, _, info = envs.step(actions)
        np.testing.assert_array_equal(info["_answer"], [True] * 3)
        np.testing.assert_array_equal(info["_action_ignored"], [True] * 3)
        if t_episode == choice + 3:
            assert terminated.all()
        if "memory" in info and t_episode == 0:  # autoreset: the new episode's answer
            slots = info["memory"]["target_slot"].copy()
        np.testing.assert_array_equal(
            info["answer"], ACTION_AT[slots[:, 0], slots[:, 1]], err_msg=f"step {t}"
        )
        ignored = t_episode == 0 or t_episode <= choice
        np.testing.assert_array_equal(info["action_ignored"], [ignored] * 3, err_msg=f"step {t}")
