"""A Kubernetes API server simulator (Python standard library only), faithful on the wire for what
bgw-control uses: Services, EndpointSlices and ConfigMaps, list with limit/continue pagination and
resourceVersion, watch as a chunked stream of JSON events with bookmarks and timeoutSeconds, 410 Gone after
compaction, bearer-token authentication (HTTP or HTTPS), discovery documents and /version so that the real
kubectl and client libraries talk to it.

Tests drive it in-process:

    sim = ApiSim(token="t0k").start()         # sim.url, sim.kubeconfig(path)
    sim.apply(service("shop", "orders", [("http", 80, 8080)]))
    sim.apply(endpointslice("shop", "orders-a", "orders", [("127.0.0.2", True)], [("http", 8080)]))
    sim.delete("endpointslices", "shop", "orders-a")
    sim.compact()                              # history before now is gone: old RVs get 410
    sim.drop_watches()                         # every open watch ends (the client rewatches)
    sim.expire_watches()                       # every open watch gets an ERROR 410 event (the client relists)
    sim.fail(500, count=5) / sim.fail(429, seconds=1.0)
    sim.split_chunks = True                    # event JSON split across chunks, several events per chunk
    sim.stop()

Run as a script (python3 k8s_sim.py --port 0 --token T) it serves until stdin closes and prints its URL;
POST /_sim/{apply,delete,compact,drop_watches,expire_watches,fail} with a JSON body drive it then.
"""

import base64
import bisect
import copy
import http.server
import json
import os
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse

RESOURCES = {
    # plural: (group path prefix, group/version, kind, namespaced)
    "services": ("/api/v1", "v1", "Service"),
    "endpointslices": ("/apis/discovery.k8s.io/v1", "discovery.k8s.io/v1", "EndpointSlice"),
    "configmaps": ("/api/v1", "v1", "ConfigMap"),
    "namespaces": ("/api/v1", "v1", "Namespace"),
}

SHORT_NAMES = {"services": ["svc"], "configmaps": ["cm"], "namespaces": ["ns"]}


def _now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def service(ns, name, ports=(("http", 80, 8080),), labels=None):
    """A Service object; ports as (name, port, targetPort) where targetPort is a number or a name."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"namespace": ns, "name": name, "labels": labels or {}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10",
                     "ports": [{"name": n, "port": p, "targetPort": t, "protocol": "TCP"} for (n, p, t) in ports]}}


def endpoint(ip, ready=True, terminating=None, serving=None, node="node-1"):
    """One EndpointSlice endpoint; ready=None leaves the condition out (it then means ready)."""
    cond = {}
    if ready is not None:
        cond["ready"] = ready
    if serving is not None:
        cond["serving"] = serving
    if terminating is not None:
        cond["terminating"] = terminating
    return {"addresses": [ip], "conditions": cond, "nodeName": node,
            "targetRef": {"kind": "Pod", "name": "pod-" + ip.replace(".", "-").replace(":", "-")}}


def endpointslice(ns, name, svc, endpoints, ports=(("http", 8080),), address_type="IPv4"):
    """An EndpointSlice of Service svc. endpoints: endpoint() dicts or (ip, ready) pairs (None → "endpoints":
    null as the API server sends for an empty slice); ports as (name, port)."""
    eps = None
    if endpoints is not None:
        eps = [e if isinstance(e, dict) else endpoint(e[0], e[1]) for e in endpoints]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"namespace": ns, "name": name,
                         "labels": {"kubernetes.io/service-name": svc,
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "addressType": address_type,
            "endpoints": eps,
            "ports": [{"name": n, "port": p, "protocol": "TCP"} for (n, p) in ports]}


def configmap(ns, name, data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": ns, "name": name}, "data": data}


def status(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
         "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


def make_tls(d):
    """A CA and a server certificate for 127.0.0.1 made with the openssl CLI in directory d.
    Returns (ca_file, cert_file, key_file)."""
    import subprocess

    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", "/CN=sim-ca", "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=kube-apiserver",
        "-keyout", "server.key", "-out", "server.csr")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "server.ext", "-out", "server.pem")
    return tuple(os.path.join(d, n) for n in ("ca.pem", "server.pem", "server.key"))


def make_client_cert(d, name="bgw-control"):
    """A client certificate (CN=name) signed by the CA make_tls() made in d. Returns (cert_file, key_file)."""
    import subprocess

    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=" + name,
        "-keyout", name + ".key", "-out", name + ".csr")
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    run("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", name + ".ext", "-out", name + ".pem")
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


class _Gone(Exception):
    pass


class ApiSim:
    """The simulated API server. All methods are thread-safe."""

    def __init__(self, token="sim-token", tls=None, bookmark_interval=1.0, host="127.0.0.1", port=0,
                 client_ca=None):
        self.token = token
        self.tls = tls                   # (certfile, keyfile) → HTTPS
        self.client_ca = client_ca       # with tls: a client certificate signed by this CA also authenticates
        self.bookmark_interval = bookmark_interval
        self.split_chunks = False
        self.watch_gone_http = False     # too-old RV on watch: HTTP 410 instead of 200 + ERROR event
        self.watch_timeout_cap = None    # seconds: end every watch this early, as a server-side timeout
        self.compact_after_page = False  # one-shot: compact right after serving a page that has a continue
        self.host, self._port = host, port
        self.cond = threading.Condition()
        self.rv = 1
        self.objects = {}                # (resource, ns, name) → object
        self.history_rvs = []            # parallel lists: rv, (type, resource, object)
        self.history = []
        self.compacted_rv = 0            # events with rv <= this are gone
        self.watch_epoch = 0             # drop_watches() bumps it
        self.expire_epoch = 0            # expire_watches() bumps it
        self.fail_code = None
        self.fail_count = 0
        self.fail_until = 0.0
        self.requests = []               # (method, path) of every API request, for assertions
        self.open_watches = 0
        self.snapshots = {}              # rv → {resource: sorted keys} kept for continue tokens
        self.server = None

    # -- lifecycle

    def start(self):
        sim = self

        class Handler(_Handler):
            pass
        Handler.sim = sim
        self.server = _Server((self.host, self._port), Handler)
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.tls[0], self.tls[1])
            if self.client_ca:
                ctx.load_verify_locations(self.client_ca)
                ctx.verify_mode = ssl.CERT_OPTIONAL
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server:
            with self.cond:
                self.watch_epoch += 1
                self.cond.notify_all()
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def port(self):
        return self.server.server_address[1]

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def kubeconfig(self, path, token=None, ca_file=None, namespace="default", client_cert=None, client_key=None):
        """Write a kubeconfig (YAML) for this server and return path."""
        lines = ["apiVersion: v1", "kind: Config", "current-context: sim",
                 "clusters:", "- name: sim-cluster", "  cluster:", "    server: " + self.url]
        if ca_file:
            with open(ca_file, "rb") as f:
                lines.append("    certificate-authority-data: " + base64.b64encode(f.read()).decode())
        lines += ["contexts:", "- name: other", "  context:", "    cluster: nowhere", "    user: nobody",
                  "- name: sim", "  context:", "    cluster: sim-cluster", "    user: sim-user",
                  "    namespace: " + namespace,
                  "users:", "- name: nobody", "  user:", "    token: wrong",
                  "- name: sim-user", "  user:"]
        if client_cert:
            for field, fn in (("client-certificate-data", client_cert), ("client-key-data", client_key)):
                with open(fn, "rb") as f:
                    lines.append("    %s: %s" % (field, base64.b64encode(f.read()).decode()))
        else:
            lines.append("    token: " + (token if token is not None else self.token))
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    # -- control API

    def _record(self, typ, resource, obj):
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.history_rvs.append(self.rv)
        self.history.append((typ, resource, copy.deepcopy(obj)))
        self.cond.notify_all()

    def apply(self, obj, resource=None):
        """Create or replace an object (ADDED or MODIFIED event). Returns its new resourceVersion."""
        resource = resource or _resource_of(obj)
        obj = copy.deepcopy(obj)
        md = obj["metadata"]
        key = (resource, md.get("namespace", ""), md["name"])
        with self.cond:
            old = self.objects.get(key)
            md.setdefault("uid", "uid-%s-%s-%s" % key)
            md.setdefault("creationTimestamp", old["metadata"]["creationTimestamp"] if old else _now_rfc3339())
            if old:
                md["uid"] = old["metadata"]["uid"]
            md.setdefault("generation", 1)
            self._record("MODIFIED" if old else "ADDED", resource, obj)
            self.objects[key] = obj
            return md["resourceVersion"]

    def delete(self, resource, ns, name):
        """Delete an object (DELETED event carrying its last state). False when there was none."""
        with self.cond:
            obj = self.objects.pop((resource, ns, name), None)
            if obj is None:
                return False
            self._record("DELETED", resource, obj)
            return True

    def get(self, resource, ns, name):
        with self.cond:
            o = self.objects.get((resource, ns, name))
            return copy.deepcopy(o) if o else None

    def compact(self):
        """Forget the history up to now: lists and watches from an older resourceVersion get 410 Gone."""
        with self.cond:
            self.compacted_rv = self.rv
            self.history_rvs, self.history = [], []
            self.snapshots.clear()
            self.cond.notify_all()

    def drop_watches(self):
        """End every open watch stream cleanly (as an API server restart or load balancer would)."""
        with self.cond:
            self.watch_epoch += 1
            self.cond.notify_all()

    def expire_watches(self):
        """Send every open watch an ERROR event with a 410 Status, then end it."""
        with self.cond:
            self.expire_epoch += 1
            self.cond.notify_all()

    def fail(self, code, count=0, seconds=0.0):
        """Answer the next count API requests, or all for seconds, with code (500, 429 with Retry-After...)."""
        with self.cond:
            self.fail_code = code
            self.fail_count = count
            self.fail_until = time.monotonic() + seconds if seconds else 0.0

    def heal(self):
        self.fail(None)

    def _should_fail(self):
        with self.cond:
            if self.fail_code is None:
                return None
            if self.fail_count > 0:
                self.fail_count -= 1
                return self.fail_code
            if self.fail_until and time.monotonic() < self.fail_until:
                return self.fail_code
            self.fail_code = None
            return None

    def watch_count(self):
        with self.cond:
            return self.open_watches

    # -- reads used by the handler

    def list(self, resource, ns, selector, limit, cont, rv_param, rv_match):
        with self.cond:
            if cont:
                try:
                    tok = json.loads(base64.urlsafe_b64decode(cont.encode()))
                    list_rv, start = int(tok["rv"]), tok["start"]
                except Exception:
                    raise ValueError("invalid continue token")
                snap = self.snapshots.get((list_rv, resource, ns, selector))
                if snap is None or list_rv < self.compacted_rv:
                    raise _Gone("The provided continue parameter is too old to display a consistent list "
                                "result. You can start a new list without the continue parameter.")
            else:
                if rv_param and rv_match == "Exact" and int(rv_param) < self.compacted_rv:
                    raise _Gone("too old resource version: %s (%d)" % (rv_param, self.compacted_rv))
                list_rv = self.rv
                keys = sorted(k for k in self.objects
                              if k[0] == resource and (not ns or k[1] == ns)
                              and _matches(self.objects[k], selector))
                snap = [copy.deepcopy(self.objects[k]) for k in keys]
                start = 0
                if limit:
                    self.snapshots[(list_rv, resource, ns, selector)] = snap
            items = snap[start:start + limit] if limit else snap
            meta = {"resourceVersion": str(list_rv)}
            rest = len(snap) - (start + len(items))
            if limit and rest > 0:
                meta["continue"] = base64.urlsafe_b64encode(
                    json.dumps({"rv": list_rv, "start": start + len(items)}).encode()).decode()
                meta["remainingItemCount"] = rest
                if self.compact_after_page:
                    self.compact_after_page = False
                    self.snapshots.clear()                # this list's snapshot is gone: its continue is stale
            out = []
            for o in items:
                o = copy.deepcopy(o)
                o.pop("kind", None)
                o.pop("apiVersion", None)
                out.append(o)
            return meta, out


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # clients hanging up on a watch (what they do on stop) are not errors worth a traceback
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def _resource_of(obj):
    kind = obj.get("kind")
    for r, (_, _, k) in RESOURCES.items():
        if k == kind:
            return r
    raise ValueError("unknown kind %r" % kind)


def _parse_bool(s):
    """Go's strconv.ParseBool truth values, as the API server reads query flags."""
    return (s or "") in ("1", "t", "T", "true", "TRUE", "True")


def _parse_selector(s):
    out = []
    for part in filter(None, (s or "").split(",")):
        if "!=" in part:
            k, v = part.split("!=", 1)
            out.append((k.strip(), "!=", v.strip()))
        elif "=" in part:
            k, v = part.split("=", 1)
            out.append((k.strip(), "=", v.strip().lstrip("=")))
        else:
            out.append((part.strip(), "exists", None))
    return tuple(out)


def _matches(obj, selector):
    labels_sel, fields_sel = selector
    labels = obj["metadata"].get("labels") or {}
    for k, op, v in labels_sel:
        if op == "=" and labels.get(k) != v:
            return False
        if op == "!=" and labels.get(k) == v:
            return False
        if op == "exists" and k not in labels:
            return False
    for k, op, v in fields_sel:
        got = {"metadata.name": obj["metadata"]["name"],
               "metadata.namespace": obj["metadata"].get("namespace", "")}.get(k)
        if (op == "=" and got != v) or (op == "!=" and got == v):
            return False
    return True


def _discovery_resources(group_prefix):
    out = []
    for r, (prefix, gv, kind) in RESOURCES.items():
        if prefix != group_prefix:
            continue
        verbs = ["get", "list", "watch"]
        if r == "configmaps":
            verbs += ["create", "update", "delete"]
        out.append({"name": r, "singularName": kind.lower(), "namespaced": r != "namespaces", "kind": kind,
                    "verbs": verbs, "shortNames": SHORT_NAMES.get(r, [])})
    return out


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True      # headers and body are separate writes: no 40 ms delayed-ACK stalls
    sim = None

    def log_message(self, *a):
        pass

    # -- replies

    def send_json(self, code, obj, extra=()):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_status(self, code, reason, message, extra=()):
        self.send_json(code, status(code, reason, message), extra)

    def read_body(self):
        """The request body (read once; later calls return the same bytes)."""
        if getattr(self, "_body", None) is None:
            n = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(n) if n else b""
        return self._body

    def reject(self, code, reason, message, extra=()):
        """An error answer that first consumes the request body, as an API server does: the connection stays
        usable for the client's next request."""
        self.read_body()
        return self.send_status(code, reason, message, extra)

    # -- dispatch

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def handle_any(self, method):
        sim = self.sim
        self._body = None           # one handler serves every request of a keep-alive connection
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        path = u.path.rstrip("/") or "/"
        if path.startswith("/_sim/"):
            return self.control(path[len("/_sim/"):])
        with sim.cond:
            sim.requests.append((method, self.path))
        peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        if self.headers.get("Authorization", "") != "Bearer " + sim.token and not peer:
            return self.reject(401, "Unauthorized", "Unauthorized")
        code = sim._should_fail()
        if code:
            extra = [("Retry-After", "1")] if code == 429 else []
            reason = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}.get(code, "Unknown")
            return self.reject(code, reason, "simulated failure", extra)
        if path == "/version":
            return self.send_json(200, {"major": "1", "minor": "29", "gitVersion": "v1.29.0-bgwsim",
                                        "gitCommit": "0" * 40, "gitTreeState": "clean",
                                        "buildDate": "2024-01-01T00:00:00Z", "goVersion": "go1.21",
                                        "compiler": "gc", "platform": "linux/amd64"})
        if path == "/api":
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                        "serverAddress": "127.0.0.1"}]})
        if path == "/apis":
            gv = {"groupVersion": "discovery.k8s.io/v1", "version": "v1"}
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": "discovery.k8s.io", "versions": [gv], "preferredVersion": gv}]})
        if path == "/api/v1":
            return self.send_json(200, {"kind": "APIResourceList", "groupVersion": "v1",
                                        "resources": _discovery_resources("/api/v1")})
        if path == "/apis/discovery.k8s.io/v1":
            return self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                        "groupVersion": "discovery.k8s.io/v1",
                                        "resources": _discovery_resources("/apis/discovery.k8s.io/v1")})
        route = self.route(path)
        if route is None:
            return self.send_status(404, "NotFound", "the server could not find the requested resource")
        resource, ns, name = route
        try:
            if method == "GET" and name is None:
                if _parse_bool(q.get("watch")):
                    return self.watch(resource, ns, q)
                return self.list(resource, ns, q)
            if method == "GET":
                o = sim.get(resource, ns, name)
                if o is None:
                    return self.send_status(404, "NotFound", '%s "%s" not found' % (resource, name))
                return self.send_json(200, o)
            if resource != "configmaps":
                return self.send_status(405, "MethodNotAllowed", "the server does not allow this method")
            return self.write_configmap(method, ns, name)
        except _Gone as e:
            return self.send_status(410, "Expired", str(e))
        except ValueError as e:
            return self.send_status(400, "BadRequest", str(e))

    def route(self, path):
        for r, (prefix, _, _) in RESOURCES.items():
            if not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1:].split("/")
            if rest == [r]:
                return r, "", None
            if len(rest) == 2 and rest[0] == r:
                return r, "", rest[1]
            if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == r:
                if len(rest) == 3:
                    return r, rest[1], None
                if len(rest) == 4:
                    return r, rest[1], rest[3]
        return None

    def list(self, resource, ns, q):
        limit = int(q.get("limit") or 0)
        sel = (_parse_selector(q.get("labelSelector")), _parse_selector(q.get("fieldSelector")))
        meta, items = self.sim.list(resource, ns, sel, limit, q.get("continue"), q.get("resourceVersion"),
                                    q.get("resourceVersionMatch"))
        _, gv, kind = RESOURCES[resource]
        self.send_json(200, {"kind": kind + "List", "apiVersion": gv, "metadata": meta, "items": items})

    # -- watch

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, resource, ns, q):
        sim = self.sim
        sel = (_parse_selector(q.get("labelSelector")), _parse_selector(q.get("fieldSelector")))
        bookmarks = _parse_bool(q.get("allowWatchBookmarks"))
        timeout = float(q.get("timeoutSeconds") or 1800)
        if sim.watch_timeout_cap is not None:
            timeout = min(timeout, sim.watch_timeout_cap)
        deadline = time.monotonic() + timeout
        rv_param = q.get("resourceVersion") or ""
        with sim.cond:
            if rv_param in ("", "0"):
                # from "now": the current state as ADDED events first, as the API server does
                since = sim.rv
                initial = [("ADDED", copy.deepcopy(o)) for k, o in sorted(sim.objects.items())
                           if k[0] == resource and (not ns or k[1] == ns) and _matches(o, sel)]
            else:
                since = int(rv_param)
                initial = []
            gone = since < sim.compacted_rv
            epoch, expire = sim.watch_epoch, sim.expire_epoch
        if gone and sim.watch_gone_http:
            return self.send_status(410, "Expired", "too old resource version: %d (%d)" % (since, sim.compacted_rv))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pending = b""

        def emit(ev, flush=True):
            nonlocal pending
            data = json.dumps(ev).encode() + b"\n"
            if sim.split_chunks:
                # a split point inside the object, and events glued together across chunks
                pending += data
                cut = max(1, len(pending) // 2 - 7)
                if flush:
                    self.write_chunk(pending[:cut])
                    self.write_chunk(pending[cut:])
                    pending = b""
            else:
                self.write_chunk(data)

        with sim.cond:
            sim.open_watches += 1
        try:
            if gone:
                emit({"type": "ERROR", "object": status(410, "Expired", "too old resource version: %d (%d)"
                                                          % (since, sim.compacted_rv))})
                return self.end_stream()
            for i, (typ, o) in enumerate(initial):
                emit({"type": typ, "object": o}, flush=(i == len(initial) - 1))
            last_bookmark = time.monotonic()
            while True:
                with sim.cond:
                    while True:
                        now = time.monotonic()
                        if sim.watch_epoch != epoch or now >= deadline or sim.server is None:
                            return self.end_stream()
                        if sim.expire_epoch != expire or since < sim.compacted_rv and \
                                (not sim.history_rvs or sim.history_rvs[0] > since + 1):
                            expired = True
                            break
                        i = bisect.bisect_right(sim.history_rvs, since)
                        if i < len(sim.history_rvs):
                            expired = False
                            break
                        if bookmarks and now - last_bookmark >= sim.bookmark_interval:
                            expired = False
                            break
                        sim.cond.wait(min(deadline - now, max(0.01, sim.bookmark_interval - (now - last_bookmark)))
                                      if bookmarks else deadline - now)
                    events = []
                    if not expired:
                        for rv, (typ, res, o) in zip(sim.history_rvs[i:], sim.history[i:]):
                            since = rv
                            if res == resource and (not ns or o["metadata"].get("namespace") == ns) \
                                    and _matches(o, sel):
                                events.append({"type": typ, "object": copy.deepcopy(o)})
                        cur_rv = sim.rv
                if expired:
                    emit({"type": "ERROR", "object": status(410, "Expired", "too old resource version: %d (%d)"
                                                              % (since, sim.compacted_rv))})
                    return self.end_stream()
                for j, ev in enumerate(events):
                    emit(ev, flush=(j == len(events) - 1))
                if bookmarks and (time.monotonic() - last_bookmark >= sim.bookmark_interval):
                    _, gv, kind = RESOURCES[resource]
                    emit({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": gv,
                                                         "metadata": {"resourceVersion": str(cur_rv)}}})
                    since = max(since, cur_rv)
                    last_bookmark = time.monotonic()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            with sim.cond:
                sim.open_watches -= 1

    def end_stream(self):
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    # -- configmaps

    def write_configmap(self, method, ns, name):
        sim = self.sim
        if method == "DELETE":
            if not sim.delete("configmaps", ns, name):
                return self.send_status(404, "NotFound", 'configmaps "%s" not found' % name)
            return self.send_json(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
        try:
            obj = json.loads(self.read_body() or b"{}")
        except ValueError:
            return self.send_status(400, "BadRequest", "invalid JSON body")
        md = obj.setdefault("metadata", {})
        md["namespace"] = ns
        obj["kind"], obj["apiVersion"] = "ConfigMap", "v1"
        with sim.cond:
            if method == "POST":
                if name is not None:
                    return self.send_status(405, "MethodNotAllowed", "POST to a collection only")
                name = md.get("name")
                if not name:
                    return self.send_status(422, "Invalid", "metadata.name: Required value")
                if ("configmaps", ns, name) in sim.objects:
                    return self.send_status(409, "AlreadyExists", 'configmaps "%s" already exists' % name)
                md.pop("resourceVersion", None)
                sim.apply(obj, "configmaps")
                return self.send_json(201, sim.get("configmaps", ns, name))
            if method == "PUT":
                if name is None or md.get("name", name) != name:
                    return self.send_status(400, "BadRequest", "the name of the object does not match the URL")
                md["name"] = name
                cur = sim.objects.get(("configmaps", ns, name))
                if cur is None:
                    return self.send_status(404, "NotFound", 'configmaps "%s" not found' % name)
                want = md.get("resourceVersion")
                if want and want != cur["metadata"]["resourceVersion"]:
                    return self.send_status(409, "Conflict",
                                            'Operation cannot be fulfilled on configmaps "%s": the object has '
                                            'been modified; please apply your changes to the latest version '
                                            'and try again' % name)
                md.pop("resourceVersion", None)
                md["uid"] = cur["metadata"]["uid"]
                sim.apply(obj, "configmaps")
                return self.send_json(200, sim.get("configmaps", ns, name))
        return self.send_status(405, "MethodNotAllowed", "the server does not allow this method")

    # -- control over HTTP (script mode)

    def control(self, what):
        sim = self.sim
        try:
            a = json.loads(self.read_body() or b"{}")
            if what == "apply":
                rv = sim.apply(a)
                return self.send_json(200, {"resourceVersion": rv})
            if what == "delete":
                return self.send_json(200, {"deleted": sim.delete(a["resource"], a["namespace"], a["name"])})
            if what == "compact":
                sim.compact()
            elif what == "drop_watches":
                sim.drop_watches()
            elif what == "expire_watches":
                sim.expire_watches()
            elif what == "fail":
                sim.fail(a.get("code"), a.get("count", 0), a.get("seconds", 0.0))
            elif what == "split_chunks":
                sim.split_chunks = bool(a.get("on", True))
            else:
                return self.send_json(404, {"error": "unknown control " + what})
            return self.send_json(200, {})
        except (ValueError, KeyError) as e:
            return self.send_json(400, {"error": str(e)})


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token", default="sim-token")
    p.add_argument("--cert")
    p.add_argument("--key")
    a = p.parse_args(argv)
    sim = ApiSim(token=a.token, tls=(a.cert, a.key) if a.cert else None, port=a.port).start()
    print(sim.url, flush=True)
    sys.stdin.read()
    sim.stop()


if __name__ == "__main__":
    main()
