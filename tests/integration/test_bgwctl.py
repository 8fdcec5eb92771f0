"""End-to-end tests of bgwctl against the real bgw-control (free ports, temporary state directory): apply of
JSON and YAML (files and standard input), get in table / json / yaml (parsed back and compared with what the
admin API itself answers), delete, status, endpoints, version, the token, BGW_SERVER, and the exit codes and
messages of API errors (schema error naming the field, 404, 409, 401), bad files and usage errors.

A fake admin API (ctl_harness.FakeAdmin) covers what the real server cannot be made to produce on demand:
proxy rows for `status`, answers that are not JSON, a server that never answers, and the exact request
bgwctl sends (to check the YAML conversion byte for byte).
"""

import copy
import json
import os
import subprocess
import tempfile
import unittest

import ctl_yaml
from ctl_harness import Control, FakeAdmin, control_bin, ctl_bin, parse_table, run_ctl
from ctl_xds import StreamClient
from harness import free_port, wait_until

VERSION_LINE_PREFIX = "bgwctl "

CONTRACT_DOC = {
    "services": [{
        "name": "orders",
        "endpoints": ["127.0.0.1:9001", "127.0.0.1:9002"],
        "lb": "round_robin",
        "connect_timeout_ms": 1000,
        "max_connections": 100,
        "health_check": {"path": "/healthz", "interval_ms": 5000, "timeout_ms": 1000,
                         "healthy_threshold": 2, "unhealthy_threshold": 3},
        "circuit_breaker": {"max_pending_requests": 1024, "max_requests": 1024, "max_retries": 3},
        "outlier_detection": {"consecutive_5xx": 5, "base_ejection_ms": 30000, "max_ejection_percent": 50},
    }],
    "routes": [{
        "name": "orders-api",
        "match": {"path_prefix": "/api/orders", "methods": ["GET", "POST"], "hosts": ["api.example.com"],
                  "headers": [{"name": "x-canary", "exact": "1"}]},
        "service": "orders",
        "rewrite_prefix": "/",
        "timeout_ms": 15000,
        "retry": {"attempts": 2, "on": ["connect-failure", "reset", "5xx"], "per_try_timeout_ms": 5000},
        "rate_limit": "per-client",
        "auth": "users-jwt",
        "cors": {"allow_origins": ["https://app.example.com"], "allow_methods": ["GET", "POST"],
                 "allow_headers": ["authorization", "content-type"], "max_age_s": 600,
                 "allow_credentials": True},
    }],
    "rate_limits": [{"name": "per-client", "requests": 100, "per": "second", "burst": 50,
                     "key": "client_ip", "scope": "local"}],
    "auth_policies": [{"name": "users-jwt", "issuer": "https://auth.example.com", "audiences": ["api"],
                       "algorithms": ["RS256"], "jwks": {"keys": []}, "jwks_uri": "https://auth.example.com/jwks",
                       "forward_claims": {"sub": "x-user-id"}, "clock_skew_s": 60}],
}

# The same kind of document in YAML, using what YAML adds: quoted scalars that must stay strings ("1",
# '007'), plain integers and booleans, `on:` as a key (a string in YAML 1.2), flow and block collections,
# an anchor and its alias, comments.
YAML_DOC = """\
# a YAML document for bgwctl apply
services:
  - name: '007'
    endpoints: ["127.0.0.1:9101"]
    lb: least_request
    max_connections: 8
  - name: web
    endpoints:
      - 127.0.0.1:9102
      - "127.0.0.1:9103"
rate_limits:
  - {name: by-key, requests: 10, per: minute, burst: 0, key: "header:x-api-key", scope: local}
routes:
  - name: bond
    match:
      path_exact: /bond
      methods: &methods [GET, HEAD]
      headers:
        - name: x-version
          exact: "1"
    service: "007"
    retry:
      attempts: 0
      on: [5xx]
    rate_limit: by-key
  - name: web-root
    match: {path_prefix: /, methods: *methods}
    service: web
    cors:
      allow_origins: ["*"]
      allow_credentials: false
      max_age_s: 0
"""

YAML_EXPECTED = {
    "services": [
        {"name": "007", "endpoints": ["127.0.0.1:9101"], "lb": "least_request", "max_connections": 8},
        {"name": "web", "endpoints": ["127.0.0.1:9102", "127.0.0.1:9103"]},
    ],
    "rate_limits": [{"name": "by-key", "requests": 10, "per": "minute", "burst": 0, "key": "header:x-api-key",
                     "scope": "local"}],
    "routes": [
        {"name": "bond", "match": {"path_exact": "/bond", "methods": ["GET", "HEAD"],
                                   "headers": [{"name": "x-version", "exact": "1"}]},
         "service": "007", "retry": {"attempts": 0, "on": ["5xx"]}, "rate_limit": "by-key"},
        {"name": "web-root", "match": {"path_prefix": "/", "methods": ["GET", "HEAD"]}, "service": "web",
         "cors": {"allow_origins": ["*"], "allow_credentials": False, "max_age_s": 0}},
    ],
}

KINDS = ("services", "routes", "rate_limits", "auth_policies")


def without_revision(obj):
    return {k: v for (k, v) in obj.items() if k != "revision"}


def write_temp(test, name, text):
    d = tempfile.TemporaryDirectory(prefix="bgw-ctl-file-")
    test.addCleanup(d.cleanup)
    path = os.path.join(d.name, name)
    with open(path, "w") as f:
        f.write(text)
    return path


class CtlTestCase(unittest.TestCase):
    """Each test gets its own bgw-control (self.cp) with an empty state."""

    token = None

    def setUp(self):
        for b in (ctl_bin(), control_bin()):
            if not os.access(b, os.X_OK):
                self.fail("%s not found (set BGW_BIN_DIR or build it)" % b)
        self.cp = Control(token=self.token)
        self.addCleanup(self.cp.cleanup)
        self.cp.start()

    def ctl_ok(self, *args, **kw):
        rc, out, err = self.cp.ctl(*args, **kw)
        self.assertEqual(rc, 0, "bgwctl %s: exit %d\nstdout:\n%s\nstderr:\n%s" % (" ".join(args), rc, out, err))
        return out

    def ctl_fail(self, rc_expected, *args, **kw):
        rc, out, err = self.cp.ctl(*args, **kw)
        self.assertEqual(rc, rc_expected, "bgwctl %s: exit %d\nstdout:\n%s\nstderr:\n%s"
                         % (" ".join(args), rc, out, err))
        self.assertEqual(out, "", "nothing on stdout on failure")
        self.assertTrue(err.startswith("bgwctl: "), err)
        return err

    def apply_doc(self, doc):
        path = write_temp(self, "doc.json", json.dumps(doc))
        return self.ctl_ok("apply", "-f", path)

    def api_list(self, kind):
        st, body = self.cp.request("GET", "/v1/" + kind)
        self.assertEqual(st, 200, body)
        return body


class ApplyGetTest(CtlTestCase):

    def test_apply_json_file(self):
        out = self.apply_doc(CONTRACT_DOC)
        lines = out.splitlines()
        for kind in KINDS:
            name = CONTRACT_DOC[kind][0]["name"]
            self.assertIn("%s/%s created" % (kind, name), lines, out)
        version = self.cp.request("GET", "/v1/config")[1]["version"]
        self.assertIn("config version %s" % version, lines)
        for kind in KINDS:
            items = self.api_list(kind)["items"]
            self.assertEqual(len(items), 1)
            stored = without_revision(items[0])
            for (k, v) in CONTRACT_DOC[kind][0].items():
                self.assertEqual(stored.get(k), v, "%s.%s" % (kind, k))
        # applying the same document again changes nothing
        out = self.apply_doc(CONTRACT_DOC)
        self.assertIn("routes/orders-api unchanged", out.splitlines())

    def test_apply_yaml_file_is_converted_faithfully(self):
        path = write_temp(self, "doc.yaml", YAML_DOC)
        out = self.ctl_ok("apply", "-f", path)
        self.assertIn("services/007 created", out.splitlines())
        for kind in ("services", "routes", "rate_limits"):
            got = [without_revision(o) for o in self.api_list(kind)["items"]]
            want = YAML_EXPECTED[kind]
            self.assertEqual(len(got), len(want), kind)
            for (g, w) in zip(got, want):
                for (k, v) in w.items():
                    self.assertEqual(g.get(k), v, "%s %s.%s" % (kind, w["name"], k))

    def test_apply_from_stdin_json_and_yaml(self):
        doc = {"services": [{"name": "a", "endpoints": ["127.0.0.1:9201"]}]}
        out = self.ctl_ok("apply", "-f", "-", stdin=json.dumps(doc))
        self.assertIn("services/a created", out)
        out = self.ctl_ok("apply", "-f", "-", stdin="services:\n- name: b\n  endpoints: [127.0.0.1:9202]\n")
        self.assertIn("services/b created", out)
        names = [o["name"] for o in self.api_list("services")["items"]]
        self.assertEqual(sorted(names), ["a", "b"])

    def test_get_formats_agree_with_the_api(self):
        self.apply_doc(CONTRACT_DOC)
        for kind in KINDS:
            api = self.api_list(kind)
            as_json = json.loads(self.ctl_ok("get", kind, "-o", "json"))
            self.assertEqual(as_json, api, kind)
            as_yaml = ctl_yaml.loads(self.ctl_ok("get", kind, "-o", "yaml"))
            self.assertEqual(as_yaml, api, kind)
            name = api["items"][0]["name"]
            st, one = self.cp.request("GET", "/v1/%s/%s" % (kind, name))
            self.assertEqual(st, 200)
            self.assertEqual(json.loads(self.ctl_ok("get", kind, name, "-o", "json")), one)
            self.assertEqual(ctl_yaml.loads(self.ctl_ok("get", kind, name, "-o", "yaml")), one)
            self.assertEqual(json.loads(self.ctl_ok("get", kind, name, "--output=json")), one)

    def test_get_tables(self):
        self.apply_doc(CONTRACT_DOC)
        rev = self.api_list("routes")["items"][0]["revision"]
        cols, rows = parse_table(self.ctl_ok("get", "routes"))
        self.assertEqual(cols, ["NAME", "MATCH", "SERVICE", "REVISION"])
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["NAME"], "orders-api")
        self.assertEqual(rows[0]["SERVICE"], "orders")
        self.assertEqual(rows[0]["REVISION"], str(rev))
        self.assertIn("/api/orders", rows[0]["MATCH"])
        self.assertIn("GET,POST", rows[0]["MATCH"])

        cols, rows = parse_table(self.ctl_ok("get", "services"))
        self.assertEqual(cols, ["NAME", "ENDPOINTS", "LB", "REVISION"])
        self.assertEqual(rows[0]["NAME"], "orders")
        self.assertEqual(rows[0]["ENDPOINTS"], "127.0.0.1:9001,127.0.0.1:9002")
        self.assertEqual(rows[0]["LB"], "round_robin")

        cols, rows = parse_table(self.ctl_ok("get", "rate_limits"))
        self.assertEqual(cols, ["NAME", "RATE", "BURST", "KEY", "SCOPE", "REVISION"])
        self.assertEqual([rows[0][c] for c in cols[:5]], ["per-client", "100/second", "50", "client_ip", "local"])

        cols, rows = parse_table(self.ctl_ok("get", "auth_policies"))
        self.assertEqual(cols, ["NAME", "ISSUER", "ALGORITHMS", "JWKS", "REVISION"])
        self.assertEqual(rows[0]["ISSUER"], "https://auth.example.com")
        self.assertEqual(rows[0]["ALGORITHMS"], "RS256")

        # one object: the same columns, one row
        cols, rows = parse_table(self.ctl_ok("get", "route", "orders-api"))
        self.assertEqual(cols, ["NAME", "MATCH", "SERVICE", "REVISION"])
        self.assertEqual([r["NAME"] for r in rows], ["orders-api"])

        # an empty kind: the header alone
        self.ctl_ok("delete", "routes", "orders-api")
        cols, rows = parse_table(self.ctl_ok("get", "routes"))
        self.assertEqual((cols, rows), (["NAME", "MATCH", "SERVICE", "REVISION"], []))

    def test_kind_spellings(self):
        self.apply_doc(CONTRACT_DOC)
        want = self.ctl_ok("get", "rate_limits", "-o", "json")
        for spelling in ("rate_limit", "rate-limits", "rate-limit", "RATE_LIMITS"):
            self.assertEqual(self.ctl_ok("get", spelling, "-o", "json"), want, spelling)
        for (spelling, kind) in (("service", "services"), ("route", "routes"), ("auth-policy", "auth_policies"),
                                 ("auth_policies", "auth_policies")):
            self.assertEqual(json.loads(self.ctl_ok("get", spelling, "-o", "json")), self.api_list(kind))

    def test_flags_after_the_command(self):
        self.apply_doc(CONTRACT_DOC)
        # --server given after the command and -o before the kind
        rc, out, err = run_ctl(["get", "-o", "json", "routes", "--server", self.cp.url])
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), self.api_list("routes"))


class DeleteTest(CtlTestCase):

    def test_delete(self):
        self.apply_doc(CONTRACT_DOC)
        out = self.ctl_ok("delete", "route", "orders-api")
        self.assertEqual(out, "routes/orders-api deleted\n")
        self.assertEqual(self.cp.request("GET", "/v1/routes/orders-api")[0], 404)
        err = self.ctl_fail(1, "get", "routes", "orders-api")
        self.assertIn("(not_found)", err)
        err = self.ctl_fail(1, "delete", "routes", "orders-api")
        self.assertIn("(not_found)", err)
        # now unreferenced, the others go too
        for (kind, name) in (("services", "orders"), ("rate-limits", "per-client"), ("auth-policy", "users-jwt")):
            self.ctl_ok("delete", kind, name)
        for kind in KINDS:
            self.assertEqual(self.api_list(kind)["items"], [], kind)


class ErrorTest(CtlTestCase):

    def test_schema_error_names_the_field(self):
        doc = {"services": [{"name": "s", "endpoints": ["127.0.0.1:9301"]}],
               "routes": [{"name": "r", "match": {}, "service": "s"}]}
        path = write_temp(self, "bad.json", json.dumps(doc))
        err = self.ctl_fail(1, "apply", "-f", path)
        self.assertRegex(err.splitlines()[0], r"^bgwctl: routes\[0\]\.match: .+ \(invalid_argument\)$")
        # nothing was applied
        self.assertEqual(self.api_list("services")["items"], [])

    def test_unknown_reference(self):
        doc = {"routes": [{"name": "r", "match": {"path_prefix": "/"}, "service": "missing"}]}
        err = self.ctl_fail(1, "apply", "-f", "-", stdin=json.dumps(doc))
        self.assertRegex(err, r"^bgwctl: routes\[0\]\.service: .*missing.* \(invalid_argument\)\n")

    def test_not_found(self):
        err = self.ctl_fail(1, "get", "services", "nope")
        self.assertRegex(err, r"^bgwctl: .*nope.* \(not_found\)\n$")
        err = self.ctl_fail(1, "endpoints", "nope")
        self.assertIn("(not_found)", err)

    def test_conflict_when_still_referenced(self):
        self.apply_doc(CONTRACT_DOC)
        err = self.ctl_fail(1, "delete", "services", "orders")
        self.assertRegex(err, r"^bgwctl: .*orders-api.* \(conflict\)\n$")
        self.assertEqual(len(self.api_list("services")["items"]), 1)

    def test_bad_files(self):
        # YAML syntax error: the file and the line
        path = write_temp(self, "broken.yaml", "services:\n  - name: [a,\n")
        err = self.ctl_fail(1, "apply", "-f", path)
        self.assertRegex(err, r"^bgwctl: .*broken\.yaml: line \d+, column \d+: ")
        # JSON syntax error
        path = write_temp(self, "broken.json", '{"services": [}')
        err = self.ctl_fail(1, "apply", "-f", path)
        self.assertRegex(err, r"^bgwctl: .*broken\.json: line 1, column \d+: ")
        # missing file
        err = self.ctl_fail(1, "apply", "-f", "/nonexistent/doc.yaml")
        self.assertIn("/nonexistent/doc.yaml: cannot read: No such file or directory", err)
        # a document that is not a mapping
        err = self.ctl_fail(1, "apply", "-f", "-", stdin="- a\n- b\n")
        self.assertIn("must be a mapping", err)
        # an empty document
        err = self.ctl_fail(1, "apply", "-f", "-", stdin="# nothing\n")
        self.assertIn("empty", err)
        # duplicate keys are refused in both syntaxes
        self.ctl_fail(1, "apply", "-f", "-", stdin="services: []\nservices: []\n")
        self.ctl_fail(1, "apply", "-f", "-", stdin='{"services": [], "services": []}')
        for kind in KINDS:
            self.assertEqual(self.api_list(kind)["items"], [], kind)

    def test_unreachable_server(self):
        port = free_port()
        rc, out, err = run_ctl(["--server", "http://127.0.0.1:%d" % port, "get", "routes"])
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("cannot connect to http://127.0.0.1:%d" % port, err)


class UsageTest(unittest.TestCase):
    """Usage errors: exit 2, usage on stderr, nothing on stdout, and no request sent."""

    def setUp(self):
        self.fake = FakeAdmin().start()
        self.addCleanup(self.fake.stop)

    def assertUsage(self, *args):
        rc, out, err = run_ctl(["--server", self.fake.url] + list(args))
        self.assertEqual(rc, 2, "bgwctl %s: exit %d, stderr %r" % (" ".join(args), rc, err))
        self.assertEqual(out, "")
        self.assertIn("usage: bgwctl", err)
        self.assertTrue(err.startswith("bgwctl: "), err)
        return err

    def test_usage_errors(self):
        self.assertIn("missing COMMAND", self.assertUsage())
        self.assertIn("unknown command \"frobnicate\"", self.assertUsage("frobnicate"))
        self.assertIn("--bogus", self.assertUsage("--bogus", "status"))
        self.assertIn("--bogus", self.assertUsage("get", "routes", "--bogus"))
        self.assertUsage("get")
        self.assertIn("unknown kind \"widgets\"", self.assertUsage("get", "widgets"))
        self.assertUsage("get", "routes", "a", "b")
        self.assertIn("unknown output format", self.assertUsage("get", "routes", "-o", "xml"))
        self.assertUsage("get", "routes", "-o")
        self.assertUsage("delete", "routes")
        self.assertUsage("delete", "widgets", "x")
        self.assertUsage("delete", "routes", "x", "-o", "json")
        self.assertUsage("apply")
        self.assertUsage("apply", "-f")
        self.assertUsage("apply", "-f", "x.yaml", "extra")
        self.assertUsage("get", "routes", "-f", "x.yaml")
        self.assertUsage("endpoints")
        self.assertUsage("status", "extra")
        self.assertUsage("--timeout", "soon", "status")
        self.assertUsage("--timeout", "0", "status")
        self.assertEqual(self.fake.requests, [])

    def test_help_and_version(self):
        for args in (["--help"], ["-h"], ["get", "--help"]):
            rc, out, err = run_ctl(args)
            self.assertEqual(rc, 0, args)
            self.assertIn("usage: bgwctl", out)
            self.assertEqual(err, "")
        rc, out, err = run_ctl(["--version"])
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^bgwctl \d+\.\d+\.\d+\n$")


class TokenTest(CtlTestCase):
    token = "s3cret-admin-token"

    def test_token(self):
        # no token: 401 from the server, with a hint
        err = self.ctl_fail(1, "get", "routes", token=False)
        self.assertIn("(unauthenticated)", err)
        self.assertIn("--token-file", err)
        # the token file (with its final newline and surrounding blanks)
        padded = write_temp(self, "token", "  \n%s \n\n" % self.token)
        rc, out, err = self.cp.ctl("--token-file", padded, "get", "routes", "-o", "json", token=False)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["items"], [])
        # from the environment
        rc, out, err = self.cp.ctl("get", "routes", env={"BGW_TOKEN_FILE": padded}, token=False)
        self.assertEqual(rc, 0, err)
        # a wrong token
        wrong = write_temp(self, "wrong", "not-the-token\n")
        rc, out, err = self.cp.ctl("--token-file", wrong, "get", "routes", token=False)
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("(unauthenticated)", err)
        # an unreadable or empty token file is an error before any request
        rc, out, err = self.cp.ctl("--token-file", "/nonexistent/token", "get", "routes", token=False)
        self.assertEqual(rc, 1)
        self.assertIn("/nonexistent/token", err)
        empty = write_temp(self, "empty", "\n")
        rc, out, err = self.cp.ctl("--token-file", empty, "status", token=False)
        self.assertEqual(rc, 1)
        self.assertIn("empty", err)
        # apply and delete with the token
        self.ctl_ok("apply", "-f", "-", stdin=json.dumps(CONTRACT_DOC))
        self.ctl_ok("delete", "routes", "orders-api")


class EnvTest(CtlTestCase):

    def test_bgw_server_env(self):
        self.apply_doc(CONTRACT_DOC)
        rc, out, err = run_ctl(["get", "routes", "-o", "json"], env={"BGW_SERVER": self.cp.url})
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), self.api_list("routes"))
        # host:port without a scheme
        rc, out, err = run_ctl(["get", "routes", "-o", "json"], env={"BGW_SERVER": "127.0.0.1:%d" % self.cp.admin_port})
        self.assertEqual(rc, 0, err)
        # --server wins over the environment
        rc, out, err = run_ctl(["--server", self.cp.url, "get", "routes"],
                               env={"BGW_SERVER": "http://127.0.0.1:%d" % free_port()})
        self.assertEqual(rc, 0, err)
        # BGW_TIMEOUT is read too (a bad value is a usage error)
        rc, out, err = run_ctl(["status"], env={"BGW_SERVER": self.cp.url, "BGW_TIMEOUT": "x"})
        self.assertEqual(rc, 2, err)
        # BGW_OUTPUT and BGW_FILENAME: the command's flags, for the commands that take them
        rc, out, err = run_ctl(["get", "routes"], env={"BGW_SERVER": self.cp.url, "BGW_OUTPUT": "json"})
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), self.api_list("routes"))
        rc, out, err = run_ctl(["get", "routes", "-o", "yaml"], env={"BGW_SERVER": self.cp.url, "BGW_OUTPUT": "json"})
        self.assertEqual(ctl_yaml.loads(out), self.api_list("routes"))
        rc, out, err = run_ctl(["status"], env={"BGW_SERVER": self.cp.url, "BGW_OUTPUT": "xml"})
        self.assertEqual(rc, 2, err)
        path = write_temp(self, "doc.yaml", "services:\n- name: from-env\n  endpoints: [127.0.0.1:9401]\n")
        rc, out, err = run_ctl(["apply"], env={"BGW_SERVER": self.cp.url, "BGW_FILENAME": path})
        self.assertEqual((rc, out.splitlines()[0]), (0, "services/from-env created"), err)
        rc, out, err = run_ctl(["delete", "service", "from-env"],
                               env={"BGW_SERVER": self.cp.url, "BGW_FILENAME": path, "BGW_OUTPUT": "json"})
        self.assertEqual(rc, 0, err)


class StatusEndpointsVersionTest(CtlTestCase):

    def test_status_without_proxies(self):
        cols, rows = parse_table(self.ctl_ok("status"))
        self.assertEqual(cols, ["NODE", "ADDRESS", "STATUS", "ACKED VERSION", "LAST CHANGE", "LAST ERROR"])
        self.assertEqual(rows, [])
        st, api = self.cp.request("GET", "/v1/dataplanes")
        self.assertEqual(json.loads(self.ctl_ok("status", "-o", "json")), api)
        self.assertEqual(ctl_yaml.loads(self.ctl_ok("status", "-o", "yaml")), api)

    def test_status_with_proxies(self):
        """Two stand-in proxies on the real config stream: one ACKs (SYNCED), one NACKs (NACKED, its error
        shown); then the first goes away (DISCONNECTED)."""
        self.apply_doc(CONTRACT_DOC)
        version = self.cp.request("GET", "/v1/config")[1]["version"]
        a = StreamClient(self.cp.xds_port, "proxy-a")
        self.addCleanup(a.close)
        a.send()
        a.answer_all()
        b = StreamClient(self.cp.xds_port, "proxy-b")
        self.addCleanup(b.close)
        b.send()
        b.answer_all(error_detail="routes[0]: rejected\nby the test")

        def statuses():
            st, body = self.cp.request("GET", "/v1/dataplanes")
            return {i["node_id"]: i["status"] for i in body["items"]}
        wait_until(lambda: statuses() == {"proxy-a": "SYNCED", "proxy-b": "NACKED"}, timeout=10,
                   message="proxy-a SYNCED and proxy-b NACKED")

        cols, rows = parse_table(self.ctl_ok("status"))
        by_node = {r["NODE"]: r for r in rows}
        self.assertEqual(sorted(by_node), ["proxy-a", "proxy-b"])
        self.assertEqual(by_node["proxy-a"]["STATUS"], "SYNCED")
        self.assertEqual(by_node["proxy-a"]["ACKED VERSION"], version)
        self.assertRegex(by_node["proxy-a"]["LAST CHANGE"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertRegex(by_node["proxy-a"]["ADDRESS"], r"^127\.0\.0\.1:\d+$")
        self.assertEqual(by_node["proxy-a"]["LAST ERROR"], "-")
        self.assertEqual(by_node["proxy-b"]["STATUS"], "NACKED")
        self.assertEqual(by_node["proxy-b"]["LAST ERROR"], "routes[0]: rejected by the test")
        st, api = self.cp.request("GET", "/v1/dataplanes")
        self.assertEqual(json.loads(self.ctl_ok("status", "-o", "json")), api)
        self.assertEqual(ctl_yaml.loads(self.ctl_ok("status", "-o", "yaml")), api)

        a.close()
        wait_until(lambda: statuses().get("proxy-a") == "DISCONNECTED", timeout=10, message="proxy-a DISCONNECTED")
        cols, rows = parse_table(self.ctl_ok("status"))
        self.assertEqual({r["NODE"]: r["STATUS"] for r in rows}, {"proxy-a": "DISCONNECTED", "proxy-b": "NACKED"})

    def test_endpoints(self):
        self.apply_doc(CONTRACT_DOC)
        cols, rows = parse_table(self.ctl_ok("endpoints", "orders"))
        self.assertEqual(cols, ["ADDRESS", "SOURCE", "HEALTHY", "LAST CHECK"])
        self.assertEqual([r["ADDRESS"] for r in rows], ["127.0.0.1:9001", "127.0.0.1:9002"])
        self.assertEqual({r["HEALTHY"] for r in rows}, {"yes"})
        st, api = self.cp.request("GET", "/v1/services/orders/endpoints")
        self.assertEqual(st, 200)
        for (r, item) in zip(rows, api["items"]):
            self.assertEqual(r["SOURCE"], item.get("source", "-"))
        self.assertEqual(json.loads(self.ctl_ok("endpoints", "orders", "-o", "json")), api)

    def test_version(self):
        self.apply_doc(CONTRACT_DOC)
        server_version = self.cp.request("GET", "/v1/config")[1]["version"]
        out = self.ctl_ok("version")
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^bgwctl \d+\.\d+\.\d+$")
        self.assertEqual(lines[1], "server config version %s" % server_version)
        v = json.loads(self.ctl_ok("version", "-o", "json"))
        self.assertEqual(v["config_version"], server_version)
        # an unreachable server: bgwctl's version still, exit 0, the reason on stderr
        rc, out, err = run_ctl(["--server", "http://127.0.0.1:%d" % free_port(), "version"])
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^bgwctl \d+\.\d+\.\d+\n$")
        self.assertIn("cannot connect", err)


class FakeServerTest(unittest.TestCase):
    """What the real server cannot be made to answer on demand."""

    def fake(self, routes):
        f = FakeAdmin(routes).start()
        self.addCleanup(f.stop)
        return f

    def test_status_rows(self):
        items = [
            {"node_id": "proxy-a", "address": "10.0.0.1:40000", "connected_since": "2026-01-02T03:04:05Z",
             "acked_version": "7", "status": "SYNCED", "last_error": ""},
            {"node_id": "proxy-b", "address": "10.0.0.2:40001", "connected_since": 1767322800,
             "acked_version": "6", "status": "NACKED", "last_error": "routes[0]: bad\nthing"},
        ]
        f = self.fake({"GET /v1/dataplanes": (200, {"items": items})})
        rc, out, err = run_ctl(["--server", f.url, "status"])
        self.assertEqual(rc, 0, err)
        cols, rows = parse_table(out)
        self.assertEqual([r["NODE"] for r in rows], ["proxy-a", "proxy-b"])
        self.assertEqual(rows[0]["STATUS"], "SYNCED")
        self.assertEqual(rows[0]["ACKED VERSION"], "7")
        self.assertEqual(rows[0]["LAST CHANGE"], "2026-01-02T03:04:05Z")
        self.assertEqual(rows[0]["LAST ERROR"], "-")
        self.assertEqual(rows[1]["LAST CHANGE"], "2026-01-02T03:00:00Z")
        self.assertEqual(rows[1]["LAST ERROR"], "routes[0]: bad thing")
        self.assertEqual(len(out.splitlines()), 3)

    def test_yaml_output_of_any_json(self):
        tricky = {"items": [{
            "name": "x", "empty": "", "num_string": "123", "bool_string": "true", "null_string": "null",
            "float_string": "1.5", "hex_string": "0x1F", "colon": "a: b", "hash": "a #b", "dash": "- a",
            "quote": "it's \"quoted\"", "newline": "two\nlines", "tab": "a\tb", "spaces": "  pad  ",
            "unicode": "caf\u00e9 \u2603", "star": "*alias", "amp": "&anchor", "bang": "!tag", "pct": "%x",
            "long": "word " * 60, "int": -42, "big": 9007199254740993, "float": 0.25, "t": True, "f": False,
            "n": None, "list": [], "obj": {}, "nested": [[1, [2, {}]], {"a": [{"b": None}]}],
            "on": "yes", "y": "n", "tilde": "~", "octal": "0o17", "key with spaces": 1, "123": "numeric key",
        }], "version": "9"}
        f = self.fake({"GET /v1/routes": (200, tricky)})
        rc, out, err = run_ctl(["--server", f.url, "get", "routes", "-o", "yaml"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(ctl_yaml.loads(out), tricky)
        rc, out, err = run_ctl(["--server", f.url, "get", "routes", "-o", "json"])
        self.assertEqual(json.loads(out), tricky)
        # and bgwctl reads its own YAML back to the same JSON (what apply sends)
        doc = {"routes": tricky["items"], "version": "9"}
        f.routes["GET /v1/routes/doc"] = (200, doc)
        rc, yaml_text, err = run_ctl(["--server", f.url, "get", "routes", "doc", "-o", "yaml"])
        self.assertEqual(rc, 0, err)
        f2 = self.fake({"POST /v1/apply": (200, {"version": "1", "items": []})})
        rc, out, err = run_ctl(["--server", f2.url, "apply", "-f", "-"], stdin=yaml_text)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(f2.requests[-1]["body"]), doc)

    def test_apply_sends_the_yaml_as_json(self):
        f = self.fake({"POST /v1/apply": (200, {"version": "3", "items": [
            {"kind": "services", "name": "007", "result": "created", "revision": "3"}]})})
        path = write_temp(self, "doc.yml", YAML_DOC)
        rc, out, err = run_ctl(["--server", f.url, "apply", "-f", path])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "services/007 created\nconfig version 3\n")
        req = f.requests[-1]
        self.assertEqual(req["path"], "/v1/apply")
        self.assertTrue(req["headers"]["content-type"].startswith("application/json"))
        self.assertEqual(json.loads(req["body"]), YAML_EXPECTED)
        self.assertNotIn("authorization", req["headers"])

    def test_yaml_scalars(self):
        f = self.fake({"POST /v1/apply": (200, {"version": "1"})})
        cases = [
            ("a: 1", {"a": 1}), ("a: '1'", {"a": "1"}), ('a: "1"', {"a": "1"}), ("a: !!str 1", {"a": "1"}),
            ("a: -7", {"a": -7}), ("a: 0x10", {"a": 16}), ("a: 0o10", {"a": 8}), ("a: 010", {"a": 10}),
            ("a: 1.5", {"a": 1.5}), ("a: true", {"a": True}), ("a: False", {"a": False}),
            ("a: yes", {"a": "yes"}), ("a: on", {"a": "on"}), ("on: 1", {"on": 1}),
            ("a: null", {"a": None}), ("a: ~", {"a": None}), ("a:", {"a": None}), ("a: 'null'", {"a": "null"}),
            ("a: ''", {"a": ""}), ("a: x y", {"a": "x y"}), ('a: "tab\\there"', {"a": "tab\there"}),
            ("a: |\n  l1\n  l2\n", {"a": "l1\nl2\n"}), ("a: >-\n  f1\n  f2\n", {"a": "f1 f2"}),
            ("a: &x [1, 2]\nb: *x", {"a": [1, 2], "b": [1, 2]}), ("a: {}", {"a": {}}), ("a: []", {"a": []}),
            ("a: caf\u00e9", {"a": "caf\u00e9"}), ("1: one", {"1": "one"}),
            ("---\na: 1\n...\n", {"a": 1}),
        ]
        for (text, want) in cases:
            rc, out, err = run_ctl(["--server", f.url, "apply", "-f", "-"], stdin=text + "\n")
            self.assertEqual(rc, 0, "%r: %s" % (text, err))
            self.assertEqual(json.loads(f.requests[-1]["body"]), want, text)
        n = len(f.requests)
        for text in ("a: .inf", "a: 99999999999999999999", "<<: {a: 1}", "a: *nope", "[a]: 1", "a: 1\n---\nb: 2",
                     "a: !!int x", "a: !custom 1"):
            rc, out, err = run_ctl(["--server", f.url, "apply", "-f", "-"], stdin=text + "\n")
            self.assertEqual(rc, 1, "%r accepted: %s" % (text, out))
            self.assertRegex(err, r"^bgwctl: <stdin>: ")
        self.assertEqual(len(f.requests), n, "no request for a bad file")

    def test_answers_that_are_not_json(self):
        f = self.fake({"GET /v1/routes": (502, b"<html>Bad Gateway</html>\n"),
                       "GET /v1/services": (200, b"not json"),
                       "GET /v1/rate_limits": (500, {"error": {"code": "internal", "message": "disk full"}})})
        rc, out, err = run_ctl(["--server", f.url, "get", "routes"])
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("HTTP 502", err)
        rc, out, err = run_ctl(["--server", f.url, "get", "services"])
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("not JSON", err)
        rc, out, err = run_ctl(["--server", f.url, "get", "rate_limits"])
        self.assertEqual((rc, err), (1, "bgwctl: disk full (internal)\n"))

    def test_timeout(self):
        f = self.fake({"GET /v1/dataplanes": None})
        rc, out, err = run_ctl(["--server", f.url, "--timeout", "0.5", "status"])
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("no answer from %s" % f.url, err)

    def test_names_are_escaped(self):
        f = self.fake({})
        run_ctl(["--server", f.url, "get", "routes", "a/b c"])
        self.assertEqual(f.requests[-1]["path"], "/v1/routes/a%2Fb%20c")
        run_ctl(["--server", f.url + "/", "endpoints", "web"])
        self.assertEqual(f.requests[-1]["path"], "/v1/services/web/endpoints")


if __name__ == "__main__":
    unittest.main()
