//! The throwaway PostgreSQL cluster harness starts, answers, restarts, stops and cleans up.
#![cfg(unix)]

use inferlink_testkit::postgres::PgCluster;

#[test]
fn a_cluster_starts_restarts_stops_and_is_removed() {
    let Some(mut cluster) =
        PgCluster::start_or_skip("a_cluster_starts_restarts_stops_and_is_removed")
    else {
        return;
    };
    assert_eq!(cluster.psql("SELECT 1 + 1").unwrap(), "2");
    assert_eq!(cluster.psql("SHOW fsync").unwrap(), "on");
    assert_eq!(cluster.psql("SHOW listen_addresses").unwrap(), "127.0.0.1");
    let url = cluster.url();
    assert!(url.starts_with("postgres://postgres:"), "{url}");
    assert!(url.contains(&format!("@127.0.0.1:{}/postgres", cluster.port())));
    assert!(url.contains(cluster.password()));

    cluster
        .psql("CREATE TABLE t (x int); INSERT INTO t VALUES (7)")
        .unwrap();
    let before = cluster.pid().unwrap();
    cluster.restart_immediate().unwrap();
    let after = cluster.pid().unwrap();
    assert_ne!(before, after, "a new postmaster runs after the restart");
    assert_eq!(
        cluster.psql("SELECT x FROM t").unwrap(),
        "7",
        "committed data survives"
    );
    assert!(
        cluster.psql("SELECT nope").is_err(),
        "a failing statement is an error"
    );

    cluster.stop().unwrap();
    assert!(cluster.pid().is_none());
    assert!(
        cluster.psql("SELECT 1").is_err(),
        "a stopped server does not answer"
    );
    cluster.start_again().unwrap();
    assert_eq!(cluster.psql("SELECT x FROM t").unwrap(), "7");

    let data = cluster.data_dir();
    assert!(data.join("PG_VERSION").is_file());
    let pid = cluster.pid().unwrap();
    drop(cluster);
    assert!(!data.exists(), "the cluster's directory is removed");
    assert!(!running_postgres(pid), "the postmaster {pid} is gone");
}

/// True when `pid` is a live (not zombie) process named `postgres`.
fn running_postgres(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state …": a zombie only waits for its adopter to reap it.
    let Some((name, rest)) = stat
        .split_once(" (")
        .and_then(|(_, rest)| rest.rsplit_once(") "))
    else {
        return false;
    };
    name == "postgres" && !rest.starts_with('Z')
}
