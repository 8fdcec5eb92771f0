#!/usr/bin/python3
"""Open many keep-alive client connections to one HTTP server and hold them idle.

Used by run.py (scenario "idle") in-process; also usable on its own:

    tests/bench/idle_conns.py --port 8080 --count 10000 --hold 30

Connections are opened with non-blocking sockets (a bounded number of connects in
flight, so the listen backlog never overflows). With --used (the default) one
complete GET is sent on every connection and its response read, so the server
holds "used" keep-alive connections; requests are also bounded in flight so the
proxy never needs more than a few hundred upstream connections. Sockets are closed
with SO_LINGER 0 (RST), so no TIME_WAIT entries are left behind on the client side.

Standard library only.
"""

import argparse
import errno
import json
import re
import resource
import select
import signal
import socket
import struct
import sys
import time

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CONN_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked", re.IGNORECASE)


def raise_nofile(want):
    """Raise RLIMIT_NOFILE to at least `want` (root may raise the hard limit too).

    Returns the soft limit in effect afterwards.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _response_state(buf):
    """Return None while incomplete, else (status, keep_alive)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end + 2])
    try:
        status = int(head[9:12])
    except ValueError:
        status = 0
    keep_alive = _CONN_CLOSE.search(head) is None and head.startswith(b"HTTP/1.1")
    m = _CONTENT_LENGTH.search(head)
    if m:
        if len(buf) >= end + 4 + int(m.group(1)):
            return status, keep_alive
        return None
    if _CHUNKED.search(head):
        if buf.endswith(b"0\r\n\r\n"):
            return status, keep_alive
        return None
    if status in (204, 304) or 100 <= status < 200:
        return status, keep_alive
    return None  # body delimited by close: incomplete until EOF


class IdleConnections:
    """A set of idle client connections to host:port."""

    def __init__(self, host, port, count, used=True, path="/", host_header=None,
                 connect_parallel=256, request_parallel=128, timeout=120.0):
        self.addr = (host, port)
        self.count = count
        self.used = used
        self.path = path
        self.host_header = host_header or "%s:%d" % (host, port)
        self.connect_parallel = connect_parallel
        self.request_parallel = request_parallel
        self.timeout = timeout
        self.socks = {}          # fd -> socket, the idle connections held
        self.errors = {}         # reason -> count
        self.statuses = {}       # HTTP status -> count (used mode)
        self.epoll = select.epoll()
        self.open_seconds = 0.0

    def _fail(self, reason):
        self.errors[reason] = self.errors.get(reason, 0) + 1

    def open(self):
        """Open (and in used mode, use) the connections; return a summary dict."""
        raise_nofile(self.count + 1024)
        t0 = time.monotonic()
        deadline = t0 + self.timeout
        connected = self._connect_all(deadline)
        if self.used:
            self._request_all(connected, deadline)
        else:
            for s in connected:
                self.socks[s.fileno()] = s
                self.epoll.register(s.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
        self.open_seconds = time.monotonic() - t0
        return self.summary()

    def _connect_all(self, deadline):
        connected = []
        pending = {}
        started = 0
        ep = select.epoll()
        try:
            while started < self.count or pending:
                while started < self.count and len(pending) < self.connect_parallel:
                    started += 1
                    try:
                        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    except OSError as e:
                        self._fail("socket: " + errno.errorcode.get(e.errno, str(e.errno)))
                        continue
                    s.setblocking(False)
                    rc = s.connect_ex(self.addr)
                    if rc == 0:
                        connected.append(s)
                    elif rc == errno.EINPROGRESS:
                        pending[s.fileno()] = s
                        ep.register(s.fileno(), select.EPOLLOUT)
                    else:
                        self._fail("connect: " + errno.errorcode.get(rc, str(rc)))
                        s.close()
                if time.monotonic() > deadline:
                    for s in pending.values():
                        self._fail("connect: timeout")
                        s.close()
                    pending.clear()
                    break
                for fd, _ev in ep.poll(0.5):
                    s = pending.pop(fd)
                    ep.unregister(fd)
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        self._fail("connect: " + errno.errorcode.get(err, str(err)))
                        s.close()
                    else:
                        connected.append(s)
        finally:
            ep.close()
        return connected

    def _request_all(self, connected, deadline):
        req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: bgw-bench-idle\r\n"
               "Accept: */*\r\n\r\n" % (self.path, self.host_header)).encode()
        queue = connected[::-1]
        inflight = {}  # fd -> (sock, bytearray)
        ep = self.epoll
        while queue or inflight:
            while queue and len(inflight) < self.request_parallel:
                s = queue.pop()
                try:
                    n = s.send(req)
                except OSError as e:
                    self._fail("send: " + errno.errorcode.get(e.errno, str(e.errno)))
                    s.close()
                    continue
                if n != len(req):
                    self._fail("send: short write")
                    s.close()
                    continue
                inflight[s.fileno()] = (s, bytearray())
                ep.register(s.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
            if time.monotonic() > deadline:
                for s, _b in inflight.values():
                    self._fail("response: timeout")
                    ep.unregister(s.fileno())
                    s.close()
                for s in queue:
                    self._fail("request: not sent (timeout)")
                    s.close()
                return
            for fd, _ev in ep.poll(0.5):
                s, buf = inflight[fd]
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as e:
                    self._fail("recv: " + errno.errorcode.get(e.errno, str(e.errno)))
                    del inflight[fd]
                    ep.unregister(fd)
                    s.close()
                    continue
                if not data:
                    self._fail("closed before a complete response")
                    del inflight[fd]
                    ep.unregister(fd)
                    s.close()
                    continue
                buf += data
                st = _response_state(buf)
                if st is None:
                    continue
                status, keep_alive = st
                self.statuses[status] = self.statuses.get(status, 0) + 1
                del inflight[fd]
                if status != 200:
                    self._fail("HTTP %d" % status)
                    ep.unregister(fd)
                    s.close()
                elif not keep_alive:
                    self._fail("server asked to close")
                    ep.unregister(fd)
                    s.close()
                else:
                    self.socks[fd] = s  # stays registered: events now mean "closed"

    def alive(self):
        """Drop connections the server has closed; return how many are still open."""
        for fd, _ev in self.epoll.poll(0):
            s = self.socks.get(fd)
            if s is None:
                continue
            try:
                data = s.recv(1, socket.MSG_PEEK)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                # Unexpected bytes on an idle connection: count it, keep it.
                self._fail("unexpected data while idle")
                self.epoll.unregister(fd)
                continue
            self._fail("closed by server while idle")
            self.epoll.unregister(fd)
            del self.socks[fd]
            s.close()
        return len(self.socks)

    def summary(self):
        return {
            "requested": self.count,
            "open": len(self.socks),
            "used": self.used,
            "open_seconds": round(self.open_seconds, 3),
            "errors": dict(self.errors),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }

    def close(self):
        linger = struct.pack("ii", 1, 0)
        for s in self.socks.values():
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            except OSError:
                pass
            s.close()
        self.socks.clear()
        self.epoll.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--path", default="/")
    ap.add_argument("--fresh", action="store_true",
                    help="do not send a request on each connection (hold fresh connections)")
    ap.add_argument("--hold", type=float, default=30.0, help="seconds to hold them (default 30)")
    ap.add_argument("--timeout", type=float, default=120.0, help="bound on opening them")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ic = IdleConnections(a.host, a.port, a.count, used=not a.fresh, path=a.path,
                         timeout=a.timeout)
    try:
        print(json.dumps(ic.open()), flush=True)
        end = time.monotonic() + a.hold
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            ic.alive()
        print(json.dumps(ic.summary()), flush=True)
    finally:
        ic.close()


if __name__ == "__main__":
    main()
