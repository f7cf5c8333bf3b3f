"""The embeddings wires (OpenAI ``/v1/embeddings``, Gemini ``embedContent``/``batchEmbedContents``):
what one side encodes, the other decodes to the same canonical call, in both directions."""

from __future__ import annotations

import pytest

from execution_platform.codecs import gemini_embeddings, openai_embeddings
from execution_platform.errors import InvalidRequestError
from execution_platform.model import EmbeddingRequest, EmbeddingResponse, Usage

# Exactly representable in float32, so base64 (float32) round trips compare equal.
VECTORS = [[0.5, -0.25, 0.125], [1.0, 0.0, -0.75]]


def test_openai_request_round_trip() -> None:
    served = openai_embeddings.decode_request(
        {"model": "openai/text-embedding-3-small", "input": ["a", "b"], "dimensions": 3, "encoding_format": "base64"}
    )
    assert served == EmbeddingRequest(model="openai/text-embedding-3-small", inputs=["a", "b"], dimensions=3)
    upstream = openai_embeddings.encode_request(served.model_copy(update={"model": "text-embedding-3-small"}))
    assert upstream == {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "float",
                        "dimensions": 3}
    assert openai_embeddings.decode_request(upstream).inputs == ["a", "b"]
    single = openai_embeddings.decode_request({"model": "m", "input": "one"})
    assert (single.inputs, single.dimensions) == (["one"], None)


@pytest.mark.parametrize("base64", [False, True])
def test_openai_response_round_trip(base64: bool) -> None:
    response = EmbeddingResponse(vectors=VECTORS, model="text-embedding-3-small", usage=Usage(input_tokens=7))
    wire = openai_embeddings.encode_response(response, base64=base64)
    assert [row["index"] for row in wire["data"]] == [0, 1]
    assert all(isinstance(row["embedding"], str) == base64 for row in wire["data"])
    assert wire["usage"] == {"prompt_tokens": 7, "total_tokens": 7}
    wire["data"].reverse()  # an upstream may answer out of order: the index puts rows back
    assert openai_embeddings.decode_response(wire) == response


def test_openai_wants_base64_only_when_asked() -> None:
    assert openai_embeddings.wants_base64({"encoding_format": "base64"})
    assert not openai_embeddings.wants_base64({"encoding_format": "float"})
    assert not openai_embeddings.wants_base64({})


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": ["a", 1]}, "input"),
        ({"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "m", "input": "x", "dimensions": True}, "dimensions"),
        ({"model": "m", "input": "x", "dimensions": openai_embeddings.MAX_DIMENSIONS + 1}, "dimensions"),
        ({"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format"),
    ],
)
def test_openai_bad_requests_name_the_parameter(body: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        openai_embeddings.decode_request(body)
    assert caught.value.param == param


def test_gemini_request_round_trip() -> None:
    request = EmbeddingRequest(model="gemini-embedding-001", inputs=["a", "b c"], dimensions=4)
    upstream = gemini_embeddings.encode_request(request)
    assert upstream["requests"][0] == {"model": "models/gemini-embedding-001", "outputDimensionality": 4,
                                       "content": {"parts": [{"text": "a"}]}}
    assert gemini_embeddings.decode_request(upstream, model="gemini-embedding-001", batch=True) == request
    one = gemini_embeddings.decode_request(
        {"content": {"parts": [{"text": "hel"}, {"text": "lo"}]}}, model="openai/text-embedding-3-small"
    )
    assert one == EmbeddingRequest(model="openai/text-embedding-3-small", inputs=["hello"])


@pytest.mark.parametrize("batch", [False, True])
def test_gemini_response_round_trip(batch: bool) -> None:
    vectors = VECTORS if batch else VECTORS[:1]
    response = EmbeddingResponse(vectors=vectors, model="gemini-embedding-001")
    wire = gemini_embeddings.encode_response(response, batch=batch)
    assert ("embeddings" in wire) == batch and ("embedding" in wire) != batch
    decoded = gemini_embeddings.decode_response(wire, model="gemini-embedding-001")
    assert decoded == response and decoded.usage.input_tokens == 0  # Google reports no count


@pytest.mark.parametrize(
    ("body", "batch", "param"),
    [
        ({"requests": []}, True, "requests"),
        ({"content": "text"}, False, "content"),
        ({"requests": [{"content": {"parts": []}, "outputDimensionality": 4},
                       {"content": {"parts": []}, "outputDimensionality": 5}]}, True, "requests"),
        ({"content": {"parts": []}, "outputDimensionality": -1}, False, "outputDimensionality"),
    ],
)
def test_gemini_bad_requests_name_the_parameter(body: dict[str, object], batch: bool, param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        gemini_embeddings.decode_request(body, model="m", batch=batch)
    assert caught.value.param == param
