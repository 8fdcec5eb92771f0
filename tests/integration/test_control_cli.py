"""bgw-control's command line: --help, --version, unknown flags, BGW_* environment variables, the admin
token file, the loopback-only rule without a token, Kubernetes flags and their errors, signals, and the
log format."""

import json
import os
import signal
import tempfile
import unittest

from control_harness import Control, ControlTestCase, run_control_cli, service
from harness import free_port, wait_until


class CliTest(ControlTestCase):
    def test_help_version_unknown(self):
        rc, out, _ = run_control_cli(["--help"])
        self.assertEqual(rc, 0)
        self.assertIn("--state-dir", out)
        self.assertIn("--admin-token-file", out)
        rc, out, _ = run_control_cli(["--version"])
        self.assertEqual(rc, 0)
        self.assertRegex(out.strip(), r"^bgw-control \d+\.\d+\.\d+$")
        rc, out, err = run_control_cli(["--bogus"])
        self.assertEqual(rc, 2)
        self.assertIn("usage", err)
        self.assertEqual(out, "")
        rc, _, err = run_control_cli(["extra-argument"])
        self.assertEqual(rc, 2)
        rc, _, err = run_control_cli(["--log-format", "xml"])
        self.assertEqual(rc, 2)

    def test_kubernetes_flags(self):
        rc, _, err = run_control_cli(["--state-configmap", "ns/name", "--admin-listen", "127.0.0.1:1"])
        self.assertEqual(rc, 1)
        self.assertIn("--state-configmap needs --kubeconfig or --in-cluster", err)
        with tempfile.TemporaryDirectory() as d:
            kc = os.path.join(d, "kubeconfig")
            with open(kc, "w") as f:        # a server nobody listens on
                f.write("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                        "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:1'}}]\n"
                        "users: [{name: u, user: {token: t}}]\n"
                        "contexts: [{name: c, context: {cluster: k, user: u}}]\n")
            rc, _, err = run_control_cli(["--kubeconfig", kc, "--state-configmap", "ns/Bad_Name"])
            self.assertEqual(rc, 1)
            self.assertIn("is not NAMESPACE/NAME", err)
            rc, _, err = run_control_cli(["--kubeconfig", kc, "--state-configmap", "ns/name",
                                          "--admin-listen", "127.0.0.1:0", "--xds-listen", "127.0.0.1:0"])
            self.assertEqual(rc, 1)
            self.assertIn("ConfigMap ns/name: the API server cannot be reached", err)
        rc, _, err = run_control_cli(["--kubeconfig", "/dev/null", "--admin-listen", "127.0.0.1:1"])
        self.assertEqual(rc, 1)
        self.assertIn("--kubeconfig /dev/null", err)
        rc, _, err = run_control_cli(["--kubeconfig", "/nonexistent/kubeconfig"])
        self.assertEqual(rc, 1)
        self.assertIn("/nonexistent/kubeconfig", err)
        rc, _, err = run_control_cli(["--in-cluster"], env={"KUBERNETES_SERVICE_HOST": ""})
        self.assertEqual(rc, 1)
        self.assertIn("KUBERNETES_SERVICE_HOST", err)
        rc, _, err = run_control_cli(["--in-cluster", "--kubeconfig", "/dev/null"])
        self.assertEqual(rc, 1)
        self.assertIn("mutually exclusive", err)
        rc, _, err = run_control_cli(["--watch-namespace", "shop"])
        self.assertEqual(rc, 1)
        self.assertIn("--watch-namespace needs", err)
        rc, _, err = run_control_cli(["--watch-namespace", "Not_A_Namespace"])
        self.assertEqual(rc, 2)
        self.assertIn("not a namespace name", err)

    def test_non_loopback_needs_token(self):
        with tempfile.TemporaryDirectory() as d:
            rc, _, err = run_control_cli(["--state-dir", d, "--admin-listen", "0.0.0.0:%d" % free_port(),
                                          "--xds-listen", "127.0.0.1:%d" % free_port()])
            self.assertEqual(rc, 1)
            self.assertIn("loopback", err)
            self.assertIn("--admin-token-file", err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertFalse(os.path.exists(os.path.join(d, "state.json")))
        # With a token it serves there (reached here through 127.0.0.1).
        c = self.make_control(token="tok", args=[], omit={"admin-listen"})
        c.extra_args = ["--admin-listen", "0.0.0.0:%d" % c.admin_port]
        self.addCleanup(self._stop_and_check, c)
        c.start()
        self.assertEqual(c.call("GET", "/v1/services").status, 200)
        self.assertEqual(c.call("GET", "/v1/services", token=None).status, 401)
        # Loopback without a token: no token needed.
        c2 = self.start_control()
        self.assertEqual(c2.call("GET", "/v1/services").status, 200)
        rc, _, err = run_control_cli(["--admin-listen", "localhost:9000"])
        self.assertEqual(rc, 1)

    def test_token_file(self):
        c = self.make_control(token="abc")
        with open(c.token_file, "w") as f:
            f.write("  abc \n\n")                       # surrounding whitespace and newlines ignored
        self.addCleanup(self._stop_and_check, c)
        c.start()
        self.assertEqual(c.call("GET", "/v1/config", token="abc").status, 200)
        self.assertEqual(c.call("GET", "/v1/config", token=" abc").status, 200)
        self.assertEqual(c.call("GET", "/v1/config", token="abc\t").status, 200)
        self.assertEqual(c.call("GET", "/v1/config", token="ab").status, 401)
        for content in ("", "\n", "   \n\t"):
            e = self.make_control(token="x")
            with open(e.token_file, "w") as f:
                f.write(content)
            e.spawn()
            self.assertEqual(e.wait_exit(10), 1, repr(content))
            self.assertIn("empty", e.stderr_text())
        e = self.make_control()
        e.extra_args = ["--admin-token-file", "/nonexistent/token"]
        e.spawn()
        self.assertEqual(e.wait_exit(10), 1)
        self.assertIn("/nonexistent/token", e.stderr_text())

    def test_environment_variables(self):
        c = self.make_control(token="envtok", omit={"state-dir", "admin-listen", "admin-token-file"})
        c.extra_env = {"BGW_STATE_DIR": c.state_dir, "BGW_ADMIN_LISTEN": "127.0.0.1:%d" % c.admin_port,
                       "BGW_ADMIN_TOKEN_FILE": c.token_file, "BGW_LOG_FORMAT": "json"}
        self.addCleanup(self._stop_and_check, c)
        c.start()
        self.assertEqual(c.call("GET", "/v1/services", token=None).status, 401)
        self.assertEqual(c.put("services", service("e")).status, 201)
        self.assertTrue(os.path.exists(os.path.join(c.state_dir, "state.json")))

    def test_address_problems(self):
        with tempfile.TemporaryDirectory() as d:
            for addr in ("127.0.0.1:x", "localhost:9000", "127.0.0.1"):
                rc, _, err = run_control_cli(["--state-dir", d, "--admin-listen", addr,
                                              "--xds-listen", "127.0.0.1:%d" % free_port()])
                self.assertEqual(rc, 1, addr)
                self.assertIn("--admin-listen", err)
        busy = self.start_control()
        c = self.make_control()
        c.admin_port = busy.admin_port                  # taken
        c.spawn()
        self.assertEqual(c.wait_exit(10), 1)
        self.assertIn("--admin-listen", c.stderr_text())
        # Port 0: any free port, reported in the log.
        c = self.make_control(omit={"admin-listen"}, args=["--admin-listen", "127.0.0.1:0"])
        self.addCleanup(self._stop_and_check, c)
        c.spawn()
        import re
        port = wait_until(lambda: re.search(r"admin API on 127\.0\.0\.1:0 \(port (\d+)\)", c.stderr_text()),
                          timeout=10, message="the admin port in the log")
        c.admin_port = int(port.group(1))
        self.assertEqual(c.call("GET", "/v1/config").status, 200)

    def test_signals_exit_0(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            c = self.make_control()
            c.start()
            c.put("services", service("a"))
            self.assertEqual(c.stop(sig), 0, c.stderr_tail())

    def test_log_format_json(self):
        c = self.make_control(args=["--log-format", "json"])
        c.start()
        c.put("services", service("a"))
        self.assertEqual(c.stop(), 0)
        lines = [l for l in c.stderr_text().splitlines() if l.strip()]
        self.assertTrue(lines)
        for line in lines:
            json.loads(line)

    def test_text_logs_one_line_per_event(self):
        c = self.make_control()
        c.start()
        c.put("services", service("a"))
        c.put("routes", {"name": "r", "match": {"path_prefix": "/"}, "service": "ghost"})
        self.assertEqual(c.stop(), 0)
        text = c.stderr_text()
        self.assertIn("PUT /v1/services/a: 201", text)
        self.assertIn("PUT /v1/routes/r: 400", text)
        self.assertIn("stopped", text)


if __name__ == "__main__":
    unittest.main()
