//! A crowd of idle tenants: thousands of WebSockets, each signed in as its own member of one
//! of many organizations, in a child process (this same program, started with
//! `--crowd-client`) for the reason the fan-out's subscribers are in one (subscribers.rs).
//! It counts every message each group of sockets receives, and notes when each event
//! arrived, so the parent can say whether every event was delivered, how late, and whether
//! anything reached a socket it was not meant for.
//!
//! The two talk over the child's stdin/stdout, one line each:
//! - parent: `socket <group> <token> <subscription>…` per socket (subscriptions by letter,
//!   see `Feed`), then `connect`; tokens go this way, not on a command line;
//! - child: `ready <connected>` once every socket is acknowledged and has sent its
//!   subscriptions (or failed);
//! - parent: `report`; child: `delivery <key> <unix µs>` per event received since the last
//!   report (the key names the event, see `key_of`), `group <name> <events> <behind>
//!   <errors> <ended>` per group, then `end`;
//! - the parent closes the child's stdin when it is done.

use std::{
    collections::HashMap,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
    sync::{Semaphore, mpsc},
};
use tokio_tungstenite::tungstenite::Message;

use crate::subscribers::{self, CONNECTING_AT_ONCE, unix_micros};

/// What a crowd socket subscribes to; its letter is the subscription's id on the socket.
#[derive(Clone, Copy)]
pub enum Feed {
    Presence,
    Directory,
    MyConversations,
}

impl Feed {
    fn letter(self) -> char {
        match self {
            Feed::Presence => 'p',
            Feed::Directory => 'd',
            Feed::MyConversations => 'm',
        }
    }

    fn of_letter(letter: char) -> Option<Self> {
        [Feed::Presence, Feed::Directory, Feed::MyConversations].into_iter().find(|f| f.letter() == letter)
    }

    /// Each selects what names its events in `key_of`.
    fn query(self) -> &'static str {
        match self {
            Feed::Presence => "subscription { presenceChanged { status agent { id } } }",
            Feed::Directory => "subscription { agentDirectoryChanged { kind agent { displayName } } }",
            Feed::MyConversations => {
                "subscription { myConversations { kind conversation { customerName } } }"
            }
        }
    }
}

pub struct PlannedSocket {
    /// Counted together; one word.
    pub group: &'static str,
    pub token: String,
    pub feeds: &'static [Feed],
}

/// Messages one group of sockets received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub events: u64,
    /// Errors with `SUBSCRIPTION_BEHIND`: the subscription fell behind and ended.
    pub behind: u64,
    pub errors: u64,
    /// Subscriptions completed and sockets closed by the server.
    pub ended: u64,
}

/// What the crowd heard between two reports.
#[derive(Default)]
pub struct Heard {
    /// Each event received: its key and when it was read (unix µs).
    pub deliveries: Vec<(String, u64)>,
    pub groups: HashMap<String, Counts>,
}

impl Heard {
    fn record(&mut self, group: &str, text: &str, read_at: u64) {
        let Ok(message) = serde_json::from_str::<Value>(text) else { return };
        let counts = self.groups.entry(group.to_owned()).or_default();
        match message["type"].as_str() {
            Some("next") => {
                let payload = &message["payload"];
                if payload["errors"][0]["extensions"]["code"] == "SUBSCRIPTION_BEHIND" {
                    counts.behind += 1;
                } else if payload.get("errors").is_some() {
                    counts.errors += 1;
                } else {
                    counts.events += 1;
                    self.deliveries.push((key_of(&payload["data"]), read_at));
                }
            }
            Some("error") => counts.errors += 1,
            Some("complete") => counts.ended += 1,
            _ => {}
        }
    }

    /// Adds a later report to this one.
    pub fn add(&mut self, later: Heard) {
        self.deliveries.extend(later.deliveries);
        for (group, counts) in later.groups {
            let total = self.groups.entry(group).or_default();
            total.events += counts.events;
            total.behind += counts.behind;
            total.errors += counts.errors;
            total.ended += counts.ended;
        }
    }

    pub fn of(&self, group: &str) -> Counts {
        self.groups.get(group).copied().unwrap_or_default()
    }
}

/// What names an event, without spaces (a line holds it): a directory change by the agent's
/// display name, a conversation's by its kind and customer name (the mix writes a unique one
/// into each), presence by its status only (the crowd's presence subscribers are there to
/// be idle).
fn key_of(data: &Value) -> String {
    named(data).replace(char::is_whitespace, "_")
}

fn named(data: &Value) -> String {
    if let Some(change) = data.get("agentDirectoryChanged") {
        return change["agent"]["displayName"].as_str().unwrap_or_default().to_owned();
    }
    if let Some(change) = data.get("myConversations") {
        let name = change["conversation"]["customerName"].as_str().unwrap_or_default();
        return format!("{}:{name}", change["kind"].as_str().unwrap_or_default());
    }
    format!("presence:{}", data["presenceChanged"]["status"].as_str().unwrap_or_default())
}

/// The parent's handle on the child.
pub struct Crowd {
    child: Child,
    to_child: ChildStdin,
    from_child: Lines<BufReader<ChildStdout>>,
    pub connected: usize,
    pub connect_time: Duration,
}

impl Crowd {
    /// Starts the child and returns once every socket of `plan` is connected and subscribed.
    pub async fn connect(ws_url: &str, plan: &[PlannedSocket]) -> Crowd {
        let started = Instant::now();
        let mut child = Command::new(std::env::current_exe().expect("this program's path"))
            .args(["--crowd-client", ws_url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the crowd process");
        let mut to_child = child.stdin.take().expect("child stdin");
        let from_child = BufReader::new(child.stdout.take().expect("child stdout")).lines();
        let mut lines = String::new();
        for socket in plan {
            let feeds: String = socket.feeds.iter().map(|feed| format!(" {}", feed.letter())).collect();
            lines.push_str(&format!("socket {} {}{feeds}\n", socket.group, socket.token));
        }
        lines.push_str("connect\n");
        to_child.write_all(lines.as_bytes()).await.expect("the crowd reads its plan");
        let mut crowd = Crowd { child, to_child, from_child, connected: 0, connect_time: Duration::ZERO };
        let ready = crowd.next_line().await;
        crowd.connected = ready.strip_prefix("ready ").and_then(|n| n.parse().ok()).unwrap_or(0);
        crowd.connect_time = started.elapsed();
        crowd
    }

    async fn next_line(&mut self) -> String {
        self.from_child.next_line().await.ok().flatten().unwrap_or_default()
    }

    /// What the crowd heard since the last report.
    pub async fn report(&mut self) -> Heard {
        let _ = self.to_child.write_all(b"report\n").await;
        let mut heard = Heard::default();
        loop {
            let line = self.next_line().await;
            let mut words = line.split_whitespace();
            match words.next() {
                Some("delivery") => {
                    if let (Some(key), Some(at)) = (words.next(), words.next().and_then(|w| w.parse().ok())) {
                        heard.deliveries.push((key.to_owned(), at));
                    }
                }
                Some("group") => {
                    let name = words.next().unwrap_or_default().to_owned();
                    let mut figures = words.filter_map(|w| w.parse().ok());
                    let mut next = || figures.next().unwrap_or(0);
                    let counts = Counts { events: next(), behind: next(), errors: next(), ended: next() };
                    heard.groups.insert(name, counts);
                }
                // `end`, or the child is gone.
                _ => return heard,
            }
        }
    }

    /// Waits until `expected` events have been heard since the last report (adding them to
    /// `heard`), at most until `deadline`: polled, as the crowd cannot tell the parent of
    /// each event without costing the CPU it shares with the server.
    pub async fn hear(&mut self, heard: &mut Heard, expected: usize, deadline: Instant) {
        loop {
            heard.add(self.report().await);
            if heard.deliveries.len() >= expected || Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn close(self) {
        let Crowd { mut child, to_child, .. } = self;
        drop(to_child);
        let _ = child.wait().await;
    }
}

/// Child side: reads the plan, connects, then answers reports until stdin closes.
pub async fn client(ws_url: &str) {
    let mut from_parent = BufReader::new(tokio::io::stdin()).lines();
    let mut plan = Vec::new();
    while let Ok(Some(line)) = from_parent.next_line().await {
        let mut words = line.split_whitespace();
        if words.next() != Some("socket") {
            break;
        }
        let (Some(group), Some(token)) = (words.next(), words.next()) else { continue };
        let feeds: Vec<Feed> = words.filter_map(|w| w.chars().next().and_then(Feed::of_letter)).collect();
        plan.push((group.to_owned(), token.to_owned(), feeds));
    }
    let heard = Arc::new(Mutex::new(Heard::default()));
    let connecting = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let tasks: Vec<_> = plan
        .into_iter()
        .map(|(group, token, feeds)| {
            let (ws_url, heard, connecting, ready_tx) =
                (ws_url.to_owned(), heard.clone(), connecting.clone(), ready_tx.clone());
            tokio::spawn(async move {
                let Some(mut socket) = subscribers::connect(&ws_url, &token, &connecting).await else {
                    return;
                };
                for feed in feeds {
                    if subscribers::send_subscription(&mut socket, &feed.letter().to_string(), feed.query())
                        .await
                        .is_none()
                    {
                        return;
                    }
                }
                let _ = ready_tx.send(());
                drop(ready_tx);
                while let Some(Ok(frame)) = socket.next().await {
                    if let Message::Text(text) = frame {
                        heard.lock().expect("not poisoned").record(&group, &text, unix_micros());
                    }
                }
                heard.lock().expect("not poisoned").groups.entry(group).or_default().ended += 1;
            })
        })
        .collect();
    drop(ready_tx);
    let mut connected = 0;
    while ready_rx.recv().await.is_some() {
        connected += 1;
    }
    let mut stdout = tokio::io::stdout();
    let _ = stdout.write_all(format!("ready {connected}\n").as_bytes()).await;
    let _ = stdout.flush().await;
    while let Ok(Some(_report)) = from_parent.next_line().await {
        let heard = std::mem::take(&mut *heard.lock().expect("not poisoned"));
        let mut out = String::new();
        for (key, at) in heard.deliveries {
            out.push_str(&format!("delivery {key} {at}\n"));
        }
        for (group, c) in heard.groups {
            out.push_str(&format!("group {group} {} {} {} {}\n", c.events, c.behind, c.errors, c.ended));
        }
        out.push_str("end\n");
        let _ = stdout.write_all(out.as_bytes()).await;
        let _ = stdout.flush().await;
    }
    for task in tasks {
        task.abort();
    }
}
