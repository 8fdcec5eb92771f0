"""The config stream, proxy side: a Python grpcio server (stream_helpers.FakeControlPlane) drives a real
bgw-proxy in managed mode. A valid config is applied and ACKed (requests route); an invalid one is NACKed
with the reason while the old config keeps serving; a dropped stream or a vanished control plane is
survived (the proxy keeps serving and reconnects with backoff, announcing its last accepted version); a
proxy restarted with --cache-dir while no control plane runs serves the cached config."""

import os
import re
import shutil
import signal
import tempfile
import time
import unittest

from harness import Proxy, Upstream, metric, wait_until
from stream_helpers import FakeControlPlane


def doc_for(upstream, prefix="/", name="all"):
    return {"services": [{"name": "web", "endpoints": [upstream.addr()]}],
            "routes": [{"name": name, "match": {"path_prefix": prefix}, "service": "web"}]}


def managed_proxy(cp_addr, node="node-1", cache_dir=None, extra=()):
    args = ["--control-plane", cp_addr, "--node-id", node] + list(extra)
    if cache_dir:
        args += ["--cache-dir", cache_dir]
    return Proxy(None, workers=1, args=args, omit=("config",))


class ManagedProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream = Upstream().start()

    @classmethod
    def tearDownClass(cls):
        cls.upstream.stop()

    def setUp(self):
        self.cp = FakeControlPlane().start()
        self.proxies = []
        self.tmp = tempfile.mkdtemp(prefix="bgw-stream-it-")

    def tearDown(self):
        for p in self.proxies:
            if p.alive():
                rc = p.stop()
                self.assertEqual(rc, 0, p.stderr_tail())
            p.cleanup()
        try:
            self.cp.stop()
        except Exception:
            pass
        shutil.rmtree(self.tmp, True)

    def start_proxy(self, **kw):
        p = managed_proxy(self.cp.address(), **kw)
        self.proxies.append(p)
        return p

    def version_in_use(self, p):
        return p.admin_json("/config").get("version")

    def test_valid_config_is_acked_and_served(self):
        self.cp.push("v1", doc_for(self.upstream))
        p = self.start_proxy().start()
        sid, first = self.cp.wait_request(lambda s, r: True)
        self.assertEqual(first.node_id, "node-1")
        self.assertEqual(first.version_info, "")
        self.assertEqual(first.response_nonce, "")
        _, ack = self.cp.wait_request(lambda s, r: r.response_nonce != "")
        self.assertEqual(ack.version_info, "v1")
        self.assertEqual(ack.error_detail, "")
        self.assertEqual(p.request(target="/hello").status, 200)
        self.assertEqual(self.version_in_use(p), "v1")
        m = p.metrics()
        self.assertEqual(metric(m, "bgw_control_plane_connected"), 1)
        self.assertEqual(metric(m, "bgw_config_version_info", version="v1"), 1)

        # a change: applied without a restart, only the new route serves
        n = len(self.cp.requests)
        sent = self.cp.push("v2", doc_for(self.upstream, prefix="/api", name="api"))
        _, ack2 = self.cp.wait_request(lambda s, r: r.response_nonce == sent[sid], start=n)
        self.assertEqual((ack2.version_info, ack2.error_detail), ("v2", ""))
        self.assertEqual(p.request(target="/api/x").status, 200)
        self.assertEqual(p.request(target="/hello").status, 404)

    def test_invalid_config_is_nacked_and_old_one_kept(self):
        self.cp.push("v1", doc_for(self.upstream))
        p = self.start_proxy().start()
        sid, _ = self.cp.wait_request(lambda s, r: r.version_info == "v1")
        bad = doc_for(self.upstream)
        bad["routes"][0]["service"] = "missing"
        n = len(self.cp.requests)
        sent = self.cp.push("v2", bad)
        _, nack = self.cp.wait_request(lambda s, r: r.response_nonce == sent[sid], start=n)
        self.assertEqual(nack.version_info, "v1")          # still the last accepted version
        self.assertIn("routes[0].service", nack.error_detail)
        self.assertIn("missing", nack.error_detail)
        self.assertEqual(p.request(target="/hello").status, 200)
        self.assertEqual(self.version_in_use(p), "v1")
        m = p.metrics()
        self.assertEqual(metric(m, "bgw_config_updates_total", result="rejected"), 1)
        # the stream stays up and the next good config is taken
        n = len(self.cp.requests)
        sent = self.cp.push("v3", doc_for(self.upstream, prefix="/v3", name="v3"))
        _, ack = self.cp.wait_request(lambda s, r: r.response_nonce == sent[sid], start=n)
        self.assertEqual((ack.version_info, ack.error_detail), ("v3", ""))
        self.assertEqual(p.request(target="/v3/a").status, 200)

    def test_dropped_stream_reconnects_and_keeps_serving(self):
        self.cp.push("v1", doc_for(self.upstream))
        p = self.start_proxy().start()
        sid, _ = self.cp.wait_request(lambda s, r: r.version_info == "v1")
        n = len(self.cp.requests)
        self.cp.drop()
        sid2, again = self.cp.wait_request(lambda s, r: s != sid, start=n)
        self.assertEqual(again.version_info, "v1")          # announces its last accepted version
        self.assertEqual(again.response_nonce, "")
        self.assertEqual(p.request(target="/hello").status, 200)

        # the control plane goes away: the proxy serves on, retrying with growing, jittered delays
        self.cp.stop()
        wait_until(lambda: metric(p.metrics(), "bgw_control_plane_connected") == 0, timeout=5,
                   message="bgw_control_plane_connected 0")
        for _ in range(5):
            self.assertEqual(p.request(target="/hello").status, 200)
        delays = wait_until(lambda: (lambda d: d if len(d) >= 3 else None)(
            [int(x) for x in re.findall(r"retrying in (\d+) ms", p.stderr_text())]), timeout=15,
            message="three retries")
        self.assertLess(delays[0], delays[-1])
        self.assertTrue(p.admin_status("/readyz") == 200)

        # it comes back on the same port: the proxy reconnects by itself with its version
        port = self.cp.port
        self.cp = FakeControlPlane(port).start()
        _, back = self.cp.wait_request(lambda s, r: True, timeout=20)
        self.assertEqual((back.node_id, back.version_info), ("node-1", "v1"))
        wait_until(lambda: metric(p.metrics(), "bgw_control_plane_connected") == 1, timeout=5,
                   message="bgw_control_plane_connected 1")

    def test_cache_dir_serves_when_control_plane_is_gone(self):
        cache = os.path.join(self.tmp, "cache")
        self.cp.push("v7", doc_for(self.upstream))
        p = self.start_proxy(cache_dir=cache).start()
        self.cp.wait_request(lambda s, r: r.version_info == "v7")
        self.assertEqual(p.stop(), 0)
        self.assertTrue(os.path.exists(os.path.join(cache, "config.json")))
        port = self.cp.port
        self.cp.stop()

        # no control plane at all: the cached config is served at once
        p2 = self.start_proxy(cache_dir=cache)
        p2.start(timeout=5)
        self.assertEqual(p2.request(target="/hello").status, 200)
        self.assertEqual(self.version_in_use(p2), "v7")
        self.assertEqual(metric(p2.metrics(), "bgw_control_plane_connected"), 0)
        # and the first request carries the cached version
        self.cp = FakeControlPlane(port).start()
        _, first = self.cp.wait_request(lambda s, r: True, timeout=20)
        self.assertEqual(first.version_info, "v7")

    def test_without_config_not_ready(self):
        cache = os.path.join(self.tmp, "empty-cache")
        p = self.start_proxy(cache_dir=cache).spawn()
        self.cp.wait_request(lambda s, r: True)
        self.assertEqual(p.admin_status("/readyz"), 503)
        self.assertEqual(p.request(target="/").status, 503)
        self.cp.push("v1", doc_for(self.upstream))
        wait_until(lambda: p.admin_status("/readyz") == 200, timeout=5, message="/readyz 200")
        self.assertEqual(p.request(target="/").status, 200)

    def test_flags(self):
        from harness import run_proxy_cli
        rc, _, err = run_proxy_cli(["--control-plane", "127.0.0.1:1"])
        self.assertEqual(rc, 2)
        self.assertIn("--node-id", err)
        rc, _, err = run_proxy_cli(["--config", "x.json", "--control-plane", "127.0.0.1:1", "--node-id", "a"])
        self.assertEqual(rc, 2)
        rc, out, _ = run_proxy_cli(["--help"])
        self.assertEqual(rc, 0)
        for flag in ("--control-plane", "--node-id", "--cache-dir", "--ca", "--cert", "--key"):
            self.assertIn(flag, out)

    def test_env_flags(self):
        p = Proxy(None, workers=1, omit=("config",),
                  env={"BGW_CONTROL_PLANE": self.cp.address(), "BGW_NODE_ID": "env-node"})
        self.proxies.append(p)
        p.spawn()
        _, first = self.cp.wait_request(lambda s, r: True)
        self.assertEqual(first.node_id, "env-node")


if __name__ == "__main__":
    unittest.main()
