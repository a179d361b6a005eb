"""NVIDIA Triton (through PyTriton) with inferlink's test models, on 127.0.0.1 only.

Started by `scripts/servers start triton`, which sets LD_LIBRARY_PATH to this
interpreter's libpython directory (the Python backend stub links libpython) and
stops the process group with SIGTERM. Models (docs/testing.md):

  doubler   INPUT_1 FP32 [-1] -> OUTPUT_1 = 2 * INPUT_1; batching, max_batch_size 8
  identity  INPUT FP32 [-1] -> OUTPUT = INPUT, unchanged; no batching (large tensors)
  dtypes    optional inputs IN_<DT> for every numeric datatype, BOOL and BYTES;
            OUT_<DT> is 2 * IN_<DT> (numbers, wrapping), NOT IN_BOOL, upper-cased IN_BYTES (ASCII);
            only the outputs of the inputs sent come back. No BF16: PyTriton 0.7 cannot declare it.
"""

import argparse
import logging
import signal
import sys

import numpy as np
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

# Every datatype of the `dtypes` model with its numpy type.
NUMERIC = {
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


def double(arr):
    """2 * arr in arr's own type (integers wrap around)."""
    return (arr * arr.dtype.type(2)).astype(arr.dtype)


def upper(arr):
    """ASCII upper case of every element of a BYTES array."""
    flat = [bytes(v).upper() if not isinstance(v, str) else v.encode().upper() for v in arr.ravel()]
    return np.array(flat, dtype=np.object_).reshape(arr.shape)


def doubler_fn(requests):
    return [{"OUTPUT_1": double(r["INPUT_1"])} for r in requests]


def identity_fn(requests):
    return [{"OUTPUT": r["INPUT"]} for r in requests]


def dtypes_fn(requests):
    responses = []
    for r in requests:
        out = {}
        for name in r:
            dt = name[3:]
            arr = r[name]
            if dt == "BOOL":
                out["OUT_BOOL"] = np.logical_not(arr)
            elif dt == "BYTES":
                out["OUT_BYTES"] = upper(arr)
            else:
                out["OUT_" + dt] = double(arr)
        responses.append(out)
    return responses


def _stop(signum, _frame):
    # Turn SIGTERM into the `with Triton()` exit, which stops tritonserver and
    # the model stubs (without it they would be orphaned).
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--grpc-port", type=int, required=True)
    ap.add_argument("--metrics-port", type=int, required=True)
    ap.add_argument("--workspace", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _stop)

    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=args.http_port,
        grpc_address="127.0.0.1",
        grpc_port=args.grpc_port,
        metrics_address="127.0.0.1",
        metrics_port=args.metrics_port,
        allow_sagemaker=False,
        allow_vertex_ai=False,
        allow_gpu_metrics=False,
        # The machine has 2 cores.
        http_thread_count=4,
        buffer_manager_thread_count=1,
        exit_timeout_secs=5,
    )
    dtype_inputs = [Tensor(name="IN_" + dt, dtype=t, shape=(-1,), optional=True) for dt, t in NUMERIC.items()]
    dtype_inputs += [
        Tensor(name="IN_BOOL", dtype=np.bool_, shape=(-1,), optional=True),
        Tensor(name="IN_BYTES", dtype=np.bytes_, shape=(-1,), optional=True),
    ]
    dtype_outputs = [Tensor(name="OUT_" + t.name[3:], dtype=t.dtype, shape=(-1,)) for t in dtype_inputs]

    try:
        with Triton(config=config, workspace=args.workspace) as triton:
            triton.bind(
                model_name="doubler",
                infer_func=doubler_fn,
                inputs=[Tensor(name="INPUT_1", dtype=np.float32, shape=(-1,))],
                outputs=[Tensor(name="OUTPUT_1", dtype=np.float32, shape=(-1,))],
                config=ModelConfig(max_batch_size=8),
            )
            triton.bind(
                model_name="identity",
                infer_func=identity_fn,
                inputs=[Tensor(name="INPUT", dtype=np.float32, shape=(-1,))],
                outputs=[Tensor(name="OUTPUT", dtype=np.float32, shape=(-1,))],
                config=ModelConfig(batching=False),
            )
            triton.bind(
                model_name="dtypes",
                infer_func=dtypes_fn,
                inputs=dtype_inputs,
                outputs=dtype_outputs,
                config=ModelConfig(batching=False),
            )
            triton.serve()
    except KeyboardInterrupt as e:
        logging.info("stopping: %s", e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
