//! Bench results as a table for people and as JSON for tools: throughput, latency
//! percentiles, per-second windows, and each histogram raw (HdrHistogram's compressed V2 log
//! encoding in base64, which HdrHistogram's tools read, and the recorded value/count pairs).

use base64::Engine as _;
use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::cpu::CpuShare;
use super::phase_result::{ConsumeFigures, PhaseResult, ProduceFigures};
use super::latency::{LatencyRecorder, Percentiles};
use crate::cli::table::Table;

/// A process this busy (share of its cores) may be what limits the figures.
const SATURATED: f64 = 0.9;

fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 { count as f64 / seconds } else { 0.0 }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// The table printed at the end of a phase.
pub fn phase_table(result: &PhaseResult) -> String {
    let mut throughput = Table::new(&["THROUGHPUT", "MESSAGES", "SECONDS", "MSG/S", "MB/S"]);
    let mut latency = Table::new(&["LATENCY (ms)", "COUNT", "P50", "P90", "P99", "P99.9", "P99.99", "MAX"]);
    let mut notes = Vec::new();
    if let Some(p) = &result.produce {
        throughput.row(throughput_row("produced", p.measured, p.measured_bytes, p.seconds));
        latency.row(latency_row("produce ack", &p.latency));
        if p.failed > 0 {
            notes.push(format!("{} records failed: {}", p.failed, p.first_error.clone().unwrap_or_default()));
        }
    }
    if let Some((recorder, c)) = &result.e2e {
        throughput.row(throughput_row("consumed", c.measured, c.bytes, c.seconds));
        latency.row(latency_row("end-to-end", recorder));
        if let Some(p) = &result.produce {
            if c.measured < p.measured {
                notes.push(format!("{} acknowledged records were not received in time", p.measured - c.measured));
            }
        }
    }
    if let Some(d) = &result.drain {
        throughput.row(throughput_row("drained", d.measured, d.bytes, d.seconds));
        if !d.complete {
            notes.push("the drain did not reach the log end before the phase ended".to_owned());
        }
    }
    let mut out = throughput.render();
    if !latency.is_empty() {
        out.push('\n');
        out.push_str(&latency.render());
    }
    for (who, cpu) in [("load generator", &result.client_cpu), ("broker", &result.broker_cpu)] {
        if let Some(cpu) = cpu {
            out.push_str(&format!("{}\n", cpu_line(who, cpu)));
        }
    }
    for note in notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

fn throughput_row(what: &str, messages: u64, bytes: u64, seconds: f64) -> Vec<String> {
    vec![
        what.to_owned(),
        messages.to_string(),
        format!("{seconds:.2}"),
        format!("{:.1}", per_second(messages, seconds)),
        format!("{:.2}", mb(bytes) / seconds.max(f64::MIN_POSITIVE)),
    ]
}

fn latency_row(what: &str, recorder: &LatencyRecorder) -> Vec<String> {
    let p = Percentiles::of(&recorder.total);
    vec![what.to_owned(), p.count.to_string(), ms(p.p50), ms(p.p90), ms(p.p99), ms(p.p99_9), ms(p.p99_99), ms(p.max)]
}

/// A phase as JSON: throughput, latency and raw histograms.
pub fn phase_json(result: &PhaseResult) -> Value {
    let mut phase = json!({ "name": result.name });
    if let Some(p) = &result.produce {
        phase["produce"] = produce_json(p);
    }
    if let Some((recorder, c)) = &result.e2e {
        let mut e2e = consume_json(c);
        e2e["latency"] = latency_json(recorder);
        phase["end_to_end"] = e2e;
    }
    if let Some(d) = &result.drain {
        phase["drain"] = consume_json(d);
    }
    for (key, cpu) in [("client_cpu", &result.client_cpu), ("broker_cpu", &result.broker_cpu)] {
        if let Some(cpu) = cpu {
            phase[key] = json!({
                "cpu_seconds": cpu.cpu_seconds,
                "wall_seconds": cpu.wall_seconds,
                "cores": cpu.cores,
                "busy_cores": cpu.busy_cores(),
                "busiest_thread": cpu.busiest().map(|(name, busy)| json!({ "name": name, "busy_cores": busy })),
            });
        }
    }
    phase
}

/// A process's CPU over the measured window and its busiest thread's, called out when
/// either may have set the pace.
fn cpu_line(who: &str, cpu: &CpuShare) -> String {
    let busy = cpu.busy_cores();
    let mut line = format!("{who} CPU: {busy:.2} of {} core(s) while measuring", cpu.cores);
    let busiest = cpu.busiest();
    if let Some((name, thread_busy)) = busiest {
        line.push_str(&format!(", busiest thread {name} {thread_busy:.2}"));
    }
    if busy >= SATURATED * cpu.cores as f64 || busiest.is_some_and(|(_, b)| b >= SATURATED) {
        line.push_str(&format!(" (nearly saturated: the {who} may be what limits these figures)"));
    }
    line
}

fn produce_json(p: &ProduceFigures) -> Value {
    json!({
        "sent": p.sent,
        "acked": p.acked,
        "failed": p.failed,
        "first_error": p.first_error,
        "measured_messages": p.measured,
        "measured_bytes": p.measured_bytes,
        "seconds": p.seconds,
        "messages_per_second": per_second(p.measured, p.seconds),
        "mb_per_second": mb(p.measured_bytes) / p.seconds.max(f64::MIN_POSITIVE),
        "latency": latency_json(&p.latency),
    })
}

fn consume_json(c: &ConsumeFigures) -> Value {
    json!({
        "received": c.received,
        "measured_messages": c.measured,
        "measured_bytes": c.bytes,
        "seconds": c.seconds,
        "messages_per_second": per_second(c.measured, c.seconds),
        "mb_per_second": mb(c.bytes) / c.seconds.max(f64::MIN_POSITIVE),
        "errors": c.errors,
        "complete": c.complete,
        "passes": c.passes,
    })
}

/// Percentiles in microseconds, per-second windows, and the raw histogram.
pub fn latency_json(recorder: &LatencyRecorder) -> Value {
    let windows: Vec<Value> = recorder
        .windows
        .iter()
        .enumerate()
        .map(|(second, h)| {
            let p = Percentiles::of(h);
            json!({ "second": second, "count": p.count, "p50": p.p50, "p99": p.p99, "max": p.max })
        })
        .collect();
    json!({
        "unit": "us",
        "percentiles": Percentiles::of(&recorder.total),
        "windows": windows,
        "histogram": histogram_json(&recorder.total),
    })
}

fn histogram_json(h: &Histogram<u64>) -> Value {
    let mut encoded = Vec::new();
    let hdr = match V2DeflateSerializer::new().serialize(h, &mut encoded) {
        Ok(_) => Value::String(base64::engine::general_purpose::STANDARD.encode(&encoded)),
        Err(_) => Value::Null,
    };
    let values: Vec<Value> = h.iter_recorded().map(|v| json!([v.value_iterated_to(), v.count_at_value()])).collect();
    json!({ "hdr_v2_deflate_base64": hdr, "values": values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::Deserializer;

    #[test]
    fn the_raw_histogram_round_trips_through_its_base64_encoding() {
        let mut h = super::super::latency::histogram();
        for v in [10u64, 20, 20, 5000] {
            h.record(v).unwrap();
        }
        let json = histogram_json(&h);
        let bytes = base64::engine::general_purpose::STANDARD.decode(json["hdr_v2_deflate_base64"].as_str().unwrap()).unwrap();
        let back: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
        assert_eq!(back.len(), 4);
        assert_eq!(back.max(), h.max());
        let pairs = json["values"].as_array().unwrap();
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs[1], json!([20, 2]));
    }

    #[test]
    fn a_nearly_saturated_client_is_called_out() {
        let busy = CpuShare { cpu_seconds: 19.0, wall_seconds: 20.0, cores: 1, busiest_thread: Some(("rdk:broker0".into(), 9.0)) };
        let line = cpu_line("load generator", &busy);
        assert!(line.starts_with("load generator CPU: 0.95 of 1 core(s) while measuring, busiest thread rdk:broker0 0.45"), "{line}");
        assert!(line.contains("the load generator may be what limits"), "{line}");
        let idle = CpuShare { cpu_seconds: 19.0, wall_seconds: 20.0, cores: 4, busiest_thread: Some(("shard-0".into(), 6.0)) };
        assert!(!cpu_line("broker", &idle).contains("saturated"));
        // One shard thread of a 4-core broker at 0.95: the process has cores to spare, that shard does not.
        let one_shard_busy = CpuShare { busiest_thread: Some(("shard-0".into(), 19.0)), ..idle };
        assert!(cpu_line("broker", &one_shard_busy).contains("the broker may be what limits"));
    }
}
