"""The chart's bgw-control against the Kubernetes API simulator (tests/k8s/k8s_sim.py): for the defaults and
every example values file, bgw-control runs with the rendered flags (--in-cluster swapped for --kubeconfig
to the simulator, as the pod's service account would be), keeps its state in the rendered ConfigMap
(--state-configmap: created from the bootstrap, every change written there), resolves a service that names
a Kubernetes Service in the watched namespace, and every request it sent to the API server is one the
rendered RBAC rules allow its ServiceAccount: the chart's Roles are enough, and the test fails the day
bgw-control needs a permission the chart does not grant."""

import json
import os
import subprocess
import sys
import unittest
import urllib.parse
import urllib.request

import chart_lib as cl
from test_chart_flags import LocalRun, http_get
from test_chart_flags import CONTROL, case_name
from harness import bin_dir, wait_until

sys.path.insert(0, os.path.join(cl.ROOT, "tests", "k8s"))
from k8s_sim import ApiSim, endpoint, endpointslice, service  # noqa: E402

CASES = [None] + cl.EXAMPLES
NS = "shop"
# Served to every authenticated client by the default system:discovery / system:public-info-viewer roles.
DISCOVERY_PATHS = ("/api", "/apis", "/version", "/api/v1", "/apis/discovery.k8s.io/v1")
GROUP_PREFIXES = {"/api/v1": "", "/apis/discovery.k8s.io/v1": "discovery.k8s.io"}


def request_attributes(method, raw_path):
    """(verb, apiGroup, resource, namespace, name) of an API request, as Kubernetes' authorizer sees it;
    None for discovery documents."""
    u = urllib.parse.urlsplit(raw_path)
    path = u.path.rstrip("/")
    q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
    if path in DISCOVERY_PATHS:
        return None
    for prefix, group in GROUP_PREFIXES.items():
        if path.startswith(prefix + "/"):
            rest = path[len(prefix) + 1:].split("/")
            break
    else:
        raise AssertionError("request outside the API: %s %s" % (method, raw_path))
    ns = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        ns, rest = rest[1], rest[2:]
    resource, name = rest[0], (rest[1] if len(rest) > 1 else "")
    if method == "GET":
        if name:
            verb = "get"
        else:
            verb = "watch" if q.get("watch") in ("1", "true") else "list"
            # A list or watch of one object by field selector is checked against that name.
            sel = q.get("fieldSelector", "")
            if sel.startswith("metadata.name="):
                name = sel[len("metadata.name="):]
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
    return verb, group, resource, ns, name


def allowed(rules, attrs):
    """Does one of rules (dicts with the role's kind and namespace) allow attrs?"""
    verb, group, resource, ns, name = attrs
    for r in rules:
        if r["namespace"] is not None and r["namespace"] != ns:
            continue
        if verb not in r["verbs"] or group not in r["apiGroups"] or resource not in r["resources"]:
            continue
        if r.get("resourceNames") and name not in r["resourceNames"]:
            continue
        return True
    return False


def granted_rules(docs, sa):
    """The rules bound to ServiceAccount sa: ClusterRoles through ClusterRoleBindings (every namespace),
    Roles through RoleBindings (their namespace)."""
    out = []
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for b in cl.find(docs, kind):
            if not any(s["kind"] == "ServiceAccount" and s["name"] == sa and s["namespace"] == cl.NAMESPACE
                       for s in b["subjects"]):
                continue
            roles = [r for r in cl.find(docs, b["roleRef"]["kind"], name=b["roleRef"]["name"])
                     if r["metadata"].get("namespace") == b["metadata"].get("namespace")]
            for role in roles:
                for rule in role["rules"]:
                    out.append(dict(rule, namespace=b["metadata"].get("namespace") if kind == "RoleBinding"
                                    else None))
    return out


class ChartAgainstApiSimTest(LocalRun):
    def test_rbac_covers_every_request(self):
        control_bin = os.path.join(bin_dir(), "bgw-control")
        for case in CASES:
            with self.subTest(values=case_name(case)):
                self.run_case(control_bin, case)

    def run_case(self, control_bin, case):
        docs = cl.render([] if case is None else [case])
        case_dir = os.path.join(self.d, case_name(case))
        os.makedirs(case_dir)
        values = cl.merged_values([] if case is None else [case])
        sim = ApiSim(token="sa-token", bookmark_interval=0.2).start()
        self.addCleanup(sim.stop)
        sim.apply(service(NS, "orders", [("http", 80, 8080)]))
        sim.apply(endpointslice(NS, "orders-a", "orders", [endpoint("127.0.0.2")], [("http", 8080)]))
        kubeconfig = sim.kubeconfig(os.path.join(case_dir, "kubeconfig"))

        flags, admin_port, _, token = self.local_control_args(docs, case_dir)
        if not values["controlPlane"]["watchNamespace"] and values["rbac"]["scope"] == "namespace":
            self.assertIn(("--watch-namespace", cl.NAMESPACE), flags)
        flags = [("--kubeconfig", kubeconfig) if f == "--in-cluster" else (f, v) for (f, v) in flags]
        watched = [v for (f, v) in flags if f == "--watch-namespace"]
        state_cm = dict(flags).get("--state-configmap")
        self.assertEqual(state_cm is not None, values["controlPlane"]["stateStore"] == "configmap")
        control = self.start([control_bin] + cl.join_args(flags), "control-k8s-" + case_name(case))
        wait_until(lambda: http_get(admin_port, "/readyz")[0] == 200 or control.p.poll() is not None, 30,
                   message="bgw-control ready")
        self.assertIsNone(control.p.poll(), "bgw-control stopped:\n" + control.output())

        # A service that names the Kubernetes Service: resolved from the simulator's EndpointSlice when its
        # namespace is watched.
        body = json.dumps({"kubernetes": {"namespace": NS, "service": "orders", "port": "http"}}).encode()
        req = urllib.request.Request("http://127.0.0.1:%d/v1/services/k8s-orders" % admin_port, data=body,
                                     method="PUT", headers={"Authorization": "Bearer " + token,
                                                            "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            self.assertIn(r.status, (200, 201))

        def resolved():
            status, b = http_get(admin_port, "/v1/services/k8s-orders/endpoints", token)
            return status == 200 and b"127.0.0.2:8080" in b
        if not watched or NS in watched:
            wait_until(resolved, 30, message="the EndpointSlice's address in /v1/services/k8s-orders/endpoints")
        else:
            wait_until(lambda: sim.requests, 30, message="requests to the API server")
            self.assertFalse(resolved(), "a namespace that is not watched was resolved")
        self.assertEqual(control.stop(), 0, control.output())
        if state_cm:
            # The state lives in the rendered ConfigMap: the bootstrap's routes and the service just added.
            cm_ns, cm_name = state_cm.split("/")
            cm = sim.get("configmaps", cm_ns, cm_name)
            self.assertIsNotNone(cm, "bgw-control did not create the ConfigMap " + state_cm)
            state = json.loads(cm["data"]["state.json"])
            self.assertIn("k8s-orders", [e["object"]["name"] for e in state["services"]])
            boot = self.bootstrap(docs) or {}
            self.assertLessEqual({r["name"] for r in boot.get("routes", [])},
                                 {e["object"]["name"] for e in state["routes"]})

        rules = granted_rules(docs, cl.one(docs, "Deployment", name=CONTROL)["spec"]["template"]["spec"]
                              ["serviceAccountName"])
        with sim.cond:
            requests = list(sim.requests)
        self.assertTrue(requests)
        kinds = set()
        for method, path in requests:
            attrs = request_attributes(method, path)
            if attrs is None:
                continue
            kinds.add(attrs[2])
            self.assertTrue(allowed(rules, attrs), "%s %s (%s) is not allowed by the chart's RBAC rules"
                            % (method, path, "/".join(a or "-" for a in attrs)))
        self.assertLessEqual({"services", "endpointslices"}, kinds, "bgw-control watched nothing?")
        if state_cm:
            self.assertIn("configmaps", kinds, "the state ConfigMap was never read or written")
        if watched:
            for method, path in requests:
                attrs = request_attributes(method, path)
                if attrs and attrs[2] in ("services", "endpointslices"):
                    self.assertIn(attrs[3], watched, "%s %s outside the watched namespaces" % (method, path))


if __name__ == "__main__":
    unittest.main()
