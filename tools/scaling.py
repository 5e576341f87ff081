#!/usr/bin/env python3
"""Measures how BenchFS's costs grow with the number of ranks and writes the tables of
docs/scaling.md.

For each rank count it runs `benchfs-bench --mode scaling` (init and finalize times, memory per
rank, single operations of every kind timed on rank 0, and the requests each kind cost the whole
job) several times under mpirun, on this one machine, oversubscribed where the ranks outnumber
the cores: either all ranks on this host, or with --per-host P, P ranks on each of N/P simulated
hosts (tests/cluster.sh; needs root), so that the ranks per node stay fixed as N grows. It prints
Markdown tables: the median of the runs with their range, and a least-squares fit of each figure
against N, extrapolated to 1,000 and 10,000 ranks.

    tools/scaling.py                                  2 to 64 ranks on this host, 3 runs each
    tools/scaling.py --write docs/scaling.md          ... and put the tables into the document
    tools/scaling.py --per-host 2 --ranks 2,4,8,16,32 --write docs/scaling.md
    tools/scaling.py --ranks 2,8,32 --runs 5 --ops 500

Needs what `cargo test` needs (cargo, mpirun). BENCHFS_* and UCX_* variables in the environment
reach every rank (for example BENCHFS_NODE_LOCAL=0 BENCHFS_SHARED_RECORDS=0 to send every
operation through the request path, as between nodes).
"""

import argparse
import datetime
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = os.path.join(ROOT, "tests", "cluster.sh")
EXTRAPOLATE = (1000, 10000)
# What the scaling lines hold, in the order of the tables.
STARTUP = [("init_ms", "init, slowest rank (ms)"), ("init_cpu_ms", "init, CPU time per rank (ms)"),
           ("init_mpi_ms", "init, time in MPI calls per rank (ms)"),
           ("finalize_ms", "finalize, slowest rank (ms)"), ("finalize_cpu_ms", "finalize, CPU time per rank (ms)"),
           ("rss_max_kib", "RSS after init, max (KiB)"), ("rss_mean_kib", "RSS after init, mean (KiB)"),
           ("rss_before_kib", "RSS before init (MPI alone), max (KiB)"),
           ("address_bytes", "worker address (bytes)"), ("table_kib", "address table per rank (KiB)")]


def build():
    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "benchfs-tools", "--bin", "benchfs-bench"],
                   cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "benchfs-bench")


def parse(output):
    """The figures of one run's `scaling ...` lines."""
    figures, ops = {}, {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0] != "scaling":
            continue
        name, values = fields[1], fields[2:]
        if name == "ranks":
            figures["ranks"], figures["per_node"] = int(values[0]), int(values[1])
        elif name in ("init_ms", "finalize_ms", "init_cpu_ms", "finalize_cpu_ms"):
            figures[name] = float(values[0])
        elif name == "rss_kib":
            figures["rss_max_kib"], figures["rss_mean_kib"] = float(values[0]), float(values[1])
            before = re.search(r"before init max (\d+)", line)
            if before:
                figures["rss_before_kib"] = float(before.group(1))
        elif len(values) == 4 and re.fullmatch(r"[a-z-]+", name):
            ops[name] = (float(values[1]), float(values[2]), float(values[3]))
    # The library's own log lines (BENCHFS_LOG=info), one per rank.
    mpi = [float(m) for m in re.findall(r"this rank serves init_ms=[\d.]+ mpi_ms=([\d.]+)", output)]
    if mpi:
        figures["init_mpi_ms"] = statistics.mean(mpi)
    addresses = re.search(r"worker addresses exchanged \(bytes\) address=(\d+) table=(\d+)", output)
    if addresses:
        figures["address_bytes"] = float(addresses.group(1))
        figures["table_kib"] = float(addresses.group(2)) / 1024
    figures["ops"] = ops
    return figures


def forwarded_env():
    return sorted(k for k in os.environ if k.startswith(("BENCHFS_", "UCX_")))


def run_once(bench, ranks, args, scratch):
    env = dict(os.environ, BENCHFS_STATS="1", BENCHFS_LOG="info", OMPI_MCA_rmaps_base_oversubscribe="1")
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    job = [bench, "--mode", "scaling", "--latency-ops", str(args.ops), "--scaling-entries", str(args.entries)]
    state = None
    if args.per_host:
        # Not under /dev/shm, which each simulated host has a private one of.
        state = tempfile.mkdtemp(prefix="benchfs-scaling-cluster-")
        os.rmdir(state)
        subprocess.run([CLUSTER, "up", state, str(ranks // args.per_host), str(args.per_host)], check=True)
        env["BENCHFS_DATA_DIR"] = os.path.join(state, "store")
        launch = [CLUSTER, "mpirun", state]
    else:
        env["BENCHFS_DATA_DIR"] = scratch
        launch = ["mpirun"]
    forward = []
    for var in sorted(set(forwarded_env() + ["BENCHFS_STATS", "BENCHFS_LOG", "BENCHFS_DATA_DIR"])):
        forward += ["-x", var]
    cmd = launch + ["--oversubscribe", "-np", str(ranks)] + forward + job
    try:
        done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=args.timeout)
    finally:
        if state:
            subprocess.run([CLUSTER, "down", state], check=False)
    if done.returncode != 0 or "verification: passed" not in done.stdout:
        sys.exit(f"scaling: {' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-4000:]}")
    figures = parse(done.stdout)
    if "init_ms" not in figures or "finalize_ms" not in figures or not figures["ops"]:
        sys.exit(f"scaling: no figures in the output of {' '.join(cmd)}:\n{done.stdout[-4000:]}")
    return figures


# Each model is y = a + b * x(N); the one that fits the medians best is kept.
MODELS = [
    ("a + b·N", lambda n: n),
    ("a + b·log2 N", lambda n: math.log2(n)),
    # An operation that goes to one rank of N placed at random is remote (N - 1) / N of the time.
    ("a + b·(N−1)/N", lambda n: (n - 1) / n),
]


def least_squares(xs, ys):
    """Least squares y = a + b*x: (a, b, residual sum of squares)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    a = my - b * mx
    return a, b, sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))


def fit(ranks, ys):
    """The best model for ys over ranks: (name, predict, a, b, r2)."""
    my = sum(ys) / len(ys)
    ss_tot = sum((y - my) ** 2 for y in ys)
    best = None
    for name, x in MODELS:
        a, b, ss_res = least_squares([x(n) for n in ranks], ys)
        if best is None or ss_res < best[0]:
            best = (ss_res, name, x, a, b)
    ss_res, name, x, a, b = best
    r2 = (1 - ss_res / ss_tot) if ss_tot > 0 else float("nan")
    return name, (lambda n: a + b * x(n)), a, b, r2


def num(v):
    if v != v:
        return "n/a"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(values):
    med = statistics.median(values)
    if len(values) == 1:
        return num(med)
    return f"{num(med)} ({num(min(values))}–{num(max(values))})"


def tables(results, args):
    ranks = sorted(results)
    cores = os.cpu_count()
    lines = []
    settings = " ".join(f"{k}={os.environ[k]}" for k in forwarded_env() if k not in ("BENCHFS_DATA_DIR", "BENCHFS_LOG")) or "none (defaults)"
    where = (f"{args.per_host} ranks on each of N/{args.per_host} simulated hosts" if args.per_host
             else "all ranks on one host")
    lines.append(f"Measured {datetime.date.today().isoformat()} on {cores} cores, {where}, "
                 f"{args.runs} runs per rank count (median, with min–max in parentheses); "
                 f"{args.ops} operations of each kind ({(args.ops + 9) // 10} listings of the full directory "
                 f"of {args.entries:,} entries and directory renames) per run. "
                 f"Settings: {settings}. Ranks per core: "
                 + ", ".join(f"{n}: {n / cores:g}" for n in ranks) + ".")
    lines.append("")
    head = "| | " + " | ".join(f"N = {n}" for n in ranks) + " |"
    rule = "|---|" + "---|" * len(ranks)
    lines += ["**Start-up and memory**", "", head, rule]
    series = {}
    for key, label in STARTUP:
        runs = [[r[key] for r in results[n] if key in r] for n in ranks]
        if not all(runs):
            continue
        lines.append(f"| {label} | " + " | ".join(cell(v) for v in runs) + " |")
        series[label] = [statistics.median(v) for v in runs]
    op_names = list(results[ranks[0]][0]["ops"])
    # Each operation's figures are (p50, mean, requests); the tables show the first and last.
    for index, title, unit in ((0, "Single operations on rank 0, p50 (µs)", "p50 (µs)"),
                               (2, "Requests the whole job served per operation", "requests")):
        lines += ["", f"**{title}**", "", head, rule]
        for op in op_names:
            runs = [[r["ops"][op][index] for r in results[n] if op in r["ops"]] for n in ranks]
            if not all(runs):
                continue
            lines.append(f"| {op} | " + " | ".join(cell(v) for v in runs) + " |")
            series[f"{op} {unit}"] = [statistics.median(v) for v in runs]
    lines += ["", "**Fits over the medians (the best of a + b·N, a + b·log2 N and a + b·(N−1)/N), and "
              "extrapolation**", "",
              "| figure | model | a | b | R² | " + " | ".join(f"N = {n:,}" for n in EXTRAPOLATE) + " |",
              "|---|---|---|---|---|" + "---|" * len(EXTRAPOLATE)]
    for label, ys in series.items():
        if len(ranks) < 3:
            break
        name, predict, a, b, r2 = fit(ranks, ys)
        lines.append(f"| {label} | {name} | {num(a)} | {b:.4g} | {num(r2)} | "
                     + " | ".join(num(predict(n)) for n in EXTRAPOLATE) + " |")
    return "\n".join(lines)


def write(path, section, text):
    begin, end = f"<!-- scaling:{section}:begin -->", f"<!-- scaling:{section}:end -->"
    with open(path) as f:
        doc = f.read()
    if begin not in doc or end not in doc:
        sys.exit(f"scaling: {path} has no {begin} ... {end} section to replace")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(f"{head}{begin}\n{text}\n{end}{tail}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", default="2,4,8,16,32,64", help="rank counts, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per rank count")
    parser.add_argument("--ops", type=int, default=200, help="timed operations of each kind per run")
    parser.add_argument("--entries", type=int, default=10000, help="entries of the listed directory")
    parser.add_argument("--timeout", type=int, default=600, help="seconds one run may take")
    parser.add_argument("--per-host", type=int, metavar="P", help="P ranks on each simulated host")
    parser.add_argument("--write", metavar="DOC",
                        help="replace the generated section of DOC (one-host, or hosts with --per-host)")
    args = parser.parse_args()
    ranks = [int(n) for n in args.ranks.split(",")]
    if args.per_host and any(n % args.per_host for n in ranks):
        sys.exit("scaling: every rank count must be a multiple of --per-host")
    for tool in ("cargo", "mpirun"):
        if not shutil.which(tool):
            sys.exit(f"scaling: {tool} is not on PATH")
    bench = build()
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    results = {}
    with tempfile.TemporaryDirectory(prefix="benchfs-scaling-", dir=base) as scratch:
        for run in range(args.runs):
            # Rank counts interleave, so that a slow moment of the machine spreads over all.
            for n in ranks:
                figures = run_once(bench, n, args, scratch)
                results.setdefault(n, []).append(figures)
                print(f"run {run + 1}/{args.runs}, {n} ranks: init {figures['init_ms']:.1f} ms, "
                      f"create p50 {figures['ops'].get('create', (float('nan'),))[0]:.1f} µs", file=sys.stderr)
    text = tables(results, args)
    print(text)
    if args.write:
        write(args.write, "hosts" if args.per_host else "one-host", text)


if __name__ == "__main__":
    main()
