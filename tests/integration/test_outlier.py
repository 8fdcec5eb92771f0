"""Outlier detection in bgw-proxy: an endpoint failing consecutive_5xx times is ejected and comes back
after base_ejection_ms; max_ejection_percent bounds the ejected share; panic mode keeps a fully ejected
service served; ejections survive a config reload."""

import time
import unittest

import harness
from harness import Conn, metric, route, service, wait_until


def od(consecutive=3, base_ms=1000, pct=50):
    return {"consecutive_5xx": consecutive, "base_ejection_ms": base_ms, "max_ejection_percent": pct}


class OutlierTest(harness.ProxyTestCase):
    def setUp(self):
        self.up = self.start_upstream("a", "b", "c")

    def start(self, services, routes, workers=1):
        self.config = {"services": services, "routes": routes}
        self.proxy = self.start_proxy(self.config, workers=workers)
        return self.proxy

    def get(self, target):
        with Conn(self.proxy.port) as c:
            return c.request("GET", target)

    def ejections(self, svc):
        return metric(self.proxy.metrics(), "bgw_outlier_ejections_total", service=svc) or 0

    def served_by(self, target, n):
        return [self.get(target).header("X-Upstream") for _ in range(n)]

    def test_failing_endpoint_is_ejected_and_returns(self):
        self.start([service("s", self.up.addr("a"), self.up.addr("b"), outlier_detection=od(3, 1500, 50))],
                   [route("r", "s", path_prefix="/")])
        self.up.set_mode("a", "status/503")
        statuses = [self.get("/echo").status for _ in range(6)]    # round robin: 3 on a, 3 on b
        self.assertEqual(sorted(statuses), [200, 200, 200, 503, 503, 503])
        self.assertEqual(self.ejections("s"), 1)
        t_ejected = time.monotonic()
        # ejected: everything goes to b
        self.up.clear()
        self.assertEqual(self.served_by("/echo", 6), ["b"] * 6)
        self.assertEqual([r["listener"] for r in self.up.records()], ["b"] * 6)
        # it comes back after the ejection time
        wait_until(lambda: self.get("/echo").header("X-Upstream") == "a", timeout=5.0, message="a back")
        self.assertGreaterEqual(time.monotonic() - t_ejected, 1.0)
        self.assertEqual(self.ejections("s"), 1)

    def test_connect_failures_and_resets_count(self):
        self.start([service("s", self.up.addr("a"), self.up.addr("b"), outlier_detection=od(2, 60000, 50))],
                   [route("r", "s", path_prefix="/")])
        self.up.set_mode("a", "reset", partial=1)
        for _ in range(4):
            self.get("/echo")
        self.assertEqual(self.ejections("s"), 1)
        self.assertEqual(self.served_by("/echo", 4), ["b"] * 4)

    def test_max_ejection_percent(self):
        # three endpoints, two failing, 30%: only one may be ejected; the other keeps its share
        self.start([service("s", self.up.addr("a"), self.up.addr("b"), self.up.addr("c"),
                            outlier_detection=od(2, 60000, 30))],
                   [route("r", "s", path_prefix="/")])
        self.up.set_mode("a", "status/503")
        self.up.set_mode("b", "status/503")
        for _ in range(12):
            self.get("/echo")
        self.assertEqual(self.ejections("s"), 1)
        self.up.clear()
        self.up.set_mode("a", "status/503")
        self.up.set_mode("b", "status/503")
        for _ in range(8):
            self.get("/echo")
        listeners = {r["listener"] for r in self.up.records()}
        self.assertEqual(len(listeners), 2)          # one of a/b is out, the other and c still serve
        self.assertIn("c", listeners)

    def test_panic_mode_serves_a_fully_ejected_service(self):
        self.start([service("s", self.up.addr("a"), self.up.addr("b"), outlier_detection=od(2, 60000, 100))],
                   [route("r", "s", path_prefix="/")])
        self.up.set_mode("a", "status/503")
        self.up.set_mode("b", "status/503")
        for _ in range(4):
            self.get("/echo")
        self.assertEqual(self.ejections("s"), 2)
        # both ejected: below the panic threshold, traffic goes to all endpoints anyway
        self.up.clear()
        got = [self.get("/echo") for _ in range(4)]
        self.assertEqual({r.header("X-Upstream") for r in got}, {"a", "b"})
        self.assertEqual({r.status for r in got}, {200})

    def test_ejection_survives_a_config_reload(self):
        p = self.start([service("s", self.up.addr("a"), self.up.addr("b"), outlier_detection=od(2, 60000, 50))],
                       [route("r", "s", path_prefix="/")])
        self.up.set_mode("a", "status/503")
        for _ in range(4):
            self.get("/echo")
        self.assertEqual(self.ejections("s"), 1)
        self.up.clear()
        cfg = dict(self.config)
        cfg["routes"] = [route("r2", "s", path_prefix="/")]
        p.reload(cfg)
        wait_until(lambda: self.get("/echo").status == 200 and
                   metric(p.metrics(), "bgw_http_requests_total", route="r2"), message="reloaded")
        self.assertEqual(self.served_by("/echo", 6), ["b"] * 6)   # a stays ejected (and is healthy now)

    def test_shared_across_workers(self):
        self.start([service("s", self.up.addr("a"), self.up.addr("b"), outlier_detection=od(3, 60000, 50))],
                   [route("r", "s", path_prefix="/")], workers=2)
        self.up.set_mode("a", "status/503")
        for _ in range(10):
            self.get("/echo")
        self.assertEqual(self.ejections("s"), 1)
        self.up.clear()
        self.up.set_mode("a", None)
        # new connections land on either worker: none of them sends to a
        self.assertEqual(set(self.served_by("/echo", 10)), {"b"})


if __name__ == "__main__":
    unittest.main()
