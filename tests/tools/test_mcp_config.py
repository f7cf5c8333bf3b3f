"""``mcp_servers:`` in the YAML configuration: both transports, env interpolation, errors with lines."""

from __future__ import annotations

import textwrap

import pytest

from execution_platform.config.file import ConfigFileError, parse_config


def problems(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigFileError) as info:
        parse_config(textwrap.dedent(text).lstrip("\n"), "ep.yaml", env={})
    return [(i.line, i.path, i.reason) for i in info.value.issues]


def test_stdio_and_http_servers_load_with_env_interpolation() -> None:
    text = """
    mcp_servers:
      weather:
        command: python
        args: [server.py, --verbose]
        env: {TOKEN: '${WEATHER_TOKEN}'}
        cwd: /srv/weather
      search:
        url: https://mcp.example.com/mcp
        headers: {Authorization: 'Bearer ${SEARCH_KEY:-none}'}
        timeout: 5
    """
    config = parse_config(textwrap.dedent(text), env={"WEATHER_TOKEN": "t-1"})
    weather, search = config.mcp_servers["weather"], config.mcp_servers["search"]
    assert (weather.command, weather.args, weather.env, weather.cwd) == (
        "python", ["server.py", "--verbose"], {"TOKEN": "t-1"}, "/srv/weather"
    )
    assert (search.url, search.headers, search.timeout) == (
        "https://mcp.example.com/mcp", {"Authorization": "Bearer none"}, 5
    )
    assert parse_config("mcp_servers:\n").mcp_servers == {}


def test_bad_servers_are_rejected_with_file_and_line() -> None:
    found = problems("""
        mcp_servers:
          typo:
            command: python
            agrs: [server.py]
          both:
            command: python
            url: http://127.0.0.1:9/mcp
          neither: {}
          mixed:
            url: http://127.0.0.1:9/mcp
            cwd: /tmp
          "bad name":
            command: python
          ftp:
            url: ftp://example.com/mcp
        """)
    assert (4, "mcp_servers.typo.agrs", "unknown key") in found
    assert (5, "mcp_servers.both", "give command (stdio) or url (streamable HTTP), not both") in found
    assert (8, "mcp_servers.neither", "give command (stdio) or url (streamable HTTP), not both") in found
    assert (9, "mcp_servers.mixed", "args, env and cwd apply to stdio servers (command), not to url") in found
    assert [line for line, path, _ in found if path == "mcp_servers.ftp.url"] == [15]
    assert len(found) == 5  # the bad name is reported once the shapes are valid
    [(line, path, reason)] = problems('mcp_servers:\n  "bad name": {command: python}\n')
    assert (line, path) == (2, "mcp_servers.bad name") and "letters, digits" in reason
