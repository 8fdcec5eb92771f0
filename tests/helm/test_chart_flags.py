"""The command lines the chart renders, run against the built programs: for the defaults and every example
values file, bgw-control gets exactly the rendered flags (paths and listen addresses swapped for local
ones) and must accept them; without its Kubernetes flags it must then serve, with the admin token from the
rendered Secret and the rendered bootstrap document; and a bgw-proxy with the rendered proxy flags must
take its config from it over the config stream (over mTLS where the values ask for it, with certificates
made by openssl). Everything listens on 127.0.0.1."""

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

import chart_lib as cl
from chart_lib import RELEASE

sys.path.insert(0, os.path.join(cl.ROOT, "tests", "integration"))
from harness import bin_dir, clean_env, free_port, wait_until  # noqa: E402

FULL = "%s-baribhara-gateway" % RELEASE
CONTROL = FULL + "-control"
PROXY = FULL + "-proxy"
CASES = [None] + cl.EXAMPLES
KUBERNETES_FLAGS = ("--in-cluster", "--kubeconfig", "--state-configmap", "--watch-namespace")


def case_name(case):
    return "defaults" if case is None else os.path.basename(case)


def openssl(d, *args):
    subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)


def make_pki(d):
    """A CA, a server certificate for localhost and a client certificate, as the chart's Secrets hold them
    (tls.crt, tls.key, ca.crt) in two directories."""
    openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=bgw-test-ca", "-keyout", "ca.key", "-out", "ca.crt")
    for name, san in (("control", "DNS:localhost,IP:127.0.0.1"), ("proxy", "DNS:proxy")):
        openssl(d, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
                "/CN=" + name, "-keyout", name + ".key", "-out", name + ".csr")
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % san)
        openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", name + ".ext", "-out", name + ".crt")
        os.makedirs(os.path.join(d, name))
        shutil.copy(os.path.join(d, name + ".crt"), os.path.join(d, name, "tls.crt"))
        shutil.copy(os.path.join(d, name + ".key"), os.path.join(d, name, "tls.key"))
        shutil.copy(os.path.join(d, "ca.crt"), os.path.join(d, name, "ca.crt"))


def http_get(port, path, token=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""


class Process:
    def __init__(self, argv, log):
        self.log = open(log, "wb+")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=clean_env(
            {"KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": ""}))

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        return self.p.wait(20)


class LocalRun(unittest.TestCase):
    """Runs rendered command lines locally: temporary files for mounted ones, 127.0.0.1 ports."""

    def setUp(self):
        self.d = tempfile.mkdtemp(prefix="bgw-helm-flags-")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.p.poll() is None:
                p.p.kill()
                p.p.wait()
            p.log.close()
        shutil.rmtree(self.d, True)

    def start(self, argv, name):
        p = Process(argv, os.path.join(self.d, name + ".log"))
        self.procs.append(p)
        return p

    def local_control_args(self, docs, case_dir):
        """The rendered bgw-control flags with files and listen addresses made local. Returns the flag
        pairs, the admin port and the token."""
        dep = cl.one(docs, "Deployment", name=CONTROL)
        c = cl.container(dep)
        vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        token = None
        secret_name = vols["admin-token"]["secret"]["secretName"]
        rendered = cl.find(docs, "Secret", name=secret_name)
        if rendered:
            token = base64.b64decode(rendered[0]["data"]["token"]).decode()
        else:
            token = "an-existing-secret-token-0123456789"     # the Secret the user made
        admin_port, xds_port = free_port(), free_port()
        out = []
        for flag, value in cl.parse_args(c["args"]):
            if flag == "--state-dir":
                value = os.path.join(case_dir, "state")
            elif flag == "--admin-token-file":
                value = os.path.join(case_dir, "token")
                with open(value, "w") as f:
                    f.write(token + "\n")
            elif flag == "--admin-listen":
                self.assertIn(value.rsplit(":", 1)[0], ("0.0.0.0", "[::]"))
                value = "127.0.0.1:%d" % admin_port
            elif flag == "--xds-listen":
                value = "127.0.0.1:%d" % xds_port
            elif flag in ("--xds-cert", "--xds-key", "--xds-client-ca"):
                value = os.path.join(self.pki(), "control", os.path.basename(value))
            elif flag == "--bootstrap":
                cm = cl.one(docs, "ConfigMap", name=vols["bootstrap"]["configMap"]["name"])
                value = os.path.join(case_dir, "bootstrap.json")
                with open(value, "w") as f:
                    f.write(cm["data"][os.path.basename(value)])
            out.append((flag, value))
        return out, admin_port, xds_port, token

    def pki(self):
        d = os.path.join(self.d, "pki")
        if not os.path.isdir(d):
            if not shutil.which("openssl"):
                self.skipTest("openssl is needed to make certificates")
            os.makedirs(d)
            make_pki(d)
        return d

    def local_proxy_args(self, docs, xds_port, case_dir, node_id):
        c = cl.container(cl.one(docs, "Deployment", name=PROXY))
        admin_port, port = free_port(), free_port()
        out = []
        for flag, value in cl.parse_args(c["args"]):
            if flag == "--control-plane":
                self.assertEqual(value.rsplit(":", 1)[0], "%s.%s.svc" % (CONTROL, cl.NAMESPACE))
                # An IP, not a name: name resolution goes through c-ares, whose resolver leaks 10 bytes
                # at exit under LeakSanitizer (the certificate names 127.0.0.1 too).
                value = "127.0.0.1:%d" % xds_port
            elif flag == "--node-id":
                self.assertEqual(value, "$(POD_NAME)")
                value = node_id                               # what the kubelet substitutes
            elif flag == "--cache-dir":
                value = os.path.join(case_dir, "cache")
                os.makedirs(value)
            elif flag == "--listen":
                value = "127.0.0.1:%d" % port
            elif flag == "--admin":
                value = "127.0.0.1:%d" % admin_port
            elif flag in ("--ca", "--cert", "--key"):
                value = os.path.join(self.pki(), "proxy", os.path.basename(value))
            out.append((flag, value))
        return out, admin_port, port

    @staticmethod
    def bootstrap(docs):
        cms = [d for d in cl.find(docs, "ConfigMap") if "bootstrap.json" in d.get("data", {})]
        return json.loads(cms[0]["data"]["bootstrap.json"]) if cms else None


class RenderedFlagsTest(LocalRun):
    def test_rendered_flags_run(self):
        control_bin = os.path.join(bin_dir(), "bgw-control")
        proxy_bin = os.path.join(bin_dir(), "bgw-proxy")
        self.assertTrue(os.access(control_bin, os.X_OK), control_bin)
        for case in CASES:
            with self.subTest(values=case_name(case)):
                docs = cl.render([] if case is None else [case])
                case_dir = os.path.join(self.d, case_name(case))
                os.makedirs(case_dir)
                flags, admin_port, xds_port, token = self.local_control_args(docs, case_dir)

                # 1. Every rendered flag, Kubernetes ones included, is one bgw-control knows and supports.
                trying = list(flags)
                rc = out = None
                if any(f in KUBERNETES_FLAGS for (f, _) in trying):
                    run = self.start([control_bin] + cl.join_args(trying), "control-full-" + case_name(case))
                    try:
                        rc = run.p.wait(5)
                    except subprocess.TimeoutExpired:
                        rc = None                             # running (or connecting): the flags parsed
                    out = run.output()
                    run.stop()
                    self.assertNotEqual(rc, 2, "bgw-control refused the rendered flags:\n" + out)
                    self.assertNotIn("usage:", out)
                    self.assertNotIn("not available", out)
                if rc is not None and ("--in-cluster", None) in trying:
                    # Outside a cluster --in-cluster must fail, and say why.
                    self.assertNotEqual(rc, 0, out)
                    self.assertRegex(out.lower(), r"in-cluster|kubernetes_service|service account|serviceaccount",
                                     out)

                # 2. Without the Kubernetes flags the rest serves: admin API with the token, stream.
                local = [(f, v) for (f, v) in flags if f not in KUBERNETES_FLAGS]
                control = self.start([control_bin] + cl.join_args(local), "control-" + case_name(case))
                wait_until(lambda: http_get(admin_port, "/readyz")[0] == 200 or control.p.poll() is not None,
                           30, message="bgw-control ready")
                self.assertIsNone(control.p.poll(), control.output())
                self.assertEqual(http_get(admin_port, "/healthz")[0], 200)
                self.assertEqual(http_get(admin_port, "/v1/routes")[0], 401, "the admin API asks for the token")
                status, body = http_get(admin_port, "/v1/routes", token)
                self.assertEqual(status, 200, body)
                want_routes = sorted(r["name"] for r in (self.bootstrap(docs) or {}).get("routes", []))
                self.assertEqual(sorted(r["name"] for r in json.loads(body)["items"]), want_routes)

                # 3. A proxy with the rendered flags takes its config over the stream (mTLS when enabled).
                node = PROXY + "-7d9c8b-x2x4q"
                pflags, padmin, pport = self.local_proxy_args(docs, xds_port, case_dir, node)
                proxy = self.start([proxy_bin] + cl.join_args(pflags), "proxy-" + case_name(case))
                wait_until(lambda: http_get(padmin, "/readyz")[0] == 200 or proxy.p.poll() is not None, 30,
                           message="bgw-proxy ready (config received)")
                self.assertIsNone(proxy.p.poll(), proxy.output())
                self.assertEqual(http_get(padmin, "/healthz")[0], 200)
                _, cfg = http_get(padmin, "/config")
                self.assertEqual(sorted(r["name"] for r in json.loads(cfg).get("routes", [])), want_routes)

                def listed():
                    _, b = http_get(admin_port, "/v1/dataplanes", token)
                    return [x for x in json.loads(b or b"{}").get("items", [])
                            if x.get("node_id") == node and x.get("status") == "SYNCED"]
                wait_until(listed, 30, message="the proxy SYNCED in /v1/dataplanes under its pod name")
                status, body = http_get(pport, "/bgw-helm-test")      # what the helm test pod asks
                self.assertEqual((status, json.loads(body)), (404, {"error": "no_route"}))

                self.assertEqual(proxy.stop(), 0, proxy.output())
                self.assertEqual(control.stop(), 0, control.output())


if __name__ == "__main__":
    unittest.main()
