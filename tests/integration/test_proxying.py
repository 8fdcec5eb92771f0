"""Proxying: upstream keep-alive, X-Forwarded-*, X-Request-Id, hop-by-hop headers both ways, Host, load
balancing, max_connections, chunked bodies both ways, HEAD/204/304, HTTP/1.0 clients, pipelining."""

import collections
import os
import re
import threading
import unittest

import harness
from harness import Conn, build_request, chunked, record_header, route, service, sha256
from upstream import pattern_sha256

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "transfer-encoding")
OWN_CONNECTION_VALUES = ("keep-alive", "close")


class ProxyingTest(harness.ProxyTestCase):
    """One proxy with one worker, so that upstream connection counts are deterministic."""

    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_cls("main")
        cfg = {"services": [service("main", cls.up.addr("main"))],
               "routes": [route("all", "main", path_prefix="/")]}
        cls.proxy = cls.start_proxy_cls(cfg, workers=1)

    def setUp(self):
        self.up.clear()

    def last_record(self):
        return self.up.wait_records(1)[-1]

    # -- upstream connection reuse

    def test_keepalive_upstream_reuse_one_client_connection(self):
        with Conn(self.proxy.port) as c:
            for i in range(30):
                r = c.request("GET", "/echo?i=%d" % i)
                self.assertEqual(r.status, 200, r)
        recs = self.up.wait_records(30)
        conns = {r["conn"] for r in recs}
        self.assertLessEqual(len(conns), 2, "30 sequential requests used %d upstream connections" % len(conns))

    def test_keepalive_upstream_reuse_across_client_connections(self):
        for i in range(20):
            r = self.proxy.request("GET", "/echo?i=%d" % i)
            self.assertEqual(r.status, 200, r)
        conns = {r["conn"] for r in self.up.wait_records(20)}
        self.assertLessEqual(len(conns), 2,
                             "20 sequential requests on 20 client connections used %d upstream connections "
                             "(the pool belongs to the worker, not the client connection)" % len(conns))

    def test_upstream_close_after_response_then_next_request_works(self):
        with Conn(self.proxy.port) as c:
            r = c.request("GET", "/close")
            self.assertEqual(r.status, 200, r)
            for i in range(3):
                r = c.request("GET", "/echo?after-close=%d" % i)
                self.assertEqual(r.status, 200, r)
            r = c.request("GET", "/close?silent=1")
            self.assertEqual(r.status, 200, r)
            # the upstream closed that connection without announcing it; the proxy must notice
            r = c.request("GET", "/echo?after-silent-close")
            self.assertEqual(r.status, 200, r)

    # -- forwarding headers

    def test_x_forwarded_for_appended(self):
        self.proxy.request("GET", "/echo", headers=[("X-Forwarded-For", "203.0.113.7")])
        self.assertEqual(record_header(self.last_record(), "x-forwarded-for"), ["203.0.113.7, 127.0.0.1"])
        self.up.clear()
        self.proxy.request("GET", "/echo", headers=[("X-Forwarded-For", "203.0.113.7, 198.51.100.2")])
        self.assertEqual(record_header(self.last_record(), "x-forwarded-for"),
                         ["203.0.113.7, 198.51.100.2, 127.0.0.1"])
        self.up.clear()
        self.proxy.request("GET", "/echo")
        self.assertEqual(record_header(self.last_record(), "x-forwarded-for"), ["127.0.0.1"])

    def test_x_forwarded_proto_and_host(self):
        self.proxy.request("GET", "/echo", host="shop.example.com:8443",
                           headers=[("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.example")])
        rec = self.last_record()
        self.assertEqual(record_header(rec, "x-forwarded-proto"), ["http"])
        self.assertEqual(record_header(rec, "x-forwarded-host"), ["shop.example.com:8443"])

    def test_host_passed_unchanged(self):
        self.proxy.request("GET", "/echo", host="Shop.Example.com:8443")
        self.assertEqual(record_header(self.last_record(), "host"), ["Shop.Example.com:8443"])

    def test_request_id_valid_kept(self):
        for rid in ("abc-123_X.y", "a", "Z" * 128):
            self.up.clear()
            r = self.proxy.request("GET", "/echo", headers=[("X-Request-Id", rid)])
            self.assertEqual(r.header_all("X-Request-Id"), [rid], "response X-Request-Id")
            self.assertEqual(record_header(self.last_record(), "x-request-id"), [rid], "upstream X-Request-Id")

    def test_request_id_invalid_replaced(self):
        for rid in ("has space", "semi;colon", "Z" * 129, "quote\"", "slash/x", "", "\u00e9t\u00e9"):
            with self.subTest(rid=rid):
                self.up.clear()
                r = self.proxy.request("GET", "/echo", headers=[("X-Request-Id", rid)])
                self.assertEqual(r.status, 200, r)
                got = r.header_all("X-Request-Id")
                self.assertEqual(len(got), 1, "response X-Request-Id: %r" % got)
                self.assertNotEqual(got[0], rid)
                self.assertRegex(got[0], REQUEST_ID_RE)
                self.assertEqual(record_header(self.last_record(), "x-request-id"), got)

    def test_request_id_generated_unique(self):
        ids = []
        for _ in range(20):
            r = self.proxy.request("GET", "/echo")
            got = r.header_all("X-Request-Id")
            self.assertEqual(len(got), 1, r)
            self.assertRegex(got[0], REQUEST_ID_RE)
            ids.append(got[0])
        self.assertEqual(len(set(ids)), 20, "generated request ids repeat: %r" % ids)
        seen = [record_header(rec, "x-request-id") for rec in self.up.wait_records(20)]
        self.assertEqual(sorted(v[0] for v in seen if len(v) == 1), sorted(ids))

    # -- hop-by-hop

    def assertNoHopByHop(self, headers, where):
        names = [k.lower() for (k, _) in headers]
        for h in HOP_BY_HOP:
            if h == "connection":
                for (k, v) in headers:
                    if k.lower() == "connection":
                        self.assertIn(v.strip().lower(), OWN_CONNECTION_VALUES,
                                      "%s: Connection %r forwarded" % (where, v))
                continue
            self.assertNotIn(h, names, "%s: hop-by-hop header %s forwarded: %r" % (where, h, headers))

    def test_hop_by_hop_request_headers_dropped(self):
        body = b"0123456789"
        self.proxy.request("POST", "/echo", body=body, headers=[
            ("Connection", "keep-alive, X-Hop, x-other-hop"), ("X-Hop", "1"), ("X-Other-Hop", "2"),
            ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"), ("TE", "trailers"),
            ("Trailer", "X-T"), ("X-End-To-End", "kept")])
        rec = self.last_record()
        self.assertNoHopByHop(rec["headers"], "upstream")
        names = [k.lower() for (k, _) in rec["headers"]]
        self.assertNotIn("x-hop", names)
        self.assertNotIn("x-other-hop", names)
        self.assertEqual(record_header(rec, "x-end-to-end"), ["kept"])
        # a Content-Length body stays a Content-Length body
        self.assertEqual(record_header(rec, "content-length"), ["10"])
        self.assertEqual((rec["body_len"], rec["body_sha256"]), (10, sha256(body)))

    def test_upgrade_header_dropped(self):
        r = self.proxy.request("GET", "/echo", headers=[("Upgrade", "foo/1")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(record_header(self.last_record(), "upgrade"), [])

    def test_hop_by_hop_response_headers_dropped(self):
        q = "&".join("h=" + h.replace(" ", "%20") for h in (
            "Connection:X-Resp-Hop", "X-Resp-Hop:1", "Keep-Alive:timeout=5", "Proxy-Connection:keep-alive",
            "Trailer:X-T", "Upgrade:foo", "TE:trailers", "X-Keep:yes"))
        with Conn(self.proxy.port) as c:
            r = c.request("GET", "/respond?%s&body=hello" % q)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, b"hello")
            self.assertNoHopByHop([(k, v) for (k, v) in r.headers if k.lower() != "transfer-encoding"], "client")
            self.assertFalse(r.has("x-resp-hop"), r)
            self.assertEqual(r.header_all("X-Keep"), ["yes"])
            # the connection survives the upstream's Connection header
            self.assertEqual(c.request("GET", "/echo").status, 200)

    def test_response_transfer_encoding_is_the_proxys_own_framing(self):
        r = self.proxy.request("GET", "/respond?chunked=1&body=abc&h=X-Keep:1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"abc")
        te = r.header_all("transfer-encoding")
        self.assertIn(te, ([], ["chunked"]), "Transfer-Encoding to the client: %r" % te)
        if te:
            self.assertFalse(r.has("content-length"), r)

    # -- bodies

    def test_chunked_request_body_passes_intact(self):
        body = os.urandom(3 * 1024 * 1024 + 11)
        r = self.proxy.request("POST", "/sink", headers=[("Transfer-Encoding", "chunked")], body=chunked(body))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"length": len(body), "sha256": sha256(body)})
        rec = self.last_record()
        te, cl = record_header(rec, "transfer-encoding"), record_header(rec, "content-length")
        self.assertTrue((te == ["chunked"] and cl == []) or (te == [] and cl == [str(len(body))]),
                        "upstream framing headers TE=%r CL=%r" % (te, cl))

    def test_chunked_request_body_with_trailer_section(self):
        body = b"hello world"
        raw = b"%x\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n" % (len(body), body)
        r = self.proxy.request("POST", "/sink", headers=[("Transfer-Encoding", "chunked")], body=raw)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"length": len(body), "sha256": sha256(body)})

    def test_content_length_request_body_passes_intact(self):
        body = os.urandom(5 * 1024 * 1024 + 3)
        r = self.proxy.request("PUT", "/sink", body=body)
        self.assertEqual(r.json(), {"length": len(body), "sha256": sha256(body)})

    def test_chunked_response_passes_intact(self):
        for n in (0, 1, 65521, 4 * 1024 * 1024 + 5):
            with self.subTest(n=n):
                r = self.proxy.request("GET", "/bytes?n=%d&chunked=1" % n)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(len(r.body), n)
                self.assertEqual(sha256(r.body), pattern_sha256(n))

    def test_content_length_response_passes_intact(self):
        n = 4 * 1024 * 1024 + 7
        with Conn(self.proxy.port) as c:
            r = c.request("GET", "/bytes?n=%d" % n)
            self.assertEqual(r.header("Content-Length"), str(n), "a Content-Length response stays one")
            self.assertEqual(sha256(r.body), pattern_sha256(n))
            self.assertEqual(c.request("GET", "/echo").status, 200)

    def test_empty_post_body(self):
        r = self.proxy.request("POST", "/sink", body=b"")
        self.assertEqual(r.json(), {"length": 0, "sha256": sha256(b"")})

    # -- responses without body

    def test_head_response_has_no_body(self):
        with Conn(self.proxy.port) as c:
            r = c.request("HEAD", "/bytes?n=1000")
            self.assertEqual(r.status, 200, r)
            self.assertIn(r.header("Content-Length"), (None, "1000"), r)
            # if the proxy had sent a body, it would be read here as the next response's head
            r2 = c.request("GET", "/echo?after-head")
            self.assertEqual(r2.status, 200, r2)
            self.assertEqual(r2.json()["target"], "/echo?after-head")
            self.assertEqual(c.request("HEAD", "/bytes?n=50&chunked=1").status, 200)
            self.assertEqual(c.request("GET", "/echo?after-head2").json()["target"], "/echo?after-head2")
        self.assertEqual([r["method"] for r in self.up.records()], ["HEAD", "GET", "HEAD", "GET"])

    def test_204_and_304_have_no_body(self):
        with Conn(self.proxy.port) as c:
            for st in (204, 304):
                r = c.request("GET", "/status/%d" % st)
                self.assertEqual(r.status, st, r)
                self.assertFalse(r.has("transfer-encoding"), "%d with Transfer-Encoding: %r" % (st, r))
                r2 = c.request("GET", "/echo?after-%d" % st)
                self.assertEqual(r2.status, 200, r2)
                self.assertEqual(r2.json()["target"], "/echo?after-%d" % st)
            self.assertEqual(c.request("GET", "/status/304").header("ETag"), '"v1"')

    def test_status_codes_passed_through(self):
        for st in (201, 301, 404, 418, 500, 503):
            r = self.proxy.request("GET", "/status/%d" % st)
            self.assertEqual(r.status, st, r)
            self.assertEqual(r.body, b"status %d\n" % st)
            self.assertEqual(r.header("X-Upstream"), "main")

    # -- HTTP/1.0 and pipelining

    def test_http10_client(self):
        with Conn(self.proxy.port) as c:
            c.send(b"GET /echo?v=10 HTTP/1.0\r\nHost: test.local\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["target"], "/echo?v=10")
            self.assertTrue(c.wait_closed(5), "HTTP/1.0 without keep-alive: connection not closed")

    def test_http10_client_gets_no_chunked(self):
        n = 100000
        with Conn(self.proxy.port) as c:
            c.send(b"GET /bytes?n=%d&chunked=1 HTTP/1.0\r\nHost: test.local\r\n\r\n" % n)
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertFalse(r.has("transfer-encoding"), "chunked sent to an HTTP/1.0 client: %r" % r)
            self.assertEqual(sha256(r.body), pattern_sha256(n))

    def test_http10_without_host(self):
        with Conn(self.proxy.port) as c:
            c.send(b"GET /echo?nohost HTTP/1.0\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200, r)

    def test_http10_keepalive(self):
        with Conn(self.proxy.port) as c:
            for i in range(2):
                c.send(b"GET /echo?ka=%d HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n" % i)
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                if r.header("connection") is None or r.header("connection").lower() != "keep-alive":
                    self.assertTrue(c.wait_closed(5))
                    break

    def test_pipelined_requests_answered_in_order(self):
        body = os.urandom(70000)
        with Conn(self.proxy.port) as c:
            c.send(build_request("GET", "/delay?ms=300&i=1") + build_request("POST", "/sink", body=body)
                   + build_request("GET", "/echo?i=3") + build_request("HEAD", "/bytes?n=10")
                   + build_request("GET", "/status/204") + build_request("GET", "/echo?i=6"))
            r1 = c.read_response()
            r2 = c.read_response()
            r3 = c.read_response()
            r4 = c.read_response("HEAD")
            r5 = c.read_response()
            r6 = c.read_response()
        self.assertEqual(r1.json()["target"], "/delay?ms=300&i=1")
        self.assertEqual(r2.json(), {"length": len(body), "sha256": sha256(body)})
        self.assertEqual(r3.json()["target"], "/echo?i=3")
        self.assertEqual((r4.status, r4.body), (200, b""))
        self.assertEqual(r5.status, 204)
        self.assertEqual(r6.json()["target"], "/echo?i=6")

    def test_request_sent_while_previous_in_flight(self):
        """The next request arrives while the first waits on a slow upstream: it is read and answered
        once the first response is out, without the client sending anything more."""
        with Conn(self.proxy.port, timeout=5) as c:
            c.send(build_request("GET", "/delay?ms=400&i=1"))
            self.up.wait_records(1, complete=False, pred=lambda r: "delay" in r["target"])
            c.send(build_request("GET", "/echo?i=2"))
            r1 = c.read_response()
            r2 = c.read_response()
        self.assertEqual(r1.json()["target"], "/delay?ms=400&i=1")
        self.assertEqual(r2.json()["target"], "/echo?i=2")


class LoadBalancingTest(harness.ProxyTestCase):
    """lb policies with one worker (per-worker state makes counts deterministic)."""

    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_cls("e1", "e2", "e3", "cap")
        addrs = [cls.up.addr(n) for n in ("e1", "e2", "e3")]
        cfg = {
            "services": [service("rr", *addrs, lb="round_robin"), service("rnd", *addrs, lb="random"),
                         service("lr", *addrs[:2], lb="least_request"),
                         service("dflt", *addrs),
                         service("capped", cls.up.addr("cap"), max_connections=2)],
            "routes": [route("rr", "rr", path_prefix="/rr"), route("rnd", "rnd", path_prefix="/rnd"),
                       route("lr", "lr", path_prefix="/lr"), route("dflt", "dflt", path_prefix="/dflt"),
                       route("capped", "capped", path_prefix="/capped")],
        }
        cls.proxy = cls.start_proxy_cls(cfg, workers=1)

    def setUp(self):
        self.up.clear()

    def count(self, prefix, n):
        c = collections.Counter()
        with Conn(self.proxy.port) as conn:
            for i in range(n):
                r = conn.request("GET", "%s/echo?i=%d" % (prefix, i))
                self.assertEqual(r.status, 200, r)
                c[r.header("X-Upstream")] += 1
        return c

    def test_round_robin_even(self):
        c = self.count("/rr", 30)
        for e in ("e1", "e2", "e3"):
            self.assertTrue(9 <= c[e] <= 11, "round_robin over 3 endpoints, 30 requests: %r" % dict(c))

    def test_default_lb_is_round_robin(self):
        c = self.count("/dflt", 30)
        for e in ("e1", "e2", "e3"):
            self.assertTrue(9 <= c[e] <= 11, "default lb over 3 endpoints, 30 requests: %r" % dict(c))

    def test_random_uses_all(self):
        c = self.count("/rnd", 90)
        for e in ("e1", "e2", "e3"):
            self.assertGreater(c[e], 0, "random over 3 endpoints, 90 requests: %r" % dict(c))

    def test_least_request_prefers_idle(self):
        """One endpoint busy with a slow request, the other idle: the idle one gets (nearly) everything.
        (Two distinct candidates compared, or a full scan, give 20 of 20.)"""
        result = {}

        def slow():
            result["r"] = self.proxy.request("GET", "/lr/delay?ms=4000", timeout=20)

        t = threading.Thread(target=slow)
        t.start()
        try:
            busy = self.up.wait_records(1, complete=False, pred=lambda r: "delay" in r["target"])[0]["listener"]
            idle = {"e1": "e2", "e2": "e1"}[busy]
            c = self.count("/lr", 20)
            self.assertTrue(t.is_alive(), "the slow request ended early; the measurement is void")
        finally:
            t.join()
        self.assertEqual(result["r"].status, 200, result["r"])
        self.assertGreaterEqual(c[idle], 18, "least_request with %s busy: %r" % (busy, dict(c)))

    def test_max_connections_bounds_upstream_connections(self):
        results = []
        lock = threading.Lock()

        def one(i):
            r = self.proxy.request("GET", "/capped/delay?ms=300&i=%d" % i, timeout=30)
            with lock:
                results.append(r.status)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [200] * 8)
        recs = self.up.wait_records(8)
        self.assertLessEqual(len({r["conn"] for r in recs}), 2,
                             "max_connections 2 but the upstream saw %d connections" % len({r["conn"] for r in recs}))
        self.assertLessEqual(self.up.stats()["listeners"]["cap"]["max_open"], 2, "upstream connections open at once")


if __name__ == "__main__":
    unittest.main()
