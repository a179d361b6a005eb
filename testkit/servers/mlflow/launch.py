"""Starts `mlflow models serve` on 127.0.0.1 with the `doubler` test model (real-servers.md §5b).

The model is written at every start into DIR/model from doubler_model.py (a pyfunc
"model from code", so nothing is pickled) with a signature that declares one parameter,
`factor` (an integer, default 2). Then this process execs the scoring server, which runs
uvicorn as a child: the launcher script stops the whole process group.

    launch.py --dir DIR --port PORT
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    venv_bin = os.path.dirname(sys.executable)
    # Everything MLflow writes stays inside the instance directory; no tracking server.
    os.environ["MLFLOW_TRACKING_URI"] = "file:" + os.path.join(args.dir, "mlruns")
    # `mlflow models serve` runs `uvicorn` by name: the venv's bin must come first on PATH.
    os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")

    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec

    model_dir = os.path.join(args.dir, "model")
    mlflow.pyfunc.save_model(
        model_dir,
        python_model=os.path.join(HERE, "doubler_model.py"),
        signature=ModelSignature(params=ParamSchema([ParamSpec("factor", "long", 2)])),
        # Listed, not inferred: inference would load the model in a subprocess.
        pip_requirements=[f"mlflow-skinny=={mlflow.__version__}", "pandas"],
    )
    mlflow_cli = os.path.join(venv_bin, "mlflow")
    os.execv(
        mlflow_cli,
        [
            mlflow_cli, "models", "serve",
            "-m", model_dir,
            "--env-manager", "local",
            "-h", "127.0.0.1",
            "-p", str(args.port),
            "-w", "1",
        ],
    )


if __name__ == "__main__":
    main()
