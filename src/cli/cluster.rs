//! `strand cluster info`: brokers, controller and cluster id (Metadata) and the APIs the
//! broker serves with their versions (ApiVersions).

use std::io::Write as _;

use clap::{Args, Subcommand};
use kafka_protocol::messages::ApiKey;
use rdkafka::consumer::Consumer;

use super::brokers::BrokerArgs;
use super::kafka_error::explain;
use super::raw_client::RawConnection;
use super::table::Table;

#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub brokers: BrokerArgs,
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Brokers, controller, cluster id and the API versions the broker serves.
    #[command(after_help = "Example:\n  strand cluster info --brokers 127.0.0.1:9092")]
    Info,
}

pub fn run(args: &ClusterArgs) -> anyhow::Result<()> {
    match args.command {
        ClusterCommand::Info => info(&args.brokers),
    }
}

fn info(b: &BrokerArgs) -> anyhow::Result<()> {
    let consumer = b.consumer(None)?;
    let metadata = consumer.fetch_metadata(None, b.timeout).map_err(|e| explain("cluster info (Metadata)", &e))?;
    let bootstrap = b.list().next().unwrap_or("127.0.0.1:9092");
    let mut raw = RawConnection::connect(bootstrap, b.timeout)?;
    let versions = raw.api_versions()?;
    let metadata_max = versions.iter().find(|v| v.0 == ApiKey::Metadata as i16).map_or(1, |v| v.2.min(12));
    let controller = raw.cluster_metadata(metadata_max.max(1))?;
    let cluster_id = controller.cluster_id.as_ref().map_or("-".to_owned(), ToString::to_string);
    let mut out = format!(
        "cluster id   {cluster_id}\ncontroller   {}\nbrokers      {}\n\n",
        controller.controller_id.0,
        metadata.brokers().len()
    );
    let mut brokers = Table::new(&["BROKER", "HOST", "PORT"]);
    let mut listed: Vec<_> = metadata.brokers().iter().collect();
    listed.sort_by_key(|broker| broker.id());
    for broker in listed {
        brokers.row(vec![broker.id().to_string(), broker.host().to_owned(), broker.port().to_string()]);
    }
    out.push_str(&brokers.render());
    out.push_str(&format!("\nAPIs served by {bootstrap} (ApiVersions):\n"));
    let mut apis = Table::new(&["API", "KEY", "MIN", "MAX"]);
    for (key, min, max) in versions {
        let name = ApiKey::try_from(key).map_or_else(|()| format!("unknown({key})"), |k| format!("{k:?}"));
        apis.row(vec![name, key.to_string(), min.to_string(), max.to_string()]);
    }
    out.push_str(&apis.render());
    write!(std::io::stdout(), "{out}")?;
    Ok(())
}
