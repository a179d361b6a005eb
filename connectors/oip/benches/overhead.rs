//! Connector overhead against the real Triton of the harness (issue 4):
//! the round trip of `infer` through `OipConnector` (REST, binary tensors)
//! against a raw `reqwest` POST of the same pre-encoded body to the same
//! model URL with the same headers, for 1 and 1 000 000 FP32 elements
//! (Triton's `identity` model), plus gRPC through the connector.
//!
//! A custom bounded loop (count and time) instead of criterion's sampler,
//! because the issue asks for p50 and p99 of single calls. Connector and raw
//! calls alternate, so drift in the machine's load hits both alike. Prints
//! `skipped: …` and exits 0 when Triton cannot start.
//!
//! ```sh
//! cargo bench -p inferlink-oip --bench overhead
//! ```

#[path = "support/live.rs"]
mod live;

use std::time::{Duration, Instant};

use bytes::Bytes;
use inferlink::{InferRequest, ModelRef, Tensor};
use inferlink_oip::TensorEncoding;
use inferlink_oip::codec::{HEADER_CONTENT_LENGTH, encode_infer_request};
use live::{Wire, ms, percentile};

/// One size: elements, samples after warm-up, warm-up calls.
const SIZES: [(usize, usize, usize); 2] = [(1, 1000, 50), (1_000_000, 300, 10)];
/// Longest time one case may take; a case stops early and says so.
const CASE_BUDGET: Duration = Duration::from_secs(90);

struct Case {
    elements: usize,
    label: String,
    connector: Vec<Duration>,
    raw: Vec<Duration>,
}

fn main() {
    let Some(server) = live::start_triton() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let http_url = server.http_url();
    let grpc_addr = server.grpc_addr().to_string();
    let url = format!("{http_url}/v2/models/identity/infer");
    let model = ModelRef::new("identity");
    let mut cases = Vec::new();

    for (n, samples, warmup) in SIZES {
        let values: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
        let request =
            InferRequest::new().with_input(Tensor::new("INPUT", vec![n], values).expect("tensor"));
        let encoded = encode_infer_request(&request, TensorEncoding::Binary).expect("encode");
        let body: Bytes = encoded.to_bytes();
        let header_len = encoded.json_len.expect("binary body").to_string();

        for gzip in [false, true] {
            let wire = Wire::RestBinary { gzip };
            let conn = rt.block_on(live::connector(&http_url, &grpc_addr, wire));
            let raw = reqwest::Client::builder()
                .gzip(gzip)
                .no_proxy()
                .build()
                .expect("reqwest client");
            let call_conn = || async {
                // The caller's copy of its request is made outside the timed
                // region: the raw client's body is prepared beforehand too.
                let request = request.clone();
                let t = Instant::now();
                let r = conn.infer(&model, request).await.expect("connector infer");
                let elapsed = t.elapsed();
                assert_eq!(r.require_output("OUTPUT").expect("OUTPUT").shape(), &[n]);
                elapsed
            };
            let call_raw = || async {
                let t = Instant::now();
                let resp = raw
                    .post(&url)
                    .header("content-type", "application/octet-stream")
                    .header(HEADER_CONTENT_LENGTH, &header_len)
                    .body(body.clone())
                    .send()
                    .await
                    .expect("raw POST");
                let status = resp.status();
                let bytes = resp.bytes().await.expect("raw body");
                let elapsed = t.elapsed();
                assert!(status.is_success(), "raw POST: {status}");
                assert!(bytes.len() >= 4 * n, "raw body too short: {}", bytes.len());
                elapsed
            };
            let mut case = Case {
                elements: n,
                label: wire.label().to_owned(),
                connector: Vec::with_capacity(samples),
                raw: Vec::with_capacity(samples),
            };
            rt.block_on(async {
                for _ in 0..warmup {
                    call_conn().await;
                    call_raw().await;
                }
                let start = Instant::now();
                for i in 0..samples {
                    if start.elapsed() > CASE_BUDGET {
                        eprintln!(
                            "note: {n} elements, {}: stopped after {i} samples (time budget)",
                            case.label
                        );
                        break;
                    }
                    // Alternate which goes first.
                    if i % 2 == 0 {
                        case.connector.push(call_conn().await);
                        case.raw.push(call_raw().await);
                    } else {
                        case.raw.push(call_raw().await);
                        case.connector.push(call_conn().await);
                    }
                }
            });
            report(&case);
            cases.push(case);
        }

        let conn = rt.block_on(live::connector(&http_url, &grpc_addr, Wire::Grpc));
        let mut case = Case {
            elements: n,
            label: Wire::Grpc.label().to_owned(),
            connector: Vec::with_capacity(samples),
            raw: Vec::new(),
        };
        rt.block_on(async {
            let call = || async {
                let t = Instant::now();
                let r = conn
                    .infer(&model, request.clone())
                    .await
                    .expect("gRPC infer");
                let elapsed = t.elapsed();
                assert_eq!(r.require_output("OUTPUT").expect("OUTPUT").shape(), &[n]);
                elapsed
            };
            for _ in 0..warmup {
                call().await;
            }
            let start = Instant::now();
            for _ in 0..samples {
                if start.elapsed() > CASE_BUDGET {
                    break;
                }
                case.connector.push(call().await);
            }
        });
        report(&case);
        cases.push(case);
    }

    println!(
        "\n| elements | wire | samples | connector p50 | connector p99 | raw reqwest p50 | raw reqwest p99 | ratio p50 | ratio p99 |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for c in &mut cases {
        c.connector.sort();
        c.raw.sort();
        let (cp50, cp99) = (
            percentile(&c.connector, 50.0),
            percentile(&c.connector, 99.0),
        );
        if c.raw.is_empty() {
            println!(
                "| {} | {} | {} | {} ms | {} ms | — | — | — | — |",
                c.elements,
                c.label,
                c.connector.len(),
                ms(cp50),
                ms(cp99)
            );
        } else {
            let (rp50, rp99) = (percentile(&c.raw, 50.0), percentile(&c.raw, 99.0));
            println!(
                "| {} | {} | {} | {} ms | {} ms | {} ms | {} ms | {:.3} | {:.3} |",
                c.elements,
                c.label,
                c.connector.len(),
                ms(cp50),
                ms(cp99),
                ms(rp50),
                ms(rp99),
                cp50.as_secs_f64() / rp50.as_secs_f64(),
                cp99.as_secs_f64() / rp99.as_secs_f64()
            );
        }
    }
    drop(server);
}

/// One line per case as soon as it is measured.
fn report(case: &Case) {
    let mut c = case.connector.clone();
    c.sort();
    let mut r = case.raw.clone();
    r.sort();
    eprintln!(
        "{} elements, {}: connector p50 {} ms p99 {} ms; raw p50 {} ms p99 {} ms ({} samples)",
        case.elements,
        case.label,
        ms(percentile(&c, 50.0)),
        ms(percentile(&c, 99.0)),
        ms(percentile(&r, 50.0)),
        ms(percentile(&r, 99.0)),
        c.len()
    );
}
