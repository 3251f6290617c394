"""Typed dataclass configs as command-line options, with each field's docstring as its help.

A field ``learning_rate: float = 3e-4`` followed by a docstring becomes ``--learning-rate`` with
that docstring and the default in ``--help``; bools become ``--flag/--no-flag``; dict fields take
JSON (``--core-kwargs '{"chunk_size": 32}'``). A few fields have a shorter option
(:data:`OPTION_DESTS`); :func:`option_name` is the one place that says which option sets a field,
for the options themselves and for messages that name them.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from memrl.cli.arguments import integer, json_object, number

OPTION_DESTS = {"env_id": "env", "core": "agent", "total_steps": "steps", "algorithm": "agent"}
"""Config fields set by an option of another name (``total_steps`` by ``--steps``), by field."""


def option_dest(field: str) -> str:
    """The attribute of the parsed arguments that holds a config field (``total_steps``: steps)."""
    return OPTION_DESTS.get(field, field)


def option_name(field: str) -> str:
    """The option that sets a config field, as typed: ``total_steps`` -> ``--steps``."""
    return "--" + option_dest(field).replace("_", "-")


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass, by field name."""
    source = textwrap.dedent(inspect.getsource(cls))
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    docs: dict[str, str] = {}
    for node, after in zip(body.body, body.body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _default(f: dataclasses.Field[Any]) -> Any:
    """A dataclass field's default value."""
    factory: Any = f.default_factory
    return f.default if f.default is not dataclasses.MISSING else factory()


_VALUE_TYPES: dict[Any, tuple[Any, str]] = {
    int: (integer, "INT"),
    float: (number, "FLOAT"),
    str: (str, "STR"),
}
"""Field type -> (argparse type, metavar)."""


def _add_option(
    parser: argparse.ArgumentParser | Any, name: str, kind: Any, help_text: str
) -> None:
    """The option of field ``name`` parsed as ``kind``, default None (not given)."""
    option, dest = option_name(name), option_dest(name)
    if kind is bool:
        parser.add_argument(
            option, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text
        )
    elif typing.get_origin(kind) is dict:
        parser.add_argument(option, dest=dest, type=json_object, default=None, metavar="JSON",
                            help=help_text)  # fmt: skip
    else:
        value_type, metavar = _VALUE_TYPES[kind]
        parser.add_argument(option, dest=dest, type=value_type, default=None, metavar=metavar,
                            help=help_text)  # fmt: skip


def add_dataclass_arguments(
    parser: argparse.ArgumentParser | Any, cls: type, skip: tuple[str, ...] = ()
) -> None:
    """Add one ``--option`` per field of ``cls`` (except ``skip``) to ``parser``."""
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name not in skip:
            help_text = f"{docs.get(f.name, '')} (default: {_default(f)})"
            _add_option(parser, f.name, hints[f.name], help_text)


def add_shared_arguments(
    parser: argparse.ArgumentParser | Any, configs: Mapping[str, type], names: Sequence[str]
) -> None:
    """One ``--option`` per field in ``names`` that several configs share.

    Its help gives the meaning and default of each config that has the field ("memory PPO: ...
    (default: 20); continual SAC: ... (default: 20000)").

    Args:
        parser: The parser or argument group.
        configs: Label -> dataclass, in the order the help lists them.
        names: Field names that at least two of the configs have, with the same type.

    Raises:
        ValueError: A field that fewer than two configs have, or typed differently in two.
    """
    docs = {label: field_docs(cls) for label, cls in configs.items()}
    hints = {label: typing.get_type_hints(cls) for label, cls in configs.items()}
    fields = {label: {f.name: f for f in dataclasses.fields(cls)} for label, cls in configs.items()}
    for name in names:
        kinds = {label: hint[name] for label, hint in hints.items() if name in hint}
        if len(kinds) < 2 or len(set(kinds.values())) != 1:
            raise ValueError(f"{name} is not a field of one type in several configs: {kinds}")
        parts = [
            f"{label}: {docs[label].get(name, '')} (default: {_default(fields[label][name])})"
            for label in kinds
        ]
        _add_option(parser, name, next(iter(kinds.values())), "; ".join(parts))


def dataclass_from_arguments(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """Build ``cls`` from parsed options: given options and ``overrides`` replace the defaults.

    A field is read from its option's attribute (:func:`option_dest`: ``total_steps`` from
    ``args.steps``).
    """
    values = {
        f.name: getattr(args, option_dest(f.name))
        for f in dataclasses.fields(cls)
        if getattr(args, option_dest(f.name), None) is not None
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**values)
