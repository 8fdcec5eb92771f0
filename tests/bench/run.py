#!/usr/bin/python3
"""Baribhara Gateway benchmark harness: bgw-proxy against nginx and HAProxy.

One command runs everything (see tests/bench/README.md):

    tests/bench/run.py [--quick] [--scenarios throughput,routes,idle] [--json out.json]

Scenarios
  throughput  wrk -t2 --latency at each --conns level against direct (the upstream),
              nginx, HAProxy and bgw-proxy, interleaved, --rounds rounds; medians of
              req/s, p50, p99, CPU us/request and peak RSS of the proxy under test.
  routes      bgw-proxy with 10 routes vs --routes routes, hitting a route declared late.
  idle        RSS of nginx, HAProxy and bgw-proxy holding --idle-conns idle keep-alive
              client connections.

Every process the harness starts runs in its own process group and is killed on exit;
the temporary directory is removed (unless --keep-tmp). Standard library only.
"""

import argparse
import ctypes
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import idle_conns  # noqa: E402  (helper next to this file)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
NOFILE = 200000      # wanted; lowered to the hard limit when it cannot be raised
BODY = ("baribhara-bench-upstream-" + "x" * 100)[:99] + "\n"   # 100-byte response body
CONTENDERS = ("direct", "nginx", "haproxy", "bgw")
SCENARIOS = ("throughput", "routes", "idle")
T0 = time.monotonic()


def log(msg):
    sys.stderr.write("[%5.0fs] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


class StartError(Exception):
    """A contender (or the upstream) did not come up."""


# --------------------------------------------------------------------------- processes

try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None
PR_SET_PDEATHSIG = 1


def _child_setup():
    # Last resort if the harness itself is SIGKILLed: the direct child dies with it.
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


REGISTRY = []   # every Proc still running


class Proc:
    """A child process in its own process group, output to a log file."""

    def __init__(self, name, argv, logdir):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(logdir, "%s.log" % name)
        self.logf = open(self.log_path, "ab")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                  stderr=subprocess.STDOUT, start_new_session=True,
                                  preexec_fn=_child_setup, close_fds=True)
        self.pid = self.p.pid
        REGISTRY.append(self)

    def running(self):
        return self.p.poll() is None

    def tail(self, extra=None, lines=12):
        out = []
        for path in [self.log_path] + list(extra or []):
            try:
                with open(path, "rb") as f:
                    f.seek(0, os.SEEK_END)
                    f.seek(max(0, f.tell() - 4096))
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            out.extend(text.splitlines()[-lines:])
        return "\n    ".join(out[-lines:]) if out else "(no output)"

    def stop(self, grace=5.0):
        if self.p.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Kill whatever is left of the group (workers of a dead master, ...).
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.logf.close()
        if self in REGISTRY:
            REGISTRY.remove(self)


def stop_all():
    for p in list(REGISTRY):
        p.stop(grace=2.0)


def proc_tree(root):
    """root and all its descendants (process ids, not threads)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d, "rb") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out = [root]
    i = 0
    while i < len(out):
        out.extend(children.get(out[i], []))
        i += 1
    return out


def cpu_ticks(pids):
    """Sum of utime+stime (clock ticks) over pids (all threads of each process)."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid, "rb") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rindex(b")") + 2:].split()
        total += int(rest[11]) + int(rest[12])
    return total


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/statm" % pid, "rb") as f:
                total += int(f.read().split()[1]) * PAGE_KB
        except (OSError, IndexError, ValueError):
            pass
    return total


def status_kb(pids, field):
    """Sum a /proc/PID/status field (VmHWM, VmRSS) or smaps_rollup field (Pss)."""
    total = 0
    for pid in pids:
        path = "/proc/%d/%s" % (pid, "smaps_rollup" if field == "Pss" else "status")
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
                        break
        except (OSError, ValueError):
            pass
    return total


def host_cpu():
    """The aggregate line of /proc/stat: user nice system idle iowait irq softirq steal."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def http_get(port, path="/", timeout=1.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def wait_ready(proc, name, check, timeout, expect_procs=1, extra_logs=None):
    """Poll check() until it returns True; raise StartError if proc dies or time runs out."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    last = "no answer yet"
    while True:
        if not proc.running():
            raise StartError("%s exited with code %s before becoming ready (%s); output:\n    %s"
                             % (name, proc.p.returncode, " ".join(proc.argv),
                                proc.tail(extra_logs)))
        try:
            ok = check()
            if ok is True and len(proc_tree(proc.pid)) >= expect_procs:
                return
            if isinstance(ok, str):
                last = ok
        except (OSError, http.client.HTTPException) as e:
            last = "%s: %s" % (type(e).__name__, e)
        if time.monotonic() > deadline:
            raise StartError("%s not ready after %.0fs (last probe: %s); output:\n    %s"
                             % (name, timeout, last, proc.tail(extra_logs)))
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def expect_200(port, path="/"):
    def check():
        status, body = http_get(port, path)
        if status == 200:
            return True
        return "GET %s -> %d %r" % (path, status, body[:80])
    return check


# --------------------------------------------------------------------------- contenders

def nginx_temp_paths(d):
    paths = ["client_body_temp_path %s/body;" % d, "proxy_temp_path %s/proxy;" % d]
    v = subprocess.run(["nginx", "-V"], capture_output=True, text=True, timeout=10).stderr
    for mod in ("fastcgi", "uwsgi", "scgi"):
        if "--without-http_%s_module" % mod not in v:
            paths.append("%s_temp_path %s/%s;" % (mod, d, mod))
    return "\n    ".join(paths)


class Upstream:
    """nginx, one worker, `return 200` of a 100-byte body."""
    name = "upstream"

    def __init__(self, tmp, worker_connections):
        self.dir = os.path.join(tmp, "upstream")
        os.makedirs(self.dir)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write("""\
worker_processes 1;
worker_rlimit_nofile %(nofile)d;
user root;
daemon off;
master_process on;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections %(wc)d; }
http {
    access_log off;
    server_tokens off;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    %(temps)s
    server {
        listen 127.0.0.1:%(port)d backlog=4096;
        location / {
            default_type text/plain;
            return 200 "%(body)s";
        }
        location = /__bench_stub_status {
            stub_status;
        }
    }
}
""" % {"nofile": NOFILE, "d": self.dir, "wc": worker_connections, "port": self.port,
       "body": BODY.rstrip("\n") + "\\n", "temps": nginx_temp_paths(self.dir)})
        self.proc = None

    def start(self):
        self.proc = Proc("upstream-nginx", ["nginx", "-p", self.dir + "/", "-c", self.conf,
                                            "-e", self.dir + "/error.log"], self.dir)
        wait_ready(self.proc, "upstream nginx", expect_200(self.port), 15, expect_procs=2,
                   extra_logs=[self.dir + "/error.log"])
        status, body = http_get(self.port)
        if len(body) != len(BODY):
            raise StartError("upstream body is %d bytes, expected %d" % (len(body), len(BODY)))

    def pids(self):
        return proc_tree(self.proc.pid)

    def accepts(self):
        """Connections the upstream has accepted so far (stub_status), or None."""
        try:
            st, body = http_get(self.port, "/__bench_stub_status", timeout=2.0)
            m = re.search(rb"\n\s*(\d+)\s+\d+\s+\d+", body)
            return int(m.group(1)) if st == 200 and m else None   # includes this probe
        except (OSError, http.client.HTTPException):
            return None

    def stop(self):
        if self.proc:
            self.proc.stop()


class Direct:
    """wrk straight at the upstream; 'the proxy' is the upstream nginx itself."""
    name = "direct"

    def __init__(self, upstream):
        self.upstream = upstream
        self.port = upstream.port

    def start(self, **_kw):
        pass

    def pids(self):
        return self.upstream.pids()

    def stop(self):
        pass


class NginxProxy:
    name = "nginx"

    def __init__(self, tmp, up_port, workers, pool, worker_connections):
        self.tmp, self.up_port, self.workers = tmp, up_port, workers
        self.pool, self.wc = pool, worker_connections
        self.proc = None
        self.port = None
        self.seq = 0

    def start(self, **_kw):
        self.seq += 1
        d = os.path.join(self.tmp, "nginx-%d" % self.seq)
        os.makedirs(d)
        self.port = free_port()
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""\
worker_processes %(workers)d;
worker_rlimit_nofile %(nofile)d;
user root;
daemon off;
master_process on;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections %(wc)d; }
http {
    access_log off;
    server_tokens off;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    client_header_timeout 300s;
    %(temps)s
    upstream up {
        server 127.0.0.1:%(up)d;
        keepalive %(pool)d;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:%(port)d backlog=4096;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
""" % {"workers": self.workers, "nofile": NOFILE, "d": d, "wc": self.wc, "up": self.up_port,
       "pool": self.pool, "port": self.port, "temps": nginx_temp_paths(d)})
        self.proc = Proc("nginx-proxy-%d" % self.seq,
                         ["nginx", "-p", d + "/", "-c", conf, "-e", d + "/error.log"], d)
        wait_ready(self.proc, "nginx (proxy)", expect_200(self.port), 15,
                   expect_procs=1 + self.workers, extra_logs=[d + "/error.log"])

    def pids(self):
        return proc_tree(self.proc.pid)

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


class HaproxyProxy:
    name = "haproxy"

    def __init__(self, tmp, up_port, workers, maxconn):
        self.tmp, self.up_port, self.workers, self.maxconn = tmp, up_port, workers, maxconn
        self.proc = None
        self.port = None
        self.seq = 0

    def start(self, **_kw):
        self.seq += 1
        d = os.path.join(self.tmp, "haproxy-%d" % self.seq)
        os.makedirs(d)
        self.port = free_port()
        conf = os.path.join(d, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write("""\
global
    nbthread %(workers)d
    maxconn %(maxconn)d
    # warn instead of failing when RLIMIT_NOFILE cannot be raised (e.g. no CAP_SYS_RESOURCE)
    no strict-limits

defaults
    mode http
    maxconn %(maxconn)d
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-request 300s
    timeout http-keep-alive 300s
    http-reuse always

frontend fe
    bind 127.0.0.1:%(port)d backlog 4096
    default_backend be

backend be
    http-reuse always
    server up 127.0.0.1:%(up)d
""" % {"workers": self.workers, "maxconn": self.maxconn, "port": self.port,
       "up": self.up_port})
        self.proc = Proc("haproxy-%d" % self.seq, ["haproxy", "-db", "-f", conf], d)
        wait_ready(self.proc, "HAProxy", expect_200(self.port), 15)

    def pids(self):
        return proc_tree(self.proc.pid)

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


def bgw_config(up_port, max_connections, nroutes=None):
    """The config document: one catch-all route, or nroutes generated routes.

    Generated routes: /r/0 .. /r/N-1, alternating path_exact / path_prefix, with
    method, host and header conditions on some of them, plus two decoys that share the
    target's path but cannot match wrk's request. The target (what wrk requests) is
    GET /r/N-1/item, matched by the last route of the document.
    """
    svc = {"name": "up", "endpoints": ["127.0.0.1:%d" % up_port],
           "max_connections": max_connections}
    if nroutes is None:
        return {"services": [svc],
                "routes": [{"name": "all", "match": {"path_prefix": "/"}, "service": "up"}]}, "/"
    last = nroutes - 1
    method_sets = [["GET"], ["GET", "POST"], ["PUT", "DELETE"], ["POST"], ["GET", "HEAD"]]
    routes = [
        {"name": "decoy-host", "service": "up",
         "match": {"path_prefix": "/r/%d" % last, "hosts": ["decoy.example.com"]}},
        {"name": "decoy-method", "service": "up",
         "match": {"path_exact": "/r/%d/item" % last, "methods": ["POST"]}},
    ]
    for i in range(last):
        m = {("path_exact" if i % 2 == 0 else "path_prefix"): "/r/%d" % i}
        if i % 3 == 1:
            m["methods"] = method_sets[(i // 3) % len(method_sets)]
        if i % 7 == 3:
            m["hosts"] = ["h%d.example.com" % (i % 97)]
            if i % 14 == 3:
                m["hosts"].append("api%d.example.org" % (i % 13))
        if i % 11 == 5:
            m["headers"] = [{"name": "x-tenant", "exact": "t%d" % i}]
        routes.append({"name": "r%d" % i, "match": m, "service": "up"})
    routes.append({"name": "target", "service": "up",
                   "match": {"path_prefix": "/r/%d" % last, "methods": ["GET", "HEAD"]}})
    return {"services": [svc], "routes": routes}, "/r/%d/item" % last


class BgwProxy:
    name = "bgw"

    def __init__(self, tmp, binary, up_port, workers, max_connections, extra_args):
        self.tmp, self.binary, self.up_port = tmp, binary, up_port
        self.workers, self.max_connections, self.extra = workers, max_connections, extra_args
        self.proc = None
        self.port = None
        self.path = "/"
        self.seq = 0

    def start(self, nroutes=None, **_kw):
        self.seq += 1
        d = os.path.join(self.tmp, "bgw-%d" % self.seq)
        os.makedirs(d)
        self.port, admin = free_port(), free_port()
        while admin == self.port:
            admin = free_port()
        doc, self.path = bgw_config(self.up_port, self.max_connections, nroutes)
        conf = os.path.join(d, "config.json")
        with open(conf, "w") as f:
            json.dump(doc, f, indent=None if nroutes else 1)
        argv = [self.binary, "--config", conf, "--listen", "127.0.0.1:%d" % self.port,
                "--admin", "127.0.0.1:%d" % admin, "--workers", str(self.workers)] + self.extra
        self.proc = Proc("bgw-proxy-%d" % self.seq, argv, d)
        port, path = self.port, self.path

        def check():
            st, body = http_get(admin, "/readyz")
            if st != 200:
                return "admin GET /readyz -> %d %r" % (st, body[:80])
            st, body = http_get(port, path)
            if st != 200:
                return "/readyz is 200 but GET %s -> %d %r" % (path, st, body[:120])
            return True
        wait_ready(self.proc, "bgw-proxy", check, 30 if nroutes and nroutes > 100 else 15)

    def pids(self):
        return proc_tree(self.proc.pid)

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


# --------------------------------------------------------------------------- wrk

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def parse_wrk(out):
    r = {"requests": None, "rps": None, "p50_ms": None, "p75_ms": None, "p90_ms": None,
         "p99_ms": None, "non2xx": 0, "socket_errors": {}}
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+)", out, re.M)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if m:
        r["rps"] = float(m.group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s|m|h)\s*$" % pct, out, re.M)
        if m:
            r["p%s_ms" % pct] = round(float(m.group(1)) * _UNITS_MS[m.group(2)], 4)
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["socket_errors"] = {k: int(v) for k, v in
                              zip(("connect", "read", "write", "timeout"), m.groups()) if int(v)}
    return r


def wrk_cmd(args, port, path, conns, duration):
    return [args.wrk, "-t", str(min(args.threads, conns)), "-c", str(conns),
            "-d", "%ds" % duration, "--timeout", "10s", "--latency",
            "http://127.0.0.1:%d%s" % (port, path)]


def run_wrk(args, port, path, conns, duration, sample_pids=None):
    """Run wrk; while it runs, sample the RSS of sample_pids. Returns (parsed, peak_kb)."""
    cmd = wrk_cmd(args, port, path, conns, duration)
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True,
                             preexec_fn=_child_setup)
        deadline = time.monotonic() + duration + 30
        peak = rss_kb(sample_pids) if sample_pids else 0
        try:
            while p.poll() is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("wrk did not finish within %ds: %s"
                                       % (duration + 30, " ".join(cmd)))
                if sample_pids:
                    peak = max(peak, rss_kb(sample_pids))
                time.sleep(0.1)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if p.returncode != 0:
        raise RuntimeError("wrk exited %d: %s\n%s" % (p.returncode, " ".join(cmd), text))
    r = parse_wrk(text)
    if not r["requests"] or r["rps"] is None or r["p99_ms"] is None:
        raise RuntimeError("wrk completed no requests (%s):\n%s" % (" ".join(cmd), text))
    return r, peak


def _ours_ticks():
    """CPU ticks of this harness plus its reaped children (wrk)."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime) * CLK_TCK


def measure(args, target, upstream, conns, path="/"):
    """Warm up, then a measured wrk run with CPU and RSS accounting of target.

    If other processes on the machine used more than --noisy-pct of its CPU during the
    run, the run is repeated (at most --noisy-retries times) and the quietest one kept.
    """
    if args.warmup > 0:
        run_wrk(args, target.port, path, conns, args.warmup)
    best = None
    for attempt in range(args.noisy_retries + 1):
        r = _measure_once(args, target, upstream, conns, path)
        r["attempts"] = attempt + 1
        if best is None or r["foreign_cpu_pct"] < best["foreign_cpu_pct"]:
            best = r
        if r["foreign_cpu_pct"] <= args.noisy_pct:
            break
        if attempt < args.noisy_retries:
            log("  other processes used %.0f%% of the machine's CPU during that run "
                "(%.0f req/s); measuring %s again" % (r["foreign_cpu_pct"], r["rps"],
                                                      target.name))
    best["attempts"] = attempt + 1
    warn = []
    if best["non2xx"] or best["socket_errors"]:
        warn.append("%d non-2xx, socket errors %s" % (best["non2xx"], best["socket_errors"]))
    if best["host_steal_pct"] > 5:
        warn.append("%.0f%% CPU steal" % best["host_steal_pct"])
    if best["foreign_cpu_pct"] > args.noisy_pct:
        warn.append("other processes used %.0f%% CPU" % best["foreign_cpu_pct"])
    if warn:
        best["warning"] = "; ".join(warn)
    return best


def _measure_once(args, target, upstream, conns, path):
    pids = target.pids()
    up_pids = upstream.pids()
    direct = isinstance(target, Direct)
    acc0 = upstream.accepts()
    h0, o0 = host_cpu(), _ours_ticks()
    cpu0, ucpu0 = cpu_ticks(pids), cpu_ticks(up_pids)
    r, peak = run_wrk(args, target.port, path, conns, args.duration, sample_pids=pids)
    cpu1, ucpu1 = cpu_ticks(pids), cpu_ticks(up_pids)
    h1, o1 = host_cpu(), _ours_ticks()
    acc1 = upstream.accepts()
    n = r["requests"]
    hd = [b - a for a, b in zip(h0, h1)]
    htotal = max(sum(hd), 1)
    # Whole machine: everything (wrk, upstream, proxy, softirq) per request, and the share
    # of time stolen by the hypervisor or spent in softirq (loopback TCP).
    r["host_cpu_us_per_req"] = round((htotal - hd[3] - hd[4] - hd[7]) * 1e6 / CLK_TCK / n, 3)
    r["host_steal_pct"] = round(100.0 * hd[7] / htotal, 2)
    r["host_softirq_pct"] = round(100.0 * hd[6] / htotal, 2)
    # Process time (user+nice+system) not spent by the proxy, the upstream, wrk or this
    # harness: other workloads on the machine competing with the benchmark.
    ours = (cpu1 - cpu0) + (0 if direct else ucpu1 - ucpu0) + (o1 - o0)
    r["foreign_cpu_pct"] = round(max(0.0, 100.0 * (hd[0] + hd[1] + hd[2] - ours) / htotal), 2)
    # New connections the upstream accepted during the measured run: for direct these are
    # wrk's own; for a proxy with a warm keep-alive pool this should stay near 0.
    # (acc1 also counts the second probe's own connection.)
    r["upstream_new_conns"] = (acc1 - acc0 - 1) if None not in (acc0, acc1) else None
    r["cpu_us_per_req"] = round((cpu1 - cpu0) * 1e6 / CLK_TCK / n, 3)
    r["cpu_seconds"] = round((cpu1 - cpu0) / CLK_TCK, 2)
    if not direct:
        r["upstream_cpu_us_per_req"] = round((ucpu1 - ucpu0) * 1e6 / CLK_TCK / n, 3)
    r["peak_rss_mb"] = round(peak / 1024.0, 2)
    r["hwm_sum_mb"] = round(status_kb(pids, "VmHWM") / 1024.0, 2)
    r["processes"] = len(pids)
    return r


# --------------------------------------------------------------------------- scenarios

METRICS = ("rps", "p50_ms", "p75_ms", "p90_ms", "p99_ms", "cpu_us_per_req", "peak_rss_mb",
           "hwm_sum_mb", "upstream_cpu_us_per_req", "upstream_new_conns",
           "host_cpu_us_per_req", "host_steal_pct", "host_softirq_pct", "foreign_cpu_pct")


def median_of(runs):
    med = {}
    for k in METRICS:
        vals = [r[k] for r in runs if r.get(k) is not None]
        if vals:
            med[k] = round(statistics.median(vals), 4)
    med["requests"] = sum(r["requests"] for r in runs)
    med["n"] = len(runs)
    return med


def fmt_run(r):
    s = "%9.0f req/s  p50 %7.3f ms  p99 %7.3f ms  cpu %6.1f us/req  rss %6.1f MB" % (
        r["rps"], r["p50_ms"], r["p99_ms"], r["cpu_us_per_req"], r["peak_rss_mb"])
    if r.get("warning"):
        s += "  WARNING: " + r["warning"]
    return s


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="bgw-bench-")
        self.results = {"throughput": [], "ratios": [], "routes": None, "idle": [],
                        "errors": [], "skipped": []}
        self.broken = {}      # contender name -> reason (stop trying it)
        self.sysctl_restore = []
        self.upstream = None
        self.contenders = {}

    # ---- setup
    def setup(self):
        a = self.args
        maxc = max(a.conns)
        wc = a.idle_conns + 2 * maxc + 1024      # per worker: clients + upstream side
        self.upstream = Upstream(self.tmp, wc + maxc)
        log("starting upstream nginx (1 worker) ...")
        self.upstream.start()
        log("upstream on 127.0.0.1:%d (%d-byte body)" % (self.upstream.port, len(BODY)))
        self.contenders["direct"] = Direct(self.upstream)
        self.contenders["nginx"] = NginxProxy(self.tmp, self.upstream.port, a.workers, maxc, wc)
        self.contenders["haproxy"] = HaproxyProxy(self.tmp, self.upstream.port, a.workers,
                                                  a.idle_conns + 2 * maxc + 1024)
        if "bgw" in a.contenders or "routes" in a.scenarios:
            if not (os.path.isfile(a.bgw) and os.access(a.bgw, os.X_OK)):
                msg = ("bgw-proxy not found at %s (build it: cmake -S . -B build && cmake "
                       "--build build -j, or pass --bgw PATH): SKIPPING the bgw parts" % a.bgw)
                log(msg)
                self.results["skipped"].append(msg)
                self.broken["bgw"] = "missing"
            self.contenders["bgw"] = BgwProxy(self.tmp, a.bgw, self.upstream.port, a.workers,
                                              maxc, a.bgw_arg)

    def sysctls(self):
        need = self.args.idle_conns + 8 * max(self.args.conns) + 4096
        path = "/proc/sys/net/ipv4/ip_local_port_range"
        try:
            with open(path) as f:
                old = f.read().split()
            lo, hi = int(old[0]), int(old[1])
            if hi - lo < need:
                with open(path, "w") as f:
                    f.write("10000 65535")
                self.sysctl_restore.append((path, "%d %d" % (lo, hi)))
                log("net.ipv4.ip_local_port_range %d-%d -> 10000-65535 (restored on exit)"
                    % (lo, hi))
        except OSError as e:
            log("WARNING: cannot widen ip_local_port_range (%s); idle scenario may run out of "
                "ports" % e)

    def cleanup(self):
        stop_all()
        for path, val in self.sysctl_restore:
            try:
                with open(path, "w") as f:
                    f.write(val)
            except OSError:
                pass
        self.sysctl_restore = []
        if self.args.keep_tmp:
            log("temporary files kept in %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _start(self, c, **kw):
        """Start contender c; on failure record it, mark it broken and return False."""
        if c.name in self.broken:
            return False
        try:
            c.start(**kw)
            return True
        except StartError as e:
            msg = "%s failed to start: %s" % (c.name, e)
            log("ERROR: " + msg)
            self.results["errors"].append(msg)
            self.broken[c.name] = str(e).splitlines()[0].split(" (")[0].rstrip(";:")
            c.stop()
            return False

    def _run(self, c, conns, path="/", **kw):
        if not self._start(c, **kw):
            return None
        try:
            return measure(self.args, c, self.upstream, conns, path=c.path if hasattr(
                c, "path") else path)
        except RuntimeError as e:
            msg = "%s at %d connections: %s" % (c.name, conns, e)
            log("ERROR: " + msg)
            self.results["errors"].append(msg)
            return None
        finally:
            c.stop()

    # ---- scenario 1
    def throughput(self):
        a = self.args
        runs = {}
        for rnd in range(1, a.rounds + 1):
            for conns in a.conns:
                for name in a.contenders:
                    c = self.contenders.get(name)
                    if c is None or name in self.broken:
                        continue
                    r = self._run(c, conns)
                    if r is None:
                        continue
                    r["round"] = rnd
                    runs.setdefault((name, conns), []).append(r)
                    log("throughput round %d/%d  c=%-5d %-8s %s"
                        % (rnd, a.rounds, conns, name, fmt_run(r)))
        for conns in a.conns:
            for name in a.contenders:
                rs = runs.get((name, conns))
                if not rs:
                    continue
                self.results["throughput"].append({
                    "contender": name, "conns": conns, "median": median_of(rs), "runs": rs})
        self.ratios()

    def _med(self, name, conns):
        for t in self.results["throughput"]:
            if t["contender"] == name and t["conns"] == conns:
                return t["median"]
        return None

    def ratios(self):
        for conns in self.args.conns:
            b = self._med("bgw", conns)
            if not b:
                continue
            for other in ("nginx", "haproxy"):
                o = self._med(other, conns)
                if not o:
                    continue
                self.results["ratios"].append({
                    "conns": conns, "ratio": "bgw/%s" % other,
                    "rps": round(b["rps"] / o["rps"], 3),
                    "p99": round(b["p99_ms"] / o["p99_ms"], 3) if o["p99_ms"] else None})

    # ---- scenario 2
    def routes(self):
        a = self.args
        c = self.contenders.get("bgw")
        if c is None or "bgw" in self.broken:
            msg = "routes scenario skipped: bgw-proxy unavailable (%s)" % self.broken.get(
                "bgw", "not selected")
            log(msg)
            self.results["skipped"].append(msg)
            return
        runs = {}
        for rnd in range(1, a.rounds + 1):
            for n in (10, a.routes):
                r = self._run(c, a.routes_conns, nroutes=n)
                if r is None:
                    if "bgw" in self.broken:
                        return
                    continue
                r["round"] = rnd
                r["path"] = c.path
                runs.setdefault(n, []).append(r)
                log("routes round %d/%d  %5d routes  c=%d  GET %s  %s"
                    % (rnd, a.rounds, n, a.routes_conns, c.path, fmt_run(r)))
        if 10 in runs and a.routes in runs:
            few, many = median_of(runs[10]), median_of(runs[a.routes])
            self.results["routes"] = {
                "conns": a.routes_conns, "few": 10, "many": a.routes,
                "few_median": few, "many_median": many,
                "rps_ratio_many_over_few": round(many["rps"] / few["rps"], 3),
                "p99_ratio_many_over_few": round(many["p99_ms"] / few["p99_ms"], 3),
                "runs": {str(k): v for k, v in runs.items()}}

    # ---- scenario 3
    def idle(self):
        a = self.args
        for name in a.contenders:
            if name == "direct":
                continue
            c = self.contenders.get(name)
            if c is None:
                continue
            if name in self.broken:
                msg = "idle scenario: %s skipped (%s)" % (name, self.broken[name])
                self.results["skipped"].append(msg)
                log(msg)
                continue
            if not self._start(c):
                continue
            ic = None
            try:
                pids = c.pids()
                base = rss_kb(pids)
                ic = idle_conns.IdleConnections("127.0.0.1", c.port, a.idle_conns,
                                                used=not a.idle_fresh,
                                                path=getattr(c, "path", "/"), timeout=120)
                summary = ic.open()
                # Let the proxy settle: sample until two consecutive samples agree (<=3 s).
                samples = [rss_kb(pids)]
                for _ in range(15):
                    time.sleep(0.2)
                    samples.append(rss_kb(pids))
                    if abs(samples[-1] - samples[-2]) <= max(64, samples[-1] // 500):
                        break
                held = ic.alive()
                rss = max(samples[-2:])
                pss = status_kb(pids, "Pss")
                rec = {"contender": name, "conns_requested": a.idle_conns,
                       "conns_held": held, "used": not a.idle_fresh,
                       "rss_mb": round(rss / 1024.0, 2), "baseline_rss_mb": round(base / 1024.0, 2),
                       "pss_mb": round(pss / 1024.0, 2),
                       "kb_per_conn": round((rss - base) / max(held, 1), 2),
                       "processes": len(pids), "open_seconds": summary["open_seconds"],
                       "client_errors": summary["errors"]}
                if held < a.idle_conns:
                    rec["warning"] = "only %d of %d connections held: %s" % (
                        held, a.idle_conns, summary["errors"] or ic.errors)
                self.results["idle"].append(rec)
                log("idle  %-8s %d conns held: RSS %.1f MB (baseline %.1f MB, %.2f KB/conn, "
                    "PSS %.1f MB)%s" % (name, held, rec["rss_mb"], rec["baseline_rss_mb"],
                                        rec["kb_per_conn"], rec["pss_mb"],
                                        "  WARNING: " + rec["warning"] if "warning" in rec else ""))
            finally:
                if ic is not None:
                    ic.close()
                c.stop()


# --------------------------------------------------------------------------- report

def cmd_out(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def machine_info(args):
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            mem_gib = round(int(f.readline().split()[1]) / 1048576.0, 1)
    except (OSError, ValueError, IndexError):
        pass
    nginx_v = re.sub(r"^nginx version:\s*(nginx/)?", "", cmd_out(["nginx", "-v"]))
    haproxy_v = cmd_out(["haproxy", "-v"])
    m = re.search(r"version\s+(\S+)", haproxy_v)
    wrk_v = cmd_out([args.wrk, "-v"])
    m2 = re.match(r"wrk\s+(\S+)", wrk_v)
    bgw_v = None
    if os.path.isfile(args.bgw) and os.access(args.bgw, os.X_OK):
        bgw_v = cmd_out([args.bgw, "--version"])
        if bgw_v == "unknown":
            bgw_v = "%s (--version printed nothing)" % args.bgw
    return {"nproc": len(os.sched_getaffinity(0)), "cpu_model": model,
            "kernel": os.uname().release, "mem_gib": mem_gib,
            "nginx": nginx_v, "haproxy": m.group(1) if m else haproxy_v,
            "wrk": m2.group(1) if m2 else wrk_v, "bgw_proxy": bgw_v,
            "python": sys.version.split()[0]}


def f0(v):
    return "-" if v is None else "{:,.0f}".format(v)


def f2(v):
    return "-" if v is None else "%.2f" % v


def f3(v):
    return "-" if v is None else "%.3f" % v


def markdown(args, res):
    m = res["machine"]
    lines = []
    lines.append("Machine: %d CPUs (%s), kernel %s, %s GiB RAM; nginx %s, HAProxy %s, wrk %s; "
                 "bgw-proxy: %s." % (m["nproc"], m["cpu_model"], m["kernel"], m["mem_gib"],
                                     m["nginx"], m["haproxy"], m["wrk"],
                                     m["bgw_proxy"] or "not available"))
    lines.append("Settings: wrk -t%d --latency, %d s measured after %d s warm-up, median of %d "
                 "round(s); upstream nginx (1 worker, %d-byte body); proxies with %d workers, "
                 "keep-alive to the upstream; all on 127.0.0.1, same host."
                 % (args.threads, args.duration, args.warmup, args.rounds, len(BODY),
                    args.workers))
    lines.append("")
    lines.append("| scenario | contender | conns | req/s | p50 ms | p99 ms | CPU us/req | "
                 "RSS MB | notes |")
    lines.append("|---|---|--:|--:|--:|--:|--:|--:|---|")
    for t in res["throughput"]:
        md = t["median"]
        if t["contender"] == "direct":
            note = "the upstream itself"
        else:
            note = "peak RSS during run"
            churn = md.get("upstream_new_conns")
            if churn and churn > t["conns"]:
                note += "; CHURN: %s new upstream conns during run" % f0(churn)
        warn = [r["warning"] for r in t["runs"] if r.get("warning")]
        if warn:
            note += "; WARNING: " + warn[0]
        lines.append("| throughput | %s | %d | %s | %s | %s | %s | %s | %s |"
                     % (t["contender"], t["conns"], f0(md.get("rps")), f3(md.get("p50_ms")),
                        f3(md.get("p99_ms")), f2(md.get("cpu_us_per_req")),
                        f2(md.get("peak_rss_mb")), note))
    for r in res["ratios"]:
        lines.append("| ratio | %s | %d | %sx | | %sx | | | req/s: >1 = bgw faster; "
                     "p99: <1 = bgw lower |" % (r["ratio"], r["conns"], f3(r["rps"]),
                                                  f3(r["p99"])))
    rt = res.get("routes")
    if rt:
        for key, n in (("few_median", rt["few"]), ("many_median", rt["many"])):
            md = rt[key]
            lines.append("| routes | bgw, %d routes | %d | %s | %s | %s | %s | %s | "
                         "GET %s (last route) |"
                         % (n, rt["conns"], f0(md["rps"]), f3(md["p50_ms"]), f3(md["p99_ms"]),
                            f2(md["cpu_us_per_req"]), f2(md["peak_rss_mb"]),
                            rt["runs"][str(n)][0]["path"]))
        lines.append("| routes | %d/%d routes | %d | %sx | | %sx | | | ratio of medians |"
                     % (rt["many"], rt["few"], rt["conns"], f3(rt["rps_ratio_many_over_few"]),
                        f3(rt["p99_ratio_many_over_few"])))
    for r in res["idle"]:
        note = ("%s idle keep-alive conns held" if r["used"] else
                "%s never-used conns held") % "{:,}".format(r["conns_held"])
        note += "; baseline %.1f MB, %.2f KB/conn, PSS %.1f MB" % (
            r["baseline_rss_mb"], r["kb_per_conn"], r["pss_mb"])
        if r.get("warning"):
            note += "; WARNING: " + r["warning"]
        lines.append("| idle | %s | %d | | | | | %s | %s |"
                     % (r["contender"], r["conns_requested"], f2(r["rss_mb"]), note))
    allruns = [r for t in res["throughput"] for r in t["runs"]]
    if res.get("routes"):
        allruns += [r for rs in res["routes"]["runs"].values() for r in rs]
    noisy = [r for r in allruns if r.get("foreign_cpu_pct", 0) > args.noisy_pct]
    if noisy:
        lines.append("")
        lines.append("Note: in %d of %d measured runs other processes used more than %.0f%% of "
                     "the machine's CPU (worst %.0f%%), even after retrying; treat those "
                     "numbers with care (see foreign_cpu_pct in the JSON)."
                     % (len(noisy), len(allruns), args.noisy_pct,
                        max(r["foreign_cpu_pct"] for r in noisy)))
    for s in res["skipped"]:
        lines.append("")
        lines.append("Skipped: " + s)
    for e in res["errors"]:
        lines.append("")
        lines.append("Error: " + e.splitlines()[0])
    return "\n".join(lines)


# --------------------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Benchmark bgw-proxy against nginx and HAProxy (see tests/bench/README.md).")
    ap.add_argument("--bgw", default=os.path.join(REPO, "build", "bin", "bgw-proxy"),
                    help="bgw-proxy binary (default: build/bin/bgw-proxy of this repo)")
    ap.add_argument("--bgw-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for bgw-proxy (repeatable)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test (~1-2 min): 1 round, 3 s runs, 1 s warm-up")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help="comma list of %s (default: all)" % ",".join(SCENARIOS))
    ap.add_argument("--contenders", default=",".join(CONTENDERS),
                    help="comma list of %s (default: all)" % ",".join(CONTENDERS))
    ap.add_argument("--conns", default="100,1000",
                    help="client connection levels for throughput (default 100,1000)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 2; quick 1)")
    ap.add_argument("--duration", type=int, help="seconds per measured run (default 10; quick 3)")
    ap.add_argument("--warmup", type=int, help="warm-up seconds before each run (default 5; "
                    "quick 1)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--workers", type=int, default=2, help="proxy workers (default 2)")
    ap.add_argument("--routes", type=int, default=10000,
                    help="route count for the routes scenario (default 10000; vs 10)")
    ap.add_argument("--routes-conns", type=int, default=100,
                    help="connections for the routes scenario (default 100)")
    ap.add_argument("--idle-conns", type=int, default=10000,
                    help="idle connections for the idle scenario (default 10000)")
    ap.add_argument("--idle-fresh", action="store_true",
                    help="idle scenario: hold never-used connections (default: one request each)")
    ap.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="wrk binary")
    ap.add_argument("--noisy-pct", type=float, default=10.0,
                    help="a run during which other processes used more than this %% of the "
                    "machine's CPU is repeated (default 10)")
    ap.add_argument("--noisy-retries", type=int, default=1,
                    help="how many times such a run is repeated (default 1; 0 = never)")
    ap.add_argument("--json", metavar="PATH", help="also write all results as JSON to PATH")
    ap.add_argument("--keep-tmp", action="store_true",
                    help="keep the temporary directory (configs, logs) for debugging")
    ap.add_argument("--max-time", type=int, default=1800,
                    help="abort the whole run after this many seconds (default 1800)")
    a = ap.parse_args(argv)
    a.rounds = a.rounds or (1 if a.quick else 2)
    a.duration = a.duration or (3 if a.quick else 10)
    a.warmup = a.warmup if a.warmup is not None else (1 if a.quick else 5)
    a.bgw = os.path.abspath(a.bgw)
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    a.contenders = [c for c in a.contenders.split(",") if c]
    for s in a.scenarios:
        if s not in SCENARIOS:
            ap.error("unknown scenario %r (choose from %s)" % (s, ", ".join(SCENARIOS)))
    for c in a.contenders:
        if c not in CONTENDERS:
            ap.error("unknown contender %r (choose from %s)" % (c, ", ".join(CONTENDERS)))
    try:
        a.conns = [int(x) for x in a.conns.split(",") if x]
    except ValueError:
        ap.error("--conns takes a comma list of integers")
    if not a.conns or min(a.conns) < 1 or a.rounds < 1 or a.duration < 1 or a.warmup < 0:
        ap.error("--conns/--rounds/--duration must be positive, --warmup >= 0")
    if a.routes < 11:
        ap.error("--routes must be more than 10")
    return a


def estimate_seconds(a):
    per = a.duration + a.warmup + 1.5
    t = 0.0
    if "throughput" in a.scenarios:
        t += a.rounds * len(a.conns) * len(a.contenders) * per
    if "routes" in a.scenarios:
        t += a.rounds * 2 * (per + 1)
    if "idle" in a.scenarios:
        t += len([c for c in a.contenders if c != "direct"]) * (3 + a.idle_conns / 4000.0)
    return t


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for tool in ("nginx", "haproxy", args.wrk):
        if shutil.which(tool) is None:
            sys.stderr.write("error: %s not found (apt-get install nginx-light haproxy wrk)\n"
                             % tool)
            return 2
    global NOFILE
    got = idle_conns.raise_nofile(NOFILE)
    if got < NOFILE:
        log("WARNING: RLIMIT_NOFILE is %d and cannot be raised to %d (the hard limit needs "
            "root with CAP_SYS_RESOURCE); every process started gets %d" % (got, NOFILE, got))
        NOFILE = got

    bench = Bench(args)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    def on_alarm(_signum, _frame):
        raise SystemExit("error: --max-time %ds exceeded, aborting" % args.max_time)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.max_time)

    res = bench.results
    rc = 0
    log("plan: scenarios=%s contenders=%s conns=%s rounds=%d duration=%ds warmup=%ds; "
        "about %.0f s" % (",".join(args.scenarios), ",".join(args.contenders),
                          ",".join(map(str, args.conns)), args.rounds, args.duration,
                          args.warmup, estimate_seconds(args)))
    try:
        res["machine"] = machine_info(args)
        res["settings"] = {k: getattr(args, k) for k in (
            "scenarios", "contenders", "conns", "rounds", "duration", "warmup", "threads",
            "workers", "routes", "routes_conns", "idle_conns", "idle_fresh", "bgw", "quick")}
        res["settings"]["body_bytes"] = len(BODY)
        res["settings"]["nofile"] = NOFILE
        bench.sysctls()
        bench.setup()
        if "throughput" in args.scenarios:
            bench.throughput()
        if "routes" in args.scenarios:
            bench.routes()
        if "idle" in args.scenarios:
            bench.idle()
    except StartError as e:
        res["errors"].append("upstream failed to start: %s" % e)
        log("FATAL: upstream failed to start: %s" % e)
        rc = 1
    except BaseException as e:   # noqa: B902 -- report, clean up, re-raise
        res["errors"].append("aborted: %s: %s" % (type(e).__name__, e))
        signal.alarm(0)
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        bench.cleanup()
        if args.json:
            write_json(args.json, res)
        raise
    signal.alarm(0)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    bench.cleanup()
    res["wall_seconds"] = round(time.monotonic() - T0, 1)
    if "machine" in res:
        print()
        print(markdown(args, res))
        sys.stdout.flush()
    if args.json:
        write_json(args.json, res)
        log("results written to %s" % args.json)
    if res["errors"]:
        rc = 1
    log("done in %.0f s%s" % (time.monotonic() - T0, " with errors" if rc else ""))
    return rc


def write_json(path, res):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
