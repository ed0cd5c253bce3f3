//! Every setting in one place: a command-line flag, an `AGENTDESK_*` environment variable and
//! a default, so `cargo run --release` needs none of them.

use std::{net::SocketAddr, num::NonZeroU32, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "agentdesk", version, about = "GraphQL API for the Agents page of a live-chat product")]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL) and exit.
    Schema,
    /// Manage organizations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization with its first ADMIN.
    Create(CreateOrgArgs),
    /// List the organizations: slug, name, seats used of the limit, human-agent service.
    List,
    /// Change an organization's name, seats or human-agent service, at once on every instance.
    Update(UpdateOrgArgs),
}

#[derive(Debug, Args)]
pub struct UpdateOrgArgs {
    /// The organization to change.
    #[arg(long)]
    pub slug: String,
    #[arg(long)]
    pub name: Option<String>,
    /// Seats of the plan, 1–100000; may be set below the seats in use (creating agents is
    /// then refused until some are deleted). Any number is read, so that a wrong one is told
    /// what is allowed.
    #[arg(long, allow_negative_numbers = true)]
    pub seats: Option<i64>,
    /// Whether the organization's agents may be given conversations and changed.
    #[arg(long, value_enum)]
    pub human_agent_service: Option<ServiceSwitch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceSwitch {
    Enabled,
    Disabled,
}

#[derive(Debug, Args)]
pub struct CreateOrgArgs {
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub slug: String,
    #[arg(long, default_value_t = 25)]
    pub seats: u32,
    #[arg(long)]
    pub admin_username: String,
    /// Generated and printed when absent.
    #[arg(long, env = "AGENTDESK_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings shared by every subcommand. Global so they may stand before or after it.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, global = true, env = "AGENTDESK_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// `sqlite://…` (embedded, one process) or `postgres://…` (production, several instances).
    #[arg(
        long,
        global = true,
        env = "AGENTDESK_DATABASE_URL",
        default_value = "sqlite://agentdesk.db?mode=rwc"
    )]
    pub database_url: String,

    /// Maximum pooled database connections.
    #[arg(long, global = true, env = "AGENTDESK_DATABASE_POOL_SIZE", default_value_t = 8)]
    pub database_pool_size: u32,

    #[arg(long, global = true, env = "AGENTDESK_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Password of the `admin` created on first start; generated and printed when absent.
    #[arg(long, global = true, env = "AGENTDESK_BOOTSTRAP_PASSWORD", hide_env_values = true)]
    pub bootstrap_password: Option<String>,

    /// Deepest selection nesting a document may have.
    #[arg(long, global = true, env = "AGENTDESK_MAX_QUERY_DEPTH", default_value_t = 12)]
    pub max_query_depth: usize,

    /// Largest complexity (fields counted, lists by their page size) a document may have.
    #[arg(long, global = true, env = "AGENTDESK_MAX_QUERY_COMPLEXITY", default_value_t = 5000)]
    pub max_query_complexity: usize,

    /// Largest request body in bytes.
    #[arg(long, global = true, env = "AGENTDESK_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,

    /// Token Prometheus must send (`Authorization: Bearer …`) to read `/metrics`. Without
    /// one, `/metrics` is open: keep it off the public route.
    #[arg(long, global = true, env = "AGENTDESK_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Most operations one JSON batch may hold.
    #[arg(long, global = true, env = "AGENTDESK_MAX_BATCH_SIZE", default_value_t = 10)]
    pub max_batch_size: usize,

    /// Password hashes computed at once; further sign-ins wait their turn.
    #[arg(long, global = true, env = "AGENTDESK_HASHING_CONCURRENCY", default_value_t = 2)]
    pub hashing_concurrency: usize,

    /// Sign-in attempts one account (organization and username) may take per minute, in a
    /// burst or spread out; further attempts get `RATE_LIMITED` without any password hashing.
    #[arg(long, global = true, env = "AGENTDESK_LOGIN_ATTEMPTS_PER_ACCOUNT", default_value_t = NonZeroU32::new(10).unwrap())]
    pub login_attempts_per_account: NonZeroU32,

    /// Sign-in attempts one client address may take per minute, over all accounts.
    #[arg(long, global = true, env = "AGENTDESK_LOGIN_ATTEMPTS_PER_ADDRESS", default_value_t = NonZeroU32::new(60).unwrap())]
    pub login_attempts_per_address: NonZeroU32,

    /// Time a client has to send the head of an HTTP request (request line and headers);
    /// a slower one is disconnected, so trickled headers cannot hold connections open.
    #[arg(long, global = true, env = "AGENTDESK_HEADER_READ_TIMEOUT", value_parser = humantime::parse_duration, default_value = "10s")]
    pub header_read_timeout: Duration,

    /// Operations one WebSocket connection may run at once; a `subscribe` beyond it closes
    /// the connection with 4429.
    #[arg(long, global = true, env = "AGENTDESK_WS_MAX_SUBSCRIPTIONS", default_value_t = 100)]
    pub ws_max_subscriptions: usize,

    /// Time a WebSocket client has to send `connection_init`.
    #[arg(long, global = true, env = "AGENTDESK_WS_INIT_TIMEOUT", value_parser = humantime::parse_duration, default_value = "10s")]
    pub ws_init_timeout: Duration,

    /// How long a WebSocket client may leave the server's messages unread (reading none of
    /// them) before it is cut off: a stuck client would otherwise hold its connection's
    /// resources, and delay closing it when its session ends, for ever.
    #[arg(long, global = true, env = "AGENTDESK_WS_SEND_TIMEOUT", value_parser = humantime::parse_duration, default_value = "10s")]
    pub ws_send_timeout: Duration,

    /// How long an ONLINE report lasts: a workspace that does not report again within it
    /// lapses to OFFLINE.
    #[arg(long, global = true, env = "AGENTDESK_PRESENCE_TTL", value_parser = humantime::parse_duration, default_value = "60s")]
    pub presence_ttl: Duration,

    /// How long an ONLINE agent whose last WebSocket closed stays ONLINE, so a page reload
    /// does not flap.
    #[arg(long, global = true, env = "AGENTDESK_PRESENCE_GRACE", value_parser = humantime::parse_duration, default_value = "5s")]
    pub presence_grace: Duration,

    /// How often each instance looks for lapsed presence; a lapse is noticed at most this
    /// late. Ten missed intervals mark an instance as gone (its sockets no longer count).
    #[arg(long, global = true, env = "AGENTDESK_PRESENCE_SWEEP_INTERVAL", value_parser = humantime::parse_duration, default_value = "1s")]
    pub presence_sweep_interval: Duration,

    /// How long each agent's presence history (every change, its reason and time) is kept.
    #[arg(long, global = true, env = "AGENTDESK_PRESENCE_HISTORY_RETENTION", value_parser = humantime::parse_duration, default_value = "90days")]
    pub presence_history_retention: Duration,

    /// How often each instance drains queues with waiting conversations, as a safety net:
    /// conversations are normally assigned the moment capacity appears.
    #[arg(long, global = true, env = "AGENTDESK_ROUTING_SWEEP_INTERVAL", value_parser = humantime::parse_duration, default_value = "5s")]
    pub routing_sweep_interval: Duration,

    /// A session not used for this long (no request with its token) ends: its token is refused
    /// and its WebSockets close. `0`: no idle limit.
    #[arg(long, global = true, env = "AGENTDESK_SESSION_IDLE_TIMEOUT", value_parser = humantime::parse_duration, default_value = "8h")]
    pub session_idle_timeout: Duration,

    /// A session ends this long after its sign-in however much it is used. `0`: no limit.
    #[arg(long, global = true, env = "AGENTDESK_SESSION_MAX_AGE", value_parser = humantime::parse_duration, default_value = "30days")]
    pub session_max_age: Duration,

    /// On SIGTERM or Ctrl-C, how long requests in flight may take to finish before the
    /// process exits anyway.
    #[arg(long, global = true, env = "AGENTDESK_SHUTDOWN_TIMEOUT", value_parser = humantime::parse_duration, default_value = "10s")]
    pub shutdown_timeout: Duration,
}

impl Config {
    /// Defaults, as if started with no flags and no environment: the base tests build on.
    pub fn defaults() -> Self {
        Cli::parse_from(["agentdesk"]).config
    }
}
