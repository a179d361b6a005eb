//! `inferlink-ballista-executor`: a Ballista executor whose inferlink SQL
//! functions call the models of a registry this process opens itself.
//!
//! `inferlink-ballista-executor --scheduler 127.0.0.1:50050 --port 50051
//! --grpc-port 50052 --store PATH|URL [--key-file F]`; the master key may
//! also come from `INFERLINK_MASTER_KEY` / `INFERLINK_KEY_FILE`, the store
//! from `INFERLINK_STORE` (keep PostgreSQL passwords out of the process
//! list). Prints `inferlink-ballista-executor: rows answered N` to standard
//! error whenever its functions have answered more rows.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use clap::Parser;
use inferlink_datafusion::{InferenceFunctions, Options};

/// A Ballista executor with inferlink's SQL functions registered.
#[derive(Debug, Parser)]
#[command(name = "inferlink-ballista-executor", version)]
struct Args {
    /// The scheduler, HOST:PORT
    #[arg(long, default_value = "127.0.0.1:50050")]
    scheduler: String,
    /// The address the executor listens on
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// The executor's Arrow Flight port (results are fetched from it)
    #[arg(long, default_value_t = 50051)]
    port: u16,
    /// The executor's gRPC port
    #[arg(long, default_value_t = 50052)]
    grpc_port: u16,
    /// Tasks run at once (default: the machine's cores)
    #[arg(long, default_value_t = 0)]
    vcores: usize,
    /// Where shuffle files go (default: a temporary directory)
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// The registry: an SQLite file or a postgres:// URL
    #[arg(long, env = "INFERLINK_STORE", hide_env_values = true)]
    store: String,
    /// The key file of the master key
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// The PostgreSQL schema of the registry's tables
    #[arg(long, env = "INFERLINK_PG_SCHEMA", default_value = "inferlink")]
    pg_schema: String,
    /// Seconds between heartbeats to the scheduler (keep it below the scheduler's
    /// --executor-timeout-seconds)
    #[arg(long, default_value_t = 60)]
    heartbeat_seconds: u64,
    /// generate calls in flight at most, per batch
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("inferlink-ballista-executor: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (scheduler_host, scheduler_port) = args
        .scheduler
        .rsplit_once(':')
        .ok_or("--scheduler is HOST:PORT")?;
    let registry = inferlink_ballista::store::open_registry(
        &args.store,
        args.key_file.as_deref(),
        &args.pg_schema,
    )
    .await?;
    let functions = InferenceFunctions::new(
        Arc::new(registry),
        inferlink_ballista::executor_connectors()?,
    )
    .with_options(Options {
        concurrency: args.concurrency,
        ..Options::default()
    })?;
    let config = ExecutorProcessConfig {
        bind_host: args.bind.clone(),
        external_host: Some(args.bind),
        port: args.port,
        grpc_port: args.grpc_port,
        scheduler_host: scheduler_host.to_owned(),
        scheduler_port: scheduler_port.parse()?,
        vcores: args.vcores,
        executor_heartbeat_interval_seconds: args.heartbeat_seconds,
        work_dir: args.work_dir.map(|d| d.to_string_lossy().into_owned()),
        override_function_registry: Some(Arc::new(inferlink_ballista::executor_function_registry(
            &functions,
        ))),
        ..ExecutorProcessConfig::default()
    };
    tokio::spawn(report_rows(functions));
    eprintln!(
        "inferlink-ballista-executor: starting, scheduler {}",
        args.scheduler
    );
    start_executor_process(Arc::new(config)).await?;
    Ok(())
}

/// Prints the rows answered so far whenever the count moved.
async fn report_rows(functions: InferenceFunctions) {
    let mut reported = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = functions.rows_done();
        if now != reported {
            reported = now;
            eprintln!("inferlink-ballista-executor: rows answered {now}");
        }
    }
}
