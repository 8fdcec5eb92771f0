"""Streaming: a 1 GiB upload and a 1 GiB download pass through intact (sha256) while the proxy's resident
memory (VmRSS, sampled during the transfer) grows by less than 20 MB: bodies stream, they are not
buffered."""

import hashlib
import socket
import time
import unittest

import harness
from harness import Conn, RssSampler, build_request, route, service
from upstream import pattern_chunks, pattern_sha256

GIB = 1 << 30
RSS_GROWTH_LIMIT_KIB = 20 * 1000  # 20 MB
TRANSFER_LIMIT_S = 60
STALL_LIMIT_S = 20  # no byte moving for this long fails the transfer


class StreamingTest(harness.ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_cls("main")
        cfg = {"services": [service("main", cls.up.addr("main"))],
               # a generous route timeout: what is measured here is streaming, not the timeout
               "routes": [route("all", "main", path_prefix="/", timeout_ms=300000)]}
        cls.proxy = cls.start_proxy_cls(cfg, workers=2)
        cls.expected = pattern_sha256(GIB)
        # warm up both directions so that buffer pools exist before the baseline is taken
        n = 8 << 20
        with Conn(cls.proxy.port, timeout=30) as c:
            r = c.request("POST", "/sink", body=b"w" * n)
            assert r.status == 200, r
            r = c.request("GET", "/bytes?n=%d" % n)
            assert r.status == 200 and len(r.body) == n, r

    def setUp(self):
        self.up.clear()

    def measure(self, transfer):
        base = self.proxy.rss_kib()
        sampler = RssSampler(self.proxy)
        sampler.start()
        t0 = time.monotonic()
        try:
            result = transfer()
        finally:
            peak = sampler.stop()
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(len(sampler.samples), 3, "too few RSS samples to judge memory: %r" % sampler.samples)
        return result, peak - base, elapsed, base, peak

    def test_upload_1gib(self):
        def upload():
            sent = 0
            with Conn(self.proxy.port, timeout=STALL_LIMIT_S) as c:
                c.send(build_request("POST", "/sink", headers=[("Content-Length", str(GIB))]))
                try:
                    for mv in pattern_chunks(GIB):
                        c.sock.sendall(mv)
                        sent += len(mv)
                    return c.read_response()
                except socket.timeout:
                    self.fail("upload stalled: nothing moved for %d s after %d of %d bytes sent"
                              % (STALL_LIMIT_S, sent, GIB))

        r, growth, elapsed, base, peak = self.measure(upload)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"length": GIB, "sha256": self.expected}, "upload arrived altered")
        self.assertLess(growth, RSS_GROWTH_LIMIT_KIB,
                        "proxy RSS grew by %d KiB during a 1 GiB upload (from %d to %d KiB)" % (growth, base, peak))
        self.assertLess(elapsed, TRANSFER_LIMIT_S)

    def test_download_1gib(self):
        def download():
            h = hashlib.sha256()
            n = [0]

            def sink(mv):
                h.update(mv)
                n[0] += len(mv)

            with Conn(self.proxy.port, timeout=STALL_LIMIT_S) as c:
                c.send(build_request("GET", "/bytes?n=%d" % GIB))
                resp = c.read_head()
                try:
                    c.read_body(resp, sink=sink)
                except socket.timeout:
                    self.fail("download stalled: nothing arrived for %d s after %d of %d bytes"
                              % (STALL_LIMIT_S, n[0], GIB))
            return resp, n[0], h.hexdigest()

        (resp, n, digest), growth, elapsed, base, peak = self.measure(download)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(n, GIB)
        self.assertEqual(digest, self.expected, "download arrived altered")
        self.assertLess(growth, RSS_GROWTH_LIMIT_KIB,
                        "proxy RSS grew by %d KiB during a 1 GiB download (from %d to %d KiB)" % (growth, base, peak))
        self.assertLess(elapsed, TRANSFER_LIMIT_S)

    def test_slow_reader_download_bounded_memory(self):
        """A client that reads nothing for a while: the proxy must stop reading the upstream (backpressure)
        rather than buffer the response."""
        n = 256 << 20
        with Conn(self.proxy.port, timeout=STALL_LIMIT_S) as c:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            base = self.proxy.rss_kib()
            c.send(build_request("GET", "/bytes?n=%d" % n))
            # the upstream writes as fast as it may; give it the chance to fill the proxy
            sampler = RssSampler(self.proxy)
            sampler.start()
            try:
                harness.wait_until(lambda: len(sampler.samples) >= 20, 10, message="RSS samples")
                h = hashlib.sha256()
                got = [0]

                def sink(mv):
                    h.update(mv)
                    got[0] += len(mv)
                resp = c.read_head()
                try:
                    c.read_body(resp, sink=sink)
                except socket.timeout:
                    self.fail("download to a slow reader stalled: nothing arrived for %d s after %d of %d bytes"
                              % (STALL_LIMIT_S, got[0], n))
            finally:
                peak = sampler.stop()
        self.assertEqual(h.hexdigest(), pattern_sha256(n))
        self.assertLess(peak - base, RSS_GROWTH_LIMIT_KIB,
                        "proxy RSS grew by %d KiB while the client did not read" % (peak - base))


if __name__ == "__main__":
    unittest.main()
