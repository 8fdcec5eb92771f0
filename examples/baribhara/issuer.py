#!/usr/bin/env python3
"""The example's sign-in service: issues RS256 tokens and publishes its keys as a JWK Set.

    python3 issuer.py [PORT]          (default 9200)

GET  /.well-known/jwks.json   the public key (bgw-control fetches it: the auth policy's jwks_uri)
POST /api/auth/token          {"user": "alice", "tenant": "t-1", "role": "owner"} -> {"access_token": ...}
GET  /healthz                 200

A new RSA key is made at every start, so tokens from an earlier run stop working. Debian's
python3-cryptography signs; the token format is written out here so nothing else is needed.
"""
import base64
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

AUDIENCE = "baribhara-api"
LIFETIME_S = 3600


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_b64(n):
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Issuer:
    def __init__(self, issuer_url):
        self.url = issuer_url
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "baribhara-%d" % int(time.time())
        pub = self.key.public_key().public_numbers()
        self.jwks = {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                               "n": int_b64(pub.n), "e": int_b64(pub.e)}]}

    def token(self, user, tenant, role):
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        claims = {"iss": self.url, "aud": AUDIENCE, "sub": user, "tenant": tenant, "role": role,
                  "iat": now, "nbf": now, "exp": now + LIFETIME_S}
        signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
        sig = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return signing_input.decode() + "." + b64url(sig)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "baribhara-issuer"

    def reply(self, status, doc):
        out = (json.dumps(doc) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self):
        if self.path == "/.well-known/jwks.json":
            self.reply(200, self.server.issuer.jwks)
        elif self.path == "/healthz":
            self.reply(200, {"status": "ok"})
        else:
            self.reply(404, {"error": "not_found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b"{}"
        if self.path != "/api/auth/token":
            self.reply(404, {"error": "not_found"})
            return
        try:
            req = json.loads(body or b"{}")
            user = str(req["user"])
        except (ValueError, KeyError, TypeError):
            self.reply(400, {"error": "bad_request", "message": 'send {"user": NAME, "tenant": ID, "role": ROLE}'})
            return
        tok = self.server.issuer.token(user, str(req.get("tenant", "t-1")), str(req.get("role", "tenant")))
        self.reply(200, {"access_token": tok, "token_type": "Bearer", "expires_in": LIFETIME_S})

    def log_message(self, fmt, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9200
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.issuer = Issuer("http://127.0.0.1:%d" % port)
    server.serve_forever()


if __name__ == "__main__":
    main()
