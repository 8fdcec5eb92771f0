"""Kubernetes service discovery end to end: the real bgw-control watching the API simulator
(tests/k8s/k8s_sim.py) through --kubeconfig or --in-cluster, a managed bgw-proxy, and real upstreams as
"pods" on their own loopback addresses (127.0.0.N, one port). Every scenario changes EndpointSlices or
Services at the simulator and waits until the proxy's GET /config and real requests agree: scaling up and
down, pods turning not ready and terminating, a deleted Service (503), watches dropped, history compacted
(410 → relist), the API server failing for a while (500, 429), and a rolling restart under load without a
failed request."""

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "k8s"))
from k8s_sim import ApiSim, endpoint, endpointslice, make_client_cert, make_tls, service  # noqa: E402

from control_harness import Control  # noqa: E402
from harness import HERE, Conn, Proxy, clean_env, free_port, parse_prometheus, wait_until  # noqa: E402

NS = "shop"


class Pod:
    """One test upstream process listening on 127.0.0.<n>:port (its own address, like a pod IP)."""

    def __init__(self, n, port):
        self.ip = "127.0.0.%d" % n
        self.name = "pod%d" % n
        args = [sys.executable, "-m", "upstream", "--exit-on-stdin-eof", "--control", "127.0.0.1:0",
                "--listen", "%s=%s:%d" % (self.name, self.ip, port)]
        self.proc = subprocess.Popen(args, cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=clean_env())
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError("pod %s did not start" % self.ip)
        json.loads(line)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.kill()
            self.proc.wait(10)
            self.proc.stdout.close()


def managed_proxy(control):
    args = ["--control-plane", "127.0.0.1:%d" % control.xds_port, "--node-id", "k8s-node"]
    return Proxy(None, workers=2, args=args, omit=("config",))


def doc():
    return {"services": [
                {"name": "web", "kubernetes": {"namespace": NS, "service": "web", "port": "http"}},
                {"name": "web-by-number", "kubernetes": {"namespace": NS, "service": "web", "port": 80}},
                {"name": "other", "kubernetes": {"namespace": "elsewhere", "service": "web", "port": "http"}}],
            "routes": [{"name": "num", "match": {"path_prefix": "/num"}, "service": "web-by-number"},
                       {"name": "other", "match": {"path_prefix": "/other"}, "service": "other"},
                       {"name": "all", "match": {"path_prefix": "/"}, "service": "web"}]}


class DiscoveryBase(unittest.TestCase):
    tls = False
    bookmark_interval = 0.5

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bgw-k8s-it-")
        self.port = free_port()
        self.pods = {}
        tls = None
        if self.tls:
            self.ca, cert, key = make_tls(self.tmp)
            tls = (cert, key)
        self.sim = ApiSim(token="k8s-t0ken", tls=tls, bookmark_interval=self.bookmark_interval,
                          client_ca=self.ca if self.tls else None).start()
        self.sim.apply(service(NS, "web", [("http", 80, "web")]))
        self.sim.apply(service("elsewhere", "web", [("http", 80, "web")]))
        self.sim.apply(endpointslice("elsewhere", "web-x", "web", [("127.0.0.99", True)], [("http", self.port)]))
        self.cp = None
        self.proxy = None

    def start(self, pods=(11, 12), args=None, env=None):
        for n in pods:
            self.pod(n)
        self.set_slice("web-a", [(n, True) for n in pods])
        if args is None:
            args = ["--kubeconfig", self.sim.kubeconfig(os.path.join(self.tmp, "kubeconfig"))]
        self.cp = Control(bootstrap=doc(), args=args, env=env).start()
        self.proxy = managed_proxy(self.cp).start()

    def tearDown(self):
        if self.proxy is not None:
            if self.proxy.alive():
                self.assertEqual(self.proxy.stop(), 0, self.proxy.stderr_tail())
            self.proxy.cleanup()
        if self.cp is not None:
            if self.cp.alive():
                self.assertEqual(self.cp.stop(), 0, self.cp.stderr_tail())
            self.cp.cleanup()
        for p in self.pods.values():
            p.stop()
        self.sim.stop()
        shutil.rmtree(self.tmp, True)

    # -- helpers

    def pod(self, n):
        if n not in self.pods:
            self.pods[n] = Pod(n, self.port)
        return self.pods[n]

    def set_slice(self, name, eps):
        """Slice `name` of Service web with endpoints [(pod number, ready) or endpoint() dicts]."""
        items = None if eps is None else [e if isinstance(e, dict) else endpoint("127.0.0.%d" % e[0], e[1])
                                          for e in eps]
        self.sim.apply(endpointslice(NS, name, "web", items, [("http", self.port)]))

    def addrs(self, *pods):
        return sorted("127.0.0.%d:%d" % (n, self.port) for n in pods)

    def proxy_endpoints(self, service_name="web"):
        cfg = self.proxy.admin_json("/config")
        for s in cfg.get("services", []):
            if s["name"] == service_name:
                return sorted(e["address"] if isinstance(e, dict) else e for e in s.get("endpoints", []))
        return None

    def wait_endpoints(self, want, service_name="web", timeout=15.0):
        wait_until(lambda: self.proxy_endpoints(service_name) == want, timeout, interval=0.02,
                   message="proxy endpoints of %s == %s (control: %s)" % (service_name, want,
                                                                        self.cp.stderr_tail(8)))

    def served_by(self, n=40, path="/x"):
        seen = {}
        with Conn(self.proxy.port, timeout=5) as c:
            for i in range(n):
                r = c.request("GET", "%s?i=%d" % (path, i))
                key = r.header("x-upstream") if r.status == 200 else r.status
                seen[key] = seen.get(key, 0) + 1
        return seen

    def served_by_new_connections(self, n):
        seen = set()
        for i in range(n):
            with Conn(self.proxy.port, timeout=5) as c:
                r = c.request("GET", "/probe?i=%d" % i)
                seen.add(r.header("x-upstream") if r.status == 200 else r.status)
        return seen

    def control_metrics(self):
        return self.cp.metrics()


def metric_value(samples, name, **labels):
    total = 0.0
    for s in samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            total += s.value
    return total


class DiscoveryTest(DiscoveryBase):
    def test_scale_up_and_down(self):
        self.start(pods=(11, 12))
        self.wait_endpoints(self.addrs(11, 12))
        self.wait_endpoints(self.addrs(11, 12), "web-by-number")   # port 80 → the Service port named http
        self.assertEqual(set(self.served_by()), {"pod11", "pod12"})
        # scale up: a pod in the same slice, one in a second slice
        self.pod(13)
        self.pod(14)
        self.set_slice("web-a", [(11, True), (12, True), (13, True)])
        self.set_slice("web-b", [(14, True)])
        self.wait_endpoints(self.addrs(11, 12, 13, 14))
        self.assertEqual(set(self.served_by(80)), {"pod11", "pod12", "pod13", "pod14"})
        # scale down: pods leave the slices, a slice is deleted
        self.set_slice("web-a", [(12, True)])
        self.sim.delete("endpointslices", NS, "web-b")
        self.wait_endpoints(self.addrs(12))
        self.assertEqual(set(self.served_by()), {"pod12"})
        # a Service of another namespace keeps its own endpoints
        self.assertEqual(self.proxy_endpoints("other"), ["127.0.0.99:%d" % self.port])
        m = self.control_metrics()
        self.assertGreaterEqual(metric_value(m, "bgw_k8s_watch_events_total", resource="endpointslices",
                                             type="MODIFIED"), 2)
        self.assertGreaterEqual(metric_value(m, "bgw_k8s_watch_events_total", resource="endpointslices",
                                             type="DELETED"), 1)

    def test_paginated_list_and_stale_continue(self):
        # more Services than one page (500): the list follows `continue`; the first continue token is
        # made stale (410) on the way, so the list starts over
        for i in range(520):
            self.sim.apply(service("bulk", "s%d" % i, [("http", 80, 80)]))
        self.sim.compact_after_page = True
        self.start(pods=(11,))
        self.wait_endpoints(self.addrs(11))
        conts = [p for (_, p) in self.sim.requests if "/services?" in p and "continue=" in p]
        self.assertGreaterEqual(len(conts), 2, conts)          # the stale one, then the good one
        self.assertIn("HTTP 410", self.cp.stderr_text())
        self.assertIn("listed 522 services", self.cp.stderr_text())

    def test_not_ready_terminating_and_null_endpoints(self):
        self.start(pods=(11, 12, 13))
        self.wait_endpoints(self.addrs(11, 12, 13))
        self.set_slice("web-a", [(11, True), (12, False),
                                 endpoint("127.0.0.13", True, terminating=True, serving=True)])
        self.wait_endpoints(self.addrs(11))
        self.assertEqual(set(self.served_by()), {"pod11"})
        self.set_slice("web-a", [endpoint("127.0.0.11", None), (12, True)])   # no ready condition = ready
        self.wait_endpoints(self.addrs(11, 12))
        self.set_slice("web-a", None)                                          # "endpoints": null
        self.wait_endpoints([])
        self.assertEqual(set(self.served_by(5)), {503})

    def test_deleted_service_answers_503(self):
        self.start(pods=(11,))
        self.wait_endpoints(self.addrs(11))
        self.sim.delete("services", NS, "web")
        self.wait_endpoints([])
        self.wait_endpoints([], "web-by-number")
        self.assertEqual(set(self.served_by(5)), {503})
        self.sim.apply(service(NS, "web", [("http", 80, "web")]))               # it comes back
        self.wait_endpoints(self.addrs(11))
        self.assertEqual(set(self.served_by(5)), {"pod11"})

    def test_watch_dropped_timed_out_and_split_events(self):
        self.start(pods=(11, 12))
        self.wait_endpoints(self.addrs(11, 12))
        lists = metric_value(self.control_metrics(), "bgw_k8s_relists_total")
        self.assertEqual(lists, 0)                                        # first lists are not relists
        self.sim.split_chunks = True
        for i in range(3):
            wait_until(lambda: self.sim.watch_count() >= 2, 10, message="bgw-control watching")
            self.sim.drop_watches()
            self.set_slice("web-a", [(11, True), (12, i % 2 == 1)])
            self.wait_endpoints(self.addrs(11, 12) if i % 2 else self.addrs(11))
        # watches that time out on the server side are resumed the same way
        self.sim.watch_timeout_cap = 1.1
        watches = lambda: sum(1 for (_, p) in self.sim.requests if "watch=1" in p)
        before = watches()
        self.sim.drop_watches()
        wait_until(lambda: watches() >= before + 6, 10, message="watches timing out and resumed")
        self.set_slice("web-a", [(12, True)])
        self.wait_endpoints(self.addrs(12))
        m = self.control_metrics()
        self.assertEqual(metric_value(m, "bgw_k8s_relists_total"), lists)   # a dropped watch resumes: no list

    def test_compacted_history_relists(self):
        self.start(pods=(11, 12, 13))
        self.wait_endpoints(self.addrs(11, 12, 13))
        wait_until(lambda: self.sim.watch_count() >= 2, 10, message="bgw-control watching")
        lists = metric_value(self.control_metrics(), "bgw_k8s_relists_total")
        # the watches fail while changes happen and the history is compacted: resuming from the old
        # resourceVersion is 410 Gone (an ERROR event), so bgw-control must list again
        self.sim.fail(500, seconds=1.0)
        self.sim.drop_watches()
        self.set_slice("web-a", [(11, True)])
        self.set_slice("web-b", [(13, True)])
        self.sim.delete("endpointslices", NS, "web-b")                    # deleted while nobody watched
        self.sim.compact()
        self.wait_endpoints(self.addrs(11))
        m = self.control_metrics()
        self.assertGreater(metric_value(m, "bgw_k8s_relists_total"), lists)
        # and as an HTTP 410 on the watch request
        self.sim.watch_gone_http = True
        self.sim.fail(500, seconds=1.0)
        self.sim.drop_watches()
        self.set_slice("web-a", [(12, True)])
        self.sim.compact()
        self.wait_endpoints(self.addrs(12))
        # and an ERROR 410 on an open watch
        wait_until(lambda: self.sim.watch_count() >= 2, 10, message="bgw-control watching again")
        self.set_slice("web-a", [(11, True), (12, True)])
        self.sim.compact()
        self.sim.expire_watches()
        self.wait_endpoints(self.addrs(11, 12))
        self.assertEqual(set(self.served_by()), {"pod11", "pod12"})

    def test_api_server_failing_for_a_while(self):
        self.start(pods=(11,))
        self.wait_endpoints(self.addrs(11))
        self.pod(12)
        for code in (500, 429):
            wait_until(lambda: self.sim.watch_count() >= 2, 10, message="bgw-control watching")
            self.sim.fail(code, seconds=1.5)
            self.sim.drop_watches()
            self.set_slice("web-a", [(11, True), (12, code == 500)])
            self.wait_endpoints(self.addrs(11, 12) if code == 500 else self.addrs(11))
        self.assertIn("HTTP 500", self.cp.stderr_text())
        self.assertIn("HTTP 429", self.cp.stderr_text())
        self.assertEqual(self.proxy.admin_json("/config")["version"], self.cp.config()["version"])

    def test_rolling_restart_under_load(self):
        self.start(pods=(11, 12, 13))
        self.wait_endpoints(self.addrs(11, 12, 13))
        stop = threading.Event()
        results = {"ok": 0, "failed": [], "by": {}}
        lock = threading.Lock()

        def client(k):
            n = 0
            c = None
            while not stop.is_set():
                n += 1
                try:
                    if c is None or n % 20 == 0:
                        if c is not None:
                            c.close()
                        c = Conn(self.proxy.port, timeout=5)
                    r = c.request("GET", "/roll?k=%d&n=%d" % (k, n))
                    with lock:
                        if r.status == 200:
                            results["ok"] += 1
                            u = r.header("x-upstream")
                            results["by"][u] = results["by"].get(u, 0) + 1
                        else:
                            results["failed"].append((r.status, r.body[:200]))
                except Exception as e:
                    c = None
                    with lock:
                        results["failed"].append(("error", repr(e)))
            if c is not None:
                c.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        try:
            live = [11, 12, 13]
            for old, new in ((11, 21), (12, 22), (13, 23)):
                self.pod(new)
                # the new pod appears not ready, then turns ready
                self.set_slice("web-a", [(n, True) for n in live] + [(new, False)])
                self.set_slice("web-a", [(n, True) for n in live] + [(new, True)])
                live.append(new)
                self.wait_endpoints(self.addrs(*live))
                # the old pod is terminating (still serving while it drains), then removed and stopped
                live.remove(old)
                self.set_slice("web-a", [(n, True) for n in live] +
                               [endpoint("127.0.0.%d" % old, False, terminating=True, serving=True)])
                self.wait_endpoints(self.addrs(*live))
                # every worker has switched (the admin /config can lead a worker's pick-up of the new
                # snapshot): new connections, spread over the workers, no longer reach the old pod;
                # then it is removed and stopped, as after a pod's grace period
                wait_until(lambda: "pod%d" % old not in self.served_by_new_connections(8), 10,
                           message="pod%d no longer chosen by any worker" % old)
                self.set_slice("web-a", [(n, True) for n in live])
                self.pods.pop(old).stop()
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(results["failed"], [], "failed requests during the rolling restart")
        self.assertGreater(results["ok"], 100, "too little traffic to say anything")
        self.assertEqual(set(self.served_by()), {"pod21", "pod22", "pod23"})
        self.assertTrue({"pod21", "pod22", "pod23"} <= set(results["by"]), results["by"])


@unittest.skipUnless(shutil.which("openssl"), "openssl is needed to make certificates")
class InClusterTest(DiscoveryBase):
    """--in-cluster over HTTPS with a service-account directory (token, ca.crt, namespace), and
    --watch-namespace: the Service of another namespace is not watched."""
    tls = True

    def test_in_cluster_https_and_namespace(self):
        sa = os.path.join(self.tmp, "sa")
        os.mkdir(sa)
        shutil.copy(self.ca, os.path.join(sa, "ca.crt"))
        with open(os.path.join(sa, "token"), "w") as f:
            f.write("k8s-t0ken\n")
        with open(os.path.join(sa, "namespace"), "w") as f:
            f.write(NS)
        env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.sim.port),
               "BGW_K8S_SERVICEACCOUNT_DIR": sa}
        self.start(pods=(11,), args=["--in-cluster", "--watch-namespace", NS], env=env)
        self.wait_endpoints(self.addrs(11))
        self.assertEqual(self.proxy_endpoints("other"), [])      # namespace elsewhere is not watched
        self.pod(12)
        self.set_slice("web-a", [(11, True), (12, True)])
        self.wait_endpoints(self.addrs(11, 12))
        paths = [p for (_, p) in self.sim.requests]
        self.assertTrue(all("/namespaces/%s/" % NS in p for p in paths if "services" in p or "slices" in p), paths)
        self.assertTrue(any("allowWatchBookmarks=true" in p and "watch=1" in p for p in paths), paths)

    def test_client_certificate_kubeconfig(self):
        cert, key = make_client_cert(self.tmp)
        kc = self.sim.kubeconfig(os.path.join(self.tmp, "kubeconfig"), ca_file=self.ca, client_cert=cert,
                                 client_key=key)
        with open(kc) as f:
            self.assertNotIn("token: k8s-t0ken", f.read())   # the certificate is the only credential
        self.start(pods=(11,), args=["--kubeconfig", kc])
        self.wait_endpoints(self.addrs(11))
        self.set_slice("web-a", [(11, False)])
        self.wait_endpoints([])

    def test_wrong_token_retries_until_fixed(self):
        kc = self.sim.kubeconfig(os.path.join(self.tmp, "kubeconfig"), token="wrong", ca_file=self.ca)
        self.start(pods=(11,), args=["--kubeconfig", kc])
        self.wait_endpoints([])                                  # 401: no endpoints, but serving
        self.assertIn("HTTP 401", self.cp.stderr_text())
        self.sim.token = "wrong"                                 # the server accepts it now
        self.wait_endpoints(self.addrs(11))


if __name__ == "__main__":
    unittest.main()
