"""bgw-control's state directory end to end: a change answered 2xx survives kill -9, restarts keep
versions and revisions, a corrupt state refuses to start (never an empty start), bootstrap at first start
only, and one bgw-control per state directory."""

import json
import os
import unittest

from control_harness import Control, ControlTestCase, route, run_control_cli, service


class DurabilityTest(ControlTestCase):
    def test_kill9_right_after_2xx(self):
        cp = self.start_control()
        for i in range(5):
            r = cp.put("services", service("s%d" % i, "127.0.0.1:%d" % (1000 + i)))
            self.assertEqual(r.status, 201, r)
            cp.kill()                                    # no chance to flush anything after the answer
            cp.start()
            got = cp.call("GET", "/v1/services/s%d" % i)
            self.assertEqual(got.status, 200, (i, got, cp.stderr_tail()))
            self.assertEqual(got.json()["revision"], r.json()["revision"])
        r = cp.call("DELETE", "/v1/services/s0")
        self.assertEqual(r.status, 204)
        cp.kill()
        cp.start()
        self.assertEqual(cp.call("GET", "/v1/services/s0").status, 404)
        r = cp.call("POST", "/v1/apply", {"services": [service("web")], "routes": [route("r", "web")]})
        self.assertEqual(r.status, 200, r)
        version = r.json()["version"]
        cp.kill()
        cp.start()
        cfg = cp.config()
        self.assertEqual(cfg["version"], version)
        self.assertEqual([x["name"] for x in cfg["routes"]], ["r"])

    def test_restart_keeps_everything(self):
        cp = self.start_control()
        cp.put("services", service("a"))
        cp.put("services", service("b"))
        cp.put("routes", route("r", "a"))
        cp.call("DELETE", "/v1/services/b")
        cfg = cp.config()
        lists = {k: cp.get_json("/v1/" + k) for k in ("services", "routes")}
        self.assertEqual(cp.stop(), 0)
        cp.start()
        self.assertEqual(cp.config(), cfg)
        for k, v in lists.items():
            self.assertEqual(cp.get_json("/v1/" + k), v)
        # The version keeps counting from where it was, never reused.
        r = cp.put("services", service("c"))
        self.assertEqual(int(r.json()["revision"]), int(cfg["version"]) + 1)

    def corrupt_start(self, text):
        c = self.make_control()
        os.makedirs(c.state_dir, exist_ok=True)
        with open(os.path.join(c.state_dir, "state.json"), "w") as f:
            f.write(text)
        c.spawn()
        rc = c.wait_exit(10)
        self.assertEqual(rc, 1, c.stderr_tail())
        return c.stderr_text()

    def test_corrupt_state_refuses_to_start(self):
        cp = self.start_control()
        cp.put("services", service("a"))
        cp.put("routes", route("r", "a"))
        self.assertEqual(cp.stop(), 0)
        path = os.path.join(cp.state_dir, "state.json")
        with open(path) as f:
            good = f.read()
        for text in (good[: len(good) // 2], "", "null", "[]", good.replace('"revision": 1', '"revision": "x"')):
            err = self.corrupt_start(text)
            self.assertIn("state.json", err)
            self.assertIn("corrupt", err)
        # Well-formed, but the document it holds is invalid: a route to a service that is not there.
        state = json.loads(good)
        state["services"] = []
        err = self.corrupt_start(json.dumps(state))
        self.assertIn("routes[0].service", err)
        # The original state still starts.
        with open(path, "w") as f:
            f.write(good)
        cp.start()
        self.assertEqual(cp.get_json("/v1/routes/r")["service"], "a")

    def test_one_daemon_per_state_dir(self):
        cp = self.start_control()
        other = self.make_control(state_dir=cp.state_dir)
        other.spawn()
        self.assertEqual(other.wait_exit(10), 1)
        self.assertIn("in use", other.stderr_text())
        self.assertTrue(cp.alive())

    def test_bootstrap_first_start_only(self):
        boot = {"services": [service("orders", "127.0.0.1:9001")], "routes": [route("api", "orders", "/api")]}
        cp = self.start_control(bootstrap=boot)
        cfg = cp.config()
        self.assertEqual([s["name"] for s in cfg["services"]], ["orders"])
        self.assertEqual([r["name"] for r in cfg["routes"]], ["api"])
        self.assertEqual(cfg["version"], "1")
        self.assertEqual(cp.call("DELETE", "/v1/routes/api").status, 204)
        cp.restart()
        self.assertEqual(cp.call("GET", "/v1/routes/api").status, 404)      # not loaded again
        self.assertEqual(cp.config()["version"], "2")

    def test_bad_bootstrap_exits_1_naming_file_and_field(self):
        bad = {"services": [service("orders")],
               "routes": [{"name": "r", "match": {"path_prefix": "api"}, "service": "orders"}]}
        c = self.make_control(bootstrap=bad)
        c.spawn()
        self.assertEqual(c.wait_exit(10), 1)
        lines = [l for l in c.stderr_text().splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(c.bootstrap, lines[0])
        self.assertIn("routes[0].match.path_prefix", lines[0])
        self.assertFalse(os.path.exists(os.path.join(c.state_dir, "state.json")))
        c = self.make_control(bootstrap="{\"services\": [")
        c.spawn()
        self.assertEqual(c.wait_exit(10), 1)
        self.assertIn(c.bootstrap, c.stderr_text())
        rc, _, err = run_control_cli(["--bootstrap", "/nonexistent/boot.json", "--state-dir",
                                      os.path.join(c.tmp.name, "s2"), "--admin-listen", "127.0.0.1:1"])
        self.assertEqual(rc, 1)
        self.assertIn("/nonexistent/boot.json", err)


if __name__ == "__main__":
    unittest.main()
