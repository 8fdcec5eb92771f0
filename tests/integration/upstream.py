"""A real HTTP/1.1 test upstream for the bgw-proxy integration tests (stdlib only).

Run it as a module (``python3 -m upstream`` from this directory) or through ``harness.Upstream``, which
starts it as a subprocess. One process serves any number of named data listeners plus one control
listener:

    python3 -m upstream --listen a=127.0.0.1:0 --listen b=127.0.0.1:0 --control 127.0.0.1:0

Once listening it prints one JSON line on stdout: {"listeners": {"a": PORT, ...}, "control": PORT}.

Data listeners speak HTTP/1.1 with keep-alive, Content-Length and chunked request bodies (read while
streaming, never held in memory), pipelining, HTTP/1.0. Every response carries ``X-Upstream: NAME`` (the
listener's name) and ``X-Upstream-Conn: ID`` (the connection counter). Routes are chosen by the END of the
path, so a route served under any prefix (``/api/echo``, ``/x/status/204``) reaches the same handler:

    .../status/N                 answers status N (no body for 1xx, 204, 304 and HEAD)
    .../delay?ms=N               waits N ms, then answers like /echo
    .../bytes?n=N[&chunked=1]    streams N bytes of the pattern (see pattern_chunks), Content-Length or chunked
    .../sink                     answers {"length": ..., "sha256": ...} of the request body
    .../close[?silent=1]         answers like /echo, then closes (with "Connection: close" unless silent=1)
    .../reset[?rst=1][&partial=1] closes without answering (rst=1: with an RST, SO_LINGER 0; partial=1:
                                 after the first bytes of a response head)
    .../respond?status=S&h=Name:Value&...&body=TEXT[&chunked=1]
                                 answers with the given status, extra headers and body
    anything else (/echo, ...)   200 with a JSON of what it received (method, target, headers, body hash)

The control listener (HTTP, one request per connection) answers:
    GET  /records  {"records": [...]}: one record per request, added when its head arrived and completed
                   when its body was read: seq, listener, conn, conn_seq, method, target, version,
                   headers (list of [name, value] in arrival order, names as sent), body_len,
                   body_sha256, body_framing ("none" | "length" | "chunked"), complete; a head the
                   upstream cannot parse is recorded too, with method and target null and raw_head
    GET  /stats    {"connections_total", "connections_open", "max_open", "requests_total",
                    "listeners": {NAME: {"open", "max_open", "total"}}, "open_conns": [ID, ...]}
                   (max_open: most connections open at once since the last /clear; the top-level
                   figures sum the listeners; open_conns: the ids of the connections open now)
    POST /clear    forget the records and set each max_open to the connections open now
    POST /mode?listener=NAME&route=ROUTE[&count=K][&QUERY...]
                   make listener NAME serve every request as ROUTE (e.g. status/503, reset, delay with
                   ms=N) with the extra query parameters, for the next K requests or until changed;
                   delay_ms=N waits first; without route, back to normal; /clear resets every mode
                   (a failing upstream on purpose for retry, circuit breaker and outlier tests)
"""

import argparse
import asyncio
import hashlib
import json
import os
import random
import re
import socket
import struct
import sys
import time
import urllib.parse

# The byte pattern that /bytes streams: a block of a prime length (not a power of two, so a dropped,
# repeated or misplaced buffer of the proxy changes the hash) repeated; byte i of a stream is
# PATTERN[i % len(PATTERN)].
PATTERN_LEN = 1048573
PATTERN = random.Random(20240611).randbytes(PATTERN_LEN)
_PATTERN_MV = memoryview(PATTERN)


def pattern_chunks(n, piece=PATTERN_LEN):
    """Yield memoryviews (each at most `piece` bytes) that together are the first n bytes of the stream."""
    pos = 0
    while pos < n:
        off = pos % PATTERN_LEN
        take = min(piece, PATTERN_LEN - off, n - pos)
        yield _PATTERN_MV[off:off + take]
        pos += take


def pattern_sha256(n):
    """sha256 hex digest of the first n bytes of the pattern stream."""
    h = hashlib.sha256()
    for mv in pattern_chunks(n):
        h.update(mv)
    return h.hexdigest()


class BadRequest(Exception):
    pass


REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently",
    304: "Not Modified", 400: "Bad Request", 404: "Not Found", 413: "Payload Too Large",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}

HEAD_LIMIT = 1 << 20


class State:
    def __init__(self):
        self.records = []
        self.seq = 0
        self.conn_counter = 0
        self.requests_total = 0
        self.listeners = {}  # name -> {"open", "max_open", "total"}
        self.open_conns = set()
        self.modes = {}  # listener name -> {"route": "status/503", "query": {...}, "count": K or None}

    def forced(self, name):
        """The route and query forced on listener name for this request, or None."""
        m = self.modes.get(name)
        if m is None:
            return None
        if m["count"] is not None:
            if m["count"] <= 0:
                return None
            m["count"] -= 1
        return m

    def _l(self, name):
        return self.listeners.setdefault(name, {"open": 0, "max_open": 0, "total": 0})

    def new_conn(self, name):
        self.conn_counter += 1
        ls = self._l(name)
        ls["open"] += 1
        ls["total"] += 1
        ls["max_open"] = max(ls["max_open"], ls["open"])
        self.open_conns.add(self.conn_counter)
        return self.conn_counter

    def end_conn(self, name, conn_id):
        self._l(name)["open"] -= 1
        self.open_conns.discard(conn_id)

    def stats(self):
        ls = self.listeners.values()
        return {"connections_total": self.conn_counter, "requests_total": self.requests_total,
                "connections_open": sum(x["open"] for x in ls), "max_open": sum(x["max_open"] for x in ls),
                "listeners": self.listeners, "open_conns": sorted(self.open_conns)}

    def clear(self):
        self.records = []
        self.modes = {}
        for x in self.listeners.values():
            x["max_open"] = x["open"]


STATE = State()


def header_values(headers, name):
    name = name.lower()
    return [v for (k, v) in headers if k.lower() == name]


def parse_head(raw):
    """Parse a request head (bytes up to and including the blank line). Returns (method, target, version,
    headers). Lenient where the proxy's strictness is what is under test: it only needs to record."""
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest("bad request line %r" % lines[0])
    method, target, version = parts
    headers = []
    for line in lines[1:]:
        if line == "":
            continue
        if ":" not in line:
            raise BadRequest("bad header line %r" % line)
        k, v = line.split(":", 1)
        headers.append([k, v.strip(" \t")])
    return method, target, version, headers


async def read_body(reader, headers, sink):
    """Read the request body as framed by headers, feeding each piece to sink. Returns the framing used."""
    te = header_values(headers, "transfer-encoding")
    cl = header_values(headers, "content-length")
    if te:
        codings = [c.strip().lower() for c in ",".join(te).split(",")]
        if codings[-1] != "chunked":
            raise BadRequest("transfer-encoding %r" % te)
        while True:
            line = await reader.readuntil(b"\r\n")
            size_txt = line[:-2].split(b";", 1)[0].strip()
            try:
                size = int(size_txt, 16)
            except ValueError:
                raise BadRequest("bad chunk size %r" % line)
            if size == 0:
                while True:  # trailers up to the blank line
                    t = await reader.readuntil(b"\r\n")
                    if t == b"\r\n":
                        return "chunked"
            left = size
            while left:
                data = await reader.read(min(left, 1 << 20))
                if not data:
                    raise asyncio.IncompleteReadError(b"", left)
                sink(data)
                left -= len(data)
            if await reader.readexactly(2) != b"\r\n":
                raise BadRequest("chunk not followed by CRLF")
    if cl:
        if len(set(cl)) != 1 or not cl[0].isdigit():
            raise BadRequest("content-length %r" % cl)
        left = int(cl[0])
        while left:
            data = await reader.read(min(left, 1 << 20))
            if not data:
                raise asyncio.IncompleteReadError(b"", left)
            sink(data)
            left -= len(data)
        return "length"
    return "none"


def wants_close(version, headers):
    tokens = [t.strip().lower() for v in header_values(headers, "connection") for t in v.split(",")]
    if "close" in tokens:
        return True
    if version == "HTTP/1.0":
        return "keep-alive" not in tokens
    return False


def build_head(status, headers, version="HTTP/1.1"):
    lines = ["%s %d %s" % (version, status, REASONS.get(status, "Status"))]
    lines += ["%s: %s" % (k, v) for (k, v) in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


ROUTE_RE = re.compile(r"(?:^|/)(status/(\d{3})|delay|bytes|sink|close|reset|respond|echo)$")


class Connection:
    def __init__(self, name, reader, writer):
        self.name = name
        self.reader = reader
        self.writer = writer
        self.id = STATE.new_conn(name)
        self.nreq = 0

    async def run(self):
        try:
            while True:
                try:
                    raw = await self.reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return  # clean end (or a partial head) between requests
                except asyncio.LimitOverrunError:
                    await self.send_simple(431, b"head too large\n", close=True)
                    return
                if not await self.one_request(raw):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except BadRequest as e:
            sys.stderr.write("upstream %s conn %d: %s\n" % (self.name, self.id, e))
            try:
                await self.send_simple(400, (str(e) + "\n").encode(), close=True)
            except ConnectionError:
                pass
        finally:
            STATE.end_conn(self.name, self.id)
            try:
                self.writer.close()
            except Exception:
                pass

    async def one_request(self, raw):
        """Serve one request whose head is raw. Returns False when the connection must end."""
        self.nreq += 1
        STATE.seq += 1
        STATE.requests_total += 1
        try:
            method, target, version, headers = parse_head(raw)
        except BadRequest:
            STATE.records.append({"seq": STATE.seq, "listener": self.name, "conn": self.id,
                                  "conn_seq": self.nreq, "method": None, "target": None,
                                  "raw_head": raw.decode("latin-1"), "complete": False,
                                  "time": time.time()})
            raise
        rec = {
            "seq": STATE.seq, "listener": self.name, "conn": self.id, "conn_seq": self.nreq,
            "method": method, "target": target, "version": version, "headers": headers,
            "body_len": None, "body_sha256": None, "body_framing": None, "complete": False,
            "time": time.time(),
        }
        STATE.records.append(rec)
        h = hashlib.sha256()
        n = [0]

        def sink(data):
            h.update(data)
            n[0] += len(data)

        rec["body_framing"] = await read_body(self.reader, headers, sink)
        rec["body_len"] = n[0]
        rec["body_sha256"] = h.hexdigest()
        rec["complete"] = True

        path, _, query = target.partition("?")
        q = urllib.parse.parse_qs(query, keep_blank_values=True)
        forced = STATE.forced(self.name)
        if forced is not None:
            path = "/" + forced["route"]
            q.update(forced["query"])
            rec["forced"] = forced["route"]
            delay = q.pop("delay_ms", None)
            if delay:
                await asyncio.sleep(int(delay[0]) / 1000.0)
        m = ROUTE_RE.search(path)
        route = m.group(1) if m else "echo"
        close = wants_close(version, headers)
        is_head = method == "HEAD"
        echo = {
            "upstream": self.name, "conn": self.id, "conn_seq": self.nreq, "method": method,
            "target": target, "version": version, "headers": headers, "body_len": n[0],
            "body_sha256": rec["body_sha256"],
        }

        if route.startswith("status/"):
            status = int(m.group(2))
            body = b"" if (status < 200 or status in (204, 304)) else ("status %d\n" % status).encode()
            extra = [["ETag", '"v1"']] if status == 304 else []
            return await self.send_simple(status, body, close=close, head=is_head, extra=extra,
                                          no_length=status < 200 or status in (204, 304))
        if route == "delay":
            await asyncio.sleep(int(q.get("ms", ["0"])[0]) / 1000.0)
            return await self.send_json(echo, close=close, head=is_head)
        if route == "bytes":
            return await self.send_bytes(int(q.get("n", ["0"])[0]), q.get("chunked", ["0"])[0] == "1",
                                         close, is_head)
        if route == "sink":
            return await self.send_json({"length": n[0], "sha256": rec["body_sha256"]}, close=close,
                                        head=is_head)
        if route == "close":
            silent = q.get("silent", ["0"])[0] == "1"
            await self.send_json(echo, close=not silent, head=is_head)
            await self.writer.drain()
            return False
        if route == "reset":
            if q.get("partial", ["0"])[0] == "1":  # a few bytes of a head first: not a stale connection
                self.writer.write(b"HTTP/1.1 20")
                await self.writer.drain()
            if q.get("rst", ["0"])[0] == "1":
                sock = self.writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.writer.transport.abort()
            return False
        if route == "respond":
            status = int(q.get("status", ["200"])[0])
            extra = []
            for hv in q.get("h", []):
                k, _, v = hv.partition(":")
                extra.append([k.strip(), v.strip()])
            body = q.get("body", [""])[0].encode("latin-1")
            if q.get("chunked", ["0"])[0] == "1":
                return await self.send_chunked(status, [body] if body else [], extra, close, is_head)
            return await self.send_simple(status, body, close=close, head=is_head, extra=extra)
        return await self.send_json(echo, close=close, head=is_head)

    def base_headers(self, close):
        hs = [["X-Upstream", self.name], ["X-Upstream-Conn", str(self.id)]]
        if close:
            hs.append(["Connection", "close"])
        return hs

    async def send_simple(self, status, body, close=False, head=False, extra=(), no_length=False,
                          content_type="text/plain"):
        hs = self.base_headers(close) + list(extra)
        if not no_length:
            hs.append(["Content-Type", content_type])
            hs.append(["Content-Length", str(len(body))])
        self.writer.write(build_head(status, hs))
        if body and not head and not no_length:
            self.writer.write(body)
        await self.writer.drain()
        return not close

    async def send_json(self, obj, close=False, head=False):
        body = json.dumps(obj).encode()
        return await self.send_simple(200, body, close=close, head=head, content_type="application/json")

    async def send_bytes(self, n, chunked, close, head):
        hs = self.base_headers(close) + [["Content-Type", "application/octet-stream"]]
        if chunked:
            return await self.send_chunked(200, pattern_chunks(n, piece=65521),
                                           [["Content-Type", "application/octet-stream"]], close, head)
        hs.append(["Content-Length", str(n)])
        self.writer.write(build_head(200, hs))
        if not head:
            for mv in pattern_chunks(n):
                self.writer.write(mv)
                await self.writer.drain()
        await self.writer.drain()
        return not close

    async def send_chunked(self, status, pieces, extra, close, head):
        hs = self.base_headers(close) + list(extra) + [["Transfer-Encoding", "chunked"]]
        self.writer.write(build_head(status, hs))
        if not head:
            for mv in pieces:
                if len(mv):
                    self.writer.write(b"%x\r\n" % len(mv))
                    self.writer.write(mv)
                    self.writer.write(b"\r\n")
                    await self.writer.drain()
            self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()
        return not close


async def control_handler(reader, writer):
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
        method, target, _version, headers = parse_head(raw)
        cl = header_values(headers, "content-length")
        if cl:
            await reader.readexactly(int(cl[0]))
        if method == "GET" and target == "/records":
            obj = {"records": STATE.records}
        elif method == "GET" and target == "/stats":
            obj = STATE.stats()
        elif method == "POST" and target == "/clear":
            STATE.clear()
            obj = {"ok": True}
        elif method == "POST" and target.startswith("/mode?"):
            q = urllib.parse.parse_qs(target.partition("?")[2], keep_blank_values=True)
            name = q.pop("listener")[0]
            route = q.pop("route", [None])[0]
            count = q.pop("count", [None])[0]
            if route is None:
                STATE.modes.pop(name, None)
            else:
                STATE.modes[name] = {"route": route, "query": q,
                                     "count": int(count) if count is not None else None}
            obj = {"ok": True}
        else:
            writer.write(build_head(404, [["Content-Length", "0"], ["Connection", "close"]]))
            await writer.drain()
            return
        body = json.dumps(obj).encode()
        writer.write(build_head(200, [["Content-Type", "application/json"], ["Content-Length", str(len(body))],
                                      ["Connection", "close"]]))
        writer.write(body)
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, BadRequest):
        pass
    finally:
        writer.close()


def split_hostport(s):
    host, _, port = s.rpartition(":")
    return host or "127.0.0.1", int(port)


async def watch_stdin_eof():
    """Exit when the parent (which holds our stdin pipe) goes away."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    os._exit(0)


async def main_async(args):
    servers = []
    ports = {}
    for spec in args.listen:
        name, _, addr = spec.partition("=")
        host, port = split_hostport(addr)

        def factory(name=name):
            async def on_conn(reader, writer):
                await Connection(name, reader, writer).run()
            return on_conn

        srv = await asyncio.start_server(factory(), host, port, limit=HEAD_LIMIT, backlog=1024,
                                         reuse_address=True)
        ports[name] = srv.sockets[0].getsockname()[1]
        servers.append(srv)
    chost, cport = split_hostport(args.control)
    csrv = await asyncio.start_server(control_handler, chost, cport, limit=HEAD_LIMIT)
    servers.append(csrv)
    sys.stdout.write(json.dumps({"listeners": ports, "control": csrv.sockets[0].getsockname()[1],
                                 "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    if args.exit_on_stdin_eof:
        asyncio.ensure_future(watch_stdin_eof())
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv=None):
    p = argparse.ArgumentParser(prog="upstream", description="HTTP/1.1 test upstream for bgw-proxy tests")
    p.add_argument("--listen", action="append", default=[],
                   help="NAME=HOST:PORT of a data listener (repeatable; port 0 picks a free one)")
    p.add_argument("--control", default="127.0.0.1:0", help="HOST:PORT of the control listener")
    p.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin reaches end of file")
    args = p.parse_args(argv)
    if not args.listen:
        args.listen = ["upstream=127.0.0.1:0"]
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
