//! The presence fan-out: N `presenceChanged` subscribers over real WebSockets
//! (graphql-transport-ws, signed in as the ADMIN), a few presence changes one after the
//! other, each subscriber's delivery latency of each, and the server's resident memory per
//! subscriber.
//!
//! The subscribers live in a child process (this same program, started with
//! `--subscriber-client`), so the server's process holds only the server ends: its memory
//! growth is the server's alone, and each process needs one descriptor per socket, not two
//! (10,000 subscribers in one process would need ~20,500 against a limit of 20,000).
//!
//! The two talk over the child's stdin/stdout, one line each:
//! - child: `ready <subscribed>` once every subscription has been sent;
//! - then for each change, parent: `sent <unix µs>` just before it makes the change; child:
//!   `latencies <µs> <µs> …` once every subscriber has its event, or 30 s after `sent`, then
//!   `handed <µs> <µs> …`, then `cpu <µs>`: the CPU time it spent receiving them;
//! - the parent closes the child's stdin when it is done.
//!
//! Latency is from just before the `reportPresence` request to each client reading its `next`
//! message; both ends read the same system clock. Beside it, "handed over" is the kernel's
//! receive timestamp of that message (see `stamped`): when the server's write reached the
//! subscriber's socket, however long the subscribers' process then waited for a core.

use std::{
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::stamped::StampedStream;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::Command,
    sync::{Notify, Semaphore, mpsc},
    task::JoinHandle,
};
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest, http::HeaderValue, protocol::WebSocketConfig,
};

/// The ADMIN's token reaches the child through its environment, not its command line.
const TOKEN_VARIABLE: &str = "AGENTDESK_BENCH_TOKEN";
/// Handshakes in flight at once: enough to connect 10,000 in seconds, few enough not to
/// overflow the listen backlog.
pub const CONNECTING_AT_ONCE: usize = 64;
const DELIVERY_DEADLINE: Duration = Duration::from_secs(30);
/// Server messages here are a few hundred bytes.
const READ_BUFFER_BYTES: usize = 4096;

pub struct Fanout {
    pub subscribed: usize,
    pub connect_time: Duration,
    /// Every delivery of every change, sorted.
    pub latencies: Vec<Duration>,
    /// The same deliveries by when they reached the subscriber's socket, sorted (those that
    /// carried a kernel timestamp: all of them, unless the kernel did not stamp).
    pub handed: Vec<Duration>,
    /// Each change's earliest delivery: the way from the request to the first socket, before
    /// the fan-out itself.
    pub firsts: Vec<Duration>,
    /// Each change's p99, in order.
    pub p99s: Vec<Duration>,
    /// The warm-up change's p99 and earliest delivery. It is not in the figures above: the
    /// first event on each of thousands of fresh sockets costs the kernel and the
    /// subscribers' process what no later one does (the floor's server pays it as much as
    /// agentdesk does; BENCHMARKS.md, "Fan-out, session 10").
    pub warm_up_p99: Duration,
    pub warm_up_first: Duration,
    /// Growth of the server process's resident memory while the subscribers were connected,
    /// before the first change.
    pub server_rss_growth_kib: u64,
    /// The same growth after the changes: what each socket keeps from its sends.
    pub server_rss_growth_after_changes_kib: u64,
    /// CPU time from just before each change until every event arrived, summed over the
    /// changes: the server's process (the change itself and the deliveries) and the
    /// subscribers' process (receiving). On one machine the two share the cores, so this
    /// splits the latency between them.
    pub server_cpu: Duration,
    pub subscribers_cpu: Duration,
}

/// Parent side: starts the child with `n` subscribers against `ws_url`, then, once they are
/// all subscribed, runs `make_change(i)` for a warm-up change (i = 0) and `changes` more, each
/// after the previous one reached every subscriber.
pub async fn measure(
    ws_url: &str,
    admin_token: &str,
    n: usize,
    changes: usize,
    mut make_change: impl AsyncFnMut(usize),
) -> Fanout {
    let rss_before = rss_kib();
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe().expect("this program's path"))
        .args(["--subscriber-client", ws_url, "--subscriber-count", &n.to_string()])
        .env(TOKEN_VARIABLE, admin_token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the subscriber process");
    let mut to_child = child.stdin.take().expect("child stdin");
    let mut from_child = BufReader::new(child.stdout.take().expect("child stdout")).lines();
    let mut next_line = async || from_child.next_line().await.ok().flatten().unwrap_or_default();
    let subscribed: usize =
        next_line().await.strip_prefix("ready ").and_then(|n| n.parse().ok()).unwrap_or(0);
    let connect_time = started.elapsed();
    // The last `subscribe` messages may still be in flight; let the server register them.
    tokio::time::sleep(Duration::from_millis(1500) + Duration::from_micros(200 * n as u64)).await;
    let rss_after = rss_kib();
    let (mut latencies, mut handed, mut firsts, mut p99s) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut server_cpu, mut subscribers_cpu) = (Duration::ZERO, 0);
    let (mut warm_up_p99, mut warm_up_first) = (Duration::ZERO, Duration::ZERO);
    for change in 0..=changes {
        let cpu_before = process_cpu();
        let sent = unix_micros();
        let _ = to_child.write_all(format!("sent {sent}\n").as_bytes()).await;
        make_change(change).await;
        let read_at = next_line().await;
        let cpu = process_cpu().saturating_sub(cpu_before);
        let these_handed = durations(&next_line().await, "handed");
        let cpu_of_subscribers =
            next_line().await.strip_prefix("cpu ").and_then(|micros| micros.parse::<u64>().ok()).unwrap_or(0);
        let mut these = durations(&read_at, "latencies");
        these.sort_unstable();
        let (first, p99) = (these.first().copied().unwrap_or_default(), crate::percentile(&these, 0.99));
        if change == 0 {
            (warm_up_p99, warm_up_first) = (p99, first);
            continue;
        }
        server_cpu += cpu;
        subscribers_cpu += cpu_of_subscribers;
        handed.extend(these_handed);
        firsts.push(first);
        p99s.push(p99);
        latencies.extend(these);
    }
    let rss_after_changes = rss_kib();
    drop(to_child);
    latencies.sort_unstable();
    handed.sort_unstable();
    let _ = child.wait().await;
    Fanout {
        subscribed,
        connect_time,
        latencies,
        handed,
        firsts,
        p99s,
        warm_up_p99,
        warm_up_first,
        server_rss_growth_kib: rss_after.saturating_sub(rss_before),
        server_rss_growth_after_changes_kib: rss_after_changes.saturating_sub(rss_before),
        server_cpu,
        subscribers_cpu: Duration::from_micros(subscribers_cpu),
    }
}

/// The µs figures of a line `<label> <µs> <µs> …`.
fn durations(line: &str, label: &str) -> Vec<Duration> {
    let figures = line.strip_prefix(label).unwrap_or_default();
    figures.split_whitespace().filter_map(|micros| micros.parse().ok().map(Duration::from_micros)).collect()
}

/// Child side: `n` subscribers, then the protocol above. Each subscriber writes the time
/// its event arrived into its own slot; the last one of a change to arrive wakes the
/// reporter. (No channel message per event: that would cost a task wake-up each, in the
/// process whose CPU competes with the server's.)
pub async fn client(ws_url: &str, n: usize) {
    let token = std::env::var(TOKEN_VARIABLE).expect("the ADMIN's token in the environment");
    let connecting = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let arrivals = Arc::new(Arrivals::new(n));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let tasks: Vec<JoinHandle<()>> = (0..n)
        .map(|slot| {
            let subscriber = subscribe(ws_url.to_owned(), token.clone(), connecting.clone());
            let (ready_tx, arrivals) = (ready_tx.clone(), arrivals.clone());
            tokio::spawn(async move {
                let Some(mut socket) = subscriber.await else { return };
                let _ = ready_tx.send(());
                drop(ready_tx);
                while let Some(Ok(frame)) = socket.next().await {
                    if let Message::Text(text) = frame
                        && text.contains("\"next\"")
                    {
                        arrivals.arrived(slot, socket.get_ref().received_at());
                    }
                }
            })
        })
        .collect();
    drop(ready_tx);
    let mut subscribed = 0;
    while ready_rx.recv().await.is_some() {
        subscribed += 1;
    }
    arrivals.expected.store(subscribed, Ordering::SeqCst);
    let mut stdout = tokio::io::stdout();
    let _ = stdout.write_all(format!("ready {subscribed}\n").as_bytes()).await;
    let _ = stdout.flush().await;
    let mut from_parent = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = from_parent.next_line().await {
        let sent: u64 = line.strip_prefix("sent ").and_then(|t| t.parse().ok()).unwrap_or(0);
        let cpu_before = process_cpu();
        let _ = tokio::time::timeout(DELIVERY_DEADLINE, arrivals.all.notified()).await;
        let cpu = process_cpu().saturating_sub(cpu_before);
        let (mut read, mut handed) = (String::from("latencies"), String::from("handed"));
        for (read_at, handed_at) in arrivals.take() {
            read.push_str(&format!(" {}", read_at.saturating_sub(sent)));
            // A stamp older than the change would be a read that carried none.
            if handed_at >= sent {
                handed.push_str(&format!(" {}", handed_at - sent));
            }
        }
        let report = format!("{read}\n{handed}\ncpu {}\n", cpu.as_micros());
        let _ = stdout.write_all(report.as_bytes()).await;
        let _ = stdout.flush().await;
    }
    for task in tasks {
        task.abort();
    }
}

/// When each subscriber's event of the current change was read (unix µs; 0: not yet), and
/// when it reached the subscriber's socket.
struct Arrivals {
    at: Vec<AtomicU64>,
    handed: Vec<AtomicU64>,
    count: AtomicUsize,
    expected: AtomicUsize,
    all: Notify,
}

impl Arrivals {
    fn new(n: usize) -> Self {
        Self {
            at: (0..n).map(|_| AtomicU64::new(0)).collect(),
            handed: (0..n).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicUsize::new(0),
            expected: AtomicUsize::new(usize::MAX),
            all: Notify::new(),
        }
    }

    fn arrived(&self, slot: usize, handed_at: u64) {
        self.at[slot].store(unix_micros(), Ordering::SeqCst);
        self.handed[slot].store(handed_at, Ordering::SeqCst);
        if self.count.fetch_add(1, Ordering::SeqCst) + 1 == self.expected.load(Ordering::SeqCst) {
            self.all.notify_one();
        }
    }

    /// The arrivals of this change (read, handed over), resetting for the next.
    fn take(&self) -> Vec<(u64, u64)> {
        self.count.store(0, Ordering::SeqCst);
        let arrivals = self.at.iter().zip(&self.handed);
        arrivals
            .map(|(at, handed)| (at.swap(0, Ordering::SeqCst), handed.swap(0, Ordering::SeqCst)))
            .filter(|&(at, _)| at != 0)
            .collect()
    }
}

pub type Socket = tokio_tungstenite::WebSocketStream<StampedStream>;

/// One acknowledged connection with its `presenceChanged` subscription sent; None if the
/// server refused it.
async fn subscribe(ws_url: String, token: String, connecting: Arc<Semaphore>) -> Option<Socket> {
    let mut socket = connect(&ws_url, &token, &connecting).await?;
    let query = "subscription { presenceChanged { status previousStatus agent { id } } }";
    send_subscription(&mut socket, "1", query).await?;
    Some(socket)
}

/// One graphql-transport-ws connection signed in with `token` and acknowledged, its
/// handshake taking one of `connecting`'s permits; None if the server refused it.
pub async fn connect(ws_url: &str, token: &str, connecting: &Semaphore) -> Option<Socket> {
    let _permit = connecting.acquire().await.ok()?;
    let mut request = ws_url.into_client_request().ok()?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
    // tungstenite zero-fills its whole read buffer (128 KiB by default) for every read: with
    // one small message a read, that was a third of this process's CPU.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
    let address = request.uri().authority()?.as_str().to_owned();
    let tcp = StampedStream::new(TcpStream::connect(address).await.ok()?).ok()?;
    let (mut socket, _) =
        tokio_tungstenite::client_async_with_config(request, tcp, Some(config)).await.ok()?;
    let init =
        json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    socket.send(Message::text(init.to_string())).await.ok()?;
    loop {
        match socket.next().await? {
            Ok(Message::Text(text)) if text.contains("connection_ack") => return Some(socket),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

pub async fn send_subscription(socket: &mut Socket, id: &str, query: &str) -> Option<()> {
    let subscribe = json!({ "id": id, "type": "subscribe", "payload": { "query": query } });
    socket.send(Message::text(subscribe.to_string())).await.ok()
}

/// User and system CPU time of this process so far, to the nanosecond. (It was read from
/// `/proc/self/stat`, in ticks of 10 ms: coarser than a presence change's 5-10 ms, so the
/// per-change figures, and the crowd's ratios made of them, were mostly rounding.)
pub fn process_cpu() -> Duration {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time of the calling thread so far, to the nanosecond.
pub fn thread_cpu() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock and a pointer to a live timespec.
    unsafe { libc::clock_gettime(clock, &raw mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

pub fn unix_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
