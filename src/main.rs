//! The `strand` command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use strand_config::{BrokerConfig, Props};

#[derive(Parser)]
#[command(name = "strand", version, about = "A Kafka-compatible, thread-per-core message broker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker. With no arguments: listener 127.0.0.1:9092, data in ./strand-data, one
    /// shard per core.
    Serve(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// TOML config file (Kafka key names, e.g. `num.partitions = 3`).
    #[arg(long, env = "STRAND_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, HOST:PORT (config: listeners).
    #[arg(long, env = "STRAND_LISTEN")]
    listen: Option<String>,
    /// HOST:PORT that Metadata tells clients to connect to (config: advertised.listeners).
    #[arg(long, env = "STRAND_ADVERTISED_LISTENER")]
    advertised_listener: Option<String>,
    /// Data directory (config: log.dirs).
    #[arg(long, env = "STRAND_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Number of shards; 0 = one per core (config: shards).
    #[arg(long, env = "STRAND_SHARDS")]
    shards: Option<u16>,
    /// Broker id (config: node.id).
    #[arg(long, env = "STRAND_NODE_ID")]
    node_id: Option<u32>,
}

impl ServeArgs {
    fn overrides(&self) -> Props {
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

    fn load(&self) -> Result<BrokerConfig, strand_config::ConfigError> {
        match &self.config {
            Some(path) => BrokerConfig::load_file(path, self.overrides()),
            None => BrokerConfig::load("", self.overrides()),
        }
    }
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve(&args),
    };
    if let Err(e) = result {
        eprintln!("strand: {e}");
        std::process::exit(1);
    }
}

/// How long a busy listener address is retried before giving up.
const LISTENER_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Probes the listener address, retrying while it is busy for [`LISTENER_RELEASE_WAIT`]: a
/// broker that was just killed with SIGKILL still holds its listening sockets for a moment
/// after its process is gone (the kernel tears its io_uring instances down asynchronously,
/// and they hold the sockets), and a restart must not fail on that.
fn probe_listener(addr: std::net::SocketAddr) -> std::io::Result<std::net::SocketAddr> {
    let deadline = std::time::Instant::now() + LISTENER_RELEASE_WAIT;
    loop {
        match strand_shards::net::probe_listen_address(addr) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            result => return result,
        }
    }
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let mut config = args.load()?;
    // Check the port first: the shards bind with SO_REUSEPORT, which would let a second
    // broker of the same user share the port instead of failing. This also resolves port 0.
    let listen = probe_listener(config.listeners).map_err(|e| anyhow::anyhow!("listener {}: {e}", config.listeners))?;
    if config.advertised_listeners.port == 0 {
        config.advertised_listeners.port = listen.port();
    }
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])?;
    let broker = strand::broker::Broker::start(config, listen)?;
    if let Some(signal) = signals.forever().next() {
        tracing::info!(signal, "signal received: stopping");
    }
    broker.stop();
    Ok(())
}
