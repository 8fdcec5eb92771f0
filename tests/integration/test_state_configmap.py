"""The store in a ConfigMap (--state-configmap) end to end: two bgw-control replicas on one ConfigMap of the
API simulator (tests/k8s/k8s_sim.py), each with a managed bgw-proxy. A change through either replica's
admin API reaches both proxies; concurrent conflicting writes are retried or refused (412/409), never lost;
a restarted replica loads the ConfigMap; an API server failing for a while makes writes fail with a 5xx and
changes nothing; a deleted ConfigMap is created again by the next change; an invalid state written from
outside is ignored; a state over the ConfigMap limit is refused with 413."""

import json
import os
import shutil
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "k8s"))
from k8s_sim import ApiSim  # noqa: E402

from control_harness import Control, route, service  # noqa: E402
from harness import Proxy, wait_until  # noqa: E402

NS = "gw"
NAME = "bgw-state"


def managed_proxy(control, node):
    args = ["--control-plane", "127.0.0.1:%d" % control.xds_port, "--node-id", node]
    return Proxy(None, workers=1, args=args, omit=("config",))


class ConfigMapStore(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bgw-cm-it-")
        self.sim = ApiSim(token="cm-t0ken", bookmark_interval=0.5).start()
        self.kubeconfig = self.sim.kubeconfig(os.path.join(self.tmp, "kubeconfig"))
        self.boot = {"services": [service("orders", "127.0.0.1:9")],
                     "routes": [route("boot", "orders", "/boot")]}
        self.cps, self.proxies = [], []
        for i in range(2):
            self.cps.append(self.control())
        for i, cp in enumerate(self.cps):
            self.proxies.append(managed_proxy(cp, "node-%d" % i).start())

    def control(self):
        return Control(bootstrap=self.boot, args=["--kubeconfig", self.kubeconfig,
                                                  "--state-configmap", "%s/%s" % (NS, NAME)]).start()

    def tearDown(self):
        for p in self.proxies:
            if p.alive():
                self.assertEqual(p.stop(), 0, p.stderr_tail())
            p.cleanup()
        for cp in self.cps:
            if cp.alive():
                self.assertEqual(cp.stop(), 0, cp.stderr_tail())
            cp.cleanup()
        self.sim.stop()
        shutil.rmtree(self.tmp, True)

    # -- helpers

    def stored(self):
        """The state in the ConfigMap (parsed), or None."""
        cm = self.sim.get("configmaps", NS, NAME)
        return json.loads(cm["data"]["state.json"]) if cm else None

    def stored_routes(self):
        return {e["object"]["name"]: e for e in self.stored()["routes"]}

    def routes_of(self, cp):
        return {r["name"]: r for r in cp.get_json("/v1/routes")["items"]}

    def proxy_routes(self, p):
        return sorted(r["name"] for r in p.admin_json("/config").get("routes", []))

    def wait_everywhere(self, names, absent=()):
        """Every replica's GET /v1/routes and every proxy has the routes names (and none of absent)."""
        def ok():
            for cp in self.cps:
                have = self.routes_of(cp)
                if any(n not in have for n in names) or any(n in have for n in absent):
                    return False
            for p in self.proxies:
                have = self.proxy_routes(p)
                if any(n not in have for n in names) or any(n in have for n in absent):
                    return False
            return True
        wait_until(ok, 15.0, 0.02, "routes %s everywhere (stderr: %s)" % (sorted(names),
                                                                           self.cps[0].stderr_tail(6)))

    # -- tests

    def test_created_from_bootstrap_once(self):
        st = self.stored()
        self.assertEqual(st["version"], 1)          # the first replica's bootstrap; the second one's ignored
        self.assertEqual(sorted(self.stored_routes()), ["boot"])
        self.wait_everywhere(["boot"])
        self.assertIn("already has a history", self.cps[1].stderr_text())
        # only the one ConfigMap was ever watched or written, never the collection listed
        for (method, path) in self.sim.requests:
            if "/configmaps" in path and method == "GET" and "/configmaps/" not in path:
                self.assertIn("watch=1", path)
                self.assertIn("fieldSelector=metadata.name%3D" + NAME, path)

    def test_change_through_either_replica_reaches_both_proxies(self):
        a, b = self.cps
        r = a.put("routes", route("from-a", "orders", "/a"))
        self.assertEqual(r.status, 201, r)
        self.wait_everywhere(["boot", "from-a"])
        r = b.put("routes", route("from-b", "orders", "/b"))
        self.assertEqual(r.status, 201, r)
        self.wait_everywhere(["boot", "from-a", "from-b"])
        self.assertEqual(sorted(self.stored_routes()), ["boot", "from-a", "from-b"])
        r = a.call("DELETE", "/v1/routes/from-b")
        self.assertEqual(r.status, 204, r)
        self.wait_everywhere(["boot", "from-a"], absent=["from-b"])
        self.assertEqual(self.routes_of(a), self.routes_of(b))
        self.assertEqual(str(self.stored()["version"]), a.get_json("/v1/routes")["version"])

    def test_if_match_race_one_wins(self):
        a, b = self.cps
        rev = self.routes_of(a)["boot"]["revision"]
        self.wait_everywhere(["boot"])
        self.assertEqual(self.routes_of(b)["boot"]["revision"], rev)
        replies = {}
        go = threading.Barrier(2)

        def write(cp, prefix):
            go.wait()
            replies[prefix] = cp.put("routes", route("boot", "orders", prefix), headers={"If-Match": '"%s"' % rev})
        ts = [threading.Thread(target=write, args=(cp, p)) for (cp, p) in ((a, "/one"), (b, "/two"))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        codes = sorted(r.status for r in replies.values())
        self.assertEqual(codes, [200, 412], replies)
        winner = [p for (p, r) in replies.items() if r.status == 200][0]
        stored = self.stored_routes()["boot"]["object"]
        self.assertEqual(stored["match"]["path_prefix"], winner)
        wait_until(lambda: all(self.routes_of(cp)["boot"]["match"]["path_prefix"] == winner for cp in self.cps),
                   10.0, 0.02, "both replicas show the winner")

    def test_concurrent_burst_nothing_lost(self):
        accepted, refused = [], []
        lock = threading.Lock()
        go = threading.Barrier(4)

        def writer(cp, tag):
            go.wait()
            for i in range(8):
                name = "%s-%d" % (tag, i)
                r = cp.put("routes", route(name, "orders", "/" + name))
                with lock:
                    (accepted if r.status == 201 else refused).append((name, r.status, r.body))
        ts = [threading.Thread(target=writer, args=(cp, "%s%d" % (tag, cp is self.cps[1])))
              for cp in self.cps for tag in ("x", "y")]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for (name, status, body) in refused:        # only "kept changing: try again" may be refused
            self.assertEqual(status, 409, body)
        self.assertGreater(len(accepted), 24, refused)
        names = [n for (n, _, _) in accepted]
        self.assertTrue(set(names) <= set(self.stored_routes()), names)
        self.wait_everywhere(names + ["boot"])
        st = self.stored()
        self.assertEqual(len(set(e["revision"] for e in st["routes"])), len(st["routes"]))

    def test_restart_loads_the_configmap(self):
        a, b = self.cps
        a.stop()
        r = b.put("routes", route("while-down", "orders", "/down"))
        self.assertEqual(r.status, 201, r)
        a.start()
        self.assertIn("while-down", self.routes_of(a))
        self.wait_everywhere(["boot", "while-down"])

    def test_api_server_failing_refuses_writes_cleanly(self):
        a, b = self.cps
        before = self.stored()
        self.sim.fail(500, seconds=60)
        r = a.put("routes", route("during-outage", "orders", "/o"))
        self.assertEqual(r.status, 500, r)
        self.assertIn("ConfigMap %s/%s" % (NS, NAME), r.json()["error"]["message"])
        self.assertNotIn("during-outage", self.routes_of(a))
        self.assertEqual(self.stored(), before)
        self.sim.heal()
        r = a.put("routes", route("after-outage", "orders", "/o"))
        self.assertEqual(r.status, 201, r)
        self.wait_everywhere(["boot", "after-outage"], absent=["during-outage"])

    def test_deleted_configmap_created_again_by_the_next_change(self):
        a, b = self.cps
        self.assertTrue(self.sim.delete("configmaps", NS, NAME))
        for cp in self.cps:
            wait_until(lambda: "was deleted" in cp.stderr_text(), 10.0, 0.05, "deletion logged")
        self.wait_everywhere(["boot"])                          # memory and proxies keep the state
        r = b.put("routes", route("after-delete", "orders", "/d"))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(sorted(self.stored_routes()), ["after-delete", "boot"])
        self.wait_everywhere(["boot", "after-delete"])

    def test_invalid_state_from_outside_is_ignored(self):
        a, b = self.cps
        cm = self.sim.get("configmaps", NS, NAME)
        bad = json.loads(cm["data"]["state.json"])
        bad["version"] += 5
        bad["routes"].append({"revision": 1, "object": {"name": "bad", "service": "nowhere",
                                                        "match": {"path_prefix": "/bad"}}})
        cm["data"]["state.json"] = json.dumps(bad)
        del cm["metadata"]["resourceVersion"]
        self.sim.apply(cm, "configmaps")
        for cp in self.cps:
            wait_until(lambda: "holds an invalid state" in cp.stderr_text(), 10.0, 0.05, "invalid state logged")
        self.assertNotIn("bad", self.routes_of(a))
        r = b.put("routes", route("fixed", "orders", "/f"))     # the next change replaces the bad state
        self.assertEqual(r.status, 201, r)
        self.wait_everywhere(["boot", "fixed"], absent=["bad"])
        self.assertNotIn("bad", self.stored_routes())

    def test_state_over_the_configmap_limit_is_refused(self):
        a, b = self.cps
        eps = ["10.%d.%d.%d:8080" % (i >> 16 & 255, i >> 8 & 255, i & 255) for i in range(1, 16001)]
        accepted = 0
        for i in range(6):
            r = a.put("services", service("big%d" % i, *eps))
            if r.status != 201:
                break
            accepted += 1
        self.assertEqual(r.status, 413, r)
        self.assertIn("ConfigMap", r.json()["error"]["message"])
        self.assertGreater(accepted, 0)
        self.assertNotIn("big%d" % accepted, [s["object"]["name"] for s in self.stored()["services"]])
        self.assertEqual(a.status("/v1/services/big%d" % accepted), 404)


if __name__ == "__main__":
    unittest.main()
