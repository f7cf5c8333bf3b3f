"""Load the YAML configuration file into :class:`~.schema.Config`, with errors that name file and line.

PyYAML's node tree keeps the position of every key and value; we build the plain Python data from
that tree ourselves and remember, for every path (``("personas", "architect", "targets", 0)``), the
line it came from. Pydantic errors and :meth:`Config.problems` both report paths, so each one maps
back to the line a person has to edit.

``${VAR}`` and ``${VAR:-default}`` in string values are replaced from the environment. A value that
is exactly ``${VAR}`` with ``VAR`` unset becomes null (so ``api_key: ${EP_OPENAI_API_KEY}`` means
"not configured here" and the environment settings apply); inside a longer string an unset variable
without a default is an error. References are lifted out of the text before parsing, because
``{api_key: ${KEY}}`` (a flow mapping) is not valid YAML as written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ConfigurationError
from .schema import Config

__all__ = ["ConfigFileError", "ConfigIssue", "load_config", "parse_config"]

Loc = tuple[str | int | float, ...]  # YAML mapping keys may be any plain scalar
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_HOLE = re.compile(r"__ep_env_(\d+)__")


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int | None  # 1-based
    path: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.reason}" if self.path else f"{where}: {self.reason}"


class ConfigFileError(ConfigurationError):
    """The configuration file is invalid; ``issues`` lists every problem found, each with its line."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("invalid configuration:\n" + "\n".join(f"  {issue}" for issue in issues))


class _Builder:
    """Turns a composed YAML node tree into plain data plus a path → line map."""

    def __init__(self, loader: yaml.SafeLoader, file: str, env: Mapping[str, str], holes: list[str]) -> None:
        self.loader = loader
        self.holes = holes
        self.file = file
        self.env = env
        self.lines: dict[Loc, int] = {}
        self.issues: list[ConfigIssue] = []

    def build(self, node: yaml.Node, path: Loc) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool):
                    self._issue(key_node, path, "mapping keys must be plain scalars")
                    continue
                if key in out:
                    self._issue(key_node, (*path, key), "duplicate key")
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                self.lines[(*path, i)] = item.start_mark.line + 1
                items.append(self.build(item, (*path, i)))
            return items
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, str) and "__ep_env_" in value:
            return self._interpolate(_HOLE.sub(lambda m: self.holes[int(m.group(1))], value), node, path)
        return value

    def _interpolate(self, value: str, node: yaml.Node, path: Loc) -> str | None:
        whole = _VAR.fullmatch(value)
        if whole and whole.group(2) is None and whole.group(1) not in self.env:
            return None

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            self._issue(node, path, f"environment variable {name} is not set (use ${{{name}:-default}})")
            return ""

        return _VAR.sub(sub, value)

    def _issue(self, node: yaml.Node, path: Loc, reason: str) -> None:
        self.issues.append(ConfigIssue(self.file, node.start_mark.line + 1, _dotted(path), reason))


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_for(loc: Loc, lines: dict[Loc, int]) -> tuple[int | None, Loc]:
    """The line of the deepest known prefix of ``loc``; parts pydantic adds (union member names) skip."""
    cur: Loc = ()
    for part in loc:
        if (*cur, part) in lines:
            cur = (*cur, part)
    return lines.get(cur), cur


def _reason(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ")


def _known_providers() -> set[str]:
    from ..providers.registry import PROVIDERS  # the list of adapters; imported late to keep layers apart

    return set(PROVIDERS)


def parse_config(
    text: str,
    file: str = "<config>",
    *,
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    known_providers: set[str] | None = None,
) -> Config:
    """Validate YAML text; raise :class:`ConfigFileError` listing every problem with its line."""
    env = os.environ if env is None else env
    holes: list[str] = []

    def lift(match: re.Match[str]) -> str:
        holes.append(match.group(0))
        return f"__ep_env_{len(holes) - 1}__"

    loader = yaml.SafeLoader(_VAR.sub(lift, text))
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            raise ConfigFileError([ConfigIssue(file, line, "", f"YAML syntax: {exc.problem or exc}")]) from None
        builder = _Builder(loader, file, env, holes)
        data = builder.build(root, ()) if root is not None else {}
    finally:
        loader.dispose()
    if data is None:
        data = {}
    issues = list(builder.issues) if root is not None else []
    if not isinstance(data, dict):
        raise ConfigFileError([ConfigIssue(file, 1, "", "the file must hold a mapping (providers:, personas:, …)")])
    lines = builder.lines if root is not None else {}
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            line, _ = _line_for(tuple(error["loc"]), lines)
            issues.append(ConfigIssue(file, line, _dotted(_clean_loc(error["loc"], lines)), _reason(error)))
        raise ConfigFileError(issues) from None
    for loc, reason in config.problems(known_providers or _known_providers()):
        line, _ = _line_for(loc, lines)
        issues.append(ConfigIssue(file, line, _dotted(loc), reason))
    for name, persona in config.personas.items():
        if persona.system_prompt_file is not None:
            prompt_path = Path(persona.system_prompt_file)
            if not prompt_path.is_absolute():
                prompt_path = (base_dir or Path.cwd()) / prompt_path
            loc = ("personas", name, "system_prompt_file")
            try:
                persona.system_prompt = prompt_path.read_text(encoding="utf-8")
            except OSError as exc:
                issues.append(ConfigIssue(file, lines.get(loc), _dotted(loc), f"cannot read prompt file: {exc.strerror}"))
    if issues:
        raise ConfigFileError(issues)
    return config


def _clean_loc(loc: tuple[Any, ...], lines: dict[Loc, int]) -> Loc:
    """Drop the union-member names pydantic inserts (``function-before[...]``, ``str``) from a path."""
    out: Loc = ()
    for part in loc:
        if isinstance(part, int) or (*out, part) in lines or not _is_pydantic_tag(part):
            out = (*out, part)
    return out


def _is_pydantic_tag(part: str) -> bool:
    return "[" in part or part in {"str", "int", "float", "bool"} or part[:1].isupper()


def load_config(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a configuration file (relative prompt files resolve against its folder)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError([ConfigIssue(str(p), None, "", f"cannot read: {exc.strerror}")]) from None
    return parse_config(text, str(p), env=env, base_dir=p.parent)
