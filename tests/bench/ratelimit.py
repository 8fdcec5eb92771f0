#!/usr/bin/python3
"""Cost of rate limiting: wrk against one bgw-proxy on three routes to the same nginx upstream, interleaved
in the same run: /open (no limit), /local (a local limit far above the load) and /global (a global limit
far above the load, through a redis-server started here). Reports req/s, p99 and the ratio of each limited
route to /open (medians over the rounds).

    tests/bench/ratelimit.py [--rounds 3] [--duration 5] [--conns 100] [--workers 2]

Standard library only; reuses the processes and wrk helpers of run.py. Everything runs on 127.0.0.1 and
is stopped on exit.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402

ROUTES = ("open", "local", "global")


def config(up_port):
    lim = {"requests": 100000000, "per": "second", "key": "client_ip"}
    return {
        "services": [{"name": "up", "endpoints": ["127.0.0.1:%d" % up_port]}],
        "routes": [
            {"name": "open", "match": {"path_prefix": "/open"}, "service": "up"},
            {"name": "local", "match": {"path_prefix": "/local"}, "service": "up", "rate_limit": "local-high"},
            {"name": "global", "match": {"path_prefix": "/global"}, "service": "up", "rate_limit": "global-high"},
        ],
        "rate_limits": [dict(lim, name="local-high", scope="local"), dict(lim, name="global-high", scope="global")],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bgw", default=os.path.join(run.REPO, "build", "bin", "bgw-proxy"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bgw-bench-rl-")
    try:
        up = run.Upstream(tmp, 4096)
        up.start()
        rport = run.free_port()
        redis = run.Proc("redis", [shutil.which("redis-server") or "redis-server", "--port", str(rport), "--bind",
                                   "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp], tmp)
        run.wait_ready(redis, "redis-server", lambda: _redis_up(rport), 10)
        cfg_path = os.path.join(tmp, "bgw.json")
        with open(cfg_path, "w") as f:
            json.dump(config(up.port), f)
        port, admin = run.free_port(), run.free_port()
        proxy = run.Proc("bgw", [args.bgw, "--config", cfg_path, "--listen", "127.0.0.1:%d" % port,
                                 "--admin", "127.0.0.1:%d" % admin, "--workers", str(args.workers),
                                 "--redis", "127.0.0.1:%d" % rport], tmp)
        run.wait_ready(proxy, "bgw-proxy", run.expect_200(port, "/open"), 15)
        results = {r: [] for r in ROUTES}
        for rnd in range(args.rounds):
            k = rnd % len(ROUTES)                 # rotate the order: no route always runs first or last
            for r in ROUTES[k:] + ROUTES[:k]:
                run.run_wrk(args, port, "/" + r, args.conns, args.warmup)
                t0 = (run.cpu_ticks([proxy.pid]), run.cpu_ticks([redis.pid]))
                res, _ = run.run_wrk(args, port, "/" + r, args.conns, args.duration)
                t1 = (run.cpu_ticks([proxy.pid]), run.cpu_ticks([redis.pid]))
                res["proxy_cpu_us"] = (t1[0] - t0[0]) * 1e6 / run.CLK_TCK / res["requests"]
                res["redis_cpu_us"] = (t1[1] - t0[1]) * 1e6 / run.CLK_TCK / res["requests"]
                if res["non2xx"] or res["socket_errors"]:
                    raise RuntimeError("/%s: %d non-2xx, socket errors %r" % (r, res["non2xx"], res["socket_errors"]))
                results[r].append(res)
                run.log("round %d /%s: %.0f req/s p99 %.2f ms, CPU us/request: proxy %.1f redis %.1f"
                        % (rnd + 1, r, res["rps"], res["p99_ms"], res["proxy_cpu_us"], res["redis_cpu_us"]))
        _, body = run.http_get(admin, "/metrics")
        errors = [ln for ln in body.decode().splitlines() if ln.startswith("bgw_ratelimit_redis_errors_total")]
        summary = {}
        base = statistics.median(x["rps"] for x in results["open"])
        print("%-8s %12s %9s %8s %14s %14s" % ("route", "req/s", "p99 ms", "ratio", "proxy us/req", "redis us/req"))
        for r in ROUTES:
            rps = statistics.median(x["rps"] for x in results[r])
            p99 = statistics.median(x["p99_ms"] for x in results[r])
            pcpu = statistics.median(x["proxy_cpu_us"] for x in results[r])
            rcpu = statistics.median(x["redis_cpu_us"] for x in results[r])
            summary[r] = {"rps": rps, "p99_ms": p99, "ratio": rps / base, "proxy_cpu_us": pcpu, "redis_cpu_us": rcpu,
                          "runs": results[r]}
            print("%-8s %12.0f %9.2f %8.3f %14.2f %14.2f" % (r, rps, p99, rps / base, pcpu, rcpu))
        print(" ".join(errors))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(summary, f, indent=2)
    finally:
        run.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


def _redis_up(port):
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


if __name__ == "__main__":
    main()
