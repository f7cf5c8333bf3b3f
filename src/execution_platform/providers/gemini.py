"""Google Gemini through the Generative Language API (v1beta), the API behind Google AI Studio keys.

The key travels in the ``x-goog-api-key`` header, never in the ``?key=`` query parameter Google also
accepts: URLs end up in access logs and error messages, headers do not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from ..codecs import gemini as gemini_codec
from ..codecs import gemini_embeddings
from ..errors import UpstreamServerError
from ..model import Capabilities, ChatRequest, EmbeddingRequest, EmbeddingResponse
from ._http_provider import HTTPProvider

_MILLION = 1_048_576


_THINKING = Capabilities(vision=True, json_schema=True, reasoning=True, context_window=_MILLION, max_output_tokens=65_536)
# First match wins: (test on the lower-cased model name, what that family can do).
_FAMILIES: list[tuple[Callable[[str], bool], Capabilities]] = [
    (lambda n: "embedding" in n, Capabilities(tools=False, parallel_tools=False, json_object=False, streaming=False,
                                              system_prompt=False, context_window=2048)),
    (lambda n: n.startswith("gemini-3"), _THINKING),
    (lambda n: n.startswith("gemini-2.5"), _THINKING),
    (lambda n: n.startswith("gemini-2.0"), Capabilities(vision=True, json_schema=True, context_window=_MILLION,
                                                        max_output_tokens=8_192)),
    (lambda n: n.startswith("gemini-1.5-pro"), Capabilities(vision=True, json_schema=True,
                                                            context_window=2 * _MILLION, max_output_tokens=8_192)),
    (lambda n: n.startswith("gemini-1.5"), Capabilities(vision=True, json_schema=True, context_window=_MILLION,
                                                        max_output_tokens=8_192)),
    (lambda n: n.startswith("gemma"), Capabilities(tools=False, parallel_tools=False, vision=True, json_schema=False,
                                                   system_prompt=False, context_window=131_072,
                                                   max_output_tokens=8_192)),
]
_DEFAULT = Capabilities(vision=True, json_schema=True, context_window=_MILLION)


# Catalogue entries of a known family that generateContent text chat cannot serve.
_NOT_CHAT = ("tts", "image", "live", "robotics", "banana")


class GeminiProvider(HTTPProvider):
    name = "gemini"
    codec = gemini_codec
    default_base_url = "https://generativelanguage.googleapis.com"
    key_env_var = "EP_GEMINI_API_KEY"
    api_version = "v1beta"

    @classmethod
    def lists_model(cls, model: str) -> bool:
        name = model.lower()
        return name.startswith(("gemini-", "gemma-")) and not any(word in name for word in _NOT_CHAT)

    def _model_url(self, model: str) -> str:
        # Accept both "gemini-2.5-flash" and the resource form "models/gemini-2.5-flash".
        name = model.removeprefix("models/")
        return f"{self.base_url}/{self.api_version}/models/{quote(name, safe='.-_')}"

    def url(self, model: str, *, stream: bool) -> str:
        base = self._model_url(model)
        return f"{base}:streamGenerateContent?alt=sse" if stream else f"{base}:generateContent"

    async def count_tokens(self, request: ChatRequest) -> int:
        """Google's own count (``:countTokens``, free); the whole request goes along, so the system
        instruction and tools are counted too, not just ``contents``."""
        name = request.model.removeprefix("models/")
        body: dict[str, Any] = {"model": f"models/{name}", **self.body(request, stream=False)}
        payload = {"generateContentRequest": body}
        data = await self.post_json(f"{self._model_url(name)}:countTokens", payload, what="token count")
        try:
            return int(data["totalTokens"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamServerError(f"{self.name}: unexpected token count answer", provider=self.name) from exc

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """``:batchEmbedContents`` for any number of texts; its answer has no token count."""
        return await self.post_embeddings(
            f"{self._model_url(request.model)}:batchEmbedContents",
            gemini_embeddings.encode_request(request),
            lambda body: gemini_embeddings.decode_response(body, model=request.model),
        )

    def headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.api_key or ""}

    def default_capabilities(self, model: str) -> Capabilities:
        """What each Gemini family can do, from Google's model pages (overridable per deployment)."""
        name = model.removeprefix("models/").lower()
        for match, caps in _FAMILIES:
            if match(name):
                return caps.model_copy()
        return _DEFAULT.model_copy()
