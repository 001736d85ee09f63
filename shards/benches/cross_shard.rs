//! Stage benchmark: what one cross-shard request costs, which is what steering a connection
//! to the shard owning its partitions could save per partition request.
//!
//! Two shards, pinned to the first two cores as the broker pins them. Shard 0 asks shard 1,
//! which answers at once, through [`Mesh::call`]: first one request at a time (each waits for
//! the last answer, so shard 1 goes idle in between and is woken for each), then `IN_FLIGHT`
//! tasks asking at once. Beside them, the same requests answered on shard 0 itself the way
//! the broker answers a partition it owns (a reply slot, no crossing). Prints requests per
//! second and round-trip percentiles; never fails on timing. Each run is made with the shards
//! sleeping as soon as they are idle, and again with them polling a while first.
//!
//! `cargo bench -p strand-shards --bench cross_shard [-- REQUESTS]`

#![allow(clippy::print_stdout)] // a benchmark's output is its report

use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use strand_shards::{task::spawn_local, Mesh, Reply, Runtime, RuntimeOptions, ShardContext, ShardId};

const IN_FLIGHT: usize = 16;
/// The shards' `RuntimeOptions::idle_poll` (the broker's shard.idle.poll.us) in each runtime.
const IDLE_POLLS: [Duration; 3] = [Duration::ZERO, Duration::from_micros(50), Duration::from_micros(200)];

enum Request {
    Ping(Reply<Instant>),
}

fn main() {
    let requests: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200_000).max(IN_FLIGHT);
    if strand_shards::available_cores() < 2 {
        println!("cross_shard: needs two cores, this machine has one");
        return;
    }
    println!("cross_shard: {requests} requests per run, shard 0 on the first core asking shard 1 on the second");
    for idle_poll in IDLE_POLLS {
        println!("idle poll {idle_poll:?}");
        run_runtime(requests, idle_poll);
    }
}

/// One runtime of two shards polling `idle_poll` before they sleep, through every run.
fn run_runtime(requests: usize, idle_poll: Duration) {
    let (done, reports) = mpsc::channel::<()>();
    let options = RuntimeOptions { shards: 2, io_memory_bytes: 1 << 20, mailbox_max: 1024, idle_poll };
    let runtime = Runtime::start(&options, move |context: ShardContext<Request>| {
        // Shard 0 measures and reports when it is done; shard 1 answers.
        let done = (context.id == ShardId(0)).then(|| done.clone());
        async move {
            match done {
                Some(done) => {
                    run_all(Rc::new(context.mesh), requests).await;
                    let _ = done.send(());
                }
                None => serve(&context).await,
            }
        }
    })
    .expect("two shards start");
    let _ = reports.recv();
    runtime.stop();
    let _ = runtime.join();
}

/// Shard 1: answers every request at once, until the runtime stops.
async fn serve(context: &ShardContext<Request>) {
    let stop = context.stop.wait();
    let answering = async {
        while let Some(Request::Ping(reply)) = context.inbox.recv().await {
            reply.send(Instant::now());
        }
    };
    futures_lite::future::or(stop, answering).await;
}

async fn run_all(mesh: Rc<Mesh<Request>>, requests: usize) {
    for (label, in_flight) in [("one at a time", 1), ("16 in flight", IN_FLIGHT)] {
        for local in [true, false] {
            let started = Instant::now();
            let latencies = run(&mesh, requests, in_flight, local).await;
            let place = if local { "same shard" } else { "cross-shard" };
            report(&format!("{place}, {label}"), &latencies, started.elapsed());
        }
    }
}

/// `requests` round trips by `in_flight` tasks; `local` answers on this shard instead.
async fn run(mesh: &Rc<Mesh<Request>>, requests: usize, in_flight: usize, local: bool) -> Vec<Duration> {
    let per_task = requests / in_flight;
    let tasks: Vec<_> = (0..in_flight)
        .map(|_| {
            let mesh = Rc::clone(mesh);
            spawn_local(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let sent = Instant::now();
                    if local {
                        let (reply, pending) = Reply::pair();
                        answer_here(Request::Ping(reply)).await;
                        pending.wait().await.expect("answered");
                    } else {
                        mesh.call(ShardId(1), Request::Ping).await.expect("shard 1 answers");
                    }
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::with_capacity(requests);
    for task in tasks {
        all.extend(task.await);
    }
    all
}

/// What the broker does for a partition its own shard owns: handles the request in place.
async fn answer_here(request: Request) {
    let Request::Ping(reply) = request;
    reply.send(Instant::now());
}

fn report(label: &str, latencies: &[Duration], elapsed: Duration) {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let pct = |p: f64| sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)];
    println!(
        "  {label:<28} {:>10.0} requests/s   round trip p50 {:>8.1?} p99 {:>8.1?} p99.9 {:>8.1?} max {:>8.1?}",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        pct(0.999),
        sorted[sorted.len() - 1],
    );
}
