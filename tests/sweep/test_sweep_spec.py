"""SPEC files: the grid they name, and clear errors before anything starts (no Ray here)."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from memrl.agents.continual.config import ContinualConfig
from memrl.cli import main
from memrl.cli.commands.sweep import check_trial, command_parsers
from memrl.cli.config_options import dataclass_from_arguments
from memrl.sweep.spec import load_spec
from memrl.sweep.trial import Trial, TrialRecord, is_finished

TINY = """\
[train]
env = "memrl/DelayedMatch-Easy-v0"
steps = 256
num_envs = 2
num_steps = 64
num_minibatches = 1
update_epochs = 1
tensorboard = false
"""


def _load(tmp_path, text):
    spec = tmp_path / "spec.toml"
    spec.write_text(textwrap.dedent(text))
    parsers = command_parsers()
    return load_spec(spec, parsers["train"], parsers["eval"],
                     check=lambda t: check_trial(t, parsers["train"], parsers["eval"]))  # fmt: skip


def test_a_grid_is_crossed_into_named_trials_with_memrl_train_arguments(tmp_path):
    spec = _load(
        tmp_path,
        TINY
        + """
        [sweep]
        max_failures = 3
        [resources]
        cpus = 0.5
        [grid]
        agent = ["none", "lstm"]
        seed = [0, 1]
        [eval]
        episodes = 4
    """,
    )
    assert (spec.name, spec.cpus, spec.max_failures, spec.max_concurrent) == ("spec", 0.5, 3, None)
    assert [t.name for t in spec.trials] == [
        "agent-none_seed-0",
        "agent-none_seed-1",
        "agent-lstm_seed-0",
        "agent-lstm_seed-1",
    ]
    trial = spec.trials[2]
    assert trial.options["agent"] == "lstm" and trial.options["steps"] == 256
    assert trial.where("agent") == "[grid] agent" and trial.where("steps") == "[train] steps"
    train, evaluate = trial.commands("RUN", resume=True)
    assert train[:3] == ["train", "--env", "memrl/DelayedMatch-Easy-v0"]
    assert "--no-tensorboard" in train
    assert train[-6:] == ["--seed", "0", "--out", "RUN", "--no-progress", "--resume"]
    assert evaluate == ["eval", "RUN", "--episodes", "4"]


def test_grid_blocks_have_their_own_options_and_name_templates(tmp_path):
    spec = _load(
        tmp_path,
        """
        [train]
        stream = "CW10"
        tasks = "reach-v3,button-press-v3"
        steps_per_task = 200
        eval_every = 100
        start_steps = 50
        update_after = 50
        [[grid]]
        trial_name = "{method}/seed{seed}"
        method = ["finetune", "l2"]
        seed = [0]
        [[grid]]
        trial_name = "reference/{tasks}/seed{seed}"
        tasks = ["reach-v3", "button-press-v3"]
        schedule = {kind = "sequential"}
        seed = [0]
    """.replace('tasks = "reach-v3,button-press-v3"\n', ""),
    )
    assert [t.name for t in spec.trials] == [
        "finetune/seed0", "l2/seed0", "reference/reach-v3/seed0",
        "reference/button-press-v3/seed0"]  # fmt: skip
    assert spec.trials[2].run_dir("S").as_posix() == "S/trials/reference/reach-v3/seed0"
    assert "--schedule" in spec.trials[3].train_arguments


def test_a_trial_is_finished_when_its_record_says_so_for_the_same_commands(tmp_path):
    trial = Trial("a", {}, {}, ("--steps", "256"))
    assert not is_finished(trial, tmp_path)
    TrialRecord("a", trial.signature(), status="finished", attempts=1).save(tmp_path)
    assert is_finished(trial, tmp_path)
    assert not is_finished(Trial("a", {}, {}, ("--steps", "512")), tmp_path)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ('[grid]\nagent = ["hcamm"]', "[grid] agent: 'hcamm' is not allowed; allowed: hcam, "),
        ("[grid]\nseed = [0, -1]", "[grid] seed: seeds must be integers >= 0, got -1"),
        ("[grid]\nstepz = [512]", "[grid] stepz: 'stepz' is not an option of memrl train. Did "
         "you mean steps? Allowed: agent, "),
        ('[grid]\nlearning_rate = ["fast"]', "[grid] learning_rate: must be a number, got "
         "'fast' (memrl train --learning-rate)"),
        ("[grid]\nfeature_dim = [1.5]", "[grid] feature_dim: must be an integer, got '1.5'"),
        ("[grid]\nclip_value = [1]", "[grid] clip_value: is a flag: give true or false, got 1"),
        ("[grid]\nseed = []", "[grid] seed is an empty list: it makes no trial"),
        ("[grid]\nseed = [0]\nsteps = [1]", "['steps'] set in both [train] and [grid]"),
        ("[grid]\newc_coef = [1.0]", "[grid] ewc_coef: not an option of memory PPO, which this "
         "trial trains (env = 'memrl/DelayedMatch-Easy-v0'); options of continual SAC"),
        ("[grid]\nlog_every = [0]", "trial 'log_every-0': --log-every must be"),
        ("[grid]\nout = ['x']", "[grid] out: memrl sweep sets --out itself"),
        ("[sweeps]\nname = 'x'", "unknown table(s) ['sweeps']; allowed: sweep, resources"),
        ("[sweep]\nmax_failures = -1", "[sweep] max_failures must be an integer >= 0, got -1"),
        ("[resources]\ncpus = 0", "[resources] cpus must be a number > 0, got 0"),
        ("[eval]\nreference = 'x.json'", "[eval] reference: no such file: x.json"),
        ("[[grid]]\nseed = [0]\n[[grid]]\nseed = [0]", "two trials are named 'seed-0'"),
        ("[grid]\ntrial_name = '{agnt}'\nseed = [0]", "trial_name '{agnt}' names ['agnt']"),
        ("[train\n", "is not valid TOML"),
    ],
)  # fmt: skip
def test_bad_specs_are_clear_errors_before_anything_starts(tmp_path, capsys, spec, message):
    path = tmp_path / "bad.toml"
    path.write_text(TINY + spec + "\n" if not spec.startswith("[train\n") else spec)
    assert main(["sweep", str(path), "--out", str(tmp_path / "sweep")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}") and message in err, err
    assert not (tmp_path / "sweep").exists()


SWEEPS = sorted((Path(__file__).resolve().parents[2] / "scripts" / "sweeps").glob("*.toml"))


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_the_studies_specs_are_valid(path):
    parsers = command_parsers()
    spec = load_spec(path, parsers["train"], parsers["eval"],
                     check=lambda t: check_trial(t, parsers["train"], parsers["eval"]))  # fmt: skip
    assert spec.name == path.stem and spec.trials


def test_the_continual_study_spec_trains_the_archived_runs_configs():
    root = Path(__file__).resolve().parents[2]
    parsers = command_parsers()
    spec = load_spec(root / "scripts" / "sweeps" / "continual_study.toml", parsers["train"])
    archive = root / "assets" / "continual_study"
    assert {t.name for t in spec.trials} == {
        str(p.parent.relative_to(archive)) for p in archive.rglob("config.json")
    }
    for trial in spec.trials:
        args = parsers["train"].parse_args([*trial.train_arguments, "--out", "RUN"])
        config = dataclasses.asdict(dataclass_from_arguments(ContinualConfig, args))
        archived = json.loads((archive / trial.name / "config.json").read_text())
        archived.pop("agent")
        assert config == archived, trial.name
