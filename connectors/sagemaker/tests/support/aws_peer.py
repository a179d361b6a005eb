"""botocore (and moto's event-stream encoder) as the peer of inferlink-sagemaker's tests.

Run with the `moto` venv's interpreter: `python aws_peer.py COMMAND`, a JSON request on
stdin, a JSON answer on stdout.

  client        botocore's real sagemaker-runtime client performs one operation against
                `endpoint_url` (the tests' recording server) at the fixed time
                2015-08-30T12:36:00Z: {endpoint_url, region, access_key, secret_key,
                token?, operation, params}
  sign          botocore's SigV4Auth signs a given request at the fixed time:
                {method, url, headers: [[name, value]], body_hex, region, service,
                access_key, secret_key, token?} -> {headers: {name: value}}
  decode        botocore's EventStreamBuffer parses bytes: {hex} ->
                {messages: [{headers, payload_hex}]} or {error: <exception class>}
  encode        moto's EventStreamEncoder writes messages:
                {messages: [{headers: {name: str|int|bool}, payload_hex}]} -> {hex}
"""
import json
import os
import sys

# The shared part of the AWS peers (botocore's fixed signing clock, `sign`).
sys.path.insert(
    0,
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../../testkit/servers/moto"),
)
from botocore_peer_common import sign  # noqa: E402

import botocore.auth
import botocore.compat
import botocore.session
from botocore.config import Config
from botocore.eventstream import EventStreamBuffer



def client_call(req):
    session = botocore.session.get_session()
    client = session.create_client(
        "sagemaker-runtime",
        region_name=req["region"],
        endpoint_url=req["endpoint_url"],
        aws_access_key_id=req["access_key"],
        aws_secret_access_key=req["secret_key"],
        aws_session_token=req.get("token"),
        config=Config(retries={"max_attempts": 1}),
    )
    params = dict(req["params"])
    if "Body" in params:
        params["Body"] = params["Body"].encode("utf-8")
    op = getattr(client, req["operation"])
    try:
        op(**params)
        return {"ok": True}
    except Exception as e:  # the recording server's answer need not fit the model
        return {"ok": False, "error": type(e).__name__}


def decode(req):
    buf = EventStreamBuffer()
    buf.add_data(bytes.fromhex(req["hex"]))
    out = []
    try:
        for message in buf:
            headers = {}
            for k, v in message.headers.items():
                headers[k] = v.hex() if isinstance(v, (bytes, bytearray)) else v
            out.append({"headers": headers, "payload_hex": message.payload.hex()})
    except Exception as e:
        return {"error": type(e).__name__, "messages": out}
    return {"messages": out}


def encode(req):
    from moto.core.eventstream import EventStreamEncoder

    enc = EventStreamEncoder()
    data = b"".join(
        enc.encode_message(m["headers"], bytes.fromhex(m["payload_hex"])) for m in req["messages"]
    )
    return {"hex": data.hex()}


def main():
    command = sys.argv[1]
    req = json.load(sys.stdin)
    handlers = {"client": client_call, "sign": sign, "decode": decode, "encode": encode}
    json.dump(handlers[command](req), sys.stdout)


if __name__ == "__main__":
    main()
