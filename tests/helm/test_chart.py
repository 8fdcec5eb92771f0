"""The Helm chart deploy/helm/baribhara-gateway rendered with its defaults and with every values file of
examples/kubernetes/: valid YAML, the expected kinds, RBAC verbs exactly as needed, probes, labels and
selectors that agree, hardened security contexts, values validated by values.schema.json, Chart.yaml in
step with the project version, and the dashboards and alert rules the same as deploy/grafana and
deploy/prometheus."""

import base64
import filecmp
import glob
import json
import os
import re
import unittest

import jsonschema
import yaml

import chart_lib as cl
from chart_lib import CHART, EXAMPLES, NAMESPACE, RELEASE, ROOT

FULL = "%s-baribhara-gateway" % RELEASE
CONTROL = FULL + "-control"
PROXY = FULL + "-proxy"
STANDARD_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                   "app.kubernetes.io/component", "app.kubernetes.io/managed-by", "helm.sh/chart")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Every values file the chart is rendered with: None stands for the defaults alone.
CASES = [None] + EXAMPLES


def case_name(case):
    return "defaults" if case is None else os.path.relpath(case, ROOT)


def load_values(case):
    return cl.merged_values([] if case is None else [case])


def render_case(case):
    return cl.render([] if case is None else [case])


def labels_match(selector, labels):
    return all(labels.get(k) == v for (k, v) in selector.items())


def pod_labels(deploy):
    return deploy["spec"]["template"]["metadata"]["labels"]


class ChartMetadataTest(unittest.TestCase):
    def test_chart_yaml(self):
        with open(os.path.join(CHART, "Chart.yaml")) as f:
            chart = yaml.safe_load(f)
        self.assertEqual(chart["apiVersion"], "v2")
        self.assertEqual(chart["name"], "baribhara-gateway")
        self.assertEqual(chart["type"], "application")
        self.assertRegex(chart["version"], r"^\d+\.\d+\.\d+")
        self.assertEqual(chart["appVersion"], cl.project_version(),
                         "Chart.yaml appVersion must be the project VERSION of CMakeLists.txt")

    def test_no_symlinks_in_chart(self):
        # helm package does not follow links that leave the chart: everything must be a real file.
        for dirpath, dirnames, filenames in os.walk(CHART):
            for n in dirnames + filenames:
                self.assertFalse(os.path.islink(os.path.join(dirpath, n)), os.path.join(dirpath, n))

    def test_examples_exist(self):
        names = {os.path.basename(p) for p in EXAMPLES}
        for want in ("values-minimal.yaml", "values-production.yaml", "values-namespace-rbac.yaml",
                     "values-existing-secret.yaml", "values-state-volume.yaml"):
            self.assertIn(want, names)


class MonitoringFilesTest(unittest.TestCase):
    """files/grafana and files/prometheus inside the chart are the canonical copies `helm package` takes;
    deploy/grafana and deploy/prometheus, where they exist, must hold exactly the same files
    (`make helm-files` copies them into the chart)."""

    def compare(self, src_dir, chart_dir, pattern):
        chart_files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(chart_dir, pattern)))
        self.assertTrue(chart_files, "the chart has no %s under %s" % (pattern, chart_dir))
        if not os.path.isdir(src_dir):
            self.skipTest("%s does not exist: the chart's copies are the only ones" % os.path.relpath(src_dir, ROOT))
        src_files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(src_dir, pattern))
                           if not p.endswith(".test.yml"))          # promtool unit tests stay outside
        if not src_files:
            self.skipTest("%s holds no %s" % (os.path.relpath(src_dir, ROOT), pattern))
        self.assertEqual(src_files, chart_files, "%s and %s hold different files: run `make helm-files`"
                         % (os.path.relpath(src_dir, ROOT), os.path.relpath(chart_dir, ROOT)))
        for n in src_files:
            self.assertTrue(filecmp.cmp(os.path.join(src_dir, n), os.path.join(chart_dir, n), shallow=False),
                            "%s differs from the chart's copy: run `make helm-files`" % n)

    def test_dashboards_in_sync(self):
        self.compare(os.path.join(ROOT, "deploy", "grafana"), os.path.join(CHART, "files", "grafana"), "*.json")

    def test_rules_in_sync(self):
        self.compare(os.path.join(ROOT, "deploy", "prometheus"), os.path.join(CHART, "files", "prometheus"),
                     "*.yml")

    def test_dashboards_are_json_with_panels(self):
        for p in glob.glob(os.path.join(CHART, "files", "grafana", "*.json")):
            with open(p) as f:
                d = json.load(f)
            self.assertTrue(d.get("title"), p)
            self.assertTrue(d.get("panels"), p)

    def test_rules_are_prometheus_rule_groups(self):
        for p in glob.glob(os.path.join(CHART, "files", "prometheus", "*.yml")):
            with open(p) as f:
                d = yaml.safe_load(f)
            self.assertTrue(d["groups"], p)
            for g in d["groups"]:
                self.assertTrue(g["name"])
                for r in g["rules"]:
                    self.assertTrue(r.get("alert") or r.get("record"), r)
                    self.assertTrue(r["expr"], r)


class RenderTest(unittest.TestCase):
    """Structural checks, run for the defaults and every example values file."""

    @classmethod
    def setUpClass(cls):
        cls.rendered = {}
        for case in CASES:
            cls.rendered[case] = (render_case(case), load_values(case))

    def each(self):
        for case in CASES:
            docs, values = self.rendered[case]
            with self.subTest(values=case_name(case)):
                yield case, docs, values

    def test_documents_are_well_formed(self):
        for case, docs, values in self.each():
            self.assertTrue(docs)
            seen = set()
            for d in docs:
                self.assertIsInstance(d, dict)
                self.assertTrue(d.get("apiVersion") and d.get("kind"), d)
                name = d["metadata"]["name"]
                self.assertTrue(DNS_LABEL.match(name) and len(name) <= 63, name)
                key = (d["kind"], d["metadata"].get("namespace"), name)
                self.assertNotIn(key, seen, "rendered twice")
                seen.add(key)
                if d["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
                    self.assertTrue(d["metadata"].get("namespace"), "%s %s has no namespace" % (d["kind"], name))
                # Nothing rendered as an empty value by a missing key.
                self.assertNotIn("<no value>", yaml.safe_dump(d))

    def test_expected_kinds(self):
        for case, docs, v in self.each():
            kinds = sorted(d["kind"] for d in docs)
            cp, px, m = v["controlPlane"], v["proxy"], v["metrics"]
            want = ["Deployment", "Deployment", "Service", "Service"]
            want += ["Service"] if px["adminService"]["enabled"] else []
            want += ["ServiceAccount"] * (int(cp["serviceAccount"]["create"]) + int(px["serviceAccount"]["create"]))
            if v["rbac"]["create"]:
                if v["rbac"]["scope"] == "cluster":
                    want += ["ClusterRole", "ClusterRoleBinding"]
                else:
                    w = cp["watchNamespace"]
                    want += ["Role", "RoleBinding"] * (len(w) if isinstance(w, list) else 1)
                if cp["stateStore"] == "configmap":
                    want += ["Role", "RoleBinding"]
            if cp["stateStore"] == "volume" and cp["persistence"]["enabled"] and not cp["persistence"]["existingClaim"]:
                want += ["PersistentVolumeClaim"]
            want += [] if cp["adminToken"]["existingSecret"] else ["Secret"]
            want += ["ConfigMap"] if cp["bootstrap"] else []
            want += ["PodDisruptionBudget"] if px["podDisruptionBudget"]["enabled"] else []
            want += ["PodDisruptionBudget"] if cp["podDisruptionBudget"]["enabled"] else []
            want += ["HorizontalPodAutoscaler"] if px["autoscaling"]["enabled"] else []
            want += ["ServiceMonitor"] * 2 if m["serviceMonitor"]["enabled"] else []
            want += ["PrometheusRule"] if m["prometheusRule"]["enabled"] else []
            want += ["ConfigMap"] if m["grafanaDashboard"]["enabled"] else []
            want += ["Pod"] if v["tests"]["enabled"] else []
            want += ["NetworkPolicy"] * 2 if v["networkPolicy"]["enabled"] else []
            self.assertEqual(kinds, sorted(want))
            self.assertEqual(one(docs, "Deployment", component="proxy")["metadata"]["name"], PROXY)
            self.assertEqual(one(docs, "Deployment", component="control-plane")["metadata"]["name"], CONTROL)

    def test_standard_labels(self):
        for case, docs, v in self.each():
            for d in docs:
                labels = d["metadata"].get("labels", {})
                for k in STANDARD_LABELS:
                    self.assertIn(k, labels, "%s %s lacks %s" % (d["kind"], d["metadata"]["name"], k))
                self.assertEqual(labels["app.kubernetes.io/name"], "baribhara-gateway")
                self.assertEqual(labels["app.kubernetes.io/instance"], RELEASE)
                self.assertEqual(labels["app.kubernetes.io/managed-by"], "Helm")
                self.assertEqual(labels["helm.sh/chart"], "baribhara-gateway-0.1.0")
                self.assertEqual(labels["app.kubernetes.io/version"], v["image"]["tag"] or cl.project_version())
            for dep in find(docs, "Deployment"):
                for k in STANDARD_LABELS:
                    self.assertIn(k, pod_labels(dep))

    def test_selectors_match_pod_templates(self):
        for case, docs, v in self.each():
            deploys = find(docs, "Deployment")
            for dep in deploys:
                sel = dep["spec"]["selector"]["matchLabels"]
                self.assertEqual(set(sel), {"app.kubernetes.io/name", "app.kubernetes.io/instance",
                                            "app.kubernetes.io/component"}, "selectors use stable labels only")
                self.assertTrue(labels_match(sel, pod_labels(dep)))
                # No two Deployments select each other's pods.
                for other in deploys:
                    if other is not dep:
                        self.assertFalse(labels_match(sel, pod_labels(other)))
            for svc in find(docs, "Service"):
                targets = [d for d in deploys if labels_match(svc["spec"]["selector"], pod_labels(d))]
                self.assertEqual(len(targets), 1, "Service %s selects %d Deployments"
                                 % (svc["metadata"]["name"], len(targets)))
                ports = {p["name"]: p["containerPort"] for c in targets[0]["spec"]["template"]["spec"]["containers"]
                         for p in c["ports"]}
                for p in svc["spec"]["ports"]:
                    self.assertIn(p["targetPort"], ports, "Service %s port %s" % (svc["metadata"]["name"], p))
            for pdb in find(docs, "PodDisruptionBudget"):
                targets = [d for d in deploys if labels_match(pdb["spec"]["selector"]["matchLabels"], pod_labels(d))]
                self.assertEqual(len(targets), 1)
                self.assertEqual(targets[0]["metadata"]["name"], pdb["metadata"]["name"])
                self.assertNotEqual("maxUnavailable" in pdb["spec"], "minAvailable" in pdb["spec"])
            for hpa in find(docs, "HorizontalPodAutoscaler"):
                self.assertEqual(hpa["apiVersion"], "autoscaling/v2")
                ref = hpa["spec"]["scaleTargetRef"]
                self.assertEqual((ref["apiVersion"], ref["kind"], ref["name"]), ("apps/v1", "Deployment", PROXY))
                self.assertNotIn("replicas", one(docs, "Deployment", name=PROXY)["spec"],
                                 "with an HPA the Deployment must not set replicas")
                self.assertTrue(hpa["spec"]["metrics"])
                self.assertLessEqual(hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
            for sm in find(docs, "ServiceMonitor"):
                svcs = [s for s in find(docs, "Service")
                        if labels_match(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
                self.assertTrue(svcs, "ServiceMonitor %s selects no Service" % sm["metadata"]["name"])
                for ep in sm["spec"]["endpoints"]:
                    self.assertEqual(ep["path"], "/metrics")
                    # The dashboards and alert rules select job="bgw-proxy" / job="bgw-control".
                    want_job = "bgw-control" if sm["metadata"]["name"] == CONTROL else "bgw-proxy"
                    self.assertIn({"action": "replace", "targetLabel": "job", "replacement": want_job},
                                  ep["relabelings"])
                # At least one selected Service carries the scraped port.
                self.assertTrue(any(ep["port"] in [p["name"] for p in s["spec"]["ports"]]
                                    for s in svcs for ep in sm["spec"]["endpoints"]))
            for np in find(docs, "NetworkPolicy"):
                targets = [d for d in deploys if labels_match(np["spec"]["podSelector"]["matchLabels"], pod_labels(d))]
                self.assertEqual(len(targets), 1)
                ports = {p["name"] for c in targets[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
                for rule in np["spec"]["ingress"]:
                    for p in rule["ports"]:
                        self.assertIn(p["port"], ports)
                    if targets[0]["metadata"]["name"] == CONTROL and rule["ports"][0]["port"] == "xds":
                        # The config stream admits exactly this release's proxies.
                        self.assertEqual(len(rule["from"]), 1)
                        self.assertEqual(rule["from"][0]["podSelector"]["matchLabels"],
                                         one(docs, "Deployment", name=PROXY)["spec"]["selector"]["matchLabels"])
                    if (targets[0]["metadata"]["name"] == PROXY and rule["ports"][0]["port"] == "admin"
                            and v["tests"]["enabled"]):
                        # The helm test pod may reach the admin listener.
                        self.assertTrue(any(labels_match(f.get("podSelector", {}).get("matchLabels", {"x": "y"}),
                                                         one(docs, "Pod")["metadata"]["labels"]) for f in rule["from"]))
            # Anti-affinity and topology spread selectors pick the proxy pods.
            proxy = one(docs, "Deployment", name=PROXY)["spec"]["template"]
            for t in proxy["spec"].get("topologySpreadConstraints", []):
                self.assertTrue(labels_match(t["labelSelector"]["matchLabels"], proxy["metadata"]["labels"]))
            aff = proxy["spec"].get("affinity", {}).get("podAntiAffinity")
            if aff:
                for t in aff.get("preferredDuringSchedulingIgnoredDuringExecution", []):
                    self.assertTrue(labels_match(t["podAffinityTerm"]["labelSelector"]["matchLabels"],
                                                 proxy["metadata"]["labels"]))

    def test_rbac_is_exactly_what_bgw_control_needs(self):
        for case, docs, v in self.each():
            if not v["rbac"]["create"]:
                continue
            rules = []
            for kind in ("ClusterRole", "Role"):
                for r in find(docs, kind):
                    for rule in r["rules"]:
                        for group in rule["apiGroups"]:
                            for res in rule["resources"]:
                                rules.append((kind, r["metadata"].get("namespace"), group, res,
                                              tuple(sorted(rule["verbs"])), tuple(rule.get("resourceNames", ()))))
            cm = v["controlPlane"]["stateConfigMap"] or FULL + "-state"
            w = v["controlPlane"]["watchNamespace"]
            watched = w if isinstance(w, list) else [w] if w else []
            if v["rbac"]["scope"] == "cluster":
                disc = [("ClusterRole", None)]
            else:
                watched = watched or [NAMESPACE]
                disc = [("Role", ns) for ns in watched]
            want = []
            for kind, ns in disc:
                want += [(kind, ns, "", "services", ("get", "list", "watch"), ()),
                         (kind, ns, "discovery.k8s.io", "endpointslices", ("get", "list", "watch"), ())]
            if v["controlPlane"]["stateStore"] == "configmap":
                want += [("Role", NAMESPACE, "", "configmaps", ("get", "update", "watch"), (cm,)),
                         ("Role", NAMESPACE, "", "configmaps", ("create",), ())]
            self.assertEqual(sorted(rules), sorted(want))
            sa = one(docs, "Deployment", name=CONTROL)["spec"]["template"]["spec"]["serviceAccountName"]
            for b in find(docs, "ClusterRoleBinding") + find(docs, "RoleBinding"):
                role = [r for r in find(docs, b["roleRef"]["kind"], name=b["roleRef"]["name"])
                        if r["metadata"].get("namespace") == b["metadata"].get("namespace")]
                self.assertEqual(len(role), 1, "binding %s names no rendered role" % b["metadata"]["name"])
                self.assertEqual(b["subjects"], [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}])
            # The state ConfigMap named in the flag is the one the Role names.
            pairs = cl.parse_args(cl.container(one(docs, "Deployment", name=CONTROL))["args"])
            args = dict(pairs)
            self.assertEqual([x for (f, x) in pairs if f == "--watch-namespace"], watched)
            if v["controlPlane"]["stateStore"] == "configmap":
                self.assertEqual(args["--state-configmap"], "%s/%s" % (NAMESPACE, cm))
            else:
                self.assertNotIn("--state-configmap", args)

    def test_probes(self):
        for case, docs, v in self.each():
            for dep in find(docs, "Deployment"):
                c = cl.container(dep)
                ports = {p["name"] for p in c["ports"]}
                self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz")
                self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz")
                for probe in ("livenessProbe", "readinessProbe"):
                    self.assertIn(c[probe]["httpGet"]["port"], ports)
                    self.assertEqual(c[probe]["httpGet"]["port"], "admin")

    def test_security_contexts(self):
        for case, docs, v in self.each():
            pods = [(d["kind"], d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in find(docs, "Deployment")]
            pods += [(d["kind"], d["metadata"]["name"], d["spec"]) for d in find(docs, "Pod")]
            for kind, name, spec in pods:
                psc = spec.get("securityContext", {})
                self.assertTrue(psc.get("runAsNonRoot"), name)
                self.assertEqual(psc.get("seccompProfile"), {"type": "RuntimeDefault"}, name)
                for c in spec["containers"]:
                    sc = c["securityContext"]
                    self.assertIs(sc["allowPrivilegeEscalation"], False, name)
                    self.assertIs(sc["readOnlyRootFilesystem"], True, name)
                    self.assertIn("ALL", sc["capabilities"]["drop"], name)
                    self.assertFalse(sc["capabilities"].get("add"), name)
                    self.assertFalse(sc.get("privileged"), name)
                    self.assertTrue(sc.get("runAsNonRoot", psc.get("runAsNonRoot")), name)
                    self.assertTrue(c.get("resources", {}).get("limits"), "%s has no limits" % name)
                if kind == "Deployment":
                    self.assertEqual(psc.get("runAsUser"), 65532, "the image's user")

    def test_proxy_deployment(self):
        for case, docs, v in self.each():
            dep = one(docs, "Deployment", name=PROXY)
            spec = dep["spec"]["template"]["spec"]
            c = cl.container(dep)
            self.assertEqual(c["command"], ["/usr/local/bin/bgw-proxy"])
            args = dict(cl.parse_args(c["args"]))
            svc = one(docs, "Service", name=CONTROL)
            xds = [p["port"] for p in svc["spec"]["ports"] if p["name"] == "xds"][0]
            self.assertEqual(args["--control-plane"], "%s.%s.svc:%d" % (CONTROL, NAMESPACE, xds))
            self.assertEqual(args["--node-id"], "$(POD_NAME)")
            env = {e["name"]: e for e in c["env"]}
            self.assertEqual(env["POD_NAME"]["valueFrom"], {"fieldRef": {"fieldPath": "metadata.name"}})
            admin = [p["containerPort"] for p in c["ports"] if p["name"] == "admin"][0]
            http = [p["containerPort"] for p in c["ports"] if p["name"] == "http"][0]
            self.assertEqual(args["--admin"], "%s:%d" % (v["proxy"]["listenAddress"], admin))
            self.assertNotRegex(args["--admin"], r"^127\.", "the kubelet must reach the admin listener")
            self.assertEqual(args["--listen"], "%s:%d" % (v["proxy"]["listenAddress"], http))
            mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
            self.assertEqual(args["--cache-dir"], mounts["cache"])
            vols = {x["name"]: x for x in spec["volumes"]}
            self.assertIn("emptyDir", vols["cache"])
            self.assertIs(spec["automountServiceAccountToken"], False)
            grace = spec["terminationGracePeriodSeconds"]
            self.assertGreater(grace, int(args["--drain-timeout"]) + v["proxy"]["preStopSleepSeconds"])
            if v["tls"]["enabled"]:
                self.assertEqual(args["--ca"], mounts["tls"] + "/ca.crt")
                self.assertEqual(vols["tls"]["secret"]["secretName"], v["tls"]["proxy"]["secretName"])
                if v["tls"]["mutual"]:
                    self.assertEqual(args["--cert"], mounts["tls"] + "/tls.crt")
                    self.assertEqual(args["--key"], mounts["tls"] + "/tls.key")
            else:
                for f in ("--ca", "--cert", "--key"):
                    self.assertNotIn(f, args)
            self.assertEqual("--access-log" in args, v["proxy"]["accessLog"])
            if v["proxy"]["accessLog"]:
                self.assertEqual(args["--access-log"], "-", "stdout: the root filesystem is read-only")
            if not v["proxy"]["autoscaling"]["enabled"]:
                self.assertEqual(dep["spec"]["replicas"], v["proxy"]["replicaCount"])
            self.assertEqual(one(docs, "Service", name=PROXY)["spec"]["type"], v["proxy"]["service"]["type"])

    def test_proxy_defaults_follow_the_seed_deployment(self):
        docs, v = self.rendered[None]
        dep = one(docs, "Deployment", name=PROXY)
        self.assertEqual(dep["spec"]["replicas"], 3)
        self.assertEqual(cl.container(dep)["resources"], {"requests": {"cpu": "100m", "memory": "100Mi"},
                                                         "limits": {"cpu": "500m", "memory": "200Mi"}})

    def test_control_deployment(self):
        for case, docs, v in self.each():
            dep = one(docs, "Deployment", name=CONTROL)
            spec = dep["spec"]["template"]["spec"]
            c = cl.container(dep)
            self.assertEqual(c["command"], ["/usr/local/bin/bgw-control"])
            pairs = cl.parse_args(c["args"])
            args = dict(pairs)
            self.assertIn(("--in-cluster", None), pairs)
            mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
            vols = {x["name"]: x for x in spec["volumes"]}
            self.assertEqual(args["--state-dir"], mounts["state"])
            persist = v["controlPlane"]["persistence"]
            if v["controlPlane"]["stateStore"] == "volume" and persist["enabled"]:
                claim = vols["state"]["persistentVolumeClaim"]["claimName"]
                self.assertEqual(claim, persist["existingClaim"] or CONTROL + "-state")
                if not persist["existingClaim"]:
                    pvc = one(docs, "PersistentVolumeClaim", name=claim)
                    self.assertEqual(pvc["metadata"]["annotations"]["helm.sh/resource-policy"], "keep")
                self.assertEqual(dep["spec"]["strategy"], {"type": "Recreate"})
                self.assertEqual(dep["spec"]["replicas"], 1)
            else:
                self.assertIn("emptyDir", vols["state"])
            # The admin API leaves loopback only with a token.
            self.assertTrue(args["--admin-token-file"].startswith(mounts["admin-token"] + "/"))
            tok = vols["admin-token"]["secret"]
            name = v["controlPlane"]["adminToken"]["existingSecret"] or FULL + "-admin-token"
            key = v["controlPlane"]["adminToken"]["existingSecretKey"] if v["controlPlane"]["adminToken"]["existingSecret"] else "token"
            self.assertEqual(tok["secretName"], name)
            self.assertEqual(tok["items"], [{"key": key, "path": os.path.basename(args["--admin-token-file"])}])
            secrets = find(docs, "Secret", name=name)
            if v["controlPlane"]["adminToken"]["existingSecret"]:
                self.assertEqual(secrets, [], "an existing Secret is not rendered")
            else:
                self.assertEqual(len(base64.b64decode(secrets[0]["data"]["token"])), 48)
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            self.assertEqual(args["--xds-listen"].rsplit(":", 1)[1], str(ports["xds"]))
            self.assertEqual(args["--admin-listen"].rsplit(":", 1)[1], str(ports["admin"]))
            if v["tls"]["enabled"]:
                self.assertEqual(args["--xds-cert"], mounts["tls"] + "/tls.crt")
                self.assertEqual(args["--xds-key"], mounts["tls"] + "/tls.key")
                self.assertEqual(vols["tls"]["secret"]["secretName"], v["tls"]["controlPlane"]["secretName"])
                self.assertEqual("--xds-client-ca" in args, v["tls"]["mutual"])
            if v["controlPlane"]["bootstrap"]:
                cm = one(docs, "ConfigMap", name=vols["bootstrap"]["configMap"]["name"])
                self.assertEqual(json.loads(cm["data"]["bootstrap.json"]), v["controlPlane"]["bootstrap"])
                self.assertEqual(args["--bootstrap"], mounts["bootstrap"] + "/bootstrap.json")
            else:
                self.assertNotIn("--bootstrap", args)
            self.assertIs(spec["automountServiceAccountToken"], True)

    def test_monitoring_objects(self):
        for case, docs, v in self.each():
            if v["metrics"]["prometheusRule"]["enabled"]:
                pr = one(docs, "PrometheusRule")
                want = []
                for p in sorted(glob.glob(os.path.join(CHART, "files", "prometheus", "*.yml"))):
                    with open(p) as f:
                        want += yaml.safe_load(f)["groups"]
                self.assertEqual(pr["spec"]["groups"], want)
            if v["metrics"]["grafanaDashboard"]["enabled"]:
                cm = one(docs, "ConfigMap", name=FULL + "-dashboards")
                self.assertEqual(cm["metadata"]["labels"]["grafana_dashboard"], "1")
                for p in glob.glob(os.path.join(CHART, "files", "grafana", "*.json")):
                    with open(p) as f:
                        self.assertEqual(json.loads(cm["data"][os.path.basename(p)]), json.load(f))

    def test_helm_test_pod(self):
        for case, docs, v in self.each():
            pod = one(docs, "Pod")
            self.assertEqual(pod["metadata"]["annotations"]["helm.sh/hook"], "test")
            script = pod["spec"]["containers"][0]["args"][0]
            self.assertIn("http://%s-admin:%d/healthz" % (PROXY, v["proxy"]["adminService"]["port"]), script)
            self.assertIn("http://%s:%d%s" % (PROXY, v["proxy"]["service"]["port"], v["tests"]["path"]), script)

    def test_notes_render(self):
        for case in CASES:
            with self.subTest(values=case_name(case)):
                notes = cl.render_text([] if case is None else [case], notes=True)
                self.assertIn("port-forward service/%s 9000:" % CONTROL, notes)
                self.assertIn("bgwctl --server http://127.0.0.1:9000", notes)
                self.assertNotIn("<no value>", notes)


def without_required(schema):
    if isinstance(schema, dict):
        return {k: without_required(v) for (k, v) in schema.items() if k != "required"}
    if isinstance(schema, list):
        return [without_required(x) for x in schema]
    return schema


def one(docs, kind, **kw):
    return cl.one(docs, kind, **kw)


def find(docs, kind, **kw):
    return cl.find(docs, kind, **kw)


class ValuesTest(unittest.TestCase):
    def test_schema_is_draft7(self):
        s = cl.schema()
        self.assertEqual(s["$schema"], "http://json-schema.org/draft-07/schema#")
        jsonschema.Draft7Validator.check_schema(s)

    def test_defaults_and_examples_validate(self):
        s = cl.schema()
        for case in CASES:
            with self.subTest(values=case_name(case)):
                jsonschema.validate(load_values(case), s)
                if case:
                    # The file alone too (as an overlay: nothing is required of it), so that a misspelt key
                    # that a later merge could hide is still caught.
                    with open(case) as f:
                        jsonschema.validate(yaml.safe_load(f), without_required(s))

    def test_invalid_values_rejected(self):
        s = cl.schema()
        with open(os.path.join(cl.HERE, "values-invalid.yaml")) as f:
            docs = list(yaml.safe_load_all(f))
        self.assertGreater(len(docs), 5)
        for bad in docs:
            with self.subTest(values=bad):
                with self.assertRaises(jsonschema.ValidationError):
                    jsonschema.validate(cl.merged_values([bad]), s)

    def test_value_combinations_refused_at_render(self):
        for values, message in [
            ({"tls": {"enabled": True}}, "tls.controlPlane.secretName is required"),
            ({"tls": {"enabled": True, "controlPlane": {"secretName": "a"}}}, "tls.proxy.secretName is required"),
            ({"proxy": {"podDisruptionBudget": {"minAvailable": 2}}}, "not both"),
            ({"proxy": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}}, "minReplicas"),
            ({"proxy": {"autoscaling": {"enabled": True, "targetCPUUtilizationPercentage": None}}},
             "targetCPUUtilizationPercentage"),
            ({"proxy": {"terminationGracePeriodSeconds": 10}}, "terminationGracePeriodSeconds"),
            ({"controlPlane": {"stateStore": "volume", "replicaCount": 2}}, "replicaCount must be 1"),
        ]:
            with self.subTest(values=values):
                with self.assertRaises(cl.RenderError) as cm:
                    cl.render([values])
                self.assertIn(message, str(cm.exception))

    def test_admin_token_kept_across_upgrades(self):
        name = FULL + "-admin-token"
        fresh = [one(cl.render(), "Secret", name=name)["data"]["token"] for _ in range(2)]
        self.assertNotEqual(fresh[0], fresh[1], "a fresh install makes a random token")
        kept = base64.b64encode(b"x" * 48).decode()
        existing = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE},
                    "data": {"token": kept}}
        docs = cl.render(lookup={"v1/Secret/%s/%s" % (NAMESPACE, name): existing}, extra=["--upgrade"])
        self.assertEqual(one(docs, "Secret", name=name)["data"]["token"], kept)

    def test_watch_namespace_forms(self):
        for w, scope, want in [("shop", "cluster", ["shop"]), (["a", "b"], "cluster", ["a", "b"]),
                               ("", "namespace", [NAMESPACE]), ("", "cluster", [])]:
            with self.subTest(watchNamespace=w, scope=scope):
                docs = cl.render([{"rbac": {"scope": scope}, "controlPlane": {"watchNamespace": w}}])
                pairs = cl.parse_args(cl.container(one(docs, "Deployment", name=CONTROL))["args"])
                self.assertEqual([x for (f, x) in pairs if f == "--watch-namespace"], want)
                roles = find(docs, "Role", name=CONTROL + "-discovery")
                self.assertEqual(sorted(r["metadata"]["namespace"] for r in roles),
                                 sorted(want) if scope == "namespace" else [])

    def test_overrides(self):
        docs = cl.render([{"fullnameOverride": "edge", "image": {"digest": "sha256:" + "a" * 64},
                           "commonLabels": {"team": "platform"},
                           "proxy": {"service": {"type": "NodePort", "nodePort": 30080},
                                     "redis": "redis.cache.svc:6379",
                                     "extraArgs": ["--max-connections=5000"]}}])
        dep = one(docs, "Deployment", name="edge-proxy")
        c = cl.container(dep)
        self.assertEqual(c["image"], "baribhara-gateway@sha256:" + "a" * 64)
        self.assertIn("--max-connections=5000", c["args"])
        self.assertIn("--redis=redis.cache.svc:6379", c["args"])
        self.assertNotIn("--redis", " ".join(cl.container(one(cl.render(), "Deployment", name=PROXY))["args"]))
        self.assertEqual(one(docs, "Service", name="edge-proxy")["spec"]["ports"][0]["nodePort"], 30080)
        for d in docs:
            self.assertEqual(d["metadata"]["labels"]["team"], "platform")
        self.assertTrue(one(docs, "Service", name="edge-control"))


if __name__ == "__main__":
    unittest.main()
