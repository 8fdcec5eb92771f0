"""A stand-in proxy for the config stream (stdlib only): one plaintext HTTP/2 connection (prior knowledge) to
bgw-control's xDS listener carrying one bgw.v1.ConfigDiscovery/StreamConfig call, enough for tests to make
a node appear in GET /v1/dataplanes and to ACK or NACK what it is sent.

HTTP/2 is reduced to what a client needs here: the preface, SETTINGS (and their ACK), PING answers,
WINDOW_UPDATE to keep the server sending, HEADERS with HPACK literals (never indexed, no Huffman), DATA.
Response headers are not decoded: only the DATA of stream 1 is read, as gRPC messages. Protobuf is reduced to
the string fields of DiscoveryRequest and the version_info / nonce of DiscoveryResponse.
"""

import socket
import struct
import threading
import time

_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _PING, _GOAWAY, _WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
_END_STREAM, _END_HEADERS, _ACK = 0x1, 0x4, 0x1
_PATH = "/bgw.v1.ConfigDiscovery/StreamConfig"


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def encode_request(node_id, version_info="", response_nonce="", error_detail=""):
    """DiscoveryRequest with its string fields (empty ones left out)."""
    out = b""
    for (num, value) in ((1, node_id), (2, version_info), (3, response_nonce), (4, error_detail)):
        if value:
            data = value.encode()
            out += _varint(num << 3 | 2) + _varint(len(data)) + data
    return out


def decode_response(buf):
    """{"version_info", "nonce"} of a DiscoveryResponse (other fields skipped)."""
    out = {"version_info": "", "nonce": ""}
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            _, i = _read_varint(buf, i)
        elif wt == 2:
            n, i = _read_varint(buf, i)
            if num == 1:
                out["version_info"] = buf[i:i + n].decode()
            elif num == 2:
                out["nonce"] = buf[i:i + n].decode()
            i += n
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
    return out


def _hpack_int(n, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if n < limit:
        return bytes([first | n])
    out = bytearray([first | limit])
    n -= limit
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _hpack_literal(name, value):
    """A header field as 'literal without indexing, new name', no Huffman."""
    n, v = name.encode(), value.encode()
    return b"\x00" + _hpack_int(len(n), 7) + n + _hpack_int(len(v), 7) + v


class StreamClient:
    """One StreamConfig call as node_id to 127.0.0.1:port."""

    def __init__(self, port, node_id, timeout=10.0):
        self.node_id = node_id
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.grpc_buf = b""
        self.closed = False
        headers = b"".join(_hpack_literal(k, v) for (k, v) in (
            (":method", "POST"), (":scheme", "http"), (":path", _PATH), (":authority", "127.0.0.1:%d" % port),
            ("content-type", "application/grpc"), ("te", "trailers")))
        self.sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + self._frame(_SETTINGS, 0, 0, b"")
                          + self._frame(_WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 24))
                          + self._frame(_HEADERS, _END_HEADERS, 1, headers))

    @staticmethod
    def _frame(ftype, flags, stream, payload):
        return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload

    def send(self, version_info="", response_nonce="", error_detail=""):
        msg = encode_request(self.node_id, version_info, response_nonce, error_detail)
        self.sock.sendall(self._frame(_DATA, 0, 1, b"\x00" + struct.pack(">I", len(msg)) + msg))

    def _read_frame(self):
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the config stream was closed")
            self.buf += chunk
        n = int.from_bytes(self.buf[:3], "big")
        ftype, flags = self.buf[3], self.buf[4]
        stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
        payload = self.buf[9:9 + n]
        self.buf = self.buf[9 + n:]
        return ftype, flags, stream, payload

    def receive(self, forever=False):
        """The next DiscoveryResponse ({"version_info", "nonce"}); TimeoutError after the client's timeout
        unless forever."""
        deadline = time.monotonic() + self.timeout
        while True:
            if len(self.grpc_buf) >= 5:
                n = struct.unpack(">I", self.grpc_buf[1:5])[0]
                if len(self.grpc_buf) >= 5 + n:
                    msg = self.grpc_buf[5:5 + n]
                    self.grpc_buf = self.grpc_buf[5 + n:]
                    return decode_response(msg)
            if not forever and time.monotonic() > deadline:
                raise TimeoutError("no DiscoveryResponse within %.0fs" % self.timeout)
            ftype, flags, stream, payload = self._read_frame()
            if ftype == _SETTINGS and not flags & _ACK:
                self.sock.sendall(self._frame(_SETTINGS, _ACK, 0, b""))
            elif ftype == _PING and not flags & _ACK:
                self.sock.sendall(self._frame(_PING, _ACK, 0, payload))
            elif ftype == _DATA and stream == 1:
                if payload:
                    pad = payload[0] if flags & 0x8 else 0
                    data = payload[1:len(payload) - pad] if flags & 0x8 else payload
                    self.grpc_buf += data
                    inc = struct.pack(">I", len(payload))
                    self.sock.sendall(self._frame(_WINDOW_UPDATE, 0, 0, inc) + self._frame(_WINDOW_UPDATE, 0, 1, inc))
            elif ftype in (_RST_STREAM, _GOAWAY):
                raise ConnectionError("the server ended the stream (frame type %d)" % ftype)

    def answer_all(self, error_detail=""):
        """Answer every response, now and later, in a thread of its own, as a proxy would: an ACK (the
        response's version becomes the accepted one) or, with error_detail, a NACK keeping the last accepted
        version. Ends when the stream does."""
        self.sock.settimeout(None)      # close() wakes the thread up (shutdown)

        def loop():
            accepted = ""
            while not self.closed:
                try:
                    r = self.receive(forever=True)
                    if error_detail:
                        self.send(accepted, r["nonce"], error_detail)
                    else:
                        accepted = r["version_info"]
                        self.send(accepted, r["nonce"])
                except (OSError, ConnectionError, ValueError):
                    return
        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()
        return self

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                self.sock.close()
            except OSError:
                pass
