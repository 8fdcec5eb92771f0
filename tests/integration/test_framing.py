"""Request framing: the malformed / smuggling corpus (malformed_corpus.py), header-read and idle timeouts,
--max-connections.

For every corpus entry the proxy must answer 4xx (or 501/505 where listed) or close the connection, close it
after a 400/431, and the upstream must receive nothing from it: after the entry, a valid canary request is
sent on a new connection (same worker: workers 1) and the upstream's record must hold only the canary."""

import socket
import time
import unittest

import harness
from harness import Conn, build_request, route, service, wait_until
from malformed_corpus import CASES, SMUG


class FramingCorpusTest(harness.ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_cls("main")
        cfg = {"services": [service("main", cls.up.addr("main"))],
               "routes": [route("all", "main", path_prefix="/")]}
        cls.proxy = cls.start_proxy_cls(cfg, workers=1)

    def setUp(self):
        self.up.clear()

    def send_and_read(self, data):
        """Send data (tolerating the proxy closing early); return (response or None, closed after)."""
        c = Conn(self.proxy.port, timeout=5)
        try:
            try:
                c.send(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            try:
                r = c.read_response_or_close(5)
            except socket.timeout:
                self.fail("no response and no close within 5 s")
            closed = c.eof or c.wait_closed(5)
            return r, closed, bytes(c.buf)
        finally:
            c.close()

    def check_upstream_saw_nothing(self, name):
        """The upstream got no complete request and nothing after it. The one thing tolerated is the head of
        the malformed request itself when only its body is malformed (bodies stream, so the head may be on
        its way before the bad chunk is seen): then the proxy must abort that upstream connection."""
        canary = "/canary-after-" + name
        r = self.proxy.request("GET", canary)
        self.assertEqual(r.status, 200, "canary after %s: %r" % (name, r))
        self.up.wait_records(1, pred=lambda rec: rec["target"] == canary)
        recs = self.up.records()
        canary_conn = [rec["conn"] for rec in recs if rec["target"] == canary][0]
        others = [rec for rec in recs if rec["target"] != canary]
        leaked = [rec.get("target") or rec.get("raw_head") for rec in others
                  if rec["complete"] or "smuggled" in (rec.get("target") or rec.get("raw_head") or "")]
        self.assertEqual(leaked, [], "%s: the upstream received %r" % (name, leaked))
        self.assertLessEqual(len(others), 1, "%s: the upstream received %r" % (name, others))
        for rec in others:
            self.assertNotEqual(rec["conn"], canary_conn,
                                "%s: upstream connection reused after a cut-off request" % name)
            wait_until(lambda: rec["conn"] not in self.up.stats()["open_conns"], 5,
                       message="%s: the proxy to close the upstream connection of a cut-off request" % name)

    def run_case(self, name, data, allowed):
        r, closed, rest = self.send_and_read(data)
        if r is not None:
            self.assertIn(r.status, allowed, "%s: got %r" % (name, r))
            if r.status in (400, 431):
                self.assertTrue(closed, "%s: connection not closed after %d; then got %r" % (name, r.status, rest))
            self.assertNotIn(b"HTTP/1.", rest, "%s: a second response followed the %d" % (name, r.status))
        self.check_upstream_saw_nothing(name)

    def test_controls_valid_requests_pass(self):
        """The same shapes, well-formed, are proxied; a pipelined /smuggled after a valid request arrives. This
        shows that the corpus tests would see a leak."""
        with Conn(self.proxy.port) as c:
            c.send(build_request("POST", "/framing", body=b"hello") + SMUG)
            self.assertEqual(c.read_response().status, 200)
            self.assertEqual(c.read_response().json()["target"], "/smuggled")
            c.send(b"POST /framing HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n0\r\n\r\n")
            r = c.read_response()
            self.assertEqual((r.status, r.json()["body_len"]), (200, 5))
            c.send(b"GET /framing HTTP/1.1\r\nHost: test.local\r\nX-Foo:  a b\t\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
        self.assertEqual(self.up.targets(), ["/framing", "/smuggled", "/framing", "/framing"])

    def test_corpus_size(self):
        self.assertGreaterEqual(len(CASES), 33)


def _make_case(name, data, allowed):
    def test(self):
        self.run_case(name, data, allowed)
    test.__doc__ = "malformed: %s -> %s or close" % (name, "/".join(map(str, allowed)))
    return test


for _name, _data, _allowed in CASES:
    setattr(FramingCorpusTest, "test_malformed_" + _name, _make_case(_name, _data, _allowed))


class HeaderTimeoutTest(harness.ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_cls("main")
        cfg = {"services": [service("main", cls.up.addr("main"))],
               "routes": [route("all", "main", path_prefix="/")]}
        cls.proxy = cls.start_proxy_cls(cfg, workers=1, args=["--header-timeout-ms", "500"])

    def setUp(self):
        self.up.clear()

    def assertClosedBy408OrNothing(self, c):
        if c.buf:
            self.assertTrue(bytes(c.buf).startswith((b"HTTP/1.1 408", b"HTTP/1.0 408")),
                            "unexpected bytes before the close: %r" % bytes(c.buf[:200]))

    def test_partial_head_disconnected(self):
        with Conn(self.proxy.port) as c:
            c.send(b"GET /partial HTTP/1.1\r\nHost: test.local\r\n")
            t0 = time.monotonic()
            self.assertTrue(c.wait_closed(5), "half a request head still open after 5 s (header timeout 500 ms)")
            elapsed = time.monotonic() - t0
            self.assertClosedBy408OrNothing(c)
        self.assertGreaterEqual(elapsed, 0.35, "closed after %.2fs, before the header timeout" % elapsed)
        self.assertLess(elapsed, 2.5, "closed after %.2fs with header timeout 500 ms" % elapsed)
        self.assertEqual(self.up.records(), [])

    def test_trickled_head_disconnected(self):
        """A client sending one byte every 100 ms is cut off by the header timeout (a total, not per read)."""
        data = b"GET /trickle HTTP/1.1\r\nHost: test.local\r\nX-Slow: " + b"a" * 200
        with Conn(self.proxy.port) as c:
            t0 = time.monotonic()
            closed = False
            for i in range(len(data)):
                try:
                    c.send(data[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                if c.wait_closed(0.1):  # paces the trickle and notices the close
                    closed = True
                    break
            elapsed = time.monotonic() - t0
            self.assertTrue(closed, "a trickling head was never cut off")
            self.assertClosedBy408OrNothing(c)
        self.assertLess(elapsed, 2.5, "trickling head cut off after %.2fs with header timeout 500 ms" % elapsed)
        self.assertEqual(self.up.records(), [])

    def test_full_head_in_time_served(self):
        with Conn(self.proxy.port) as c:
            c.send(b"GET /in-time HTTP/1.1\r\n")
            self.assertFalse(c.wait_closed(0.2), "closed before the header timeout")
            c.send(b"Host: test.local\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)


class IdleTimeoutTest(harness.ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_cls("main")
        cfg = {"services": [service("main", cls.up.addr("main"))],
               "routes": [route("all", "main", path_prefix="/")]}
        cls.proxy = cls.start_proxy_cls(cfg, workers=1, args=["--idle-timeout-ms", "800",
                                                             "--header-timeout-ms", "10000"])

    def test_idle_keepalive_connection_closed(self):
        with Conn(self.proxy.port) as c:
            self.assertEqual(c.request("GET", "/echo").status, 200)
            t0 = time.monotonic()
            self.assertTrue(c.wait_closed(5), "idle connection still open after 5 s (idle timeout 800 ms)")
            elapsed = time.monotonic() - t0
            self.assertEqual(bytes(c.buf), b"", "bytes sent on an idle connection")
        self.assertGreaterEqual(elapsed, 0.6, "closed after %.2fs, before the idle timeout" % elapsed)
        self.assertLess(elapsed, 3.0, "closed after %.2fs with idle timeout 800 ms" % elapsed)

    def test_activity_resets_idle_timer(self):
        with Conn(self.proxy.port) as c:
            t0 = time.monotonic()
            for i in range(4):
                self.assertEqual(c.request("GET", "/echo?i=%d" % i).status, 200)
                self.assertFalse(c.wait_closed(0.5), "closed while active, request %d" % i)
            self.assertGreater(time.monotonic() - t0, 1.6)
            self.assertEqual(c.request("GET", "/echo?last").status, 200)

    def test_slow_response_not_cut_by_idle_timeout(self):
        r = self.proxy.request("GET", "/delay?ms=1500")
        self.assertEqual(r.status, 200, "a request in flight is not idle: %r" % r)


class MaxConnectionsTest(harness.ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_cls("main")
        cfg = {"services": [service("main", cls.up.addr("main"))],
               "routes": [route("all", "main", path_prefix="/")]}
        cls.proxy = cls.start_proxy_cls(cfg, workers=1, args=["--max-connections", "3"])

    def test_limit(self):
        def served_conn():
            """A new connection that got a 200, or None (the proxy may still count the connection of its
            readiness probe for a moment)."""
            c = Conn(self.proxy.port, timeout=2)
            try:
                if c.request("GET", "/echo?held").status == 200:
                    return c
            except (harness.Closed, OSError):
                pass
            c.close()
            return None

        held = []
        try:
            for i in range(3):
                held.append(wait_until(served_conn, 5, interval=0.05, message="connection %d served" % i))
            self.up.clear()
            extra = Conn(self.proxy.port)
            try:
                t0 = time.monotonic()
                self.assertTrue(extra.wait_closed(2), "a 4th connection with --max-connections 3 stayed open")
                self.assertLess(time.monotonic() - t0, 1.5)
                try:
                    extra.send(build_request("GET", "/echo?extra"))
                except (BrokenPipeError, ConnectionResetError):
                    pass
            finally:
                extra.close()
            for i, c in enumerate(held):
                self.assertEqual(c.request("GET", "/echo?again=%d" % i).status, 200,
                                 "existing connection %d stopped working" % i)
            self.assertNotIn("/echo?extra", self.up.targets())
            held.pop().close()

            held.append(wait_until(served_conn, 5, interval=0.05, message="a new connection served after one closed"))
        finally:
            for c in held:
                c.close()


if __name__ == "__main__":
    unittest.main()
