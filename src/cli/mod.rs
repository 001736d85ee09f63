//! The `strand` command line. Runs in the binary only, never on a shard: plain threads and
//! blocking librdkafka clients. One file per command group; [`app`] parses the arguments and
//! dispatches. Output goes to stdout (data) and stderr (progress, errors: one line, exit 1).

mod app;
mod bench;
mod broker_apis;
mod brokers;
mod cluster;
mod config_cmd;
mod consume;
mod dump;
mod group;
mod group_assignment;
mod group_offsets;
mod kafka_error;
mod offset_spec;
mod produce;
mod raw_client;
mod record_format;
mod serve;
mod table;
mod time_text;
mod topic;

pub use app::run;
