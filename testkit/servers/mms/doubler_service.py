"""The test model of the `mms` server kind (multi-model-server, SageMaker container protocol).

A JSON body {"instances": X} or {"inputs": X} is answered with {"predictions": doubled X}:
numbers doubled, booleans negated, strings upper-cased in ASCII only (the conformance
suite's `Double` transform). {"fail": "<message>"} raises, so the server answers with its
handler-failure error. Any other body (CSV, bytes) is echoed with its content type.
"""
import json


def _double(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 2
    if isinstance(value, str):
        return "".join(c.upper() if c.isascii() else c for c in value)
    if isinstance(value, list):
        return [_double(v) for v in value]
    if isinstance(value, dict):
        return {k: _double(v) for k, v in value.items()}
    return value


def handle(data, context):
    if data is None:
        return None
    out = []
    for i, item in enumerate(data):
        body = item.get("body") if isinstance(item, dict) else item
        if body is None and isinstance(item, dict):
            body = item.get("data")
        raw = bytes(body) if isinstance(body, (bytes, bytearray)) else body
        try:
            request = json.loads(raw) if isinstance(raw, (bytes, str)) else raw
        except ValueError:
            request = None
        if isinstance(request, dict) and "fail" in request:
            raise ValueError(str(request["fail"]))
        if isinstance(request, dict) and ("instances" in request or "inputs" in request):
            key = "instances" if "instances" in request else "inputs"
            context.set_response_content_type(i, "application/json")
            out.append(json.dumps({"predictions": _double(request[key])}))
        else:
            # MMS matches header names case-sensitively; HTTP/1.1 clients differ in case.
            content_type = (
                context.get_request_header(i, "Content-Type")
                or context.get_request_header(i, "content-type")
                or "application/octet-stream"
            )
            context.set_response_content_type(i, content_type)
            out.append(raw if raw is not None else b"")
    return out
