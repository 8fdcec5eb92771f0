"""Rate limits: local accuracy across workers, keys (client_ip from several source addresses, header, route),
the 429 headers and metric, buckets kept across a config reload, a global limit shared by 3 proxies through a
real redis-server, and fail-open while Redis is down.

Accuracy is measured as admitted requests against burst + rate x elapsed time, with clients sending far
faster than the limit. The bursts hold half a second of tokens or more, so that a client pause on a busy
machine (when a full bucket would drop tokens) does not count against the proxy."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import Conn, LOCALHOST, free_port, metric, route, service, wait_until


def conn_from(port, src=LOCALHOST, timeout=10.0):
    """A harness Conn to the proxy whose client socket is bound to source address src."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect((LOCALHOST, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c = Conn.__new__(Conn)
    c.sock, c.timeout, c.buf, c.eof = s, timeout, bytearray(), False
    return c


def limit(name, requests, per="second", burst=None, key="client_ip", scope="local"):
    d = {"name": name, "requests": requests, "per": per, "key": key, "scope": scope}
    if burst is not None:
        d["burst"] = burst
    return d


def hammer(ports, target, seconds, threads=4, headers=None):
    """Send requests as fast as possible over keep-alive connections (threads per port) for `seconds`.
    Returns (admitted, rejected, elapsed from the first send to the last answer)."""
    counts = {"ok": 0, "limited": 0, "other": 0}
    lock = threading.Lock()
    stamps = []
    stop_at = time.monotonic() + seconds

    def run(port):
        ok = limited = other = 0
        first = last = None
        c = None
        while time.monotonic() < stop_at:
            if c is None:
                c = conn_from(port)
            t0 = time.monotonic()
            if first is None:
                first = t0
            r = c.request("GET", target, headers=headers)
            last = time.monotonic()
            if r.status == 200:
                ok += 1
            elif r.status == 429:
                limited += 1
            else:
                other += 1
            if r.header("connection") == "close":
                c.close()
                c = None
        if c is not None:
            c.close()
        with lock:
            counts["ok"] += ok
            counts["limited"] += limited
            counts["other"] += other
            stamps.append((first, last))

    ts = [threading.Thread(target=run, args=(p,)) for p in ports for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    first = min(s[0] for s in stamps)
    last = max(s[1] for s in stamps)
    if counts["other"]:
        raise AssertionError("unexpected statuses: %r" % counts)
    return counts["ok"], counts["limited"], last - first


class Redis:
    """A real redis-server on a free loopback port, without persistence."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="bgw-redis-")
        self.proc = None

    def start(self):
        exe = shutil.which("redis-server")
        if not exe:
            raise unittest.SkipTest("redis-server is not installed")
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", LOCALHOST, "--save", "",
                                      "--appendonly", "no", "--dir", self.dir.name],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, timeout=10, message="redis-server answering PING")
        return self

    def ping(self):
        try:
            with socket.create_connection((LOCALHOST, self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


class LocalRateLimitTest(harness.ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_cls("a")
        cls.config = {
            "services": [service("svc", cls.up.addr("a"))],
            "routes": [
                route("acc", "svc", path_prefix="/acc", rate_limit="acc"),
                route("ip", "svc", path_prefix="/ip", rate_limit="per-ip"),
                route("hdr", "svc", path_prefix="/hdr", rate_limit="per-key"),
                route("r1", "svc", path_prefix="/r1", rate_limit="per-route"),
                route("r2", "svc", path_prefix="/r2", rate_limit="per-route"),
                route("open", "svc", path_prefix="/open"),
            ],
            "rate_limits": [
                limit("acc", 200, burst=100),
                limit("per-ip", 3, per="minute"),
                limit("per-key", 2, per="minute", key="header:x-api-key"),
                limit("per-route", 2, per="hour", key="route"),
            ],
        }
        cls.proxy = cls.start_proxy_cls(cls.config, workers=2)

    def test_local_limit_is_per_proxy_and_accurate(self):
        ok, limited, elapsed = hammer([self.proxy.port], "/acc", 3.0, threads=4)
        expected = 100 + 200 * elapsed
        self.assertGreater(limited, 0, "the clients must send faster than the limit")
        self.assertLess(abs(ok - expected), 0.05 * expected,
                        "admitted %d in %.2fs, expected %.0f (+-5%%)" % (ok, elapsed, expected))

    def test_client_ip_key(self):
        for src in ("127.0.0.2", "127.0.0.3"):
            statuses = []
            with conn_from(self.proxy.port, src) as c:
                for _ in range(5):
                    statuses.append(c.request("GET", "/ip").status)
            self.assertEqual(statuses, [200, 200, 200, 429, 429], "source %s" % src)

    def test_header_key(self):
        def run(key):
            hs = [("X-Api-Key", key)] if key else None
            return [self.proxy.request("GET", "/hdr", headers=hs).status for _ in range(3)]
        self.assertEqual(run("alpha"), [200, 200, 429])
        self.assertEqual(run("beta"), [200, 200, 429])
        self.assertEqual(run(None), [200, 200, 429], "requests without the header share one bucket")

    def test_admitted_responses_carry_ratelimit_headers(self):
        with conn_from(self.proxy.port, "127.0.0.10") as c:
            rs = [c.request("GET", "/ip") for _ in range(3)]
            opened = c.request("GET", "/open")
        self.assertEqual([r.status for r in rs], [200, 200, 200])
        self.assertEqual([r.header("ratelimit-limit") for r in rs], ["3", "3", "3"])
        self.assertEqual([r.header("ratelimit-remaining") for r in rs], ["2", "1", "0"])
        self.assertEqual([r.header("ratelimit-reset") for r in rs], ["20", "40", "60"])
        self.assertFalse(any(r.has("retry-after") for r in rs))
        self.assertFalse(opened.has("ratelimit-limit"), "a route without a limit has no RateLimit headers")

    def test_route_key(self):
        self.assertEqual([self.proxy.request("GET", "/r1").status for _ in range(3)], [200, 200, 429])
        self.assertEqual([self.proxy.request("GET", "/r2").status for _ in range(3)], [200, 200, 429])

    def test_429_headers_and_metric(self):
        src = "127.0.0.9"
        with conn_from(self.proxy.port, src) as c:
            first = c.request("GET", "/ip")
            for _ in range(2):
                c.request("GET", "/ip")
            r = c.request("GET", "/ip")
            again = c.request("GET", "/open")    # the connection stays usable after a 429
        self.assertEqual(first.status, 200)
        self.assertErrorBody(r, 429, "rate_limited")
        retry = int(r.header("retry-after"))
        self.assertTrue(1 <= retry <= 20, r)       # 3 per minute: a token every 20 s
        self.assertEqual(r.header("ratelimit-limit"), "3")
        self.assertEqual(r.header("ratelimit-remaining"), "0")
        reset = int(r.header("ratelimit-reset"))
        self.assertTrue(40 <= reset <= 60, r)      # the bucket is full again after 3 tokens
        self.assertEqual(again.status, 200)
        m = self.proxy.metrics()
        self.assertGreaterEqual(metric(m, "bgw_ratelimit_rejected_total", route="ip"), 1)
        self.assertEqual(metric(m, "bgw_ratelimit_rejected_total", route="open"), 0)  # present from the start, at 0


class ClaimKeyTest(harness.ProxyTestCase):
    def test_claim_key_from_a_verified_token(self):
        import jwt_helpers as jh
        key = jh.OctKey("k1")
        up = self.start_upstream("a")
        cfg = {
            "services": [service("svc", up.addr("a"))],
            "routes": [route("c", "svc", path_prefix="/", auth="jwt", rate_limit="per-user")],
            "rate_limits": [limit("per-user", 2, per="minute", key="claim:sub")],
            "auth_policies": [{"name": "jwt", "issuer": jh.ISSUER, "algorithms": ["HS256"], "jwks": jh.jwks(key),
                               "forward_claims": {"sub": "x-user-id"}}],
        }
        p = self.start_proxy(cfg, workers=2)

        def run(sub):
            tok = jh.token(key, payload=jh.claims(sub=sub))
            return [p.request("GET", "/x", headers=jh.bearer(tok)).status for _ in range(3)]
        self.assertEqual(run("alice"), [200, 200, 429])
        self.assertEqual(run("bob"), [200, 200, 429], "each subject has its own bucket")
        self.assertEqual(p.request("GET", "/x").status, 401, "no token: refused before the rate limit")


class ReloadTest(harness.ProxyTestCase):
    def test_buckets_survive_reload_and_take_new_numbers(self):
        up = self.start_upstream("a")
        cfg = {
            "services": [service("svc", up.addr("a"))],
            "routes": [route("r", "svc", path_prefix="/", rate_limit="lim")],
            "rate_limits": [limit("lim", 1, per="hour", burst=3, key="route")],
        }
        p = self.start_proxy(cfg, workers=2)
        self.assertEqual([p.request("GET", "/x").status for _ in range(4)], [200, 200, 200, 429])
        # A new config (one more route, same limit name and numbers): the bucket stays empty.
        cfg["routes"].append(route("other", "svc", path_prefix="/other"))
        p.reload(cfg)
        wait_until(lambda: p.request("GET", "/other").status == 200, message="reload applied")
        self.assertEqual(p.request("GET", "/x").status, 429, "the bucket was reset by the reload")
        # New numbers apply to the existing bucket: 20 per second refills it within a fraction of a second.
        cfg["rate_limits"] = [limit("lim", 20, per="second", burst=3, key="route")]
        p.reload(cfg)
        wait_until(lambda: p.request("GET", "/x").status == 200, timeout=5, message="the new rate applied")


class GlobalRateLimitTest(harness.ProxyTestCase):
    def setUp(self):
        self.redis = Redis().start()
        self.addCleanup(self.redis.stop)
        self.addCleanup(self.redis.dir.cleanup)
        self.up = self.start_upstream("a")

    def proxies(self, cfg, n):
        return [self.start_proxy(cfg, workers=2, args=["--redis", "127.0.0.1:%d" % self.redis.port])
                for _ in range(n)]

    def test_global_limit_shared_by_three_proxies(self):
        cfg = {
            "services": [service("svc", self.up.addr("a"))],
            "routes": [route("g", "svc", path_prefix="/", rate_limit="glob")],
            "rate_limits": [limit("glob", 100, burst=50, key="route", scope="global")],
        }
        ps = self.proxies(cfg, 3)
        ok, limited, elapsed = hammer([p.port for p in ps], "/g", 10.0, threads=2)
        expected = 50 + 100 * elapsed
        self.assertGreater(limited, 0)
        self.assertLess(abs(ok - expected), 0.05 * expected,
                        "admitted %d in %.2fs across 3 proxies, expected %.0f (+-5%%)" % (ok, elapsed, expected))
        for p in ps:
            self.assertEqual(metric(p.metrics(), "bgw_ratelimit_redis_errors_total"), 0)

    def test_global_limit_with_a_large_burst(self):
        """A burst large enough for the proxies to admit ahead of Redis's answers: still within 5%."""
        cfg = {
            "services": [service("svc", self.up.addr("a"))],
            "routes": [route("g", "svc", path_prefix="/", rate_limit="big")],
            "rate_limits": [limit("big", 200, burst=400, key="route", scope="global")],
        }
        ps = self.proxies(cfg, 3)
        ok, limited, elapsed = hammer([p.port for p in ps], "/g", 4.0, threads=2)
        expected = 400 + 200 * elapsed
        self.assertGreater(limited, 0)
        self.assertLess(abs(ok - expected), 0.05 * expected,
                        "admitted %d in %.2fs across 3 proxies, expected %.0f (+-5%%)" % (ok, elapsed, expected))

    def test_redis_not_answering_fails_open_after_the_deadline(self):
        cfg = {
            "services": [service("svc", self.up.addr("a"))],
            "routes": [route("g", "svc", path_prefix="/", rate_limit="glob")],
            "rate_limits": [limit("glob", 1, per="hour", burst=1, key="route", scope="global")],
        }
        p, = self.proxies(cfg, 1)
        self.assertEqual([p.request("GET", "/x").status for _ in range(2)], [200, 429])
        self.redis.proc.send_signal(signal.SIGSTOP)       # connected, but silent
        try:
            t0 = time.monotonic()
            statuses = [p.request("GET", "/x").status for _ in range(3)]
            took = time.monotonic() - t0
        finally:
            self.redis.proc.send_signal(signal.SIGCONT)
        self.assertEqual(statuses, [200, 200, 200], "admitted once the answer is late")
        self.assertGreaterEqual(took, 0.6, "each waited for the 250 ms deadline")
        self.assertLess(took, 5.0)
        self.assertGreaterEqual(metric(p.metrics(), "bgw_ratelimit_redis_errors_total"), 3)
        # The late answers arrive and are dropped; the bucket is still empty (the late calls took nothing).
        wait_until(lambda: p.request("GET", "/x").status == 429, message="limited again after SIGCONT")

    def test_redis_down_fails_open_then_limits_again(self):
        cfg = {
            "services": [service("svc", self.up.addr("a"))],
            "routes": [route("g", "svc", path_prefix="/", rate_limit="glob")],
            "rate_limits": [limit("glob", 1, per="hour", burst=2, key="route", scope="global")],
        }
        p, = self.proxies(cfg, 1)
        self.assertEqual([p.request("GET", "/x").status for _ in range(3)], [200, 200, 429])
        self.redis.stop()
        statuses = [p.request("GET", "/x").status for _ in range(20)]
        self.assertEqual(statuses, [200] * 20, "fail open while Redis is down")
        self.assertGreater(metric(p.metrics(), "bgw_ratelimit_redis_errors_total"), 0)
        wait_until(lambda: "fail open" in p.stderr_text(), message="a log line about Redis")
        self.assertLess(p.stderr_text().count("fail open"), 5, "the log is rate-limited")
        # Redis back (empty, on the same port): limits apply again once the proxy reconnects.
        port = self.redis.port
        self.redis = Redis()
        self.redis.port = port
        self.redis.start()
        self.addCleanup(self.redis.stop)
        self.addCleanup(self.redis.dir.cleanup)

        def limited_again():
            return p.request("GET", "/x").status == 429
        wait_until(limited_again, timeout=15, interval=0.05, message="429 again after Redis came back")


if __name__ == "__main__":
    unittest.main()
