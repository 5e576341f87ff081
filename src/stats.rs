//! Operation statistics (`BENCHFS_STATS=1`): per-operation counts, bytes and latency histograms,
//! on the client side (each call of the API, as its caller waits for it) and on the server side
//! (each request served, from the start of its serving to its reply), summed over the job's ranks
//! at finalize and printed by rank 0 on standard error.
//!
//! Besides, the phases of the requests that cross the transport, by request (see [`Phase`]),
//! show where a remote call's time goes: how long a request and its reply were under way, how
//! long the request waited for its server to start serving it, how long the serving took, and
//! how long the reply waited for the caller to take it. A call's time, less its requests' time
//! in flight and their replies' wait, is what the calling rank spent on it itself.
//!
//! Recording is a few relaxed atomic additions per operation, and nothing at all when disabled.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// The calls timed on the client side, in the order the summary lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Open,
    Close,
    Read,
    Write,
    Stat,
    Fstat,
    Unlink,
    Mkdir,
    Rmdir,
    Rename,
    Truncate,
    Fsync,
    Lseek,
    Access,
    Statvfs,
    Opendir,
    Readdir,
}

const CALLS: [&str; 17] = [
    "open",
    "close",
    "read",
    "write",
    "stat",
    "fstat",
    "unlink",
    "mkdir",
    "rmdir",
    "rename",
    "truncate",
    "fsync",
    "lseek",
    "access",
    "statvfs",
    "opendir",
    "readdir page",
];
/// Server-side slots: one per request opcode below this.
const OPCODES: usize = 34;

/// The phases of a request that crosses the transport, each timed on the rank where it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// On the caller: from just before the request is sent to the arrival of its reply (the
    /// transport both ways, the wait for the server and the serving).
    InFlight,
    /// On the caller: from the reply's arrival (in the receive handler of whoever turns the
    /// loop) to the resumption of the call that waits for it.
    ReplyWait,
    /// On the server: from the request's arrival to the start of its serving.
    Queued,
}

const PHASES: usize = 3;
/// Client calls, requests served by opcode, then each phase by opcode.
const SLOTS: usize = CALLS.len() + OPCODES + PHASES * OPCODES;
/// Histogram buckets: bucket `b` counts latencies below 2^b microseconds (bucket 0: below
/// 1 µs); the last one everything longer.
const BUCKETS: usize = 20;
/// Per slot: count, nanoseconds, bytes, then the buckets.
const WIDTH: usize = 3 + BUCKETS;

static ENABLED: AtomicBool = AtomicBool::new(false);
#[allow(clippy::declare_interior_mutable_const)] // only the array's initial value
const ZERO: AtomicU64 = AtomicU64::new(0);
static TABLE: [AtomicU64; SLOTS * WIDTH] = [ZERO; SLOTS * WIDTH];

/// Turns recording on or off (at init, from the configuration); clears what was recorded.
pub fn enable(on: bool) {
    for cell in &TABLE {
        cell.store(0, Ordering::Relaxed);
    }
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The start of a timed operation, if recording is on.
pub fn start() -> Option<Instant> {
    enabled().then(Instant::now)
}

fn record(slot: usize, started: Option<Instant>, bytes: u64) {
    if let Some(started) = started {
        record_span(slot, started, Instant::now(), bytes);
    }
}

fn record_span(slot: usize, from: Instant, to: Instant, bytes: u64) {
    let nanos = to.saturating_duration_since(from).as_nanos().min(u64::MAX as u128) as u64;
    let micros = nanos / 1000;
    let bucket = ((u64::BITS - micros.leading_zeros()) as usize).min(BUCKETS - 1);
    let base = slot * WIDTH;
    TABLE[base].fetch_add(1, Ordering::Relaxed);
    TABLE[base + 1].fetch_add(nanos, Ordering::Relaxed);
    TABLE[base + 2].fetch_add(bytes, Ordering::Relaxed);
    TABLE[base + 3 + bucket].fetch_add(1, Ordering::Relaxed);
}

/// Records a client call that started at `started` (from [`start`]) and moved `bytes`.
pub fn call(call: Call, started: Option<Instant>, bytes: u64) {
    record(call as usize, started, bytes);
}

/// Records a request with `opcode` served here, received at `started`, that moved `bytes` of
/// data.
pub fn served(opcode: u16, started: Option<Instant>, bytes: u64) {
    if (opcode as usize) < OPCODES {
        record(CALLS.len() + opcode as usize, started, bytes);
    }
}

/// Records `phase` of one request with `opcode`, from `from` to `to` (instants from [`start`]:
/// both are there only while recording is on).
pub fn phase(phase: Phase, opcode: u16, from: Option<Instant>, to: Option<Instant>) {
    if let (Some(from), Some(to)) = (from, to) {
        if (opcode as usize) < OPCODES {
            record_span(phase_slot(phase, opcode as usize), from, to, 0);
        }
    }
}

fn phase_slot(phase: Phase, opcode: usize) -> usize {
    CALLS.len() + OPCODES + phase as usize * OPCODES + opcode
}

/// Requests this rank has served since init, while recording is on.
pub fn served_total() -> u64 {
    (0..OPCODES).map(|op| TABLE[(CALLS.len() + op) * WIDTH].load(Ordering::Relaxed)).sum()
}

/// This rank's table, to be summed over the ranks.
pub fn snapshot() -> Vec<u64> {
    TABLE.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

/// The upper bound, in microseconds, of the bucket where the `q`-quantile of `buckets` lies.
fn quantile(buckets: &[u64], count: u64, q: f64) -> String {
    let want = ((count as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (b, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= want {
            return if b + 1 == BUCKETS { format!(">{}", 1u64 << (b - 1)) } else { format!("<{}", 1u64 << b) };
        }
    }
    "-".into()
}

/// The summary of a table summed over `ranks` ranks, `names(opcode)` naming server requests.
pub fn summary(table: &[u64], ranks: u32, names: impl Fn(u16) -> Option<&'static str>) -> String {
    let mut out = format!("benchfs stats over {ranks} ranks (latency in microseconds; p50/p99 are histogram bucket bounds)\n");
    let _ = writeln!(out, "{:<8} {:<14} {:>12} {:>10} {:>7} {:>7} {:>14}", "side", "operation", "count", "mean", "p50", "p99", "bytes");
    for slot in 0..CALLS.len() + OPCODES {
        let row = &table[slot * WIDTH..(slot + 1) * WIDTH];
        let (count, nanos, bytes) = (row[0], row[1], row[2]);
        if count == 0 {
            continue;
        }
        let (side, name) = match slot.checked_sub(CALLS.len()) {
            None => ("client", CALLS[slot]),
            Some(opcode) => ("server", names(opcode as u16).unwrap_or("?")),
        };
        let buckets = &row[3..];
        let mean = nanos as f64 / count as f64 / 1000.0;
        let (p50, p99) = (quantile(buckets, count, 0.5), quantile(buckets, count, 0.99));
        let _ = writeln!(out, "{side:<8} {name:<14} {count:>12} {mean:>10.2} {p50:>7} {p99:>7} {bytes:>14}");
    }
    let mean = |slot: usize| {
        let (count, nanos) = (table[slot * WIDTH], table[slot * WIDTH + 1]);
        (count > 0).then(|| nanos as f64 / count as f64 / 1000.0)
    };
    let shown = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
    let mut header = false;
    for opcode in 0..OPCODES {
        let flight = phase_slot(Phase::InFlight, opcode);
        let sent = table[flight * WIDTH];
        if sent == 0 {
            continue;
        }
        if !std::mem::replace(&mut header, true) {
            let _ = writeln!(
                out,
                "requests between ranks (means in microseconds: sent to replied, of which queued and served; reply to caller)"
            );
            let _ = writeln!(
                out,
                "{:<8} {:<14} {:>12} {:>10} {:>7} {:>7} {:>10}",
                "", "request", "sent", "in flight", "queued", "served", "reply wait"
            );
        }
        let name = names(opcode as u16).unwrap_or("?");
        let (queued, served) = (mean(phase_slot(Phase::Queued, opcode)), mean(CALLS.len() + opcode));
        let _ = writeln!(
            out,
            "{:<8} {name:<14} {sent:>12} {:>10} {:>7} {:>7} {:>10}",
            "request",
            shown(mean(flight)),
            shown(queued),
            shown(served),
            shown(mean(phase_slot(Phase::ReplyWait, opcode)))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_buckets() {
        let mut buckets = [0u64; BUCKETS];
        buckets[2] = 98; // below 4 us
        buckets[6] = 2; // below 64 us
        assert_eq!(quantile(&buckets, 100, 0.5), "<4");
        assert_eq!(quantile(&buckets, 100, 0.99), "<64");
        buckets[BUCKETS - 1] = 100;
        assert_eq!(quantile(&buckets, 200, 0.99), format!(">{}", 1u64 << (BUCKETS - 2)));
    }

    #[test]
    fn served_total_counts_served_requests_only() {
        let before = served_total();
        served(2, Some(Instant::now()), 0);
        served(OPCODES as u16, Some(Instant::now()), 0);
        call(Call::Stat, Some(Instant::now()), 0);
        served(3, None, 0);
        phase(Phase::Queued, 2, Some(Instant::now()), Some(Instant::now()));
        assert_eq!(served_total() - before, 1);
    }

    #[test]
    fn the_summary_lists_what_was_recorded() {
        let mut table = vec![0u64; SLOTS * WIDTH];
        let stat = Call::Stat as usize * WIDTH;
        table[stat..stat + 3].copy_from_slice(&[4, 8_000, 0]);
        table[stat + 3 + 2] = 4;
        let served = (CALLS.len() + 2) * WIDTH;
        table[served..served + 3].copy_from_slice(&[4, 4_000, 0]);
        table[served + 3 + 1] = 4;
        let text = summary(&table, 2, |op| (op == 2).then_some("Stat"));
        assert!(text.contains("over 2 ranks"));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "a header, the column names and two rows (no request phases): {text}");
        assert!(lines[2].starts_with("client") && lines[2].contains("stat") && lines[2].contains("2.00") && lines[2].contains("<4"));
        assert!(lines[3].starts_with("server") && lines[3].contains("Stat") && lines[3].contains("1.00"));
        // Two Stat requests sent: 3 us in flight (half a microsecond queued), 0.2 us to the caller.
        for (phase, nanos) in [(Phase::InFlight, 6_000), (Phase::Queued, 1_000), (Phase::ReplyWait, 400)] {
            let slot = phase_slot(phase, 2) * WIDTH;
            table[slot..slot + 2].copy_from_slice(&[2, nanos]);
        }
        let text = summary(&table, 2, |op| (op == 2).then_some("Stat"));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7, "and the requests' table: {text}");
        let row: Vec<&str> = lines[6].split_whitespace().collect();
        assert_eq!(row, ["request", "Stat", "2", "3.00", "0.50", "1.00", "0.20"], "{text}");
    }
}
