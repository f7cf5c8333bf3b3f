"""OpenAI chat completions, and any server that speaks the same API (vLLM, Ollama, proxies).

Point ``base_url`` (``EP_OPENAI_BASE_URL``) at a compatible server; like the official SDK, the base URL
includes ``/v1``. With ``api="responses"`` (config: ``api: responses`` on the provider, a model or a
deployment) calls go to ``/v1/responses`` instead, since some OpenAI models are only served there.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Literal

from ..codecs import openai_chat, openai_embeddings
from ..model import Capabilities, EmbeddingRequest, EmbeddingResponse
from ._http_provider import HTTPProvider
from .http import HttpClient, Timeouts

Api = Literal["chat", "responses"]

# (model-name pattern, capabilities) — first match wins, so specific families come before general ones.
_FAMILIES: list[tuple[re.Pattern[str], Capabilities]] = [
    (re.compile(r"^gpt-5"), Capabilities(vision=True, json_schema=True, reasoning=True,
                                          context_window=400_000, max_output_tokens=128_000)),
    (re.compile(r"^gpt-4\.1"), Capabilities(vision=True, json_schema=True,
                                             context_window=1_047_576, max_output_tokens=32_768)),
    (re.compile(r"^(gpt-4o|chatgpt-4o)"), Capabilities(vision=True, json_schema=True,
                                                        context_window=128_000, max_output_tokens=16_384)),
    (re.compile(r"^o1-mini"), Capabilities(tools=False, parallel_tools=False, json_object=False,
                                           system_prompt=False, reasoning=True,
                                           context_window=128_000, max_output_tokens=65_536)),
    (re.compile(r"^o3-mini"), Capabilities(vision=False, json_schema=True, reasoning=True, parallel_tools=False,
                                           context_window=200_000, max_output_tokens=100_000)),
    (re.compile(r"^o\d"), Capabilities(vision=True, json_schema=True, reasoning=True, parallel_tools=False,
                                       context_window=200_000, max_output_tokens=100_000)),
    (re.compile(r"^gpt-4-turbo|^gpt-4-\d{4}-preview"), Capabilities(vision=True, context_window=128_000,
                                                                     max_output_tokens=4_096)),
    (re.compile(r"^gpt-4(?!\w)"), Capabilities(json_object=False, context_window=8_192, max_output_tokens=8_192)),
    (re.compile(r"^gpt-3\.5"), Capabilities(context_window=16_385, max_output_tokens=4_096)),
]

# Catalogue entries of a known family that are not chat models (audio, realtime, images, fine-tune stubs).
_NOT_CHAT = re.compile(r"audio|realtime|tts|transcribe|image|search|deep-research|instruct|:|^ft|\.ft-")

# Unknown models (new releases, compatible servers): assume they can do it and let the upstream say no.
_PERMISSIVE = Capabilities(vision=True, json_schema=True)


class OpenAIProvider(HTTPProvider):
    name = "openai"
    codec = openai_chat
    default_base_url = "https://api.openai.com/v1"
    key_env_var = "EP_OPENAI_API_KEY"

    @classmethod
    def lists_model(cls, model: str) -> bool:
        if model.startswith("text-embedding-"):
            return True
        return not _NOT_CHAT.search(model) and any(p.search(model) for p, _ in _FAMILIES)

    def __init__(
        self,
        *,
        api: Api | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeouts: Timeouts | None = None,
        http: HttpClient | None = None,
        capabilities: dict[str, Capabilities] | None = None,
        name: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        # Spelled out (not **kwargs): the router passes only the options a constructor names.
        super().__init__(api_key=api_key, base_url=base_url, timeouts=timeouts, http=http,
                         capabilities=capabilities, name=name, extra_headers=extra_headers)
        if api not in (None, "chat", "responses"):
            raise ValueError(f"api must be chat or responses, not {api!r}")
        self.api: Api = api or "chat"

    def codec_for(self, model: str) -> ModuleType:
        if self.api == "responses":
            from ..codecs import openai_responses

            return openai_responses
        return openai_chat

    def url(self, model: str, *, stream: bool) -> str:
        return f"{self.base_url}/responses" if self.api == "responses" else f"{self.base_url}/chat/completions"

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"}

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """``POST {base_url}/embeddings`` (whichever API serves chat): compatible servers have it too."""
        return await self.post_embeddings(
            f"{self.base_url}/embeddings",
            openai_embeddings.encode_request(request),
            lambda body: openai_embeddings.decode_response(body, model=request.model),
        )

    def default_capabilities(self, model: str) -> Capabilities:
        for pattern, caps in _FAMILIES:
            if pattern.search(model):
                return caps.model_copy()
        return _PERMISSIVE.model_copy()
