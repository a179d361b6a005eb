"""Probe which datatypes a running test server round-trips, over each wire format.

Run with the triton venv's interpreter (it has tritonclient):

    scripts/servers probe NAME      # starts NAME if needed is NOT done: pass the ports
    $(scripts/servers venv triton)/bin/python testkit/servers/probe.py \
        --server kserve --http 127.0.0.1:PORT --grpc 127.0.0.1:PORT

For every datatype it sends a small tensor to the server's doubling model and checks
the answer (numbers doubled in their own type, BOOL negated, BYTES upper-cased):

  json    REST, JSON request and JSON response, written by hand (no client-side limits)
  binary  REST with the binary tensor data extension both ways (tritonclient.http)
  grpc    gRPC ModelInfer with raw_input_contents (tritonclient.grpc)

It prints one line per (wire, datatype) and a markdown table at the end. It also sends a
1M-element FP32 tensor to `identity` over binary REST and gRPC.
"""

import argparse
import json
import sys
import urllib.error
import urllib.request

import ml_dtypes
import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

DATATYPES = [
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BF16", "BYTES",
]
NP = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
    "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
    "INT64": np.int64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64,
    "BF16": ml_dtypes.bfloat16,
}


def sample(dt, wire):
    if dt in ("BYTES", "BYTES-UTF8"):
        vals = [b"hello", "wörld".encode(), b""]
        if wire != "json" and dt == "BYTES":
            vals.append(b"\xff\x00z")
        return np.array(vals, dtype=np.object_)
    if dt == "BOOL":
        return np.array([True, False, True])
    t = NP[dt]
    if dt.startswith("INT"):
        return np.array([1, -2, np.iinfo(t).max], dtype=t)
    if dt.startswith("UINT"):
        return np.array([1, 2, np.iinfo(t).max], dtype=t)
    return np.array([1.5, -0.25, 3.0], dtype=t)


def expected(dt, arr):
    if dt == "BYTES":
        return np.array([bytes(v).upper() for v in arr], dtype=np.object_)
    if dt == "BOOL":
        return np.logical_not(arr)
    return (arr * arr.dtype.type(2)).astype(arr.dtype)


def same(dt, got, want):
    if dt == "BYTES":
        got = [g.encode() if isinstance(g, str) else bytes(g) for g in np.asarray(got, dtype=object).ravel()]
        return got == list(want.ravel())
    got = np.asarray(got)
    return got.shape == want.shape and np.array_equal(got.astype(want.dtype), want)


def target(server, dt):
    """(model, input name, output name, shape) for datatype dt on this server."""
    dt = "BYTES" if dt == "BYTES-UTF8" else dt
    if server == "triton":
        if dt == "FP32":
            return "doubler", "INPUT_1", "OUTPUT_1", [1, 3]
        return "dtypes", "IN_" + dt, "OUT_" + dt, None
    return "doubler", "input-0", "output-0", None


def json_value(dt, v):
    if dt == "BYTES":
        return bytes(v).decode()
    if dt == "BOOL":
        return bool(v)
    if dt.startswith(("INT", "UINT")):
        return int(v)
    return float(v)


def try_json(server, http, dt):
    model, iname, oname, shape = target(server, dt)
    arr = sample(dt, "json")
    shape = shape or list(arr.shape)
    body = {
        "id": "probe",
        "inputs": [{"name": iname, "shape": shape, "datatype": dt, "data": [json_value(dt, v) for v in arr]}],
    }
    req = urllib.request.Request(
        f"http://{http}/v2/models/{model}/infer",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            doc = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}: {e.read()[:160].decode(errors='replace')}"
    out = next((o for o in doc["outputs"] if o["name"] == oname), None)
    if out is None:
        return f"no output {oname}: {doc}"
    data = out["data"]
    want = expected(dt, arr)
    if dt == "BYTES":
        ok = [d.encode() for d in data] == list(want)
    else:
        # Compare as Python numbers: numpy would turn large UINT64 values into floats.
        ok = [json_value(dt, v) for v in np.ravel(np.array(data, dtype=object))] == [json_value(dt, v) for v in want]
    return "ok" if ok and out["datatype"] == dt else f"wrong answer {out}"


def try_binary(server, http, dt):
    model, iname, oname, shape = target(server, dt)
    arr = sample(dt, "binary")
    dt = "BYTES" if dt == "BYTES-UTF8" else dt
    send = arr.reshape(shape) if shape else arr
    client = httpclient.InferenceServerClient(http, network_timeout=30, connection_timeout=10)
    try:
        inp = httpclient.InferInput(iname, list(send.shape), dt)
        inp.set_data_from_numpy(send, binary_data=True)
        out = httpclient.InferRequestedOutput(oname, binary_data=True)
        res = client.infer(model, [inp], outputs=[out], request_id="probe")
        got = res.as_numpy(oname)
        if got is None:
            return f"no output {oname}: {res.get_response()}"
        want = expected(dt, arr)
        params = (res.get_output(oname) or {}).get("parameters") or {}
        how = "" if "binary_data_size" in params else " (answer in JSON)"
        return ("ok" + how) if same(dt, got.reshape(-1), want) else f"wrong answer {got!r}"
    except Exception as e:  # noqa: BLE001 - we report whatever the server said
        return f"{type(e).__name__}: {str(e)[:160]}"
    finally:
        client.close()


def try_grpc(server, grpc, dt):
    model, iname, oname, shape = target(server, dt)
    arr = sample(dt, "grpc")
    dt = "BYTES" if dt == "BYTES-UTF8" else dt
    send = arr.reshape(shape) if shape else arr
    client = grpcclient.InferenceServerClient(grpc)
    try:
        inp = grpcclient.InferInput(iname, list(send.shape), dt)
        inp.set_data_from_numpy(send)
        res = client.infer(model, [inp], outputs=[grpcclient.InferRequestedOutput(oname)], request_id="probe",
                           client_timeout=30)
        got = res.as_numpy(oname)
        if got is None:
            return f"no output {oname}: {res.get_response()}"
        want = expected(dt, arr)
        return "ok" if same(dt, got.reshape(-1), want) else f"wrong answer {got!r}"
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {str(e)[:160]}"
    finally:
        client.close()


def try_large(server, http, grpc, n=1_000_000):
    results = {}
    if server == "triton":
        iname, oname = "INPUT", "OUTPUT"
    else:
        iname, oname = "input-0", "output-0"
    arr = np.arange(n, dtype=np.float32)
    client = httpclient.InferenceServerClient(http, network_timeout=120, connection_timeout=10)
    try:
        inp = httpclient.InferInput(iname, [n], "FP32")
        inp.set_data_from_numpy(arr, binary_data=True)
        res = client.infer("identity", [inp], outputs=[httpclient.InferRequestedOutput(oname, binary_data=True)])
        results["binary"] = "ok" if np.array_equal(res.as_numpy(oname), arr) else "wrong answer"
    except Exception as e:  # noqa: BLE001
        results["binary"] = f"{type(e).__name__}: {str(e)[:160]}"
    finally:
        client.close()
    client = grpcclient.InferenceServerClient(grpc)
    try:
        inp = grpcclient.InferInput(iname, [n], "FP32")
        inp.set_data_from_numpy(arr)
        res = client.infer("identity", [inp], client_timeout=120)
        results["grpc"] = "ok" if np.array_equal(res.as_numpy(oname), arr) else "wrong answer"
    except Exception as e:  # noqa: BLE001
        results["grpc"] = f"{type(e).__name__}: {str(e)[:160]}"
    finally:
        client.close()
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, choices=["kserve", "mlserver", "triton"])
    ap.add_argument("--http", required=True, help="host:port")
    ap.add_argument("--grpc", required=True, help="host:port")
    args = ap.parse_args()
    table = {}
    for dt in DATATYPES:
        for wire, fn, addr in (("json", try_json, args.http), ("binary", try_binary, args.http),
                               ("grpc", try_grpc, args.grpc)):
            r = fn(args.server, addr, dt)
            if dt == "BYTES" and wire != "json" and r != "ok":
                # Retry without the non-UTF-8 element.
                r2 = fn(args.server, addr, "BYTES-UTF8")
                if r2.startswith("ok"):
                    r = r2 + " (UTF-8 only; raw bytes: " + r + ")"
            table[(wire, dt)] = r
            print(f"{args.server} {wire:6} {dt:6} {r}")
    large = try_large(args.server, args.http, args.grpc)
    for wire, r in large.items():
        print(f"{args.server} {wire:6} identity 1M FP32 {r}")
    print()
    print(f"| {args.server} | " + " | ".join(DATATYPES) + " |")
    print("|---|" + "---|" * len(DATATYPES))
    for wire in ("json", "binary", "grpc"):
        marks = []
        for dt in DATATYPES:
            r = table[(wire, dt)]
            marks.append("yes" if r == "ok" else (r[2:].strip(" ()").split(";")[0] or "?") if r.startswith("ok") else "no")
        print(f"| {wire} | " + " | ".join(marks) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
