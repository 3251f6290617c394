"""Typed dataclass configs as command-line options, with each field's docstring as its help.

A field ``learning_rate: float = 3e-4`` followed by a docstring becomes ``--learning-rate`` with
that docstring and the default in ``--help``; bools become ``--flag/--no-flag``; dict fields take
JSON (``--core-kwargs '{"chunk_size": 32}'``).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import textwrap
import typing
from collections.abc import Mapping, Sequence
from typing import Any


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


def _json_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _default(f: dataclasses.Field[Any]) -> Any:
    """A dataclass field's default value."""
    factory: Any = f.default_factory
    return f.default if f.default is not dataclasses.MISSING else factory()


def _add_option(
    parser: argparse.ArgumentParser | Any, name: str, kind: Any, help_text: str
) -> None:
    """``--name`` (underscores as dashes) parsed as ``kind``, default None (not given)."""
    option = "--" + name.replace("_", "-")
    if kind is bool:
        parser.add_argument(
            option, action=argparse.BooleanOptionalAction, default=None, help=help_text
        )
    elif typing.get_origin(kind) is dict:
        parser.add_argument(option, type=_json_dict, default=None, metavar="JSON", help=help_text)
    else:
        parser.add_argument(option, type=kind, default=None, metavar=kind.__name__.upper(),
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

    Its help gives each config's meaning and default ("memory PPO: ... (default: 20); continual
    SAC: ... (default: 20000)").

    Args:
        parser: The parser or argument group.
        configs: Label -> dataclass, in the order the help lists them.
        names: Field names that every config has, with the same type.

    Raises:
        ValueError: A field is missing from a config or typed differently in two of them.
    """
    docs = {label: field_docs(cls) for label, cls in configs.items()}
    hints = {label: typing.get_type_hints(cls) for label, cls in configs.items()}
    fields = {label: {f.name: f for f in dataclasses.fields(cls)} for label, cls in configs.items()}
    for name in names:
        kinds = {label: hint.get(name) for label, hint in hints.items()}
        if None in kinds.values() or len(set(kinds.values())) != 1:
            raise ValueError(f"{name} is not a field of one type in every config: {kinds}")
        parts = [
            f"{label}: {docs[label].get(name, '')} (default: {_default(fields[label][name])})"
            for label in configs
        ]
        _add_option(parser, name, next(iter(kinds.values())), "; ".join(parts))


def dataclass_from_arguments(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """Build ``cls`` from parsed options: given options and ``overrides`` replace the defaults."""
    values = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if getattr(args, f.name, None) is not None
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**values)
