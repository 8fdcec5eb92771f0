"""Errors the proxy answers itself: 502 (unreachable, connect timeout, reset), 503 (no healthy endpoint),
504 (route timeout), 413 (max_body_bytes), 431 (header section over 32 KiB)."""

import socket
import time
import unittest

import harness
from harness import Conn, build_request, chunked, free_port, route, service


class ErrorsTest(harness.ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_cls("ok", "half")
        # A "blackhole" on this machine: a listening socket with a backlog of 0 whose only queue slot is
        # taken by a connection nobody accepts; further SYNs are dropped, so connect() hangs.
        cls.blackhole = socket.socket()
        cls.blackhole.bind(("127.0.0.1", 0))
        cls.blackhole.listen(0)
        cls.addClassCleanup(cls.blackhole.close)
        cls.filler = socket.create_connection(cls.blackhole.getsockname())
        cls.addClassCleanup(cls.filler.close)
        cls.blackhole_addr = "127.0.0.1:%d" % cls.blackhole.getsockname()[1]
        cls.dead_addr = "127.0.0.1:%d" % free_port()
        cfg = {
            "services": [
                service("ok", cls.up.addr("ok")),
                service("dead", cls.dead_addr),
                service("empty"),
                service("unhealthy", {"address": cls.up.addr("ok"), "healthy": False},
                        {"address": cls.up.addr("half"), "healthy": False}),
                service("half", {"address": cls.up.addr("ok"), "healthy": False},
                        {"address": cls.up.addr("half"), "healthy": True}),
                service("blackhole", cls.blackhole_addr, connect_timeout_ms=300),
            ],
            "routes": [
                route("ok", "ok", path_prefix="/ok"),
                route("dead", "dead", path_prefix="/dead"),
                route("empty", "empty", path_prefix="/empty"),
                route("unhealthy", "unhealthy", path_prefix="/unhealthy"),
                route("half", "half", path_prefix="/half"),
                route("blackhole", "blackhole", path_prefix="/blackhole", timeout_ms=10000),
                route("slow", "ok", path_prefix="/slow", timeout_ms=300),
                route("small", "ok", path_prefix="/small", max_body_bytes=1000),
            ],
        }
        cls.proxy = cls.start_proxy_cls(cfg, workers=2)

    def setUp(self):
        self.up.clear()

    def test_blackhole_really_blocks_connects(self):
        """Checks the test's own premise (a connect to the blackhole hangs)."""
        s = socket.socket()
        s.settimeout(0.3)
        try:
            with self.assertRaises(socket.timeout):
                s.connect(self.blackhole.getsockname())
        finally:
            s.close()

    def test_unreachable_upstream_502(self):
        with Conn(self.proxy.port) as c:
            r = c.request("GET", "/dead/x")
            self.assertErrorBody(r, 502, "upstream_unavailable")
            # the client connection survives an upstream failure
            self.assertEqual(c.request("GET", "/ok/echo").status, 200)

    def test_empty_endpoints_503(self):
        self.assertErrorBody(self.proxy.request("GET", "/empty/x"), 503, "no_healthy_upstream")

    def test_all_endpoints_unhealthy_503(self):
        self.assertErrorBody(self.proxy.request("GET", "/unhealthy/x"), 503, "no_healthy_upstream")
        self.assertEqual(self.up.records(), [], "a request went to an endpoint marked healthy: false")

    def test_unhealthy_endpoint_skipped(self):
        for i in range(10):
            r = self.proxy.request("GET", "/half/echo?i=%d" % i)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("X-Upstream"), "half", "request sent to an endpoint marked healthy: false")

    def test_route_timeout_504(self):
        t0 = time.monotonic()
        r = self.proxy.request("GET", "/slow/delay?ms=3000")
        elapsed = time.monotonic() - t0
        self.assertErrorBody(r, 504, "upstream_timeout")
        self.assertLess(elapsed, 2.0, "504 after %.2fs with timeout_ms 300" % elapsed)
        self.assertGreaterEqual(elapsed, 0.25, "504 after %.2fs with timeout_ms 300" % elapsed)

    def test_client_connection_kept_after_504(self):
        """Only 400 and 431 close the client connection; a 504 is an upstream problem."""
        with Conn(self.proxy.port) as c:
            self.assertEqual(c.request("GET", "/slow/delay?ms=3000").status, 504)
            r = c.request("GET", "/slow/echo")
            self.assertEqual(r.status, 200, r)

    def test_connect_timeout_504(self):
        t0 = time.monotonic()
        r = self.proxy.request("GET", "/blackhole/x", timeout=15)
        elapsed = time.monotonic() - t0
        self.assertErrorBody(r, 504, "upstream_timeout")
        self.assertLess(elapsed, 3.0, "connect_timeout_ms 300 took %.2fs (route timeout is 10 s)" % elapsed)
        self.assertGreaterEqual(elapsed, 0.25, "answered after %.2fs, before connect_timeout_ms 300" % elapsed)

    def test_upstream_reset_502(self):
        for target in ("/ok/reset", "/ok/reset?rst=1"):
            with self.subTest(target=target):
                self.assertErrorBody(self.proxy.request("GET", target), 502, "upstream_unavailable")

    def test_max_body_bytes_413_content_length(self):
        r = self.proxy.request("POST", "/small/sink", body=b"x" * 1000)
        self.assertEqual(r.status, 200, "a body of exactly max_body_bytes: %r" % r)
        self.up.clear()
        with Conn(self.proxy.port) as c:
            c.send(build_request("POST", "/small/sink", headers=[("Content-Length", "1001")]))
            # the proxy knows from Content-Length; it must answer without waiting for the body
            r = c.read_response_or_close(5)
            self.assertIsNotNone(r, "closed without a 413")
            self.assertErrorBody(r, 413, "body_too_large")
        self.assertEqual(self.up.records(), [], "an oversized body was forwarded")

    def test_max_body_bytes_413_chunked(self):
        body = chunked(b"y" * 1001, sizes=(500,))
        r = self.proxy.request("POST", "/small/sink", headers=[("Transfer-Encoding", "chunked")], body=body)
        self.assertErrorBody(r, 413, "body_too_large")
        self.assertFalse(any(rec["complete"] and rec["body_len"] > 1000 for rec in self.up.records()),
                         "the upstream received the whole oversized body")

    def test_max_body_bytes_does_not_limit_other_routes(self):
        body = b"z" * 100000
        r = self.proxy.request("POST", "/ok/sink", body=body)
        self.assertEqual(r.json()["length"], len(body))

    def test_header_section_over_32k_431(self):
        for name, headers in (("one big header", [("X-Big", "a" * (40 * 1024))]),
                              ("many headers", [("X-H%d" % i, "b" * 1000) for i in range(40)])):
            with self.subTest(name):
                with Conn(self.proxy.port) as c:
                    c.send(build_request("GET", "/ok/echo", headers=headers))
                    r = c.read_response_or_close()
                    self.assertIsNotNone(r, "closed without a 431")
                    self.assertErrorBody(r, 431, "header_too_large")
                    self.assertTrue(c.wait_closed(5), "connection not closed after 431")
        self.assertEqual(self.up.records(), [])

    def test_header_section_under_limit_ok(self):
        r = self.proxy.request("GET", "/ok/echo", headers=[("X-H%d" % i, "c" * 1000) for i in range(20)])
        self.assertEqual(r.status, 200, r)

    def test_long_request_line_rejected(self):
        with Conn(self.proxy.port) as c:
            c.send(build_request("GET", "/ok/" + "a" * (40 * 1024)))
            r = c.read_response_or_close()
            if r is not None:
                self.assertIn(r.status, (400, 414, 431), r)
        self.assertEqual(self.up.records(), [])


if __name__ == "__main__":
    unittest.main()
