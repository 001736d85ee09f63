//! The top-level command: argument parsing, logging, dispatch, and the one-line error exit.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::{Parser, Subcommand};

use super::bench::BenchArgs;
use super::cluster::ClusterArgs;
use super::consume::ConsumeArgs;
use super::dump::DumpArgs;
use super::group::GroupArgs;
use super::produce::ProduceArgs;
use super::serve::BrokerConfigArgs;
use super::topic::TopicArgs;

const EXAMPLES: &str = "\
Examples:
  strand serve                                   run a broker on 127.0.0.1:9092
  strand topic create orders -p 3                create a topic
  printf 'k1:v1\\nk2:v2\\n' | strand produce orders --key-separator :
  strand consume orders --from beginning -e --format '%k=%v\\n'
  strand group describe billing
  strand bench e2e --rate 10000 --duration 30s --plot e2e.png

Client commands take --brokers HOST:PORT[,...] (env STRAND_BROKERS, default 127.0.0.1:9092)
and work against any Kafka-compatible broker.";

#[derive(Parser, Debug)]
#[command(name = "strand", version, about = "A Kafka-compatible, thread-per-core message broker", after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a broker. With no arguments: listener 127.0.0.1:9092, data in ./strand-data, one
    /// shard per core.
    #[command(after_help = "Examples:\n  strand serve\n  strand serve --listen 0.0.0.0:9092 --data-dir /var/lib/strand --shards 4\n  strand serve --config strand.toml")]
    Serve(BrokerConfigArgs),
    /// Print the effective broker config, or check a config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create, list, describe, alter and delete topics.
    Topic(TopicArgs),
    /// Produce lines of stdin as records.
    Produce(ProduceArgs),
    /// Consume records and print them.
    Consume(ConsumeArgs),
    /// List, describe, reset and delete consumer groups.
    Group(GroupArgs),
    /// Brokers, controller, cluster id and API versions.
    Cluster(ClusterArgs),
    /// Inspect on-disk files offline.
    Dump(DumpArgs),
    /// Measure throughput and latency with librdkafka producers and consumers.
    Bench(BenchArgs),
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// The config `strand serve` would run with (defaults, file, flags) as TOML, Kafka key names.
    #[command(after_help = "Examples:\n  strand config print\n  strand config print --config strand.toml --shards 2")]
    Print(BrokerConfigArgs),
    /// Check a config file: prints "ok", or the error and exits 1.
    #[command(after_help = "Example:\n  strand config check strand.toml")]
    Check { file: PathBuf },
}

/// Parses the command line, runs the command, and returns the process exit code.
pub fn run() -> i32 {
    let cli = Cli::parse();
    init_logging(matches!(cli.command, Command::Serve(_)));
    let result = match &cli.command {
        Command::Serve(args) => super::serve::serve(args),
        Command::Config(ConfigCommand::Print(args)) => print_config(args),
        Command::Config(ConfigCommand::Check { file }) => check_config(file),
        Command::Topic(args) => super::topic::run(args),
        Command::Produce(args) => super::produce::run(args),
        Command::Consume(args) => super::consume::run(args),
        Command::Group(args) => super::group::run(args),
        Command::Cluster(args) => super::cluster::run(args),
        Command::Dump(args) => super::dump::run(args),
        Command::Bench(args) => super::bench::run(args),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            // Not eprintln!, which panics when stderr cannot be written (and a broker's panic
            // hook aborts).
            let _ = writeln!(std::io::stderr(), "strand: {e}");
            1
        }
    }
}

/// Logs go to stderr. The broker logs at info; client commands only show warnings, and
/// librdkafka's own log lines (which repeat what the command reports) only with RUST_LOG.
fn init_logging(serving: bool) {
    let default = if serving { "info" } else { "warn,rdkafka=off" };
    tracing_subscriber::fmt()
        .with_writer(|| LossyStderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into()))
        .init();
}

/// Log lines stderr refused, not yet reported.
static LOG_LINES_DROPPED: AtomicU64 = AtomicU64::new(0);

/// stderr for log lines, where a line that cannot be written is dropped and counted. A full
/// disk under a redirected log or a closed pipe must not stop a broker: tracing-subscriber
/// reports a failed write with `eprintln!`, which panics when stderr itself fails, and a
/// panic aborts the broker (serve.rs). The count is written before the next line that gets
/// through.
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        write_line(&mut std::io::stderr().lock(), line, &LOG_LINES_DROPPED);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Writes one log line to `out`, after the count of lines dropped before it; a line `out`
/// refuses is counted in `dropped`.
fn write_line(out: &mut impl std::io::Write, line: &[u8], dropped: &AtomicU64) {
    let count = dropped.load(Ordering::Relaxed);
    // On a line of its own: a failed write may have left part of a line behind.
    if count > 0 && writeln!(out, "\n[strand] {count} log lines were dropped: stderr could not be written").is_ok() {
        dropped.fetch_sub(count, Ordering::Relaxed);
    }
    if out.write_all(line).is_err() {
        dropped.fetch_add(1, Ordering::Relaxed);
    }
}

fn print_config(args: &BrokerConfigArgs) -> anyhow::Result<()> {
    let text = super::config_cmd::effective_toml(args)?;
    std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes())?;
    Ok(())
}

fn check_config(file: &std::path::Path) -> anyhow::Result<()> {
    super::config_cmd::check(file)?;
    std::io::Write::write_all(&mut std::io::stdout().lock(), b"ok\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn log_lines_stderr_refuses_are_dropped_and_counted_before_the_next_that_gets_through() {
        /// Accepts writes unless `failing`; a failing write takes a few bytes first, as a
        /// short write before an error does.
        struct Flaky {
            failing: bool,
            out: Vec<u8>,
        }
        impl std::io::Write for Flaky {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if self.failing {
                    self.out.extend_from_slice(&buf[..buf.len().min(2)]);
                    return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
                }
                self.out.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (mut out, dropped) = (Flaky { failing: false, out: Vec::new() }, AtomicU64::new(0));
        write_line(&mut out, b"one\n", &dropped);
        out.failing = true;
        write_line(&mut out, b"two\n", &dropped);
        write_line(&mut out, b"three\n", &dropped);
        assert_eq!(dropped.load(Ordering::Relaxed), 2);
        out.failing = false;
        write_line(&mut out, b"four\n", &dropped);
        assert_eq!(dropped.load(Ordering::Relaxed), 0);
        let text = String::from_utf8(out.out).expect("text");
        // The fragments the failing writes left ("tw", the notice's "\n[" and "th"), then the
        // count on a line of its own, then the next line.
        assert_eq!(text, "one\ntw\n[th\n[strand] 2 log lines were dropped: stderr could not be written\nfour\n");
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_help_with_examples() {
        fn walk(cmd: &clap::Command, path: &str) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_subcommands().next().is_none() {
                let help = cmd.clone().render_long_help().to_string();
                assert!(help.contains("Example"), "`{path} --help` has no examples");
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path);
            }
        }
        walk(&Cli::command(), "");
    }
}
