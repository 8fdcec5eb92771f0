"""Helpers for the config stream tests (Debian's python3-grpcio and python3-protobuf).

- messages(): the bgw.v1 message classes, generated from proto/bgw/v1/*.proto with protoc into a temporary
  directory at test time (generated code is never committed); no generated service stubs are needed.
- config_message(doc): a config document (dict) as a bgw.v1.Config.
- StreamClient: a grpcio client of the config stream (what a proxy does, driven by hand).
- FakeControlPlane: a grpcio server of the config stream with a generic handler, to drive a real bgw-proxy:
  push a version to every open stream, see every request, drop streams, stop and restart on the same port.
"""

import atexit
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent import futures

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
METHOD = "/bgw.v1.ConfigDiscovery/StreamConfig"

_gen = None


def messages():
    """(config_pb2, discovery_pb2), generated once per process."""
    global _gen
    if _gen is None:
        out = tempfile.mkdtemp(prefix="bgw-pb-")
        atexit.register(shutil.rmtree, out, True)
        subprocess.run(["protoc", "-I" + PROTO_DIR, "--python_out=" + out, "bgw/v1/config.proto",
                        "bgw/v1/discovery.proto"], check=True)
        sys.path.insert(0, out)
        from bgw.v1 import config_pb2, discovery_pb2  # noqa: E402
        _gen = (config_pb2, discovery_pb2)
    return _gen


def config_message(doc):
    """A config document as bgw.v1.Config: field names are the document's keys; endpoints written as strings
    become healthy Endpoint messages, and "jwks" travels as JSON text."""
    from google.protobuf import json_format
    config_pb2, _ = messages()
    d = json.loads(json.dumps(doc))
    for s in d.get("services", []):
        s["endpoints"] = [{"address": e, "healthy": True} if isinstance(e, str) else e for e in s.get("endpoints", [])]
    for a in d.get("auth_policies", []):
        if "jwks" in a and not isinstance(a["jwks"], str):
            a["jwks"] = json.dumps(a["jwks"])
    d.pop("version", None)
    return json_format.ParseDict(d, config_pb2.Config(), ignore_unknown_fields=False)


# Keepalive: bgw-proxy pings every 10 s; a server must accept that.
SERVER_OPTIONS = [
    ("grpc.http2.min_ping_interval_without_data_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 0),
]


class StreamClient:
    """One config stream to target, opened by a Python grpcio client."""

    def __init__(self, target, node_id, version=""):
        _, d = messages()
        self.d = d
        self.node_id = node_id
        self.channel = grpc.insecure_channel(target)
        self.out = queue.Queue()
        call = self.channel.stream_stream(METHOD, request_serializer=d.DiscoveryRequest.SerializeToString,
                                          response_deserializer=d.DiscoveryResponse.FromString)
        self.responses = call(iter(self.out.get, None))
        self.send(version=version)

    def send(self, version="", nonce="", error=""):
        self.out.put(self.d.DiscoveryRequest(node_id=self.node_id, version_info=version, response_nonce=nonce,
                                             error_detail=error))

    def next(self, timeout=10.0):
        """The next response (a DiscoveryResponse) within timeout seconds."""
        box = queue.Queue()

        def get():
            try:
                box.put(next(self.responses))
            except Exception as e:  # end of stream or error
                box.put(e)
        threading.Thread(target=get, daemon=True).start()
        r = box.get(timeout=timeout)
        if isinstance(r, Exception):
            raise r
        return r

    def ack(self, resp):
        self.send(version=resp.version_info, nonce=resp.nonce)

    def nack(self, resp, version, reason):
        self.send(version=version, nonce=resp.nonce, error=reason)

    def close(self):
        self.out.put(None)
        self.responses.cancel()
        self.channel.close()


class _Stream:
    def __init__(self, ident):
        self.ident = ident
        self.out = queue.Queue()
        self.requests = []
        self.done = threading.Event()


class FakeControlPlane:
    """A grpcio server of the config stream on 127.0.0.1 (port 0, or the given one).

    push(version, doc) sends DiscoveryResponse(version, nonce, Config) to every open stream and to streams
    opened later whose first request does not already carry that version. Every request received is kept
    as (stream id, DiscoveryRequest) in self.requests, in order."""

    def __init__(self, port=0):
        self.config_pb2, self.d = messages()
        self.lock = threading.Condition()
        self.streams = {}
        self.requests = []
        self.next_id = 0
        self.nonce = 0
        self.current = None     # (version, Config)
        self.port = port
        self.server = None

    def start(self):
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=SERVER_OPTIONS)
        self.server.add_generic_rpc_handlers((_Handler(self),))
        self.port = self.server.add_insecure_port("127.0.0.1:%d" % self.port)
        self.server.start()
        return self

    def stop(self):
        """Stop the server: every stream ends (the proxies see UNAVAILABLE)."""
        with self.lock:
            for s in self.streams.values():
                s.out.put(None)
        self.server.stop(0).wait()
        with self.lock:
            self.streams.clear()
            self.lock.notify_all()

    def address(self):
        return "127.0.0.1:%d" % self.port

    def _response(self, version, cfg):
        self.nonce += 1
        return self.d.DiscoveryResponse(version_info=version, nonce="n%d" % self.nonce, config=cfg)

    def push(self, version, doc=None, config=None):
        """Send (version, doc) to every open stream; returns {stream id: nonce}."""
        cfg = config if config is not None else config_message(doc)
        sent = {}
        with self.lock:
            self.current = (version, cfg)
            for s in self.streams.values():
                r = self._response(version, cfg)
                sent[s.ident] = r.nonce
                s.out.put(r)
        return sent

    def drop(self):
        """End every open stream with UNAVAILABLE (the server keeps running)."""
        with self.lock:
            for s in self.streams.values():
                s.out.put(grpc.StatusCode.UNAVAILABLE)

    def open_streams(self):
        with self.lock:
            return sorted(self.streams)

    def wait_request(self, pred, timeout=10.0, start=0):
        """The first (stream id, request) from index start on with pred(stream id, request) true."""
        import time
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for (sid, req) in self.requests[start:]:
                    if pred(sid, req):
                        return sid, req
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no matching request within %.1fs; got %r" % (timeout, self.requests))
                self.lock.wait(left)

    # -- the handler's side

    def _serve(self, request_iterator, context):
        context.send_initial_metadata(())
        with self.lock:
            self.next_id += 1
            s = _Stream(self.next_id)
            self.streams[s.ident] = s

        def reader():
            try:
                first = True
                for req in request_iterator:
                    with self.lock:
                        s.requests.append(req)
                        self.requests.append((s.ident, req))
                        if first and self.current and req.version_info != self.current[0]:
                            s.out.put(self._response(*self.current))
                        first = False
                        self.lock.notify_all()
            except Exception:
                pass   # the stream ended or was cancelled
            s.out.put(None)

        threading.Thread(target=reader, daemon=True).start()
        try:
            while True:
                item = s.out.get()
                if item is None:
                    return
                if isinstance(item, grpc.StatusCode):
                    context.abort(item, "dropped by the test")
                yield item
        finally:
            with self.lock:
                self.streams.pop(s.ident, None)
                self.lock.notify_all()


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, cp):
        self.cp = cp

    def service(self, details):
        if details.method != METHOD:
            return None
        return grpc.stream_stream_rpc_method_handler(
            self.cp._serve, request_deserializer=self.cp.d.DiscoveryRequest.FromString,
            response_serializer=self.cp.d.DiscoveryResponse.SerializeToString)
