//! `--brokers` and the other client flags every broker-facing command takes, the
//! reachability probe that turns a missing broker into one line within seconds, and the
//! librdkafka client config built from them.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use clap::Args;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::BaseConsumer;
use rdkafka::ClientConfig;

use super::time_text::parse_duration;

/// How long the probe waits for a TCP connection to each bootstrap broker.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Where the brokers are and how patient to be with them.
#[derive(Args, Debug, Clone)]
pub struct BrokerArgs {
    /// Bootstrap brokers, HOST:PORT[,HOST:PORT...] (as rpk's --brokers).
    #[arg(long, short = 'b', env = "STRAND_BROKERS", default_value = "127.0.0.1:9092", global = true)]
    pub brokers: String,
    /// Extra librdkafka client property, KEY=VALUE; repeatable (e.g. -X security.protocol=ssl).
    #[arg(short = 'X', value_name = "KEY=VALUE", global = true)]
    pub client_property: Vec<String>,
    /// How long to wait for a broker's answer (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration, global = true)]
    pub timeout: Duration,
}

impl BrokerArgs {
    /// Fails with "no broker at HOST:PORT: connection refused" unless at least one bootstrap
    /// broker accepts a TCP connection. librdkafka itself would retry quietly until a timeout.
    pub fn probe(&self) -> anyhow::Result<()> {
        let mut last = None;
        for broker in self.list() {
            match connect(broker) {
                Ok(()) => return Ok(()),
                Err(reason) => last = Some(format!("no broker at {broker}: {reason}")),
            }
        }
        Err(anyhow::anyhow!(last.unwrap_or_else(|| "no brokers given (--brokers HOST:PORT)".to_owned())))
    }

    pub fn list(&self) -> impl Iterator<Item = &str> {
        self.brokers.split(',').map(str::trim).filter(|b| !b.is_empty())
    }

    /// A librdkafka config for these brokers.
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        self.client_config_with(&[])
    }

    /// A librdkafka config for these brokers with the command's own `defaults`; `-X`
    /// properties win over both.
    pub fn client_config_with(&self, defaults: &[(&str, String)]) -> anyhow::Result<ClientConfig> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "strand-cli")
            .set("socket.timeout.ms", self.timeout.as_millis().max(10).to_string());
        for (key, value) in defaults {
            config.set(*key, value);
        }
        for property in &self.client_property {
            let (key, value) = property
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("-X {property}: expected KEY=VALUE"))?;
            config.set(key.trim(), value.trim());
        }
        Ok(config)
    }
}

impl BrokerArgs {
    /// An admin client, after the probe.
    pub fn admin(&self) -> anyhow::Result<AdminClient<DefaultClientContext>> {
        self.probe()?;
        self.client_config()?.create().map_err(|e| anyhow::anyhow!("creating the admin client: {e}"))
    }

    /// Admin request options: wait up to `--timeout` for the broker and for the operation.
    pub fn admin_options(&self) -> AdminOptions {
        AdminOptions::new().request_timeout(Some(self.timeout)).operation_timeout(Some(self.timeout))
    }

    /// A consumer for metadata, watermarks, offsets and reading; in `group` when given (needed
    /// for committed offsets and commits), otherwise without a group. It never auto-creates
    /// topics and never commits on its own.
    pub fn consumer(&self, group: Option<&str>) -> anyhow::Result<BaseConsumer> {
        self.probe()?;
        let mut config = self.client_config()?;
        config
            .set("allow.auto.create.topics", "false")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        if let Some(group) = group {
            config.set("group.id", group);
        }
        config.create().map_err(|e| anyhow::anyhow!("creating the consumer: {e}"))
    }
}

fn connect(broker: &str) -> Result<(), String> {
    let addrs = broker.to_socket_addrs().map_err(|e| format!("cannot resolve: {e}"))?;
    let mut last = "no address".to_owned();
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e) => last = io_reason(&e),
        }
    }
    Err(last)
}

fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => format!("no answer within {}s", PROBE_TIMEOUT.as_secs()),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(brokers: &str) -> BrokerArgs {
        BrokerArgs { brokers: brokers.into(), client_property: vec![], timeout: Duration::from_secs(1) }
    }

    #[test]
    fn a_closed_port_is_a_one_line_connection_refused() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let err = args(&format!("127.0.0.1:{port}")).probe().unwrap_err().to_string();
        assert_eq!(err, format!("no broker at 127.0.0.1:{port}: connection refused"));
    }

    #[test]
    fn one_listening_broker_of_several_is_enough() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        args(&format!("127.0.0.1:1, 127.0.0.1:{port}")).probe().unwrap();
    }
}
