"""The tritonclient side of the peer comparison (scripts/bench-peer).

Sends the same requests as connectors/oip/benches/peer.rs (FP32 tensors of
1, 1 000 and 1 000 000 elements to Triton's `identity` model, binary tensor
data over HTTP, and gRPC) through NVIDIA's Python `tritonclient`, at
concurrency 1 and 16 (threads, one client per thread), bounded by count and
time. Prints one `RESULT ...` line per case, in the Rust bench's format.

    python tritonclient_bench.py HTTP_URL GRPC_ADDR [--server mlserver]
    python tritonclient_bench.py --table RESULT_FILE...   # merge into a table

With `--server mlserver` (the MLServer side of the comparison, run from the
mlserver venv, whose tritonclient comes with mlserver) the requests go to
MLServer's `identity` model (`input-0` -> `output-0`) as JSON over HTTP
(MLServer has no binary tensor extension) and as raw contents over gRPC,
with 1, 1 000 and 100 000 elements.
"""

import sys
import threading
import time

SIZES = [(1, 2000), (1_000, 2000), (1_000_000, 100)]
# Per server: model, input, output, binary HTTP tensors, sizes.
PROFILES = {
    "triton": ("identity", "INPUT", "OUTPUT", True, SIZES),
    "mlserver": ("identity", "input-0", "output-0", False, [(1, 2000), (1_000, 2000), (100_000, 50)]),
}
PROFILE = PROFILES["triton"]
CONCURRENCY = [1, 16]
WARMUP = 20
CASE_BUDGET = 20.0


def make_call(wire, http_url, grpc_addr, n):
    """A function sending one request on its own client, checking the answer."""
    import numpy as np

    data = np.arange(n, dtype=np.float32)
    model, in_name, out_name, binary, _ = PROFILE
    if wire == "http":
        import tritonclient.http as tc

        host = http_url.split("://", 1)[-1]
        client = tc.InferenceServerClient(
            url=host, connection_timeout=120.0, network_timeout=120.0
        )

        def call():
            # Encode per request, as inferlink does.
            inp = tc.InferInput(in_name, [n], "FP32")
            inp.set_data_from_numpy(data, binary_data=binary)
            out = tc.InferRequestedOutput(out_name, binary_data=binary)
            r = client.infer(model, [inp], outputs=[out])
            assert r.as_numpy(out_name).shape == (n,)

    else:
        import tritonclient.grpc as tc

        client = tc.InferenceServerClient(url=grpc_addr)

        def call():
            inp = tc.InferInput(in_name, [n], "FP32")
            inp.set_data_from_numpy(data)
            out = tc.InferRequestedOutput(out_name)
            r = client.infer(model, [inp], outputs=[out])
            assert r.as_numpy(out_name).shape == (n,)

    return call


def run_case(wire, http_url, grpc_addr, n, concurrency, count):
    # Each thread builds its own client inside the thread: the HTTP client is
    # gevent-based and cannot be shared across threads.
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "error": None, "start": None}
    ready = threading.Barrier(concurrency + 1)
    go = threading.Event()
    warmup = max(1, min(WARMUP, count) // concurrency)

    def worker():
        try:
            call = make_call(wire, http_url, grpc_addr, n)
            for _ in range(warmup):
                call()
        except Exception as e:
            state["error"] = e
        ready.wait()
        go.wait()
        while True:
            with lock:
                if state["next"] >= count or state["error"]:
                    return
                state["next"] += 1
            if time.perf_counter() - state["start"] > CASE_BUDGET:
                return
            try:
                call()
            except Exception as e:  # reported after the case
                with lock:
                    state["error"] = e
                return
            with lock:
                state["done"] += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    ready.wait()
    state["start"] = time.perf_counter()
    go.set()
    for t in threads:
        t.join()
    if state["error"]:
        raise state["error"]
    return state["done"], time.perf_counter() - state["start"]


def measure(http_url, grpc_addr):
    for wire in ["http", "grpc"]:
        for n, count in PROFILE[4]:
            for c in CONCURRENCY:
                done, secs = run_case(wire, http_url, grpc_addr, n, c, count)
                print(
                    f"RESULT client=tritonclient wire={wire} elements={n} "
                    f"concurrency={c} requests={done} seconds={secs:.3f} "
                    f"rps={done / secs:.1f}",
                    flush=True,
                )


def table(paths):
    rows = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.startswith("RESULT "):
                    continue
                kv = dict(p.split("=", 1) for p in line.split()[1:])
                key = (kv["wire"], int(kv["elements"]), int(kv["concurrency"]))
                rows.setdefault(key, {})[kv["client"]] = kv
    print("| wire | elements | concurrency | tritonclient req/s | inferlink req/s | inferlink / tritonclient |")
    print("|---|---:|---:|---:|---:|---:|")
    for key in sorted(rows):
        r = rows[key]
        t, i = r.get("tritonclient"), r.get("inferlink")
        fmt = lambda x: f"{float(x['rps']):,.1f} ({x['requests']} in {x['seconds']} s)" if x else "—"
        ratio = f"{float(i['rps']) / float(t['rps']):.2f}" if t and i else "—"
        print(f"| {key[0]} | {key[1]:,} | {key[2]} | {fmt(t)} | {fmt(i)} | {ratio} |")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--table":
        table(sys.argv[2:])
    elif len(sys.argv) == 3:
        measure(sys.argv[1], sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[3] == "--server" and sys.argv[4] in PROFILES:
        PROFILE = PROFILES[sys.argv[4]]
        measure(sys.argv[1], sys.argv[2])
    else:
        sys.exit(__doc__)
