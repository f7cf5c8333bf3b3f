"""The YAML configuration: shapes accepted, and every rejection names file, line and reason."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from execution_platform.cli.app import app
from execution_platform.config.file import ConfigFileError, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "personas.yaml"


def problems(text: str, **kw: object) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigFileError) as info:
        parse_config(textwrap.dedent(text).lstrip("\n"), "ep.yaml", **kw)
    return [(i.line, i.path, i.reason) for i in info.value.issues]


def test_spec_shape_loads_with_env_interpolation() -> None:
    text = """
    providers:                 # optional; env vars above configure the same
      openai: {api_key: ${EP_OPENAI_API_KEY}, base_url: http://127.0.0.1:9000/v1}
    deployments:
      - {name: gpt-a, model_name: fast, provider: openai, model: gpt-4o-mini, weight: 2}
      - {name: gpt-b, model_name: fast, provider: openai, model: gpt-4o-mini, weight: 1, base_url: http://127.0.0.1:9001/v1, api_key: ${OTHER_KEY}}
    personas:
      architect:
        targets: [anthropic/claude-sonnet-4-5, openai/gpt-4o, fast]   # tried in order
        requires: [tools]
        system_prompt: You are the architect.
        params: {temperature: 0.2, max_tokens: 2048}
        budget: {usd: 25, period: day}
        limits: {rpm: 60, tpm: 200000}
    """
    config = parse_config(textwrap.dedent(text), env={"EP_OPENAI_API_KEY": "sk-one", "OTHER_KEY": "sk-two"})
    assert config.providers["openai"].api_key == "sk-one"
    assert config.deployment("gpt-b").api_key == "sk-two"
    assert [d.name for d in config.group("fast")] == ["gpt-a", "gpt-b"]
    persona = config.personas["architect"]
    assert [t.target for t in persona.targets] == ["anthropic/claude-sonnet-4-5", "openai/gpt-4o", "fast"]
    assert persona.params.temperature == 0.2 and config.persona_budget("architect").usd == 25
    unset = parse_config(textwrap.dedent(text), env={})
    assert unset.providers["openai"].api_key is None  # "${VAR}" unset: not configured here


def test_env_defaults_and_embedded_unset_variable() -> None:
    config = parse_config("server: {max_body_bytes: '${MAX:-4096}'}\n", env={})
    assert config.server.max_body_bytes == 4096
    assert problems("providers:\n  openai: {base_url: 'http://${HOST}/v1'}\n", env={}) == [
        (2, "providers.openai.base_url", "environment variable HOST is not set (use ${HOST:-default})")
    ]


def test_unknown_keys_and_bad_values_have_lines() -> None:
    found = problems("""
        personas:
          architect:
            targets: [openai/gpt-4o]
            params: {temprature: 0.2}
          writer:
            targets:
              - openai/gpt-4o
              - target: anthropic/claude-sonnet-4-5
                temperature: 7
            requires: [tools, telepathy]
        routing:
          breaker: {failure_threshold: 0}
        """)
    assert (4, "personas.architect.params.temprature", "unknown key") in found
    lines = {path: line for line, path, _ in found}
    assert lines["personas.writer.targets[1].temperature"] == 9
    assert lines["personas.writer.requires[1]"] == 10
    assert lines["routing.breaker.failure_threshold"] == 12
    assert len(found) == 4


def test_cross_references_are_checked_with_lines() -> None:
    found = problems("""
        providers:
          opnai: {}
        deployments:
          - {name: a, provider: openai, model: gpt-4o}
          - {name: a, provider: openai, model: gpt-4o}
        personas:
          p:
            targets: [openai/gpt-4o, nowhere]
            budget: missing
        """)
    assert [(line, path) for line, path, _ in found] == [
        (2, "providers.opnai"), (5, "deployments[1].name"), (8, "personas.p.targets[1]"), (9, "personas.p.budget")
    ]
    assert "unknown provider 'opnai'" in found[0][2]


def test_yaml_syntax_error_and_duplicate_key() -> None:
    [(line, _, reason)] = problems("personas:\n  a:\n    targets: [openai/x\n")
    assert line is not None and reason.startswith("YAML syntax")
    found = problems("personas:\n  a: {targets: [openai/x]}\n  a: {targets: [openai/y]}\n")
    assert found == [(3, "personas.a", "duplicate key")]


def test_prompt_file_is_read_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "arch.md").write_text("You design.")
    path = tmp_path / "ep.yaml"
    path.write_text("personas:\n  a:\n    targets: [openai/gpt-4o]\n    system_prompt_file: prompts/arch.md\n")
    assert load_config(path).personas["a"].system_prompt == "You design."
    path.write_text(path.read_text().replace("arch.md", "missing.md"))
    with pytest.raises(ConfigFileError) as info:
        load_config(path)
    assert info.value.issues[0].line == 4 and "cannot read prompt file" in info.value.issues[0].reason


def test_example_personas_validate() -> None:
    config = load_config(EXAMPLE, env={})
    assert {"architect", "code_writer", "reviewer", "qa_engineer"} <= set(config.personas)
    openai_only = [p for name, p in config.personas.items() if name.endswith("_openai")]
    assert len(openai_only) == 4
    for persona in openai_only:
        assert all(t.target.startswith("openai/") or config.group(t.target) for t in persona.targets)


def test_ep_validate_command(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", "--config", str(EXAMPLE)])
    assert ok.exit_code == 0 and "OK" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("personas:\n  a:\n    targets: [openai/gpt-4o]\n    colour: blue\n")
    result = runner.invoke(app, ["validate", "--config", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:4: personas.a.colour: unknown key" in result.output
