//! The `strand` binary: the broker (`strand serve`) and the command line around it: config,
//! topics, produce, consume, groups, cluster, offline segment dumps and the latency benchmark.
//! The client commands speak the Kafka protocol through librdkafka, so they work against any
//! Kafka-compatible broker. See [`cli`].

mod cli;

fn main() {
    std::process::exit(cli::run());
}
