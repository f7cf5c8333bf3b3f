"""Wire-faithful fake upstreams: real HTTP on 127.0.0.1, real SSE framing, real error bodies.

Each fake speaks one provider's wire format and is scripted per test with the provider-neutral
vocabulary in :mod:`tests.fakes.script`. Tests and benchmarks share them.
"""

from .script import Fault, Reply, ToolCallSpec

__all__ = ["Fault", "Reply", "ToolCallSpec"]
