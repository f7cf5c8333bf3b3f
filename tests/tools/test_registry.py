"""Tool registry: schemas from signatures and pydantic models, validation before the call, error mapping."""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from execution_platform.errors import (
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ToolExecutionError,
)
from execution_platform.tools import ToolRegistry, result_text


class Location(BaseModel):
    city: str
    country: str | None = None


class Forecast(BaseModel):
    """Forecast for a place."""

    where: Location
    days: Annotated[int, Field(ge=1, le=7, description="How many days")] = 1


@pytest.fixture
def registry() -> ToolRegistry:
    reg = ToolRegistry(default_timeout=2)
    calls: list[tuple[int, int]] = []

    @reg.register
    def add(a: int, b: int = 2) -> int:
        """Add two integers.

        Args:
            a: The first addend.
            b: The second addend,
                defaulting to two.
        """
        calls.append((a, b))
        return a + b

    @reg.register(name="forecast")
    async def forecast_tool(request: Forecast) -> dict[str, object]:
        return {"city": request.where.city, "days": request.days}

    @reg.register
    def unit(value: float, unit: Literal["c", "f"] = "c") -> str:
        """Format a temperature."""
        return f"{value}{unit}"

    reg.calls = calls  # type: ignore[attr-defined]
    return reg


def test_schema_from_type_hints_and_docstring(registry: ToolRegistry) -> None:
    add = next(t for t in registry.describe() if t["name"] == "add")
    assert add["description"] == "Add two integers."
    assert add["parameters"] == {
        "type": "object",
        "properties": {
            "a": {"type": "integer", "description": "The first addend."},
            "b": {"type": "integer", "default": 2, "description": "The second addend, defaulting to two."},
        },
        "required": ["a"],
    }
    unit = next(t for t in registry.describe() if t["name"] == "unit")
    assert unit["parameters"]["properties"]["unit"]["enum"] == ["c", "f"]


def test_schema_from_pydantic_model_is_flat(registry: ToolRegistry) -> None:
    spec = next(s for s in registry.specs() if s.name == "forecast")
    assert spec.description == "Forecast for a place."
    params = spec.parameters
    assert "$defs" not in params and "$ref" not in str(params)
    assert params["properties"]["where"]["properties"]["city"] == {"type": "string"}
    assert params["properties"]["days"]["maximum"] == 7
    assert params["required"] == ["where"]


async def test_valid_arguments_reach_the_function(registry: ToolRegistry) -> None:
    assert await registry.invoke("add", {"a": 1, "b": 5}) == 6
    assert await registry.invoke("forecast", {"where": {"city": "Oslo"}, "days": 3}) == {"city": "Oslo", "days": 3}


@pytest.mark.parametrize(
    ("name", "args", "param"),
    [
        ("add", {}, "a"),
        ("add", {"a": "not a number"}, "a"),
        ("add", {"a": 1, "unexpected": True}, "unexpected"),
        ("forecast", {"where": {"city": "Oslo"}, "days": 30}, "days"),
        ("forecast", {"where": "Oslo"}, "where"),
        ("unit", {"value": 1, "unit": "k"}, "unit"),
    ],
)
async def test_invalid_arguments_are_refused_before_the_call(
    registry: ToolRegistry, name: str, args: dict[str, object], param: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await registry.invoke(name, args)
    assert caught.value.param == param
    assert f"invalid arguments for tool '{name}'" in caught.value.message
    assert registry.calls == []  # type: ignore[attr-defined]


async def test_non_object_arguments_are_refused(registry: ToolRegistry) -> None:
    with pytest.raises(InvalidRequestError, match="JSON object"):
        await registry.invoke("add", [1, 2])


async def test_unknown_and_disallowed_tools(registry: ToolRegistry) -> None:
    with pytest.raises(NotFoundError, match="unknown tool 'nope'"):
        await registry.invoke("nope", {})
    with pytest.raises(PermissionDeniedError, match="not allowed"):
        await registry.invoke("add", {"a": 1}, allowed=["forecast"])
    assert await registry.invoke("add", {"a": 1}, allowed=["a*"]) == 3
    assert [t.name for t in registry.tools(["for*", "unit"])] == ["forecast", "unit"]


async def test_failures_and_timeouts_become_tool_execution_errors() -> None:
    reg = ToolRegistry()

    @reg.register
    def broken() -> None:
        raise RuntimeError("disk on fire")

    @reg.register(timeout=0.1)
    async def slow() -> None:
        await asyncio.sleep(5)

    with pytest.raises(ToolExecutionError, match="RuntimeError: disk on fire") as caught:
        await reg.invoke("broken", {})
    assert caught.value.status_code == 422
    with pytest.raises(ToolExecutionError, match=r"timed out after 0\.1s"):
        await reg.invoke("slow", {})


async def test_sync_tools_run_off_the_event_loop() -> None:
    reg = ToolRegistry()
    seen: list[str] = []

    @reg.register
    def where() -> str:
        seen.append(threading.current_thread().name)
        return "ok"

    assert await reg.invoke("where") == "ok"
    assert seen != [threading.main_thread().name]


def test_names_and_duplicates_are_checked() -> None:
    reg = ToolRegistry()

    def f() -> None: ...

    reg.register(f)
    with pytest.raises(ValueError, match="already registered"):
        reg.register(f)
    with pytest.raises(ValueError, match="not accepted"):
        reg.register(name="has space")(f)


def test_result_text() -> None:
    assert result_text("plain") == "plain"
    assert result_text({"a": [1, 2]}) == '{"a":[1,2]}'
    assert result_text(Location(city="Oslo")) == '{"city":"Oslo","country":null}'
