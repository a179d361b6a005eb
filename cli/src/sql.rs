//! `sql` (cargo feature `sql`): a DataFusion query over Parquet, CSV or
//! JSON files with inferlink's SQL functions (`embed`, `rerank`, `generate`
//! and their `try_*` forms; crate `inferlink-datafusion`), on this machine
//! or on a Ballista cluster (`--cluster df://HOST:PORT`, crate
//! `inferlink-ballista`). The result goes to a Parquet, CSV or JSON Lines
//! file, or as JSON lines to standard output. Docs: docs/sql.md.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{
    CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionConfig, SessionContext,
};
use futures_util::StreamExt as _;
use inferlink::{Error, ErrorKind, Registry, Result};
use inferlink_datafusion::{InferenceFunctions, Options};

use crate::SqlArgs;

/// The file formats read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Parquet,
    Csv,
    Json,
}

impl Format {
    /// The format of `path`, by its extension.
    fn of(path: &Path, flag: &str) -> Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("parquet") => Ok(Format::Parquet),
            Some("csv") => Ok(Format::Csv),
            Some("json" | "jsonl" | "ndjson") => Ok(Format::Json),
            _ => Err(Error::invalid_at(
                flag.to_owned(),
                format!(
                    "\"{}\": the file name must end in .parquet, .csv, .json, .jsonl or .ndjson",
                    crate::output::printable(&path.display().to_string())
                ),
            )),
        }
    }
}

/// A DataFusion error as an inferlink error: the inferlink error inside it
/// when a function failed (its kind and message), else an `InvalidInput`
/// (SQL, planning, schema), `Unsupported` or `Unavailable` (execution, I/O)
/// error.
fn from_datafusion(e: DataFusionError) -> Error {
    let root = e.find_root();
    if let DataFusionError::External(inner) = root
        && let Some(found) = inner.downcast_ref::<Error>()
    {
        return Error::new(found.kind(), found.to_string());
    }
    let kind = match root {
        DataFusionError::SQL(..) | DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => {
            ErrorKind::InvalidInput
        }
        DataFusionError::NotImplemented(_) => ErrorKind::Unsupported,
        _ => ErrorKind::Unavailable,
    };
    Error::new(kind, format!("sql: {e}"))
}

/// Runs `sql`: registers the tables, runs the query, writes the result.
/// The summary (rows written, where) goes to `out`.
pub(crate) async fn run(registry: &Arc<Registry>, args: SqlArgs, out: &mut String) -> Result<()> {
    let query = match (&args.query, &args.query_file) {
        (Some(q), None) => q.clone(),
        (None, Some(file)) => crate::input::read(file)?.text,
        _ => {
            return Err(Error::invalid(
                "give the query as an argument or with --query-file (one of them)",
            ));
        }
    };
    let output_format = args
        .output
        .as_deref()
        .map(|p| Format::of(p, "--output"))
        .transpose()?;
    let functions = InferenceFunctions::new(Arc::clone(registry), crate::connect::connectors()?)
        .for_consumer(args.consumer.consumer())
        .with_options(Options {
            batch_rows: args.batch_rows,
            concurrency: args.concurrency,
        })?;
    let ctx = match &args.cluster {
        Some(url) => inferlink_ballista::cluster_context(url)
            .await
            .map_err(from_datafusion)?,
        None => {
            let ctx = SessionContext::new_with_config(
                SessionConfig::new().with_batch_size(args.batch_rows),
            );
            functions.register(&ctx);
            ctx
        }
    };
    for table in &args.tables {
        register_table(&ctx, table).await?;
    }
    let frame = ctx.sql(&query).await.map_err(from_datafusion)?;
    let mut stream = frame.execute_stream().await.map_err(from_datafusion)?;
    let schema = stream.schema();
    let mut sink = Sink::open(args.output.as_deref(), output_format, schema)?;
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| tokio::spawn(report(functions.clone())));
    let mut written = 0u64;
    let result = async {
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(from_datafusion)?;
            written += batch.num_rows() as u64;
            sink.write(&batch)?;
        }
        sink.finish()
    }
    .await;
    if let Some(task) = progress {
        task.abort();
        eprintln!();
    }
    result?;
    if let Some(path) = &args.output {
        out.push_str(&format!("{written} rows written to {}\n", path.display()));
    }
    Ok(())
}

/// `--table NAME=FILE`: the file registered under NAME, by its extension.
async fn register_table(ctx: &SessionContext, spec: &str) -> Result<()> {
    let (name, file) = spec
        .split_once('=')
        .filter(|(n, f)| !n.is_empty() && !f.is_empty())
        .ok_or_else(|| Error::invalid_at("--table", "is NAME=FILE"))?;
    // A directory is read whole; its format is that of its first file.
    let first_file = std::fs::read_dir(file).ok().and_then(|entries| {
        let mut names: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        names.into_iter().next()
    });
    let path = first_file.as_deref().unwrap_or(Path::new(file));
    let absolute = std::path::absolute(path)
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("--table {name}: {e}")))?;
    let location = match &first_file {
        Some(_) => format!(
            "{}/",
            std::path::absolute(file)
                .unwrap_or_else(|_| file.into())
                .display()
        ),
        None => absolute.to_string_lossy().into_owned(),
    };
    let ext = absolute
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    let registered = match Format::of(path, "--table")? {
        Format::Parquet => {
            ctx.register_parquet(
                name,
                &location,
                ParquetReadOptions::default().file_extension(&ext),
            )
            .await
        }
        Format::Csv => {
            ctx.register_csv(name, &location, CsvReadOptions::new().file_extension(&ext))
                .await
        }
        Format::Json => {
            ctx.register_json(
                name,
                &location,
                JsonReadOptions::default().file_extension(&ext),
            )
            .await
        }
    };
    registered.map_err(|e| from_datafusion(e).with_context("table", name.to_owned()))
}

/// Where result batches go.
enum Sink {
    Parquet(ArrowWriter<File>),
    Csv(datafusion::arrow::csv::Writer<File>),
    Json(datafusion::arrow::json::LineDelimitedWriter<Box<dyn Write>>),
}

impl Sink {
    fn open(path: Option<&Path>, format: Option<Format>, schema: SchemaRef) -> Result<Sink> {
        let create = |p: &Path| {
            File::create(p).map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("cannot create the output file {}: {e}", p.display()),
                )
            })
        };
        Ok(match (path, format) {
            (Some(p), Some(Format::Parquet)) => Sink::Parquet(
                ArrowWriter::try_new(create(p)?, schema, None)
                    .map_err(|e| Error::new(ErrorKind::Internal, format!("parquet: {e}")))?,
            ),
            (Some(p), Some(Format::Csv)) => {
                Sink::Csv(datafusion::arrow::csv::Writer::new(create(p)?))
            }
            (Some(p), _) => Sink::Json(datafusion::arrow::json::LineDelimitedWriter::new(
                Box::new(std::io::BufWriter::new(create(p)?)),
            )),
            (None, _) => Sink::Json(datafusion::arrow::json::LineDelimitedWriter::new(Box::new(
                std::io::BufWriter::new(std::io::stdout()),
            ))),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let result = match self {
            Sink::Parquet(w) => w.write(batch).map_err(|e| e.to_string()),
            Sink::Csv(w) => w.write(batch).map_err(|e| e.to_string()),
            Sink::Json(w) => w.write(batch).map_err(|e| e.to_string()),
        };
        result.map_err(|e| Error::new(ErrorKind::Unavailable, format!("writing the result: {e}")))
    }

    fn finish(self) -> Result<()> {
        let result = match self {
            Sink::Parquet(w) => w.close().map(drop).map_err(|e| e.to_string()),
            Sink::Csv(w) => w.into_inner().sync_all().map_err(|e| e.to_string()),
            Sink::Json(mut w) => w
                .finish()
                .map_err(|e| e.to_string())
                .and_then(|()| w.into_inner().flush().map_err(|e| e.to_string())),
        };
        result.map_err(|e| Error::new(ErrorKind::Unavailable, format!("finishing the result: {e}")))
    }
}

/// Progress on a terminal: rows the functions answered so far.
async fn report(functions: InferenceFunctions) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        eprint!("\rinferlink sql: {} rows answered", functions.rows_done());
    }
}
