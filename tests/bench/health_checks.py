#!/usr/bin/python3
"""Health-check benchmark: what active health checks cost bgw-control. Starts the real bgw-control on
loopback with ENDPOINTS endpoints (SERVICES services) served by nginx (one worker listening on one port per
endpoint, all on 127.0.0.1; a small asyncio upstream when nginx is not installed), bounded in time.

    /usr/bin/python3 tests/bench/health_checks.py [--endpoints 1000] [--services 100] [--interval-ms 1000]
                                                  [--seconds 5] [--bin build/bin]

Two runs in the same session, same document: the baseline without `health_check` (bgw-control idle with
the same services), then with `health_check` on every service. For each: bgw-control's CPU time (user +
system, from /proc) over the measured window and its RSS; for the checked run also the checks done per
second (bgw_health_checks_total), how many failed, and the CPU time per check. Standard library only.
"""

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NginxUpstream:
    """nginx (one worker) listening on n ports of 127.0.0.1, `return 200` on every path."""

    def __init__(self, n, tmp):
        self.ports = []
        while len(self.ports) < n:
            p = free_port()
            if p not in self.ports:
                self.ports.append(p)
        d = os.path.join(tmp, "nginx")
        os.makedirs(d)
        temps = " ".join("%s_temp_path %s/%s;" % (m, d, m) for m in ("client_body", "proxy"))
        v = subprocess.run(["nginx", "-V"], capture_output=True, text=True, timeout=10).stderr
        for m in ("fastcgi", "uwsgi", "scgi"):
            if "--without-http_%s_module" % m not in v:
                temps += " %s_temp_path %s/%s;" % (m, d, m)
        listens = "\n".join("        listen 127.0.0.1:%d;" % p for p in self.ports)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write("worker_processes 1;\nworker_rlimit_nofile 20000;\ndaemon off;\npid %s/nginx.pid;\n"
                    "error_log %s/error.log warn;\nevents { worker_connections 8192; }\n"
                    "http { access_log off; %s\n    server {\n%s\n"
                    "        location / { return 200 \"ok\\n\"; }\n    }\n}\n" % (d, d, temps, listens))
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", d], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.ports[-1]), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit("nginx did not start (%s)" % conf)
                time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Upstream(threading.Thread):
    """Without nginx: n listening sockets on 127.0.0.1 answering every request 200 and closing (asyncio;
    slower than nginx, so on a loaded machine it may be the bottleneck)."""

    def __init__(self, n):
        super().__init__(daemon=True)
        self.n = n
        self.ports = []
        self.ready = threading.Event()

    def run(self):
        asyncio.run(self.main())

    async def main(self):
        async def handle(reader, writer):
            try:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                pass
            writer.close()

        for _ in range(self.n):
            srv = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=64)
            self.ports.append(srv.sockets[0].getsockname()[1])
        self.ready.set()
        await asyncio.Event().wait()


def document(ports, services, interval_ms, checked):
    per = max(1, len(ports) // services)
    out = []
    for s in range(services):
        eps = ["127.0.0.1:%d" % p for p in ports[s * per:(s + 1) * per]]
        if not eps:
            break
        svc = {"name": "svc-%d" % s, "endpoints": eps}
        if checked:
            svc["health_check"] = {"path": "/healthz", "interval_ms": interval_ms,
                                   "timeout_ms": min(1000, interval_ms), "healthy_threshold": 2,
                                   "unhealthy_threshold": 3}
        out.append(svc)
    return {"services": out}


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"VmRSS:\s+(\d+) kB", f.read())
    return int(m.group(1)) / 1024.0


def checks(admin_port):
    c = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=5)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    ok = fail = 0
    for m in re.finditer(r'^bgw_health_checks_total\{service="[^"]*",result="(\w+)"\} (\d+)', text, re.M):
        if m.group(1) == "success":
            ok += int(m.group(2))
        else:
            fail += int(m.group(2))
    return ok, fail


def run(binary, doc, seconds, warmup):
    tmp = tempfile.mkdtemp(prefix="bgw-bench-hc-")
    try:
        boot = os.path.join(tmp, "boot.json")
        with open(boot, "w") as f:
            json.dump(doc, f)
        admin = free_port()
        p = subprocess.Popen([binary, "--state-dir", os.path.join(tmp, "state"), "--bootstrap", boot,
                              "--admin-listen", "127.0.0.1:%d" % admin,
                              "--xds-listen", "127.0.0.1:%d" % free_port()],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    checks(admin)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("bgw-control did not start")
                    time.sleep(0.05)
            time.sleep(warmup)
            c0, k0, t0 = cpu_seconds(p.pid), checks(admin), time.monotonic()
            time.sleep(seconds)
            c1, k1, t1 = cpu_seconds(p.pid), checks(admin), time.monotonic()
            errors = {}
            for s in doc["services"]:
                c = http.client.HTTPConnection("127.0.0.1", admin, timeout=5)
                c.request("GET", "/v1/services/%s/endpoints" % s["name"])
                for i in json.loads(c.getresponse().read())["items"]:
                    if i.get("last_error"):
                        e = re.sub(r"\d+", "N", i["last_error"])
                        errors[e] = errors.get(e, 0) + 1
                c.close()
            return {"errors": errors, "cpu_s": c1 - c0, "wall_s": t1 - t0, "checks": k1[0] - k0[0] + k1[1] - k0[1],
                    "failed": k1[1] - k0[1], "rss_mb": rss_mb(p.pid)}
        finally:
            p.terminate()
            p.wait(10)
    finally:
        shutil.rmtree(tmp, True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoints", type=int, default=1000)
    ap.add_argument("--services", type=int, default=100)
    ap.add_argument("--interval-ms", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    a = ap.parse_args()
    binary = os.path.join(a.bin, "bgw-control")
    if not os.access(binary, os.X_OK):
        raise SystemExit("%s not found: build first" % binary)

    tmp = tempfile.mkdtemp(prefix="bgw-bench-hc-up-")
    try:
        if shutil.which("nginx"):
            up = NginxUpstream(a.endpoints, tmp)
        else:
            up = Upstream(a.endpoints)
            up.start()
            up.ready.wait(30)
        try:
            base = run(binary, document(up.ports, a.services, a.interval_ms, False), a.seconds, a.warmup)
            hc = run(binary, document(up.ports, a.services, a.interval_ms, True), a.seconds, a.warmup)
        finally:
            if isinstance(up, NginxUpstream):
                up.stop()
    finally:
        shutil.rmtree(tmp, True)

    rate = hc["checks"] / hc["wall_s"]
    expected = a.endpoints * 1000.0 / a.interval_ms
    print("| measure | baseline (no health_check) | health checks |")
    print("|---|--:|--:|")
    print("| endpoints, interval | %d | %d every %d ms |" % (a.endpoints, a.endpoints, a.interval_ms))
    print("| checks per second (expected %.0f) | 0 | %.0f |" % (expected, rate))
    print("| failed checks | | %d |" % hc["failed"])
    print("| bgw-control CPU (%% of one core) | %.1f %% | %.1f %% |"
          % (100 * base["cpu_s"] / base["wall_s"], 100 * hc["cpu_s"] / hc["wall_s"]))
    print("| CPU per check | | %.0f us |" % (1e6 * (hc["cpu_s"] - base["cpu_s"] * hc["wall_s"] / base["wall_s"])
                                          / max(1, hc["checks"])))
    print("| bgw-control RSS | %.1f MB | %.1f MB |" % (base["rss_mb"], hc["rss_mb"]))
    for (e, n) in sorted(hc["errors"].items(), key=lambda x: -x[1]):
        print("last_error of %d endpoints at the end: %s" % (n, e))
    return 0 if hc["failed"] == 0 and rate > 0.8 * expected else 1


if __name__ == "__main__":
    sys.exit(main())
