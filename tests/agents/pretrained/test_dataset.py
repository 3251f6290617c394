"""The pretraining data: datasets found by metadata, the shared layout, returns-to-go, sampling."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from memrl.agents.pretrained.dataset import ContextSampler, load_pretraining_data, task_data
from memrl.agents.pretrained.layout import ACTION_DIM, STATE_DIM

from .conftest import METAWORLD_TASKS, episode, random_episode, write_task


def _hand_episode() -> tuple[np.ndarray, np.ndarray, list[float]]:
    """A 4-step dm_control-like episode: 3 features, 2 action dimensions, rewards 1..4."""
    observations = np.arange(15, dtype=np.float64).reshape(5, 3) / 10
    actions = np.array([[0.1, -0.1], [0.2, -0.2], [0.3, -0.3], [0.4, -0.4]])
    return observations, actions, [1.0, 2.0, 3.0, 4.0]


def test_contexts_match_a_hand_computed_episode(tmp_path):
    observations, actions, rewards = _hand_episode()
    write_task(
        tmp_path, "pendulum-swingup", "dm_control", [episode(observations, actions, rewards)]
    )
    data = load_pretraining_data([tmp_path])
    # dm_control's reward scale is 100: returns-to-go 10, 9, 7, 4 become 0.10, 0.09, 0.07, 0.04.
    np.testing.assert_allclose(data.returns_to_go, [0.10, 0.09, 0.07, 0.04], rtol=1e-6)
    (task,) = data.tasks
    assert (task.state_dim, task.action_dim, task.episodes, task.steps) == (3, 2, 1, 4)
    assert task.best_return == 10.0 and task.target_return == pytest.approx(0.1)
    batch = ContextSampler(data, context_steps=3, seed=0).sample(400)
    assert batch.states.shape == (400, 3, STATE_DIM)
    assert batch.actions.shape == (400, 3, ACTION_DIM)
    assert batch.action_mask.shape == (400, ACTION_DIM)
    assert (batch.action_mask == [True, True, False, False, False, False]).all()
    expected_rtg = np.array([0.10, 0.09, 0.07, 0.04], dtype=np.float32)
    seen = set()
    for i in range(400):
        last = int(batch.timesteps[i, -1])
        seen.add(last)
        steps = [last - 2, last - 1, last]
        for k, t in enumerate(steps):
            if t < 0:  # before the episode began: front padding
                assert not batch.step_mask[i, k]
                assert not batch.states[i, k].any() and not batch.actions[i, k].any()
                assert batch.returns_to_go[i, k] == 0 and batch.timesteps[i, k] == 0
                continue
            assert batch.step_mask[i, k]
            np.testing.assert_array_equal(
                batch.states[i, k, :3], observations[t].astype(np.float32)
            )
            assert not batch.states[i, k, 3:].any()
            np.testing.assert_array_equal(batch.actions[i, k, :2], actions[t].astype(np.float32))
            assert not batch.actions[i, k, 2:].any()
            assert batch.returns_to_go[i, k] == expected_rtg[t]
            assert batch.timesteps[i, k] == t
    assert seen == {0, 1, 2, 3}
    assert (batch.task_index == 0).all()


def test_each_task_is_equally_likely_and_its_steps_uniform(tmp_path):
    rng = np.random.default_rng(0)
    small = [random_episode(rng, 10, 4, 1)]
    big = [random_episode(rng, 100, 4, 1) for _ in range(10)]
    write_task(tmp_path, "pendulum-swingup", "dm_control", small)
    write_task(tmp_path, "cheetah-run", "dm_control", big)
    data = load_pretraining_data([tmp_path])
    assert [t.name for t in data.tasks] == ["cheetah-run", "pendulum-swingup"]
    assert [t.steps for t in data.tasks] == [1000, 10]
    batch = ContextSampler(data, context_steps=2, seed=1).sample(40_000)
    share = float(np.mean(batch.task_index == 1))
    assert abs(share - 0.5) < 5 * np.sqrt(0.25 / 40_000)  # five standard deviations
    # Within the small task every step is the last step of a context equally often.
    counts = np.bincount(batch.timesteps[batch.task_index == 1, -1], minlength=10)
    expected = counts.sum() / 10
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected)


def test_sampling_is_deterministic_and_resumes_from_its_state(tmp_path):
    rng = np.random.default_rng(0)
    write_task(tmp_path, "cheetah-run", "dm_control", [random_episode(rng, 50, 5, 2)])
    data = load_pretraining_data([tmp_path])

    def indices(sampler: ContextSampler) -> np.ndarray:
        batch = sampler.sample(64)
        return np.concatenate([batch.timesteps[:, -1], batch.task_index])

    a, b, c = (ContextSampler(data, 3, seed) for seed in (7, 7, 8))
    np.testing.assert_array_equal(indices(a), indices(b))
    assert not np.array_equal(indices(ContextSampler(data, 3, 7)), indices(c))
    saved = a.state_dict()
    expected = [indices(a) for _ in range(3)]
    resumed = ContextSampler(data, 3, seed=0)
    resumed.load_state_dict(saved)
    for batch in expected:
        np.testing.assert_array_equal(indices(resumed), batch)


def test_any_number_of_directories_pool_a_tasks_complete_episodes(tmp_path, metaworld_data):
    rng = np.random.default_rng(0)
    replay = tmp_path / "replay"
    cut_off = dataclasses.replace(random_episode(rng, 9, 17, 6), metadata={"complete": False})
    write_task(replay, "cheetah-run", "dm_control", [random_episode(rng, 20, 17, 6), cut_off])
    write_task(replay, "reach-v3", "metaworld", [random_episode(rng, 7, 39, 4)], name="extra-v0")
    data = load_pretraining_data([metaworld_data, replay])
    names = [(t.domain, t.name) for t in data.tasks]
    assert names == [
        ("dm_control", "cheetah-run"),
        *[("metaworld", t) for t in sorted(METAWORLD_TASKS)],
    ]
    assert [t.index for t in data.tasks] == [0, 1, 2]
    assert (data.tasks[0].episodes, data.tasks[0].steps) == (1, 20)  # the cut-off one left out
    reach = data.tasks[2]
    assert reach.episodes == 4 and reach.steps == 3 * 30 + 7
    assert sorted(reach.datasets) == [
        "memrl/metaworld/reach-v3/extra-v0",
        "memrl/metaworld/reach-v3/scripted-v0",
    ]
    assert (data.action_masks.sum(axis=1) == [6, 4, 4]).all()
    assert list(data.task_starts) == [0, 20, 20 + 90]


def test_by_default_only_the_pretraining_split_and_list_names_stand_for_tasks(tmp_path):
    rng = np.random.default_rng(0)
    write_task(tmp_path, "reach-v3", "metaworld", [random_episode(rng, 5, 39, 4)])
    write_task(
        tmp_path, "hammer-v3", "metaworld", [random_episode(rng, 5, 39, 4)], split="finetune"
    )
    # no split in the metadata: the catalogue's (cheetah-run is a fine-tuning task)
    write_task(tmp_path, "cheetah-run", "dm_control", [random_episode(rng, 5, 17, 6)], split=None)
    assert [t.name for t in load_pretraining_data([tmp_path]).tasks] == ["reach-v3"]
    with pytest.warns(UserWarning, match=r"tasks: CW10 has no data for \['push-wall-v3'"):
        chosen = load_pretraining_data([tmp_path], ["CW10", "cheetah-run"]).tasks
    assert [(t.name, t.split) for t in chosen] == [
        ("cheetah-run", "finetune"),
        ("hammer-v3", "finetune"),
    ]


def _meta(dataset_dir, edit) -> None:
    file = dataset_dir / "data" / "metadata.json"
    metadata = json.loads(file.read_text())
    edit(metadata)
    file.write_text(json.dumps(metadata))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root, rng: None, "holds no Minari dataset"),
        (
            lambda root, rng: _meta(
                write_task(root, "reach-v3", "metaworld", [random_episode(rng, 3, 39, 4)]),
                lambda m: m.pop("memrl"),
            ),
            "is not a complete memrl dataset",
        ),
        (
            lambda root, rng: _meta(
                write_task(root, "reach-v3", "metaworld", [random_episode(rng, 3, 39, 4)]),
                lambda m: m["memrl"].pop("domain"),
            ),
            "is not a complete memrl dataset: its metadata has no memrl task and domain",
        ),
        (
            lambda root, rng: write_task(root, "x", "metaworld", [random_episode(rng, 3, 40, 4)]),
            "observations have 40 features; the model's state layout holds 1..39",
        ),
        (
            lambda root, rng: write_task(root, "x", "metaworld", [random_episode(rng, 3, 5, 7)]),
            "actions have 7 dimensions; the model's action layout holds 1..6",
        ),
        (
            lambda root, rng: write_task(
                root,
                "x",
                "metaworld",
                [episode(np.zeros((3, 5)), [[2.0], [0.0]], [0, 0])],
                action_high=2.0,
            ),
            r"actions reach 2; the model's action bins cover \[-1, 1\]",
        ),
        (
            lambda root, rng: write_task(root, "x", "atari", [random_episode(rng, 3, 5, 1)]),
            "no reward scale for domain 'atari': the pretrained model knows",
        ),
        (
            lambda root, rng: write_task(
                root, "x", "dm_control", [random_episode(rng, 1001, 5, 1)]
            ),
            "an episode of 1001 steps; the model's timesteps run 0..999",
        ),
    ],
    ids=[
        "empty",
        "no-memrl-metadata",
        "no-domain",
        "wide-states",
        "wide-actions",
        "action-range",
        "unknown-domain",
        "long-episode",
    ],
)
def test_bad_data_is_an_error_naming_it(tmp_path, make, message):
    root = tmp_path / "datasets"
    root.mkdir()
    make(root, np.random.default_rng(0))
    with pytest.raises(ValueError, match=message) as error:
        load_pretraining_data([root])
    assert str(root) in str(error.value)


def test_missing_directories_and_tasks_are_named_with_the_options(tmp_path, metaworld_data):
    def option(field: str) -> str:
        return f"--{field}"

    with pytest.raises(ValueError, match="--data needs at least one datasets directory"):
        load_pretraining_data([], name=option)
    with pytest.raises(FileNotFoundError, match=f"--data {tmp_path / 'nope'}: no such directory"):
        load_pretraining_data([tmp_path / "nope"], name=option)
    with pytest.raises(ValueError, match=r"--tasks asks for \['push-v3'\], which no dataset"):
        load_pretraining_data([metaworld_data], ["reach-v3", "push-v3"], name=option)
    with pytest.raises(ValueError, match=r"--tasks asks for \['DMC16'\], which no dataset"):
        load_pretraining_data([metaworld_data], ["DMC16"], name=option)
    finetune_only = tmp_path / "finetune"
    shutil.copytree(metaworld_data, finetune_only)
    for metadata in finetune_only.rglob("metadata.json"):
        _meta(metadata.parent.parent, lambda m: m["memrl"].update(split="finetune"))
    with pytest.raises(ValueError, match="no dataset of the 'pretrain' split in --data; found"):
        load_pretraining_data([finetune_only], name=option)


def test_one_tasks_data_is_its_own_steps_with_contexts_inside_its_episodes(tmp_path):
    rng = np.random.default_rng(0)
    write_task(tmp_path, "cheetah-run", "dm_control", [random_episode(rng, 7, 17, 6)] * 2)
    write_task(tmp_path, "reach-v3", "metaworld", [random_episode(rng, 5, 39, 4) for _ in range(3)])
    data = load_pretraining_data([tmp_path])
    reach = task_data(data, "reach-v3")
    (task,) = reach.tasks
    assert task == dataclasses.replace(data.tasks[1], index=0)
    assert len(reach.states) == 15 and reach.task_starts.tolist() == [0]
    np.testing.assert_array_equal(reach.states, data.states[14:])
    assert reach.episode_starts.tolist() == [0] * 5 + [5] * 5 + [10] * 5
    batch = ContextSampler(reach, context_steps=3, seed=0).sample(200)
    assert (batch.action_mask == data.action_masks[1]).all()
    # Every context lies in one of reach's episodes: its real steps' timesteps are consecutive.
    steps = np.where(batch.step_mask, batch.timesteps, -1)
    for row, real in zip(steps, batch.step_mask, strict=True):
        assert np.all(np.diff(row[real]) == 1)
    with pytest.raises(ValueError, match=r"no data for task 'push-v3'; the data hold"):
        task_data(data, "push-v3")
