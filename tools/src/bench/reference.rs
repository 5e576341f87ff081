//! The transport's own figures, measured in the same job by `ucx_perftest` (Debian package
//! `ucx-utils`) between two processes on rank 0's node: the active-message round trip for
//! `--mode latency`, and the active-message bandwidth that chunk data crossing UCX
//! (`BENCHFS_NODE_LOCAL=0`) is compared with. The processes inherit the environment, so
//! `UCX_TLS` chooses their transport as it chooses BenchFS's.

use std::process::{Command, Stdio};
use std::time::Duration;

/// The numbers of `ucx_perftest`'s `Final:` line for `test` run with `args`: iterations, then
/// (for a latency test, in µs) typical, average and overall latency, or (for a bandwidth test)
/// the same latencies followed by average and overall bandwidth in MiB/s. `Err` says why there
/// are none.
fn final_line(test: &str, args: &[&str]) -> Result<Vec<f64>, String> {
    let port = (20000 + std::process::id() % 20000).to_string();
    let mut all = vec!["-t", test, "-p", &port];
    all.extend_from_slice(args);
    let mut server = unbound(Command::new("ucx_perftest"))
        .args(&all)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("ucx_perftest not run ({e}); Debian has it in ucx-utils"))?;
    std::thread::sleep(Duration::from_millis(500));
    let client = unbound(Command::new("ucx_perftest")).arg("127.0.0.1").args(&all).stdin(Stdio::null()).output();
    // A server whose client never came would wait for ever.
    let _ = server.kill();
    let _ = server.wait();
    let out = client.map_err(|e| format!("ucx_perftest client: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.trim_start().starts_with("Final:")).ok_or("ucx_perftest printed no result")?;
    Ok(line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect())
}

/// `ucx_perftest`'s active-message one-way latency on this node, (median, average) in µs.
pub fn am_latency() -> Result<(f64, f64), String> {
    match final_line("ucp_am_lat", &["-n", "20000"])?.as_slice() {
        [_, median, average, ..] => Ok((*median, *average)),
        other => Err(format!("unexpected ucx_perftest result: {other:?}")),
    }
}

/// `ucx_perftest`'s active-message bandwidth on this node for messages of `size` bytes, in
/// MiB/s (overall, over about a GiB of messages).
pub fn am_bandwidth(size: u64) -> Result<f64, String> {
    let size_arg = size.to_string();
    let count = ((1u64 << 30) / size.max(1)).clamp(100, 100_000).to_string();
    match final_line("ucp_am_bw", &["-s", &size_arg, "-n", &count])?.as_slice() {
        [_, _, _, _, _, overall, ..] => Ok(*overall),
        other => Err(format!("unexpected ucx_perftest result: {other:?}")),
    }
}

/// `command`, free to run on every CPU: this rank may be bound to one core, and two
/// busy-polling processes sharing it would measure the scheduler instead.
fn unbound(mut command: Command) -> Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the closure only calls async-signal-safe sched_setaffinity
    // on a set built on its own stack.
    unsafe {
        command.pre_exec(|| {
            let mut all: libc::cpu_set_t = std::mem::zeroed();
            for cpu in 0..libc::CPU_SETSIZE as usize {
                libc::CPU_SET(cpu, &mut all);
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &all);
            Ok(())
        });
    }
    command
}
