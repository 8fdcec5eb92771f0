"""Observability end to end: a real Prometheus (Debian's prometheus binary, on a free loopback port, 1 s
scrapes) scrapes bgw-control and a managed bgw-proxy under traffic. Every expression of the Grafana
dashboard (deploy/grafana/) and every rule of the alert rules (deploy/prometheus/, loaded by that Prometheus)
is evaluated through the HTTP API: none errors, and the core panels return data. Both /metrics pass
`promtool check metrics` without a warning and carry every family of the contract (labelled policy series at
0 for every configured route and service). The proxy writes its JSON access log and sends a W3C traceparent
upstream."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

from control_harness import Control
from harness import HERE, Conn, Proxy, Upstream, free_port, parse_prometheus, record_header, wait_until

ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "bgw-dashboard.json")
ALERTS = os.path.join(ROOT, "deploy", "prometheus", "bgw-alerts.yml")
RATE_INTERVAL = "5s"      # what Grafana's $__rate_interval is for a 1 s scrape interval, rounded up

PROXY_FAMILIES = [
    "bgw_http_requests_total", "bgw_http_request_duration_seconds", "bgw_http_requests_in_flight",
    "bgw_downstream_connections_active", "bgw_upstream_requests_total", "bgw_upstream_request_duration_seconds",
    "bgw_upstream_connections_active", "bgw_upstream_endpoint_healthy", "bgw_retries_total",
    "bgw_circuit_breaker_open", "bgw_outlier_ejections_total", "bgw_ratelimit_rejected_total",
    "bgw_auth_rejected_total", "bgw_config_version_info", "bgw_config_updates_total",
    "bgw_control_plane_connected", "bgw_build_info", "process_resident_memory_bytes",
    "process_cpu_seconds_total", "process_open_fds", "process_start_time_seconds",
]
CONTROL_FAMILIES = [
    "bgw_xds_connected_proxies", "bgw_xds_pushes_total", "bgw_xds_push_duration_seconds",
    "bgw_config_convergence_seconds", "bgw_xds_nacks_total", "bgw_k8s_watch_events_total",
    "bgw_k8s_relists_total", "bgw_health_checks_total", "bgw_admin_requests_total", "bgw_xds_proxies",
    "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds", "process_start_time_seconds",
]
# Panels that must show data under traffic (the others may rightly be empty: no retries, no k8s, ...).
CORE_PANELS = ["Request rate", "Latency p50 / p95 / p99", "Error rate (5xx)", "Resident memory", "CPU",
               "Connected proxies", "Config sync state", "Active connections and in-flight requests",
               "Service health", "Proxy config stream"]
TRACEPARENT_RE = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def prometheus_bin():
    return shutil.which("prometheus") or "/usr/bin/prometheus"


def promtool_bin():
    return shutil.which("promtool") or "/usr/bin/promtool"


def http_get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


class Traffic(threading.Thread):
    """Keep-alive requests in a loop until stopped: mostly 200s, some 502s, 404s and 503s."""

    TARGETS = ["/api/echo"] * 8 + ["/api/status/503", "/nope", "/down/x"]

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop_flag = threading.Event()
        self.sent = 0
        self.errors = []

    def run(self):
        conn = None
        i = 0
        while not self.stop_flag.is_set():
            try:
                if conn is None:
                    conn = Conn(self.port, timeout=5)
                conn.send(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % self.TARGETS[i % len(self.TARGETS)].encode())
                r = conn.read_response()
                self.sent += 1
                if r.header("connection") == "close":
                    conn.close()
                    conn = None
            except Exception as e:      # a failed request is reported by the test, the load goes on
                self.errors.append(repr(e))
                if conn:
                    conn.close()
                conn = None
            i += 1
            self.stop_flag.wait(0.003)  # pacing (~300 requests/s), not synchronisation
        if conn:
            conn.close()


class ObservabilityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for b in (prometheus_bin(), promtool_bin()):
            if not os.access(b, os.X_OK):
                raise AssertionError("%s not found: install Debian's prometheus package (make deps)" % b)
        cls.tmp = tempfile.mkdtemp(prefix="bgw-obs-")
        cls.upstream = Upstream().start()
        doc = {"services": [{"name": "main", "endpoints": [cls.upstream.addr()]},
                            {"name": "down", "endpoints": ["127.0.0.1:%d" % free_port()]}],
               "routes": [{"name": "api", "match": {"path_prefix": "/api"}, "service": "main"},
                          {"name": "down", "match": {"path_prefix": "/down"}, "service": "down"}]}
        cls.cp = Control(bootstrap=doc).start()
        cls.access_log = os.path.join(cls.tmp, "access.log")
        cls.proxy = Proxy(None, workers=2, omit=("config",),
                          args=["--control-plane", "127.0.0.1:%d" % cls.cp.xds_port, "--node-id", "obs-1"],
                          env={"BGW_ACCESS_LOG": cls.access_log}).start()
        cls.traffic = Traffic(cls.proxy.port)
        cls.traffic.start()
        cls.prom = None
        cls.prom_port = free_port()
        cfg = os.path.join(cls.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "rule_files:\n  - %s\n"
                    "scrape_configs:\n"
                    "  - job_name: bgw-proxy\n    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                    "  - job_name: bgw-control\n    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                    % (ALERTS, cls.proxy.admin_port, cls.cp.admin_port))
        cls.prom_log = open(os.path.join(cls.tmp, "prometheus.log"), "wb")
        cls.prom = subprocess.Popen(
            [prometheus_bin(), "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(cls.tmp, "tsdb"),
             "--web.listen-address=127.0.0.1:%d" % cls.prom_port, "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=cls.prom_log)
        try:
            wait_until(lambda: cls._ready(), timeout=20, interval=0.1, message="Prometheus ready")
            # enough samples for rates over 5 s on both targets
            wait_until(lambda: cls._has_data('sum(rate(bgw_http_requests_total[5s])) > 0')
                       and cls._has_data('rate(process_cpu_seconds_total{job="bgw-control"}[5s])')
                       and cls._has_data('rate(process_cpu_seconds_total{job="bgw-proxy"}[5s])'),
                       timeout=25, interval=0.25, message="rates from both targets in Prometheus")
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.traffic.stop_flag.set()
        cls.traffic.join(10)
        if cls.prom and cls.prom.poll() is None:
            cls.prom.terminate()
            try:
                cls.prom.wait(10)
            except subprocess.TimeoutExpired:
                cls.prom.kill()
                cls.prom.wait()
        cls.prom = None
        cls.prom_log.close()
        if cls.proxy.alive():
            cls.proxy.stop()
        cls.proxy.cleanup()
        if cls.cp.alive():
            cls.cp.stop()
        cls.cp.cleanup()
        cls.upstream.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- Prometheus API

    @classmethod
    def _ready(cls):
        if cls.prom.poll() is not None:
            with open(os.path.join(cls.tmp, "prometheus.log")) as f:
                raise AssertionError("prometheus exited with %d:\n%s" % (cls.prom.returncode, f.read()[-3000:]))
        try:
            return http_get("http://127.0.0.1:%d/-/ready" % cls.prom_port, timeout=1)[0] == 200
        except OSError:
            return False

    @classmethod
    def query(cls, expr):
        """(status, result list or error text) of an instant query."""
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (cls.prom_port, urllib.parse.urlencode({"query": expr}))
        try:
            _, body = http_get(url)
        except urllib.error.HTTPError as e:
            body = e.read()
        d = json.loads(body)
        if d.get("status") != "success":
            return "error", "%s: %s" % (d.get("errorType"), d.get("error"))
        return "success", d["data"]["result"]

    @classmethod
    def _has_data(cls, expr):
        st, res = cls.query(expr)
        return st == "success" and len(res) > 0

    # -- tests

    def test_dashboard_expressions_evaluate_and_core_panels_have_data(self):
        with open(DASHBOARD) as f:
            dash = json.load(f)
        subst = {"$__rate_interval": RATE_INTERVAL, "$instance": ".*", "$route": ".*", "$service": ".*"}

        def expand(expr):
            for k, v in subst.items():
                expr = expr.replace(k, v)
            self.assertNotIn("$", expr.replace("$1", ""), "a variable left in %r" % expr)
            return expr

        names = [v["name"] for v in dash["templating"]["list"]]
        self.assertEqual(names, ["datasource", "instance", "route", "service"])
        # variables: label_values(METRIC, LABEL) has values
        for v in dash["templating"]["list"][1:]:
            m = re.match(r"^label_values\((.*), (\w+)\)$", v["definition"])
            self.assertIsNotNone(m, v["definition"])
            st, res = self.query("count by (%s) (%s)" % (m.group(2), expand(m.group(1))))
            self.assertEqual(st, "success", res)
            self.assertTrue(res, "variable %s has no values" % v["name"])
        panels = [p for p in dash["panels"] if p["type"] != "row"]
        rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
        self.assertEqual(rows, ["Overview", "Routes and services", "Upstreams and health", "Policies",
                                "Control plane", "Process"])
        seen_core = set()
        empty = []
        for p in panels:
            has_data = False
            for t in p["targets"]:
                self.assertIn("$__rate_interval", t["expr"]) if "rate(" in t["expr"] else None
                st, res = self.query(expand(t["expr"]))
                self.assertEqual(st, "success", "panel %r: %s: %s" % (p["title"], t["expr"], res))
                has_data = has_data or bool(res)
            if p["title"] in CORE_PANELS:
                # quantiles and ratios need a window with requests: retry a little while traffic flows
                if not has_data:
                    has_data = wait_until(lambda: all(self._has_data(expand(t["expr"])) for t in p["targets"][:1]),
                                          timeout=5, interval=0.25, message="data for %r" % p["title"])
                self.assertTrue(has_data, "core panel %r has no data" % p["title"])
                seen_core.add(p["title"])
            elif not has_data:
                empty.append(p["title"])
        self.assertEqual(seen_core, set(CORE_PANELS))
        # the values make sense: the error rate sees the 502s and 503s, the latency is a duration
        st, res = self.query('sum(rate(bgw_http_requests_total{code=~"5.."}[5s])) / sum(rate(bgw_http_requests_total[5s]))')
        self.assertGreater(float(res[0]["value"][1]), 0.05)
        self.assertLess(float(res[0]["value"][1]), 0.5)
        st, res = self.query('sum(bgw_xds_connected_proxies)')
        self.assertEqual(float(res[0]["value"][1]), 1)
        st, res = self.query('sum(bgw_xds_proxies{status="SYNCED"})')
        self.assertEqual(float(res[0]["value"][1]), 1)

    def test_alert_rules_load_and_evaluate(self):
        def rules():
            _, body = http_get("http://127.0.0.1:%d/api/v1/rules" % self.prom_port)
            return [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]

        # every rule evaluated at least once, without an error
        rs = wait_until(lambda: (lambda x: x if x and all(r.get("lastEvaluation", "").startswith("2") and
                                                          not r["lastEvaluation"].startswith("0001")
                                                          for r in x) else None)(rules()),
                        timeout=10, interval=0.2, message="every rule evaluated")
        names = sorted(r["name"] for r in rs)
        for want in ["BgwLatencyP99High", "BgwLatencyP99Critical", "BgwErrorRateHigh", "BgwErrorRateCritical",
                     "BgwMemoryHigh", "BgwCpuHigh", "BgwProxyNotSynced", "BgwControlPlaneDown", "BgwConfigNacked",
                     "BgwServiceNoHealthyEndpoint"]:
            self.assertIn(want, names)
        for r in rs:
            self.assertEqual(r["health"], "ok", "%s: %s" % (r["name"], r.get("lastError")))
            st, res = self.query(r["query"])
            self.assertEqual(st, "success", "%s: %s" % (r["name"], res))
        # The expressions see the live data: the "down" service (no listener behind its endpoint) is not a
        # health problem (its endpoint is healthy as far as the config says), the 503/502 share is over 5%.
        st, res = self.query("max by (service) (bgw_upstream_endpoint_healthy) == 0")
        self.assertEqual(res, [])
        st, res = self.query(next(r["query"] for r in rs if r["name"] == "BgwErrorRateCritical").replace("[5m]", "[5s]"))
        self.assertEqual(len(res), 1, res)
        st, res = self.query(next(r["query"] for r in rs if r["name"] == "BgwControlPlaneDown"))
        self.assertEqual(res, [])

    def test_metrics_pass_promtool_and_carry_the_contract_families(self):
        _, px = http_get("http://127.0.0.1:%d/metrics" % self.proxy.admin_port)
        _, cp = http_get("http://127.0.0.1:%d/metrics" % self.cp.admin_port)
        for name, text, families in (("bgw-proxy", px, PROXY_FAMILIES), ("bgw-control", cp, CONTROL_FAMILIES)):
            p = subprocess.run([promtool_bin(), "check", "metrics"], input=text, capture_output=True, timeout=30)
            self.assertEqual((p.returncode, p.stdout, p.stderr), (0, b"", b""), name)
            m = parse_prometheus(text.decode())
            for fam in families:
                self.assertIn(fam, m.types, "%s: no TYPE for %s" % (name, fam))
        m = parse_prometheus(px.decode())

        def value(name, **labels):
            ss = [s for s in m if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
            self.assertEqual(len(ss), 1, "%s %r: %r" % (name, labels, ss))
            return ss[0].value

        for route in ("api", "down"):
            self.assertEqual(value("bgw_retries_total", route=route), 0)
            self.assertEqual(value("bgw_ratelimit_rejected_total", route=route), 0)
        for service in ("main", "down"):
            self.assertEqual(value("bgw_circuit_breaker_open", service=service), 0)
            self.assertEqual(value("bgw_outlier_ejections_total", service=service), 0)
            value("bgw_upstream_connections_active", service=service)
        self.assertEqual(value("bgw_upstream_endpoint_healthy", service="main", endpoint=self.upstream.addr()), 1)
        self.assertGreater(value("bgw_http_requests_total", route="no_route", service="", method="GET", code="404"), 0)
        self.assertEqual(value("bgw_control_plane_connected"), 1)
        self.assertGreater(value("bgw_access_log_records_total"), 0)
        self.assertEqual(value("bgw_access_log_dropped_total"), 0)
        # histogram buckets start at 0.0001 s on both daemons
        self.assertIn(b'bgw_http_request_duration_seconds_bucket{route="api",service="main",le="0.0001"}', px)
        self.assertIn(b'bgw_config_convergence_seconds_bucket{le="0.0001"}', cp)

    def test_access_log_and_traceparent(self):
        given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        cases = [("obs-keep", given, "4bf92f3577b34da6a3ce929d0e0e4736"),
                 ("obs-bad", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", None),
                 ("obs-none", None, None)]
        for rid, tp, _ in cases:
            headers = [("X-Request-Id", rid), ("tracestate", "vendor=1")]
            if tp:
                headers.append(("traceparent", tp))
            r = self.proxy.request("GET", "/api/echo?secret=1", headers=headers)
            self.assertEqual(r.status, 200)
        sent = {}
        for rid, tp, keep in cases:
            rec = self.upstream.wait_records(1, pred=lambda x, rid=rid: record_header(x, "x-request-id") == [rid])[0]
            tps = record_header(rec, "traceparent")
            self.assertEqual(len(tps), 1, rec["headers"])
            self.assertRegex(tps[0], TRACEPARENT_RE)
            self.assertNotEqual(tps[0][36:52], "00f067aa0ba902b7")            # a new parent id every time
            if keep:
                self.assertEqual(tps[0][3:35], keep)
                self.assertEqual(tps[0][53:], "01")
                self.assertEqual(record_header(rec, "tracestate"), ["vendor=1"])
            else:
                self.assertNotEqual(tps[0][3:35], "4bf92f3577b34da6a3ce929d0e0e4736")
                self.assertEqual(record_header(rec, "tracestate"), [])      # belonged to the replaced trace
            sent[rid] = tps[0][3:35]

        def lines():
            with open(self.access_log) as f:
                out = {}
                for line in f:
                    d = json.loads(line)
                    if d["request_id"] in sent:
                        out[d["request_id"]] = d
                return out if len(out) == len(sent) else None

        got = wait_until(lines, timeout=5, message="access log lines of the 3 requests")
        for rid, d in got.items():
            self.assertEqual(set(d), {"time", "request_id", "trace_id", "route", "service", "endpoint", "method",
                                      "path", "status", "duration_s", "upstream_duration_s", "bytes_in",
                                      "bytes_out"})
            self.assertEqual(d["trace_id"], sent[rid])
            self.assertEqual((d["route"], d["service"], d["endpoint"]), ("api", "main", self.upstream.addr()))
            self.assertEqual((d["method"], d["path"], d["status"]), ("GET", "/api/echo", 200))
            self.assertRegex(d["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertGreater(d["bytes_out"], 0)
            self.assertGreater(d["duration_s"], 0)
            self.assertGreater(d["upstream_duration_s"], 0)
            self.assertGreaterEqual(d["duration_s"], d["upstream_duration_s"])
        self.assertEqual(self.traffic.errors, [])
        self.assertGreater(self.traffic.sent, 100)


if __name__ == "__main__":
    unittest.main()
