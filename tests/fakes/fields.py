"""The request fields each real API accepts, and its exact 400 for any other.

Real upstreams refuse what they do not know: OpenAI and Anthropic with an invalid_request_error,
Google with its protobuf JSON parser's "Unknown name" message. The fakes apply these lists so that a
gateway leaking one provider's parameter into another's body fails in the tests the way it would in
production. Lists follow each provider's published API reference (chat completions create, messages
create, GenerateContentRequest + GenerationConfig).
"""

from __future__ import annotations

import re
from typing import Any

OPENAI_CHAT = frozenset({
    "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls", "prediction",
    "presence_penalty", "prompt_cache_key", "prompt_cache_retention", "reasoning_effort", "response_format",
    "safety_identifier", "seed", "service_tier", "stop", "store", "stream", "stream_options", "temperature",
    "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
})

ANTHROPIC_MESSAGES = frozenset({
    "model", "messages", "max_tokens", "container", "context_management", "mcp_servers", "metadata",
    "output_config", "output_format", "service_tier", "stop_sequences", "stream", "system", "temperature",
    "thinking", "tool_choice", "tools", "top_k", "top_p", "inference_geo",
})

# Google's JSON parser accepts lowerCamel and snake_case spellings of every proto field.
GEMINI_REQUEST = frozenset({
    "model", "contents", "tools", "tool_config", "safety_settings", "system_instruction", "generation_config",
    "cached_content", "labels",
})
GEMINI_GENERATION_CONFIG = frozenset({
    "stop_sequences", "response_mime_type", "response_schema", "response_json_schema", "_response_json_schema",
    "response_modalities", "candidate_count", "max_output_tokens", "temperature", "top_p", "top_k", "seed",
    "presence_penalty", "frequency_penalty", "response_logprobs", "logprobs", "enable_enhanced_civic_answers",
    "speech_config", "thinking_config", "image_config", "media_resolution",
})


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def openai_error(body: dict[str, Any]) -> dict[str, Any] | None:
    """OpenAI's answer to the first unknown top-level field, or None when every field is known."""
    for name in body:
        if name not in OPENAI_CHAT:
            message = f"Unrecognized request argument supplied: {name}"
            return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return None


def anthropic_error(body: dict[str, Any]) -> dict[str, Any] | None:
    for name in body:
        if name not in ANTHROPIC_MESSAGES:
            message = f"{name}: Extra inputs are not permitted"
            return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    return None


def gemini_error(body: dict[str, Any]) -> dict[str, Any] | None:
    violations: list[dict[str, str]] = []
    for name in body:
        if _snake(name) not in GEMINI_REQUEST:
            violations.append({"description": f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'})
    config = body.get("generationConfig", body.get("generation_config"))
    for name in config if isinstance(config, dict) else ():
        if _snake(name) not in GEMINI_GENERATION_CONFIG:
            text = f"Invalid JSON payload received. Unknown name \"{name}\" at 'generation_config': Cannot find field."
            violations.append({"field": "generation_config", "description": text})
    if not violations:
        return None
    return {
        "error": {
            "code": 400,
            "message": "\n".join(v["description"] for v in violations),
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}],
        }
    }
