#!/usr/bin/python3
"""CPU cost of the resilience policies on the request path: bgw-proxy (1 worker) in front of an nginx
upstream, once with a plain route and once with a route that has retry (with per_try_timeout_ms) on a
service with circuit_breaker and outlier_detection, interleaved for --rounds rounds under
`wrk -t1 -c50`. Reports the proxy's own user+system CPU microseconds per request (medians) and the ratio.
Run by hand: /usr/bin/python3 tests/bench/resilience_overhead.py [--rounds 3] [--duration 4]"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROXY = os.path.join(HERE, "..", "..", "build", "bin", "bgw-proxy")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d did not open" % port)


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--bgw", default=PROXY)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bgw-resil-bench-")
    up = free_port()
    for d in ("logs", "t"):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    with open(os.path.join(tmp, "nginx.conf"), "w") as f:
        f.write("worker_processes 1; daemon off; error_log %(d)s/logs/error.log; pid %(d)s/nginx.pid;\n"
                "events { worker_connections 4096; }\nhttp { access_log off; client_body_temp_path %(d)s/t;"
                " proxy_temp_path %(d)s/t; fastcgi_temp_path %(d)s/t; uwsgi_temp_path %(d)s/t;"
                " scgi_temp_path %(d)s/t;\n server { listen 127.0.0.1:%(p)d; keepalive_requests 1000000;"
                " location / { return 200 \"hello\\n\"; } } }\n" % {"d": tmp, "p": up})
    nginx = subprocess.Popen(["nginx", "-p", tmp + "/", "-c", os.path.join(tmp, "nginx.conf")],
                             stderr=subprocess.DEVNULL)
    svc = {"name": "s", "endpoints": ["127.0.0.1:%d" % up]}
    rt = {"name": "r", "match": {"path_prefix": "/"}, "service": "s"}
    configs = {
        "plain": {"services": [svc], "routes": [rt]},
        "resilience": {"services": [dict(svc, circuit_breaker={"max_requests": 100000,
                                                                "max_pending_requests": 100000,
                                                                "max_retries": 100},
                                         outlier_detection={"consecutive_5xx": 5, "base_ejection_ms": 1000,
                                                            "max_ejection_percent": 50})],
                       "routes": [dict(rt, retry={"attempts": 2, "on": ["5xx"], "per_try_timeout_ms": 1000})]},
    }
    results = {k: [] for k in configs}
    try:
        wait_port(up)
        for _ in range(args.rounds):
            for name, cfg in configs.items():
                path = os.path.join(tmp, name + ".json")
                with open(path, "w") as f:
                    json.dump(cfg, f)
                port = free_port()
                p = subprocess.Popen([args.bgw, "--config", path, "--listen", "127.0.0.1:%d" % port,
                                      "--admin", "127.0.0.1:%d" % free_port(), "--workers", "1"],
                                     stderr=subprocess.DEVNULL)
                try:
                    wait_port(port)
                    t0 = cpu_ticks(p.pid)
                    out = subprocess.run(["wrk", "-t1", "-c50", "-d%ds" % args.duration,
                                          "http://127.0.0.1:%d/" % port], capture_output=True, text=True).stdout
                    t1 = cpu_ticks(p.pid)
                finally:
                    p.terminate()
                    p.wait()
                n = int(re.search(r"(\d+) requests in", out).group(1))
                results[name].append((t1 - t0) * 1e6 / os.sysconf("SC_CLK_TCK") / n)
    finally:
        nginx.terminate()
        nginx.wait()
    med = {k: statistics.median(v) for k, v in results.items()}
    for k, v in results.items():
        print("%-11s CPU us/req median %.2f  (runs: %s)" % (k, med[k], ", ".join("%.2f" % x for x in v)))
    print("ratio resilience/plain: %.3fx" % (med["resilience"] / med["plain"]))


if __name__ == "__main__":
    main()
