//! Codec throughput: JSON and binary encode/decode of FP32 tensors of 1,
//! 1 000 and 1 000 000 elements, against two references on the same data:
//! `serde_json` on a plain `Vec<f32>` (what a hand-written JSON client
//! pays), and a plain memcpy of the tensor's bytes (the floor for binary).
//!
//! Throughput is the tensor payload (4 bytes per element), so every line is
//! comparable. Figures: `docs/performance.md`.
//!
//! ```text
//! cargo bench -p inferlink-oip --bench oip_codec
//! ```

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use inferlink::{InferRequest, Tensor};
use inferlink_oip::codec::{TensorEncoding, decode_infer_response, encode_infer_request};

const SIZES: [usize; 3] = [1, 1_000, 1_000_000];

fn values(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i as f32) * 0.37 + 0.1).collect()
}

fn request(v: &[f32]) -> InferRequest {
    InferRequest::new().with_input(Tensor::new("x", vec![1, v.len()], v.to_vec()).unwrap())
}

/// A JSON response carrying `v` as output `y`; the numbers are written
/// exactly as `serde_json` writes a `Vec<f32>` (the reference decodes the same text).
fn json_response(v: &[f32]) -> Bytes {
    let data = serde_json::to_string(v).unwrap();
    let body = format!(
        r#"{{"model_name":"m","model_version":"1","outputs":[{{"name":"y","datatype":"FP32","shape":[1,{}],"data":{data}}}]}}"#,
        v.len()
    );
    Bytes::from(body)
}

/// A binary response carrying `v` as output `y`, and its header length.
fn binary_response(v: &[f32]) -> (Bytes, usize) {
    let header = serde_json::json!({
        "model_name": "m",
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [1, v.len()],
                     "parameters": {"binary_data_size": v.len() * 4}}]
    });
    let mut body = serde_json::to_vec(&header).unwrap();
    let n = body.len();
    body.extend(v.iter().flat_map(|f| f.to_le_bytes()));
    (Bytes::from(body), n)
}

fn codec(c: &mut Criterion) {
    for n in SIZES {
        let v = values(n);
        let payload = (n * 4) as u64;
        let mut g = c.benchmark_group(format!("fp32_{n}"));
        g.throughput(Throughput::Bytes(payload));
        if n >= 1_000_000 {
            g.sample_size(10);
            g.measurement_time(Duration::from_secs(4));
        } else {
            g.measurement_time(Duration::from_secs(2));
        }
        g.warm_up_time(Duration::from_millis(500));

        // Encoding.
        let req = request(&v);
        g.bench_function(BenchmarkId::new("json_encode", "oip"), |b| {
            b.iter(|| encode_infer_request(black_box(&req), TensorEncoding::Json).unwrap())
        });
        g.bench_function(BenchmarkId::new("json_encode", "serde_json_vec"), |b| {
            b.iter(|| serde_json::to_vec(black_box(&v)).unwrap())
        });
        g.bench_function(BenchmarkId::new("binary_encode", "oip"), |b| {
            b.iter(|| encode_infer_request(black_box(&req), TensorEncoding::Binary).unwrap())
        });
        let raw: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
        g.bench_function(BenchmarkId::new("memcpy", "reference"), |b| {
            b.iter(|| Bytes::copy_from_slice(black_box(&raw)))
        });

        // Decoding.
        let json = json_response(&v);
        let data_json = serde_json::to_vec(&v).unwrap();
        g.bench_function(BenchmarkId::new("json_decode", "oip"), |b| {
            b.iter(|| decode_infer_response(black_box(json.clone()), None).unwrap())
        });
        g.bench_function(BenchmarkId::new("json_decode", "serde_json_vec"), |b| {
            b.iter(|| serde_json::from_slice::<Vec<f32>>(black_box(&data_json)).unwrap())
        });
        let (binary, header_len) = binary_response(&v);
        g.bench_function(BenchmarkId::new("binary_decode", "oip"), |b| {
            b.iter(|| decode_infer_response(black_box(binary.clone()), Some(header_len)).unwrap())
        });
        g.bench_function(BenchmarkId::new("binary_decode_to_vec", "oip"), |b| {
            b.iter(|| {
                let r = decode_infer_response(black_box(binary.clone()), Some(header_len)).unwrap();
                r.outputs[0].to_vec::<f32>().unwrap()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
