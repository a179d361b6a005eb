"""NVIDIA Triton (through PyTriton) with inferlink's test models, on 127.0.0.1 only.

Started by `scripts/servers start triton`, which sets LD_LIBRARY_PATH to this
interpreter's libpython directory (the Python backend stub links libpython) and
stops the process group with SIGTERM. Models (docs/testing.md):

  doubler   INPUT_1 FP32 [-1] -> OUTPUT_1 = 2 * INPUT_1; batching, max_batch_size 8
  identity  INPUT FP32 [-1] -> OUTPUT = INPUT, unchanged; no batching (large tensors)
  dtypes    optional inputs IN_<DT> for every numeric datatype, BOOL and BYTES;
            OUT_<DT> is 2 * IN_<DT> (numbers, wrapping), NOT IN_BOOL, upper-cased IN_BYTES (ASCII);
            only the outputs of the inputs sent come back. No BF16: PyTriton 0.7 cannot declare it.
  text      text_input BYTES [-1] -> text_output = text_input upper-cased (ASCII); no batching
            (the BYTES model, and the target of Triton's /generate: field names match);
            the element "!raise" makes the Python function raise
  tokens    decoupled: text_input BYTES [1] -> one response per whitespace-separated word,
            text_output BYTES [1] = the word, INDEX INT32 [1] = its position (gRPC
            ModelStreamInfer, /generate_stream); an empty text gives no response at all;
            the word "!raise" makes it raise after sending the words before it
  accumulate stateful (sequence batcher, "oldest" strategy, so sequences may interleave;
            with "direct" and no batching a second sequence evicts the first):
            VALUE INT64 [1] -> SUM INT64 [1], the sum
            of VALUE over the sequence so far (reset by sequence_start); Triton feeds the
            control inputs START, END (INT32 0/1) and CORRID (UINT64)
  repo_identity  a plain Python-backend model (not PyTriton's) written into the model store
            and NOT loaded at start: the repository tests load, use and unload it.
            INPUT FP32 [-1] -> OUTPUT = INPUT. (PyTriton's own models are loaded through the
            repository API with their files inline, so they are not in the store, the index
            does not list them, and loading them again by name fails.)

The repository, statistics, trace, logging and shared-memory APIs keep PyTriton's default
restriction (header `triton-access-token`); the per-run token is written to --token-file.
"""

import argparse
import logging
import os
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


def text_fn(requests):
    for r in requests:
        if any(bytes(v) == b"!raise" for v in r["text_input"].ravel()):
            # For the tests of a model's own failure (Triton answers 500).
            raise ValueError("text model asked to raise")
    return [{"text_output": upper(r["text_input"])} for r in requests]


def tokens_fn(requests):
    # Decoupled: every yield sends one response to each request still producing.
    words = []
    for r in requests:
        text = b" ".join(bytes(v) for v in r["text_input"].ravel())
        words.append(text.split())
    for i in range(max((len(w) for w in words), default=0)):
        if any(i < len(w) and w[i] == b"!raise" for w in words):
            # For the tests of an error in the middle of a stream.
            raise ValueError("tokens model asked to raise")
        out = []
        for w in words:
            if i < len(w):
                out.append({"text_output": np.array([w[i]], dtype=np.object_), "INDEX": np.array([i], dtype=np.int32)})
            else:
                out.append({})
        yield out


SUMS = {}


def accumulate_fn(requests):
    out = []
    for r in requests:
        corrid = int(r["CORRID"].ravel()[0])
        if int(r["START"].ravel()[0]):
            SUMS[corrid] = 0
        total = SUMS.get(corrid, 0) + int(r["VALUE"].ravel().sum())
        if int(r["END"].ravel()[0]):
            SUMS.pop(corrid, None)
        else:
            SUMS[corrid] = total
        out.append({"SUM": np.array([total], dtype=np.int64)})
    return out


def _sequence_batching():
    """Adds an "oldest" sequence batcher with control inputs to the `accumulate` model.

    PyTriton 0.7 has no setting for it, so its config generator is wrapped. The control
    inputs are also declared as (optional) model inputs so that PyTriton's stub, which reads
    the inputs the model config lists, hands them to the Python function.
    """
    from pytriton.model_config import generator

    original = generator.ModelConfigGenerator.get_config

    def get_config(self):
        config = original(self)
        if config.get("name") == "accumulate":
            config["sequence_batching"] = {
                "oldest": {"max_candidate_sequences": 8},
                "max_sequence_idle_microseconds": 60_000_000,
                "control_input": [
                    {"name": "START", "control": [{"kind": "CONTROL_SEQUENCE_START", "int32_false_true": [0, 1]}]},
                    {"name": "END", "control": [{"kind": "CONTROL_SEQUENCE_END", "int32_false_true": [0, 1]}]},
                    {"name": "CORRID", "control": [{"kind": "CONTROL_SEQUENCE_CORRID", "data_type": "TYPE_UINT64"}]},
                ],
            }
        return config

    generator.ModelConfigGenerator.get_config = get_config


REPO_MODEL_CONFIG = """name: "repo_identity"
backend: "python"
max_batch_size: 0
input [ { name: "INPUT" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT" data_type: TYPE_FP32 dims: [ -1 ] } ]
instance_group [ { kind: KIND_CPU count: 1 } ]
"""

REPO_MODEL_PY = """import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT").as_numpy()
            out.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUTPUT", x)]))
        return out
"""


def _write_repository_model(store):
    model = os.path.join(store, "repo_identity")
    os.makedirs(os.path.join(model, "1"), exist_ok=True)
    with open(os.path.join(model, "config.pbtxt"), "w") as f:
        f.write(REPO_MODEL_CONFIG)
    with open(os.path.join(model, "1", "model.py"), "w") as f:
        f.write(REPO_MODEL_PY)


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
    ap.add_argument("--token-file", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _stop)
    _sequence_batching()

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
            triton.bind(
                model_name="text",
                infer_func=text_fn,
                inputs=[Tensor(name="text_input", dtype=np.bytes_, shape=(-1,))],
                outputs=[Tensor(name="text_output", dtype=np.bytes_, shape=(-1,))],
                config=ModelConfig(batching=False),
            )
            triton.bind(
                model_name="tokens",
                infer_func=tokens_fn,
                inputs=[Tensor(name="text_input", dtype=np.bytes_, shape=(1,))],
                outputs=[
                    Tensor(name="text_output", dtype=np.bytes_, shape=(1,)),
                    Tensor(name="INDEX", dtype=np.int32, shape=(1,)),
                ],
                config=ModelConfig(batching=False, decoupled=True),
            )
            triton.bind(
                model_name="accumulate",
                infer_func=accumulate_fn,
                inputs=[
                    Tensor(name="VALUE", dtype=np.int64, shape=(1,)),
                    Tensor(name="START", dtype=np.int32, shape=(1,), optional=True),
                    Tensor(name="END", dtype=np.int32, shape=(1,), optional=True),
                    Tensor(name="CORRID", dtype=np.uint64, shape=(1,), optional=True),
                ],
                outputs=[Tensor(name="SUM", dtype=np.int64, shape=(1,))],
                config=ModelConfig(batching=False),
            )
            _write_repository_model(os.path.join(args.workspace, "model-store"))
            with open(args.token_file, "w") as f:
                f.write(triton.get_access_token() or "")
            triton.serve()
    except KeyboardInterrupt as e:
        logging.info("stopping: %s", e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
