#!/usr/bin/python3
"""What metrics and the access log cost bgw-proxy in throughput (run by hand, not in CI).

    tests/bench/metrics_overhead.py [--rounds 5] [--duration 5] [--conns 50] [--workers 1]

bgw-proxy always counts its metrics, so "metrics off" needs a build without them: the script configures and
builds one (cmake -DBGW_STATS_OFF=ON, only the bgw-proxy target, in build-bench-stats-off/) unless
--stats-off-bin names one. Variants, all against the same nginx upstream (tests/bench/run.py's, a 100-byte
`return 200`), with wrk on 127.0.0.1:

  baseline     counters compiled out, nobody scrapes /metrics
  counting     the normal build, nobody scrapes (the cost of counting alone)
  metrics      the normal build, /metrics scraped every second during the run (what production does)
  access_log   as metrics, plus --access-log to a file

The variants run interleaved (round 1: each variant once, round 2: each again in a rotated order, ...), each after a short
warm-up, so that drift of a shared machine hits all of them alike. Reported: the median req/s of each
variant, its ratio to the baseline, p99 latency, the CPU of the access log's writer thread per request, and the proxy's own CPU time per request (user + system
of the whole process, the access log's writer thread included) with its ratio to the baseline: on a shared
machine the CPU cost per request is the steadier figure, throughput moves with whatever else runs. Targets: metrics within 3% of the baseline, the access
log within 8%.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as bench  # noqa: E402  (the side-by-side harness: processes, nginx upstream, wrk)

REPO = bench.REPO
VARIANTS = ("baseline", "counting", "metrics", "access_log")


def build_stats_off(build_dir):
    subprocess.run(["cmake", "-S", REPO, "-B", build_dir, "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DBGW_STATS_OFF=ON",
                    "-DBGW_TESTS=OFF"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build_dir, "--target", "bgw-proxy", "-j", "2"], check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(build_dir, "bin", "bgw-proxy")


class Scraper(threading.Thread):
    """GET /metrics every interval seconds until stopped; counts scrapes and bytes."""

    def __init__(self, port, interval=1.0):
        super().__init__(daemon=True)
        self.url = "http://127.0.0.1:%d/metrics" % port
        self.interval = interval
        self.stop_flag = threading.Event()
        self.scrapes = 0
        self.bytes = 0

    def run(self):
        while not self.stop_flag.is_set():
            with urllib.request.urlopen(self.url, timeout=5) as r:
                self.bytes += len(r.read())
            self.scrapes += 1
            self.stop_flag.wait(self.interval)


def writer_ticks(pid):
    """CPU ticks of the proxy's access-log writer thread (named bgw-access-log), or 0."""
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                if f.read().strip() != "bgw-access-log":
                    continue
            with open("/proc/%d/task/%s/stat" % (pid, t), "rb") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rindex(b")") + 2:].split()
        return int(rest[11]) + int(rest[12])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bgw", default=os.path.join(REPO, "build", "bin", "bgw-proxy"))
    ap.add_argument("--stats-off-bin", help="a bgw-proxy built with -DBGW_STATS_OFF=ON (default: build one)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5, help="seconds per measured run")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--workers", type=int, default=1, help="proxy workers")
    ap.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()
    off_bin = args.stats_off_bin or build_stats_off(os.path.join(REPO, "build-bench-stats-off"))

    tmp = tempfile.mkdtemp(prefix="bgw-metrics-bench-")
    results = {v: [] for v in VARIANTS}
    p99 = {v: [] for v in VARIANTS}
    cpu = {v: [] for v in VARIANTS}
    writer_cpu = []
    scrapes = 0
    log_lines = 0
    try:
        up = bench.Upstream(tmp, 4096)
        up.start()
        access_log = os.path.join(tmp, "access.log")
        procs = {}
        for v in VARIANTS:
            d = os.path.join(tmp, v)
            os.makedirs(d)
            procs[v] = bench.BgwProxy(d, off_bin if v == "baseline" else args.bgw, up.port, args.workers, 10000,
                                      ["--access-log", access_log] if v == "access_log" else [])
        for rnd in range(args.rounds):
            k = rnd % len(VARIANTS)               # rotate the order: no variant always runs first or last
            for v in VARIANTS[k:] + VARIANTS[:k]:
                p = procs[v]
                p.start()
                admin = int(p.proc.argv[p.proc.argv.index("--admin") + 1].rsplit(":", 1)[1])
                if args.warmup:
                    bench.run_wrk(args, p.port, p.path, args.conns, args.warmup)
                scraper = Scraper(admin) if v in ("metrics", "access_log") else None
                if scraper:
                    scraper.start()
                t0, w0 = bench.cpu_ticks(p.pids()), writer_ticks(p.proc.pid)
                r, _ = bench.run_wrk(args, p.port, p.path, args.conns, args.duration)
                ticks = bench.cpu_ticks(p.pids()) - t0
                if v == "access_log":
                    writer_cpu.append((writer_ticks(p.proc.pid) - w0) / bench.CLK_TCK * 1e6 / r["requests"])
                if scraper:
                    scraper.stop_flag.set()
                    scraper.join(10)
                    scrapes += scraper.scrapes
                p.stop()
                if r["non2xx"] or r["socket_errors"]:
                    raise RuntimeError("%s: %d non-2xx, socket errors %r" % (v, r["non2xx"], r["socket_errors"]))
                results[v].append(r["rps"])
                p99[v].append(r["p99_ms"])
                cpu[v].append(ticks / bench.CLK_TCK * 1e6 / r["requests"])
                bench.log("round %d %-10s %9.0f req/s  p99 %.3f ms  %.2f CPU us/req"
                          % (rnd + 1, v, r["rps"], r["p99_ms"], cpu[v][-1]))
        if os.path.exists(access_log):
            with open(access_log, "rb") as f:
                log_lines = sum(1 for _ in f)
    finally:
        bench.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    base = statistics.median(results["baseline"])
    base_cpu = statistics.median(cpu["baseline"])
    out = {"rounds": args.rounds, "duration_s": args.duration, "conns": args.conns, "workers": args.workers,
           "scrapes": scrapes, "access_log_lines": log_lines, "variants": {}}
    print("\n| variant | median req/s | req/s ratio | median p99 (ms) | proxy CPU us/req | CPU ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for v in VARIANTS:
        med = statistics.median(results[v])
        mc = statistics.median(cpu[v])
        out["variants"][v] = {"rps": results[v], "median_rps": med, "ratio": round(med / base, 4),
                              "median_p99_ms": statistics.median(p99[v]), "cpu_us_per_req": cpu[v],
                              "median_cpu_us_per_req": mc, "cpu_ratio": round(mc / base_cpu, 4)}
        print("| %s | %.0f | %.3f | %.3f | %.2f | %.3f |" % (v, med, med / base, statistics.median(p99[v]), mc,
                                                          mc / base_cpu))
    print("\n%d scrapes of /metrics, %d access log lines written" % (scrapes, log_lines))
    if writer_cpu:
        out["access_log_writer_cpu_us_per_req"] = writer_cpu
        print("access-log writer thread: median %.2f CPU us/request (of the access_log variant's total)"
              % statistics.median(writer_cpu))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
