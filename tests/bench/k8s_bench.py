#!/usr/bin/python3
"""Kubernetes discovery benchmark: how fast an EndpointSlice change at the API server reaches the proxies,
and what a busy cluster costs bgw-control. The real bgw-control (--kubeconfig) watches the API simulator
(tests/k8s/k8s_sim.py, in this process) and pushes to managed bgw-proxies on loopback.

    /usr/bin/python3 tests/bench/k8s_bench.py [--bin build/bin] [--changes 100] [--services 1000]
                                              [--endpoints 10] [--rate 100] [--seconds 20] [--json PATH]

1. Latency: one Service with 3 endpoints, 2 proxies. For each change (one endpoint replaced in the slice),
   the time from the change at the simulator to both proxies' GET /config listing the new endpoint set
   (polled over kept-alive connections). p50 / p99 / max; target p99 <= 100 ms. The baseline measured in
   the same run is an admin API change (PUT of a static service) through the same proxies.
2. Load: --services Services x --endpoints endpoints each (one slice per Service), one proxy; --rate slice
   changes per second for --seconds. bgw-control's CPU over the run from /proc/PID/stat (utime + stime);
   target under half a core. No backlog: after the last change, the time until the proxy serves it;
   target within the latency bound.
Standard library only.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "k8s"))
from k8s_sim import ApiSim, endpointslice, service  # noqa: E402

NS = "bench"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, timeout, what, interval=0.001):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = cond()
            if v:
                return v
        except (OSError, http.client.HTTPException, ValueError):
            pass
        time.sleep(interval)
    raise SystemExit("timed out waiting for %s" % what)


class Keep:
    """GET over one kept-alive connection, reconnecting when needed."""

    def __init__(self, port):
        self.port = port
        self.c = None

    def get_json(self, path):
        for _ in range(2):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                self.c.request("GET", path)
                r = self.c.getresponse()
                return json.loads(r.read())
            except (OSError, http.client.HTTPException):
                self.c = None
        raise OSError("GET %s failed" % path)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stack:
    def __init__(self, bindir, sim, doc, n_proxies, tmp):
        self.tmp = tmp
        kc = sim.kubeconfig(os.path.join(tmp, "kubeconfig"))
        with open(os.path.join(tmp, "doc.json"), "w") as f:
            json.dump(doc, f)
        self.admin, self.xds = free_port(), free_port()
        self.procs = []
        self.cp = subprocess.Popen([os.path.join(bindir, "bgw-control"), "--state-dir", os.path.join(tmp, "state"),
                                    "--bootstrap", os.path.join(tmp, "doc.json"), "--kubeconfig", kc,
                                    "--admin-listen", "127.0.0.1:%d" % self.admin,
                                    "--xds-listen", "127.0.0.1:%d" % self.xds],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=open(os.path.join(tmp, "control.log"), "wb"))
        self.procs.append(self.cp)
        wait_until(lambda: Keep(self.admin).get_json("/v1/config"), 20, "bgw-control")
        self.proxies = []
        for i in range(n_proxies):
            port, admin = free_port(), free_port()
            p = subprocess.Popen([os.path.join(bindir, "bgw-proxy"), "--control-plane", "127.0.0.1:%d" % self.xds,
                                  "--node-id", "bench-%d" % i, "--listen", "127.0.0.1:%d" % port,
                                  "--admin", "127.0.0.1:%d" % admin, "--workers", "1"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=open(os.path.join(tmp, "proxy%d.log" % i), "wb"))
            self.procs.append(p)
            self.proxies.append(Keep(admin))
        for k in self.proxies:
            wait_until(lambda: k.get_json("/config").get("version"), 30, "proxy config")

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def endpoints_of(cfg, name):
    for s in cfg.get("services", []):
        if s["name"] == name:
            return sorted(e["address"] if isinstance(e, dict) else e for e in s.get("endpoints", []))
    return None


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def latency(args, bindir):
    tmp = tempfile.mkdtemp(prefix="bgw-k8s-bench-")
    sim = ApiSim(token="bench", bookmark_interval=1.0).start()
    sim.apply(service(NS, "web", [("http", 80, 8080)]))
    ips = ["10.0.0.%d" % i for i in range(1, 4)]
    sim.apply(endpointslice(NS, "web-1", "web", [(ip, True) for ip in ips], [("http", 8080)]))
    doc = {"services": [{"name": "web", "kubernetes": {"namespace": NS, "service": "web", "port": "http"}},
                        {"name": "static", "endpoints": ["10.9.0.1:80"]}],
           "routes": [{"name": "all", "match": {"path_prefix": "/"}, "service": "web"}]}
    st = Stack(bindir, sim, doc, 2, tmp)
    try:
        k8s, base = [], []
        admin = http.client.HTTPConnection("127.0.0.1", st.admin, timeout=10)
        for i in range(args.changes):
            ips[i % 3] = "10.%d.%d.%d" % (1 + i // 65025, (i // 255) % 255, 1 + i % 255)
            want = sorted(ip + ":8080" for ip in ips)
            t0 = time.monotonic()
            sim.apply(endpointslice(NS, "web-1", "web", [(ip, True) for ip in ips], [("http", 8080)]))
            for k in st.proxies:
                wait_until(lambda: endpoints_of(k.get_json("/config"), "web") == want, 10, "change %d" % i)
            k8s.append(time.monotonic() - t0)
            # baseline: the same kind of change through the admin API
            addr = "10.9.%d.%d:80" % (i // 250, 1 + i % 250)
            t0 = time.monotonic()
            admin.request("PUT", "/v1/services/static", body=json.dumps({"name": "static", "endpoints": [addr]}),
                          headers={"Content-Type": "application/json"})
            r = admin.getresponse()
            r.read()
            if r.status not in (200, 201):
                raise SystemExit("PUT /v1/services/static: %d" % r.status)
            for k in st.proxies:
                wait_until(lambda: endpoints_of(k.get_json("/config"), "static") == [addr], 10, "admin change")
            base.append(time.monotonic() - t0)
        return {"k8s_p50_ms": statistics.median(k8s) * 1000, "k8s_p99_ms": pct(k8s, 99) * 1000,
                "k8s_max_ms": max(k8s) * 1000, "admin_p50_ms": statistics.median(base) * 1000,
                "admin_p99_ms": pct(base, 99) * 1000, "changes": args.changes}
    finally:
        st.stop()
        sim.stop()
        shutil.rmtree(tmp, True)


def slice_for(i, gen, n_eps):
    return endpointslice(NS, "svc-%d-abcde" % i, "svc-%d" % i,
                         [("10.%d.%d.%d" % (i // 250, i % 250, 1 + (gen + j) % 250), True) for j in range(n_eps)],
                         [("http", 8080)])


def load(args, bindir):
    tmp = tempfile.mkdtemp(prefix="bgw-k8s-bench-")
    sim = ApiSim(token="bench", bookmark_interval=5.0).start()
    gens = [0] * args.services
    for i in range(args.services):
        sim.apply(service(NS, "svc-%d" % i, [("http", 80, 8080)]))
        sim.apply(slice_for(i, 0, args.endpoints))
    doc = {"services": [{"name": "svc-%d" % i, "kubernetes": {"namespace": NS, "service": "svc-%d" % i,
                                                              "port": "http"}} for i in range(args.services)],
           "routes": [{"name": "r%d" % i, "match": {"path_prefix": "/s%d" % i}, "service": "svc-%d" % i}
                      for i in range(args.services)]}
    st = Stack(bindir, sim, doc, 1, tmp)
    rnd = random.Random(7)
    try:
        cpu0, t0 = cpu_seconds(st.cp.pid), time.monotonic()
        proxy_cpu0 = cpu_seconds(st.procs[1].pid)
        n = 0
        late = 0.0
        while True:
            now = time.monotonic()
            if now - t0 >= args.seconds:
                break
            due = t0 + n / args.rate
            if due > now:
                time.sleep(due - now)
            else:
                late = max(late, now - due)
            i = rnd.randrange(args.services)
            gens[i] += 1
            sim.apply(slice_for(i, gens[i], args.endpoints))
            n += 1
        t_end = time.monotonic()
        want = sorted("10.%d.%d.%d:8080" % (i // 250, i % 250, 1 + (gens[i] + j) % 250) for j in range(args.endpoints))
        k = st.proxies[0]
        ctl = Keep(st.admin)

        def control_has():
            items = ctl.get_json("/v1/services/svc-%d/endpoints" % i)["items"]
            return sorted(e["address"] for e in items) == want
        wait_until(control_has, 30, "last change in bgw-control")
        in_control = time.monotonic() - t_end
        wait_until(lambda: endpoints_of(k.get_json("/config"), "svc-%d" % i) == want, 30, "last change",
                   interval=0.01)   # the proxy's /config is large here: poll gently
        backlog = time.monotonic() - t_end
        cpu1, t1 = cpu_seconds(st.cp.pid), time.monotonic()
        proxy_cpu = (cpu_seconds(st.procs[1].pid) - proxy_cpu0) / (t1 - t0)
        with open(os.path.join(tmp, "control.log")) as f:
            log = f.read()
        pushes = sum(1 for line in log.splitlines() if "published" in line)
        if os.environ.get("BGW_BENCH_KEEP_LOG"):
            shutil.copy(os.path.join(tmp, "control.log"), os.environ["BGW_BENCH_KEEP_LOG"])
        return {"services": args.services, "endpoints": args.endpoints, "changes": n,
                "rate": n / (t_end - t0), "seconds": t_end - t0, "cpu_cores": (cpu1 - cpu0) / (t1 - t0),
                "last_change_ms": backlog * 1000,
                "last_change_in_control_ms": in_control * 1000, "proxy_cpu_cores": proxy_cpu, "publishes": pushes, "generator_late_ms": late * 1000}
    finally:
        st.stop()
        sim.stop()
        shutil.rmtree(tmp, True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    p.add_argument("--changes", type=int, default=100)
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--endpoints", type=int, default=10)
    p.add_argument("--rate", type=float, default=100)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--skip-load", action="store_true")
    p.add_argument("--json")
    a = p.parse_args()
    out = {}
    if not a.skip_latency:
        out["latency"] = r = latency(a, a.bin)
        print("EndpointSlice change -> 2 proxies: p50 %.1f ms, p99 %.1f ms, max %.1f ms (target p99 <= 100 ms); "
              "admin API change baseline p50 %.1f ms, p99 %.1f ms"
              % (r["k8s_p50_ms"], r["k8s_p99_ms"], r["k8s_max_ms"], r["admin_p50_ms"], r["admin_p99_ms"]))
    if not a.skip_load:
        out["load"] = r = load(a, a.bin)
        print("%d services x %d endpoints, %d changes at %.0f/s over %.0f s: bgw-control %.2f cores "
              "(target < 0.5), bgw-proxy %.2f cores, %d publishes; last change in bgw-control %.0f ms and served by "
              "the proxy %.0f ms after the run (generator late by at most %.0f ms)"
              % (r["services"], r["endpoints"], r["changes"], r["rate"], r["seconds"], r["cpu_cores"],
                 r["proxy_cpu_cores"], r["publishes"], r["last_change_in_control_ms"], r["last_change_ms"],
                 r["generator_late_ms"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
