"""``pydantic.v1`` stays unloaded until something really uses it (~1.5 MB of resident memory).

FastAPI asks of every route parameter whether its type is a pydantic v1 model, and to ask it imports
``pydantic.v1`` (the whole of pydantic 1, bundled with pydantic 2) and reads ``v1.BaseModel``. No
part of this package uses pydantic 1, yet the question alone kept it in every gateway process.

Before ``pydantic.v1`` is imported no pydantic 1 model can exist, so until then "no" is the exact
answer: :func:`install` puts a stand-in module in ``sys.modules`` whose ``BaseModel`` is a class
nothing derives from. Any other name read from it (``from pydantic.v1 import Field``, ...) imports
the real package, which replaces the stand-in, so code that does use pydantic 1 gets it as before
and from then on every check (FastAPI's included) sees the real ``BaseModel``.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

NAME = "pydantic.v1"


class _NoModelYet:
    """Stands for ``pydantic.v1.BaseModel`` while pydantic 1 is not loaded: no class derives from it."""


class _StandIn(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name == "BaseModel" and sys.modules.get(NAME) is self:
            return _NoModelYet
        if sys.modules.get(NAME) is self:
            del sys.modules[NAME]
        real = importlib.import_module(NAME)
        return getattr(real, name)


def install() -> None:
    """Put the stand-in in place unless ``pydantic.v1`` is already loaded (also as the ``v1``
    attribute of ``pydantic``, as an import would, so ``from pydantic import v1`` finds it directly;
    importing the real package sets both again)."""
    if NAME not in sys.modules:
        import pydantic

        stand_in = _StandIn(NAME, __doc__)
        sys.modules[NAME] = stand_in
        pydantic.v1 = stand_in
