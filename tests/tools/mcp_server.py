"""Source of a small stdio MCP server (official ``mcp`` package), written to a file by the tests."""

import textwrap

SERVER_SOURCE = textwrap.dedent(
    '''
    import os

    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("weather")


    @server.tool()
    def temperature(city: str) -> int:
        """Current temperature in Celsius."""
        return {"Oslo": 4, "Paris": 15}[city]


    @server.tool()
    def fail(reason: str) -> str:
        """Always fails, deliberately, with the given reason."""
        raise ToolError(reason)


    @server.tool()
    def env_probe(name: str) -> str:
        """An environment variable as the server sees it."""
        return os.environ.get(name, "<unset>")


    if __name__ == "__main__":
        server.run()
    '''
)
