//! The `llama-cpp-workers` kind answers embedding requests concurrently, and the
//! `llama-cpp` kind's embedding server does not: the reason `scripts/bench-openai`
//! compares clients at concurrency 8 and 32 against the former (docs/testing.md,
//! "llama-cpp-workers"; docs/performance.md).
//!
//! The probe proves overlap by order, not by timing: it sends one long request (A),
//! waits until the server's processes have spent CPU on it (so A is being computed,
//! not merely queued), then sends several short requests at once, each on its own
//! connection, and asks whether the first short answer arrived while A was still
//! unanswered. A server that computes one request at a time cannot answer a short
//! request before it has finished A; a server with an idle worker answers it at once.
//!
//! Without the venv these tests print `skipped: …` and pass, unless
//! `INFERLINK_REQUIRE_LIVE=1` makes that a failure.

use std::time::{Duration, Instant};

use inferlink_testkit::servers::{self, LLAMA_CPP_EMBEDDING_MODEL, RunningServer, ServerKind};
use serde_json::json;
use tokio::task::JoinSet;

/// Short requests sent at once while A is being computed. With two workers and
/// connections spread at random, all of them land on A's worker with odds 2^-16.
const SHORT_REQUESTS: usize = 16;

/// CPU (clock ticks, normally 10 ms each) the server's process group must have
/// spent since A was sent before the short requests go: far more than idle
/// processes use, far less than A takes.
const CPU_TICKS_FOR_A: u64 = 20;

/// Bounds every wait of the probe (a hang fails the test instead of blocking it).
const PROBE_DEADLINE: Duration = Duration::from_secs(300);

async fn shared(kind: ServerKind) -> Option<&'static RunningServer> {
    tokio::task::spawn_blocking(move || servers::shared_or_skip(kind))
        .await
        .expect("the start task")
}

/// One text of `words` words, `count` times, as an embedding request body.
fn embedding_body(count: usize, words: usize) -> String {
    let text = vec!["alpha beta gamma delta"; words / 4].join(" ");
    json!({ "model": LLAMA_CPP_EMBEDDING_MODEL, "input": vec![text; count] }).to_string()
}

/// POSTs `body` to `url`/v1/embeddings on a new connection (a client of its own)
/// and checks that it was answered with one vector per input.
async fn embed(url: String, body: String, inputs: usize) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(PROBE_DEADLINE)
        .build()
        .expect("a reqwest client");
    let reply = client
        .post(format!("{url}/v1/embeddings"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST /v1/embeddings");
    let status = reply.status().as_u16();
    let bytes = reply.bytes().await.expect("the answer body");
    let answer: serde_json::Value = serde_json::from_slice(&bytes).expect("a JSON answer");
    assert_eq!(status, 200, "answer: {answer}");
    assert_eq!(answer["data"].as_array().map(Vec::len), Some(inputs));
}

/// Utime + stime (clock ticks) of every process in process group `pgid`, from `/proc`.
fn group_cpu_ticks(pgid: u32) -> u64 {
    group_processes(pgid)
        .iter()
        .map(|stat| stat.utime + stat.stime)
        .sum()
}

/// The fields of `/proc/PID/stat` the probe reads.
struct ProcStat {
    pid: u32,
    parent: u32,
    utime: u64,
    stime: u64,
}

/// Every process of group `pgid`.
fn group_processes(pgid: u32) -> Vec<ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the command name, which is in parentheses and may hold spaces:
            // state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
            let rest: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
            let parent = rest.get(1)?.parse().ok()?;
            let group: u32 = rest.get(2)?.parse().ok()?;
            (group == pgid).then_some(ProcStat {
                pid,
                parent,
                utime: rest.get(11)?.parse().ok()?,
                stime: rest.get(12)?.parse().ok()?,
            })
        })
        .collect()
}

/// Whether a short request sent while a long one was being computed was answered
/// before the long one (see the module comment).
async fn answered_while_busy(url: &str, pgid: u32) -> bool {
    let before = group_cpu_ticks(pgid);
    // A: six texts of 400 words (about 2 400 tokens), seconds of CPU on this model.
    let long = tokio::spawn(embed(url.to_owned(), embedding_body(6, 400), 6));
    let deadline = Instant::now() + PROBE_DEADLINE;
    while group_cpu_ticks(pgid) < before + CPU_TICKS_FOR_A {
        assert!(
            !long.is_finished(),
            "the long request was answered before the server had spent \
             {CPU_TICKS_FOR_A} ticks on it: the probe cannot judge"
        );
        assert!(
            Instant::now() < deadline,
            "the server spent no CPU on the long request"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut short = JoinSet::new();
    for _ in 0..SHORT_REQUESTS {
        short.spawn(embed(url.to_owned(), embedding_body(1, 40), 1));
    }
    let first = tokio::time::timeout(PROBE_DEADLINE, short.join_next())
        .await
        .expect("a short answer within the deadline")
        .expect("short requests were sent");
    let long_was_pending = !long.is_finished();
    first.expect("the first short request");
    while let Some(done) = tokio::time::timeout(PROBE_DEADLINE, short.join_next())
        .await
        .expect("every short answer within the deadline")
    {
        done.expect("a short request");
    }
    tokio::time::timeout(PROBE_DEADLINE, long)
        .await
        .expect("the long answer within the deadline")
        .expect("the long request");
    long_was_pending
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_kind_answers_while_another_request_is_computed() {
    let Some(server) = shared(ServerKind::LlamaCppWorkers).await else {
        return;
    };
    let url = server.embedding_url().expect("an embedding URL");
    assert_eq!(url, server.http_url());
    // The launcher (the group leader) and one child per worker, each loading the model
    // and listening on the shared port: the number the script reported.
    let workers: usize = server
        .field("workers")
        .expect("the script reports workers=")
        .parse()
        .expect("a number of workers");
    assert!(workers >= 2, "the default is 2 workers, got {workers}");
    let children: Vec<u32> = group_processes(server.pgid())
        .iter()
        .filter(|p| p.parent == server.pid())
        .filter(|p| {
            std::fs::read(format!("/proc/{}/cmdline", p.pid))
                .is_ok_and(|c| c.windows(19).any(|w| w == b"reuseport_worker.py"))
        })
        .map(|p| p.pid)
        .collect();
    assert_eq!(children.len(), workers, "worker processes: {children:?}");

    assert!(
        answered_while_busy(&url, server.pgid()).await,
        "no short request was answered while the long one was being computed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_single_process_server_answers_one_request_at_a_time() {
    // The negative control: the same probe on the llama-cpp kind's embedding server
    // (one process, its model behind a lock) must see no overlap, so the probe can fail.
    let Some(server) = shared(ServerKind::LlamaCpp).await else {
        return;
    };
    let url = server.embedding_url().expect("an embedding URL");
    assert!(
        !answered_while_busy(&url, server.pgid()).await,
        "a short request was answered while the long one was being computed"
    );
}
