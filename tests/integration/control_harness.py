"""Harness for the bgw-control end-to-end tests (stdlib only).

- Control: bgw-control on free loopback ports with its own state directory, ready when /healthz says 200,
  stderr captured to a file; stopped with SIGTERM (exit code returned) or killed with SIGKILL.
- Control.call(): one admin API request (JSON in, JSON out) with the bearer token when there is one.
- raw_request(): exact bytes to the admin port, the whole answer back (for framing-level cases).
- run_control_cli(): run the binary to completion (flags, exit codes).
- ControlTestCase: starts Controls that are cleaned up after the test and must exit 0 on SIGTERM.

The binary is taken from $BGW_BIN_DIR (set by ctest), else ../../build/bin.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import LOCALHOST, bin_dir, clean_env, free_port, parse_prometheus, wait_until


def control_bin():
    return os.path.join(bin_dir(), "bgw-control")


def service(name, *addrs, **kw):
    d = {"name": name, "endpoints": list(addrs) or ["127.0.0.1:9001"]}
    d.update(kw)
    return d


def route(name, service_name, prefix="/", **kw):
    d = {"name": name, "match": {"path_prefix": prefix}, "service": service_name}
    d.update(kw)
    return d


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # lower-cased names
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<%d %r %r>" % (self.status, self.headers, self.body[:300])


class Control:
    """bgw-control with a state directory of its own (or the given one), on free loopback ports."""

    def __init__(self, state_dir=None, token=None, args=(), env=None, bootstrap=None, omit=()):
        self.tmp = tempfile.TemporaryDirectory(prefix="bgw-cp-it-")
        self.state_dir = state_dir or os.path.join(self.tmp.name, "state")
        self.token = token
        self.token_file = None
        if token is not None:
            self.token_file = os.path.join(self.tmp.name, "token")
            with open(self.token_file, "w") as f:
                f.write(token + "\n")
        self.bootstrap = None
        if bootstrap is not None:
            self.bootstrap = os.path.join(self.tmp.name, "bootstrap.json")
            with open(self.bootstrap, "w") as f:
                f.write(bootstrap if isinstance(bootstrap, str) else json.dumps(bootstrap))
        self.extra_args = list(args)
        self.extra_env = dict(env or {})
        self.omit = set(omit)
        self.admin_port = free_port()
        self.xds_port = free_port()
        self.stderr_path = os.path.join(self.tmp.name, "stderr.log")
        self.proc = None
        self.returncode = None
        self._stderr_file = None

    def command(self):
        flags = [("state-dir", self.state_dir), ("admin-listen", "127.0.0.1:%d" % self.admin_port),
                 ("xds-listen", "127.0.0.1:%d" % self.xds_port)]
        if self.token_file:
            flags.append(("admin-token-file", self.token_file))
        if self.bootstrap:
            flags.append(("bootstrap", self.bootstrap))
        cmd = [control_bin()]
        for (name, value) in flags:
            if name not in self.omit:
                cmd += ["--" + name, value]
        return cmd + self.extra_args

    def spawn(self):
        if not os.access(control_bin(), os.X_OK):
            raise AssertionError("bgw-control not found at %s (set BGW_BIN_DIR or build it)" % control_bin())
        self._stderr_file = open(self.stderr_path, "ab")
        self.returncode = None
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._stderr_file, env=clean_env(self.extra_env))
        return self

    def start(self, timeout=10.0):
        """Spawn and wait until /healthz answers 200."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                self._close_stderr()
                raise AssertionError("bgw-control exited with %d before it was ready; stderr:\n%s"
                                     % (rc, self.stderr_tail()))
            if self.status("/healthz") == 200:
                return self
            if time.monotonic() >= deadline:
                self.kill()
                raise AssertionError("bgw-control not ready within %.0fs; stderr:\n%s"
                                     % (timeout, self.stderr_tail()))
            time.sleep(0.02)

    def restart(self):
        self.stop()
        return self.start()

    def wait_exit(self, timeout=10.0):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._close_stderr()
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Send sig and wait; returns the exit code (AssertionError when it does not exit)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("bgw-control did not exit within %.0fs of signal %d; stderr:\n%s"
                                 % (timeout, sig, self.stderr_tail()))
        finally:
            self._close_stderr()
        return self.returncode

    def kill(self):
        """SIGKILL (no chance to clean up) and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.returncode = self.proc.wait()
        self._close_stderr()
        return self.returncode

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _close_stderr(self):
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stderr_tail(self, n=40):
        return "\n".join(self.stderr_text().splitlines()[-n:])

    def cleanup(self):
        self.kill()
        self.tmp.cleanup()

    # -- admin API

    def call(self, method, path, body=None, headers=None, token=True, content_type="application/json",
             timeout=10.0):
        """One request. body: a dict/list (sent as JSON), str/bytes (sent as is) or None. token: True for the
        configured token, a string for that token, None/False for no Authorization header."""
        h = {}
        if token is True and self.token is not None:
            h["Authorization"] = "Bearer " + self.token
        elif isinstance(token, str):
            h["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if isinstance(data, str):
                data = data.encode()
            if content_type is not None:
                h["Content-Type"] = content_type
        h.update(headers or {})
        c = http.client.HTTPConnection(LOCALHOST, self.admin_port, timeout=timeout)
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            return Reply(r.status, {k.lower(): v for (k, v) in r.getheaders()}, r.read())
        finally:
            c.close()

    def status(self, path):
        try:
            return self.call("GET", path, timeout=1.0).status
        except (OSError, http.client.HTTPException):
            return None

    def get_json(self, path):
        r = self.call("GET", path)
        if r.status != 200:
            raise AssertionError("GET %s: %r" % (path, r))
        return r.json()

    def config(self):
        return self.get_json("/v1/config")

    def put(self, kind, obj, **kw):
        return self.call("PUT", "/v1/%s/%s" % (kind, obj["name"]), obj, **kw)

    def metrics(self):
        r = self.call("GET", "/metrics", token=None)
        if r.status != 200:
            raise AssertionError("/metrics: %r" % r)
        return parse_prometheus(r.body.decode())


def _complete(out):
    """Whether out holds a whole response with a Content-Length body."""
    head, sep, body = out.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def raw_request(port, data, timeout=10.0, then=None):
    """Send data (bytes) to port, then the bytes of then (errors ignored: the server may have answered and
    closed), read one response (up to its Content-Length, or until the server closes); returns (status or
    None, answer bytes)."""
    s = socket.create_connection((LOCALHOST, port), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
        if then:
            try:
                s.sendall(then)
            except OSError:
                pass
        while not _complete(out):
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                break
            if not d:
                break
            out += d
    finally:
        s.close()
    status = None
    if out.startswith(b"HTTP/1."):
        status = int(out.split(b" ", 2)[1])
    return status, out


def run_control_cli(args, env=None, timeout=10.0):
    """Run bgw-control with args to completion: (exit code, stdout, stderr). Still running after timeout:
    AssertionError (after killing it)."""
    try:
        p = subprocess.run([control_bin()] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout, env=clean_env(env))
    except subprocess.TimeoutExpired as e:
        raise AssertionError("bgw-control %s still running after %.0fs; stderr:\n%s"
                             % (" ".join(args), timeout, (e.stderr or b"").decode("utf-8", "replace")))
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


class ControlTestCase(unittest.TestCase):
    """start_control() / start_control_cls(): a bgw-control that gets SIGTERM at the end and must exit 0."""

    @classmethod
    def start_control_cls(cls, **kw):
        c = Control(**kw)
        cls.addClassCleanup(c.cleanup)
        cls.addClassCleanup(cls._stop_cls, c)
        c.start()
        return c

    @classmethod
    def _stop_cls(cls, c):
        if c.alive():
            rc = c.stop()
            if rc != 0:
                raise AssertionError("bgw-control exited with %r on SIGTERM; stderr:\n%s" % (rc, c.stderr_tail()))

    def make_control(self, **kw):
        c = Control(**kw)
        self.addCleanup(c.cleanup)
        return c

    def start_control(self, **kw):
        c = self.make_control(**kw)
        self.addCleanup(self._stop_and_check, c)
        c.start()
        return c

    def _stop_and_check(self, c):
        if not c.alive():
            return
        rc = c.stop()
        self.assertEqual(rc, 0, "bgw-control exit code on SIGTERM; stderr:\n%s" % c.stderr_tail())

    def assertError(self, reply, status, code=None, field=None):
        """reply is status with {"error": {"code", "message"[, "field"]}} (application/json)."""
        self.assertEqual(reply.status, status, reply)
        self.assertTrue((reply.header("content-type") or "").startswith("application/json"), reply)
        err = reply.json().get("error")
        self.assertIsInstance(err, dict, reply)
        self.assertIsInstance(err.get("message"), str, reply)
        if code is not None:
            self.assertEqual(err.get("code"), code, reply)
        if field is not None:
            self.assertEqual(err.get("field"), field, reply)
        return err
