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
import datetime
import json
import sys

import botocore.auth
import botocore.compat
import botocore.session
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

FIXED = datetime.datetime(2015, 8, 30, 12, 36, 0)


def fixed_now(remove_tzinfo=True):
    if remove_tzinfo:
        return FIXED
    return FIXED.replace(tzinfo=datetime.timezone.utc)


# Every signer in botocore reads the clock through this function.
botocore.auth.get_current_datetime = fixed_now


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


def sign(req):
    creds = Credentials(req["access_key"], req["secret_key"], req.get("token"))
    request = AWSRequest(
        method=req["method"],
        url=req["url"],
        data=bytes.fromhex(req["body_hex"]),
        headers=dict(req["headers"]),
    )
    botocore.auth.SigV4Auth(creds, req["service"], req["region"]).add_auth(request)
    wanted = ("authorization", "x-amz-date", "x-amz-security-token")
    return {"headers": {k.lower(): v for k, v in request.headers.items() if k.lower() in wanted}}


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
