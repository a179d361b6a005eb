//! `inferlink-ballista-scheduler`: a Ballista scheduler that knows
//! inferlink's SQL functions (plan-only: executors run them).
//!
//! `inferlink-ballista-scheduler [--bind 127.0.0.1] [--port 50050]`; stops on
//! SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use clap::Parser;

/// A Ballista scheduler with inferlink's SQL functions registered.
#[derive(Debug, Parser)]
#[command(name = "inferlink-ballista-scheduler", version)]
struct Args {
    /// The address the scheduler's gRPC service listens on
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// The port of the scheduler's gRPC service (what clients and executors connect to)
    #[arg(long, default_value_t = 50050)]
    port: u16,
    /// An executor silent for this long is dead: its tasks run again elsewhere
    #[arg(long, default_value_t = 180)]
    executor_timeout_seconds: u64,
    /// How often dead executors are looked for
    #[arg(long, default_value_t = 15)]
    expire_interval_seconds: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let address: SocketAddr = match format!("{}:{}", args.bind, args.port).parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("inferlink-ballista-scheduler: bad --bind/--port: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let config = SchedulerConfig {
        bind_host: args.bind.clone(),
        bind_port: args.port,
        external_host: args.bind,
        executor_timeout_seconds: args.executor_timeout_seconds,
        no_executors_grace_period_seconds: args.executor_timeout_seconds,
        expire_dead_executor_interval_seconds: args.expire_interval_seconds,
        override_session_builder: Some(inferlink_ballista::scheduler_session_builder()),
        ..SchedulerConfig::default()
    };
    let run = async {
        let cluster = BallistaCluster::new_from_config(&config).await?;
        start_server(cluster, address, Arc::new(config)).await
    };
    eprintln!("inferlink-ballista-scheduler: listening on {address}");
    match run.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("inferlink-ballista-scheduler: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
