"""SB3 baselines: a frame-stacked PPO run trains, loads and evaluates with its own frame stack."""

from __future__ import annotations

import json

import numpy as np
from gymnasium import spaces

from memrl.agents.loading import FrameStackedAgent, load_agent
from memrl.cli import main


class _Recorder:
    """A stand-in model that records what it is shown and answers 0."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def predict(self, observation, deterministic=False):
        self.seen.append(observation.copy())
        return np.zeros(len(observation), dtype=np.int64), None


def test_frame_stack_keeps_the_last_observations_and_clears_at_episode_starts():
    model = _Recorder()
    agent = FrameStackedAgent(model, 2, spaces.Box(0, 9, (1,), np.float32))
    obs = lambda *values: np.array(values, np.float32)[:, None]  # noqa: E731
    _, state = agent.predict(obs(1, 2), episode_start=np.array([True, True]))
    _, state = agent.predict(obs(3, 4), state, episode_start=np.array([False, False]))
    _, state = agent.predict(obs(5, 6), state, episode_start=np.array([True, False]))
    np.testing.assert_array_equal(model.seen[0], [[0, 1], [0, 2]])
    np.testing.assert_array_equal(model.seen[1], [[1, 3], [2, 4]])
    np.testing.assert_array_equal(model.seen[2], [[0, 5], [4, 6]])  # env 0 began a new episode


def test_frame_stacked_ppo_trains_and_evaluates(tmp_path):
    run = tmp_path / "ppo4"
    code = main(["train", "--env", "memrl/DelayedMatch-Easy-v0", "--agent", "sb3-ppo",
                 "--frame-stack", "4", "--steps", "256", "--out", str(run),
                 "--no-progress"])  # fmt: skip
    assert code == 0
    agent, info = load_agent(run)
    assert isinstance(agent, FrameStackedAgent) and agent.n_stack == 4
    assert main(["eval", str(run), "--episodes", "8"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["agent"] == "sb3-ppo" and len(report["results"]) == 5  # delays 16..4096
