"""The config stream over TLS and mTLS between the real bgw-control and bgw-proxy, with a throwaway CA made
by openssl: with --xds-client-ca, a proxy with a certificate signed by that CA gets its config; one without
a certificate, or with a certificate from another CA, gets none."""

import os
import shutil
import subprocess
import tempfile
import unittest

from control_harness import Control
from harness import Proxy, metric, wait_until

BOOT = {"services": [{"name": "web", "endpoints": ["127.0.0.1:9"]}],
        "routes": [{"name": "all", "match": {"path_prefix": "/"}, "service": "web"}]}


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=%s" % name, "-keyout", name + ".key", "-out", name + ".pem", cwd=d)


def make_cert(d, ca, name, san):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=%s" % name,
            "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\n" % san)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key", "-CAcreateserial",
            "-days", "2", "-extfile", name + ".ext", "-out", name + ".pem", cwd=d)


@unittest.skipUnless(shutil.which("openssl"), "openssl is needed to make certificates")
class TlsStreamTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="bgw-tls-it-")
        make_ca(cls.d, "ca")
        make_ca(cls.d, "other-ca")
        make_cert(cls.d, "ca", "server", "IP:127.0.0.1,DNS:localhost")
        make_cert(cls.d, "ca", "proxy", "DNS:proxy-1")
        make_cert(cls.d, "other-ca", "intruder", "DNS:intruder")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.d, True)

    def f(self, name):
        return os.path.join(self.d, name)

    def setUp(self):
        self.cp = Control(bootstrap=BOOT, args=["--xds-cert", self.f("server.pem"), "--xds-key", self.f("server.key"),
                                                "--xds-client-ca", self.f("ca.pem")]).start()
        self.proxies = []

    def tearDown(self):
        for p in self.proxies:
            if p.alive():
                self.assertEqual(p.stop(), 0, p.stderr_tail())
            p.cleanup()
        self.assertEqual(self.cp.stop(), 0, self.cp.stderr_tail())
        self.cp.cleanup()

    def proxy(self, node, cert=None):
        args = ["--control-plane", "127.0.0.1:%d" % self.cp.xds_port, "--node-id", node, "--ca", self.f("ca.pem")]
        if cert:
            args += ["--cert", self.f(cert + ".pem"), "--key", self.f(cert + ".key")]
        p = Proxy(None, workers=1, args=args, omit=("config",))
        self.proxies.append(p)
        return p

    def test_mtls_proxy_with_certificate_gets_config(self):
        p = self.proxy("proxy-1", cert="proxy").start()
        self.assertEqual(metric(p.metrics(), "bgw_control_plane_connected"), 1)
        items = self.cp.get_json("/v1/dataplanes")["items"]
        self.assertEqual([(d["node_id"], d["status"]) for d in items], [("proxy-1", "SYNCED")])

    def test_proxy_without_or_with_foreign_certificate_gets_nothing(self):
        p1 = self.proxy("no-cert").spawn()
        p2 = self.proxy("intruder", cert="intruder").spawn()
        for p in (p1, p2):
            wait_until(lambda: "retrying in" in p.stderr_text(), timeout=10, message="a failed attempt")
        for p in (p1, p2):
            self.assertEqual(p.admin_status("/readyz"), 503)
            self.assertEqual(metric(p.metrics(), "bgw_control_plane_connected"), 0)
        self.assertEqual(self.cp.get_json("/v1/dataplanes")["items"], [])


if __name__ == "__main__":
    unittest.main()
