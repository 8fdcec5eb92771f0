"""The managed setup end to end, with the real bgw-control and real managed bgw-proxies: route changes land
under load without a failed request, a rejected change never reaches a proxy, and proxies ride out the
control plane going away (kill -9), including a proxy restarted from its --cache-dir meanwhile, then
reconnect when it returns."""

import os
import shutil
import tempfile
import threading
import time
import unittest

from control_harness import Control
from harness import Conn, Proxy, Upstream, metric, wait_until


def managed(control, node, cache_dir=None, workers=2):
    args = ["--control-plane", "127.0.0.1:%d" % control.xds_port, "--node-id", node]
    if cache_dir:
        args += ["--cache-dir", cache_dir]
    return Proxy(None, workers=workers, args=args, omit=("config",))


class LiveChangesTest(unittest.TestCase):
    def setUp(self):
        self.upstream = Upstream().start()
        self.tmp = tempfile.mkdtemp(prefix="bgw-live-")
        doc = {"services": [{"name": "main", "endpoints": [self.upstream.addr()]}],
               "routes": [{"name": "stable", "match": {"path_prefix": "/stable"}, "service": "main"}]}
        self.cp = Control(bootstrap=doc).start()
        self.proxies = [managed(self.cp, "node-a", os.path.join(self.tmp, "cache-a")).start(),
                        managed(self.cp, "node-b", os.path.join(self.tmp, "cache-b")).start()]

    def tearDown(self):
        for p in self.proxies:
            if p.alive():
                self.assertEqual(p.stop(), 0, p.stderr_tail())
            p.cleanup()
        if self.cp.alive():
            self.cp.stop()
        self.cp.cleanup()
        self.upstream.stop()
        shutil.rmtree(self.tmp, True)

    # -- helpers

    def version(self):
        return self.cp.config()["version"]

    def wait_converged(self, timeout=10.0):
        """Every proxy serves the control plane's current version and the control plane sees them SYNCED."""
        want = self.version()
        for p in self.proxies:
            wait_until(lambda: p.admin_json("/config").get("version") == want, timeout,
                       message="%s serving version %s" % (p.pid, want))
        def synced():
            items = self.cp.get_json("/v1/dataplanes")["items"]
            st = {d["node_id"]: (d["status"], d["acked_version"]) for d in items}
            return all(st.get(n) == ("SYNCED", want) for n in ("node-a", "node-b"))
        wait_until(synced, timeout, message="node-a and node-b SYNCED at %s" % want)
        return want

    # -- tests

    def test_no_failed_request_while_100_changes_land(self):
        self.wait_converged()
        stop = threading.Event()
        results = {"ok": 0, "failed": []}
        lock = threading.Lock()

        def client(k):
            n = 0
            conns = {}
            while not stop.is_set():
                p = self.proxies[n % 2]
                n += 1
                try:
                    c = conns.get(p.port)
                    if c is None or n % 25 == 0:          # some new connections too
                        if c is not None:
                            c.close()
                        c = conns[p.port] = Conn(p.port, timeout=5)
                    r = c.request("GET", "/stable/item?k=%d&n=%d" % (k, n))
                    good = r.status == 200 and r.header("x-upstream") is not None
                    with lock:
                        if good:
                            results["ok"] += 1
                        else:
                            results["failed"].append((p.port, r.status, r.body[:200]))
                except Exception as e:                     # a reset or close is a failed request too
                    conns.pop(p.port, None)
                    with lock:
                        results["failed"].append((p.port, "error", repr(e)))
            for c in conns.values():
                c.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        live, deleted = [], []
        try:
            for i in range(100):
                if i % 10 == 9:
                    name = live.pop()
                    r = self.cp.call("DELETE", "/v1/routes/%s" % name)
                    self.assertEqual(r.status, 204, r)
                    deleted.append(name)
                elif i % 7 == 0:       # change the busy route itself, in a field that keeps it serving
                    r = self.cp.put("routes", {"name": "stable", "match": {"path_prefix": "/stable"},
                                               "service": "main", "timeout_ms": 10000 + i})
                    self.assertEqual(r.status, 200, r)
                else:
                    name = "r%d" % i
                    r = self.cp.put("routes", {"name": name, "match": {"path_prefix": "/" + name},
                                               "service": "main"})
                    self.assertEqual(r.status, 201, r)
                    live.append(name)
            final = self.wait_converged()
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(results["failed"], [], "failed requests during the changes")
        self.assertGreater(results["ok"], 200, "too little traffic to say anything")
        for p in self.proxies:
            self.assertEqual(p.request(target="/%s/x" % live[-1]).status, 200)
            self.assertEqual(p.request(target="/%s/x" % deleted[-1]).status, 404)
            self.assertEqual(p.admin_json("/config")["version"], final)

    def test_rejected_change_never_reaches_proxies(self):
        before = self.wait_converged()
        r = self.cp.put("routes", {"name": "bad", "match": {"path_prefix": "/bad"}, "service": "missing"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"]["field"], "service")
        self.assertEqual(self.version(), before)
        for p in self.proxies:
            self.assertEqual(p.admin_json("/config")["version"], before)
            self.assertEqual(p.request(target="/bad").status, 404)

    def test_control_plane_down_then_back(self):
        version = self.wait_converged()
        self.cp.kill()                                           # SIGKILL: no goodbye on the streams
        for p in self.proxies:
            wait_until(lambda: metric(p.metrics(), "bgw_control_plane_connected") == 0, 10,
                       message="the proxy notices the stream is gone")
            self.assertEqual(p.request(target="/stable/x").status, 200)
        # A proxy restarted while the control plane is down serves its cached config at once.
        b = self.proxies[1]
        self.assertEqual(b.stop(), 0, b.stderr_tail())
        b.cleanup()
        b = self.proxies[1] = managed(self.cp, "node-b", os.path.join(self.tmp, "cache-b")).start()
        self.assertEqual(b.admin_status("/readyz"), 200)
        self.assertEqual(b.admin_json("/config")["version"], version)
        self.assertEqual(b.request(target="/stable/x").status, 200)
        # The control plane returns on the same ports and state: both reconnect and take new changes.
        self.cp.start()
        for p in self.proxies:
            wait_until(lambda: metric(p.metrics(), "bgw_control_plane_connected") == 1, 20,
                       message="the proxy reconnects")
        self.assertEqual(self.wait_converged(20), version)
        r = self.cp.put("routes", {"name": "after", "match": {"path_exact": "/after"}, "service": "main"})
        self.assertEqual(r.status, 201, r)
        self.wait_converged()
        for p in self.proxies:
            self.assertEqual(p.request(target="/after").status, 200)


if __name__ == "__main__":
    unittest.main()
