"""Wire codecs: one module per wire format, each converting canonical ⇄ wire in both directions.

Every codec module exposes the same functions (see :mod:`execution_platform.codecs.base`):

* ``encode_request(req, *, stream) -> dict`` / ``decode_request(body) -> ChatRequest``
* ``encode_response(resp) -> dict`` / ``decode_response(body) -> ChatResponse``
* ``StreamDecoder`` (wire SSE events → canonical events) / ``StreamEncoder`` (canonical → SSE bytes)
* ``decode_error(status, body, headers) -> EPError`` / ``encode_error(err) -> (status, dict)``

Provider adapters use the encode-request / decode-response half; the gateway the other half.
"""
