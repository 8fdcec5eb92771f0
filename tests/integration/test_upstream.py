"""Self-test of the test tooling (upstream.py and harness.py) without bgw-proxy: the oracle the other
modules rely on must itself be right."""

import os
import unittest

import harness
from harness import Conn, build_request, chunked, sha256
from upstream import PATTERN_LEN, pattern_chunks, pattern_sha256


class UpstreamSelfTest(harness.ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_cls("a", "b")

    def setUp(self):
        self.up.clear()

    def test_echo_records_request_and_connection(self):
        with Conn(self.up.port("a")) as c:
            r1 = c.request("GET", "/x/echo?q=%7E", headers=[("X-One", "1"), ("x-two", " 2 ")])
            r2 = c.request("POST", "/echo", body=b"hello")
        self.assertEqual(r1.status, 200)
        self.assertEqual(r1.header("X-Upstream"), "a")
        e1, e2 = r1.json(), r2.json()
        self.assertEqual(e1["target"], "/x/echo?q=%7E")
        self.assertEqual(e1["headers"], [["Host", "test.local"], ["X-One", "1"], ["x-two", "2"]])
        self.assertEqual(e1["conn"], e2["conn"])
        self.assertEqual(e2["body_len"], 5)
        self.assertEqual(e2["body_sha256"], sha256(b"hello"))
        recs = self.up.records()
        self.assertEqual([r["target"] for r in recs], ["/x/echo?q=%7E", "/echo"])
        self.assertTrue(all(r["complete"] for r in recs))
        self.assertEqual(recs[1]["body_framing"], "length")
        with Conn(self.up.port("b")) as c:
            r3 = c.request("GET", "/echo")
        self.assertEqual(r3.header("X-Upstream"), "b")
        self.assertNotEqual(r3.json()["conn"], e1["conn"])

    def test_chunked_request_body(self):
        body = os.urandom(200000)
        with Conn(self.up.port()) as c:
            r = c.request("POST", "/sink", headers=[("Transfer-Encoding", "chunked")], body=chunked(body))
        self.assertEqual(r.json(), {"length": len(body), "sha256": sha256(body)})
        self.assertEqual(self.up.records()[0]["body_framing"], "chunked")

    def test_bytes_length_and_chunked(self):
        n = 3 * PATTERN_LEN + 17
        with Conn(self.up.port()) as c:
            r1 = c.request("GET", "/bytes?n=%d" % n)
            r2 = c.request("GET", "/bytes?n=%d&chunked=1" % n)
        self.assertEqual(r1.framing, "length")
        self.assertEqual(r2.framing, "chunked")
        self.assertEqual(len(r1.body), n)
        self.assertEqual(sha256(r1.body), pattern_sha256(n))
        self.assertEqual(r2.body, r1.body)
        self.assertEqual(b"".join(bytes(m) for m in pattern_chunks(10, piece=3)), r1.body[:10])

    def test_head_204_304_no_body_and_keepalive(self):
        with Conn(self.up.port()) as c:
            r = c.request("HEAD", "/bytes?n=1000")
            self.assertEqual(r.header("Content-Length"), "1000")
            self.assertEqual(r.body, b"")
            self.assertEqual(c.request("GET", "/status/204").status, 204)
            self.assertEqual(c.request("GET", "/status/304").status, 304)
            self.assertEqual(c.request("GET", "/status/418").status, 418)
            self.assertEqual(c.request("GET", "/echo").status, 200)

    def test_pipelined_and_delay(self):
        with Conn(self.up.port()) as c:
            c.send(build_request("GET", "/delay?ms=100") + build_request("GET", "/echo?i=2"))
            a, b = c.read_response(), c.read_response()
        self.assertEqual(a.json()["target"], "/delay?ms=100")
        self.assertEqual(b.json()["target"], "/echo?i=2")

    def test_close_and_reset(self):
        with Conn(self.up.port()) as c:
            r = c.request("GET", "/close")
            self.assertEqual(r.header("Connection"), "close")
            self.assertTrue(c.wait_closed(2))
        with Conn(self.up.port()) as c:
            c.send(build_request("GET", "/reset"))
            self.assertIsNone(c.read_response_or_close(2))
        with Conn(self.up.port()) as c:
            c.send(build_request("GET", "/reset?rst=1"))
            self.assertIsNone(c.read_response_or_close(2))

    def test_respond_headers(self):
        r = harness.request(self.up.port(), "GET", "/respond?status=201&h=X-A:%201&h=Connection:%20x-a&body=hi")
        self.assertEqual(r.status, 201)
        self.assertEqual(r.header("X-A"), "1")
        self.assertEqual(r.body, b"hi")

    def test_stats_max_open(self):
        conns = [Conn(self.up.port()) for _ in range(3)]
        try:
            for c in conns:
                c.request("GET", "/echo")
            self.assertGreaterEqual(self.up.stats()["max_open"], 3)
        finally:
            for c in conns:
                c.close()
        harness.wait_until(lambda: self.up.stats()["connections_open"] == 0, message="connections closed")


class PrometheusParserTest(unittest.TestCase):
    def test_parse(self):
        text = ('# HELP x_total help\n# TYPE x_total counter\n'
                'x_total{a="1",b="q\\"uote"} 3\nx_total{a="2"} 4 1700000000\n'
                'h_bucket{le="+Inf"} 5\nup 1\n')
        m = harness.parse_prometheus(text)
        self.assertEqual(m.types["x_total"], "counter")
        self.assertEqual(harness.metric(m, "x_total"), 7)
        self.assertEqual(harness.metric(m, "x_total", b='q"uote'), 3)
        self.assertEqual(harness.metric(m, "h_bucket", le="+Inf"), 5)
        self.assertIsNone(harness.metric(m, "nope"))
        with self.assertRaises(AssertionError):
            harness.parse_prometheus("bad line here x\n")


if __name__ == "__main__":
    unittest.main()
