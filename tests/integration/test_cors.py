"""CORS policies end to end: preflights answered by bgw-proxy (204 / 403, never forwarded), response
headers on actual requests, `Vary: Origin` on every response of a route with cors, wildcard origins,
preflights before auth, and preflights on routes without cors going to the upstream."""

import unittest

import harness
from harness import route, service
from jwt_helpers import ISSUER, RsaKey, bearer, jwks, token

APP = "https://app.example.com"


def preflight(method="POST", origin=APP, headers=None):
    hs = [("Origin", origin), ("Access-Control-Request-Method", method)]
    if headers:
        hs.append(("Access-Control-Request-Headers", headers))
    return hs


class CorsTest(harness.ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.key = RsaKey("k1")
        cls.up = cls.start_upstream_cls("api")
        cors = {"allow_origins": [APP, "http://localhost:3000"], "allow_methods": ["GET", "POST", "DELETE"],
                "allow_headers": ["authorization", "content-type", "x-trace"], "expose_headers": ["x-request-id"],
                "max_age_s": 600, "allow_credentials": True}
        cfg = {
            "services": [service("svc", cls.up.addr("api"))],
            "routes": [
                route("strict", "svc", path_prefix="/strict", cors=cors),
                route("public", "svc", path_prefix="/public",
                      cors={"allow_origins": ["*"], "allow_methods": ["*"], "allow_headers": ["*"]}),
                route("minimal", "svc", path_prefix="/minimal", cors={"allow_origins": [APP]}),
                route("authed", "svc", path_prefix="/authed", auth="p",
                      cors={"allow_origins": [APP], "allow_headers": ["authorization"]}),
                route("plain", "svc", path_prefix="/plain"),
            ],
            "auth_policies": [{"name": "p", "issuer": ISSUER, "algorithms": ["RS256"], "jwks": jwks(cls.key)}],
        }
        cls.proxy = cls.start_proxy_cls(cfg, workers=2)

    def setUp(self):
        self.up.clear()

    def send(self, method, target, headers):
        return self.proxy.request(method, target, headers=headers)

    def assertNothingForwarded(self):
        self.assertEqual(self.up.records(), [], "the preflight reached the upstream")

    # preflights

    def test_allowed_preflight(self):
        r = self.send("OPTIONS", "/strict/items", preflight("DELETE", headers="Content-Type, X-Trace"))
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("Access-Control-Allow-Origin"), APP)
        self.assertEqual(r.header("Access-Control-Allow-Methods"), "GET, POST, DELETE")
        self.assertEqual(r.header("Access-Control-Allow-Headers"), "authorization, content-type, x-trace")
        self.assertEqual(r.header("Access-Control-Max-Age"), "600")
        self.assertEqual(r.header("Access-Control-Allow-Credentials"), "true")
        self.assertIn("Origin", r.header("Vary"))
        self.assertNothingForwarded()

    def test_origin_compared_case_insensitively_and_echoed(self):
        r = self.send("OPTIONS", "/strict/x", preflight("GET", origin="http://LOCALHOST:3000"))
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "http://localhost:3000")

    def test_preflight_from_other_origin_is_403(self):
        for origin in ("https://evil.example.com", "https://app.example.com.evil.test", "null",
                       APP + "/", "http://app.example.com"):
            r = self.send("OPTIONS", "/strict/x", preflight("POST", origin=origin))
            self.assertErrorBody(r, 403, "cors_denied")
            self.assertFalse(r.has("Access-Control-Allow-Origin"), r)
            self.assertIn("Origin", r.header("Vary") or "")
        self.assertNothingForwarded()

    def test_preflight_for_method_not_allowed_is_403(self):
        r = self.send("OPTIONS", "/strict/x", preflight("PATCH"))
        self.assertErrorBody(r, 403, "cors_denied")
        self.assertFalse(r.has("Access-Control-Allow-Origin"), r)
        self.assertNothingForwarded()

    def test_error_after_a_cors_request_on_the_same_connection(self):
        # a CORS request, then a malformed one on the same connection: the 400 carries no CORS headers
        with self.proxy.conn() as c:
            r = c.request("GET", "/strict/x", [("Origin", APP)])
            self.assertEqual(r.header("Access-Control-Allow-Origin"), APP)
            c.send(b"GET /strict/x HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 400, r)
            self.assertFalse(r.has("Access-Control-Allow-Origin"), r)
            self.assertFalse(r.has("Vary"), r)

    def test_preflight_for_header_not_allowed_is_403(self):
        r = self.send("OPTIONS", "/strict/x", preflight("POST", headers="content-type, x-secret"))
        self.assertErrorBody(r, 403, "cors_denied")
        self.assertNothingForwarded()

    def test_minimal_policy_allows_safelisted_methods_only(self):
        r = self.send("OPTIONS", "/minimal/x", preflight("POST"))
        self.assertEqual(r.status, 204, r)
        self.assertFalse(r.has("Access-Control-Max-Age"))
        self.assertFalse(r.has("Access-Control-Allow-Credentials"))
        r = self.send("OPTIONS", "/minimal/x", preflight("PUT"))
        self.assertEqual(r.status, 403, r)
        r = self.send("OPTIONS", "/minimal/x", preflight("GET", headers="x-custom"))
        self.assertEqual(r.status, 403, r)

    def test_wildcard_policy(self):
        r = self.send("OPTIONS", "/public/x", preflight("PATCH", origin="https://anyone.test", headers="x-a, x-b"))
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "*")
        self.assertEqual(r.header("Access-Control-Allow-Methods"), "PATCH")
        self.assertEqual(r.header("Access-Control-Allow-Headers"), "x-a, x-b")
        self.assertFalse(r.has("Access-Control-Allow-Credentials"))
        r = self.send("GET", "/public/x", [("Origin", "https://anyone.test")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "*")

    def test_preflight_is_answered_before_auth(self):
        r = self.send("OPTIONS", "/authed/x", preflight("GET", headers="authorization"))
        self.assertEqual(r.status, 204, r)
        self.assertNothingForwarded()

    def test_401_of_a_cors_route_carries_cors_headers(self):
        r = self.send("GET", "/authed/x", [("Origin", APP)])
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), APP)
        self.assertIn("Origin", r.header("Vary"))
        r = self.send("GET", "/authed/x", [("Origin", APP)] + bearer(token(self.key)))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), APP)

    def test_options_without_request_method_is_forwarded(self):
        r = self.send("OPTIONS", "/strict/x", [("Origin", APP)])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.up.wait_records(1)[0]["method"], "OPTIONS")
        self.assertEqual(r.header("Access-Control-Allow-Origin"), APP)

    def test_preflight_on_route_without_cors_goes_upstream(self):
        r = self.send("OPTIONS", "/plain/x", preflight("POST"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.up.wait_records(1)[0]["method"], "OPTIONS")
        self.assertFalse(r.has("Access-Control-Allow-Origin"))
        self.assertFalse(r.has("Vary"))

    # actual requests

    def test_actual_request_from_allowed_origin(self):
        r = self.send("POST", "/strict/x", [("Origin", APP), ("Content-Length", "0")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header_all("Access-Control-Allow-Origin"), [APP])
        self.assertEqual(r.header("Access-Control-Allow-Credentials"), "true")
        self.assertEqual(r.header("Access-Control-Expose-Headers"), "x-request-id")
        self.assertIn("Origin", r.header("Vary"))
        self.assertEqual(len(self.up.wait_records(1)), 1)

    def test_actual_request_from_other_origin_is_forwarded_without_allow_origin(self):
        r = self.send("GET", "/strict/x", [("Origin", "https://evil.example.com")])
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.has("Access-Control-Allow-Origin"), r)
        self.assertFalse(r.has("Access-Control-Allow-Credentials"), r)
        self.assertEqual(r.header("Vary"), "Origin")

    def test_upstream_cors_headers_are_replaced(self):
        target = ("/strict/respond?status=200&h=Access-Control-Allow-Origin:*"
                  "&h=Access-Control-Allow-Credentials:false&h=Vary:Accept-Encoding")
        r = self.send("GET", target, [("Origin", APP)])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header_all("Access-Control-Allow-Origin"), [APP])
        self.assertEqual(r.header_all("Access-Control-Allow-Credentials"), ["true"])
        self.assertEqual(sorted(r.header_all("Vary")), ["Accept-Encoding", "Origin"])
        r = self.send("GET", target, [("Origin", "https://evil.example.com")])
        self.assertFalse(r.has("Access-Control-Allow-Origin"), r)

    def test_vary_without_origin(self):
        r = self.send("GET", "/strict/x", [])
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.has("Access-Control-Allow-Origin"))
        self.assertEqual(r.header("Vary"), "Origin")
        r = self.send("GET", "/plain/x", [("Origin", APP)])
        self.assertFalse(r.has("Vary"))
        self.assertFalse(r.has("Access-Control-Allow-Origin"))

    def test_404_has_no_cors_headers(self):
        r = self.send("GET", "/nowhere", [("Origin", APP)])
        self.assertEqual(r.status, 404)
        self.assertFalse(r.has("Access-Control-Allow-Origin"))

    def test_metrics_count_preflights_as_204(self):
        self.send("OPTIONS", "/strict/y", preflight("GET"))
        m = self.proxy.metrics()
        self.assertGreaterEqual(harness.metric(m, "bgw_http_requests_total", route="strict", code="204") or 0, 1)


if __name__ == "__main__":
    unittest.main()
