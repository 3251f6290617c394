"""Task catalogues: contents, order, splits, look-ups and the Task factory."""

from __future__ import annotations

import pickle

import pytest

import memrl  # noqa: F401  (registers the ids that memory tasks make)
from memrl.envs import MEMORY
from memrl.streams import (
    CATALOGUE,
    CW10,
    CW20,
    DMC16,
    DMC_FINETUNE,
    DMC_PRETRAIN,
    MT40,
    MT50,
    TASK_LISTS,
    get_task,
    resolve_tasks,
    tasks_of,
)


def test_mt50_is_every_metaworld_v3_task():
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    assert len(MT50) == 50 == len(set(MT50))
    assert set(MT50) == set(ALL_V3_ENVIRONMENTS)
    assert all(name.endswith("-v3") for name in MT50)


def test_cw10_is_continual_worlds_order():
    assert CW10 == (
        "hammer-v3",
        "push-wall-v3",
        "faucet-close-v3",
        "push-back-v3",
        "stick-pull-v3",
        "handle-press-side-v3",
        "push-v3",
        "shelf-place-v3",
        "window-close-v3",
        "peg-unplug-side-v3",
    )
    assert CW20 == CW10 + CW10


def test_mt40_is_mt50_minus_cw10():
    assert len(MT40) == 40
    assert not set(MT40) & set(CW10)
    assert set(MT40) | set(CW10) == set(MT50)


def test_splits_follow_l2m():
    assert {t.name for t in tasks_of("metaworld", "pretrain")} == set(MT40)
    assert {t.name for t in tasks_of("metaworld", "finetune")} == set(CW10)
    assert len(DMC_PRETRAIN) == 10 and len(DMC_FINETUNE) == 6 and len(set(DMC16)) == 16
    assert {t.name for t in tasks_of("dm_control", "pretrain")} == set(DMC_PRETRAIN)
    assert {t.name for t in tasks_of("dm_control", "finetune")} == set(DMC_FINETUNE)
    assert {t.name for t in tasks_of("memrl")} == set(MEMORY)
    assert len(CATALOGUE) == 50 + 16 + len(MEMORY)
    assert TASK_LISTS["L2M-pretrain"] == MT40 + DMC_PRETRAIN
    assert TASK_LISTS["L2M-finetune"] == CW10 + DMC_FINETUNE


def test_unknown_names_raise_with_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown task 'hammer-v2'.*hammer-v3"):
        get_task("hammer-v2")
    with pytest.raises(ValueError, match=r"tasks must be a list name.*Did you mean \['CW10'\]"):
        resolve_tasks("CW11")
    with pytest.raises(ValueError, match=r"got 'push-v2'. Did you mean \['push-v3'"):
        resolve_tasks("push-v2")
    with pytest.raises(ValueError, match="distinct"):
        resolve_tasks(CW20)
    with pytest.raises(ValueError, match="at least one"):
        resolve_tasks([])
    with pytest.raises(ValueError, match="domain must be one of"):
        tasks_of("atari")
    with pytest.raises(ValueError, match="split must be one of"):
        tasks_of(split="test")


def test_resolve_tasks_forms():
    assert [t.name for t in resolve_tasks("CW10")] == list(CW10)
    assert [t.name for t in resolve_tasks("push-v3")] == ["push-v3"]
    task = get_task("reach-v3")
    assert resolve_tasks([task, "push-v3"])[0] is task
    # a list name inside a sequence stands for its tasks (``--tasks MT40``, ``--tasks CW10,...``)
    assert [t.name for t in resolve_tasks(["MT40"])] == list(MT40)
    assert [t.name for t in resolve_tasks(["CW10", "reach-v3"])] == [*CW10, "reach-v3"]
    with pytest.raises(ValueError, match=r"distinct, got \['push-v3'\]"):
        resolve_tasks(["CW10", "push-v3"])  # push-v3 is in CW10


def test_task_is_hashable_picklable_and_overridable():
    task = get_task("push-v3")
    longer = task.with_kwargs(episode_length=500)
    assert longer.kwargs["episode_length"] == 500 and "episode_length" not in task.kwargs
    assert hash(task) != hash(longer)
    assert pickle.loads(pickle.dumps(longer)) == longer


def test_memory_task_makes_the_registered_env_seeded():
    task = get_task("memrl/DelayedMatch-Easy-v0")
    first, _ = task.make(seed=4).reset()
    again, _ = task.make(seed=4).reset()
    direct, _ = task.make().reset(seed=4)
    assert (first == again).all() and (first == direct).all()


def test_a_later_occurrence_is_the_same_environment_under_its_own_name():
    from memrl.streams.catalogue import base_task_name, occurrence

    second = get_task("hammer-v3#2")
    hammer = get_task("hammer-v3")
    assert second.name == "hammer-v3#2" and second.base_name == "hammer-v3"
    assert (second.domain, second.split, second.entry_point, dict(second.kwargs)) == (
        hammer.domain, hammer.split, hammer.entry_point, dict(hammer.kwargs),
    )  # fmt: skip
    assert occurrence("hammer-v3", 1) is hammer and occurrence(second, 1) == hammer
    assert occurrence(second, 3).name == "hammer-v3#3" and base_task_name("a#3") == "a"
    assert resolve_tasks(["hammer-v3", "hammer-v3#2"])[1] == second  # distinct names
    for name in ("hammer-v3#1", "hammer-v3#0", "hammer-v3#x", "hammer-v9#2"):
        with pytest.raises(ValueError, match="unknown task"):
            get_task(name)
    with pytest.raises(ValueError, match="occurrence number must be an integer >= 1"):
        occurrence("hammer-v3", 0)
