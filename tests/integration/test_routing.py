"""Routing: path_exact, path_prefix on segment boundaries, methods, hosts, headers, most-specific-wins,
rewrite_prefix, 404, and the path normalisation the upstream sees.

Every service has its own upstream listener named after it, so X-Upstream / the echoed "upstream" tells
which route served a request, and the echoed "target" is what the upstream received.

The routes are listed less specific first, so a proxy that takes the first match fails."""

import unittest

import harness
from harness import Conn, build_request, route, service

LISTENERS = ["exact", "api", "apiv2", "special", "orders", "old", "mwrite", "mread", "hapi", "hwild",
             "canary", "stable", "tie1", "tie2", "catchall"]


class RoutingTest(harness.ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_cls(*LISTENERS)
        services = [service("svc-" + n, cls.up.addr(n)) for n in LISTENERS]
        routes = [
            route("r-catchall", "svc-catchall", path_prefix="/", hosts=["catchall.test"]),
            route("r-api", "svc-api", path_prefix="/api"),
            route("r-orders", "svc-orders", path_prefix="/api/orders", rewrite_prefix="/"),
            route("r-api-v2", "svc-apiv2", path_prefix="/api/v2"),
            route("r-special", "svc-special", path_exact="/api/v2/special"),
            route("r-exact", "svc-exact", path_exact="/health"),
            route("r-old", "svc-old", path_prefix="/old", rewrite_prefix="/new"),
            route("r-m-write", "svc-mwrite", path_prefix="/m", methods=["POST", "PUT"]),
            route("r-m-read", "svc-mread", path_prefix="/m", methods=["GET"]),
            route("r-h-api", "svc-hapi", path_prefix="/h", hosts=["api.example.com"]),
            route("r-h-wild", "svc-hwild", path_prefix="/h", hosts=["*.wild.test"]),
            route("r-hd-stable", "svc-stable", path_prefix="/hd"),
            route("r-hd-canary", "svc-canary", path_prefix="/hd", headers=[{"name": "x-canary", "exact": "1"}]),
            route("r-tie-1", "svc-tie1", path_prefix="/tie"),
            route("r-tie-2", "svc-tie2", path_prefix="/tie"),
        ]
        cls.proxy = cls.start_proxy_cls({"services": services, "routes": routes}, workers=2)

    def setUp(self):
        self.up.clear()

    # helpers

    def get(self, target, method="GET", host="test.local", headers=None, body=None):
        return self.proxy.request(method, target, headers=headers, body=body, host=host)

    def assertServed(self, target, upstream, upstream_target=None, **kw):
        """target is proxied to listener upstream, which receives upstream_target (if given)."""
        r = self.get(target, **kw)
        self.assertEqual(r.status, 200, "%s %s -> %r" % (kw.get("method", "GET"), target, r))
        self.assertEqual(r.header("X-Upstream"), upstream, "%s served by the wrong route: %r" % (target, r))
        if upstream_target is not None:
            self.assertEqual(r.json()["target"], upstream_target, "target seen by the upstream for %s" % target)
        return r

    def assertNoRoute(self, target, **kw):
        r = self.get(target, **kw)
        self.assertErrorBody(r, 404, "no_route")
        return r

    def assertBadRequest(self, target):
        with Conn(self.proxy.port) as c:
            c.send(build_request("GET", target))
            r = c.read_response_or_close()
            self.assertIsNotNone(r, "%s: connection closed without a 400" % target)
            self.assertErrorBody(r, 400, "bad_request")
            self.assertTrue(c.wait_closed(5), "%s: connection not closed after 400" % target)

    # tests

    def test_path_exact(self):
        self.assertServed("/health", "exact", "/health")
        self.assertServed("/health?verbose=1", "exact", "/health?verbose=1")
        self.assertNoRoute("/health/")
        self.assertNoRoute("/healthz")
        self.assertNoRoute("/health/x")

    def test_path_prefix_segment_boundaries(self):
        for t in ("/api", "/api/", "/api/x", "/api/x/y", "/api?x=1"):
            self.assertServed(t, "api", t)
        for t in ("/apix", "/ap", "/apix/y", "/"):
            self.assertNoRoute(t)

    def test_longer_prefix_and_exact_win(self):
        self.assertServed("/api/v2", "apiv2", "/api/v2")
        self.assertServed("/api/v2/x", "apiv2", "/api/v2/x")
        self.assertServed("/api/v2x", "api", "/api/v2x")
        self.assertServed("/api/v2/special", "special", "/api/v2/special")
        self.assertServed("/api/v2/special/x", "apiv2", "/api/v2/special/x")

    def test_methods(self):
        self.assertServed("/m", "mwrite", method="POST", body=b"x")
        self.assertServed("/m/1", "mwrite", method="PUT", body=b"x")
        self.assertServed("/m", "mread", method="GET")
        self.assertNoRoute("/m", method="DELETE")
        self.assertNoRoute("/m/1", method="PATCH", body=b"")

    def test_hosts(self):
        self.assertServed("/h", "hapi", host="api.example.com")
        self.assertServed("/h/x", "hapi", host="api.example.com:8080")
        self.assertServed("/h", "hapi", host="API.Example.COM")
        self.assertServed("/h", "hwild", host="x.wild.test")
        self.assertServed("/h", "hwild", host="x.wild.test:81")
        self.assertNoRoute("/h", host="other.example.com")
        self.assertNoRoute("/h", host="api.example.com.evil")

    def test_header_conditions(self):
        self.assertServed("/hd", "canary", headers=[("x-canary", "1")])
        self.assertServed("/hd/z", "canary", headers=[("X-Canary", "1")])
        self.assertServed("/hd", "stable", headers=[("x-canary", "2")])
        self.assertServed("/hd", "stable", headers=[("x-canary", "10")])
        self.assertServed("/hd", "stable")

    def test_most_specific_then_order(self):
        # longer prefix beats a shorter prefix with more conditions
        self.assertServed("/api/x", "api", host="catchall.test")
        # exact beats prefix
        self.assertServed("/health", "exact", host="catchall.test")
        self.assertServed("/zzz", "catchall", "/zzz", host="catchall.test")
        # equally specific: the first in the document
        for _ in range(4):
            self.assertServed("/tie/a", "tie1")

    def test_rewrite_prefix_to_root(self):
        self.assertServed("/api/orders/7", "orders", "/7")
        self.assertServed("/api/orders/7?x=1&y=%20&z=/a", "orders", "/7?x=1&y=%20&z=/a")
        self.assertServed("/api/orders/7/items", "orders", "/7/items")
        self.assertServed("/api/orders", "orders", "/")
        self.assertServed("/api/orders/", "orders", "/")
        self.assertServed("/api/orders?q=1", "orders", "/?q=1")
        self.assertServed("/api/ordersX", "api", "/api/ordersX")

    def test_rewrite_prefix_to_path(self):
        self.assertServed("/old/x", "old", "/new/x")
        self.assertServed("/old", "old", "/new")
        self.assertServed("/old/", "old", "/new/")
        self.assertServed("/old/x?k=v", "old", "/new/x?k=v")

    def test_404_no_route(self):
        with Conn(self.proxy.port) as c:
            r = c.request("GET", "/nothing/here")
            self.assertErrorBody(r, 404, "no_route")
            # the connection stays usable after a 404
            r2 = c.request("GET", "/api/after-404")
            self.assertEqual(r2.status, 200, r2)
        self.assertEqual(self.up.targets(), ["/api/after-404"])

    def test_normalisation_seen_by_upstream(self):
        cases = [
            ("/api/./b/../c", "/api/c"),
            ("/api/a/./b/../../c", "/api/c"),
            ("//api//x///y", "/api/x/y"),
            ("/api/%7Euser", "/api/~user"),
            ("/api/%7euser", "/api/~user"),
            ("/api/%41%62c-%5F%2D%2E", "/api/Abc-_-."),
            ("/api/a%20b", "/api/a%20b"),
            ("/api/x/%2e%2e/y", "/api/y"),
            ("/api/x/%2E%2E/%2e/y", "/api/y"),
            ("/api/x/..", "/api/"),
            ("/../../api/q", "/api/q"),
            ("/api/x?a=../b&c=%7E&d=//e", "/api/x?a=../b&c=%7E&d=//e"),
            ("/api/x?next=%2Fhome%5C", "/api/x?next=%2Fhome%5C"),
        ]
        for target, expect in cases:
            with self.subTest(target=target):
                self.assertServed(target, "api", expect)

    def test_routing_uses_normalised_path(self):
        self.assertServed("/api/../health", "exact", "/health")
        self.assertServed("/api/%2e%2e/health", "exact", "/health")
        self.assertServed("/api/%2E%2E/%2E%2E/health", "exact", "/health")
        self.assertServed("/x/../api/v2/./special", "special", "/api/v2/special")
        self.assertNoRoute("/api/../apix")

    def test_encoded_slash_backslash_rejected(self):
        for target in ("/api/a%2Fb", "/api/a%2fb", "/api/a%5Cb", "/api/a%5cb", "/api/a\\b", "/api\\..\\health",
                       "/api/%2F..%2Fhealth"):
            with self.subTest(target=target):
                self.assertBadRequest(target)
        self.assertEqual(self.up.records(), [], "a rejected request reached the upstream")


if __name__ == "__main__":
    unittest.main()
