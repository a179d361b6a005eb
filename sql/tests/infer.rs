//! `infer` and `try_infer` against the real KServe python model server of
//! the harness (kserve 0.21.0, model `doubler`: every number doubled, any
//! shape, V2 REST): every row's answer is what the connector's own `infer`
//! returns for it, one request per row and in batches; a row the server
//! refuses fails alone under `try_infer` and fails the query under `infer`.
//! Skipped (a `skipped:` line) without the kserve venv, unless
//! `INFERLINK_REQUIRE_LIVE=1`.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray as _, Float64Array, Float64Builder, Int64Array, ListBuilder,
    RecordBatch,
};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use datafusion::prelude::SessionContext;
use inferlink::{
    Connectors, Consumer, ErrorKind, InferRequest, InferenceConnector, MemoryStore, ModelRef,
    Registry, Selector, Tensor,
};
use inferlink_datafusion::{InferenceFunctions, Options};
use inferlink_testkit::live::{self, TestRecord};
use inferlink_testkit::servers::ServerKind;

/// Rows of the test table: ids 1..=ROWS.
const ROWS: usize = 40;

/// A registry holding one KServe record (V2 REST, JSON tensors) for the
/// server at `url`, and the functions over it.
async fn functions(url: &str) -> (Arc<Registry>, InferenceFunctions) {
    let yaml = TestRecord::new("live-kserve", "kserve", "0.21.0", "kserve-predictor")
        .service_id("predictor")
        .setting("protocol", "v2")
        .setting("tensor_encoding", "json")
        .setting("deadline_ms", "60000")
        .endpoint(url)
        .yaml();
    let registry = Arc::new(Registry::open(MemoryStore::new()).await.unwrap());
    registry.register_yaml(&yaml).await.unwrap();
    let functions = InferenceFunctions::new(
        Arc::clone(&registry),
        Connectors::new().with(inferlink_kserve::factory()),
    )
    .with_options(Options {
        batch_rows: 16,
        concurrency: 3,
    })
    .unwrap();
    (registry, functions)
}

/// The row's numbers: `id` numbers (1 to 4 of them), so rows differ in length.
fn numbers(id: usize) -> Vec<f64> {
    (0..(id % 4) + 1)
        .map(|k| id as f64 * 0.5 + k as f64 - 3.0)
        .collect()
}

/// A table `t(id BIGINT, x List<Float64>, n DOUBLE)`: `x` the row's
/// [`numbers`], null at id 7 and empty at id 8; `n` = id / 4.
async fn context(functions: &InferenceFunctions) -> SessionContext {
    let ctx = SessionContext::new();
    functions.register(&ctx);
    let mut lists = ListBuilder::new(Float64Builder::new());
    for id in 1..=ROWS {
        match id {
            7 => lists.append(false),
            8 => lists.append(true),
            _ => {
                lists.values().append_slice(&numbers(id));
                lists.append(true);
            }
        }
    }
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(1..=ROWS as i64));
    let scalars: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (1..=ROWS).map(|id| id as f64 / 4.0),
    ));
    let batch = RecordBatch::try_from_iter([
        ("id", ids),
        ("x", Arc::new(lists.finish()) as ArrayRef),
        ("n", scalars),
    ])
    .unwrap();
    ctx.register_batch("t", batch).unwrap();
    ctx
}

async fn query(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<Vec<RecordBatch>> {
    ctx.sql(sql).await?.collect().await
}

/// `(id, value)` of a two-column result; value `None` for null.
fn id_values(batches: &[RecordBatch]) -> Vec<(i64, Option<Vec<f64>>)> {
    let mut all = Vec::new();
    for batch in batches {
        let ids = batch.column(0).as_primitive::<Int64Type>();
        let lists = batch.column(1).as_list::<i32>();
        for row in 0..batch.num_rows() {
            let value = (!lists.is_null(row)).then(|| {
                lists
                    .value(row)
                    .as_primitive::<Float64Type>()
                    .values()
                    .to_vec()
            });
            all.push((ids.value(row), value));
        }
    }
    all
}

/// The connector's own answer for `values` as one FP32 tensor `[n]`.
async fn reference(registry: &Registry, input: &str, values: &[f64]) -> Vec<f64> {
    let connector = inferlink::connector::LiveConnector::connect(
        registry,
        Arc::new(Connectors::new().with(inferlink_kserve::factory())),
        Selector::resource("kserve-predictor"),
        Consumer::default(),
    )
    .await
    .unwrap();
    let connector: &dyn InferenceConnector = &connector;
    let tensor = Tensor::new(
        input,
        vec![values.len()],
        values.iter().map(|&x| x as f32).collect::<Vec<f32>>(),
    )
    .unwrap();
    let answer = connector
        .infer(
            &ModelRef::new("doubler"),
            InferRequest::new().with_input(tensor),
        )
        .await
        .unwrap();
    answer.outputs[0]
        .to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

/// The shared KServe server's registry, functions and table; `None` when
/// skipped.
async fn setup() -> Option<(Arc<Registry>, InferenceFunctions, SessionContext)> {
    let server = live::shared_server(ServerKind::KServe).await?;
    let (registry, functions) = functions(&server.http_url()).await;
    let ctx = context(&functions).await;
    Some((registry, functions, ctx))
}

const TARGET: &str = "resource=kserve-predictor,model=doubler";

#[tokio::test(flavor = "multi_thread")]
async fn every_row_is_the_connectors_own_answer_per_row_and_in_batches() {
    let Some((registry, functions, ctx)) = setup().await else {
        return;
    };
    let mut want = Vec::new();
    for id in 1..=ROWS {
        want.push(match id {
            7 | 8 => None,
            _ => Some(reference(&registry, "input-0", &numbers(id)).await),
        });
    }
    // The reference is the doubler's answer, so the check can fail.
    assert_eq!(want[0], Some(numbers(1).iter().map(|x| x * 2.0).collect()));
    for target in [TARGET.to_owned(), format!("{TARGET},batch=4")] {
        let got = id_values(
            &query(
                &ctx,
                &format!("SELECT id, infer('{target}', 'input-0', x) FROM t ORDER BY id"),
            )
            .await
            .unwrap(),
        );
        assert_eq!(got.len(), ROWS, "{target}");
        for (i, (id, value)) in got.into_iter().enumerate() {
            assert_eq!(id, i as i64 + 1);
            assert_eq!(value, want[i], "{target}: row {id}");
        }
    }
    // A scalar column: one number per row, sent as FP64.
    let got = id_values(
        &query(
            &ctx,
            &format!("SELECT id, infer('{TARGET},datatype=FP64', 'input-0', n) FROM t ORDER BY id"),
        )
        .await
        .unwrap(),
    );
    for (id, value) in got {
        assert_eq!(value, Some(vec![id as f64 / 2.0]), "row {id}");
    }
    assert_eq!(functions.rows_done(), 3 * ROWS as u64);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_the_server_refuses_fails_alone_or_fails_the_query() {
    let Some((registry, _, ctx)) = setup().await else {
        return;
    };
    // Row 5 asks the server for a model it does not have.
    let per_row = format!(
        "CASE WHEN id = 5 THEN 'resource=kserve-predictor,model=no-such-model' ELSE '{TARGET},batch=8' END"
    );
    let batches = query(
        &ctx,
        &format!(
            "SELECT id, r['value'], r['error'] FROM \
             (SELECT id, try_infer({per_row}, 'input-0', x) AS r FROM t) ORDER BY id"
        ),
    )
    .await
    .unwrap();
    let values = id_values(&batches);
    let mut errors = Vec::new();
    for batch in &batches {
        let column = batch.column(2).as_string::<i32>();
        errors.extend(
            (0..batch.num_rows()).map(|r| (!column.is_null(r)).then(|| column.value(r).to_owned())),
        );
    }
    assert_eq!(values.len(), ROWS);
    for ((id, value), error) in values.into_iter().zip(errors) {
        match id {
            5 => {
                assert_eq!(value, None);
                let error = error.expect("row 5 has an error");
                assert!(error.contains("no-such-model"), "{error}");
            }
            7 | 8 => assert_eq!((value, error), (None, None), "row {id}"),
            _ => {
                assert_eq!(error, None, "row {id}");
                let want = reference(&registry, "input-0", &numbers(id as usize)).await;
                assert_eq!(value, Some(want), "row {id}");
            }
        }
    }
    // `infer` fails the query with the row's typed error.
    let failed = query(
        &ctx,
        &format!("SELECT id, infer({per_row}, 'input-0', x) FROM t"),
    )
    .await
    .unwrap_err();
    let error = find_inferlink_error(&failed).expect("an inferlink error inside");
    assert_ne!(error.kind(), ErrorKind::Internal, "{error}");
    assert!(error.to_string().contains("no-such-model"), "{error}");
    // An INT32 input refuses a fraction before sending, for that row alone.
    let batches = query(
        &ctx,
        &format!(
            "SELECT id, r['value'], r['error'] FROM (SELECT id, \
             try_infer('{TARGET},datatype=INT32', 'input-0', n) AS r FROM t) ORDER BY id"
        ),
    )
    .await
    .unwrap();
    for (id, value) in id_values(&batches) {
        if id % 4 == 0 {
            assert_eq!(value, Some(vec![id as f64 / 2.0]), "row {id}");
        } else {
            assert_eq!(value, None, "row {id}");
        }
    }
}

/// The inferlink error inside a DataFusion error, however deeply wrapped.
fn find_inferlink_error(error: &datafusion::error::DataFusionError) -> Option<&inferlink::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(found) = e.downcast_ref::<inferlink::Error>() {
            return Some(found);
        }
        source = match e.downcast_ref::<datafusion::error::DataFusionError>() {
            Some(datafusion::error::DataFusionError::External(inner)) => Some(inner.as_ref()),
            Some(datafusion::error::DataFusionError::Context(_, inner)) => Some(inner.as_ref()),
            Some(datafusion::error::DataFusionError::Shared(inner)) => Some(inner.as_ref()),
            _ => e.source(),
        };
    }
    None
}
