"""Admin listener (/healthz, /readyz, /config, /metrics), SIGHUP reload (valid and invalid), SIGTERM
drain, start-up errors, --help / --version / unknown flags, BGW_* environment variables."""

import json
import math
import os
import re
import signal
import socket
import tempfile
import threading
import time
import unittest

import harness
from harness import Conn, Proxy, free_port, metric, route, run_proxy_cli, samples, service, wait_until


def simple_config(up, version=None, prefix="/main", route_name="r-main"):
    cfg = {"services": [service("main", up.addr())],
           "routes": [route(route_name, "main", path_prefix=prefix)]}
    if version is not None:
        cfg["version"] = version
    return cfg


def proxy_version():
    rc, out, _ = run_proxy_cli(["--version"])
    m = re.match(r"^bgw-proxy (\S+)\n?$", out)
    return m.group(1) if (rc == 0 and m) else None


class AdminTest(harness.ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_cls("main")
        cls.proxy = cls.start_proxy_cls(simple_config(cls.up, version="v1"), workers=2)

    def scrape(self):
        return self.proxy.metrics()

    def wait_metric(self, name, expect, **labels):
        return wait_until(lambda: metric(self.scrape(), name, **labels) == expect, 5,
                          message="%s%r == %r" % (name, labels, expect))

    def test_healthz_readyz(self):
        self.assertEqual(self.proxy.admin("/healthz")[0], 200)
        self.assertEqual(self.proxy.admin("/readyz")[0], 200)

    def test_config_endpoint(self):
        st, headers, body = self.proxy.admin("/config")
        self.assertEqual(st, 200)
        self.assertTrue(headers.get("content-type", "").startswith("application/json"), headers)
        doc = json.loads(body)
        self.assertEqual(doc.get("version"), "v1")
        self.assertEqual([s["name"] for s in doc["services"]], ["main"])
        self.assertEqual([r["name"] for r in doc["routes"]], ["r-main"])
        self.assertEqual(doc["routes"][0]["match"]["path_prefix"], "/main")
        self.assertEqual(doc["routes"][0]["service"], "main")
        eps = doc["services"][0]["endpoints"]
        self.assertEqual(len(eps), 1)
        addr = eps[0]["address"] if isinstance(eps[0], dict) else eps[0]
        self.assertEqual(addr, self.up.addr())

    def test_metrics_content_type_and_types(self):
        self.proxy.request("GET", "/main/echo")
        st, headers, body = self.proxy.admin("/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(headers.get("content-type", "").startswith("text/plain"), headers)
        m = harness.parse_prometheus(body.decode())
        expect = {"bgw_http_requests_total": "counter", "bgw_http_request_duration_seconds": "histogram",
                  "bgw_http_requests_in_flight": "gauge", "bgw_downstream_connections_active": "gauge",
                  "bgw_config_version_info": "gauge", "bgw_build_info": "gauge"}
        for fam, typ in expect.items():
            self.assertEqual(m.types.get(fam), typ, "# TYPE of %s" % fam)

    def test_requests_total_incremented(self):
        labels = dict(route="r-main", service="main", method="GET", code="200")
        before = metric(self.scrape(), "bgw_http_requests_total", **labels) or 0
        before_post = metric(self.scrape(), "bgw_http_requests_total", **dict(labels, method="POST")) or 0
        before_418 = metric(self.scrape(), "bgw_http_requests_total", **dict(labels, code="418")) or 0
        for i in range(5):
            self.assertEqual(self.proxy.request("GET", "/main/echo?i=%d" % i).status, 200)
        for i in range(2):
            self.assertEqual(self.proxy.request("POST", "/main/sink", body=b"x").status, 200)
        self.assertEqual(self.proxy.request("GET", "/main/status/418").status, 418)
        self.wait_metric("bgw_http_requests_total", before + 5, **labels)
        self.wait_metric("bgw_http_requests_total", before_post + 2, **dict(labels, method="POST"))
        self.wait_metric("bgw_http_requests_total", before_418 + 1, **dict(labels, code="418"))

    def test_duration_histogram(self):
        def count():
            return metric(self.scrape(), "bgw_http_request_duration_seconds_count", route="r-main",
                          service="main") or 0
        before = count()
        for i in range(4):
            self.proxy.request("GET", "/main/delay?ms=20&i=%d" % i)
        wait_until(lambda: count() >= before + 4, 5, message="histogram _count += 4")
        m = self.scrape()
        buckets = samples(m, "bgw_http_request_duration_seconds_bucket", route="r-main", service="main")
        self.assertGreaterEqual(len(buckets), 2, "histogram buckets: %r" % buckets)
        les = sorted(buckets, key=lambda s: float(s.labels["le"]))
        self.assertTrue(math.isinf(float(les[-1].labels["le"])), "no +Inf bucket")
        values = [s.value for s in les]
        self.assertEqual(values, sorted(values), "buckets not cumulative: %r" % les)
        total = metric(m, "bgw_http_request_duration_seconds_count", route="r-main", service="main")
        self.assertEqual(les[-1].value, total)
        self.assertGreater(metric(m, "bgw_http_request_duration_seconds_sum", route="r-main", service="main"),
                           4 * 0.02 * 0.9)
        # a 20 ms request is not in a bucket below 20 ms
        below = [s.value for s in les if float(s.labels["le"]) < 0.02]
        if below:
            self.assertLessEqual(max(below), before, "20 ms requests counted under 20 ms: %r" % les)

    def test_in_flight(self):
        def gauge():
            return metric(self.scrape(), "bgw_http_requests_in_flight")
        wait_until(lambda: gauge() == 0, 5, message="bgw_http_requests_in_flight == 0 at the start")
        t = threading.Thread(target=lambda: self.proxy.request("GET", "/main/delay?ms=1500"))
        t.start()
        try:
            wait_until(lambda: gauge() == 1, 5, message="bgw_http_requests_in_flight == 1")
        finally:
            t.join()
        wait_until(lambda: gauge() == 0, 5, message="bgw_http_requests_in_flight back to 0")

    def test_downstream_connections_active(self):
        def gauge():
            return metric(self.scrape(), "bgw_downstream_connections_active")
        wait_until(lambda: gauge() == 0, 5, message="bgw_downstream_connections_active == 0 at the start")
        conns = [Conn(self.proxy.port) for _ in range(3)]
        try:
            for c in conns:
                self.assertEqual(c.request("GET", "/main/echo").status, 200)
            wait_until(lambda: gauge() == 3, 5, message="bgw_downstream_connections_active == 3")
        finally:
            for c in conns:
                c.close()
        wait_until(lambda: gauge() == 0, 5, message="bgw_downstream_connections_active back to 0")

    def test_config_version_info(self):
        m = self.scrape()
        self.assertEqual(metric(m, "bgw_config_version_info", version="v1"), 1)
        self.assertEqual([s.labels.get("version") for s in samples(m, "bgw_config_version_info") if s.value],
                         ["v1"])

    def test_build_info(self):
        v = proxy_version()
        self.assertIsNotNone(v, "bgw-proxy --version")
        self.assertEqual(metric(self.scrape(), "bgw_build_info", version=v), 1)

    def test_upstream_and_process_metrics(self):
        labels = dict(service="main", code="200")
        before = metric(self.scrape(), "bgw_upstream_requests_total", **labels) or 0
        for i in range(3):
            self.proxy.request("GET", "/main/echo")
        wait_until(lambda: (metric(self.scrape(), "bgw_upstream_requests_total", **labels) or 0) >= before + 3, 5,
                   message="bgw_upstream_requests_total{service=main,code=200} += 3")
        m = self.scrape()
        self.assertIsNotNone(metric(m, "bgw_upstream_request_duration_seconds_count", service="main"))
        rss = metric(m, "process_resident_memory_bytes")
        self.assertIsNotNone(rss, "process_resident_memory_bytes")
        self.assertAlmostEqual(rss / 1024, self.proxy.rss_kib(), delta=self.proxy.rss_kib() * 0.5)
        for fam in ("process_cpu_seconds_total", "process_open_fds", "process_start_time_seconds"):
            self.assertIsNotNone(metric(m, fam), fam)
        self.assertLess(abs(metric(m, "process_start_time_seconds") - time.time()), 3600)

    def test_admin_unknown_path_404(self):
        self.assertEqual(self.proxy.admin("/nope")[0], 404)


class ConfigVersionHashTest(harness.ProxyTestCase):
    def test_version_is_a_hash_without_version_key(self):
        up = self.start_upstream()
        p = self.start_proxy(simple_config(up), workers=1)
        v1 = p.admin_json("/config").get("version")
        self.assertIsInstance(v1, str)
        self.assertTrue(v1, "empty version")
        self.assertEqual(metric(p.metrics(), "bgw_config_version_info", version=v1), 1)
        p.reload(simple_config(up, prefix="/other"))

        def changed():
            v = p.admin_json("/config").get("version")
            return v if v != v1 else None
        v2 = wait_until(changed, 5, message="/config version to change after SIGHUP with a changed document")
        self.assertIsInstance(v2, str)
        self.assertEqual(metric(p.metrics(), "bgw_config_version_info", version=v2), 1)


class ReloadTest(harness.ProxyTestCase):
    def setUp(self):
        self.up = self.start_upstream("main")

    def served(self, p, target):
        return p.request("GET", target).status

    def test_sighup_valid_file(self):
        p = self.start_proxy(simple_config(self.up, version="v1", prefix="/old", route_name="r-old"), workers=2)
        self.assertEqual(self.served(p, "/old/x"), 200)
        self.assertEqual(self.served(p, "/new/x"), 404)
        accepted = metric(p.metrics(), "bgw_config_updates_total", result="accepted") or 0
        p.reload(simple_config(self.up, version="v2", prefix="/new", route_name="r-new"))
        wait_until(lambda: p.admin_json("/config").get("version") == "v2", 5, message="/config version v2")
        # every worker serves the new route and no longer the old one
        for _ in range(10):
            wait_until(lambda: self.served(p, "/new/x") == 200, 5, message="/new served")
        wait_until(lambda: self.served(p, "/old/x") == 404, 5, message="/old gone")
        m = p.metrics()
        self.assertEqual(metric(m, "bgw_config_version_info", version="v2"), 1)
        self.assertFalse(metric(m, "bgw_config_version_info", version="v1"), "v1 still reported as in use")
        self.assertEqual(metric(m, "bgw_config_updates_total", result="accepted"), accepted + 1)
        self.assertEqual([r["name"] for r in p.admin_json("/config")["routes"]], ["r-new"])

    def check_invalid_reload(self, text, field):
        p = self.start_proxy(simple_config(self.up, version="v1"), workers=2)
        rejected = metric(p.metrics(), "bgw_config_updates_total", result="rejected") or 0
        p.reload(text=text)

        def error_line():
            for line in p.stderr_text().splitlines():
                if p.config_path in line and (field is None or field in line):
                    return line
            return None
        line = wait_until(error_line, 5, message="an error line naming %s and %s in stderr" % (p.config_path, field))
        self.assertTrue(p.alive(), "proxy died on an invalid reload")
        self.assertEqual(p.admin_json("/config").get("version"), "v1")
        for _ in range(10):
            self.assertEqual(self.served(p, "/main/echo"), 200, "old route no longer served")
        self.assertEqual(self.served(p, "/elsewhere"), 404)
        wait_until(lambda: metric(p.metrics(), "bgw_config_updates_total", result="rejected") == rejected + 1, 5,
                   message='bgw_config_updates_total{result="rejected"} += 1')
        self.assertEqual(metric(p.metrics(), "bgw_config_version_info", version="v1"), 1)
        self.assertEqual(p.admin("/readyz")[0], 200)
        return p, line

    def test_sighup_invalid_field_keeps_old(self):
        bad = simple_config(self.up, version="v2", prefix="/elsewhere")
        bad["routes"][0]["match"]["path_prefix"] = "no-leading-slash"
        p, _ = self.check_invalid_reload(json.dumps(bad), "routes[0].match.path_prefix")
        # a later valid file is still taken
        p.reload(simple_config(self.up, version="v3", prefix="/elsewhere"))
        wait_until(lambda: p.admin_json("/config").get("version") == "v3", 5, message="v3 after a rejected v2")
        wait_until(lambda: self.served(p, "/elsewhere") == 200, 5, message="/elsewhere served")

    def test_sighup_invalid_reference_keeps_old(self):
        bad = simple_config(self.up, version="v2", prefix="/elsewhere")
        bad["routes"][0]["service"] = "missing"
        self.check_invalid_reload(json.dumps(bad), "routes[0].service")

    def test_sighup_invalid_json_keeps_old(self):
        self.check_invalid_reload('{"services": [', None)

    def test_log_format_json(self):
        p = Proxy(simple_config(self.up, version="v1"), workers=1, args=["--log-format", "json"])
        self.addCleanup(p.cleanup)
        self.addCleanup(self._stop_and_check, p)
        p.start()
        self.assertEqual(self.served(p, "/main/echo"), 200)
        p.reload(text="{")
        wait_until(lambda: p.config_path in p.stderr_text(), 5, message="an error logged for the invalid file")
        lines = [l for l in p.stderr_text().splitlines() if l.strip()]
        for l in lines:
            try:
                obj = json.loads(l)
            except ValueError:
                self.fail("--log-format json wrote a line that is not JSON: %r" % l)
            self.assertIsInstance(obj, dict, l)


class ShutdownTest(harness.ProxyTestCase):
    def setUp(self):
        self.up = self.start_upstream("main")

    def slow_request(self, p, ms):
        out = {}

        def go():
            try:
                with Conn(p.port, timeout=30) as c:
                    out["resp"] = c.request("GET", "/main/delay?ms=%d" % ms)
            except Exception as e:  # reported by the test
                out["error"] = e
        t = threading.Thread(target=go)
        t.start()
        self.up.wait_records(1, complete=True, pred=lambda r: "delay" in r["target"])
        return t, out

    def test_sigterm_completes_in_flight_request(self):
        p = self.start_proxy(simple_config(self.up), workers=2, check_exit=False)
        t, out = self.slow_request(p, 1500)
        p.signal(signal.SIGTERM)
        t.join(20)
        self.assertNotIn("error", out, "in-flight request failed during drain: %r" % out.get("error"))
        r = out["resp"]
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["target"], "/main/delay?ms=1500")
        rc = p.wait_exit(10)
        self.assertEqual(rc, 0, "exit code after SIGTERM; stderr:\n%s" % p.stderr_tail())

    def test_sigterm_stops_accepting(self):
        p = self.start_proxy(simple_config(self.up), workers=2, check_exit=False)
        t, out = self.slow_request(p, 3000)
        p.signal(signal.SIGTERM)

        def refused():
            try:
                with Conn(p.port, timeout=1) as c:
                    c.send(harness.build_request("GET", "/main/echo?after-sigterm"))
                    return c.read_response_or_close(1) is None
            except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError, socket.timeout):
                return True
        wait_until(refused, 2, interval=0.05, message="new connections refused after SIGTERM")
        self.assertTrue(t.is_alive(), "the in-flight request ended before the check")
        t.join(20)
        self.assertEqual(out.get("resp") and out["resp"].status, 200, out)
        self.assertEqual(p.wait_exit(10), 0)

    def test_drain_timeout_bounds_shutdown(self):
        p = self.start_proxy(simple_config(self.up), workers=2, check_exit=False, args=["--drain-timeout", "1"])
        t, out = self.slow_request(p, 10000)
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        rc = p.wait_exit(6)
        elapsed = time.monotonic() - t0
        self.assertIsNotNone(rc, "still running 6 s after SIGTERM with --drain-timeout 1")
        self.assertEqual(rc, 0)
        self.assertLess(elapsed, 4.0)
        t.join(20)

    def test_sigint_exits_0(self):
        p = self.start_proxy(simple_config(self.up), workers=1, check_exit=False)
        p.signal(signal.SIGINT)
        self.assertEqual(p.wait_exit(10), 0)


class CliTest(harness.ProxyTestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="bgw-it-cli-")
        self.addCleanup(self.tmp.cleanup)

    def write(self, name, text):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_with_config(self, path):
        return run_proxy_cli(["--config", path, "--listen", "127.0.0.1:%d" % free_port(),
                              "--admin", "127.0.0.1:%d" % free_port(), "--workers", "1"])

    def assertOneErrorLine(self, err, *needles):
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, "expected one line on stderr, got %r" % lines)
        for n in needles:
            self.assertIn(n, lines[0])

    def test_help(self):
        rc, out, err = run_proxy_cli(["--help"])
        self.assertEqual(rc, 0)
        text = out + err
        self.assertRegex(text.lower(), "usage")
        for flag in ("--config", "--listen", "--admin", "--workers", "--drain-timeout", "--header-timeout-ms",
                     "--idle-timeout-ms", "--max-connections", "--log-format"):
            self.assertIn(flag, text, "--help does not mention %s" % flag)

    def test_version(self):
        rc, out, _ = run_proxy_cli(["--version"])
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^bgw-proxy \d+\.\d+\.\d+\S*\n?$")

    def test_unknown_flag(self):
        rc, out, err = run_proxy_cli(["--no-such-flag"])
        self.assertEqual(rc, 2)
        self.assertRegex(err.lower(), "usage")

    def test_bad_config_names_file_and_field(self):
        base = {"services": [{"name": "s", "endpoints": ["127.0.0.1:1"]}],
                "routes": [{"name": "r", "match": {"path_prefix": "/"}, "service": "s"}]}
        cases = [
            ("routes[0].match.path_prefix", lambda d: d["routes"][0]["match"].update(path_prefix="nope")),
            ("routes[0].service", lambda d: d["routes"][0].update(service="missing")),
            ("services[0].bogus", lambda d: d["services"][0].update(bogus=1)),
            ("services[0].lb", lambda d: d["services"][0].update(lb="fastest")),
            ("routes[0].timeout_ms", lambda d: d["routes"][0].update(timeout_ms="soon")),
        ]
        for field, mutate in cases:
            with self.subTest(field=field):
                doc = json.loads(json.dumps(base))
                mutate(doc)
                path = self.write("bad.json", json.dumps(doc))
                rc, out, err = self.run_with_config(path)
                self.assertEqual(rc, 1, "exit code; stderr %r" % err)
                self.assertOneErrorLine(err, path, field)

    def test_bad_config_json_syntax(self):
        path = self.write("syntax.json", '{"services": [}\n')
        rc, _, err = self.run_with_config(path)
        self.assertEqual(rc, 1)
        self.assertOneErrorLine(err, path)

    def test_missing_config_file(self):
        path = os.path.join(self.tmp.name, "does-not-exist.json")
        rc, _, err = self.run_with_config(path)
        self.assertEqual(rc, 1)
        self.assertOneErrorLine(err, path)

    def test_env_listen(self):
        up = self.start_upstream("main")
        p = Proxy(simple_config(up), workers=1, omit=("listen",))
        p.extra_env["BGW_LISTEN"] = "127.0.0.1:%d" % p.port
        self.addCleanup(p.cleanup)
        self.addCleanup(self._stop_and_check, p)
        p.start()
        self.assertEqual(p.request("GET", "/main/echo").status, 200)

    def test_flag_wins_over_env(self):
        up = self.start_upstream("main")
        env_port = free_port()
        p = Proxy(simple_config(up), workers=1, env={"BGW_LISTEN": "127.0.0.1:%d" % env_port})
        self.addCleanup(p.cleanup)
        self.addCleanup(self._stop_and_check, p)
        p.start()
        self.assertEqual(p.request("GET", "/main/echo").status, 200)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", env_port), timeout=2).close()

    def test_env_for_every_flag(self):
        up = self.start_upstream("main")
        p = Proxy(simple_config(up), workers=1, omit=("config", "listen", "admin", "workers"))
        p.extra_env.update({"BGW_CONFIG": p.config_path, "BGW_LISTEN": "127.0.0.1:%d" % p.port,
                            "BGW_ADMIN": "127.0.0.1:%d" % p.admin_port, "BGW_WORKERS": "1",
                            "BGW_HEADER_TIMEOUT_MS": "400", "BGW_LOG_FORMAT": "json"})
        self.addCleanup(p.cleanup)
        self.addCleanup(self._stop_and_check, p)
        p.start()
        self.assertEqual(p.request("GET", "/main/echo").status, 200)
        with Conn(p.port) as c:
            c.send(b"GET /main/echo HTTP/1.1\r\n")
            t0 = time.monotonic()
            self.assertTrue(c.wait_closed(5), "BGW_HEADER_TIMEOUT_MS=400 not applied")
            self.assertLess(time.monotonic() - t0, 2.5, "BGW_HEADER_TIMEOUT_MS=400 not applied")


if __name__ == "__main__":
    unittest.main()
