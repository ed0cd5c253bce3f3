//! The real `agentdesk serve` in a child process, for what only a process shows: signals,
//! crashes, and several instances on one database. Killed when dropped.

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::OnceLock,
    time::Duration,
};

use serde_json::json;

use crate::{
    Backend, Session, client,
    client::Endpoint,
    eventually,
    server::{ADMIN_PASSWORD, Storage},
};

static BINARY: OnceLock<PathBuf> = OnceLock::new();

/// Names the agentdesk binary child processes run. Only a test or bench target of the
/// agentdesk package knows it (`env!("CARGO_BIN_EXE_agentdesk")`), so its harness passes it.
pub fn use_binary(path: impl Into<PathBuf>) {
    let _ = BINARY.set(path.into());
}

pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    pub database_url: String,
    /// Flags after `--listen` and `--database-url`, kept for a restart.
    flags: Vec<String>,
    http: reqwest::Client,
    _storage: Option<Storage>,
}

impl Endpoint for ServerProcess {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

impl ServerProcess {
    /// On a fresh database of `backend`, dropped with the process.
    pub async fn start(backend: Backend, flags: &[&str]) -> Self {
        let (storage, database_url) = Storage::fresh(backend).await;
        Self::spawn(database_url, flags, Some(storage)).await
    }

    /// On the database at `database_url`, which the caller keeps (another instance's, say).
    pub async fn start_on(database_url: &str, flags: &[&str]) -> Self {
        Self::spawn(database_url.to_owned(), flags, None).await
    }

    async fn spawn(database_url: String, flags: &[&str], storage: Option<Storage>) -> Self {
        // A free port: bound, noted and released for the child to bind.
        let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let flags: Vec<String> = flags.iter().map(|flag| (*flag).to_owned()).collect();
        let child = run(addr, &database_url, &flags);
        let server =
            Self { child, addr, database_url, flags, http: reqwest::Client::new(), _storage: storage };
        server.until_up().await;
        server
    }

    /// SIGKILL (`Child::kill`), as a crash or the OOM killer would, then the binary again on
    /// the same database and address.
    pub async fn kill_and_restart(&mut self) {
        self.kill();
        self.child = run(self.addr, &self.database_url, &self.flags);
        self.until_up().await;
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as an orchestrator stopping the instance would send.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The exit status once the process has exited, if it does `within`.
    pub async fn exit_status(&mut self, within: Duration) -> Option<ExitStatus> {
        let started = tokio::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if started.elapsed() >= within {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Signs in to `demo`.
    pub async fn login(&self, username: &str, password: &str) -> Session {
        let input =
            json!({ "input": { "organization": "demo", "username": username, "password": password } });
        Session::from_login(&self.post(None, client::LOGIN, input).await, username)
    }

    pub async fn admin(&self) -> Session {
        self.login("admin", ADMIN_PASSWORD).await
    }

    async fn until_up(&self) {
        let health = format!("http://{}/healthz", self.addr);
        eventually(Duration::from_secs(60), || async {
            match self.http.get(&health).send().await {
                Ok(response) if response.status().is_success() => Ok(()),
                Ok(response) => Err(format!("/healthz answered {}", response.status())),
                Err(error) => Err(format!("/healthz: {error}")),
            }
        })
        .await;
    }
}

fn run(addr: SocketAddr, database_url: &str, flags: &[String]) -> Child {
    Command::new(BINARY.get().expect("the harness named the binary with process::use_binary"))
        .args(["serve", "--listen", &addr.to_string(), "--database-url", database_url])
        .args(flags)
        .env("AGENTDESK_BOOTSTRAP_PASSWORD", ADMIN_PASSWORD)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .expect("the agentdesk binary starts")
}
