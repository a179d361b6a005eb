"""What the AWS connectors' botocore peers share (connectors/*/tests/support/*.py import it).

Importing it fixes botocore's signing clock at 2015-08-30T12:36:00Z (the time of AWS's SigV4
test suite), so a test can sign the same request at the same time on both sides.

  sign(req)  botocore's SigV4Auth signs a given request:
             {method, url, headers: [[name, value]], body_hex, region, service, access_key,
             secret_key, token?} -> {headers: {authorization, x-amz-date, x-amz-security-token?}}
"""
import datetime

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

FIXED = datetime.datetime(2015, 8, 30, 12, 36, 0)


def fixed_now(remove_tzinfo=True):
    if remove_tzinfo:
        return FIXED
    return FIXED.replace(tzinfo=datetime.timezone.utc)


# Every signer in botocore reads the clock through this function.
botocore.auth.get_current_datetime = fixed_now


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
