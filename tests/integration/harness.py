"""Harness for the bgw-proxy end-to-end tests (stdlib only).

- Upstream: the test upstream (upstream.py) as a subprocess, with its control channel.
- Proxy: bgw-proxy started with a config dict on free loopback ports, ready when admin /readyz says 200,
  stderr captured to a file, stopped with SIGTERM (the exit code is the caller's to assert).
- Conn / request(): raw-socket HTTP/1.1 client: send exact bytes, read a whole response (Content-Length,
  chunked, or up to the close), or see that the server closed the connection.
- parse_prometheus() / metric(): Prometheus text format.
- wait_until(): poll a condition with a deadline. Nothing here sleeps to synchronise.

The binary is taken from $BGW_BIN_DIR (set by ctest), else ../../build/bin. Only 127.0.0.1 is used.
"""

import errno
import hashlib
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
LOCALHOST = "127.0.0.1"


def bin_dir():
    return os.environ.get("BGW_BIN_DIR") or os.path.normpath(os.path.join(HERE, "..", "..", "build", "bin"))


def proxy_bin():
    return os.path.join(bin_dir(), "bgw-proxy")


def free_port():
    """A loopback TCP port nobody listens on right now (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


def wait_until(cond, timeout=5.0, interval=0.01, message="condition"):
    """Call cond() until it returns a truthy value (returned) or timeout seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last value: %r)" % (timeout, message, last))
        time.sleep(interval)


def clean_env(extra=None):
    """os.environ without BGW_* variables (so the runner's settings cannot leak into the proxy), plus extra."""
    env = {k: v for (k, v) in os.environ.items() if not k.startswith("BGW_")}
    env.update(extra or {})
    return env


# ---------------------------------------------------------------------------------------------------------
# Upstream

class Upstream:
    """The test upstream as a subprocess: one data listener per name, and a control channel."""

    def __init__(self, *names):
        self.names = list(names) or ["upstream"]
        self.proc = None
        self.ports = {}
        self.control = None

    def start(self, timeout=10.0):
        args = [sys.executable, "-m", "upstream", "--exit-on-stdin-eof", "--control", "127.0.0.1:0"]
        for n in self.names:
            args += ["--listen", "%s=127.0.0.1:0" % n]
        self.proc = subprocess.Popen(args, cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=clean_env())
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError("test upstream did not start within %.0fs" % timeout)
        info = json.loads(line)
        self.ports = info["listeners"]
        self.control = info["control"]
        return self

    def port(self, name=None):
        return self.ports[name or self.names[0]]

    def addr(self, name=None):
        return "127.0.0.1:%d" % self.port(name)

    def _control(self, method, path):
        c = http.client.HTTPConnection(LOCALHOST, self.control, timeout=10)
        try:
            c.request(method, path)
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                raise RuntimeError("upstream control %s %s: %d" % (method, path, r.status))
            return json.loads(body)
        finally:
            c.close()

    def records(self):
        return self._control("GET", "/records")["records"]

    def stats(self):
        return self._control("GET", "/stats")

    def clear(self):
        self._control("POST", "/clear")

    def set_mode(self, name, route=None, count=None, **query):
        """Make listener name answer every request as route (e.g. "status/503", "reset", "delay" with
        ms=N) for the next count requests (None: until changed); route None: back to normal."""
        params = {"listener": name}
        if route is not None:
            params["route"] = route
            if count is not None:
                params["count"] = str(count)
            params.update({k: str(v) for k, v in query.items()})
        self._control("POST", "/mode?" + urllib.parse.urlencode(params))

    def targets(self):
        return [r["target"] for r in self.records()]

    def wait_records(self, n, timeout=5.0, complete=True, pred=None):
        """Wait until at least n records (complete ones if complete, matching pred if given) exist."""
        def cond():
            rs = [r for r in self.records() if (r["complete"] or not complete) and (pred is None or pred(r))]
            return rs if len(rs) >= n else None
        return wait_until(cond, timeout, message="%d upstream record(s)" % n)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except Exception:
                pass
        self.proc = None


def record_header(rec, name):
    """All values of header name (case-insensitive) in an upstream record, in order."""
    name = name.lower()
    return [v for (k, v) in rec["headers"] if k.lower() == name]


# ---------------------------------------------------------------------------------------------------------
# Proxy

class Proxy:
    """bgw-proxy with a config dict, on free loopback ports."""

    def __init__(self, config, workers=2, args=(), env=None, omit=(), config_text=None):
        """config: the document (dict), or config_text: the file's exact text. args: extra flags. env: extra
        environment. omit: flags among "config", "listen", "admin", "workers" to leave off the command line
        (to give them through BGW_* variables instead)."""
        self.config = config
        self.config_text = config_text
        self.workers = workers
        self.extra_args = list(args)
        self.extra_env = dict(env or {})
        self.omit = set(omit)
        self.tmp = tempfile.TemporaryDirectory(prefix="bgw-it-")
        self.config_path = os.path.join(self.tmp.name, "config.json")
        self.stderr_path = os.path.join(self.tmp.name, "stderr.log")
        self.port = free_port()
        self.admin_port = free_port()
        self.proc = None
        self.returncode = None
        self._stderr_file = None

    # -- process

    def command(self):
        flags = [("config", self.config_path), ("listen", "127.0.0.1:%d" % self.port),
                 ("admin", "127.0.0.1:%d" % self.admin_port), ("workers", str(self.workers))]
        cmd = [proxy_bin()]
        for (name, value) in flags:
            if name not in self.omit:
                cmd += ["--" + name, value]
        return cmd + self.extra_args

    def write_config(self, config=None, text=None):
        """Write the config file atomically (temp file + rename)."""
        if text is None:
            text = json.dumps(config if config is not None else self.config, indent=2)
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.config_path)

    def spawn(self):
        if not os.access(proxy_bin(), os.X_OK):
            raise AssertionError("bgw-proxy not found at %s (set BGW_BIN_DIR or build it)" % proxy_bin())
        self.write_config(text=self.config_text)
        self._stderr_file = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._stderr_file, env=clean_env(self.extra_env))
        return self

    def start(self, timeout=10.0, tries=3):
        """Spawn and wait until /readyz is 200 and the listener accepts connections. A port taken by
        another process between picking it and binding it is picked again (at most `tries` times)."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                if tries > 1 and "address already in use" in self.stderr_tail().lower():
                    self._close_stderr()
                    self.port, self.admin_port = free_port(), free_port()
                    return self.start(timeout, tries - 1)
                raise AssertionError("bgw-proxy exited with %d before it was ready; stderr:\n%s"
                                     % (rc, self.stderr_tail()))
            if self.admin_status("/readyz") == 200 and self.accepts():
                return self
            if time.monotonic() >= deadline:
                self.kill()
                raise AssertionError("bgw-proxy not ready within %.0fs (admin /readyz on %d); stderr:\n%s"
                                     % (timeout, self.admin_port, self.stderr_tail()))
            time.sleep(0.02)

    def accepts(self):
        try:
            with socket.create_connection((LOCALHOST, self.port), timeout=1):
                return True
        except OSError:
            return False

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, config=None, text=None):
        """Rewrite the config file and send SIGHUP."""
        self.write_config(config, text)
        self.signal(signal.SIGHUP)

    def wait_exit(self, timeout):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, timeout=20.0):
        """SIGTERM and wait. Returns the exit code (killed after timeout: AssertionError)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("bgw-proxy did not exit within %.0fs of SIGTERM; stderr:\n%s"
                                 % (timeout, self.stderr_tail()))
        finally:
            self._close_stderr()
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.returncode = self.proc.wait()
        self._close_stderr()

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

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for pid %d" % self.pid)

    # -- admin

    def admin(self, path, timeout=5.0):
        """GET path on the admin listener: (status, headers dict lower-cased, body bytes)."""
        c = http.client.HTTPConnection(LOCALHOST, self.admin_port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, {k.lower(): v for (k, v) in r.getheaders()}, r.read()
        finally:
            c.close()

    def admin_status(self, path):
        try:
            return self.admin(path, timeout=1.0)[0]
        except (OSError, http.client.HTTPException):
            return None

    def admin_json(self, path):
        st, _, body = self.admin(path)
        if st != 200:
            raise AssertionError("admin %s: %d %r" % (path, st, body[:200]))
        return json.loads(body)

    def metrics(self):
        st, _, body = self.admin("/metrics")
        if st != 200:
            raise AssertionError("admin /metrics: %d" % st)
        return parse_prometheus(body.decode())

    # -- data plane

    def conn(self, timeout=10.0):
        return Conn(self.port, timeout=timeout)

    def request(self, method="GET", target="/", headers=None, body=None, host="test.local", timeout=10.0):
        return request(self.port, method, target, headers, body, host, timeout)


def run_proxy_cli(args, env=None, timeout=10.0):
    """Run bgw-proxy with args to completion: (exit code, stdout text, stderr text). A process still running
    after timeout is killed and reported as an AssertionError."""
    try:
        p = subprocess.run([proxy_bin()] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout, env=clean_env(env))
    except subprocess.TimeoutExpired as e:
        raise AssertionError("bgw-proxy %s still running after %.0fs; stderr:\n%s"
                             % (" ".join(args), timeout, (e.stderr or b"").decode("utf-8", "replace")))
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------------------
# Raw HTTP/1.1 client

class Closed(Exception):
    """The server closed the connection (or reset it) before a complete response."""

    def __init__(self, partial=b""):
        super().__init__("connection closed by the server after %d byte(s) of response: %r"
                         % (len(partial), bytes(partial[:200])))
        self.partial = bytes(partial)


class Response:
    def __init__(self, version, status, reason, headers, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value) as received
        self.raw_head = raw_head
        self.body = b""
        self.framing = None             # "none" | "length" | "chunked" | "close"

    def header_all(self, name):
        name = name.lower()
        return [v for (k, v) in self.headers if k.lower() == name]

    def header(self, name):
        vs = self.header_all(name)
        return vs[0] if vs else None

    def has(self, name):
        return bool(self.header_all(name))

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %s %d %r headers=%r body=%r>" % (self.version, self.status, self.reason,
                                                          self.headers, self.body[:300])


class Conn:
    """One client connection to a port. Bytes go out exactly as given; responses are parsed strictly
    enough to delimit them (HEAD/1xx/204/304 without body, chunked, Content-Length, or read to close)."""

    def __init__(self, port, timeout=10.0, host=LOCALHOST):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, timeout=None):
        """Read more bytes into buf. Returns False at EOF / reset; raises socket.timeout."""
        if self.eof:
            return False
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _read_line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if not self._fill():
                raise Closed(self.buf)

    def read_head(self):
        """Read a response head (skipping 1xx other than 101). Raises Closed when the server closed first."""
        while True:
            while True:
                i = self.buf.find(b"\r\n\r\n")
                if i >= 0:
                    break
                if not self._fill():
                    raise Closed(self.buf)
            raw = bytes(self.buf[:i + 4])
            del self.buf[:i + 4]
            lines = raw[:-4].decode("latin-1").split("\r\n")
            m = re.match(r"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
            if not m:
                raise AssertionError("malformed status line %r" % lines[0])
            headers = []
            for line in lines[1:]:
                k, sep, v = line.partition(":")
                if not sep:
                    raise AssertionError("malformed response header line %r" % line)
                headers.append((k, v.strip(" \t")))
            resp = Response(m.group(1), int(m.group(2)), m.group(3) or "", headers, raw)
            if 100 <= resp.status < 200 and resp.status != 101:
                continue
            return resp

    def read_body(self, resp, method="GET", sink=None):
        """Read resp's body. sink(memoryview) receives it piecewise; without a sink it lands in resp.body."""
        out = bytearray()
        if sink is None:
            sink = out.extend
        te = [t.strip().lower() for v in resp.header_all("transfer-encoding") for t in v.split(",")]
        if method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200:
            resp.framing = "none"
        elif te:
            if te[-1] != "chunked":
                raise AssertionError("response Transfer-Encoding %r" % resp.header_all("transfer-encoding"))
            resp.framing = "chunked"
            while True:
                line = self._read_line()
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self._read_line() != b"":
                        pass
                    break
                self._read_exact_into(size, sink)
                if self._read_line() != b"":
                    raise AssertionError("chunk data not followed by CRLF")
        elif resp.has("content-length"):
            cls = set(resp.header_all("content-length"))
            if len(cls) != 1:
                raise AssertionError("response with Content-Length %r" % resp.header_all("content-length"))
            resp.framing = "length"
            self._read_exact_into(int(cls.pop()), sink)
        else:
            resp.framing = "close"
            while True:
                if self.buf:
                    sink(memoryview(bytes(self.buf)))
                    self.buf.clear()
                if not self._fill():
                    break
        resp.body = bytes(out)
        return resp

    def _read_exact_into(self, n, sink):
        if self.buf:
            take = min(n, len(self.buf))
            sink(memoryview(bytes(self.buf[:take])))
            del self.buf[:take]
            n -= take
        if n == 0:
            return
        scratch = bytearray(min(n, 1 << 20))
        mv = memoryview(scratch)
        self.sock.settimeout(self.timeout)
        while n:
            try:
                got = self.sock.recv_into(mv[:min(n, len(scratch))])
            except ConnectionResetError:
                got = 0
            if got == 0:
                self.eof = True
                raise Closed(b"(body cut short with %d byte(s) missing)" % n)
            sink(mv[:got])
            n -= got

    def read_response(self, method="GET", sink=None):
        resp = self.read_head()
        return self.read_body(resp, method, sink)

    def request(self, method="GET", target="/", headers=None, body=None, host="test.local", version="HTTP/1.1"):
        self.send(build_request(method, target, headers, body, host, version))
        return self.read_response(method)

    def wait_closed(self, timeout=5.0):
        """True when the server closes (EOF or reset) within timeout; bytes that arrive meanwhile are kept
        in self.buf. False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                if not self._fill(timeout=left):
                    return True
            except socket.timeout:
                return False
            except OSError as e:
                if e.errno in (errno.ECONNRESET, errno.EPIPE):
                    self.eof = True
                    return True
                raise

    def read_response_or_close(self, timeout=5.0, method="GET"):
        """A response, or None when the server closed (or reset) the connection without one."""
        old = self.timeout
        self.timeout = timeout
        try:
            return self.read_response(method)
        except Closed as e:
            if e.partial.strip():
                raise AssertionError("server closed in the middle of a response: %r" % e.partial[:300])
            return None
        except (ConnectionResetError, BrokenPipeError):
            return None
        finally:
            self.timeout = old


def build_request(method="GET", target="/", headers=None, body=None, host="test.local", version="HTTP/1.1"):
    """Request bytes. headers: list of (name, value); Host first unless host is None; Content-Length added
    for a bytes body unless a Content-Length or Transfer-Encoding header is given."""
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    hs = list(headers or [])
    names = {k.lower() for (k, _) in hs}
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        hs.append(("Content-Length", str(len(body))))
    lines += ["%s: %s" % (k, v) for (k, v) in hs]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body or b"")


def request(port, method="GET", target="/", headers=None, body=None, host="test.local", timeout=10.0):
    """One request on a new connection."""
    with Conn(port, timeout=timeout) as c:
        return c.request(method, target, headers, body, host)


def chunked(body, sizes=(1, 7, 4096, 65536, 3)):
    """body encoded as chunks cycling through sizes (with one chunk extension)."""
    out = bytearray()
    i = 0
    k = 0
    while i < len(body):
        n = min(sizes[k % len(sizes)], len(body) - i)
        ext = b";ext=1" if k == 1 else b""
        out += b"%x%s\r\n" % (n, ext) + body[i:i + n] + b"\r\n"
        i += n
        k += 1
    out += b"0\r\n\r\n"
    return bytes(out)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class RssSampler(threading.Thread):
    """Samples a process's VmRSS (KiB) every interval seconds until stop()."""

    def __init__(self, proxy, interval=0.05):
        super().__init__(daemon=True)
        self.proxy = proxy
        self.interval = interval
        self.samples = []
        self._stop_evt = threading.Event()

    def run(self):
        while not self._stop_evt.is_set():
            try:
                self.samples.append(self.proxy.rss_kib())
            except (OSError, AssertionError):
                pass
            self._stop_evt.wait(self.interval)

    def stop(self):
        self._stop_evt.set()
        self.join()
        return max(self.samples) if self.samples else None


# ---------------------------------------------------------------------------------------------------------
# Prometheus text format

class Sample:
    def __init__(self, name, labels, value):
        self.name = name
        self.labels = labels
        self.value = value

    def __repr__(self):
        return "%s%r %r" % (self.name, self.labels, self.value)


_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


def _unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}.get(m.group(1), "\\" + m.group(1)), v)


class Metrics(list):
    """Samples of one scrape; types holds the # TYPE of each family."""

    def __init__(self):
        super().__init__()
        self.types = {}


def parse_prometheus(text):
    """Parse Prometheus text exposition format into a Metrics list of Sample. Raises AssertionError on a
    malformed line."""
    out = Metrics()
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                out.types[parts[2]] = parts[3].strip()
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?\s*$", line)
        if not m:
            raise AssertionError("malformed metrics line %r" % line)
        labels = {}
        body = m.group(3) or ""
        pos = 0
        while pos < len(body):
            lm = _LABEL_RE.match(body, pos)
            if not lm:
                raise AssertionError("malformed labels in metrics line %r" % line)
            labels[lm.group(1)] = _unescape(lm.group(2))
            pos = lm.end()
        v = m.group(4)
        value = {"+Inf": float("inf"), "-Inf": float("-inf"), "NaN": float("nan")}.get(v)
        if value is None:
            try:
                value = float(v)
            except ValueError:
                raise AssertionError("malformed value in metrics line %r" % line)
        out.append(Sample(m.group(1), labels, value))
    return out


def samples(metrics, name, **labels):
    return [s for s in metrics if s.name == name and all(s.labels.get(k) == v for (k, v) in labels.items())]


def metric(metrics, name, **labels):
    """Sum of the samples named name whose labels include labels; None when there is none."""
    ss = samples(metrics, name, **labels)
    return sum(s.value for s in ss) if ss else None


# ---------------------------------------------------------------------------------------------------------
# Test case base

def service(name, *addrs, **kw):
    d = {"name": name, "endpoints": list(addrs)}
    d.update(kw)
    return d


def route(name, service_name, path_prefix=None, path_exact=None, **kw):
    match = {}
    if path_prefix is not None:
        match["path_prefix"] = path_prefix
    if path_exact is not None:
        match["path_exact"] = path_exact
    for k in ("methods", "hosts", "headers"):
        if k in kw:
            match[k] = kw.pop(k)
    d = {"name": name, "match": match, "service": service_name}
    d.update(kw)
    return d


class ProxyTestCase(unittest.TestCase):
    """Helpers to start upstreams and proxies that are cleaned up after the test (or class)."""

    @classmethod
    def start_upstream_cls(cls, *names):
        up = Upstream(*names).start()
        cls.addClassCleanup(up.stop)
        return up

    @classmethod
    def start_proxy_cls(cls, config, **kw):
        """A proxy for the whole class; tearDownClass asserts it exits 0 on SIGTERM."""
        p = Proxy(config, **kw)
        cls.addClassCleanup(p.cleanup)
        p.start()
        cls._class_proxies = getattr(cls, "_class_proxies", []) + [p]
        return p

    @classmethod
    def tearDownClass(cls):
        for p in getattr(cls, "_class_proxies", []):
            if p.proc is not None and p.returncode is None:
                rc = p.stop()
                if rc != 0:
                    raise AssertionError("bgw-proxy exited with %r on SIGTERM (expected 0); stderr:\n%s"
                                         % (rc, p.stderr_tail()))
        cls._class_proxies = []

    def start_upstream(self, *names):
        up = Upstream(*names).start()
        self.addCleanup(up.stop)
        return up

    def start_proxy(self, config, check_exit=True, **kw):
        """A proxy for this test; at cleanup it gets SIGTERM and (if check_exit) must exit 0."""
        p = Proxy(config, **kw)
        self.addCleanup(p.cleanup)
        if check_exit:
            self.addCleanup(self._stop_and_check, p)
        p.start()
        return p

    def _stop_and_check(self, p):
        if p.proc is None or p.returncode is not None:
            return
        rc = p.stop()
        self.assertEqual(rc, 0, "bgw-proxy exit code on SIGTERM; stderr:\n%s" % p.stderr_tail())

    def assertErrorBody(self, resp, status, code):
        """resp is status with a JSON body {"error": code, ...} (application/json)."""
        self.assertEqual(resp.status, status, resp)
        ctype = resp.header("content-type") or ""
        self.assertTrue(ctype.startswith("application/json"), "Content-Type %r: %r" % (ctype, resp))
        try:
            obj = resp.json()
        except ValueError:
            self.fail("error body is not JSON: %r" % resp)
        self.assertEqual(obj.get("error"), code, resp)
