//! A throwaway PostgreSQL cluster for tests.
//!
//! [`PgCluster::start`] creates a new cluster in a temporary directory with
//! the machine's own server binaries, starts it on a free `127.0.0.1` port
//! and waits until it accepts connections. Dropping the cluster stops the
//! server (`pg_ctl stop -m fast`, then `SIGKILL` to its postmaster if that
//! fails) and removes the directory. Only the server started here is ever
//! stopped or killed, by its own process id.
//!
//! * **Binaries.** `initdb`, `pg_ctl` and `postgres` are looked up in
//!   `$INFERLINK_PG_BIN` (a directory), then on `PATH`, then in
//!   `/usr/lib/postgresql/<version>/bin` (the newest version). `psql` is
//!   taken from the same directory or `PATH`.
//! * **Root.** `initdb` refuses to run as root, so when the tests run as
//!   root the cluster is created and run as the `postgres` user
//!   (`runuser -u postgres -- …`), which is created with `useradd` when
//!   missing; the temporary directory is handed to that user.
//! * **Access.** TCP connections (the ones the store makes) need the
//!   password of the `postgres` role ([`PgCluster::url`] carries it, so tests
//!   can check that it never leaks); the Unix socket in the temporary
//!   directory trusts local users ([`PgCluster::psql`] uses it).
//! * **Settings.** `listen_addresses=127.0.0.1`, `fsync=on`; `initdb` runs
//!   with `--no-sync` (the cluster is thrown away, only the running server's
//!   durability matters to the tests).
//!
//! Tests call [`PgCluster::start_or_skip`]: when no binaries are found it
//! prints `skipped: …` to stderr and returns `None`, unless
//! `INFERLINK_REQUIRE_POSTGRES=1` is set (as `scripts/test` does), in which
//! case it panics, so a provisioned run never passes by skipping.
//!
//! ```no_run
//! use inferlink_testkit::postgres::PgCluster;
//!
//! let Some(cluster) = PgCluster::start_or_skip("my_test") else { return };
//! let url = cluster.url(); // postgres://postgres:<password>@127.0.0.1:<port>/postgres
//! assert_eq!(cluster.psql("SELECT 1 + 1").unwrap(), "2");
//! ```

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Set to `1` to make a test that cannot start PostgreSQL fail instead of skipping.
pub const REQUIRE_ENV: &str = "INFERLINK_REQUIRE_POSTGRES";
/// A directory holding `initdb`, `pg_ctl` and `postgres`, searched first.
pub const BIN_ENV: &str = "INFERLINK_PG_BIN";

/// The server user when running as root.
const SERVER_USER: &str = "postgres";
/// How long `pg_ctl` may wait for a start, stop or restart, in seconds.
const PG_CTL_WAIT_SECS: &str = "60";
/// How many ports to try when another process takes the chosen one first.
const PORT_ATTEMPTS: usize = 5;

/// A running throwaway PostgreSQL cluster; stopped and deleted on drop.
#[derive(Debug)]
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    password: String,
    /// `Some("postgres")` when commands must run as that user.
    run_as: Option<String>,
    /// The postmaster's process id while the server runs.
    pid: Option<u32>,
}

/// True when `INFERLINK_REQUIRE_POSTGRES=1`: tests must not skip.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`, if the machine has one.
pub fn find_binaries() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(dir) = std::env::var_os(BIN_ENV).map(PathBuf::from) {
        return complete(&dir).then_some(dir);
    }
    // On PATH (often symlinks into the versioned directory): use the real
    // directory, where pg_ctl also finds `postgres`.
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if let Ok(real) = fs::canonicalize(dir.join("initdb"))
                && let Some(real_dir) = real.parent()
                && complete(real_dir)
            {
                return Some(real_dir.to_owned());
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

impl PgCluster {
    /// Starts a cluster for `test`, or explains why not.
    ///
    /// Without server binaries: prints `skipped: <test>: …` to stderr and
    /// returns `None`, or panics when [`required`]. Binaries that are there
    /// but fail to start a cluster always panic, with the server's log.
    pub fn start_or_skip(test: &str) -> Option<PgCluster> {
        if find_binaries().is_none() {
            let why = format!(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in ${BIN_ENV}, on PATH or in /usr/lib/postgresql/*/bin; run scripts/provision-postgres"
            );
            if required() {
                panic!("{test}: {why} ({REQUIRE_ENV}=1 forbids skipping)");
            }
            eprintln!("skipped: {test}: {why}");
            return None;
        }
        match PgCluster::start() {
            Ok(cluster) => Some(cluster),
            Err(e) => panic!("{test}: cannot start a throwaway PostgreSQL cluster: {e}"),
        }
    }

    /// Creates and starts a new cluster; the error says what failed, with the server log.
    pub fn start() -> io::Result<PgCluster> {
        let bin = find_binaries().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found",
            )
        })?;
        let dir = tempfile::Builder::new().prefix("inferlink-pg-").tempdir()?;
        let run_as = if is_root()? {
            ensure_server_user()?;
            let (uid, gid) = user_ids(SERVER_USER)?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
            Some(SERVER_USER.to_owned())
        } else {
            None
        };
        let password = random_password();
        let mut cluster = PgCluster {
            dir,
            bin,
            port: 0,
            password,
            run_as,
            pid: None,
        };
        cluster.init()?;
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            cluster.port = free_port()?;
            match cluster.start_server() {
                Ok(()) => return Ok(cluster),
                Err(e) => {
                    let log = cluster.log();
                    let taken = log.contains("could not bind") || log.contains("already in use");
                    last_error = Some(e);
                    if !taken {
                        break;
                    }
                }
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no port could be used")))
    }

    /// A connection URL for the `postgres` database, password included.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// A connection URL for database `dbname` (create it with [`PgCluster::psql`] first).
    pub fn url_for(&self, dbname: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{dbname}",
            self.password, self.port
        )
    }

    /// The password of the `postgres` role.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The TCP port on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The postmaster's process id while the server runs.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The server log so far (empty if unreadable).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Restarts the server with `pg_ctl restart -m immediate`: every
    /// connection is cut without a clean shutdown, and the server replays its
    /// WAL on start (crash recovery). Returns when it accepts connections again.
    pub fn restart_immediate(&mut self) -> io::Result<()> {
        let data = self.data_dir();
        let log = self.log_path();
        let options = self.server_options();
        self.pg_ctl([
            "-D".as_ref(),
            data.as_os_str(),
            "-l".as_ref(),
            log.as_os_str(),
            "-m".as_ref(),
            "immediate".as_ref(),
            "-w".as_ref(),
            "-t".as_ref(),
            PG_CTL_WAIT_SECS.as_ref(),
            "-o".as_ref(),
            options.as_ref(),
            "restart".as_ref(),
        ])?;
        self.after_start()
    }

    /// Stops the server (`pg_ctl stop -m fast`); [`PgCluster::start_again`] starts it again.
    pub fn stop(&mut self) -> io::Result<()> {
        if self.pid.is_none() {
            return Ok(());
        }
        let data = self.data_dir();
        self.pg_ctl([
            "-D".as_ref(),
            data.as_os_str(),
            "-m".as_ref(),
            "fast".as_ref(),
            "-w".as_ref(),
            "-t".as_ref(),
            PG_CTL_WAIT_SECS.as_ref(),
            "stop".as_ref(),
        ])?;
        // pg_ctl returns once the pid file is gone; the process exits a moment later.
        if let Some(pid) = self.pid.take() {
            wait_gone(pid, Duration::from_secs(10));
        }
        Ok(())
    }

    /// Starts a stopped server again on the same port.
    pub fn start_again(&mut self) -> io::Result<()> {
        if self.pid.is_some() {
            return Ok(());
        }
        self.start_server()
    }

    /// Runs SQL through `psql` on the Unix socket as the `postgres` role and
    /// returns its unaligned, tuples-only output, trimmed. A failing
    /// statement is an error carrying psql's message.
    pub fn psql(&self, sql: &str) -> io::Result<String> {
        let psql = [self.bin.join("psql")]
            .into_iter()
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("psql"));
        let socket_dir = self.socket_dir();
        let port = self.port.to_string();
        let output = Command::new(psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&socket_dir)
            .args(["-p", &port, "-U", "postgres", "-d", "postgres", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "psql failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Runs `pg_dump` (from the cluster's binaries) with `args` against the
    /// `postgres` database as the superuser; returns the dump.
    pub fn pg_dump(&self, args: &[&str]) -> io::Result<String> {
        let socket_dir = self.socket_dir();
        let port = self.port.to_string();
        let output = Command::new(self.bin.join("pg_dump"))
            .arg("-h")
            .arg(&socket_dir)
            .args(["-p", &port, "-U", "postgres", "-d", "postgres"])
            .args(args)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "pg_dump failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Turns TLS on (`ssl = on`, reloaded without a restart) with a new test
    /// CA and a server certificate for `127.0.0.1` and `localhost` signed by
    /// it, made with the `openssl` command; returns the CA certificate's PEM
    /// file. Plain connections keep working.
    pub fn enable_tls(&self) -> io::Result<PathBuf> {
        let dir = self.dir.path().join("tls");
        fs::create_dir_all(&dir)?;
        let ca_key = dir.join("ca.key");
        let ca = dir.join("ca.crt");
        let key = dir.join("server.key");
        let csr = dir.join("server.csr");
        let cert = dir.join("server.crt");
        let ext = dir.join("server.ext");
        fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )?;
        let openssl = |args: &[&OsStr]| -> io::Result<()> {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .map_err(|e| io::Error::new(e.kind(), format!("cannot run openssl: {e}")))?;
            check("openssl", &output, "")
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut args: Vec<&OsStr> = vec!["req".as_ref(), "-x509".as_ref()];
        args.extend(ec.iter().map(OsStr::new));
        args.extend([
            "-keyout".as_ref(),
            ca_key.as_os_str(),
            "-out".as_ref(),
            ca.as_os_str(),
            "-days".as_ref(),
            "2".as_ref(),
            "-subj".as_ref(),
            "/CN=inferlink test CA".as_ref(),
            "-addext".as_ref(),
            "basicConstraints=critical,CA:TRUE".as_ref(),
            "-addext".as_ref(),
            "keyUsage=critical,keyCertSign,cRLSign".as_ref(),
        ]);
        openssl(&args)?;
        let mut args: Vec<&OsStr> = vec!["req".as_ref()];
        args.extend(ec.iter().map(OsStr::new));
        args.extend([
            "-keyout".as_ref(),
            key.as_os_str(),
            "-out".as_ref(),
            csr.as_os_str(),
            "-subj".as_ref(),
            "/CN=127.0.0.1".as_ref(),
        ]);
        openssl(&args)?;
        openssl(&[
            "x509".as_ref(),
            "-req".as_ref(),
            "-in".as_ref(),
            csr.as_os_str(),
            "-CA".as_ref(),
            ca.as_os_str(),
            "-CAkey".as_ref(),
            ca_key.as_os_str(),
            "-CAcreateserial".as_ref(),
            "-out".as_ref(),
            cert.as_os_str(),
            "-days".as_ref(),
            "2".as_ref(),
            "-extfile".as_ref(),
            ext.as_os_str(),
        ])?;
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&key, fs::Permissions::from_mode(0o600))?;
        }
        if self.run_as.is_some() {
            let (uid, gid) = user_ids(SERVER_USER)?;
            for path in [&dir, &key, &cert] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
            }
        }
        self.psql(&format!(
            "ALTER SYSTEM SET ssl_cert_file = '{}'",
            cert.display()
        ))?;
        self.psql(&format!(
            "ALTER SYSTEM SET ssl_key_file = '{}'",
            key.display()
        ))?;
        self.psql("ALTER SYSTEM SET ssl = on")?;
        self.psql("SELECT pg_reload_conf()")?;
        // The reload is asynchronous: wait (bounded) until the server reports it.
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.psql("SHOW ssl")? != "on" {
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "the server did not turn TLS on\n--- server log ---\n{}",
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(ca)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn server_options(&self) -> String {
        format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c fsync=on -c max_connections=100",
            self.port,
            self.socket_dir().display()
        )
    }

    fn init(&mut self) -> io::Result<()> {
        let pwfile = self.dir.path().join("pwfile");
        fs::write(&pwfile, format!("{}\n", self.password))?;
        let socket_dir = self.socket_dir();
        fs::create_dir(&socket_dir)?;
        if self.run_as.is_some() {
            let (uid, gid) = user_ids(SERVER_USER)?;
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))?;
            std::os::unix::fs::chown(&socket_dir, Some(uid), Some(gid))?;
        }
        let data = self.data_dir();
        let output = self.run(
            "initdb",
            [
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
                "--auth-local=trust".as_ref(),
                "--auth-host=scram-sha-256".as_ref(),
                "--pwfile".as_ref(),
                pwfile.as_os_str(),
                "--no-sync".as_ref(),
                "--no-instructions".as_ref(),
            ],
        )?;
        fs::remove_file(&pwfile)?;
        check("initdb", &output, "")
    }

    fn start_server(&mut self) -> io::Result<()> {
        let data = self.data_dir();
        let log = self.log_path();
        let options = self.server_options();
        self.pg_ctl([
            "-D".as_ref(),
            data.as_os_str(),
            "-l".as_ref(),
            log.as_os_str(),
            "-w".as_ref(),
            "-t".as_ref(),
            PG_CTL_WAIT_SECS.as_ref(),
            "-o".as_ref(),
            options.as_ref(),
            "start".as_ref(),
        ])?;
        self.after_start()
    }

    /// Records the new postmaster's pid and checks the TCP port answers.
    fn after_start(&mut self) -> io::Result<()> {
        let pid_file = fs::read_to_string(self.data_dir().join("postmaster.pid"))?;
        self.pid = pid_file.lines().next().and_then(|l| l.trim().parse().ok());
        if self.pid.is_none() {
            return Err(io::Error::other("postmaster.pid holds no process id"));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port);
        loop {
            match TcpStream::connect_timeout(&addr.into(), Duration::from_secs(1)) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(io::Error::other(format!(
                        "the server started but 127.0.0.1:{} does not accept connections: {e}",
                        self.port
                    )));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn pg_ctl<'a>(&self, args: impl IntoIterator<Item = &'a OsStr>) -> io::Result<()> {
        let output = self.run("pg_ctl", args)?;
        check("pg_ctl", &output, &self.log())
    }

    /// Runs one of the server binaries, as the server user when needed.
    fn run<'a>(
        &self,
        program: &str,
        args: impl IntoIterator<Item = &'a OsStr>,
    ) -> io::Result<Output> {
        let program = self.bin.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("LC_ALL", "C")
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run {}: {e}", program.display())))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let Some(pid) = self.pid else {
            return;
        };
        if self.stop().is_ok() {
            return;
        }
        // Only our own postmaster, by its id; its children exit when it dies.
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .output();
        self.pid = None;
    }
}

fn check(what: &str, output: &Output, log: &str) -> io::Result<()> {
    if output.status.success() {
        return Ok(());
    }
    let tail: Vec<&str> = log.lines().rev().take(20).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(io::Error::other(format!(
        "{what} failed ({}): {} {}\n--- server log (last lines) ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim(),
        tail.join("\n")
    )))
}

/// Waits (bounded) until process `pid` has exited or is a zombie (Linux `/proc`; elsewhere returns at once).
fn wait_gone(pid: u32, limit: Duration) {
    let deadline = Instant::now() + limit;
    while process_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) state …"
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn is_root() -> io::Result<bool> {
    let output = Command::new("id").arg("-u").output()?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

fn user_ids(user: &str) -> io::Result<(u32, u32)> {
    let id = |flag: &str| -> io::Result<u32> {
        let output = Command::new("id").args([flag, user]).output()?;
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .map_err(|_| io::Error::other(format!("cannot find the ids of user {user}")))
    };
    Ok((id("-u")?, id("-g")?))
}

/// Creates the `postgres` system user when the machine lacks it.
fn ensure_server_user() -> io::Result<()> {
    let exists = Command::new("id")
        .arg(SERVER_USER)
        .output()?
        .status
        .success();
    if exists {
        return Ok(());
    }
    let output = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            SERVER_USER,
        ])
        .output()?;
    check("useradd postgres", &output, "")
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// A password unique enough for a throwaway cluster (and easy to grep for in leak checks).
fn random_password() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("pw-{:x}-{:x}", nanos & 0xffff_ffff_ffff, std::process::id())
}
