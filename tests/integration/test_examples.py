"""The examples in examples/ work as their READMEs say.

Every examples/*/bgw.json is loaded by bgw-control (--bootstrap) and served by a managed bgw-proxy. The
examples' fixed loopback ports are mapped to free ones (the document's text is rewritten), and the example's
own services run behind them: examples/quickstart/upstream.py for the business services and
examples/baribhara/issuer.py for the sign-in service, which bgw-control fetches the signing keys from
(jwks_uri). Then the behaviour each example promises is checked through the proxy: public and protected
routes, tokens and forwarded claims, CORS preflights, rate limits keyed by client and by user, health-checked
endpoints.
"""

import glob
import json
import os
import re
import subprocess
import sys
import unittest

from control_harness import Control
from harness import Proxy, free_port, request, wait_until
from ctl_harness import ctl_bin, ctl_env

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(ROOT, "examples")
ISSUER_PORT = 9200          # the examples' sign-in service
PY = "/usr/bin/python3"


def load_mapped(path):
    """The example document with every 127.0.0.1:PORT moved to a free port: (doc, {old port: new port})."""
    with open(path) as f:
        text = f.read()
    ports = {int(p): None for p in re.findall(r"127\.0\.0\.1:(\d+)", text)}
    for p in ports:
        ports[p] = free_port()
    text = re.sub(r"127\.0\.0\.1:(\d+)", lambda m: "127.0.0.1:%d" % ports[int(m.group(1))], text)
    return json.loads(text), ports


class Example:
    """One example running: its services, bgw-control bootstrapped with it, a managed bgw-proxy."""

    def __init__(self, name):
        self.doc, self.ports = load_mapped(os.path.join(EXAMPLES, name, "bgw.json"))
        self.procs = []
        self.cp = None
        self.proxy = None

    def start(self):
        for old, new in sorted(self.ports.items()):
            if old == ISSUER_PORT:
                cmd = [PY, os.path.join(EXAMPLES, "baribhara", "issuer.py"), str(new)]
            else:
                cmd = [PY, os.path.join(EXAMPLES, "quickstart", "upstream.py"), str(new), "svc-%d" % old]
            self.procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for new in self.ports.values():
            wait_until(lambda: self._answers(new), timeout=15, message="the service on port %d" % new)
        self.cp = Control(bootstrap=self.doc).start()
        self.proxy = Proxy(None, workers=2, omit=("config",),
                           args=["--control-plane", "127.0.0.1:%d" % self.cp.xds_port, "--node-id", "example"])
        self.proxy.start(timeout=20)
        return self

    @staticmethod
    def _answers(port):
        try:
            return request(port, "GET", "/healthz", timeout=1).status == 200
        except OSError:
            return False

    def stop(self):
        if self.proxy:
            if self.proxy.alive():
                self.proxy.stop()
            self.proxy.cleanup()
        if self.cp:
            if self.cp.alive():
                self.cp.stop()
            self.cp.cleanup()
        for p in self.procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def get(self, target, headers=None, method="GET", body=None):
        return self.proxy.request(method, target, headers=list((headers or {}).items()), body=body)

    def token(self, user, tenant="t-1", role="owner"):
        r = self.get("/api/auth/token", method="POST", headers={"Content-Type": "application/json"},
                     body=json.dumps({"user": user, "tenant": tenant, "role": role}).encode())
        assert r.status == 200, r
        return r.json()["access_token"]


class EveryExampleLoads(unittest.TestCase):
    def test_every_example_document_is_served(self):
        names = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(EXAMPLES, "*", "bgw.json")))
        self.assertGreaterEqual(len(names), 4, names)
        for name in names:
            with self.subTest(example=name):
                doc, _ = load_mapped(os.path.join(EXAMPLES, name, "bgw.json"))
                cp = Control(bootstrap=doc).start()
                try:
                    routes = cp.get_json("/v1/routes")["items"]
                    self.assertEqual(sorted(r["name"] for r in routes), sorted(r["name"] for r in doc["routes"]))
                finally:
                    cp.stop()
                    cp.cleanup()


class BaribharaExample(unittest.TestCase):
    """examples/baribhara: the gateway in front of auth, properties, tenants and payments."""

    @classmethod
    def setUpClass(cls):
        cls.ex = Example("baribhara")
        try:                            # tearDownClass does not run when setUpClass fails
            cls.ex.start()
            # bgw-control fetched the issuer's keys: a signed-in request gets through.
            cls.alice = cls.ex.token("alice", tenant="t-1")
            wait_until(lambda: cls.ex.get("/api/tenants/t-1", {"Authorization": "Bearer " + cls.alice}).status == 200,
                       timeout=15, message="the issuer's keys reach the proxy")
        except BaseException:
            cls.ex.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.ex.stop()

    def test_public_listing(self):
        r = self.ex.get("/api/properties/42")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["path"], "/properties/42")
        self.assertIsNotNone(r.header("ratelimit-limit"))

    def test_protected_routes_need_a_token(self):
        for method, target in (("POST", "/api/payments"), ("GET", "/api/tenants/t-1"), ("DELETE", "/api/properties/1")):
            r = self.ex.get(target, method=method, body=b"{}" if method == "POST" else None)
            self.assertEqual(r.status, 401, (method, target, r))
            self.assertTrue(r.header("www-authenticate").startswith("Bearer"), r)
        forged = self.alice[:-4] + ("AAAA" if not self.alice.endswith("AAAA") else "BBBB")
        self.assertEqual(self.ex.get("/api/tenants/t-1", {"Authorization": "Bearer " + forged}).status, 401)

    def test_claims_forwarded_and_client_copies_removed(self):
        r = self.ex.get("/api/tenants/t-1", {"Authorization": "Bearer " + self.alice, "X-User-Id": "mallory"})
        self.assertEqual(r.status, 200, r)
        seen = {k.lower(): v for k, v in r.json()["headers"].items()}
        self.assertEqual(seen["x-user-id"], "alice")
        self.assertEqual(seen["x-tenant-id"], "t-1")
        self.assertEqual(seen["x-user-role"], "owner")
        self.assertEqual(r.json()["path"], "/tenants/t-1")

    def test_cors_preflight(self):
        ok = self.ex.get("/api/payments", method="OPTIONS",
                         headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
                                  "Access-Control-Request-Headers": "authorization, content-type"})
        self.assertEqual(ok.status, 204, ok)
        self.assertEqual(ok.header("access-control-allow-origin"), "http://localhost:3000")
        self.assertEqual(ok.header("access-control-allow-credentials"), "true")
        bad = self.ex.get("/api/payments", method="OPTIONS",
                          headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        self.assertEqual(bad.status, 403, bad)

    def test_payments_limited_per_user(self):
        bob = self.ex.token("bob", tenant="t-2")
        carol = self.ex.token("carol", tenant="t-3")
        statuses = [self.ex.get("/api/payments", {"Authorization": "Bearer " + bob}).status for _ in range(14)]
        self.assertIn(429, statuses, statuses)                   # 5/s with a burst of 10 per user
        self.assertEqual(statuses[:10], [200] * 10, statuses)
        # another user has a bucket of their own
        self.assertEqual(self.ex.get("/api/payments", {"Authorization": "Bearer " + carol}).status, 200)

    def test_endpoints_health_checked(self):
        env = ctl_env({"BGW_SERVER": "http://127.0.0.1:%d" % self.ex.cp.admin_port})

        def checked():
            out = subprocess.run([ctl_bin(), "endpoints", "payments", "-o", "json"], env=env,
                                 capture_output=True, text=True, timeout=10)
            if out.returncode != 0:
                return False
            items = json.loads(out.stdout)["items"]
            return len(items) == 2 and all(i["healthy"] and i["last_check"] for i in items)
        wait_until(checked, timeout=15, message="both payments endpoints health-checked")


class JwtApiExample(unittest.TestCase):
    def test_open_and_protected(self):
        ex = Example("jwt-api")
        try:
            ex.start()
            self.assertEqual(ex.get("/public/x").status, 200)
            self.assertEqual(ex.get("/api/me").status, 401)
            tok = ex.token("dana", tenant="t-9")
            wait_until(lambda: ex.get("/api/me", {"Authorization": "Bearer " + tok}).status == 200, timeout=15,
                       message="the issuer's keys reach the proxy")
            r = ex.get("/api/me", {"Authorization": "Bearer " + tok})
            self.assertEqual(r.json()["path"], "/me")
            self.assertEqual({k.lower(): v for k, v in r.json()["headers"].items()}["x-user-id"], "dana")
        finally:
            ex.stop()


class RateLimitsExample(unittest.TestCase):
    def test_limits(self):
        ex = Example("rate-limits")
        try:
            ex.start()
            per_client = [ex.get("/per-client").status for _ in range(8)]
            self.assertEqual(per_client[:5], [200] * 5, per_client)   # burst 5
            self.assertIn(429, per_client)
            keyed = [ex.get("/per-key", {"X-Api-Key": "k1"}).status for _ in range(3)]
            self.assertEqual(keyed, [200] * 3)
            # without --redis a global limit is kept by each proxy on its own
            self.assertEqual(ex.get("/shared").status, 200)
        finally:
            ex.stop()


if __name__ == "__main__":
    unittest.main()
