"""bgw-control's admin REST API end to end: every call of the contract's table, every error status with
its JSON body, and that a rejected request changes nothing (GET /v1/config identical before and after)."""

import json
import threading
import unittest

from control_harness import ControlTestCase, raw_request, route, service
from harness import metric, samples

TOKEN = "t0ken-for-tests"

RATE_LIMIT = {"name": "per-client", "requests": 100, "per": "second", "burst": 50, "key": "client_ip",
              "scope": "local"}
AUTH = {"name": "users-jwt", "issuer": "https://auth.example.com", "audiences": ["api"], "algorithms": ["RS256"],
        "jwks": {"keys": []}, "forward_claims": {"sub": "x-user-id"}, "clock_skew_s": 60}


class ApiTest(ControlTestCase):
    @classmethod
    def setUpClass(cls):
        cls.cp = cls.start_control_cls(token=TOKEN)

    def setUp(self):
        # Every test starts from an empty store (deletes go routes first, then what they referenced).
        cfg = self.cp.config()
        for kind in ("routes", "services", "rate_limits", "auth_policies"):
            for obj in cfg[kind]:
                r = self.cp.call("DELETE", "/v1/%s/%s" % (kind, obj["name"]))
                self.assertEqual(r.status, 204, r)

    def unchanged(self, before):
        self.assertEqual(self.cp.config(), before, "a rejected request changed the config")

    # -- the happy paths

    def test_health_ready_metrics_need_no_token(self):
        for path in ("/healthz", "/readyz", "/metrics"):
            r = self.cp.call("GET", path, token=None)
            self.assertEqual(r.status, 200, (path, r))
        r = self.cp.call("HEAD", "/healthz", token=None)
        self.assertEqual(r.status, 200)

    def test_put_get_list_delete(self):
        v0 = int(self.cp.config()["version"])
        r = self.cp.put("services", service("orders", "127.0.0.1:9001", "127.0.0.1:9002"))
        self.assertEqual(r.status, 201, r)
        obj = r.json()
        rev = obj["revision"]
        self.assertEqual(r.header("etag"), '"%s"' % rev)
        self.assertEqual(r.header("location"), "/v1/services/orders")
        self.assertEqual(int(rev), v0 + 1)

        r = self.cp.call("GET", "/v1/services/orders")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("etag"), '"%s"' % rev)
        got = r.json()
        self.assertEqual(got["name"], "orders")
        self.assertEqual(got["endpoints"], ["127.0.0.1:9001", "127.0.0.1:9002"])
        self.assertEqual(got["revision"], rev)

        r = self.cp.put("services", service("orders", "127.0.0.1:9003"))
        self.assertEqual(r.status, 200, r)
        rev2 = r.json()["revision"]
        self.assertGreater(int(rev2), int(rev))

        lst = self.cp.get_json("/v1/services")
        self.assertEqual([i["name"] for i in lst["items"]], ["orders"])
        self.assertEqual(lst["items"][0]["revision"], rev2)
        self.assertEqual(lst["version"], rev2)
        self.assertEqual(self.cp.config()["version"], rev2)

        r = self.cp.call("DELETE", "/v1/services/orders")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        self.assertError(self.cp.call("GET", "/v1/services/orders"), 404, "not_found")
        self.assertError(self.cp.call("DELETE", "/v1/services/orders"), 404, "not_found")
        self.assertGreater(int(self.cp.config()["version"]), int(rev2))

    def test_name_from_url(self):
        r = self.cp.call("PUT", "/v1/services/s1", {"endpoints": ["127.0.0.1:1"]})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.cp.get_json("/v1/services/s1")["name"], "s1")

    def test_every_kind(self):
        for kind, obj in (("services", service("orders")), ("rate_limits", RATE_LIMIT), ("auth_policies", AUTH),
                          ("routes", route("api", "orders", "/api", rate_limit="per-client", auth="users-jwt"))):
            r = self.cp.put(kind, obj)
            self.assertEqual(r.status, 201, (kind, r))
            got = self.cp.get_json("/v1/%s/%s" % (kind, obj["name"]))
            for k, v in obj.items():
                self.assertEqual(got[k], v, (kind, k))
            self.assertEqual(len(self.cp.get_json("/v1/" + kind)["items"]), 1)
        cfg = self.cp.config()
        self.assertEqual([r["name"] for r in cfg["routes"]], ["api"])
        self.assertNotIn("revision", cfg["routes"][0])

    def test_same_object_again_is_not_a_change(self):
        r = self.cp.put("services", service("same"))
        v = self.cp.config()["version"]
        r2 = self.cp.put("services", service("same"))
        self.assertEqual(r2.status, 200)
        self.assertEqual(r2.json()["revision"], r.json()["revision"])
        self.assertEqual(self.cp.config()["version"], v)

    def test_if_match(self):
        rev = self.cp.put("services", service("m")).json()["revision"]
        before = self.cp.config()
        r = self.cp.put("services", service("m", "127.0.0.1:2"), headers={"If-Match": '"999"'})
        self.assertError(r, 412, "precondition_failed")
        self.unchanged(before)
        self.assertError(self.cp.put("services", service("absent"), headers={"If-Match": '"1"'}), 412)
        self.assertError(self.cp.call("DELETE", "/v1/services/m", headers={"If-Match": "999"}), 412)
        self.unchanged(before)
        r = self.cp.put("services", service("m", "127.0.0.1:2"), headers={"If-Match": '"%s"' % rev})
        self.assertEqual(r.status, 200, r)
        rev2 = r.json()["revision"]
        r = self.cp.put("services", service("m", "127.0.0.1:3"), headers={"If-Match": rev2})       # bare
        self.assertEqual(r.status, 200, r)
        r = self.cp.call("DELETE", "/v1/services/m", headers={"If-Match": r.header("etag")})
        self.assertEqual(r.status, 204, r)

    def test_two_writers_no_lost_update(self):
        """Writers that read, modify and PUT with If-Match (retrying on 412) never lose each other's work."""
        self.cp.put("services", service("shared", "127.0.0.1:1000"))
        writers, per_writer = 4, 5
        errors = []

        def writer(w):
            try:
                for i in range(per_writer):
                    addr = "127.0.0.1:%d" % (2000 + w * 100 + i)
                    while True:
                        r = self.cp.call("GET", "/v1/services/shared")
                        obj = r.json()
                        etag = r.header("etag")
                        obj["endpoints"].append(addr)
                        del obj["revision"]
                        p = self.cp.put("services", obj, headers={"If-Match": etag})
                        if p.status == 200:
                            break
                        if p.status != 412:
                            errors.append(p)
                            return
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        ts = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(errors, [])
        eps = self.cp.get_json("/v1/services/shared")["endpoints"]
        self.assertEqual(len(eps), 1 + writers * per_writer, eps)
        self.assertEqual(len(set(eps)), len(eps))

    def test_two_writers_same_etag(self):
        r = self.cp.put("services", service("two"))
        etag = r.header("etag")
        a = self.cp.put("services", service("two", "127.0.0.1:1"), headers={"If-Match": etag})
        b = self.cp.put("services", service("two", "127.0.0.1:2"), headers={"If-Match": etag})
        self.assertEqual(a.status, 200)
        self.assertError(b, 412)
        self.assertEqual(self.cp.get_json("/v1/services/two")["endpoints"], ["127.0.0.1:1"])

    def test_delete_referenced_is_409(self):
        self.cp.put("services", service("orders"))
        self.cp.put("rate_limits", RATE_LIMIT)
        self.cp.put("auth_policies", AUTH)
        self.cp.put("routes", route("api", "orders", rate_limit="per-client", auth="users-jwt"))
        before = self.cp.config()
        for kind, name in (("services", "orders"), ("rate_limits", "per-client"), ("auth_policies", "users-jwt")):
            err = self.assertError(self.cp.call("DELETE", "/v1/%s/%s" % (kind, name)), 409, "conflict")
            self.assertIn("api", err["message"])
        self.unchanged(before)
        self.assertEqual(self.cp.call("DELETE", "/v1/routes/api").status, 204)
        self.assertEqual(self.cp.call("DELETE", "/v1/services/orders").status, 204)

    def test_apply(self):
        self.cp.put("services", service("keep"))
        self.cp.put("services", service("orders", "127.0.0.1:1"))
        doc = {"services": [service("orders", "127.0.0.1:2"), service("new")],
               "rate_limits": [RATE_LIMIT],
               "routes": [route("api", "new", "/api", rate_limit="per-client")]}
        r = self.cp.call("POST", "/v1/apply", doc)
        self.assertEqual(r.status, 200, r)
        out = r.json()
        results = {(i["kind"], i["name"]): i["result"] for i in out["items"]}
        self.assertEqual(results, {("services", "orders"): "replaced", ("services", "new"): "created",
                                   ("rate_limits", "per-client"): "created", ("routes", "api"): "created"})
        cfg = self.cp.config()
        self.assertEqual(out["version"], cfg["version"])
        self.assertEqual([s["name"] for s in cfg["services"]], ["keep", "orders", "new"])
        # /v1/config is what the proxies get: endpoints resolved, with their health.
        self.assertEqual(cfg["services"][1]["endpoints"], [{"address": "127.0.0.1:2", "healthy": True}])
        # The snapshot applies back: same content (endpoints now written as objects, so a new version).
        r = self.cp.call("POST", "/v1/apply", cfg)
        self.assertEqual(r.status, 200, r)
        after = self.cp.config()
        self.assertEqual({k: v for k, v in after.items() if k != "version"},
                         {k: v for k, v in cfg.items() if k != "version"})

    def test_apply_all_or_nothing(self):
        self.cp.put("services", service("orders"))
        before = self.cp.config()
        doc = {"services": [service("orders", "127.0.0.1:7"), service("new")],
               "routes": [route("a", "new", "/a"), route("b", "ghost", "/b")]}
        self.assertError(self.cp.call("POST", "/v1/apply", doc), 400, "invalid_argument", "routes[1].service")
        self.unchanged(before)
        doc = {"routes": [{"name": "r", "match": {"path_prefix": "/"}, "service": "orders", "bogus": 1}]}
        self.assertError(self.cp.call("POST", "/v1/apply", doc), 400, field="routes[0].bogus")
        self.assertError(self.cp.call("POST", "/v1/apply", {"services": [service("x"), service("x")]}), 400,
                         field="services[1].name")
        self.assertError(self.cp.call("POST", "/v1/apply", {"widgets": []}), 400, field="widgets")
        self.unchanged(before)

    def test_config_and_dataplanes(self):
        cfg = self.cp.config()
        for k in ("services", "routes", "rate_limits", "auth_policies", "version"):
            self.assertIn(k, cfg)
        dp = self.cp.get_json("/v1/dataplanes")
        self.assertIsInstance(dp["items"], list)

    def test_endpoints(self):
        self.cp.put("services", {"name": "eps", "endpoints": ["127.0.0.1:1",
                                                            {"address": "127.0.0.1:2", "healthy": False}]})
        items = self.cp.get_json("/v1/services/eps/endpoints")["items"]
        self.assertEqual(items, [{"address": "127.0.0.1:1", "healthy": True, "source": "static",
                                  "last_check": None, "last_error": None},
                                 {"address": "127.0.0.1:2", "healthy": False, "source": "static",
                                  "last_check": None, "last_error": None}])
        self.assertError(self.cp.call("GET", "/v1/services/nope/endpoints"), 404)

    def test_metrics(self):
        self.cp.call("GET", "/v1/services")
        self.cp.call("GET", "/v1/services/definitely-absent")
        m = self.cp.metrics()
        self.assertGreaterEqual(metric(m, "bgw_admin_requests_total", method="GET", code="200"), 1)
        self.assertGreaterEqual(metric(m, "bgw_admin_requests_total", method="GET", code="404"), 1)
        self.assertEqual(m.types.get("bgw_admin_requests_total"), "counter")
        self.assertIsNotNone(metric(m, "bgw_xds_connected_proxies"))
        for fam in ("process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total"):
            self.assertTrue(samples(m, fam), fam)

    # -- errors; each one leaves the config as it was

    def test_bad_json(self):
        before = self.cp.config()
        for body in ("{", "", "{\"endpoints\": [] ,}", "[1, 2", "{\"a\": 1, \"a\": 2}"):
            self.assertError(self.cp.call("PUT", "/v1/services/s", body), 400, "invalid_argument")
            self.assertError(self.cp.call("POST", "/v1/apply", body), 400, "invalid_argument")
        self.assertError(self.cp.call("PUT", "/v1/services/s", "[]"), 400)
        self.assertError(self.cp.call("PUT", "/v1/services/s", b"{\"endpoints\": [\"\xff\"]}"), 400)
        self.unchanged(before)

    def test_schema_errors_name_the_field(self):
        self.cp.put("services", service("orders"))
        before = self.cp.config()
        cases = [
            ("routes", {"name": "r", "match": {"path_prefix": "api"}, "service": "orders"}, "match.path_prefix"),
            ("routes", {"name": "r", "match": {}, "service": "orders"}, "match"),
            ("routes", {"name": "r", "match": {"path_prefix": "/"}}, "service"),
            ("services", {"name": "s", "endpoints": ["nohost"]}, "endpoints[0]"),
            ("services", {"name": "s", "endpoints": ["127.0.0.1:1"], "lb": "fastest"}, "lb"),
            ("services", {"name": "s", "endpoints": ["127.0.0.1:1"], "colour": "red"}, "colour"),
            ("rate_limits", dict(RATE_LIMIT, per="fortnight"), "per"),
            ("auth_policies", {k: v for k, v in AUTH.items() if k != "algorithms"}, "algorithms"),
        ]
        for kind, obj, field in cases:
            err = self.assertError(self.cp.put(kind, obj), 400, "invalid_argument", field)
            self.assertTrue(err["message"].startswith(field + ":"), err)
        self.unchanged(before)

    def test_unknown_references(self):
        self.cp.put("services", service("orders"))
        before = self.cp.config()
        for field, extra in (("service", {"service": "ghost"}), ("rate_limit", {"rate_limit": "ghost"}),
                             ("auth", {"auth": "ghost"})):
            obj = dict(route("r", "orders"), **extra)
            err = self.assertError(self.cp.put("routes", obj), 400, "invalid_argument", field)
            self.assertIn("ghost", err["message"])
        self.unchanged(before)

    def test_name_mismatch_and_bad_names(self):
        before = self.cp.config()
        self.assertError(self.cp.call("PUT", "/v1/services/a", service("b")), 400, field="name")
        self.assertError(self.cp.call("PUT", "/v1/services/a", {"name": 5, "endpoints": []}), 400, field="name")
        for path in ("/v1/services/a%2Fb", "/v1/services/a%00b", "/v1/services/a%20b", "/v1/services/%41",
                     "/v1/services/" + "x" * 129):
            self.assertError(self.cp.call("PUT", path, {"endpoints": ["127.0.0.1:1"]}), 400, field="name")
            self.assertError(self.cp.call("GET", path), 400, field="name")
        self.unchanged(before)
        r = self.cp.call("PUT", "/v1/services/" + "x" * 128, {"endpoints": ["127.0.0.1:1"]})
        self.assertEqual(r.status, 201, r)

    def test_not_found(self):
        for path in ("/v1/widgets", "/v1/services/a/b", "/v1/routes/a/endpoints", "/v1", "/v1/", "/nothing",
                     "/v1/services/"):
            self.assertError(self.cp.call("GET", path), 404, "not_found")

    def test_method_not_allowed(self):
        before = self.cp.config()
        cases = [("POST", "/v1/services", "GET, HEAD"), ("DELETE", "/v1/config", "GET, HEAD"),
                 ("GET", "/v1/apply", "POST"), ("POST", "/v1/services/x", "GET, HEAD, PUT, DELETE"),
                 ("PATCH", "/v1/services/x", "GET, HEAD, PUT, DELETE"), ("PUT", "/v1/dataplanes", "GET, HEAD"),
                 ("POST", "/healthz", "GET, HEAD")]
        for method, path, allow in cases:
            r = self.cp.call(method, path, {} if method in ("POST", "PUT", "PATCH") else None)
            self.assertError(r, 405, "method_not_allowed")
            self.assertEqual(r.header("allow"), allow, (method, path))
        self.unchanged(before)

    def test_wrong_content_type(self):
        r = self.cp.put("services", service("s"), content_type="application/json; charset=utf-8")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.cp.put("services", service("t"), content_type="Application/JSON").status, 201)
        before = self.cp.config()
        for ct in ("text/plain", "application/x-www-form-urlencoded", "application/jsonp", None):
            self.assertError(self.cp.call("PUT", "/v1/services/s", service("s"), content_type=ct), 415,
                             "unsupported_media_type")
            self.assertError(self.cp.call("POST", "/v1/apply", {"services": [service("s", "127.0.0.1:5")]},
                                          content_type=ct), 415)
        self.unchanged(before)

    def test_token(self):
        before = self.cp.config()
        for tok in (None, "wrong", TOKEN + "x", TOKEN[:-1]):
            for method, path, body in (("GET", "/v1/services", None), ("PUT", "/v1/services/s", service("s")),
                                       ("POST", "/v1/apply", {}), ("GET", "/v1/nothing", None)):
                r = self.cp.call(method, path, body, token=tok)
                self.assertError(r, 401, "unauthenticated")
                self.assertTrue((r.header("www-authenticate") or "").startswith("Bearer"), r)
        r = self.cp.call("GET", "/v1/services", headers={"Authorization": "Basic " + TOKEN}, token=None)
        self.assertError(r, 401)
        self.unchanged(before)

    def test_oversized_declared(self):
        before = self.cp.config()
        body = json.dumps({"name": "big", "endpoints": ["127.0.0.1:1"], "x": "a" * (1024 * 1024)}).encode()
        head = ("PUT /v1/services/big HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (TOKEN, len(body))).encode()
        status, out = raw_request(self.cp.admin_port, head, then=body)
        self.assertEqual(status, 413, out[:300])
        self.unchanged(before)

    def test_oversized_plain_client(self):
        """A client that sends its whole body before reading (no Expect: 100-continue) still reads the 413."""
        before = self.cp.config()
        for size in (1024 * 1024 + 1, 3 * 1024 * 1024):
            body = b"{\"x\": \"" + b"a" * size + b"\"}"
            self.assertError(self.cp.call("PUT", "/v1/services/big", body), 413, "payload_too_large")
            self.assertError(self.cp.call("POST", "/v1/apply", body), 413)
            # refused from the head for another reason: the answer is not lost either
            self.assertError(self.cp.call("PUT", "/v1/services/big", body, content_type="text/plain"), 415)
            self.assertError(self.cp.call("PUT", "/v1/services/big", body, token="wrong"), 401)
        self.unchanged(before)

    def test_expect_continue_answered_from_head(self):
        head = ("PUT /v1/services/big HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n"
                % TOKEN).encode()
        status, out = raw_request(self.cp.admin_port, head)
        self.assertEqual(status, 413, out[:300])
        self.assertNotIn(b"100 Continue", out)

    def test_oversized_chunked(self):
        before = self.cp.config()
        head = ("POST /v1/apply HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" % TOKEN).encode()
        chunk = b"%x\r\n" % (256 * 1024) + b" " * (256 * 1024) + b"\r\n"
        status, out = raw_request(self.cp.admin_port, head, then=chunk * 5 + b"0\r\n\r\n")
        self.assertEqual(status, 413, out[:300])
        self.unchanged(before)

    def test_exactly_one_mib_is_accepted(self):
        obj = {"name": "edge", "endpoints": ["127.0.0.1:1"]}
        text = json.dumps(obj)
        text = text[:-1] + " " * (1024 * 1024 - len(text)) + "}"
        self.assertEqual(len(text), 1024 * 1024)
        r = self.cp.call("PUT", "/v1/services/edge", text)
        self.assertEqual(r.status, 201, r)


if __name__ == "__main__":
    unittest.main()
