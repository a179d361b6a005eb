"""MLServer custom runtimes for inferlink's test models (docs/testing.md).

  Doubler   every input `input-<i>` of any datatype gives `output-<i>`: numbers doubled in
            their own type (integers wrap), BOOL negated, BYTES upper-cased (ASCII)
  Identity  every input `input-<i>` comes back unchanged as `output-<i>`

The tensors are decoded from the request's flat or nested `data` (MLServer has already
unpacked gRPC `raw_input_contents` into it), not through MLServer's codecs, so every
datatype MLServer accepts takes the same path.
"""

import numpy as np
from mlserver import MLModel
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput

NUMPY = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


def flatten(data):
    if isinstance(data, (list, tuple)):
        for item in data:
            yield from flatten(item)
    else:
        yield data


def as_bytes(value):
    return value.encode() if isinstance(value, str) else bytes(value)


def output_name(input_name, index):
    if input_name.startswith("input"):
        return "output" + input_name[len("input"):]
    return f"output-{index}"


class _TestModel(MLModel):
    async def load(self) -> bool:
        return True

    def transform(self, datatype, values):
        raise NotImplementedError

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        outputs = []
        for i, inp in enumerate(payload.inputs):
            datatype = getattr(inp.datatype, "value", inp.datatype)
            values = list(flatten(getattr(inp.data, "root", inp.data)))
            outputs.append(
                ResponseOutput(
                    name=output_name(inp.name, i),
                    shape=list(inp.shape),
                    datatype=datatype,
                    data=self.transform(datatype, values),
                )
            )
        return InferenceResponse(model_name=self.name, id=payload.id, outputs=outputs)


class Doubler(_TestModel):
    def transform(self, datatype, values):
        if datatype == "BYTES":
            return [as_bytes(v).upper() for v in values]
        arr = np.array(values, dtype=NUMPY[datatype])
        if datatype == "BOOL":
            return np.logical_not(arr).tolist()
        return (arr * arr.dtype.type(2)).astype(arr.dtype).tolist()


class Identity(_TestModel):
    def transform(self, datatype, values):
        if datatype == "BYTES":
            return [as_bytes(v) for v in values]
        return np.array(values, dtype=NUMPY[datatype]).tolist()
