#!/usr/bin/env python3
"""Writes the seed inputs of the text-based fuzz targets into fuzz/corpus/TARGET/.

Each seed is a valid answer or document (as the servers and tests send them)
or a hostile one (nesting bombs, huge claimed sizes, truncations). Selector
bytes: most server targets read their first byte as a selector (see
fuzz-entry/src/server.rs). Run from the repository root:
    python3 fuzz/seeds/text_seeds.py
The protobuf seeds come from `cargo test -p inferlink-fuzz-entry --test seeds -- --ignored`.
"""
import os, shutil, struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")

def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def nested(width, depth, leaf="1"):
    """Nested arrays `width` wide where only the first element goes deeper (finding 1)."""
    s = leaf
    for _ in range(depth):
        s = "[" + ",".join([s] + [leaf] * (width - 1)) + "]"
    return s

def deep(n, open_="[", close="]"):
    return open_ * n + close * n

# -- OIP JSON -------------------------------------------------------------------------
oip_ok = '{"model_name":"doubler","model_version":"1","id":"42","outputs":[{"name":"out","datatype":"FP32","shape":[2,2],"data":[1.0,2.5,-3,4e3]},{"name":"s","datatype":"BYTES","shape":[2],"data":["a","\\u00e9"]},{"name":"b","datatype":"BOOL","shape":[1],"data":[true]}],"parameters":{"sequence_id":7,"flag":true,"note":"x"}}'
put("oip_json", "infer-typed", oip_ok)
put("oip_json", "infer-nested-data", '{"outputs":[{"name":"o","datatype":"INT64","shape":[2,1],"data":[[1],[2]]}]}')
put("oip_json", "infer-fp16", '{"outputs":[{"name":"o","datatype":"FP16","shape":[3],"data":[0.5,null,65504]}]}')
put("oip_json", "server-metadata", '{"name":"triton","version":"2.51.0","extensions":["binary_tensor_data","statistics"]}')
put("oip_json", "model-metadata", '{"name":"doubler","versions":["1"],"platform":"python","inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],"outputs":[{"name":"y","datatype":"FP32","shape":[-1,4]}],"parameters":{"content_type":"np"}}')
put("oip_json", "model-list", '[{"name":"doubler","state":"READY","reason":""},{"name":"t","version":"v1","state":"READY"}]')
put("oip_json", "model-list-object", '{"models":["doubler","x"]}')
put("oip_json", "error", '{"error":"Model nope not found"}')
put("oip_json", "hostile-huge-shape", '{"outputs":[{"name":"o","datatype":"FP64","shape":[4294967296,4294967296],"data":[1]}]}')
put("oip_json", "hostile-shape-overflow", '{"outputs":[{"name":"o","datatype":"FP64","shape":[9223372036854775807,9223372036854775807,4],"data":[]}]}')
put("oip_json", "hostile-deep-data", '{"outputs":[{"name":"o","datatype":"FP32","shape":[1],"data":' + deep(200) + '}]}')
put("oip_json", "hostile-negative-dim", '{"outputs":[{"name":"o","datatype":"FP32","shape":[-1],"data":[1]}]}')

# -- OIP binary (first line: Inference-Header-Content-Length) --------------------------
def oip_binary(outputs, blobs):
    header = '{"model_name":"m","outputs":[' + ",".join(outputs) + ']}'
    body = header.encode() + b"".join(blobs)
    return str(len(header)).encode() + b"\n" + body
put("oip_binary", "fp32-and-bytes", oip_binary(
    ['{"name":"y","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}}',
     '{"name":"s","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":11}}'],
    [struct.pack("<2f", 1.5, -2.0), struct.pack("<I", 3) + b"abc" + struct.pack("<I", 0)]))
put("oip_binary", "bool-int8", oip_binary(
    ['{"name":"b","datatype":"BOOL","shape":[3],"parameters":{"binary_data_size":3}}',
     '{"name":"i","datatype":"INT8","shape":[1],"parameters":{"binary_data_size":1}}'],
    [b"\x01\x00\x01", b"\xff"]))
put("oip_binary", "json-only", str(len(oip_ok)) + "\n" + oip_ok)
put("oip_binary", "hostile-bytes-prefix-beyond-buffer", oip_binary(
    ['{"name":"s","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":8}}'],
    [struct.pack("<I", 0xFFFFFFF0) + b"abcd"]))
put("oip_binary", "hostile-size-beyond-body", oip_binary(
    ['{"name":"y","datatype":"FP64","shape":[1],"parameters":{"binary_data_size":18446744073709551615}}'], [b"12345678"]))
put("oip_binary", "hostile-header-length-huge", b"18446744073709551615\n{}")
put("oip_binary", "hostile-shape-vs-size", oip_binary(
    ['{"name":"y","datatype":"FP64","shape":[1152921504606846976,16],"parameters":{"binary_data_size":8}}'], [b"12345678"]))

# -- KServe V1 (selector byte first) ---------------------------------------------------
for sel, name, body in [
    (0x00, "rows-numbers", '{"predictions":[[1,2,3],[4,5,6]]}'),
    (0x33, "rows-floats-hint", '{"predictions":[[0.5,1.5],[2.5,3.5]]}'),
    (0x40, "named-rows", '{"predictions":[{"output-0":[1,2],"x":3},{"output-0":[4,5],"x":6}]}'),
    (0x8d, "forced-bytes", '{"predictions":["a","b"]}'),
    (0x01, "bools-nulls", '{"predictions":[true,false,null]}'),
    (0x00, "no-predictions", '{"error":"boom"}'),
    (0x00, "ragged", '{"predictions":[[1,2],[3]]}'),
    (0x00, "hostile-deep", '{"predictions":' + deep(200) + '}'),
]:
    put("kserve_v1", name, bytes([sel]) + body.encode())

# -- Seldon ------------------------------------------------------------------------------
put("seldon", "ndarray", '{"data":{"names":["a","b"],"ndarray":[[1,2],[3,4]]},"meta":{"puid":"x","tags":{"t":1},"requestPath":{"m":"img:1"}}}')
put("seldon", "tensor", '{"data":{"names":["t:0","t:1"],"tensor":{"shape":[2,2],"values":[1.5,2,3,4]}}}')
put("seldon", "strdata", '{"strData":"hello","meta":{}}')
put("seldon", "bindata", '{"binData":"aGVsbG8="}')
put("seldon", "jsondata", '{"jsonData":{"a":[1,2],"b":"c"}}')
put("seldon", "status-failure", '{"status":{"code":500,"info":"boom","reason":"MICROSERVICE_INTERNAL_ERROR","status":"FAILURE"}}')
put("seldon", "strings-ndarray", '{"data":{"ndarray":["a","b"]}}')
put("seldon", "hostile-tensor-shape", '{"data":{"tensor":{"shape":[4294967296,4294967296],"values":[1]}}}')
put("seldon", "hostile-nested", '{"data":{"ndarray":' + nested(3, 30) + '}}')
put("seldon", "hostile-bindata-not-base64", '{"binData":"%%%="}')

# -- TF Serving REST (selector % 5: predict, classify, regress, status, metadata) -------
for sel, name, body in [
    (0x00, "predict-columnar", '{"outputs":{"a":[[1,2],[3,4]],"b":[1.5,NaN],"c":["x",{"b64":"/w=="}],"d":[true],"e":[1,2.5]}}'),
    (0x05, "predict-rows", '{"predictions":[{"p":[0.5,0.5],"k":1},{"p":[0.25,0.75],"k":0}]}'),
    (0x80, "predict-single", '{"predictions":[[1.0],[2.0]]}'),
    (0x0a, "predict-u64", '{"outputs":[1,18446744073709551615]}'),
    (0x00, "predict-hostile-nested", '{"predictions":' + nested(3, 30) + '}'),
    (0x00, "predict-hostile-deep", '{"outputs":' + deep(200) + '}'),
    (0x01, "classify", '{"result":[[["cat",0.9],["dog",0.1]],[["x",0.5]]]}'),
    (0x02, "regress", '{"result":[0.5,1.5,-2]}'),
    (0x03, "status", '{"model_version_status":[{"version":"1","state":"AVAILABLE","status":{"error_code":"OK","error_message":""}}]}'),
    (0x04, "metadata", '{"model_spec":{"name":"half_plus_two","signature_name":"","version":"123"},"metadata":{"signature_def":{"signature_def":{"serving_default":{"inputs":{"x":{"dtype":"DT_FLOAT","tensor_shape":{"dim":[{"size":"-1","name":""}],"unknown_rank":false},"name":"x:0"}},"outputs":{"y":{"dtype":"DT_FLOAT","tensor_shape":{"dim":[{"size":"-1","name":""}],"unknown_rank":false},"name":"y:0"}},"method_name":"tensorflow/serving/predict"}}}}}'),
]:
    put("tfserving_rest", name, bytes([sel]) + body.encode())

# -- TorchServe (selector bit 0: /predictions or KServe V1) ------------------------------
for sel, name, body in [
    (0x00, "nested", '[[0.1,0.9],[0.7,0.3]]'),
    (0x00, "object", '{"label":"cat","score":[0.9]}'),
    (0x00, "scalar", '42'),
    (0x00, "string", '"tabby cat"'),
    (0x0c, "ints-hint", '[1,2,3]'),
    (0x01, "kserve-v1", '{"predictions":[[1,2],[3,4]]}'),
    (0x00, "hostile-nested", nested(3, 30)),
    (0x01, "hostile-kserve-nested", '{"predictions":' + nested(3, 41, "0") + '}'),
]:
    put("torchserve", name, bytes([sel]) + body.encode())

# -- SageMaker JSON ----------------------------------------------------------------------
for sel, name, body in [
    (0x00, "predictions", '{"predictions":[[0.1,0.2],[0.3,0.4]]}'),
    (0x03, "outputs-columns", '{"outputs":{"a":[1,2],"b":["x","y"]}}'),
    (0x00, "rows-of-objects", '{"predictions":[{"label":"a","score":0.5},{"label":"b","score":0.25}]}'),
    (0x00, "bare-array", '[1,2,3]'),
    (0x9e, "forced", '{"predictions":[1,2]}'),
    (0x00, "hostile-deep", deep(200)),
]:
    put("sagemaker_json", name, bytes([sel]) + body.encode())

# -- Finding 1 of issue 14: regression inputs (fuzz/regressions, replayed by the test) --
def regression(target, name, data):
    d = os.path.join(ROOT, "..", "regressions", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
# The reported answer (1000 wide, 5 deep: 10^15 leaves of the first row were reserved,
# an 8 PB abort), and two small ones of the same kind: 3 wide and 30 deep (2 * 10^14
# leaves claimed) and 3 wide and 41 deep, whose product overflows usize like the
# reported 65536 wide, 4 deep answer.
for target, prefix, reported in [("kserve_v1", b"\x00", True), ("sagemaker_json", b"\x00", True),
                                 ("torchserve", b"\x01", False), ("tfserving_rest", b"\x00", False)]:
    if reported:
        regression(target, "finding1-alloc-1000-wide-5-deep", prefix + b'{"predictions":' + nested(1000, 5).encode() + b'}')
    regression(target, "finding1-alloc-3-wide-30-deep", prefix + b'{"predictions":' + nested(3, 30).encode() + b'}')
    regression(target, "finding1-overflow-3-wide-41-deep", prefix + b'{"predictions":' + nested(3, 41).encode() + b'}')

# -- SageMaker event stream --------------------------------------------------------------
import binascii
def crc(b):
    return struct.pack(">I", binascii.crc32(b) & 0xFFFFFFFF)
def header(name, type_code, value):
    n = name.encode()
    out = bytes([len(n)]) + n + bytes([type_code])
    if type_code == 7:
        out += struct.pack(">H", len(value)) + value
    elif type_code == 0 or type_code == 1:
        pass
    elif type_code == 2:
        out += value[:1]
    elif type_code == 3:
        out += value[:2]
    elif type_code == 4:
        out += value[:4]
    elif type_code in (5, 8):
        out += value[:8]
    elif type_code == 6:
        out += struct.pack(">H", len(value)) + value
    elif type_code == 9:
        out += value[:16]
    return out
def frame(headers, payload):
    hb = b"".join(headers)
    total = 12 + len(hb) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hb))
    prelude += crc(prelude)
    body = prelude + hb + payload
    return body + crc(body)
chunk = frame([header(":event-type", 7, b"PayloadPart"), header(":content-type", 7, b"application/octet-stream"), header(":message-type", 7, b"event")], b'{"generated_text":"hi"}')
put("sagemaker_eventstream", "two-parts", b"\x07" + chunk + frame([header(":event-type", 7, b"PayloadPart"), header(":message-type", 7, b"event")], b" there"))
put("sagemaker_eventstream", "every-header-type", b"\x3f" + frame([header("t", 0, b""), header("f", 1, b""), header("b", 2, b"\x01"), header("s", 3, b"\x00\x02"), header("i", 4, b"\x00\x00\x00\x03"), header("l", 5, b"\x00" * 8), header("bin", 6, b"\x01\x02"), header("str", 7, b"x"), header("ts", 8, b"\x00" * 8), header("u", 9, b"\x11" * 16)], b"p"))
put("sagemaker_eventstream", "exception", b"\x00" + frame([header(":message-type", 7, b"exception"), header(":exception-type", 7, b"ModelStreamError"), header(":content-type", 7, b"application/json")], b'{"message":"boom","ErrorCode":"400"}'))
put("sagemaker_eventstream", "hostile-claimed-4gib", b"\x01" + struct.pack(">II", 0xFFFFFFFF, 0) + crc(struct.pack(">II", 0xFFFFFFFF, 0)) + b"x" * 32)
put("sagemaker_eventstream", "hostile-headers-longer-than-message", b"\x02" + (lambda p: p + crc(p))(struct.pack(">II", 32, 0xFFFF)) + b"\x00" * 20)
put("sagemaker_eventstream", "truncated", b"\x05" + chunk[:-7])

# -- Triton SSE (selector: chunk size) ---------------------------------------------------
put("triton_sse", "generate-stream", b"\x09" + b'data: {"model_name":"gen","model_version":"1","text_output":"Hello"}\n\ndata: {"model_name":"gen","text_output":" world","extra":[1,2,3]}\n\n')
put("triton_sse", "comments-crlf-multiline", b"\x02" + b': keepalive\r\ndata: {"text_output":\r\ndata: "a"}\r\n\r\nevent: x\nid: 3\ndata: tail')
put("triton_sse", "error-event", b"\x10" + b'data: {"error":"model gen is not ready"}\n\n')
put("triton_sse", "tensors", b"\x3f" + b'data: {"text_output":"x","logits":[[0.5,1.5]],"flag":true,"n":3}\n\n')
put("triton_sse", "hostile-nested", b"\x3f" + b'data: {"text_output":"x","t":' + nested(3, 30).encode() + b'}\n\n')

# -- Triton metrics and JSON (selector % 4) ----------------------------------------------
put("triton_metrics", "metrics", b"\x00" + b'# HELP nv_inference_request_success Number of successful inference requests\n# TYPE nv_inference_request_success counter\nnv_inference_request_success{model="doubler",version="1"} 3\nnv_inference_count{model="doubler",version="1"} 3.0e+00\nnv_gpu_utilization{gpu_uuid="GPU-1"} NaN\nnv_energy_consumption{label="a\\"b\\\\c\\n"} +Inf 1700000000000\n')
put("triton_metrics", "metrics-hostile-labels", b"\x04" + b'x{' + b'a="b",' * 2000 + b'} 1\ny{a="unterminated} 1\nz{=} 2\n')
put("triton_metrics", "repository-index", b"\x01" + b'[{"name":"doubler","version":"1","state":"READY"},{"name":"x","state":"UNAVAILABLE","reason":"unloaded"}]')
put("triton_metrics", "statistics", b"\x02" + b'{"model_stats":[{"name":"doubler","version":"1","last_inference":1700000000000,"inference_count":3,"execution_count":3,"inference_stats":{"success":{"count":3,"ns":12345},"fail":{"count":0,"ns":0},"queue":{"count":3,"ns":100},"compute_input":{"count":3,"ns":10},"compute_infer":{"count":3,"ns":1000},"compute_output":{"count":3,"ns":10},"cache_hit":{"count":0,"ns":0},"cache_miss":{"count":0,"ns":0}},"batch_stats":[]}]}')
put("triton_metrics", "model-config", b"\x03" + b'{"name":"doubler","platform":"","backend":"python","max_batch_size":8,"input":[{"name":"INPUT0","data_type":"TYPE_FP32","dims":[4]}],"output":[{"name":"OUTPUT0","data_type":"TYPE_FP32","dims":[4]}],"instance_group":[{"kind":"KIND_CPU","count":1}]}')

# -- User input: records and import files, steps, expressions, versions -----------------
here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
recs = os.path.join(here, "tests", "corpus", "records")
for f in sorted(os.listdir(recs)):
    if f.endswith(".expect"):
        continue
    with open(os.path.join(recs, f), "rb") as src:
        data = src.read()
    if len(data) <= 4096:
        put("records", f, data)
fx = os.path.join(here, "tests", "fixtures", "seed004")
for f in sorted(os.listdir(fx)):
    with open(os.path.join(fx, f), "rb") as src:
        put("records", "fixture-" + f, src.read())
steps = os.path.join(here, "tests", "corpus", "steps")
for f in sorted(os.listdir(steps)):
    with open(os.path.join(steps, f), "rb") as src:
        data = src.read()
    if len(data) <= 4096:
        put("workflow_step", f, data)
put("workflow_step", "resolves", "name: train\nextensions:\n  - name: tracking\n    extension_id: mlflow-0001\n    service_id: mlflow-tracking\n  - name: s3\n    product: minio\n    version: '>=4.0, <5'\nenv:\n  - name: TRACKING\n    value: '{{ extension.tracking.url }}'\n  - name: KEY\n    value: '{{ extension.s3.cfg.AWS_SECRET_ACCESS_KEY }}'\ninputs:\n  - name: model\n    value: '{{ extension.s3.url }}/models'\n")
for name, text in [
    ("url", "{{ extension.tracking.url }}"),
    ("cfg-secret", "key={{ extension.s3.cfg.AWS_SECRET_ACCESS_KEY }}&id={{extensions.store.cfg.AWS_ACCESS_KEY_ID}}"),
    ("fields", "{{ extension.tracking.endpoint_type }} {{ extension.store.id }} {{ extension.s3.service_id }}"),
    ("unclosed", "a {{ extension.tracking.url"),
    ("nested", "{{ {{ extension.tracking.url }} }}"),
    ("many", "{{extension.tracking.url}}" * 200),
    ("unicode", "é{{ extension.tracking.url }}€{{"),
]:
    put("workflow_step", "expression-" + name, text)
for name, text in [
    ("caret", "^1.2.3\n1.4.0"),
    ("range", ">=1.0, <2.0 || ~3.1\n3.1.7"),
    ("prerelease", ">=1.0.0-alpha.1\n1.0.0-alpha.2+build.5"),
    ("wildcard", "1.x\n1.9"),
    ("hyphen", "1.2 - 2.3.4\n2.0.0"),
    ("exact", "=4.1.3\n4.1.3"),
    ("hostile-long", "1" * 300 + "\n" + "9" * 40),
    ("hostile-many-or", " || ".join(["^1"] * 100) + "\n1.0.0"),
    ("hostile-overflow", ">=18446744073709551616.0.0\n18446744073709551615.0.0"),
]:
    put("version", name, text)

# -- Protobuf answers (hand-encoded: OIP gRPC, TF Serving gRPC, OMI) ---------------------
def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])
def fv(tag, n):            # varint field
    return varint(tag << 3) + varint(n)
def fl(tag, data):         # length-delimited field
    if isinstance(data, str):
        data = data.encode()
    return varint(tag << 3 | 2) + varint(len(data)) + data
def packed(tag, values, fmt=None):
    body = b"".join(struct.pack(fmt, v) for v in values) if fmt else b"".join(varint(v) for v in values)
    return fl(tag, body)
def entry(key, value):     # a map entry (key 1, value 2)
    return fl(1, key) + fl(2, value)

# OIP ModelInferResponse: 1 model_name, 2 model_version, 3 id, 4 parameters, 5 outputs, 6 raw_output_contents
def oip_out(name, dt, shape, contents=b""):
    return fl(1, name) + fl(2, dt) + packed(3, shape) + (fl(5, contents) if contents else b"")
put("oip_grpc", "typed-contents", b"\x00" + fl(1, "doubler") + fl(2, "1") + fl(3, "42")
    + fl(4, entry("sequence_id", fv(3, 7)))
    + fl(5, oip_out("y", "FP32", [2], packed(6, [1.5, -2.0], "<f")))
    + fl(5, oip_out("s", "BYTES", [2], fl(8, "ab") + fl(8, "")))
    + fl(5, oip_out("b", "BOOL", [1], packed(1, [1])))
    + fl(5, oip_out("i", "INT64", [2], packed(3, [5, 6]))))
put("oip_grpc", "raw-contents", b"\x02" + fl(1, "m")
    + fl(5, oip_out("y", "FP64", [1, 2])) + fl(5, oip_out("s", "BYTES", [1]))
    + fl(6, struct.pack("<2d", 0.5, 1.5)) + fl(6, struct.pack("<I", 2) + b"hi"))
put("oip_grpc", "fp16-raw", b"\x04" + fl(5, oip_out("h", "FP16", [2])) + fl(6, b"\x00\x3c\x00\xc0"))
put("oip_grpc", "hostile-shape-overflow", b"\x00" + fl(5, oip_out("y", "FP64", [1 << 62, 1 << 62, 16])) + fl(6, b"12345678"))
put("oip_grpc", "hostile-bytes-prefix", b"\x00" + fl(5, oip_out("s", "BYTES", [1])) + fl(6, struct.pack("<I", 0xFFFFFFFF) + b"abc"))
put("oip_grpc", "hostile-negative-shape", b"\x00" + fl(5, oip_out("y", "FP32", [-1])) + fl(6, b"1234"))
# OIP ModelMetadataResponse: 1 name, 2 versions, 3 platform, 4 inputs, 5 outputs, 6 properties
put("oip_grpc", "metadata", b"\x01" + fl(1, "doubler") + fl(2, "1") + fl(3, "python")
    + fl(4, fl(1, "x") + fl(2, "FP32") + packed(3, [(1 << 64) - 1, 4]))
    + fl(5, fl(1, "y") + fl(2, "FP32") + packed(3, [(1 << 64) - 1, 4]))
    + fl(6, fl(1, "content_type") + fl(2, "np")))

# TF Serving PredictResponse: 1 outputs (map string -> TensorProto), 2 model_spec
# TensorProto: 1 dtype, 2 tensor_shape {2 dim {1 size}}, 4 tensor_content, 5 float_val,
# 6 double_val, 7 int_val, 8 string_val, 10 int64_val, 11 bool_val, 13 half_val
def shape(*dims):
    return fl(2, b"".join(fl(2, fv(1, d)) for d in dims))
def tf_out(name, tensor):
    return fl(1, entry(name, tensor))
spec = fl(2, fl(1, "half_plus_two") + fl(2, fv(1, 123)) + fl(3, "serving_default"))
put("tfserving_grpc", "float-val", b"\x00" + tf_out("y", fv(1, 1) + shape(2) + packed(5, [2.5, 3.0], "<f")) + spec)
put("tfserving_grpc", "tensor-content", b"\x00" + tf_out("y", fv(1, 2) + shape(1, 2) + fl(4, struct.pack("<2d", 1.0, 2.0)))
    + tf_out("s", fv(1, 7) + shape(2) + fl(8, "a") + fl(8, b"\xff")))
put("tfserving_grpc", "fill-one-value", b"\x00" + tf_out("z", fv(1, 3) + shape(4, 4) + packed(7, [7])))
put("tfserving_grpc", "half-bool-int64", b"\x00" + tf_out("h", fv(1, 19) + shape(2) + packed(13, [0x3C00, 0xC000]))
    + tf_out("b", fv(1, 10) + shape(1) + packed(11, [1])) + tf_out("l", fv(1, 9) + shape(1) + packed(10, [1 << 40])))
put("tfserving_grpc", "hostile-fill-huge", b"\x00" + tf_out("z", fv(1, 7) + shape(1 << 30, 1 << 30) + fl(8, "x")))
put("tfserving_grpc", "hostile-content-shape-overflow", b"\x00" + tf_out("z", fv(1, 2) + shape(1 << 62, 1 << 62) + fl(4, b"12345678")))
put("tfserving_grpc", "hostile-fill-bytes-max", b"\x00" + tf_out("z", fv(1, 7) + shape(1 << 26) + fl(8, "x")))
# GetModelMetadataResponse: 1 model_spec, 2 metadata map<string, Any{1 type_url, 2 value}>
# SignatureDefMap: 1 signature_def map<string, SignatureDef{1 inputs map, 2 outputs map, 3 method_name}>
# TensorInfo: 1 name, 2 dtype, 3 tensor_shape
tinfo = fl(1, "x:0") + fv(2, 1) + fl(3, fl(2, fv(1, (1 << 64) - 1)))
sigdef = fl(1, entry("x", tinfo)) + fl(2, entry("y", tinfo)) + fl(3, "tensorflow/serving/predict")
sigmap = fl(1, entry("serving_default", sigdef))
anyv = fl(1, "type.googleapis.com/tensorflow.serving.SignatureDefMap") + fl(2, sigmap)
put("tfserving_grpc", "metadata", b"\x01" + fl(1, fl(1, "half_plus_two") + fl(2, fv(1, 123))) + fl(2, entry("signature_def", anyv)))

# OMI StatusResponse: 1 status_code, 2 status, 3 message, 4 model_info, 5 description,
# 6 inputs {1 filename, 2 accepted_media_types, 3 max_size}, 7 outputs {1 filename, 2 media_type}, 10 features
status = (fv(1, 200) + fl(2, "OK") + fl(3, "ready") + fl(4, fl(1, "sentiment") + fl(2, "1.0"))
    + fl(5, fl(1, "summary")) + fl(6, fl(1, "text") + fl(2, "text/plain") + fl(3, "1MB"))
    + fl(7, fl(1, "results.json") + fl(2, "application/json")) + fl(10, fv(2, 4)))
put("omi", "status", b"\x01" + status)
put("omi", "status-error", b"\x01" + fv(1, 500) + fl(2, "ERROR") + fl(3, "model failed to load"))
# RunResponse: 1 status_code, 2 status, 3 message, 4 outputs {1 output map<string, bytes>, 2 success}
def item(files, success=True):
    return fl(4, b"".join(fl(1, entry(k, v)) for k, v in files) + fv(2, 1 if success else 0))
put("omi", "run-one", b"\x00" + fv(1, 200) + fl(2, "OK") + item([("results.json", b'{"label":"pos"}')]))
put("omi", "run-two", b"\x02" + fv(1, 200) + item([("results.json", b"a"), ("extra", b"x")]) + item([("results.json", b"b"), ("extra", b"y")]))
put("omi", "run-item-error", b"\x02" + fv(1, 200) + item([("error", b"boom")]) + item([("results.json", b"b")], False))
put("omi", "run-status-failed", b"\x00" + fv(1, 503) + fl(2, "UNAVAILABLE") + fl(3, "busy"))
put("omi", "run-mismatched-files", b"\x02" + fv(1, 200) + item([("a", b"1")]) + item([("b", b"2")]))
