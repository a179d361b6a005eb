"""The Seldon Core v1 python microservice (seldon-core 1.18.2) on 127.0.0.1 only.

Started by `scripts/servers start seldon-core`. seldon-core hard-codes 0.0.0.0 (and "" for
the gRPC port reservation) in `seldon_core/microservice.py` (real-servers.md 3b). Rather
than editing the cached venv, this launcher loads that module's source, rewrites those
bind addresses to 127.0.0.1, checks every rewrite happened, and runs its `main()` with
the model class `Doubler` (Doubler.py beside this file). The REST server (gunicorn), the
metrics server and the gRPC worker all stay in this process group.
"""

import argparse
import importlib.util
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (old, new, how many times it must occur) in seldon_core/microservice.py.
REWRITES = [
    ('"0.0.0.0"', '"127.0.0.1"', 4),
    ('"0.0.0.0:{}"', '"127.0.0.1:{}"', 1),
    ('sock.bind(("", grpc_port))', 'sock.bind(("127.0.0.1", grpc_port))', 1),
]


def loopback_microservice():
    spec = importlib.util.find_spec("seldon_core.microservice")
    source = Path(spec.origin).read_text()
    for old, new, count in REWRITES:
        found = source.count(old)
        if found != count:
            sys.exit(f"launch.py: expected {count} x {old!r} in {spec.origin}, found {found}; "
                     "the seldon-core version changed, update REWRITES")
        source = source.replace(old, new)
    if "0.0.0.0" in source:
        sys.exit(f"launch.py: {spec.origin} still binds 0.0.0.0 somewhere")
    module = importlib.util.module_from_spec(spec)
    sys.modules["seldon_core.microservice"] = module
    exec(compile(source, spec.origin, "exec"), module.__dict__)
    return module


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--grpc-port", type=int, required=True)
    ap.add_argument("--metrics-port", type=int, required=True)
    args = ap.parse_args()

    os.chdir(args.dir)
    sys.path.insert(0, str(HERE))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    # Prometheus multiprocess files of this instance stay in its directory.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(Path(args.dir) / "metrics"))
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
    microservice = loopback_microservice()
    sys.argv = [
        "seldon-core-microservice", "Doubler",
        "--service-type", "MODEL",
        "--http-port", str(args.http_port),
        "--grpc-port", str(args.grpc_port),
        "--metrics-port", str(args.metrics_port),
        "--workers", "1",
        "--threads", "4",
    ]
    return microservice.main()


if __name__ == "__main__":
    sys.exit(main())
