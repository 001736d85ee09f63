//! `strand serve`: run a broker. Also home of the broker config flags, which `strand config
//! print` takes too, so it prints exactly what `serve` would run with.

use std::path::PathBuf;

use clap::Args;
use strand_config::{BrokerConfig, ConfigError, Props};

/// The flags and environment variables that build a broker config.
#[derive(Args, Debug, Clone, Default)]
pub struct BrokerConfigArgs {
    /// TOML config file (Kafka key names, e.g. `num.partitions = 3`).
    #[arg(long, env = "STRAND_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on, HOST:PORT (config: listeners).
    #[arg(long, env = "STRAND_LISTEN")]
    pub listen: Option<String>,
    /// HOST:PORT that Metadata tells clients to connect to (config: advertised.listeners).
    #[arg(long, env = "STRAND_ADVERTISED_LISTENER")]
    pub advertised_listener: Option<String>,
    /// Data directory (config: log.dirs).
    #[arg(long, env = "STRAND_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Number of shards; 0 = one per core (config: shards).
    #[arg(long, env = "STRAND_SHARDS")]
    pub shards: Option<u16>,
    /// Broker id (config: node.id).
    #[arg(long, env = "STRAND_NODE_ID")]
    pub node_id: Option<u32>,
}

impl BrokerConfigArgs {
    /// The flags as dotted config keys; they override the file.
    pub fn overrides(&self) -> Props {
        let mut props = Props::default();
        let text = |s: &str| toml::Value::String(s.to_owned());
        if let Some(listen) = &self.listen {
            props.set("listeners", text(listen));
        }
        if let Some(advertised) = &self.advertised_listener {
            props.set("advertised.listeners", text(advertised));
        }
        if let Some(dir) = &self.data_dir {
            props.set("log.dirs", text(&dir.to_string_lossy()));
        }
        if let Some(shards) = self.shards {
            props.set("shards", toml::Value::Integer(i64::from(shards)));
        }
        if let Some(node_id) = self.node_id {
            props.set("node.id", toml::Value::Integer(i64::from(node_id)));
        }
        props
    }

    /// The config file's text, or "" without one.
    pub fn file_text(&self) -> Result<String, ConfigError> {
        match &self.config {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.display().to_string(), source }),
            None => Ok(String::new()),
        }
    }

    pub fn load(&self) -> Result<BrokerConfig, ConfigError> {
        BrokerConfig::load(&self.file_text()?, self.overrides())
    }
}

/// How long a busy listener address is retried before giving up.
const LISTENER_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Runs a broker until SIGINT or SIGTERM.
pub fn serve(args: &BrokerConfigArgs) -> anyhow::Result<()> {
    let mut config = args.load()?;
    // The shards bind with SO_REUSEPORT, which would let a second broker of the same user share
    // the port instead of failing: claim and check it first (this also resolves port 0), and
    // hold the claim until the shards listen. A broker just killed with SIGKILL holds its
    // sockets for a moment after its process is gone (the kernel tears its io_uring instances
    // down asynchronously), so a busy port is retried briefly before it is an error.
    let (listen, claim) = strand_shards::net::claim_listen_address(config.listeners, LISTENER_RELEASE_WAIT)
        .map_err(|e| anyhow::anyhow!("listener {}: {e}", config.listeners))?;
    if config.advertised_listeners.port == 0 {
        config.advertised_listeners.port = listen.port();
    }
    raise_open_files_limit();
    abort_on_panic();
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])?;
    let broker = strand::broker::Broker::start(config, listen)?;
    drop(claim);
    if let Some(signal) = signals.forever().next() {
        tracing::info!(signal, "signal received: stopping");
    }
    broker.stop();
    Ok(())
}

/// A panic is a bug, and the shard it unwinds stops while the others go on serving: a half-alive
/// broker whose partitions on that shard hang, which no supervisor notices. So a panic on any
/// thread is logged and aborts the process, as a failed assertion does in Redpanda; restarted,
/// the broker recovers as after any crash, with nothing acknowledged lost.
fn abort_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        let thread = std::thread::current();
        tracing::error!(thread = thread.name().unwrap_or("unnamed"), panic = %info, "panic: aborting the broker");
        std::process::abort();
    }));
}

/// Every connection is a file descriptor, and the usual soft limit (1024) is far below what a
/// broker serves, so the soft limit is raised to the hard limit, as Kafka's packaging does.
fn raise_open_files_limit() {
    match rlimit::utils::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "open files limit not raised"),
    }
}
