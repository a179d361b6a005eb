"""Starts moto's server on 127.0.0.1 with SigV4 verification on (real-servers.md §5a).

moto checks signatures once INITIAL_NO_AUTH_ACTION_COUNT unauthenticated actions are used
up. This launcher spends exactly those on the IAM setup (a user, its access key, a policy
allowing sagemaker:*, s3:* and sts:*; a role `inferlink-role` any principal may assume, with
a policy allowing sagemaker:* and bedrock:*), writes the key pair and the role's ARN to
DIR/credentials.json, and only then writes DIR/ready: from then on every request must be
signed with that key or with credentials STS issued for the role.

One change to moto's checks, to match AWS: `AssumeRoleWithWebIdentity` is an unsigned call
(the OIDC token is the caller's proof), so it is let through without a signature; moto's
auth mode otherwise fails on it for want of an Authorization header.

    launch.py --dir DIR --port PORT
"""
import argparse
import json
import os
import signal
import sys
import threading

SETUP_ACTIONS = 5  # create_user, create_access_key, put_user_policy, create_role, put_role_policy
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_ACTIONS)
os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")

import boto3  # noqa: E402
from moto.core.authorization import ActionAuthenticatorMixin  # noqa: E402
from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: E402

UNSIGNED_ACTIONS = ("AssumeRoleWithWebIdentity",)
_checked_action = ActionAuthenticatorMixin._authenticate_and_authorize_action


def _check_unless_unsigned(self, iam_request_cls, resource="*"):
    if self._get_action() in UNSIGNED_ACTIONS and not self.headers.get("Authorization"):
        return None
    return _checked_action(self, iam_request_cls, resource)


ActionAuthenticatorMixin._authenticate_and_authorize_action = _check_unless_unsigned

REGION = "us-east-1"
USER = "inferlink-test"
ROLE = "inferlink-role"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    iam = boto3.client(
        "iam",
        region_name=REGION,
        endpoint_url=f"http://127.0.0.1:{args.port}",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    iam.create_user(UserName=USER)
    key = iam.create_access_key(UserName=USER)["AccessKey"]
    iam.put_user_policy(
        UserName=USER,
        PolicyName="invoke",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": ["sagemaker:*", "s3:*", "sts:*"], "Resource": "*"}
                ],
            }
        ),
    )
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.put_role_policy(
        RoleName=ROLE,
        PolicyName="invoke",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": ["sagemaker:*", "bedrock:*"], "Resource": "*"}
                ],
            }
        ),
    )
    creds = {
        "role_arn": role["Arn"],
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
        "region": REGION,
        "account_id": "123456789012",
    }
    path = os.path.join(args.dir, "credentials.json")
    with open(path + ".tmp", "w") as f:
        json.dump(creds, f)
    os.replace(path + ".tmp", path)
    with open(os.path.join(args.dir, "ready"), "w") as f:
        f.write("ready\n")
    print(f"moto ready on 127.0.0.1:{args.port}, signatures verified", flush=True)
    stop.wait()
    server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
