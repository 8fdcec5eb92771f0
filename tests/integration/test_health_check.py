"""Active health checks end to end: the real bgw-control checks real upstreams whose health endpoint can be
flipped to fail (or to hang past the timeout) and a managed bgw-proxy follows: an endpoint failing its checks
leaves rotation (no request reaches it) within interval x unhealthy_threshold plus one push, comes back after
healthy_threshold passes, bgwctl endpoints and the admin API show it, bgw_health_checks_total counts, and a
service with no healthy endpoint answers 503 no_healthy_upstream. Endpoints that come from Kubernetes (the
API simulator of tests/k8s) are checked the same way."""

import http.server
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "k8s"))
from k8s_sim import ApiSim, endpoint, endpointslice, service  # noqa: E402

from control_harness import Control  # noqa: E402
from ctl_harness import parse_table, run_ctl  # noqa: E402
from harness import Proxy, free_port, metric, wait_until  # noqa: E402

INTERVAL_MS = 200
TIMEOUT_MS = 100
HEALTHY_THRESHOLD = 2
UNHEALTHY_THRESHOLD = 2
# One push (builder window, config stream, proxy apply) plus scheduling slack, generous enough for ASan.
PUSH_MARGIN_S = 1.5


class FlipUpstream:
    """An HTTP/1.1 upstream on a free port. GET /healthz answers by mode: "ok" 200, "fail" 503, "hang" waits
    well past the checker's timeout. Any other path answers 200 with the upstream's name and is counted."""

    def __init__(self, name, host="127.0.0.1", port=0):
        self.name = name
        self.mode = "ok"
        self.served = 0
        self.checks = 0
        self.lock = threading.Lock()
        up = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path == "/healthz":
                    with up.lock:
                        up.checks += 1
                        mode = up.mode
                    if mode == "hang":
                        time.sleep(5 * TIMEOUT_MS / 1000.0)
                    status = 503 if mode == "fail" else 200
                    body = b"unhealthy\n" if mode == "fail" else b"ok\n"
                else:
                    with up.lock:
                        up.served += 1
                    status, body = 200, up.name.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def addr(self):
        return "%s:%d" % self.server.server_address[:2]

    def set(self, mode):
        with self.lock:
            self.mode = mode

    def count(self):
        with self.lock:
            return self.served

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def document(addrs):
    return {"services": [{"name": "web", "endpoints": list(addrs),
                          "health_check": {"path": "/healthz", "interval_ms": INTERVAL_MS,
                                           "timeout_ms": TIMEOUT_MS, "healthy_threshold": HEALTHY_THRESHOLD,
                                           "unhealthy_threshold": UNHEALTHY_THRESHOLD}}],
            "routes": [{"name": "all", "match": {"path_prefix": "/"}, "service": "web"}]}


class HealthCheckTest(unittest.TestCase):
    def setUp(self):
        self.a = FlipUpstream("a")
        self.b = FlipUpstream("b")
        self.cp = Control(bootstrap=document([self.a.addr(), self.b.addr()])).start()
        self.proxy = Proxy(None, workers=1, omit=("config",),
                           args=["--control-plane", "127.0.0.1:%d" % self.cp.xds_port, "--node-id", "hc"]).start()

    def tearDown(self):
        if self.proxy.alive():
            self.assertEqual(self.proxy.stop(), 0, self.proxy.stderr_tail())
        self.proxy.cleanup()
        if self.cp.alive():
            self.assertEqual(self.cp.stop(), 0, self.cp.stderr_tail())
        self.cp.cleanup()
        self.a.stop()
        self.b.stop()

    # -- helpers

    def proxy_health(self):
        """{address: healthy} of service web in the config the proxy serves."""
        cfg = self.proxy.admin_json("/config")
        for s in cfg.get("services", []):
            if s["name"] == "web":
                return {e["address"]: e["healthy"] for e in s["endpoints"]}
        return {}

    def wait_proxy_health(self, want, timeout):
        """Poll until the proxy's config says want; the seconds it took."""
        t0 = time.monotonic()
        wait_until(lambda: self.proxy_health() == want, timeout, interval=0.01,
                   message="proxy config endpoints %r" % want)
        return time.monotonic() - t0

    def get(self, n=1):
        """n requests through the proxy: their statuses and bodies."""
        out = []
        for _ in range(n):
            r, body = self.request()
            out.append((r.status, body))
        return out

    def request(self):
        r = self.proxy.request("GET", "/x")
        return r, bytes(r.body)

    def wait_both_served(self):
        def served():
            self.get(2)
            return self.a.count() > 0 and self.b.count() > 0
        wait_until(served, 10, message="both upstreams served")

    def endpoints_api(self):
        return {i["address"]: i for i in self.cp.get_json("/v1/services/web/endpoints")["items"]}

    def ctl(self, *args):
        return run_ctl(["--server", "http://127.0.0.1:%d" % self.cp.admin_port] + list(args))

    def both_healthy(self):
        return {self.a.addr(): True, self.b.addr(): True}

    # -- tests

    def test_failing_endpoint_leaves_rotation_and_returns(self):
        self.wait_proxy_health(self.both_healthy(), 10)
        self.wait_both_served()

        # B's health endpoint starts failing: out of the proxy's rotation within the bound.
        self.b.set("fail")
        took = self.wait_proxy_health({self.a.addr(): True, self.b.addr(): False}, 10)
        bound = INTERVAL_MS * UNHEALTHY_THRESHOLD / 1000.0
        self.assertLess(took, bound + PUSH_MARGIN_S, "left rotation after %.3fs" % took)
        # It took at least unhealthy_threshold checks, the first possibly at once.
        self.assertGreaterEqual(took, INTERVAL_MS * (UNHEALTHY_THRESHOLD - 1) / 1000.0 * 0.8)

        before_a, before_b = self.a.count(), self.b.count()
        got = self.get(20)
        self.assertEqual([s for (s, _) in got], [200] * 20)
        self.assertEqual(self.b.count(), before_b, "no request reaches the unhealthy endpoint")
        self.assertEqual(self.a.count(), before_a + 20)

        # The admin API and bgwctl show it.
        eps = self.endpoints_api()
        self.assertFalse(eps[self.b.addr()]["healthy"])
        self.assertEqual(eps[self.b.addr()]["last_error"], "HTTP 503")
        self.assertEqual(eps[self.b.addr()]["source"], "static")
        self.assertTrue(eps[self.a.addr()]["healthy"])
        self.assertIsNone(eps[self.a.addr()]["last_error"])
        self.assertRegex(eps[self.a.addr()]["last_check"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        rc, out, err = self.ctl("endpoints", "web")
        self.assertEqual(rc, 0, err)
        cols, rows = parse_table(out)
        self.assertEqual(cols, ["ADDRESS", "SOURCE", "HEALTHY", "LAST CHECK"])
        by = {r["ADDRESS"]: r for r in rows}
        self.assertEqual(by[self.b.addr()]["HEALTHY"], "no")
        self.assertEqual(by[self.a.addr()]["HEALTHY"], "yes")
        self.assertEqual(by[self.b.addr()]["SOURCE"], "static")
        self.assertNotEqual(by[self.b.addr()]["LAST CHECK"], "-")
        rc, out, err = self.ctl("endpoints", "web", "-o", "json")
        self.assertEqual(rc, 0, err)
        items = {i["address"]: i for i in json.loads(out)["items"]}
        self.assertEqual(items[self.b.addr()]["last_error"], "HTTP 503")
        rc, out, err = self.ctl("endpoints", "nosuch")
        self.assertEqual(rc, 1)
        rc, out, err = self.ctl("endpoints")
        self.assertEqual(rc, 2)

        # The checks were counted, failures included.
        m = self.cp.metrics()
        self.assertGreaterEqual(metric(m, "bgw_health_checks_total", service="web", result="failure"),
                                UNHEALTHY_THRESHOLD)
        self.assertGreaterEqual(metric(m, "bgw_health_checks_total", service="web", result="success"), 1)

        # B passes again: back after healthy_threshold passes, and it serves again.
        self.b.set("ok")
        took = self.wait_proxy_health(self.both_healthy(), 10)
        self.assertLess(took, INTERVAL_MS * HEALTHY_THRESHOLD / 1000.0 + PUSH_MARGIN_S,
                        "back in rotation after %.3fs" % took)
        before_b = self.b.count()
        def b_serves():
            self.get(2)
            return self.b.count() > before_b
        wait_until(b_serves, 10, message="B serves again")
        self.assertIsNone(self.endpoints_api()[self.b.addr()]["last_error"])

    def test_timeout_counts_as_failure(self):
        self.wait_proxy_health(self.both_healthy(), 10)
        self.b.set("hang")
        took = self.wait_proxy_health({self.a.addr(): True, self.b.addr(): False}, 10)
        self.assertLess(took, (INTERVAL_MS * UNHEALTHY_THRESHOLD + TIMEOUT_MS) / 1000.0 + PUSH_MARGIN_S)
        self.assertEqual(self.endpoints_api()[self.b.addr()]["last_error"], "timeout after %d ms" % TIMEOUT_MS)
        rc, out, err = self.ctl("endpoints", "web")
        by = {r["ADDRESS"]: r for r in parse_table(out)[1]}
        self.assertEqual(by[self.b.addr()]["HEALTHY"], "no")

    def test_no_healthy_endpoint_answers_503(self):
        self.wait_proxy_health(self.both_healthy(), 10)
        self.a.set("fail")
        self.b.set("fail")
        self.wait_proxy_health({self.a.addr(): False, self.b.addr(): False}, 10)
        before = (self.a.count(), self.b.count())
        r, body = self.request()
        self.assertEqual(r.status, 503)
        self.assertEqual(json.loads(body)["error"], "no_healthy_upstream")
        self.assertEqual((self.a.count(), self.b.count()), before, "no request sent to a failing endpoint")
        # One endpoint recovers: traffic flows again, to it only.
        self.a.set("ok")
        self.wait_proxy_health({self.a.addr(): True, self.b.addr(): False}, 10)
        self.assertEqual([s for (s, _) in self.get(5)], [200] * 5)
        self.assertEqual(self.b.count(), before[1])

    def test_removed_endpoint_stops_being_checked_and_new_one_starts(self):
        self.wait_proxy_health(self.both_healthy(), 10)
        self.b.set("fail")
        self.wait_proxy_health({self.a.addr(): True, self.b.addr(): False}, 10)
        # B leaves the document while unhealthy; C joins (checked at once, healthy from the start).
        c = FlipUpstream("c")
        try:
            doc = document([self.a.addr(), c.addr()])
            r = self.cp.call("PUT", "/v1/services/web", doc["services"][0])
            self.assertIn(r.status, (200, 201), r)
            self.wait_proxy_health({self.a.addr(): True, c.addr(): True}, 10)
            wait_until(lambda: c.checks > 0, 5, message="C checked")
            checks_b = self.b.checks
            # Nobody checks B any more (several intervals pass while C keeps being checked).
            n = c.checks
            wait_until(lambda: c.checks >= n + 3, 5, message="C checked again")
            self.assertLessEqual(self.b.checks, checks_b + 1)   # at most one check was already in flight
            # B comes back later: a new endpoint again, healthy at once (its old verdict forgotten).
            self.b.set("ok")
            doc = document([self.a.addr(), self.b.addr(), c.addr()])
            self.cp.call("PUT", "/v1/services/web", doc["services"][0])
            self.wait_proxy_health({self.a.addr(): True, self.b.addr(): True, c.addr(): True}, 10)
        finally:
            c.stop()


class KubernetesHealthCheckTest(unittest.TestCase):
    """A service with a kubernetes reference: its pods' endpoints are checked like static ones."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bgw-hc-k8s-")
        port = free_port()
        self.pods = [FlipUpstream("pod21", "127.0.0.21", port), FlipUpstream("pod22", "127.0.0.22", port)]
        self.sim = ApiSim(token="hc-t0ken").start()
        self.sim.apply(service("shop", "web", [("http", 80, "web")]))
        self.port = port
        self.set_slice([21, 22])
        doc = document([])
        del doc["services"][0]["endpoints"]
        doc["services"][0]["kubernetes"] = {"namespace": "shop", "service": "web", "port": "http"}
        self.cp = Control(bootstrap=doc,
                          args=["--kubeconfig", self.sim.kubeconfig(os.path.join(self.tmp, "kubeconfig"))]).start()
        self.proxy = Proxy(None, workers=1, omit=("config",),
                           args=["--control-plane", "127.0.0.1:%d" % self.cp.xds_port, "--node-id", "hc-k8s"]).start()

    def tearDown(self):
        if self.proxy.alive():
            self.assertEqual(self.proxy.stop(), 0, self.proxy.stderr_tail())
        self.proxy.cleanup()
        if self.cp.alive():
            self.assertEqual(self.cp.stop(), 0, self.cp.stderr_tail())
        self.cp.cleanup()
        for p in self.pods:
            p.stop()
        self.sim.stop()
        shutil.rmtree(self.tmp, True)

    def set_slice(self, ns):
        self.sim.apply(endpointslice("shop", "web-a", "web", [endpoint("127.0.0.%d" % n, True) for n in ns],
                                     [("http", self.port)]))

    def proxy_health(self):
        for s in self.proxy.admin_json("/config").get("services", []):
            if s["name"] == "web":
                return {e["address"]: e["healthy"] for e in s["endpoints"]}
        return {}

    def test_kubernetes_endpoints_are_checked(self):
        a, b = (p.addr() for p in self.pods)
        wait_until(lambda: self.proxy_health() == {a: True, b: True}, 10, message="both pods in rotation")
        self.pods[1].set("fail")
        wait_until(lambda: self.proxy_health() == {a: True, b: False}, 10, message="pod22 out of rotation")
        items = {i["address"]: i for i in self.cp.get_json("/v1/services/web/endpoints")["items"]}
        self.assertEqual(items[b]["source"], "kubernetes")
        self.assertFalse(items[b]["healthy"])
        self.assertEqual(items[b]["last_error"], "HTTP 503")
        self.assertTrue(items[a]["healthy"])
        rc, out, err = run_ctl(["--server", "http://127.0.0.1:%d" % self.cp.admin_port, "endpoints", "web"])
        self.assertEqual(rc, 0, err)
        by = {r["ADDRESS"]: r for r in parse_table(out)[1]}
        self.assertEqual((by[b]["SOURCE"], by[b]["HEALTHY"]), ("kubernetes", "no"))
        before = self.pods[1].count()
        for _ in range(10):
            self.assertEqual(self.proxy.request("GET", "/x").status, 200)
        self.assertEqual(self.pods[1].count(), before)

        # The pod leaves the slice while unhealthy, then comes back healthy: in rotation at once, its old
        # verdict forgotten.
        self.set_slice([21])
        wait_until(lambda: self.proxy_health() == {a: True}, 10, message="pod22 gone")
        self.pods[1].set("ok")
        self.set_slice([21, 22])
        wait_until(lambda: self.proxy_health() == {a: True, b: True}, 10, message="pod22 back")


if __name__ == "__main__":
    unittest.main()
