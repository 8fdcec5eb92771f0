"""Keys, JWK Sets and tokens for the JWT tests (Debian's python3-cryptography; tokens are put together by
hand so that malformed and hostile ones can be made exactly).

Every key is generated at run time: nothing secret is committed."""

import base64
import hashlib
import hmac
import json
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISSUER = "https://issuer.test"
AUDIENCE = "api"


def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64u(n, length=None):
    length = length or (n.bit_length() + 7) // 8
    return b64u(n.to_bytes(length, "big"))


class RsaKey:
    def __init__(self, kid, bits=2048):
        self.kid = kid
        self.priv = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        self.pub = self.priv.public_key()

    def jwk(self):
        nums = self.pub.public_numbers()
        return {"kty": "RSA", "kid": self.kid, "use": "sig", "n": _int_b64u(nums.n), "e": _int_b64u(nums.e)}

    def pem(self):
        return self.pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, alg, data):
        h = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
        if alg.startswith("PS"):
            return self.priv.sign(data, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
        return self.priv.sign(data, padding.PKCS1v15(), h)


class EcKey:
    def __init__(self, kid):
        self.kid = kid
        self.priv = ec.generate_private_key(ec.SECP256R1())
        self.pub = self.priv.public_key()

    def jwk(self):
        nums = self.pub.public_numbers()
        return {"kty": "EC", "kid": self.kid, "crv": "P-256", "x": _int_b64u(nums.x, 32), "y": _int_b64u(nums.y, 32)}

    def sign(self, alg, data):
        der = self.priv.sign(data, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class OctKey:
    def __init__(self, kid, secret=None):
        self.kid = kid
        self.secret = secret or hashlib.sha256(("secret-" + kid).encode()).digest()

    def jwk(self):
        return {"kty": "oct", "kid": self.kid, "k": b64u(self.secret)}

    def sign(self, alg, data):
        return hmac.new(self.secret, data, {"HS256": hashlib.sha256, "HS384": hashlib.sha384,
                                            "HS512": hashlib.sha512}[alg]).digest()


def jwks(*keys):
    return {"keys": [k.jwk() for k in keys]}


def claims(**kw):
    """Valid claims for ISSUER/AUDIENCE, an hour long, with kw added (a value None removes the claim)."""
    now = int(time.time())
    c = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "iat": now, "exp": now + 3600}
    for k, v in kw.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def token(key, alg=None, payload=None, header=None, kid=True):
    """A signed compact JWS. alg defaults to the key's natural one; header entries are added or (None)
    removed; kid=False leaves the kid out."""
    if alg is None:
        alg = {"RsaKey": "RS256", "EcKey": "ES256", "OctKey": "HS256"}[type(key).__name__]
    h = {"alg": alg, "typ": "JWT"}
    if kid and key is not None:
        h["kid"] = key.kid
    for k, v in (header or {}).items():
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
    signing_input = b64u(json.dumps(h)) + "." + b64u(json.dumps(payload if payload is not None else claims()))
    sig = key.sign(alg, signing_input.encode()) if key is not None else b""
    return signing_input + "." + b64u(sig)


def unsigned(payload=None, alg="none"):
    """An `alg: none` token (empty signature)."""
    return b64u(json.dumps({"alg": alg, "typ": "JWT"})) + "." + b64u(json.dumps(payload or claims())) + "."


def hs256_with(secret, payload=None, kid=None):
    """HS256 over the token with secret bytes as the HMAC key (the RSA-public-key-as-secret attack)."""
    h = {"alg": "HS256", "typ": "JWT"}
    if kid:
        h["kid"] = kid
    signing_input = b64u(json.dumps(h)) + "." + b64u(json.dumps(payload or claims()))
    return signing_input + "." + b64u(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def bearer(tok):
    return [("Authorization", "Bearer " + tok)]
