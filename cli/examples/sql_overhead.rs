//! What `inferlink sql` costs besides the model: planning, and the Arrow
//! work per record batch (casting the text column, building the vector
//! column), measured with a hand-written in-process **stand-in** embedding
//! connector that answers at once with a fixed 384-dimension vector (no
//! server, no network), so that nothing but DataFusion and inferlink's
//! functions is timed. Reported in docs/performance.md ("SQL").
//!
//! `cargo run --release -p inferlink-cli --features sql --example sql_overhead [ROWS]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use inferlink::{
    ConnectTarget, ConnectorFactory, ConnectorInfo, Connectors, EmbedRequest, EmbedResponse,
    Embedding, Health, InferenceConnector, MemoryStore, ModelRef, PutMode, Registry, Result,
    async_trait,
};
use inferlink_datafusion::{InferenceFunctions, Options};

/// The stand-in: every text gets the same vector, at once.
#[derive(Debug)]
struct InstantEmbedder(ConnectorInfo);

#[async_trait]
impl InferenceConnector for InstantEmbedder {
    fn info(&self) -> &ConnectorInfo {
        &self.0
    }
    async fn health(&self) -> Result<Health> {
        Ok(Health::SERVING)
    }
    fn as_embedding(&self) -> Option<&dyn Embedding> {
        Some(self)
    }
}

#[async_trait]
impl Embedding for InstantEmbedder {
    async fn embed(&self, _model: &ModelRef, request: EmbedRequest) -> Result<EmbedResponse> {
        EmbedResponse::new(vec![vec![0.125f32; 384]; request.texts.len()])
    }
}

#[derive(Debug)]
struct InstantFactory;

#[async_trait]
impl ConnectorFactory for InstantFactory {
    fn vendor(&self) -> &str {
        "stand-in"
    }
    fn products(&self) -> &[&str] {
        &["stand-in"]
    }
    async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn InferenceConnector>> {
        Ok(Arc::new(InstantEmbedder(ConnectorInfo::new(
            "stand-in",
            "none",
            target.url.clone(),
        ))))
    }
}

const RECORD: &str = "id: stand-in\nproduct: stand-in\nversion: \"1\"\nservices:\n  - id: embed\n    resource: stand-in\n    category: embedding\n    endpoints:\n      - url: http://127.0.0.1:9\n";

fn corpus(rows: usize, path: &std::path::Path) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("text", DataType::Utf8, false),
    ]));
    let ids = Int64Array::from_iter_values(1..=rows as i64);
    let texts = StringArray::from_iter_values(
        (1..=rows).map(|i| format!("Document {i} is about cats and trains.")),
    );
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(texts)]).unwrap();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

async fn context(functions: &InferenceFunctions, file: &str, batch_rows: usize) -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_batch_size(batch_rows));
    functions.register(&ctx);
    ctx.register_parquet("docs", file, ParquetReadOptions::default())
        .await
        .unwrap();
    ctx
}

/// The median of `runs` timings of `f`.
async fn median<F, Fut>(runs: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f().await;
        times.push(start.elapsed());
    }
    times.sort();
    times[runs / 2]
}

#[tokio::main]
async fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .map_or(10_000, |n| n.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("corpus.parquet");
    corpus(rows, &file);
    let file = file.to_str().unwrap().to_owned();
    let registry = Arc::new(Registry::open(MemoryStore::new()).await.unwrap());
    registry
        .put_all(
            inferlink::format::parse_records(RECORD).unwrap(),
            PutMode::Create,
        )
        .await
        .unwrap();
    let connectors = Connectors::new().with(InstantFactory);
    let embed = "SELECT id, embed('embedding,model=m', text) AS v FROM docs";
    let plain = "SELECT id, text FROM docs";
    println!("rows={rows}");
    for batch_rows in [256usize, 1024, 4096] {
        let functions = InferenceFunctions::new(Arc::clone(&registry), connectors.clone())
            .with_options(Options {
                batch_rows,
                ..Options::default()
            })
            .unwrap();
        let ctx = context(&functions, &file, batch_rows).await;
        let batches = rows.div_ceil(batch_rows);
        let plan = median(21, || async {
            let frame = ctx.sql(embed).await.unwrap();
            frame.create_physical_plan().await.unwrap();
        })
        .await;
        let run = |q: &'static str| {
            let ctx = ctx.clone();
            move || {
                let ctx = ctx.clone();
                async move {
                    let out = ctx.sql(q).await.unwrap().collect().await.unwrap();
                    assert_eq!(out.iter().map(RecordBatch::num_rows).sum::<usize>(), rows);
                }
            }
        };
        let with_embed = median(11, run(embed)).await;
        let without = median(11, run(plain)).await;
        let per_batch = with_embed.saturating_sub(without).as_secs_f64() * 1e6 / batches as f64;
        println!(
            "RESULT batch_rows={batch_rows} batches={batches} plan_ms={:.3} scan_only_ms={:.3} \
             scan_and_embed_ms={:.3} function_overhead_per_batch_us={per_batch:.1} per_row_us={:.3}",
            plan.as_secs_f64() * 1e3,
            without.as_secs_f64() * 1e3,
            with_embed.as_secs_f64() * 1e3,
            per_batch / batch_rows as f64,
        );
    }
}
