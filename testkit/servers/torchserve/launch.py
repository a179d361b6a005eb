"""Starts TorchServe 0.12 on 127.0.0.1 for inferlink's tests (run by `scripts/servers start`).

Inside the instance directory it:
  1. builds the model archives from handlers/ with torch-model-archiver
     (doubler 1.0, doubler 2.0 as doubler_v2.mar, streamer 1.0);
  2. picks two more free loopback ports (management, gRPC management) and writes
     them, with the key file's path, to `extra` (key=value lines the script prints);
  3. writes config.properties (token authorization ON, the default);
  4. runs `torchserve --foreground` with the torch stub on PYTHONPATH, and on SIGTERM
     stops TorchServe's whole process group (launcher, Java frontend, Python workers).

Modes: `--mode plain` (default envelope, model API enabled, models doubler and
streamer) and `--mode kservev2` (service_envelope=kservev2, model API disabled, so
register answers 405; model doubler only).
"""

import argparse
import os
import signal
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def archive(venv_bin, store, tmp, name, version, handler, export_name=None):
    """Builds NAME.mar (or EXPORT_NAME.mar holding model NAME, for a second version).

    torch-model-archiver stages files in $TMPDIR/NAME, removing it first; with
    the shared /tmp two servers launched at once collide there, so each launch
    gets its own TMPDIR.
    """
    target = store if export_name is None else os.path.join(store, ".tmp-" + export_name)
    os.makedirs(target, exist_ok=True)
    env = dict(os.environ)
    env["TMPDIR"] = tmp
    subprocess.run(
        [
            os.path.join(venv_bin, "torch-model-archiver"),
            "--model-name", name,
            "--version", version,
            "--handler", os.path.join(HERE, "handlers", handler),
            "--export-path", target,
            "--force",
        ],
        check=True,
        env=env,
    )
    if export_name is not None:
        os.replace(os.path.join(target, name + ".mar"), os.path.join(store, export_name + ".mar"))
        os.rmdir(target)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--grpc-port", type=int, required=True)
    ap.add_argument("--metrics-port", type=int, required=True)
    ap.add_argument("--mode", choices=["plain", "kservev2"], default="plain")
    args = ap.parse_args()

    venv_bin = os.path.dirname(sys.executable)
    store = os.path.join(args.dir, "model-store")
    os.makedirs(store, exist_ok=True)
    tmp = os.path.join(args.dir, "tmp")
    os.makedirs(tmp, exist_ok=True)
    archive(venv_bin, store, tmp, "doubler", "1.0", "doubler_handler.py")
    if args.mode == "plain":
        archive(venv_bin, store, tmp, "doubler", "2.0", "doubler_handler.py", export_name="doubler_v2")
        archive(venv_bin, store, tmp, "streamer", "1.0", "streamer_handler.py")
        models = "doubler=doubler.mar,streamer=streamer.mar"
    else:
        models = "doubler=doubler.mar"

    management, grpc_management = free_ports(2)
    key_file = os.path.join(args.dir, "key_file.json")
    with open(os.path.join(args.dir, "extra"), "w") as f:
        f.write(f"management_port={management}\n")
        f.write(f"management_url=http://127.0.0.1:{management}\n")
        f.write(f"grpc_management_port={grpc_management}\n")
        f.write(f"key_file={key_file}\n")
        f.write(f"mode={args.mode}\n")

    lines = [
        f"inference_address=http://127.0.0.1:{args.http_port}",
        f"management_address=http://127.0.0.1:{management}",
        f"metrics_address=http://127.0.0.1:{args.metrics_port}",
        "grpc_inference_address=127.0.0.1",
        "grpc_management_address=127.0.0.1",
        f"grpc_inference_port={args.grpc_port}",
        f"grpc_management_port={grpc_management}",
        "default_workers_per_model=1",
        f"model_store={store}",
        f"load_models={models}",
        "enable_envvars_config=false",
        "disable_system_metrics=true",
        "vmargs=-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1",
    ]
    if args.mode == "plain":
        lines.append("enable_model_api=true")
    else:
        lines.append("service_envelope=kservev2")
    config = os.path.join(args.dir, "config.properties")
    with open(config, "w") as f:
        f.write("\n".join(lines) + "\n")

    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(HERE, "torchstub") + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    logs = os.path.join(args.dir, "logs")
    os.makedirs(logs, exist_ok=True)
    env["TEMP"] = tmp
    env["TMPDIR"] = tmp
    env["LOG_LOCATION"] = logs
    env["METRICS_LOCATION"] = logs
    child = subprocess.Popen(
        [
            os.path.join(venv_bin, "torchserve"),
            "--foreground",
            "--ts-config", config,
            "--model-store", store,
            "--ncs",
        ],
        cwd=args.dir,  # key_file.json is written to the working directory
        env=env,
    )

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # The Java frontend and the Python workers share our process group.
        os.killpg(os.getpgid(0), signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.exit(child.wait())


if __name__ == "__main__":
    main()
