"""Doubles what it gets: numbers doubled, booleans negated, strings upper-cased (ASCII only).

Default envelope: each batch row's JSON body (an array, a scalar, or an object of
arrays) comes back transformed with the same nesting. KServe v2 envelope
(service_envelope=kservev2): each input's data comes back transformed, and the
envelope names the outputs after the inputs. A body that is not JSON raises, which
TorchServe answers with 503 "Prediction failed".
"""

import json


def _transform(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 2
    if isinstance(value, str):
        return "".join(c.upper() if c.isascii() else c for c in value)
    if isinstance(value, list):
        return [_transform(v) for v in value]
    if isinstance(value, dict):
        return {k: _transform(v) for k, v in value.items()}
    raise ValueError(f"cannot double a {type(value).__name__}")


def _payload(row):
    if isinstance(row, dict) and "datatype" in row:
        return row["data"]  # one KServe v2 input, unwrapped by the envelope
    if isinstance(row, dict):
        row = row.get("data") if row.get("data") is not None else row.get("body")
    if isinstance(row, (bytes, bytearray)):
        row = json.loads(row.decode("utf-8"))
    return row


def handle(data, context):
    if data is None:  # the load-time call
        return None
    return [_transform(_payload(row)) for row in data]
