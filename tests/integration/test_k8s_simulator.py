"""The Kubernetes API simulator (tests/k8s/k8s_sim.py) checked against real clients: kubectl (discovery,
list with chunking, get by name, watch) over HTTPS with a generated kubeconfig, and Debian's
python3-kubernetes client (list + watch); plus the wire details the control plane depends on that the
clients do not exercise: 401, pagination, 410 after compaction, watch stream chunk splitting, bookmarks,
ConfigMap optimistic concurrency, injected failures."""

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "k8s"))
from k8s_sim import ApiSim, configmap, endpoint, endpointslice, make_tls, service  # noqa: E402

from harness import wait_until  # noqa: E402

KUBECTL = shutil.which("kubectl")


class SimBase(unittest.TestCase):
    tls = False

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bgw-k8s-sim-")
        self.ca = None
        tls = None
        if self.tls:
            self.ca, cert, key = make_tls(self.tmp)
            tls = (cert, key)
        self.sim = ApiSim(token="s3cret", tls=tls, bookmark_interval=0.2).start()
        self.sim.apply(service("default", "kubernetes", [("https", 443, 6443)]))
        self.sim.apply(service("shop", "orders", [("http", 80, "web")]))
        self.sim.apply(endpointslice("shop", "orders-a1", "orders", [("10.0.0.1", True), ("10.0.0.2", None)],
                                     [("web", 8080)]))
        self.sim.apply(configmap("shop", "bgw-state", {"document": "{}"}))

    def tearDown(self):
        self.sim.stop()
        shutil.rmtree(self.tmp, True)

    def conn(self):
        if self.tls:
            import ssl
            ctx = ssl.create_default_context(cafile=self.ca)
            return http.client.HTTPSConnection("127.0.0.1", self.sim.port, context=ctx, timeout=10)
        return http.client.HTTPConnection("127.0.0.1", self.sim.port, timeout=10)

    def req(self, method, path, body=None, token="s3cret"):
        c = self.conn()
        h = {"Authorization": "Bearer " + token} if token else {}
        if body is not None:
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, json.loads(data) if data else None, r


@unittest.skipUnless(KUBECTL and shutil.which("openssl"), "kubectl (and openssl) are needed for this test")
class KubectlTest(SimBase):
    tls = True

    def kubectl(self, *args, timeout=30):
        env = {"KUBECONFIG": self.kc, "HOME": self.tmp, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        r = subprocess.run([KUBECTL] + list(args), env=env, capture_output=True, text=True, timeout=timeout)
        self.assertEqual(r.returncode, 0, "kubectl %s: %s" % (" ".join(args), r.stderr[-2000:]))
        return r.stdout

    def setUp(self):
        super().setUp()
        self.kc = self.sim.kubeconfig(os.path.join(self.tmp, "kubeconfig"), ca_file=self.ca)

    def test_get_services_all_namespaces(self):
        out = self.kubectl("get", "services", "-A")
        rows = [line.split() for line in out.strip().splitlines()]
        self.assertEqual(rows[0][:2], ["NAMESPACE", "NAME"])
        self.assertEqual(sorted((r[0], r[1]) for r in rows[1:]), [("default", "kubernetes"), ("shop", "orders")])
        # chunked listing (limit=1 + continue) gives the same rows
        out2 = self.kubectl("get", "services", "-A", "--chunk-size=1")
        self.assertEqual(sorted(l.split()[1] for l in out2.strip().splitlines()[1:]), ["kubernetes", "orders"])
        self.assertTrue(any("continue=" in p for (_, p) in self.sim.requests))

    def test_get_endpointslices_json(self):
        doc = json.loads(self.kubectl("get", "endpointslices", "-n", "shop", "-o", "json"))
        self.assertEqual(len(doc["items"]), 1)
        s = doc["items"][0]
        self.assertEqual(s["kind"], "EndpointSlice")
        self.assertEqual(s["metadata"]["labels"]["kubernetes.io/service-name"], "orders")
        self.assertEqual([e["addresses"][0] for e in s["endpoints"]], ["10.0.0.1", "10.0.0.2"])
        self.assertEqual(s["ports"], [{"name": "web", "port": 8080, "protocol": "TCP"}])

    def test_get_configmap(self):
        doc = json.loads(self.kubectl("get", "configmap", "-n", "shop", "bgw-state", "-o", "json"))
        self.assertEqual(doc["data"], {"document": "{}"})
        self.assertTrue(doc["metadata"]["resourceVersion"])

    def test_watch_reads_events(self):
        env = {"KUBECONFIG": self.kc, "HOME": self.tmp, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        p = subprocess.Popen([KUBECTL, "get", "endpointslices", "-n", "shop", "--watch", "-o", "name"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        t = threading.Thread(target=lambda: [lines.append(l.strip()) for l in p.stdout], daemon=True)
        t.start()
        try:
            wait_until(lambda: "endpointslice.discovery.k8s.io/orders-a1" in lines, 20, message="initial list")
            wait_until(lambda: self.sim.watch_count() == 1, 20, message="kubectl watching")
            self.sim.split_chunks = True
            self.sim.apply(endpointslice("shop", "orders-b2", "orders", [("10.0.0.3", True)], [("web", 8080)]))
            wait_until(lambda: "endpointslice.discovery.k8s.io/orders-b2" in lines, 20, message="watch event")
        finally:
            p.terminate()
            p.wait(10)

    def test_wrong_token_is_refused(self):
        kc = self.sim.kubeconfig(os.path.join(self.tmp, "bad"), token="nope", ca_file=self.ca)
        env = {"KUBECONFIG": kc, "HOME": self.tmp, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        r = subprocess.run([KUBECTL, "get", "services", "-A"], env=env, capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("credentials", r.stderr)


def kubernetes_client():
    try:
        import kubernetes  # noqa: F401
        return True
    except ImportError:
        return False


@unittest.skipUnless(kubernetes_client() and shutil.which("openssl"), "python3-kubernetes is not installed")
class PythonClientTest(SimBase):
    tls = True

    def test_list_and_watch(self):
        from kubernetes import client, config, watch
        kc = self.sim.kubeconfig(os.path.join(self.tmp, "kubeconfig"), ca_file=self.ca)
        api_client = config.new_client_from_config(config_file=kc)
        disc = client.DiscoveryV1Api(api_client)
        lst = disc.list_namespaced_endpoint_slice("shop", limit=1)
        self.assertEqual([s.metadata.name for s in lst.items], ["orders-a1"])
        self.assertEqual(lst.items[0].ports[0].port, 8080)
        self.assertIsNone(lst.metadata._continue)
        core = client.CoreV1Api(api_client)
        svcs = core.list_service_for_all_namespaces(limit=1)
        self.assertEqual(len(svcs.items), 1)
        self.assertTrue(svcs.metadata._continue)
        more = core.list_service_for_all_namespaces(limit=1, _continue=svcs.metadata._continue)
        self.assertEqual(sorted([svcs.items[0].metadata.name, more.items[0].metadata.name]),
                         ["kubernetes", "orders"])
        rv = lst.metadata.resource_version
        seen = []

        def later():
            wait_until(lambda: self.sim.watch_count() == 1, 10)
            self.sim.split_chunks = True
            self.sim.apply(endpointslice("shop", "orders-a1", "orders", [("10.0.0.9", True)], [("web", 8080)]))
            self.sim.delete("endpointslices", "shop", "orders-a1")
        threading.Thread(target=later, daemon=True).start()
        w = watch.Watch()
        for ev in w.stream(disc.list_namespaced_endpoint_slice, "shop", resource_version=rv, timeout_seconds=10):
            seen.append((ev["type"], ev["object"].metadata.name,
                         [e.addresses[0] for e in (ev["object"].endpoints or [])]))
            if len(seen) == 2:
                w.stop()
        self.assertEqual(seen, [("MODIFIED", "orders-a1", ["10.0.0.9"]), ("DELETED", "orders-a1", ["10.0.0.9"])])


class WireTest(SimBase):
    def watch_events(self, path, n, timeout=10):
        """The first n events of a watch, read by JSON object from the raw chunked stream."""
        c = self.conn()
        c.request("GET", path, headers={"Authorization": "Bearer s3cret"})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
        dec = json.JSONDecoder()
        buf, out = "", []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            data = r.read1(65536).decode()
            if not data:
                break
            buf += data
            while True:
                buf = buf.lstrip()
                try:
                    obj, end = dec.raw_decode(buf)
                except ValueError:
                    break
                out.append(obj)
                buf = buf[end:]
        c.close()
        return out

    def test_unauthenticated_is_401(self):
        st, body, _ = self.req("GET", "/api/v1/services", token=None)
        self.assertEqual((st, body["kind"], body["code"]), (401, "Status", 401))
        st, _, _ = self.req("GET", "/api/v1/services", token="wrong")
        self.assertEqual(st, 401)

    def test_list_pagination_and_resource_version(self):
        for i in range(5):
            self.sim.apply(endpointslice("shop", "s%d" % i, "orders", [("10.1.0.%d" % i, True)]))
        st, page, _ = self.req("GET", "/apis/discovery.k8s.io/v1/endpointslices?limit=2")
        self.assertEqual(st, 200)
        self.assertEqual(page["kind"], "EndpointSliceList")
        rv = page["metadata"]["resourceVersion"]
        names = [i["metadata"]["name"] for i in page["items"]]
        self.sim.apply(endpointslice("shop", "late", "orders", []))   # not in the paginated snapshot
        while page["metadata"].get("continue"):
            self.assertEqual(page["metadata"]["resourceVersion"], rv)
            st, page, _ = self.req("GET", "/apis/discovery.k8s.io/v1/endpointslices?limit=2&continue="
                                   + page["metadata"]["continue"])
            self.assertEqual(st, 200)
            names += [i["metadata"]["name"] for i in page["items"]]
        self.assertEqual(sorted(names), ["orders-a1", "s0", "s1", "s2", "s3", "s4"])
        st, page, _ = self.req("GET", "/apis/discovery.k8s.io/v1/namespaces/nowhere/endpointslices")
        self.assertEqual((st, page["items"]), (200, []))

    def test_continue_after_compaction_is_410(self):
        st, page, _ = self.req("GET", "/api/v1/services?limit=1")
        self.sim.compact()
        st, body, _ = self.req("GET", "/api/v1/services?limit=1&continue=" + page["metadata"]["continue"])
        self.assertEqual((st, body["code"], body["reason"]), (410, 410, "Expired"))

    def test_watch_events_bookmarks_and_split_chunks(self):
        st, page, _ = self.req("GET", "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices")
        rv = page["metadata"]["resourceVersion"]
        self.sim.split_chunks = True
        self.sim.apply(endpointslice("shop", "x", "orders", None))
        self.sim.apply(endpointslice("shop", "x", "orders", [endpoint("10.0.0.5", True, terminating=True)]))
        self.sim.delete("endpointslices", "shop", "x")
        self.sim.apply(service("shop", "other"))          # another resource: not in this watch
        evs = self.watch_events("/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices?watch=1&"
                                "resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=5" % rv, 4)
        self.assertEqual([e["type"] for e in evs], ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"])
        self.assertIsNone(evs[0]["object"]["endpoints"])
        self.assertEqual(evs[0]["object"]["kind"], "EndpointSlice")
        self.assertGreater(int(evs[3]["object"]["metadata"]["resourceVersion"]),
                           int(evs[2]["object"]["metadata"]["resourceVersion"]))

    def test_watch_from_compacted_rv_is_gone(self):
        self.sim.apply(service("shop", "a"))
        self.sim.compact()
        evs = self.watch_events("/api/v1/services?watch=1&resourceVersion=2", 1)
        self.assertEqual(evs[0]["type"], "ERROR")
        self.assertEqual((evs[0]["object"]["kind"], evs[0]["object"]["code"]), ("Status", 410))
        self.sim.watch_gone_http = True
        st, body, _ = self.req("GET", "/api/v1/services?watch=1&resourceVersion=2")
        self.assertEqual((st, body["code"]), (410, 410))

    def test_watch_timeout_and_drop(self):
        t0 = time.monotonic()
        evs = self.watch_events("/api/v1/services?watch=1&resourceVersion=%d&timeoutSeconds=1" % self.sim.rv, 5)
        self.assertEqual(evs, [])
        self.assertLess(time.monotonic() - t0, 5)

    def test_injected_failures(self):
        self.sim.fail(429, count=2)
        st, body, r = self.req("GET", "/api/v1/services")
        self.assertEqual((st, body["code"], r.getheader("Retry-After")), (429, 429, "1"))
        self.assertEqual(self.req("GET", "/api/v1/services")[0], 429)
        self.assertEqual(self.req("GET", "/api/v1/services")[0], 200)
        self.sim.fail(500, seconds=30)
        self.assertEqual(self.req("GET", "/api/v1/services")[0], 500)
        self.sim.heal()
        self.assertEqual(self.req("GET", "/api/v1/services")[0], 200)

    def test_configmap_optimistic_concurrency(self):
        base = "/api/v1/namespaces/shop/configmaps"
        st, cm, _ = self.req("GET", base + "/bgw-state")
        rv = cm["metadata"]["resourceVersion"]
        cm["data"] = {"document": '{"v":1}'}
        st, new, _ = self.req("PUT", base + "/bgw-state", cm)
        self.assertEqual(st, 200)
        self.assertNotEqual(new["metadata"]["resourceVersion"], rv)
        cm["data"] = {"document": '{"v":2}'}                      # still carries the old resourceVersion
        st, body, _ = self.req("PUT", base + "/bgw-state", cm)
        self.assertEqual((st, body["reason"], body["code"]), (409, "Conflict", 409))
        st, body, _ = self.req("POST", base, {"metadata": {"name": "bgw-state"}, "data": {}})
        self.assertEqual((st, body["reason"]), (409, "AlreadyExists"))
        st, body, _ = self.req("POST", base, {"metadata": {"name": "fresh"}, "data": {"k": "v"}})
        self.assertEqual((st, body["data"]), (201, {"k": "v"}))
        st, body, _ = self.req("GET", base + "/missing")
        self.assertEqual((st, body["reason"]), (404, "NotFound"))

    def test_version(self):
        st, v, _ = self.req("GET", "/version")
        self.assertEqual((st, v["major"]), (200, "1"))


if __name__ == "__main__":
    unittest.main()
