from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import memrl
from memrl.agents.continual.config import ContinualConfig
from memrl.agents.ppo_config import PPOConfig
from memrl.agents.sb3_config import SB3Config
from memrl.cli import build_parser, main
from memrl.cli.config_options import field_docs, option_name
from memrl.envs import ALL
from memrl.envs.play import play
from memrl.eval.reference_curves import save_reference_curves

BALLET = "memrl/BalletGrid-2-delay16-v0"


def test_help_lists_every_subcommand():
    out = subprocess.run(
        [sys.executable, "-m", "memrl.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("list", "bench", "play", "render", "run"):
        assert command in out


def test_version_and_train_help_show_what_the_code_accepts(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"memrl {memrl.__version__}\n"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    assert "--stream NAME task stream: CW10, CW20, PowerLaw, Cyclic, DMC6 " in help_text
    assert "--seed SEED seed (default: 0)" in help_text


def test_list_prints_every_registered_env(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for env_id in ALL:
        assert env_id in out


def test_list_bench_file_without_results_is_a_clear_error(tmp_path, capsys):
    bench = tmp_path / "bench.json"
    cases = (
        ('{"machine": {}}', 'has no "results" list'),
        ("[1, 2]", 'has no "results" list'),
        ("{", "is not JSON"),
        ('{"results": [{"id": "x"}]}', "has a result row without id and num_envs"),
    )
    for text, problem in cases:
        bench.write_text(text)
        assert main(["list", "--bench", str(bench)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: --bench {bench} {problem}")
        assert "expected the JSON that `memrl bench envs --json FILE` writes" in err


def test_list_into_a_closed_pipe_exits_quietly():
    # `memrl list | head -1`: the reader is gone before memrl writes.
    child = subprocess.Popen([sys.executable, "-m", "memrl.cli", "list"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 141  # 128 + SIGPIPE, as a shell reports `seq 1000 | head -1`
    assert err == ""


def test_unknown_env_id_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["render", "memrl/Balet-2-delay16-v0", "--out", "x.gif"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown env id" in err and "memrl list" in err


def test_bench_envs_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "envs", "--ids", BALLET, "--seconds", "0.05", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    (row,) = report["results"]
    assert row["id"] == BALLET
    assert row["single_steps_per_s"] > 0 and row["vector_steps_per_s"] > 0
    assert report["command"].startswith("memrl bench envs")
    assert report["machine"]["cores"] >= 1
    assert BALLET in capsys.readouterr().out


def test_render_gif_and_png(tmp_path):
    gif = tmp_path / "ballet.gif"
    assert main(["render", BALLET, "--out", str(gif), "--max-frames", "20"]) == 0
    with Image.open(gif) as image:
        assert image.n_frames == 20
    png = tmp_path / "ballet.png"
    assert main(["render", BALLET, "--out", str(png), "--max-frames", "30"]) == 0
    assert np.asarray(Image.open(png)).ndim == 3


def test_render_rejects_unknown_format(tmp_path, capsys):
    assert main(["render", BALLET, "--out", str(tmp_path / "x.mp4")]) == 2
    assert ".gif" in capsys.readouterr().err


def test_play_reads_actions_from_stdin():
    # Enter repeats the last action; "quit" stops; a bad word gets a helpful message.
    typed = "\n".join(["0", "", "bogus", "quit"]) + "\n"
    out = subprocess.run(
        [sys.executable, "-m", "memrl.cli", "play", BALLET, "--seed", "1"],
        input=typed,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "unknown action 'bogus'" in out
    assert out.count("action>") >= 3


def _files(directory: Path) -> dict[str, int]:
    """Every file under ``directory`` (relative path) with its modification time."""
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns
            for p in directory.rglob("*") if p.is_file()}  # fmt: skip


def test_train_stream_and_eval_continual(tmp_path, capsys):
    run = tmp_path / "cw"
    code = main(["train", "--stream", "CW10", "--tasks", "reach-v3,button-press-v3",
                 "--steps-per-task", "200", "--method", "l2", "--out", str(run),
                 "--no-progress", "--eval-every", "100", "--eval-episodes", "1",
                 "--start-steps", "50", "--update-after", "50", "--no-tensorboard",
                 "--hidden-size", "32", "--learning-rate", "5e-4"])  # fmt: skip
    assert code == 0
    config = json.loads((run / "config.json").read_text())
    # Continual options and the shared PPO ones (--learning-rate, --tensorboard) reach the run.
    assert (config["method"], config["eval_every"], config["hidden_size"]) == ("l2", 100, 32)
    assert config["learning_rate"] == 5e-4 and config["tensorboard"] is False
    assert config["threads"] == 1  # continual SAC's default, not PPO's
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| method | average performance | forgetting | forward transfer |")
    assert "| l2 |" in out
    # --out takes the report of a single run too, and nothing in the run changes.
    before = _files(run)
    assert main(["eval", str(run), "--out", str(tmp_path / "single")]) == 0
    capsys.readouterr()
    assert {"report.md", "report.json", "retention.png"} <= set(_files(tmp_path / "single"))
    assert _files(run) == before
    assert main(["eval", str(run), "--episodes", "5", "--seed", "1"]) == 2
    assert "--episodes, --seed cannot be used with continual runs" in capsys.readouterr().err
    report = json.loads((run / "report.json").read_text())
    assert "forward transfer omitted" in report["details"]["reference"]
    markdown = (run / "report.md").read_text()
    assert "average performance" in markdown
    assert f"- {report['details']['reference']}" in markdown  # the reader sees why FT is "-"

    # With single-task reference curves, forward transfer is computed from them.
    reference = save_reference_curves(
        tmp_path / "ref.json",
        {"reach-v3": [[0.0, 0.0]], "button-press-v3": [[0.0, 0.0]]},
        steps_per_task=200, eval_every=100, eval_episodes=1, seeds=[0],
    )  # fmt: skip
    assert main(["eval", str(run), "--reference", str(reference)]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["details"]["reference"].startswith(f"reference curves: {reference}")
    # A file that is not a reference file is named in a one-line error.
    for text, message in (("{}", "has no 'curves' mapping"), ("nope", "is not JSON"),
                          ('{"curves": {"reach-v3": [1, 2]}}', "must be a non-empty")):  # fmt: skip
        (tmp_path / "bad.json").write_text(text)
        assert main(["eval", str(run), "--reference", str(tmp_path / "bad.json")]) == 2
        assert f"{tmp_path / 'bad.json'}" in capsys.readouterr().err.split(message)[0]

    # A second seed: several runs make one table, written to --out only.
    seed1 = tmp_path / "cw_seed1"
    code = main(["train", "--stream", "CW10", "--tasks", "reach-v3,button-press-v3",
                 "--steps-per-task", "200", "--method", "l2", "--out", str(seed1),
                 "--no-progress", "--eval-every", "100", "--eval-episodes", "1",
                 "--start-steps", "50", "--update-after", "50", "--no-tensorboard",
                 "--hidden-size", "32", "--learning-rate", "5e-4", "--seed", "1"])  # fmt: skip
    assert code == 0
    capsys.readouterr()
    assert main(["eval", str(run), str(seed1)]) == 2
    assert "several run directories need --out DIR" in capsys.readouterr().err
    assert main(["eval", str(run), str(seed1), "--out", str(tmp_path / "table")]) == 0
    out = capsys.readouterr().out
    assert "| l2 | " in out and " [" in out  # a row with a 90% interval over the two seeds
    report = json.loads((tmp_path / "table" / "report.json").read_text())
    assert report["details"]["methods"]["l2"]["seeds"] == [0, 1]


def test_resume_needs_an_existing_run_directory(tmp_path, capsys):
    missing = tmp_path / "typo"
    assert main(["train", "--env", BALLET, "--out", str(missing), "--resume"]) == 2
    assert f"--resume: {missing} does not exist" in capsys.readouterr().err
    assert not missing.exists()
    (tmp_path / "file").write_text("")
    assert main(["train", "--env", BALLET, "--out", str(tmp_path / "file")]) == 2
    assert "is a file; give a run directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("config", "command", "message"),
    [
        ({"stream": "CW10"}, ["--env", BALLET], "continual SAC run, and this command trains mem"),
        ({"env_id": BALLET, "core": "lstm"}, ["--env", BALLET, "--agent", "sb3-ppo"],
         "a memory PPO run, and this command trains SB3"),
        ({"agent": "sb3-ppo"}, ["--stream", "CW10"], "a SB3 run, and this command trains contin"),
        ({"stream": "CW10"}, ["--env", BALLET, "--agent", "sb3-ppo"], "this command trains SB3"),
    ],
)  # fmt: skip
def test_resume_with_another_trainer_is_refused(tmp_path, capsys, config, command, message):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    (tmp_path / "run" / "metrics.csv").write_text("step\n0\n")
    assert main(["train", *command, "--out", str(tmp_path / "run"), "--resume"]) == 2
    assert message in capsys.readouterr().err
    assert (tmp_path / "run" / "metrics.csv").read_text() == "step\n0\n"  # left as it was


def test_resume_of_a_run_without_a_checkpoint_says_it_starts_over(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["train", "--stream", "CW10", "--tasks", "reach-v3", "--steps-per-task", "100",
                 "--eval-every", "50", "--eval-episodes", "1", "--start-steps", "100",
                 "--update-after", "50", "--hidden-size", "8", "--no-tensorboard",
                 "--no-progress", "--out", str(tmp_path / "empty"), "--resume"])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert "has no checkpoint yet: the run starts from step 0" in captured.err
    # start_steps covers the whole task: warned of, one line without Python's file and line.
    assert "warning: start_steps (100) >= steps per task (100)" in captured.err
    assert "UserWarning" not in captured.err
    assert "on reach-v3 ->" in captured.out  # the stream trained, named by its tasks


def test_train_needs_an_env_or_a_stream(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "x")]) == 2
    assert "--env" in capsys.readouterr().err


def test_options_of_the_other_trainer_are_refused(tmp_path, capsys):
    out = str(tmp_path / "x")
    code = main(["train", "--stream", "CW10", "--out", out, "--num-envs", "4", "--agent", "hcam"])
    assert code == 2
    assert "--agent, --num-envs apply only to memory PPO / SB3 training" in capsys.readouterr().err
    assert main(["train", "--env", "memrl/DelayedMatch-v0", "--out", out, "--ewc-coef", "1"]) == 2
    assert "--ewc-coef applies only to continual SAC: add --stream" in capsys.readouterr().err
    assert main(["train", "--stream", "CW10", "--out", out, "--steps-per-task", "30000"]) == 2
    assert "--eval-every must divide --steps-per-task (30000)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--stream", "CW10", "--out", out, "--schedule", '"repeat"'])
    assert "--schedule: expected a JSON object" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_eval_reference_must_exist_and_suit_a_continual_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(tmp_path), "--reference", str(tmp_path / "nope.json")])
    assert exit_info.value.code == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "ref.json").write_text("{}")
    assert main(["eval", str(tmp_path), "--reference", str(tmp_path / "ref.json")]) == 2
    assert "--reference applies to continual runs (trained with --stream) only" in (
        capsys.readouterr().err
    )
    assert main(["eval", str(tmp_path), str(tmp_path)]) == 2
    assert "several run directories make one table of continual runs" in capsys.readouterr().err
    assert main(["eval", str(tmp_path), str(tmp_path / "typo")]) == 2
    assert f"no such run directory: {tmp_path / 'typo'}" in capsys.readouterr().err


def test_train_reports_the_steps_trained_and_refuses_to_shrink_a_run(tmp_path, capsys):
    run = tmp_path / "none"
    args = ["train", "--env", "memrl/DelayedMatch-Easy-v0", "--agent", "none", "--num-envs", "2",
            "--num-steps", "64", "--num-minibatches", "1", "--update-epochs", "1",
            "--no-tensorboard", "--no-progress", "--out", str(run)]  # fmt: skip
    assert main([*args, "--steps", "300"]) == 0
    out = capsys.readouterr().out
    assert "for 256 env steps (--steps 300 in whole rollouts of 128 env steps) ->" in out
    assert main([*args, "--steps", "128", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "with total_steps 128: it has already trained 256 env steps; ask for 256" in err
    assert json.loads((run / "config.json").read_text())["total_steps"] == 300
    assert main([*args, "--steps", "256", "--resume"]) == 0
    assert "has already trained 256 env steps: nothing to train" in capsys.readouterr().out
    assert main([*args, "--steps", "384", "--resume"]) == 0
    assert "for 384 env steps, resumed at step 256 ->" in capsys.readouterr().out


@pytest.mark.parametrize("agent", ["none", "sb3-ppo"])
def test_resume_alone_keeps_the_runs_options(tmp_path, capsys, agent):
    run = tmp_path / agent
    options = ["--env", "memrl/DelayedMatch-Easy-v0", "--agent", agent, "--num-envs", "2",
               "--num-steps", "64", "--num-minibatches", "1", "--update-epochs", "1",
               "--learning-rate", "1e-3", "--env-kwargs", '{"delay": 3}', "--seed", "5",
               "--no-tensorboard"]  # fmt: skip
    assert main(["train", *options, "--steps", "128", "--out", str(run), "--no-progress"]) == 0
    saved = json.loads((run / "config.json").read_text())
    capsys.readouterr()
    # Only the run directory and a larger budget: every other option comes from config.json.
    assert main(["train", "--out", str(run), "--resume", "--steps", "256", "--no-progress"]) == 0
    assert "for 256 env steps, resumed at step 128 ->" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text()) == {**saved, "total_steps": 256}
    # --env alone names no trainer: the run's own (memory PPO or SB3) continues.
    resume = ["train", "--out", str(run), "--resume", "--no-progress"]
    assert main([*resume, "--env", "memrl/DelayedMatch-Easy-v0", "--steps", "384"]) == 0
    assert "for 384 env steps, resumed at step 256 ->" in capsys.readouterr().out
    # An option given again that would change what is learnt is refused, naming it.
    assert main(["train", "--out", str(run), "--resume", "--learning-rate", "0.5"]) == 2
    assert "learning_rate" in capsys.readouterr().err


def test_resume_alone_continues_a_continual_run(tmp_path, capsys):
    from memrl.agents.continual import ContinualConfig, EvaluationLog
    from memrl.agents.continual.trainer import ContinualTrainer

    run = tmp_path / "cw"
    config = ContinualConfig(tasks="reach-v3,button-press-v3", method="l2", steps_per_task=100,
                             eval_every=50, eval_episodes=1, hidden_size=8, num_layers=2,
                             start_steps=20, update_after=50, checkpoint_every=50, seed=3,
                             tensorboard=False)  # fmt: skip
    trainer = ContinualTrainer(config, run, progress=False)
    trainer.train(stop_at=100)  # killed after the first task
    trainer.close()
    saved = json.loads((run / "config.json").read_text())
    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 0
    assert "trained continual SAC (l2) on reach-v3 > button-press-v3" in capsys.readouterr().out
    assert EvaluationLog.load(run).steps == [50, 100, 150, 200]
    assert json.loads((run / "config.json").read_text()) == saved


def test_options_an_agent_cannot_honour_are_refused(tmp_path, capsys):
    out = tmp_path / "x"
    env = ["train", "--env", "memrl/DelayedMatch-Easy-v0", "--out", str(out)]
    assert main([*env, "--agent", "sb3-ppo", "--core-kwargs", "{}", "--feature-dim", "8"]) == 2
    err = capsys.readouterr().err
    assert "--core-kwargs, --feature-dim apply only to memory PPO agents (hcam," in err
    assert "sb3-ppo cannot honour them" in err
    assert main([*env, "--agent", "sb3-recurrent-ppo", "--objective", "supervised"]) == 2
    assert "--objective applies only to memory PPO agents" in capsys.readouterr().err
    assert main([*env, "--agent", "lstm", "--frame-stack", "4"]) == 2
    assert "--frame-stack applies only to --agent sb3-ppo" in capsys.readouterr().err
    assert main([*env, "--agent", "sb3-recurrent-ppo", "--frame-stack", "4"]) == 2
    err = capsys.readouterr().err
    assert "--frame-stack stacks observations for algorithm 'ppo' only" in err
    assert not out.exists()


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, parser) of ``memrl`` and of every subcommand, nested ones included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from _parsers(subparser, (*path, name))


@pytest.mark.parametrize(
    ("options", "message", "config"),
    [
        (["--env", "memrl/KeyToDoor-v0", "--num-envs", "6", "--num-minibatches", "4"],
         "--num-minibatches (4) must divide --num-envs (6)",
         PPOConfig(env_id="memrl/KeyToDoor-v0", num_envs=6, num_minibatches=4)),
        (["--env", "memrl/KeyToDoor-v0", "--agent", "sb3-ppo", "--num-minibatches", "7"],
         "--num-minibatches (7) must divide --num-envs * --num-steps (1024) into minibatches of "
         "at least 2 steps",
         SB3Config(env_id="memrl/KeyToDoor-v0", num_minibatches=7)),
        (["--stream", "CW10", "--eval-every", "0"], "--eval-every must be an integer >= 1, got 0",
         ContinualConfig(eval_every=0)),
    ],
    ids=["memory PPO", "SB3", "continual SAC"],
)  # fmt: skip
def test_config_errors_name_the_options_as_typed(tmp_path, capsys, options, message, config):
    out = tmp_path / "run"
    assert main(["train", *options, "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not out.exists()
    # The Python API keeps the field names.
    fields = re.sub(r"--([a-z-]+)", lambda m: m[1].replace("-", "_"), message)
    with pytest.raises(ValueError, match=re.escape(fields)):
        config.validate()


def test_every_config_field_has_help_and_an_option_that_memrl_train_has():
    train = dict(_parsers(build_parser()))[("train",)]
    options = {o for action in train._actions for o in action.option_strings}
    for config in (PPOConfig, SB3Config, ContinualConfig):
        assert set(field_docs(config)) == set(config.__dataclass_fields__)
        for field in config.__dataclass_fields__:
            assert option_name(field) in options, (config.__name__, field)
    assert option_name("total_steps") == "--steps" and option_name("core") == "--agent"


def test_type_errors_are_sentences_without_function_names(capsys):
    checked = 0
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if action.type in (None, str):
                continue
            argv = [*path, *action.option_strings[:1], "not-a-value"]
            with pytest.raises(SystemExit):
                parser.parse_args(argv[len(path) :])
            error = capsys.readouterr().err.splitlines()[1]
            name = action.option_strings[0] if action.option_strings else action.metavar
            assert error.startswith(f"memrl {' '.join(path)}: error: argument {name}: "), argv
            assert "invalid" not in error, argv  # argparse's "invalid <function name> value"
            checked += 1
    assert checked > 40  # every typed option of every command (--steps, --seconds, --env, ...)


@pytest.mark.parametrize(
    ("argv", "command", "message"),
    [
        (["train", "--out", "x", "--steps", "0"], "memrl train",
         "argument --steps: must be an integer >= 1, got 0"),
        (["train", "--out", "x", "--stepz", "5"], "memrl train",
         "unrecognized arguments: --stepz 5"),
        (["bench", "envs", "--seconds", "fast"], "memrl bench envs",
         "argument --seconds: must be a number > 0, got 'fast'"),
        (["eval"], "memrl eval", "the following arguments are required: RUN_DIR"),
    ],
)  # fmt: skip
def test_argument_errors_are_three_lines_of_the_command_given(capsys, argv, command, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    usage, error, hint = capsys.readouterr().err.splitlines()
    assert usage.startswith(f"usage: {command} ") and usage.endswith(" [options]")
    assert error == f"{command}: error: {message}"
    assert hint == f"see: {command} --help"


def test_help_texts_print_percent_signs_as_typed():
    for _, parser in _parsers(build_parser()):
        assert "%%" not in parser.format_help(), parser.prog
    (eval_parser,) = [p for path, p in _parsers(build_parser()) if path == ("eval",)]
    assert "with 90% bootstrap intervals" in " ".join(eval_parser.format_help().split())


@pytest.mark.parametrize("word", ["q", "Q", "quit"])
def test_play_stops_at_q_or_quit(word):
    typed = iter(["0", word])
    written: list[str] = []

    def read(prompt: str) -> str:
        line = next(typed, None)
        assert line is not None, f"play asked for an action after {word!r}"
        return line

    assert play(BALLET, seed=1, read=read, write=written.append) == []
    assert "'q' or 'quit' stops" in written[0]
    assert not any("unknown action" in line for line in written)


def test_nothing_outside_the_cli_imports_it():
    package = Path(memrl.__file__).parent
    importers = []
    for path in package.rglob("*.py"):
        if package / "cli" in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module == "memrl":
                modules = [f"memrl.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            if any(m == "memrl.cli" or m.startswith("memrl.cli.") for m in modules):
                importers.append(str(path.relative_to(package)))
    assert importers == []
