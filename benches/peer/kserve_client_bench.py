"""The KServe Python client side of the peer comparison (scripts/bench-peer kserve).

Sends the same requests as connectors/kserve/benches/peer.rs to the harness's
KServe model server (model `identity`: input-0 -> output-0) through kserve's
own clients (kserve 0.21.0, in the kserve venv):

  v1    InferenceRESTClient(RESTConfig(protocol="v1")), {"instances": [...]} built
        from a numpy array per request (.tolist()), answer read back into numpy
  rest  InferenceRESTClient(RESTConfig(protocol="v2")), FP32 input with binary
        data (InferInput.set_data_from_numpy(binary_data=True)) and binary
        outputs asked for (request parameter binary_data_output)
  grpc  InferenceGRPCClient, raw input contents

at concurrency 1 and 16 (asyncio tasks sharing one client, the clients are
async), bounded by count and time. Prints one `RESULT ...` line per case, in
the Rust bench's format.

    python kserve_client_bench.py HTTP_URL GRPC_ADDR
    python kserve_client_bench.py --table RESULT_FILE...   # merge into a table
"""

import asyncio
import sys
import time

# (wire, elements, requests at most)
CASES = [
    ("v1", 1, 1000),
    ("v1", 1_000, 1000),
    ("rest", 1, 1000),
    ("rest", 1_000, 1000),
    ("rest", 100_000, 200),
    ("grpc", 1, 1000),
    ("grpc", 1_000, 1000),
    ("grpc", 100_000, 200),
]
CONCURRENCY = [1, 16]
WARMUP = 20
CASE_BUDGET = 15.0


def make_call(wire, http_url, grpc_addr, n):
    """An async function sending one request, checking the answer, and its client."""
    import numpy as np
    from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig

    data = np.arange(n, dtype=np.float32)
    if wire == "v1":
        client = InferenceRESTClient(RESTConfig(protocol="v1", timeout=120))

        async def call():
            r = await client.infer(http_url, {"instances": data.tolist()}, model_name="identity")
            assert np.asarray(r["predictions"], dtype=np.float32).shape == (n,)

    elif wire == "rest":
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=120))

        async def call():
            inp = InferInput("input-0", [n], "FP32")
            inp.set_data_from_numpy(data, binary_data=True)
            req = InferRequest("identity", [inp], parameters={"binary_data_output": True})
            r = await client.infer(http_url, req, model_name="identity")
            assert r.outputs[0].as_numpy().shape == (n,)

    else:
        client = InferenceGRPCClient(grpc_addr, timeout=120)

        async def call():
            inp = InferInput("input-0", [n], "FP32")
            inp.set_data_from_numpy(data, binary_data=True)
            r = await client.infer(InferRequest("identity", [inp]))
            assert r.outputs[0].as_numpy().shape == (n,)

    return call, client


async def run_case(wire, http_url, grpc_addr, n, concurrency, count):
    call, client = make_call(wire, http_url, grpc_addr, n)
    for _ in range(min(WARMUP, count)):
        await call()
    state = {"next": 0, "done": 0}
    start = time.perf_counter()

    async def worker():
        while state["next"] < count and time.perf_counter() - start < CASE_BUDGET:
            state["next"] += 1
            await call()
            state["done"] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    secs = time.perf_counter() - start
    await client.close()
    return state["done"], secs


async def measure(http_url, grpc_addr):
    for wire, n, count in CASES:
        for c in CONCURRENCY:
            done, secs = await run_case(wire, http_url, grpc_addr, n, c, count)
            print(
                f"RESULT client=kserve-python wire={wire} elements={n} "
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
    order = {"v1": 0, "rest": 1, "grpc": 2}
    print("| wire | elements | concurrency | kserve python req/s | inferlink req/s | inferlink / python |")
    print("|---|---:|---:|---:|---:|---:|")
    for key in sorted(rows, key=lambda k: (order.get(k[0], 9), k[1], k[2])):
        r = rows[key]
        p, i = r.get("kserve-python"), r.get("inferlink")
        fmt = lambda x: f"{float(x['rps']):,.1f} ({x['requests']} in {x['seconds']} s)" if x else "—"
        ratio = f"{float(i['rps']) / float(p['rps']):.2f}" if p and i else "—"
        print(f"| {key[0]} | {key[1]:,} | {key[2]} | {fmt(p)} | {fmt(i)} | {ratio} |")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--table":
        table(sys.argv[2:])
    elif len(sys.argv) == 3:
        asyncio.run(measure(sys.argv[1], sys.argv[2]))
    else:
        sys.exit(__doc__)
