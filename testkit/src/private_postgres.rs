//! A PostgreSQL server of the test's own (initdb in a temporary directory, a free port), to
//! stop and start under load without disturbing the shared server every other test uses.
//! Needs the server's binaries (`/usr/lib/postgresql/<version>/bin`); as root it runs them as
//! the `postgres` user, since PostgreSQL refuses to run as root. Without them these tests are
//! reported as ignored, with a banner, unless `AGENTDESK_TEST_REQUIRE_PRIVATE_POSTGRES=1`.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use tempfile::TempDir;

pub struct PrivatePostgres {
    bin: PathBuf,
    data: TempDir,
    pub port: u16,
}

impl PrivatePostgres {
    /// A new cluster, started.
    pub async fn start() -> Self {
        tokio::task::spawn_blocking(|| {
            let bin = binaries().expect("PostgreSQL's binaries");
            let data = tempfile::tempdir().expect("temporary directory");
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let server = Self { bin, data, port };
            if as_root() {
                run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(server.data.path()));
            }
            server.pg("initdb", &["-D", &server.cluster(), "-U", "postgres", "--auth=trust", "-E", "UTF8"]);
            server
        })
        .await
        .unwrap()
        .started()
        .await
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn cluster(&self) -> String {
        self.data.path().join("cluster").display().to_string()
    }

    async fn started(self) -> Self {
        self.run_ctl(&["start", "-w", "-t", "60"]).await;
        self
    }

    /// Starts the stopped server again (on the same port and data).
    pub async fn start_again(&self) {
        self.run_ctl(&["start", "-w", "-t", "60"]).await;
    }

    /// Stops the server at once, cutting every connection, as an outage would.
    pub async fn stop(&self) {
        self.run_ctl(&["stop", "-m", "immediate", "-w"]).await;
    }

    async fn run_ctl(&self, args: &[&str]) {
        let log = self.data.path().join("server.log").display().to_string();
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.data.path().display());
        let mut all = vec!["-D".to_owned(), self.cluster(), "-l".to_owned(), log, "-o".to_owned(), options];
        all.extend(args.iter().map(|arg| arg.to_string()));
        let bin = self.bin.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            run(&mut command(&bin, "pg_ctl", &args));
        })
        .await
        .unwrap();
    }

    fn pg(&self, program: &str, args: &[&str]) {
        run(&mut command(&self.bin, program, args));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = command(&self.bin, "pg_ctl", &["-D", &self.cluster(), "stop", "-m", "immediate"]).output();
    }
}

fn as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

fn command(bin: &Path, program: &str, args: &[&str]) -> Command {
    let program = bin.join(program);
    if as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program).args(args);
        command
    } else {
        let mut command = Command::new(program);
        command.args(args);
        command
    }
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|error| panic!("{command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The newest installed server's binaries.
fn binaries() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    found.sort_by_key(|bin| {
        bin.parent().and_then(|version| version.file_name()?.to_str()?.parse::<u32>().ok()).unwrap_or(0)
    });
    found.pop()
}

/// Ok when a private server can be made here.
pub fn probe() -> Result<(), String> {
    binaries().map(drop).ok_or_else(|| "no PostgreSQL server binaries under /usr/lib/postgresql".into())
}

pub fn required() -> bool {
    std::env::var("AGENTDESK_TEST_REQUIRE_PRIVATE_POSTGRES").is_ok_and(|v| v == "1")
}

pub fn warn_skipped(reason: &str) {
    eprintln!();
    eprintln!("##################################################################");
    eprintln!("##  PostgreSQL outage tests SKIPPED: {reason}");
    eprintln!("##  They start a private server; install PostgreSQL's server package.");
    eprintln!("##################################################################");
    eprintln!();
}
