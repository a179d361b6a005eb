"""Seldon MLServer (1.7.1) with inferlink's test models, on 127.0.0.1 only.

Started by `scripts/servers start mlserver`. Writes a model repository under --dir
(settings with the ports and host 127.0.0.1, one folder per model, a freshly trained
scikit-learn model) and runs `mlserver start` on it in this process. Models
(docs/testing.md): doubler and identity (inferlink_runtime.py) and tiny-sklearn, a
LogisticRegression on 8 points (FP64 [n, 2] -> INT64 class 0 or 1).
"""

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write_json(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")


def train_sklearn(path):
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.array([[0, 0], [0, 1], [1, 0], [0.5, 0.5], [3, 3], [2, 3], [3, 2], [2.5, 2.5]], dtype=np.float64)
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    joblib.dump(LogisticRegression().fit(x, y), path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--grpc-port", type=int, required=True)
    ap.add_argument("--metrics-port", type=int, required=True)
    args = ap.parse_args()

    base = Path(args.dir).resolve()
    repo = base / "repo"
    write_json(
        repo / "settings.json",
        {
            "debug": False,
            "host": "127.0.0.1",
            "http_port": args.http_port,
            "grpc_port": args.grpc_port,
            "metrics_port": args.metrics_port,
            # One process: no worker pool (the machine has 2 cores).
            "parallel_workers": 0,
            # Default gRPC limit is 4 MiB; tests send 1M-element FP32 tensors.
            "grpc_max_message_length": 64 * 1024 * 1024,
            "metrics_dir": str(base / "metrics"),
            "environments_dir": str(base / "envs"),
            "load_models_at_startup": True,
        },
    )
    fp32 = [{"name": "input-0", "datatype": "FP32", "shape": [-1]}]
    fp32_out = [{"name": "output-0", "datatype": "FP32", "shape": [-1]}]
    for name, impl in (("doubler", "Doubler"), ("identity", "Identity")):
        write_json(
            repo / name / "model-settings.json",
            {"name": name, "implementation": f"inferlink_runtime.{impl}", "inputs": fp32, "outputs": fp32_out},
        )
    (repo / "tiny-sklearn").mkdir(parents=True, exist_ok=True)
    train_sklearn(repo / "tiny-sklearn" / "model.joblib")
    write_json(
        repo / "tiny-sklearn" / "model-settings.json",
        {
            "name": "tiny-sklearn",
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "v1"},
        },
    )

    sys.path.insert(0, str(HERE))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    os.chdir(base)
    from mlserver.cli.main import main as mlserver_main

    sys.argv = ["mlserver", "start", str(repo)]
    return mlserver_main()


if __name__ == "__main__":
    sys.exit(main())
