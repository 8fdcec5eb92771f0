"""The config stream, control-plane side: a Python grpcio client (stream_helpers.StreamClient) against the
real bgw-control. It receives the whole config with versions and nonces, ACKs and NACKs, and the server's
view of it (GET /v1/dataplanes, /metrics) follows: SYNCED, NACKED with the reason, STALE, DISCONNECTED;
changes made through the admin API reach every connected stream."""

import time
import unittest

from control_harness import Control
from harness import metric, wait_until
from stream_helpers import StreamClient

BOOT = {"services": [{"name": "orders", "endpoints": ["127.0.0.1:9001", "127.0.0.1:9002"],
                      "circuit_breaker": {"max_pending_requests": 0}}],
        "routes": [{"name": "orders-api", "match": {"path_prefix": "/api/orders"}, "service": "orders",
                    "retry": {"attempts": 0, "on": ["5xx"]}}],
        "rate_limits": [{"name": "rl", "requests": 10, "burst": 0}]}


class ControlStreamTest(unittest.TestCase):
    def setUp(self):
        self.cp = Control(bootstrap=BOOT).start()
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        rc = self.cp.stop()
        self.assertEqual(rc, 0, self.cp.stderr_tail())
        self.cp.cleanup()

    def client(self, node, version=""):
        c = StreamClient("127.0.0.1:%d" % self.cp.xds_port, node, version)
        self.clients.append(c)
        return c

    def dataplane(self, node):
        for d in self.cp.get_json("/v1/dataplanes")["items"]:
            if d["node_id"] == node:
                return d
        return None

    def wait_status(self, node, status):
        return wait_until(lambda: (lambda d: d if d and d["status"] == status else None)(self.dataplane(node)),
                          timeout=5, message="%s %s" % (node, status))

    def test_ack_nack_and_status(self):
        c = self.client("py-1")
        r = c.next()
        version = r.version_info
        self.assertTrue(version)
        self.assertTrue(r.nonce)
        self.assertEqual([s.name for s in r.config.services], ["orders"])
        svc = r.config.services[0]
        self.assertEqual([(e.address, e.healthy) for e in svc.endpoints],
                         [("127.0.0.1:9001", True), ("127.0.0.1:9002", True)])
        # presence: zeros that mean something arrive as set zeros; absent stays absent
        self.assertTrue(svc.circuit_breaker.HasField("max_pending_requests"))
        self.assertEqual(svc.circuit_breaker.max_pending_requests, 0)
        self.assertTrue(r.config.routes[0].retry.HasField("attempts"))
        self.assertEqual(r.config.routes[0].retry.attempts, 0)
        self.assertTrue(r.config.rate_limits[0].HasField("burst"))
        self.assertFalse(r.config.routes[0].HasField("timeout_ms") and r.config.routes[0].timeout_ms == 0)

        self.assertEqual(self.wait_status("py-1", "STALE")["acked_version"], "")
        c.ack(r)
        d = self.wait_status("py-1", "SYNCED")
        self.assertEqual(d["acked_version"], version)
        self.assertIsNone(d["last_error"])
        self.assertTrue(d["connected_since"])
        self.assertTrue(d["address"].startswith("127.0.0.1:"))
        m = self.cp.metrics()
        self.assertEqual(metric(m, "bgw_xds_connected_proxies"), 1)
        self.assertGreaterEqual(metric(m, "bgw_xds_pushes_total"), 1)

        # a change through the admin API is pushed; this proxy rejects it
        put = self.cp.call("PUT", "/v1/routes/extra", {"name": "extra", "match": {"path_prefix": "/extra"},
                                                       "service": "orders"})
        self.assertIn(put.status, (200, 201), put)
        r2 = c.next()
        self.assertNotEqual(r2.version_info, version)
        self.assertNotEqual(r2.nonce, r.nonce)
        self.assertEqual(sorted(x.name for x in r2.config.routes), ["extra", "orders-api"])
        c.nack(r2, version, "routes[1]: not today")
        d = self.wait_status("py-1", "NACKED")
        self.assertEqual(d["acked_version"], version)
        self.assertEqual(d["last_error"], "routes[1]: not today")
        self.assertEqual(metric(self.cp.metrics(), "bgw_xds_nacks_total"), 1)

        # the next change is accepted
        self.cp.call("PUT", "/v1/routes/extra2", {"name": "extra2", "match": {"path_prefix": "/x2"},
                                                  "service": "orders"})
        r3 = c.next()
        c.ack(r3)
        d = self.wait_status("py-1", "SYNCED")
        self.assertEqual(d["acked_version"], r3.version_info)
        self.assertIsNone(d["last_error"])

        # gone: DISCONNECTED, still listed
        c.close()
        self.clients.remove(c)
        self.wait_status("py-1", "DISCONNECTED")
        wait_until(lambda: metric(self.cp.metrics(), "bgw_xds_connected_proxies") == 0, timeout=5,
                   message="no connected proxies")

    def test_every_connected_proxy_gets_each_change_and_convergence_is_measured(self):
        cs = [self.client("node-%d" % i) for i in range(3)]
        first = [c.next() for c in cs]
        for c, r in zip(cs, first):
            c.ack(r)
        for i in range(3):
            self.wait_status("node-%d" % i, "SYNCED")
        before = metric(self.cp.metrics(), "bgw_config_convergence_seconds_count") or 0
        self.cp.call("PUT", "/v1/routes/more", {"name": "more", "match": {"path_prefix": "/more"},
                                                "service": "orders"})
        news = [c.next() for c in cs]
        self.assertEqual(len({r.version_info for r in news}), 1)
        self.assertEqual(len({r.nonce for r in news}), 3)
        for c, r in zip(cs, news):
            c.ack(r)
        wait_until(lambda: (metric(self.cp.metrics(), "bgw_config_convergence_seconds_count") or 0) > before,
                   timeout=5, message="a convergence observation")
        m = self.cp.metrics()
        self.assertEqual(m.types.get("bgw_config_convergence_seconds"), "histogram")
        self.assertEqual(m.types.get("bgw_xds_push_duration_seconds"), "histogram")

    def test_reconnect_with_current_version_gets_nothing_new(self):
        c = self.client("again")
        r = c.next()
        c.ack(r)
        self.wait_status("again", "SYNCED")
        c.close()
        self.clients.remove(c)
        self.wait_status("again", "DISCONNECTED")
        c2 = self.client("again", version=r.version_info)
        d = self.wait_status("again", "SYNCED")
        self.assertEqual(d["acked_version"], r.version_info)
        with self.assertRaises(Exception):
            c2.next(timeout=0.5)

    def test_first_request_needs_node_id(self):
        c = self.client("")
        import grpc
        with self.assertRaises(grpc.RpcError) as e:
            c.next()
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)


if __name__ == "__main__":
    unittest.main()
