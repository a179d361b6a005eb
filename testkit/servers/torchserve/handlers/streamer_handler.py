"""Streams its answer: for a body `{"n": N, "word": W}` it sends N intermediate
results `W-0\n` … `W-(N-1)\n`, then the final result `done\n` (over HTTP each is one
chunk of a chunked response; over gRPC one StreamPredictions message)."""

import json

from ts.handler_utils.utils import send_intermediate_predict_response


def _request(row):
    body = row.get("data") if row.get("data") is not None else row.get("body")
    if isinstance(body, (bytes, bytearray)):
        body = json.loads(body.decode("utf-8"))
    return int(body.get("n", 3)), str(body.get("word", "part"))


def handle(data, context):
    if data is None:
        return None
    n, word = _request(data[0])
    for i in range(n):
        send_intermediate_predict_response(
            [f"{word}-{i}\n"], context.request_ids, "Intermediate Prediction success", 200, context
        )
    return ["done\n"]
