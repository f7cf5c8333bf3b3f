"""The package facade exports exactly what its ``TYPE_CHECKING`` block promises.

A name a type checker accepts (``from execution_platform import TextDelta``) must also import at run
time, and every public name of the model and every exception of the taxonomy is reachable from the
top-level package.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import execution_platform
from execution_platform import errors, model

INIT = Path(execution_platform.__file__)


def _promised() -> dict[str, str]:
    """Names imported under ``if TYPE_CHECKING:`` in the facade, each with its home module."""
    tree = ast.parse(INIT.read_text())
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.level == 1, ast.unparse(stmt)
                assert all(alias.name != "*" for alias in stmt.names), "a star import promises what it cannot check"
                for alias in stmt.names:
                    names[alias.asname or alias.name] = f"execution_platform.{stmt.module}"
    return names


def test_all_matches_the_type_checking_block() -> None:
    assert sorted(execution_platform.__all__) == sorted(_promised())
    assert len(set(execution_platform.__all__)) == len(execution_platform.__all__)


@pytest.mark.parametrize("name", sorted(_promised()))
def test_every_promised_name_imports_and_is_the_real_thing(name: str) -> None:
    home = importlib.import_module(_promised()[name])
    namespace: dict[str, object] = {}
    exec(f"from execution_platform import {name}", namespace)  # the statement a user writes
    assert namespace[name] is getattr(home, name)


def test_the_model_and_every_exception_are_exported() -> None:
    exceptions = {n for n in errors.__all__ if inspect.isclass(getattr(errors, n))}
    assert {"TextDelta", "QuotaExceededError"} <= set(execution_platform.__all__)
    assert set(model.__all__) <= set(execution_platform.__all__)
    assert exceptions <= set(execution_platform.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        execution_platform.no_such_name  # noqa: B018
