"""Harness for the bgwctl end-to-end tests (stdlib only).

- Control: the real bgw-control on free loopback ports with a temporary --state-dir (and optionally an
  admin token), ready when its admin /healthz answers 200; stopped with SIGTERM.
- FakeAdmin: a tiny admin API in a thread that answers canned (status, body) per "METHOD PATH" and records
  the requests it got, for what the real server cannot be made to produce on demand (proxy rows, odd
  answers, a server that never answers).
- run_ctl(): bgwctl to completion: (exit code, stdout, stderr).

Binaries come from $BGW_BIN_DIR (set by ctest), else ../../build/bin, like harness.py.
"""

import http.client
import http.server
import json
import os
import signal
import subprocess
import tempfile
import threading
import time

from harness import LOCALHOST, bin_dir, clean_env, free_port, wait_until


def ctl_bin():
    return os.path.join(bin_dir(), "bgwctl")


def control_bin():
    return os.path.join(bin_dir(), "bgw-control")


def ctl_env(extra=None):
    """clean_env() without proxy settings (bgwctl uses libcurl, which honours them), plus extra."""
    env = {k: v for (k, v) in clean_env().items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(extra or {})
    return env


def run_ctl(args, env=None, stdin=None, timeout=20.0):
    """Run bgwctl with args: (exit code, stdout text, stderr text). stdin: text fed to it (else /dev/null)."""
    try:
        p = subprocess.run([ctl_bin()] + list(args), input=stdin.encode() if stdin is not None else None,
                           stdin=subprocess.DEVNULL if stdin is None else None, capture_output=True,
                           timeout=timeout, env=ctl_env(env))
    except subprocess.TimeoutExpired as e:
        raise AssertionError("bgwctl %s still running after %.0fs; stderr:\n%s"
                             % (" ".join(args), timeout, (e.stderr or b"").decode("utf-8", "replace")))
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def parse_table(text):
    """bgwctl's table output: a list of dicts keyed by the header cells. Columns are located by the header
    (cells are left-aligned under their header), so a cell may contain single spaces."""
    lines = [l for l in text.split("\n") if l]
    if not lines:
        raise AssertionError("no table in %r" % text)
    header = lines[0]
    names, starts = [], []
    i = 0
    while i < len(header):
        j = header.find("   ", i)
        j = len(header) if j < 0 else j
        names.append(header[i:j])
        starts.append(i)
        i = j
        while i < len(header) and header[i] == " ":
            i += 1
    rows = []
    for line in lines[1:]:
        row = {}
        for k, name in enumerate(names):
            end = starts[k + 1] if k + 1 < len(starts) else len(line)
            row[name] = line[starts[k]:end].strip() if k + 1 < len(starts) else line[starts[k]:].strip()
        rows.append(row)
    return names, rows


class Control:
    """bgw-control with its own state directory on free loopback ports."""

    def __init__(self, token=None, args=()):
        self.tmp = tempfile.TemporaryDirectory(prefix="bgw-ctl-it-")
        self.state_dir = os.path.join(self.tmp.name, "state")
        self.stderr_path = os.path.join(self.tmp.name, "stderr.log")
        self.admin_port = free_port()
        self.xds_port = free_port()
        self.token = token
        self.token_path = None
        self.args = list(args)
        self.proc = None
        self._stderr = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.admin_port

    def start(self, timeout=10.0):
        if not os.access(control_bin(), os.X_OK):
            raise AssertionError("bgw-control not found at %s (set BGW_BIN_DIR or build it)" % control_bin())
        cmd = [control_bin(), "--state-dir", self.state_dir, "--admin-listen", "127.0.0.1:%d" % self.admin_port,
               "--xds-listen", "127.0.0.1:%d" % self.xds_port] + self.args
        if self.token is not None:
            self.token_path = os.path.join(self.tmp.name, "admin.token")
            with open(self.token_path, "w") as f:
                f.write(self.token + "\n")
            cmd += ["--admin-token-file", self.token_path]
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._stderr, env=clean_env())
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("bgw-control exited with %d before it was ready; stderr:\n%s"
                                     % (self.proc.returncode, self.stderr_text()))
            if self.status("/healthz") == 200:
                return self
            if time.monotonic() >= deadline:
                self.stop()
                raise AssertionError("bgw-control not ready within %.0fs; stderr:\n%s" % (timeout, self.stderr_text()))
            time.sleep(0.02)

    def status(self, path):
        try:
            return self.request("GET", path, timeout=1.0)[0]
        except (OSError, http.client.HTTPException):
            return None

    def request(self, method, path, body=None, timeout=5.0):
        """(status, parsed JSON or None) straight from the admin API, with the token when there is one."""
        c = http.client.HTTPConnection(LOCALHOST, self.admin_port, timeout=timeout)
        try:
            headers = {}
            if self.token is not None:
                headers["Authorization"] = "Bearer " + self.token
            if body is not None:
                headers["Content-Type"] = "application/json"
                body = json.dumps(body)
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
            try:
                return r.status, json.loads(data) if data else None
            except ValueError:
                return r.status, None
        finally:
            c.close()

    def ctl(self, *args, env=None, stdin=None, token=True):
        """bgwctl against this server (--server given; the token file too unless token=False)."""
        pre = ["--server", self.url]
        if token and self.token_path:
            pre += ["--token-file", self.token_path]
        return run_ctl(pre + list(args), env=env, stdin=stdin)

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout=10.0):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def cleanup(self):
        self.stop()
        self.tmp.cleanup()


class FakeAdmin:
    """An HTTP server on a free loopback port answering canned replies: routes["GET /v1/dataplanes"] =
    (status, body) where body is a dict/list (sent as JSON) or bytes; anything else is 404. A reply of None
    never answers (the connection is held until stop()). Requests are recorded as dicts (method, path,
    headers, body)."""

    def __init__(self, routes=None):
        self.routes = dict(routes or {})
        self.requests = []
        self._release = threading.Event()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _serve(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                fake.requests.append({"method": self.command, "path": self.path,
                                      "headers": {k.lower(): v for (k, v) in self.headers.items()}, "body": body})
                reply = fake.routes.get("%s %s" % (self.command, self.path), (404, {"error": {
                    "code": "not_found", "message": "no such endpoint"}}))
                if reply is None:
                    fake._release.wait(30)
                    return
                status, payload = reply
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.server = http.server.ThreadingHTTPServer((LOCALHOST, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


__all__ = ["Control", "FakeAdmin", "run_ctl", "parse_table", "ctl_bin", "control_bin", "wait_until"]
