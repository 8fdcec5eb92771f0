"""Circuit breakers in bgw-proxy: max_requests and max_pending_requests answer 503 at once on overflow,
counted per proxy across workers, with bgw_circuit_breaker_open while saturated; max_retries stops
retries."""

import threading
import time
import unittest

import harness
from harness import Conn, metric, route, service, wait_until


class CircuitBreakerTest(harness.ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_cls("a")
        a = cls.up.addr("a")
        cls.config = {
            "services": [
                service("capped", a, circuit_breaker={"max_requests": 2, "max_pending_requests": 100}),
                service("queued", a, max_connections=1,
                        circuit_breaker={"max_requests": 100, "max_pending_requests": 1}),
                service("noretry", a, circuit_breaker={"max_retries": 0}),
            ],
            "routes": [
                route("r-capped", "capped", path_prefix="/capped"),
                route("r-queued", "queued", path_prefix="/queued"),
                route("r-noretry", "noretry", path_prefix="/noretry", retry={"attempts": 2, "on": ["5xx"]}),
            ],
        }
        # two workers: the limits hold per proxy, not per worker
        cls.proxy = cls.start_proxy_cls(cls.config, workers=2)

    def setUp(self):
        self.up.clear()

    def open_gauge(self, svc):
        return metric(self.proxy.metrics(), "bgw_circuit_breaker_open", service=svc) or 0

    def background(self, target, n):
        """n slow requests in threads; returns (threads, statuses)."""
        statuses = []

        def one():
            with Conn(self.proxy.port) as c:
                statuses.append(c.request("GET", target).status)

        ts = [threading.Thread(target=one) for _ in range(n)]
        for t in ts:
            t.start()
        return ts, statuses

    def test_max_requests_overflow_is_503_at_once(self):
        ts, statuses = self.background("/capped/delay?ms=1500", 2)
        self.up.wait_records(2, pred=lambda r: r["target"].startswith("/capped"))
        t0 = time.monotonic()
        # several connections, so both workers see the overflow: the limit is per proxy
        for _ in range(4):
            with Conn(self.proxy.port) as c:
                r = c.request("GET", "/capped/echo")
            self.assertErrorBody(r, 503, "overloaded")
            self.assertEqual(r.header("X-Bgw-Overloaded"), "true")
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(self.open_gauge("capped"), 1)
        for t in ts:
            t.join()
        self.assertEqual(statuses, [200, 200])
        # below the limit again: closed, and requests pass
        wait_until(lambda: self.open_gauge("capped") == 0, message="breaker closed")
        with Conn(self.proxy.port) as c:
            self.assertEqual(c.request("GET", "/capped/echo").status, 200)
        self.assertEqual(len([r for r in self.up.records() if r["target"] == "/capped/echo"]), 1)

    def test_max_pending_requests_overflow_is_503_at_once(self):
        # one worker, max_connections 1: of three slow requests at once, one is served, one waits for the
        # connection and the third overflows max_pending_requests 1 at once.
        p = self.start_proxy(self.config, workers=1)
        out = []

        def one():
            t0 = time.monotonic()
            with Conn(p.port) as c:
                r = c.request("GET", "/queued/delay?ms=1500")
            out.append((r, time.monotonic() - t0))

        ts = [threading.Thread(target=one) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(sorted(r.status for (r, _) in out), [200, 200, 503])
        r, took = [x for x in out if x[0].status == 503][0]
        self.assertErrorBody(r, 503, "overloaded")
        self.assertLess(took, 1.2)
        self.assertEqual(len(self.up.records()), 2)

    def test_max_retries_zero_stops_retries(self):
        self.up.set_mode("a", "status/503", count=1)
        with Conn(self.proxy.port) as c:
            r = c.request("GET", "/noretry/echo")
        self.assertEqual(r.status, 503)
        self.assertEqual(len(self.up.records()), 1)
        self.assertEqual(metric(self.proxy.metrics(), "bgw_retries_total", route="r-noretry") or 0, 0)
        # a skipped retry refuses no request: the breaker is not reported open
        self.assertEqual(self.open_gauge("noretry"), 0)


if __name__ == "__main__":
    unittest.main()
