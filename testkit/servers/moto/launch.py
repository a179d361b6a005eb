"""Starts moto's server on 127.0.0.1 with SigV4 verification on (real-servers.md §5a).

moto checks signatures once INITIAL_NO_AUTH_ACTION_COUNT unauthenticated actions are used
up. This launcher spends exactly those on the IAM setup (a user, its access key, a policy
allowing sagemaker:* and s3:*; a second user allowed bedrock:InvokeModel*), writes the key
pairs to DIR/credentials.json, and only then writes DIR/ready: from then on every request
must be signed with one of those keys.

    launch.py --dir DIR --port PORT
"""
import argparse
import json
import os
import signal
import sys
import threading

SETUP_ACTIONS = 6  # create_user, create_access_key, put_user_policy; twice
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_ACTIONS)
os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")

import boto3  # noqa: E402
from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: E402

REGION = "us-east-1"
USER = "inferlink-test"
# May call Bedrock Runtime's InvokeModel (which moto answers with `{}`); USER may not.
BEDROCK_USER = "inferlink-bedrock"


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
                    {"Effect": "Allow", "Action": ["sagemaker:*", "s3:*"], "Resource": "*"}
                ],
            }
        ),
    )
    iam.create_user(UserName=BEDROCK_USER)
    bedrock_key = iam.create_access_key(UserName=BEDROCK_USER)["AccessKey"]
    iam.put_user_policy(
        UserName=BEDROCK_USER,
        PolicyName="bedrock-invoke",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    creds = {
        "bedrock_access_key_id": bedrock_key["AccessKeyId"],
        "bedrock_secret_access_key": bedrock_key["SecretAccessKey"],
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
