#!/usr/bin/python3
"""Control-plane benchmark: how fast an admin API change is served by every proxy, and what a large config
costs. Starts the real bgw-control and managed bgw-proxies on loopback, bounded in time.

    /usr/bin/python3 tests/bench/convergence.py [--changes 200] [--json PATH] [--bin build/bin]

1. Convergence: bgw-control + 2 proxies + a small upstream. For each change (PUT /v1/routes/NAME with a new
   path), the time from sending the request to the moment both proxies answer the new path from the
   upstream (each polled over a kept-alive connection). p50 / p99 / max; target p99 <= 50 ms.
2. Scale: 1,000 services x 10 endpoints and 10,000 routes (loaded with --bootstrap: the document is larger
   than the admin API's 1 MiB body limit), 4 proxies connected: one change, time until all 4 ACKed it
   (GET /v1/dataplanes); target <= 1 s. Then the RSS of bgw-control (target <= 200 MB) and of each proxy
   (target <= 100 MB).
Standard library only.
"""

import argparse
import http.client
import http.server
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = cond()
            if v:
                return v
        except OSError:
            pass
        time.sleep(0.005)
    raise SystemExit("timed out waiting for %s" % what)


def get(port, path, timeout=2.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def rss_mb(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024.0
    return out


class Upstream(http.server.BaseHTTPRequestHandler):
    """Answers in one write with Nagle off: a head and body written apart would wait on the proxy's
    delayed ACK (40 ms) and measure the upstream, not the config path."""
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def log_message(self, *a):
        pass


class Cluster:
    def __init__(self, binpath, tmp):
        self.bin = binpath
        self.tmp = tmp
        self.procs = []

    def start_control(self, bootstrap=None):
        self.admin = free_port()
        self.xds = free_port()
        args = [os.path.join(self.bin, "bgw-control"), "--state-dir", os.path.join(self.tmp, "state-%d" % self.admin),
                "--admin-listen", "127.0.0.1:%d" % self.admin, "--xds-listen", "127.0.0.1:%d" % self.xds]
        if bootstrap:
            path = os.path.join(self.tmp, "bootstrap.json")
            with open(path, "w") as f:
                json.dump(bootstrap, f)
            args += ["--bootstrap", path]
        self.control = self._spawn(args, "control")
        wait_until(lambda: get(self.admin, "/readyz")[0] == 200, 60, "bgw-control ready")
        return self.control

    def start_proxy(self, node, workers=1):
        port, admin = free_port(), free_port()
        p = self._spawn([os.path.join(self.bin, "bgw-proxy"), "--control-plane", "127.0.0.1:%d" % self.xds,
                         "--node-id", node, "--listen", "127.0.0.1:%d" % port, "--admin", "127.0.0.1:%d" % admin,
                         "--workers", str(workers)], node)
        p.port, p.admin = port, admin
        return p

    def _spawn(self, args, name):
        log = open(os.path.join(self.tmp, name + ".log"), "ab")
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        self.procs.append(p)
        return p

    def api(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=30)
        try:
            c.request(method, path, body=json.dumps(body) if body is not None else None,
                      headers={"Content-Type": "application/json"} if body is not None else {})
            r = c.getresponse()
            return r.status, json.loads(r.read() or b"null")
        finally:
            c.close()

    def dataplanes(self):
        return {d["node_id"]: d for d in self.api("GET", "/v1/dataplanes")[1]["items"]}

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs = []


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def convergence(binpath, tmp, changes):
    up = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=up.serve_forever, daemon=True).start()
    upaddr = "127.0.0.1:%d" % up.server_address[1]
    cl = Cluster(binpath, tmp)
    try:
        cl.start_control({"services": [{"name": "up", "endpoints": [upaddr]}],
                          "routes": [{"name": "base", "match": {"path_exact": "/base"}, "service": "up"}]})
        proxies = [cl.start_proxy("conv-%d" % i, workers=2) for i in range(2)]
        for p in proxies:
            wait_until(lambda: get(p.port, "/base")[0] == 200, 30, "proxy serving")
        conns = [http.client.HTTPConnection("127.0.0.1", p.port, timeout=2) for p in proxies]
        times = []
        for i in range(changes):
            path = "/c%d" % i
            t0 = time.perf_counter()
            st, _ = cl.api("PUT", "/v1/routes/c%d" % i, {"name": "c%d" % i, "match": {"path_exact": path},
                                                           "service": "up"})
            if st not in (200, 201):
                raise SystemExit("PUT failed: %d" % st)
            pending = set(range(len(conns)))
            while pending:
                for k in list(pending):
                    conns[k].request("GET", path)
                    r = conns[k].getresponse()
                    r.read()
                    if r.status == 200:
                        pending.discard(k)
                if time.perf_counter() - t0 > 5:
                    raise SystemExit("change %d not served within 5 s" % i)
            times.append((time.perf_counter() - t0) * 1000.0)
        for c in conns:
            c.close()
        status, text = get(cl.admin, "/metrics")
        conv = {}
        for line in text.decode().splitlines():
            if line.startswith("bgw_config_convergence_seconds_sum"):
                conv["sum"] = float(line.split()[-1])
            elif line.startswith("bgw_config_convergence_seconds_count"):
                conv["count"] = float(line.split()[-1])
        return {"changes": changes, "p50_ms": pct(times, 0.5), "p99_ms": pct(times, 0.99), "max_ms": max(times),
                "mean_ms": statistics.mean(times),
                "control_convergence_mean_ms": 1000.0 * conv["sum"] / conv["count"] if conv.get("count") else None}
    finally:
        cl.stop()
        up.shutdown()


def scale(binpath, tmp, services=1000, per=10, routes=10000, proxies=4):
    doc = {"services": [{"name": "s%d" % i,
                         "endpoints": ["127.0.0.1:%d" % (20000 + i * per + k) for k in range(per)]}
                        for i in range(services)],
           "routes": [{"name": "r%d" % j, "match": {"path_prefix": "/s%d/r%d" % (j % services, j)},
                       "service": "s%d" % (j % services)} for j in range(routes)]}
    size = len(json.dumps(doc))
    cl = Cluster(binpath, tmp)
    try:
        t0 = time.perf_counter()
        cl.start_control(doc)
        load_s = time.perf_counter() - t0
        ps = [cl.start_proxy("scale-%d" % i) for i in range(proxies)]
        version = cl.api("GET", "/v1/config")[1]["version"]
        t0 = time.perf_counter()
        wait_until(lambda: all(d.get("status") == "SYNCED" and d.get("acked_version") == version
                               for d in cl.dataplanes().values()) and len(cl.dataplanes()) == proxies,
                   60, "first sync of %d proxies" % proxies)
        first_s = time.perf_counter() - t0
        pushes = []
        for n in range(3):
            t0 = time.perf_counter()
            st, body = cl.api("PUT", "/v1/routes/extra%d" % n,
                              {"name": "extra%d" % n, "match": {"path_exact": "/extra%d" % n}, "service": "s0"})
            if st not in (200, 201):
                raise SystemExit("PUT failed: %d %r" % (st, body))
            v = cl.api("GET", "/v1/config")[1]["version"]
            wait_until(lambda: all(d.get("acked_version") == v for d in cl.dataplanes().values()), 30,
                       "all proxies acking version %s" % v)
            pushes.append(time.perf_counter() - t0)
        return {"document_bytes": size, "services": services, "endpoints": services * per, "routes": routes,
                "proxies": proxies, "bootstrap_load_s": load_s, "first_sync_s": first_s,
                "full_push_s": max(pushes), "full_push_runs_s": pushes,
                "control_rss": rss_mb(cl.control.pid), "proxy_rss": [rss_mb(p.pid) for p in ps]}
    finally:
        cl.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--json")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bgw-conv-")
    try:
        c = convergence(a.bin, tmp, a.changes)
        s = scale(a.bin, tmp)
    finally:
        shutil.rmtree(tmp, True)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print("Machine: %d CPUs (%s), kernel %s" % (os.cpu_count(), cpu, platform.release()))
    print("| measure | value | target | |")
    print("|---|--:|--:|---|")
    rows = [
        ("change -> served by both proxies, p50 (%d changes)" % c["changes"], "%.1f ms" % c["p50_ms"], "", ""),
        ("change -> served by both proxies, p99", "%.1f ms" % c["p99_ms"], "<= 50 ms", c["p99_ms"] <= 50),
        ("change -> served by both proxies, max", "%.1f ms" % c["max_ms"], "", ""),
        ("bgw_config_convergence_seconds mean (accepted -> all ACKed)",
         "%.1f ms" % c["control_convergence_mean_ms"] if c["control_convergence_mean_ms"] else "-", "", ""),
        ("config: %d services, %d endpoints, %d routes (%d bytes)" % (s["services"], s["endpoints"], s["routes"],
                                                                     s["document_bytes"]), "", "", ""),
        ("first sync of %d proxies" % s["proxies"], "%.3f s" % s["first_sync_s"], "", ""),
        ("full push of one change to %d proxies (worst of 3)" % s["proxies"], "%.3f s" % s["full_push_s"], "<= 1 s",
         s["full_push_s"] <= 1.0),
        ("bgw-control RSS (HWM)", "%.1f MB (%.1f)" % (s["control_rss"]["VmRSS"], s["control_rss"]["VmHWM"]),
         "<= 200 MB", s["control_rss"]["VmHWM"] <= 200),
        ("bgw-proxy RSS, largest of %d (HWM)" % s["proxies"],
         "%.1f MB (%.1f)" % (max(r["VmRSS"] for r in s["proxy_rss"]), max(r["VmHWM"] for r in s["proxy_rss"])),
         "<= 100 MB", max(r["VmHWM"] for r in s["proxy_rss"]) <= 100),
    ]
    for (m, v, t, ok) in rows:
        print("| %s | %s | %s | %s |" % (m, v, t, "" if ok == "" else ("pass" if ok else "FAIL")))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"convergence": c, "scale": s}, f, indent=2)
    return 0 if all(ok for (_, _, _, ok) in rows if ok != "") else 1


if __name__ == "__main__":
    sys.exit(main())
