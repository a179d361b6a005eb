"""KServe's python model server (kserve 0.21.0) with inferlink's test models, on 127.0.0.1 only.

Started by `scripts/servers start kserve` as
`python server.py --http_port P --grpc_port P` (any other ModelServer flag passes through).
Models (docs/testing.md):

  doubler   V2: every input `input-<i>` of any datatype gives `output-<i>`: numbers doubled in
            their own type (integers wrap), BOOL negated, BYTES upper-cased (ASCII).
            V1: {"instances": x} -> {"predictions": 2 * x}
  identity  V2: every input `input-<i>` comes back unchanged as `output-<i>`.
            V1: {"instances": x} -> {"predictions": x}

Binary outputs over REST follow the request: top-level `binary_data_output`, or each
requested output's `binary_data` parameter. gRPC answers raw inputs with raw outputs.
"""

# KServe hard-codes 0.0.0.0 (REST) and [::] (gRPC): rewrite both before kserve is imported.
import grpc.aio._server as _grpc_server
import uvicorn

_uvicorn_config_init = uvicorn.Config.__init__


def _loopback_config(self, *args, **kwargs):
    kwargs["host"] = "127.0.0.1"
    _uvicorn_config_init(self, *args, **kwargs)


uvicorn.Config.__init__ = _loopback_config

_grpc_add_insecure_port = _grpc_server.Server.add_insecure_port


def _loopback_port(self, address):
    host, _, port = address.rpartition(":")
    if host in ("[::]", "0.0.0.0", ""):
        address = f"127.0.0.1:{port}"
    return _grpc_add_insecure_port(self, address)


_grpc_server.Server.add_insecure_port = _loopback_port

import numpy as np  # noqa: E402
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer  # noqa: E402
from kserve.utils.utils import generate_uuid  # noqa: E402


def double(arr):
    """The doubler's transform: 2x numbers in their own type, NOT for BOOL, upper for BYTES."""
    if arr.dtype == np.bool_:
        return np.logical_not(arr)
    if arr.dtype == np.object_ or arr.dtype.kind in ("S", "U"):
        flat = [v.encode().upper() if isinstance(v, str) else bytes(v).upper() for v in arr.ravel()]
        return np.array(flat, dtype=np.object_).reshape(arr.shape)
    return (arr * arr.dtype.type(2)).astype(arr.dtype)


def output_name(input_name, index):
    if input_name.startswith("input"):
        return "output" + input_name[len("input"):]
    return f"output-{index}"


class TestModel(Model):
    def __init__(self, name, transform):
        super().__init__(name)
        self.transform = transform
        self.load()

    def load(self):
        self.ready = True
        return self.ready

    def get_input_types(self):
        return [{"name": "input-0", "datatype": "FP32", "shape": [-1]}]

    def get_output_types(self):
        return [{"name": "output-0", "datatype": "FP32", "shape": [-1]}]

    async def predict(self, payload, headers=None, response_headers=None):
        if not isinstance(payload, InferRequest):  # V1
            arr = np.asarray(payload["instances"])
            return {"predictions": self.transform(arr).tolist()}
        # Per-output `binary_data` overrides the request-wide `binary_data_output`.
        binary = {r.name: r.binary_data for r in payload.request_outputs or [] if r.binary_data is not None}
        outputs = []
        for i, inp in enumerate(payload.inputs):
            out = self.transform(inp.as_numpy())
            name = output_name(inp.name, i)
            o = InferOutput(name=name, shape=list(out.shape), datatype=inp.datatype)
            o.set_data_from_numpy(out, binary_data=binary.get(name, payload.use_binary_outputs))
            outputs.append(o)
        return InferResponse(
            response_id=payload.id or generate_uuid(),
            model_name=self.name,
            infer_outputs=outputs,
            use_binary_outputs=payload.use_binary_outputs,
            requested_outputs=payload.request_outputs or None,
        )


if __name__ == "__main__":
    ModelServer().start([TestModel("doubler", double), TestModel("identity", lambda a: a)])
