"""JWT auth policies end to end: the real bgw-proxy with keys and tokens made here.

Every refused token is a 401 with `WWW-Authenticate: Bearer` and a JSON body, counted in
bgw_auth_rejected_total{route,reason}, and never reaches the upstream (its records stay empty)."""

import json
import time
import unittest

import harness
from harness import metric, record_header, route, service
from jwt_helpers import (AUDIENCE, ISSUER, EcKey, OctKey, RsaKey, bearer, claims, hs256_with, jwks, token,
                         unsigned)

SKEW = 30


class JwtTest(harness.ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.rsa = RsaKey("rsa-1")
        cls.ec = EcKey("ec-1")
        cls.hs = OctKey("hs-1")
        cls.other = RsaKey("rsa-other")           # never configured
        cls.up = cls.start_upstream_cls("api")
        cfg = {
            "services": [service("svc", cls.up.addr("api"))],
            "routes": [
                route("open", "svc", path_prefix="/open"),
                route("users", "svc", path_prefix="/users", auth="users-jwt"),
                route("hmac", "svc", path_prefix="/hmac", auth="hmac-jwt"),
                route("any-aud", "svc", path_prefix="/anyaud", auth="no-aud"),
                route("limited", "svc", path_prefix="/limited", auth="users-jwt", rate_limit="per-user"),
            ],
            "rate_limits": [{"name": "per-user", "requests": 1, "per": "hour", "burst": 1, "key": "claim:sub"}],
            "auth_policies": [
                {"name": "users-jwt", "issuer": ISSUER, "audiences": [AUDIENCE, "api-2"],
                 "algorithms": ["RS256", "PS256", "ES256"], "jwks": jwks(cls.rsa, cls.ec),
                 "forward_claims": {"sub": "x-user-id", "scope": "x-scope", "n": "x-number"},
                 "clock_skew_s": SKEW},
                {"name": "hmac-jwt", "issuer": ISSUER, "algorithms": ["HS256"], "jwks": jwks(cls.hs)},
                {"name": "no-aud", "issuer": ISSUER, "algorithms": ["RS256"], "jwks": jwks(cls.rsa)},
            ],
        }
        cls.proxy = cls.start_proxy_cls(cfg, workers=2)

    def setUp(self):
        self.up.clear()

    # helpers

    def get(self, target, tok=None, headers=()):
        hs = list(headers) + (bearer(tok) if tok is not None else [])
        return self.proxy.request("GET", target, headers=hs)

    def assertAccepted(self, target, tok, headers=()):
        r = self.get(target, tok, headers)
        self.assertEqual(r.status, 200, r)
        return self.up.wait_records(1)[-1]

    def assertRefused(self, target, tok, reason, headers=(), error=True):
        """401 with the Bearer challenge and a JSON body; the upstream saw nothing; the reason is counted."""
        before = metric(self.proxy.metrics(), "bgw_auth_rejected_total", route=self.route_of(target),
                        reason=reason) or 0
        r = self.get(target, tok, headers)
        self.assertErrorBody(r, 401, "invalid_token" if error else "missing_token")
        challenge = r.header("WWW-Authenticate") or ""
        self.assertTrue(challenge.startswith("Bearer "), r)
        if error:
            self.assertIn('error="invalid_token"', challenge)
        else:
            self.assertNotIn("error=", challenge)
        self.assertTrue(r.json().get("message"), r)
        after = metric(self.proxy.metrics(), "bgw_auth_rejected_total", route=self.route_of(target), reason=reason)
        self.assertEqual(after, before + 1, "bgw_auth_rejected_total{reason=%s}" % reason)
        self.assertEqual(self.up.records(), [], "a refused request reached the upstream")
        return r

    @staticmethod
    def route_of(target):
        return {"users": "users", "hmac": "hmac", "anyaud": "any-aud"}[target.strip("/").split("/")[0]]

    # accepted tokens

    def test_valid_rs256_forwards_claims(self):
        rec = self.assertAccepted("/users/me", token(self.rsa, payload=claims(scope="read write", n=7)))
        self.assertEqual(record_header(rec, "x-user-id"), ["user-42"])
        self.assertEqual(record_header(rec, "x-scope"), ["read write"])
        self.assertEqual(record_header(rec, "x-number"), ["7"])
        self.assertEqual(len(record_header(rec, "authorization")), 1)

    def test_valid_es256_and_ps256(self):
        self.assertAccepted("/users/a", token(self.ec))
        self.up.clear()
        self.assertAccepted("/users/b", token(self.rsa, alg="PS256"))

    def test_token_without_kid_tries_the_keys_of_its_type(self):
        self.assertAccepted("/users/x", token(self.rsa, kid=False))

    def test_audience_array_and_second_audience(self):
        self.assertAccepted("/users/x", token(self.rsa, payload=claims(aud=["other", "api-2"])))

    def test_no_audiences_configured_accepts_any(self):
        self.assertAccepted("/anyaud/x", token(self.rsa, payload=claims(aud="whatever")))

    def test_hs256_route(self):
        self.assertAccepted("/hmac/x", token(self.hs))

    def test_repeated_token_is_served_from_the_cache(self):
        tok = token(self.rsa)
        for _ in range(5):
            self.assertEqual(self.get("/users/c", tok).status, 200)
        self.up.wait_records(5)

    def test_expiry_and_nbf_within_the_skew_are_accepted(self):
        now = int(time.time())
        self.assertAccepted("/users/x", token(self.rsa, payload=claims(exp=now - SKEW + 10)))
        self.up.clear()
        self.assertAccepted("/users/x", token(self.rsa, payload=claims(nbf=now + SKEW - 10)))

    def test_rate_limit_keyed_by_a_claim(self):
        alice = token(self.rsa, payload=claims(sub="alice"))
        bob = token(self.rsa, payload=claims(sub="bob"))
        self.assertEqual(self.get("/limited/x", alice).status, 200)
        r = self.get("/limited/x", token(self.ec, payload=claims(sub="alice")))    # another token, same sub
        self.assertEqual(r.status, 429, r)
        self.assertEqual(self.get("/limited/x", bob).status, 200, "bob shares alice's bucket")
        self.assertEqual(self.get("/limited/x", bob).status, 429)

    # client-sent claim headers

    def test_client_copies_of_claim_headers_are_removed(self):
        tok = token(self.rsa, payload=claims(scope=None))          # no scope claim: no x-scope at all
        rec = self.assertAccepted("/users/x", tok, headers=[("X-User-Id", "admin"), ("x-scope", "root"),
                                                            ("X-SCOPE", "root2")])
        self.assertEqual(record_header(rec, "x-user-id"), ["user-42"])
        self.assertEqual(record_header(rec, "x-scope"), [])

    def test_claim_headers_untouched_on_open_routes(self):
        r = self.get("/open/x", headers=[("X-User-Id", "whoever")])
        self.assertEqual(r.status, 200)
        self.assertEqual(record_header(self.up.wait_records(1)[0], "x-user-id"), ["whoever"])

    # refused tokens

    def test_missing_token(self):
        r = self.assertRefused("/users/x", None, "missing", error=False)
        self.assertIn("realm=", r.header("WWW-Authenticate"))
        self.assertRefused("/users/x", None, "missing", headers=[("Authorization", "Basic dXNlcjpwdw==")],
                           error=False)

    def test_alg_none(self):
        self.assertRefused("/users/x", unsigned(), "bad_alg")
        self.assertRefused("/users/x", unsigned(alg="None"), "bad_alg")
        self.assertRefused("/users/x", unsigned() + "c2ln", "bad_alg")

    def test_hs256_signed_with_the_rsa_public_key(self):
        self.assertRefused("/users/x", hs256_with(self.rsa.pem(), kid="rsa-1"), "bad_alg")
        self.assertRefused("/users/x", hs256_with(self.rsa.pem()), "bad_alg")

    def test_alg_not_matching_the_key_type(self):
        # ES256 is allowed, but the kid names the RSA key: no EC key with that kid
        self.assertRefused("/users/x", token(self.ec, alg="ES256", header={"kid": "rsa-1"}), "unknown_kid")
        # an RS256 token on the HS256-only route
        self.assertRefused("/hmac/x", token(self.rsa), "bad_alg")

    def test_expired_beyond_skew(self):
        now = int(time.time())
        self.assertRefused("/users/x", token(self.rsa, payload=claims(exp=now - SKEW - 10)), "expired")

    def test_nbf_beyond_skew(self):
        now = int(time.time())
        self.assertRefused("/users/x", token(self.rsa, payload=claims(nbf=now + SKEW + 60)), "not_yet_valid")

    def test_wrong_issuer(self):
        self.assertRefused("/users/x", token(self.rsa, payload=claims(iss="https://evil.test")), "bad_issuer")
        self.assertRefused("/users/x", token(self.rsa, payload=claims(iss=None)), "bad_issuer")

    def test_wrong_audience(self):
        self.assertRefused("/users/x", token(self.rsa, payload=claims(aud="other")), "bad_audience")
        self.assertRefused("/users/x", token(self.rsa, payload=claims(aud=["x", "y"])), "bad_audience")
        self.assertRefused("/users/x", token(self.rsa, payload=claims(aud=None)), "bad_audience")

    def test_unknown_kid(self):
        self.assertRefused("/users/x", token(self.other), "unknown_kid")

    def test_kid_with_a_path(self):
        for kid in ("../../etc/passwd", "/etc/passwd", "file:///etc/passwd", "rsa-1/../rsa-1"):
            self.assertRefused("/users/x", token(self.rsa, header={"kid": kid}), "unknown_kid")

    def test_remote_key_headers_are_ignored(self):
        # signed by a key we do not know, pointing at it in every way a header can
        hostile = {"jku": "http://127.0.0.1:1/jwks", "x5u": "http://127.0.0.1:1/cert",
                   "jwk": self.other.jwk(), "kid": None}
        self.assertRefused("/users/x", token(self.other, header=hostile), "bad_signature")

    def test_bad_signature(self):
        good = token(self.rsa)
        h, p, s = good.split(".")
        tampered = token(self.rsa, payload=claims(sub="admin")).split(".")[1]
        self.assertRefused("/users/x", h + "." + tampered + "." + s, "bad_signature")
        self.assertRefused("/hmac/x", token(OctKey("hs-1", secret=b"x" * 32)), "bad_signature")

    def test_wrong_segment_counts_and_bad_base64(self):
        good = token(self.rsa)
        h, p, s = good.split(".")
        for bad in (h + "." + p, good + "." + s, "a.b", good + ".", "..", h + "!." + p + "." + s,
                    h + "." + p + "." + s + "%", "e30.e30.e30"):
            self.assertRefused("/users/x", bad, "malformed")

    def test_oversized_token(self):
        tok = token(self.rsa, payload=claims(pad="x" * 16384))
        self.assertGreater(len(tok), 16 * 1024)
        self.assertRefused("/users/x", tok, "too_large")

    def test_two_authorization_headers(self):
        tok = token(self.rsa)
        self.assertRefused("/users/x", None, "malformed", headers=bearer(tok) + bearer(tok))

    def test_non_json_claims(self):
        tok = token(self.rsa, payload=claims(exp="tomorrow"))
        self.assertRefused("/users/x", tok, "malformed")


if __name__ == "__main__":
    unittest.main()
