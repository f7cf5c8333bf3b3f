"""What a provider/model can do, so routing can skip targets that cannot serve a request."""

from ._base import CanonicalModel


class Capabilities(CanonicalModel):
    tools: bool = True
    parallel_tools: bool = True
    vision: bool = False
    json_object: bool = True
    json_schema: bool = False
    streaming: bool = True
    system_prompt: bool = True
    reasoning: bool = False
    context_window: int | None = None
    max_output_tokens: int | None = None
