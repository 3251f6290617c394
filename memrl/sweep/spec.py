"""A sweep's SPEC: a TOML file naming a grid of ``memrl train`` runs.

The schema (every table is optional but a sweep needs some ``memrl train`` options)::

    [sweep]
    name = "recall"           # default: the SPEC file's name; --out defaults to runs/sweeps/NAME
    max_failures = 2          # retries of a trial that raises (Ray Tune's FailureConfig)
    max_concurrent = 4        # at most this many trials at once (default: as resources allow)

    [resources]
    cpus = 1                  # CPUs per trial (default 1)

    [train]                   # options of every trial: any `memrl train` option, named as the
    env = "memrl/DelayedMatch-v0"   # option without its dashes (- or _ alike); true/false for
    steps = 1_500_000               # flags (tensorboard = false), a table for a JSON option
    env_kwargs = {delay = [0, 128], num_symbols = 4}

    [grid]                    # lists are crossed: one trial per combination
    agent = ["hcam", "lstm"]
    seed = [0, 1, 2]

    [eval]                    # optional: `memrl eval RUN_DIR` options, run after training
    episodes = 100

``[[grid]]`` (an array of tables) gives several grids, each crossed on its own with ``[train]``:
a scalar in a grid block is an option of that block only, and ``trial_name`` names the block's
trials with a template of their options (``"reference/{tasks}/seed{seed}"``; default: every
crossed key as ``key-value``, joined by ``_``). A trial's run directory is
``SWEEP_DIR/trials/<trial name>``. An option may be set in one place only ([train] or a grid).

Every option is checked against the parser of the command it is for (its name, its type, its
allowed values) and seeds must be integers >= 0; a mistake is a :class:`SpecError` naming the
SPEC file, the table and key, and what is allowed, before anything starts.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import json
import math
import re
import string
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memrl.sweep.trial import Trial

TABLES = ("sweep", "resources", "train", "grid", "eval")
"""The SPEC's tables."""
SWEEP_KEYS = ("name", "max_failures", "max_concurrent")
"""Keys of ``[sweep]``."""
RESOURCE_KEYS = ("cpus",)
"""Keys of ``[resources]``."""
NAME_KEY = "trial_name"
"""The key of a grid block that names its trials (a template of their options)."""
RESERVED = {
    "train": ("out", "resume", "no_progress"),
    "eval": ("run_dirs", "out"),
}
"""Options that the sweep sets itself, per command."""
DEFAULT_MAX_FAILURES = 2
"""Retries of a trial that raises, unless ``[sweep] max_failures`` says otherwise."""


class SpecError(ValueError):
    """A SPEC that cannot be run; the message names the file, the key and what is allowed."""


@dataclass(frozen=True)
class SweepSpec:
    """A checked SPEC.

    Attributes:
        path: The SPEC file.
        name: The sweep's name (``[sweep] name``, else the file's stem).
        trials: Every trial of the grid, in the SPEC's order.
        cpus: CPUs per trial.
        max_failures: Retries of a trial that raises.
        max_concurrent: At most this many trials at once; None: as many as the CPUs allow.
        text: The SPEC's text (the sweep directory keeps a copy).
    """

    path: Path
    name: str
    trials: tuple[Trial, ...]
    cpus: float = 1.0
    max_failures: int = DEFAULT_MAX_FAILURES
    max_concurrent: int | None = None
    text: str = ""


def load_spec(
    path: str | Path,
    train_parser: argparse.ArgumentParser,
    eval_parser: argparse.ArgumentParser | None = None,
    check: Callable[[Trial], None] | None = None,
) -> SweepSpec:
    """Read and check a SPEC file.

    Args:
        path: The TOML file.
        train_parser: The parser of ``memrl train``: options are checked against it.
        eval_parser: The parser of ``memrl eval``, for an ``[eval]`` table.
        check: Further checks of each trial (``memrl sweep`` builds the trainer's config and
            validates it); a ``ValueError`` it raises becomes a :class:`SpecError` naming the
            trial.

    Raises:
        SpecError: The file cannot be read, is not TOML, or names an unknown table, key, option
            or value, a negative seed, a value of the wrong type, or two trials of one name.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise SpecError(f"cannot read the SPEC {path}: {error.strerror or error}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{path} is not valid TOML: {error}") from None
    unknown = sorted(set(document) - set(TABLES))
    if unknown:
        raise SpecError(f"{path}: unknown table(s) {unknown}; allowed: {', '.join(TABLES)}")
    tables = {name: document.get(name, {}) for name in ("sweep", "resources", "train", "eval")}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise SpecError(f"{path}: [{name}] must be a table, got {table!r}")
    settings = _sweep_settings(path, tables["sweep"], tables["resources"])
    blocks = _grid_blocks(path, document.get("grid", {}))
    eval_arguments = None
    if "eval" in document:
        if eval_parser is None:
            raise SpecError(f"{path}: [eval] is not supported here")
        eval_arguments = tuple(_arguments(path, "[eval]", eval_parser, tables["eval"], "eval"))
    trials = _trials(path, train_parser, tables["train"], blocks, eval_arguments)
    if check is not None:
        for trial in trials:
            try:
                check(trial)
            except SpecError:
                raise
            except ValueError as error:
                raise SpecError(f"{path}: trial {trial.name!r}: {error}") from None
    return SweepSpec(path=path, trials=tuple(trials), text=text,
                     name=settings.get("name") or path.stem,
                     cpus=settings.get("cpus", 1.0),
                     max_failures=settings.get("max_failures", DEFAULT_MAX_FAILURES),
                     max_concurrent=settings.get("max_concurrent"))  # fmt: skip


def _sweep_settings(path: Path, sweep: Mapping[str, Any], resources: Mapping[str, Any]) -> dict:
    """``[sweep]`` and ``[resources]``, checked."""
    for table, allowed, values in (("sweep", SWEEP_KEYS, sweep),
                                   ("resources", RESOURCE_KEYS, resources)):  # fmt: skip
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise SpecError(
                f"{path}: [{table}] has unknown key(s) {unknown}; allowed: {', '.join(allowed)}"
            )
    settings: dict[str, Any] = {}
    if "name" in sweep:
        name = sweep["name"]
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise SpecError(
                f"{path}: [sweep] name must be letters, digits, '.', '_' or '-', got {name!r}"
            )
        settings["name"] = name
    for key, least in (("max_failures", 0), ("max_concurrent", 1)):
        if key in sweep:
            value = sweep[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise SpecError(f"{path}: [sweep] {key} must be an integer >= {least}, "
                                f"got {value!r}")  # fmt: skip
            settings[key] = value
    if "cpus" in resources:
        cpus = resources["cpus"]
        if isinstance(cpus, bool) or not isinstance(cpus, int | float) or not cpus > 0:
            raise SpecError(f"{path}: [resources] cpus must be a number > 0, got {cpus!r}")
        settings["cpus"] = float(cpus)
    return settings


def _grid_blocks(path: Path, grid: Any) -> list[dict[str, Any]]:
    """The grid blocks: ``[grid]`` is one, ``[[grid]]`` several; no grid is one empty block."""
    blocks = [grid] if isinstance(grid, dict) else grid
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        raise SpecError(f"{path}: grid must be a table ([grid]) or tables ([[grid]])")
    return blocks or [{}]


def _trials(
    path: Path,
    parser: argparse.ArgumentParser,
    train: Mapping[str, Any],
    blocks: list[dict[str, Any]],
    eval_arguments: tuple[str, ...] | None,
) -> list[Trial]:
    """Every trial of every grid block, checked, with unique names."""
    fixed = dict(_arguments_by_key(path, "[train]", parser, train, "train"))
    trials: list[Trial] = []
    names: dict[str, str] = {}
    for index, block in enumerate(blocks):
        where = "[grid]" if len(blocks) == 1 else f"[[grid]] #{index + 1}"
        template = block.get(NAME_KEY)
        if template is not None and not isinstance(template, str):
            raise SpecError(f"{path}: {where} {NAME_KEY} must be a string, got {template!r}")
        options = {_key(k): v for k, v in block.items() if k != NAME_KEY}
        twice = sorted(set(options) & {_key(k) for k in train})
        if twice:
            raise SpecError(f"{path}: {twice} set in both [train] and {where}; set each option "
                            "in one place")  # fmt: skip
        crossed = {k: v for k, v in options.items() if isinstance(v, list)}
        for key, values in crossed.items():
            if not values:
                raise SpecError(f"{path}: {where} {key} is an empty list: it makes no trial")
        block_fixed = {k: v for k, v in options.items() if k not in crossed}
        block_arguments = dict(_arguments_by_key(path, where, parser, block_fixed, "train"))
        checked = {  # every value of every crossed key, as arguments
            key: [_option(path, f"{where} {key}", parser, key, value, "train") for value in values]
            for key, values in crossed.items()
        }
        for combination in itertools.product(*(range(len(v)) for v in crossed.values())):
            chosen = {key: crossed[key][i] for key, i in zip(crossed, combination, strict=True)}
            trial_options = {**{_key(k): v for k, v in train.items()}, **block_fixed, **chosen}
            arguments = [*(a for args in fixed.values() for a in args),
                         *(a for args in block_arguments.values() for a in args),
                         *(a for key, i in zip(crossed, combination, strict=True)
                           for a in checked[key][i])]  # fmt: skip
            name = _trial_name(path, where, template, trial_options, list(crossed))
            if name in names:
                raise SpecError(
                    f"{path}: two trials are named {name!r} ({names[name]} and {where}); give "
                    f"each grid block a {NAME_KEY} that tells its trials apart"
                )
            names[name] = where
            sources = {**dict.fromkeys(map(_key, train), "[train]"),
                       **dict.fromkeys(options, where)}  # fmt: skip
            trials.append(Trial(name=name, options=trial_options, sources=sources,
                                train_arguments=tuple(arguments),
                                eval_arguments=eval_arguments))  # fmt: skip
    return trials


def _arguments_by_key(
    path: Path, where: str, parser: argparse.ArgumentParser, table: Mapping[str, Any], command: str
) -> list[tuple[str, list[str]]]:
    """Each key of a table of fixed options with its arguments, checked."""
    pairs = []
    for key, value in table.items():
        action = _action(parser, _key(key))
        if isinstance(value, list) and action is not None and action.nargs not in ("+", "*"):
            raise SpecError(
                f"{path}: {where} {key} is a list, which only [grid] crosses; give one value "
                "here, or move it to [grid]"
            )
        pairs.append((_key(key), _option(path, f"{where} {key}", parser, key, value, command)))
    return pairs


def _arguments(
    path: Path, where: str, parser: argparse.ArgumentParser, table: Mapping[str, Any], command: str
) -> list[str]:
    """A table of fixed options as arguments, checked."""
    return [a for _, args in _arguments_by_key(path, where, parser, table, command) for a in args]


def _key(key: str) -> str:
    """A SPEC key as an option's destination: ``eval-every`` -> ``eval_every``."""
    return key.replace("-", "_")


def _action(parser: argparse.ArgumentParser, key: str) -> argparse.Action | Any:
    """The parser's action of ``--key``, or None."""
    return parser._option_string_actions.get("--" + key.replace("_", "-"))


def _option(
    path: Path,
    where: str,
    parser: argparse.ArgumentParser,
    key: str,
    value: Any,
    command: str,
) -> list[str]:
    """The arguments that set ``key`` to ``value``, checked as the parser would.

    Raises:
        SpecError: An unknown or reserved option, a value of the wrong type, outside the allowed
            ones, or a negative seed.
    """
    key = _key(key)
    if key in RESERVED.get(command, ()):
        raise SpecError(f"{path}: {where}: memrl sweep sets --{key.replace('_', '-')} itself; "
                        "drop it from the SPEC")  # fmt: skip
    action = _action(parser, key)
    if action is None:
        raise SpecError(f"{path}: {where}: {_unknown(parser, key, command)}")
    option = "--" + key.replace("_", "-")
    try:
        if key == "seed" and not (isinstance(value, int) and not isinstance(value, bool)
                                  and value >= 0):  # fmt: skip
            raise ValueError(f"seeds must be integers >= 0, got {value!r}")
        return _value_arguments(action, option, value)
    except (ValueError, argparse.ArgumentTypeError) as error:
        raise SpecError(f"{path}: {where}: {error} (memrl {command} {option})") from None


def _value_arguments(action: argparse.Action, option: str, value: Any) -> list[str]:
    """``option`` with ``value`` as arguments of ``action``; ``ValueError`` if it does not fit."""
    if action.nargs == 0:  # a flag: store_true, or --x/--no-x
        if not isinstance(value, bool):
            raise ValueError(f"is a flag: give true or false, got {value!r}")
        if isinstance(action, argparse.BooleanOptionalAction):
            positive = option.removeprefix("--no-") if option.startswith("--no-") else None
            on = value if positive is None else not value
            name = positive or option.removeprefix("--")
            return [f"--{name}" if on else f"--no-{name}"]
        return [option] if value else []
    if action.nargs in ("+", "*"):
        if not isinstance(value, list) or not value:
            raise ValueError(f"takes a list of values, got {value!r}")
        return [option, *(_checked_text(action, item) for item in value)]
    return [option, _checked_text(action, value)]


def _checked_text(action: argparse.Action, value: Any) -> str:
    """``value`` as the text of one argument, checked by the action's type and choices."""
    if isinstance(value, bool | list) or value is None:
        raise ValueError(f"takes {_expected(action)}, got {json.dumps(value)}")
    if isinstance(value, dict):
        if action.metavar != "JSON":
            raise ValueError(f"takes {_expected(action)}, got a table {json.dumps(value)}")
        text = json.dumps(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"takes {_expected(action)}, got {value!r}")
    else:
        text = str(value)
    if callable(action.type):
        try:
            action.type(text)
        except (argparse.ArgumentTypeError, ValueError, TypeError) as error:
            raise ValueError(str(error)) from None
    if action.choices is not None and text not in action.choices:
        allowed = ", ".join(str(c) for c in action.choices)
        raise ValueError(f"{text!r} is not allowed; allowed: {allowed}")
    return text


def _expected(action: argparse.Action) -> str:
    """What an option takes, in words: its metavar or its choices."""
    if action.choices is not None:
        return "one of " + ", ".join(str(c) for c in action.choices)
    metavar = action.metavar if isinstance(action.metavar, str) else None
    return {"INT": "an integer", "FLOAT": "a number", "JSON": "a table (JSON object)"}.get(
        metavar or "", f"a {metavar or 'value'}"
    )


def _unknown(parser: argparse.ArgumentParser, key: str, command: str) -> str:
    """The message for an option that ``memrl COMMAND`` does not have."""
    reserved = RESERVED.get(command, ())
    keys = sorted({a.dest for a in parser._actions if a.option_strings and a.dest != "help"}
                  - set(reserved) - {"command_parser"})  # fmt: skip
    close = difflib.get_close_matches(key, keys, n=3)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    return f"{key!r} is not an option of memrl {command}.{hint} Allowed: {', '.join(keys)}"


def _trial_name(
    path: Path, where: str, template: str | None, values: Mapping[str, Any], crossed: list[str]
) -> str:
    """The trial's name: its block's template filled with its options, or its crossed values."""
    if template is None:
        name = "_".join(f"{key}-{_slug(values[key])}" for key in crossed) or "run"
    else:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        unknown = sorted({f for f in fields if f not in values})
        if unknown:
            raise SpecError(f"{path}: {where} {NAME_KEY} {template!r} names {unknown}, which "
                            f"this block does not set; allowed: {', '.join(values)}")  # fmt: skip
        name = template.format(**{key: _slug(value) for key, value in values.items()})
    parts = name.split("/")
    if name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise SpecError(f"{path}: {where}: trial name {name!r} is not a relative path of "
                        "named directories")  # fmt: skip
    return name


def _slug(value: Any) -> str:
    """A value as part of a directory name: ``memrl/DelayedMatch-v0`` -> ``DelayedMatch-v0``."""
    if isinstance(value, bool):
        return str(value).lower()
    text = value.removeprefix("memrl/") if isinstance(value, str) else value
    if not isinstance(text, str | int | float):
        text = json.dumps(text, separators=(",", ":"))
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-") or "value"
