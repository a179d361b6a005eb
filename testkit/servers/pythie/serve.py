"""Starts pythie-serving (a TF-Serving-compatible gRPC server) on 127.0.0.1 for inferlink's tests.

pythie-serving implements tensorflow.serving.PredictionService/Predict only (no REST, no
GetModelMetadata, no ModelService). Its dependency-free platform is `table`: a CSV lookup
from feature values to an integer target. This launcher writes the test models into the
instance directory at start (so nothing but the venv is provisioned ahead), binds the
gRPC port to loopback (pythie hard-codes [::]), and runs the server:

  doubler  feature x (int)  -> predictions = 2 * x, for x in -1000..1000
  length   feature s (str)  -> predictions = byte length of s, for s in word-0 .. word-99
  sum      features a, b (int) -> predictions = a + b, for a, b in 0..19

Every input is a [n, 1] tensor; the output `predictions` is [n] (INT32 when it fits, as
pythie downcasts), sent as tensor_content.
"""

import argparse
import csv
import json
import os
import sys

import grpc._server


def write_model(root, name, features, types, rows):
    base = os.path.join(root, "models", name)
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, name + ".csv"), "w", newline="", encoding="ascii") as f:
        w = csv.writer(f)
        w.writerow(features + ["y"])
        w.writerows(rows)
    meta = {"feature_names": features, "target_name": "y", "data_type": dict(types, y="int")}
    with open(os.path.join(base, "metadata.json"), "w", encoding="ascii") as f:
        json.dump(meta, f)
    return base


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--grpc-port", type=int, required=True)
    args = ap.parse_args()

    configs = []
    models = [
        ("doubler", ["x"], {"x": "int"}, [[x, 2 * x] for x in range(-1000, 1001)]),
        ("length", ["s"], {"s": "str"}, [[f"word-{i}", len(f"word-{i}")] for i in range(100)]),
        ("sum", ["a", "b"], {"a": "int", "b": "int"}, [[a, b, a + b] for a in range(20) for b in range(20)]),
    ]
    for name, features, types, rows in models:
        base = write_model(args.dir, name, features, types, rows)
        configs.append(f'  config {{ name: "{name}" base_path: "{base}" model_platform: "table" }}')
    config_path = os.path.join(args.dir, "models.config")
    with open(config_path, "w", encoding="ascii") as f:
        f.write("model_config_list {\n" + "\n".join(configs) + "\n}\n")

    # pythie binds "[::]:PORT"; serve on loopback only.
    original = grpc._server._Server.add_insecure_port

    def loopback_only(self, address):
        port = address.rsplit(":", 1)[1]
        return original(self, f"127.0.0.1:{port}")

    grpc._server._Server.add_insecure_port = loopback_only

    from pythie_serving.run import run

    sys.argv = ["pythie-serving", config_path, "--port", str(args.grpc_port),
                "--worker-count", "2", "--maximum-concurrent-rpcs", "-1"]
    run()


if __name__ == "__main__":
    main()
