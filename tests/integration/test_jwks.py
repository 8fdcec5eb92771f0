"""The JWKS fetcher end to end: a real HTTP server serves a JWK Set, bgw-control fetches it and pushes the
keys to a managed bgw-proxy, which then accepts tokens signed with them; a rotation on the server reaches
the proxy at the next refresh; a failing server (500, garbage, gone) keeps the last good keys, so valid
tokens never start failing; a restarted bgw-control pushes the kept keys while the server is still down."""

import http.server
import json
import threading
import unittest

from control_harness import Control, run_control_cli
from harness import Proxy, Upstream, wait_until
from jwt_helpers import ISSUER, RsaKey, bearer, jwks, token

REFRESH_S = 1


class KeyServer:
    """A JWKS endpoint on a free loopback port. mode: "ok" (serve self.doc), "500", "garbage"."""

    def __init__(self):
        self.doc = {"keys": []}
        self.mode = "ok"
        self.hits = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                if outer.mode == "500":
                    body, status = b'{"error":"down"}', 500
                elif outer.mode == "garbage":
                    body, status = b"<html>not json</html>", 200
                else:
                    body, status = json.dumps(outer.doc).encode(), 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def uri(self):
        return "http://127.0.0.1:%d/.well-known/jwks.json" % self.server.server_address[1]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class JwksTest(unittest.TestCase):
    def setUp(self):
        self.k1 = RsaKey("k1")
        self.k2 = RsaKey("k2")
        self.keys = KeyServer()
        self.addCleanup(self.keys.stop)
        self.keys.doc = jwks(self.k1)
        self.upstream = Upstream().start()
        self.addCleanup(self.upstream.stop)
        doc = {"services": [{"name": "main", "endpoints": [self.upstream.addr()]}],
               "routes": [{"name": "api", "match": {"path_prefix": "/api"}, "service": "main", "auth": "p"}],
               "auth_policies": [{"name": "p", "issuer": ISSUER, "algorithms": ["RS256"],
                                  "jwks_uri": self.keys.uri}]}
        self.cp = Control(bootstrap=doc, args=["--jwks-refresh-interval", str(REFRESH_S)])
        self.addCleanup(self.cp.cleanup)
        self.cp.start()
        self.proxy = Proxy(None, workers=1, omit=("config",),
                           args=["--control-plane", "127.0.0.1:%d" % self.cp.xds_port, "--node-id", "n1"])
        self.addCleanup(self.proxy.cleanup)
        self.proxy.start()

    def tearDown(self):
        if self.proxy.alive():
            self.assertEqual(self.proxy.stop(), 0, self.proxy.stderr_tail())
        if self.cp.alive():
            self.assertEqual(self.cp.stop(), 0, self.cp.stderr_tail())

    def status(self, key):
        return self.proxy.request("GET", "/api/x", headers=bearer(token(key))).status

    def wait_status(self, key, want, timeout=10.0):
        wait_until(lambda: self.status(key) == want, timeout, message="token of %s -> %d" % (key.kid, want))

    def pushed_kids(self):
        cfg = self.proxy.admin_json("/config")
        return sorted(k.get("kid") for k in cfg["auth_policies"][0].get("jwks", {}).get("keys", []))

    def test_keys_reach_the_proxy_and_rotate(self):
        self.wait_status(self.k1, 200)
        self.assertEqual(self.pushed_kids(), ["k1"])
        self.assertEqual(self.status(self.k2), 401)
        # rotation: k2 added, then k1 removed
        self.keys.doc = jwks(self.k1, self.k2)
        self.wait_status(self.k2, 200)
        self.assertEqual(self.status(self.k1), 200)
        self.keys.doc = jwks(self.k2)
        self.wait_status(self.k1, 401)
        self.assertEqual(self.status(self.k2), 200)
        self.assertEqual(self.pushed_kids(), ["k2"])
        # the control plane shows the merged keys too
        cfg = self.cp.config()
        self.assertEqual([k["kid"] for k in cfg["auth_policies"][0]["jwks"]["keys"]], ["k2"])

    def test_failing_server_keeps_the_last_good_keys(self):
        self.wait_status(self.k1, 200)
        version = self.proxy.admin_json("/config")["version"]
        for mode in ("500", "garbage"):
            self.keys.mode = mode
            hits = self.keys.hits
            wait_until(lambda: self.keys.hits >= hits + 2, 10, message="refetches while the server answers " + mode)
            self.assertEqual(self.status(self.k1), 200, "a failing fetch made a valid token fail (%s)" % mode)
        failures = self.cp.stderr_text().count("fetch failed")
        self.keys.stop()                                   # gone altogether
        wait_until(lambda: self.cp.stderr_text().count("fetch failed") > failures, 10,
                   message="a failed fetch after the server went away")
        self.assertEqual(self.status(self.k1), 200)
        self.assertEqual(self.proxy.admin_json("/config")["version"], version, "a failed fetch published")
        # a restarted control plane pushes the kept keys while the server is still down
        self.cp.stop()
        self.cp.start()
        kids = [k["kid"] for k in self.cp.config()["auth_policies"][0]["jwks"]["keys"]]
        self.assertEqual(kids, ["k1"])
        wait_until(lambda: self.proxy.admin_json("/config")["version"] == self.cp.config()["version"], 10,
                   message="the proxy back in sync with the restarted control plane")
        self.assertEqual(self.status(self.k1), 200)

    def test_inline_keys_and_fetched_keys_are_merged(self):
        self.wait_status(self.k1, 200)
        k3 = RsaKey("k3")
        st = self.cp.call("PUT", "/v1/auth_policies/p", {
            "name": "p", "issuer": ISSUER, "algorithms": ["RS256"], "jwks": jwks(k3), "jwks_uri": self.keys.uri})
        self.assertIn(st.status, (200, 201), st)
        wait_until(lambda: self.pushed_kids() == ["k1", "k3"], 10, message="inline k3 and fetched k1 pushed")
        self.assertEqual(self.status(k3), 200)
        self.assertEqual(self.status(self.k1), 200)


class JwksFlagTest(unittest.TestCase):
    def test_refresh_interval_flag(self):
        for bad in ("0", "-5", "abc", "86401", "5s", ""):
            rc, _, err = run_control_cli(["--jwks-refresh-interval", bad])
            self.assertEqual(rc, 2, "--jwks-refresh-interval %r: %s" % (bad, err))
            self.assertIn("--jwks-refresh-interval", err)
        rc, _, err = run_control_cli([], env={"BGW_JWKS_REFRESH_INTERVAL": "0"})
        self.assertEqual(rc, 2, err)                        # the environment variable is read too
        self.assertIn("--jwks-refresh-interval", err)
        rc, out, _ = run_control_cli(["--help"])
        self.assertEqual(rc, 0)
        self.assertIn("--jwks-refresh-interval", out)


if __name__ == "__main__":
    unittest.main()
