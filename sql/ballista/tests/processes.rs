//! The two Ballista binaries start and stop as processes of their own (the
//! cluster proofs with a real model server are in `cli/tests/sql.rs`; this
//! package's integration test also makes `cargo test --workspace` build the
//! binaries those tests start).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_scheduler_listens_on_loopback_until_stopped_by_pid() {
    use std::os::unix::process::CommandExt as _;
    let port = inferlink_testkit::servers::free_loopback_port();
    let mut scheduler = Command::new(env!("CARGO_BIN_EXE_inferlink-ballista-scheduler"))
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline || scheduler.try_wait().unwrap().is_some() {
            let _ = scheduler.kill();
            panic!("the scheduler did not listen on 127.0.0.1:{port}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    scheduler.kill().unwrap();
    scheduler.wait().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn an_executor_without_a_readable_registry_exits_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_database = dir.path().join("registry.db");
    std::fs::write(&not_a_database, b"this is not an SQLite file").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_inferlink-ballista-executor"))
        .args(["--scheduler", "127.0.0.1:9", "--store"])
        .arg(&not_a_database)
        .env_remove("INFERLINK_STORE")
        .env_remove("INFERLINK_MASTER_KEY")
        .env_remove("INFERLINK_KEY_FILE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("inferlink-ballista-executor: "),
        "{stderr}"
    );
    assert!(stderr.contains("registry.db"), "{stderr}");
}
