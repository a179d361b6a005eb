"""botocore, the AWS SDK for Python, as the peer of inferlink-bedrock's tests.

Run with the `moto` venv's interpreter (botocore is installed there):
`python bedrock_peer.py COMMAND`, a JSON request on stdin, a JSON answer on stdout.

  call   botocore's own client for `service` (bedrock-runtime, bedrock-agent-runtime)
         performs `operation` with `params` against `endpoint_url` (the tests' recording
         server) at the fixed time 2015-08-30T12:36:00Z, retries off, signed with the
         given keys, or with `bearer` as a Bedrock API key (AWS_BEARER_TOKEN_BEDROCK):
         {service, operation, params, endpoint_url, region, access_key?, secret_key?,
         token?, bearer?} -> {ok: true, result} with botocore's parsed output (bytes as
         {"hex": ...}, event streams read to their end as a list of events) or
         {ok: false, error: <exception class>, code: <error code>, events: [...]}.
         botocore validates `params` against its service model before sending, so a
         body inferlink writes with a wrong field name or type fails here.
  sign   botocore's SigV4Auth signs a given request at the fixed time:
         {method, url, headers: [[name, value]], body_hex, region, service, access_key,
         secret_key, token?} -> {headers: {name: value}}
"""
import datetime
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
import botocore.session
from botocore.config import Config


_bearer_add_auth = botocore.auth.BearerAuth.add_auth


def _bearer_on_loopback(self, request):
    """botocore sends a bearer token only over HTTPS; the tests' recording server is
    plain HTTP on 127.0.0.1, so botocore's own BearerAuth runs as if the URL were
    https and the URL is put back."""
    url = request.url
    if not url.startswith("http://127.0.0.1:"):
        return _bearer_add_auth(self, request)
    request.url = "https://" + url[len("http://"):]
    try:
        return _bearer_add_auth(self, request)
    finally:
        request.url = url


botocore.auth.BearerAuth.add_auth = _bearer_on_loopback


def plain(value):
    """botocore's parsed output as JSON."""
    if isinstance(value, (bytes, bytearray)):
        return {"hex": bytes(value).hex()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if hasattr(value, "read"):
        return {"hex": value.read().hex()}
    if hasattr(value, "__iter__") and not isinstance(value, str):
        return [plain(v) for v in value]
    return value


def call(req):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    if req.get("bearer"):
        env["AWS_BEARER_TOKEN_BEDROCK"] = req["bearer"]
    os.environ.clear()
    os.environ.update(env)
    session = botocore.session.get_session()
    kwargs = {}
    if req.get("access_key"):
        kwargs = dict(
            aws_access_key_id=req["access_key"],
            aws_secret_access_key=req["secret_key"],
            aws_session_token=req.get("token"),
        )
    client = session.create_client(
        req["service"],
        region_name=req["region"],
        endpoint_url=req["endpoint_url"],
        config=Config(retries={"max_attempts": 1}),
        **kwargs,
    )
    params = dict(req["params"])
    if "body_text" in params:
        params["body"] = params.pop("body_text").encode("utf-8")
    events = []
    try:
        result = getattr(client, req["operation"])(**params)
        for key in ("stream", "body"):
            stream = result.get(key)
            if stream is not None and hasattr(stream, "__iter__") and not isinstance(
                stream, (bytes, str, dict)
            ) and not hasattr(stream, "read"):
                for event in stream:
                    events.append(plain(event))
                result[key] = events
        return {"ok": True, "result": plain(result)}
    except Exception as e:  # botocore's exceptions carry the parsed error
        response = getattr(e, "response", None) or {}
        code = response.get("Error", {}).get("Code")
        return {"ok": False, "error": type(e).__name__, "code": code, "events": events,
                "message": str(e)[:500]}


def main():
    command = sys.argv[1]
    req = json.load(sys.stdin)
    handlers = {"call": call, "sign": sign}
    json.dump(handlers[command](req), sys.stdout)


if __name__ == "__main__":
    main()
