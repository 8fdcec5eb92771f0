"""Retries in bgw-proxy against a real upstream that fails on purpose: the conditions of route.retry.on,
methods that are not idempotent, per_try_timeout_ms, body replay, the retry budget and the retries metric."""

import threading
import time
import unittest

import harness
from harness import Conn, chunked, free_port, metric, route, service, sha256


def retry(attempts=2, on=("connect-failure", "reset", "5xx"), per_try_timeout_ms=None):
    d = {"attempts": attempts, "on": list(on)}
    if per_try_timeout_ms is not None:
        d["per_try_timeout_ms"] = per_try_timeout_ms
    return d


class RetryTest(harness.ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_cls("a", "b")
        a, b = cls.up.addr("a"), cls.up.addr("b")
        dead = "127.0.0.1:%d" % free_port()
        cls.config = {
            "services": [
                service("one", a),
                service("two", a, b),
                service("deadfirst", dead, b),
            ],
            "routes": [
                route("r-all", "one", path_prefix="/all", retry=retry(2, ["connect-failure", "reset", "5xx"])),
                route("r-gw", "one", path_prefix="/gw", retry=retry(2, ["gateway-error"])),
                route("r-cf", "one", path_prefix="/cf", retry=retry(2, ["connect-failure"])),
                route("r-reset", "one", path_prefix="/reset", retry=retry(2, ["reset"])),
                route("r-none", "one", path_prefix="/none"),
                route("r-two", "two", path_prefix="/two", retry=retry(1, ["5xx"])),
                route("r-dead", "deadfirst", path_prefix="/dead", retry=retry(1, ["connect-failure"])),
                route("r-try", "one", path_prefix="/try", timeout_ms=5000,
                      retry=retry(1, ["reset"], per_try_timeout_ms=300)),
                route("r-budget", "one", path_prefix="/budget", retry=retry(3, ["5xx"])),
            ],
        }
        cls.proxy = cls.start_proxy_cls(cls.config, workers=1)

    def setUp(self):
        self.up.clear()

    def get(self, target, method="GET", body=None, headers=None):
        with Conn(self.proxy.port) as c:
            return c.request(method, target, headers=headers, body=body)

    def retries(self, name):
        return metric(self.proxy.metrics(), "bgw_retries_total", route=name) or 0

    def tries(self, listener=None):
        return [r for r in self.up.records() if listener is None or r["listener"] == listener]

    def test_5xx_is_retried_then_succeeds(self):
        before = self.retries("r-all")
        self.up.set_mode("a", "status/503", count=2)
        r = self.get("/all/echo")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(self.tries("a")), 3)
        self.assertEqual(self.retries("r-all") - before, 2)

    def test_attempts_bound_the_tries(self):
        self.up.set_mode("a", "status/500")
        r = self.get("/all/echo")
        self.assertEqual(r.status, 500, r)          # the upstream's own last answer
        self.assertEqual(r.body, b"status 500\n")
        self.assertEqual(len(self.tries("a")), 3)   # attempts 2: at most 3 tries

    def test_gateway_error_retries_502_503_504_only(self):
        self.up.set_mode("a", "status/500", count=1)
        r = self.get("/gw/echo")
        self.assertEqual(r.status, 500, r)
        self.assertEqual(len(self.tries("a")), 1)
        for status in (502, 503, 504):
            self.up.clear()
            self.up.set_mode("a", "status/%d" % status, count=1)
            r = self.get("/gw/echo")
            self.assertEqual(r.status, 200, (status, r))
            self.assertEqual(len(self.tries("a")), 2)

    def test_connect_failure_only_does_not_retry_5xx_or_reset(self):
        self.up.set_mode("a", "status/503", count=1)
        r = self.get("/cf/echo")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(len(self.tries("a")), 1)
        self.up.clear()
        self.up.set_mode("a", "reset", count=1, partial=1)
        r = self.get("/cf/echo")
        self.assertErrorBody(r, 502, "upstream_unavailable")
        self.assertEqual(len(self.tries("a")), 1)

    def test_reset_is_retried(self):
        before = self.retries("r-reset")
        self.up.set_mode("a", "reset", count=1, partial=1)
        r = self.get("/reset/echo")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(self.tries("a")), 2)
        self.assertEqual(self.retries("r-reset") - before, 1)
        # reset does not cover 5xx responses
        self.up.clear()
        self.up.set_mode("a", "status/503", count=1)
        self.assertEqual(self.get("/reset/echo").status, 503)

    def test_no_retry_policy_no_retry(self):
        self.up.set_mode("a", "status/503", count=1)
        self.assertEqual(self.get("/none/echo").status, 503)
        self.assertEqual(len(self.tries("a")), 1)

    def test_post_is_not_retried_on_5xx_or_reset(self):
        self.up.set_mode("a", "status/503", count=1)
        r = self.get("/all/echo", method="POST", body=b"x" * 10)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(len(self.tries("a")), 1)
        self.up.clear()
        self.up.set_mode("a", "reset", count=1, partial=1)
        r = self.get("/all/echo", method="PATCH", body=b"x")
        self.assertErrorBody(r, 502, "upstream_unavailable")
        self.assertEqual(len(self.tries("a")), 1)

    def test_post_is_retried_on_connect_failure_to_another_endpoint(self):
        before = self.retries("r-dead")
        for i in range(6):                      # round robin: half of them try the dead endpoint first
            r = self.get("/dead/echo", method="POST", body=b"payload-%d" % i)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["body_sha256"], sha256(b"payload-%d" % i))
        self.assertEqual(len(self.tries("b")), 6)
        self.assertGreaterEqual(self.retries("r-dead") - before, 3)

    def test_retry_goes_to_another_endpoint(self):
        self.up.set_mode("a", "status/503")
        for _ in range(6):
            r = self.get("/two/echo")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("X-Upstream"), "b")
        self.assertGreaterEqual(len(self.tries("a")), 1)   # tried, then avoided on the retry
        self.assertEqual(len(self.tries("b")), 6)

    def test_per_try_timeout(self):
        self.up.set_mode("a", "delay", count=1, ms=3000)
        t0 = time.monotonic()
        r = self.get("/try/echo")
        took = time.monotonic() - t0
        self.assertEqual(r.status, 200, r)
        self.assertLess(took, 2.0)               # the slow first try was abandoned after 300 ms
        self.assertEqual(len(self.tries("a")), 2)
        # every try slow: 504 after the tries, well before the route timeout
        self.up.clear()
        self.up.set_mode("a", "delay", ms=3000)
        t0 = time.monotonic()
        r = self.get("/try/echo")
        self.assertErrorBody(r, 504, "upstream_timeout")
        self.assertLess(time.monotonic() - t0, 2.5)
        harness.wait_until(lambda: len(self.tries("a")) == 2, message="two tries")

    def test_body_is_replayed(self):
        body = bytes(range(256)) * 40                       # 10 KiB, Content-Length
        self.up.set_mode("a", "status/503", count=1)
        r = self.get("/all/sink", method="PUT", body=body)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"length": len(body), "sha256": sha256(body)})
        recs = self.tries("a")
        self.assertEqual(len(recs), 2)
        self.assertEqual(recs[0]["body_sha256"], sha256(body))
        # chunked
        self.up.clear()
        self.up.set_mode("a", "status/503", count=1)
        r = self.get("/all/sink", method="PUT", body=chunked(body, sizes=(1000, 7, 3000)),
                     headers=[("Transfer-Encoding", "chunked")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"length": len(body), "sha256": sha256(body)})

    def test_large_body_is_not_replayed(self):
        body = b"z" * (300 * 1024)                          # over the 64 KiB replay buffer
        self.up.set_mode("a", "status/503", count=1)
        r = self.get("/all/sink", method="PUT", body=body)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(len(self.tries("a")), 1)
        # the same body goes through when nothing fails
        r = self.get("/all/sink", method="PUT", body=body)
        self.assertEqual(r.json(), {"length": len(body), "sha256": sha256(body)})

    def test_budget_caps_retries(self):
        # 20 requests at once, each try fails after 800 ms: at most max(3, 20% of 20) = 4 of them may
        # retry at a time, instead of all 20 (3 times each).
        before = self.retries("r-budget")
        self.up.set_mode("a", "status/503", delay_ms=800)
        n = 20
        results = [None] * n
        barrier = threading.Barrier(n)

        def one(i):
            barrier.wait()
            results[i] = self.get("/budget/echo").status

        ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(results, [503] * n)
        retried = self.retries("r-budget") - before
        self.assertGreaterEqual(retried, 1)
        self.assertLessEqual(retried, 4 * 3)
        self.assertLessEqual(len(self.tries("a")), n + 4 * 3)


if __name__ == "__main__":
    unittest.main()
