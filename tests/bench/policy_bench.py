#!/usr/bin/python3
"""Route policy benchmark: the throughput of a JWT (RS256) protected route and of a CORS route against an
open route of the same bgw-proxy, measured in the same run, interleaved.

    tests/bench/policy_bench.py [--duration 5] [--rounds 3] [--conns 50] [--workers 1]

One nginx upstream (from run.py), one bgw-proxy with four routes to it:
  /open       no policy (the baseline), requested with the same Authorization header as /jwt
  /open-bare  no policy, no Authorization header (to show what the header alone costs)
  /jwt        auth policy: RS256, a 2048-bit RSA key in an inline JWK Set, iss/aud/exp checked,
              "sub" forwarded as x-user-id
  /cors       a CORS policy; requests carry an allowed Origin
wrk sends one fixed valid token, so after the first request of each worker the verified-token cache
answers (the point of the cache); --no-cache-hint only changes the report text. Prints a markdown table
with the median req/s of each route and its ratio to /open, and the proxy's own CPU time per request (less
sensitive to other load on the machine than req/s). Standard library plus Debian's
python3-cryptography (to make the key and the token).
"""

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the side-by-side harness: processes, nginx upstream, wrk parsing)

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402

ISSUER = "https://issuer.bench"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_key_and_token():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    nums = key.public_key().public_numbers()
    jwk = {"kty": "RSA", "kid": "bench", "n": b64u(nums.n.to_bytes(256, "big")),
           "e": b64u(nums.e.to_bytes(3, "big"))}
    header = {"alg": "RS256", "typ": "JWT", "kid": "bench"}
    claims = {"iss": ISSUER, "aud": "api", "sub": "bench-user", "exp": int(time.time()) + 86400}
    si = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())
    sig = key.sign(si.encode(), padding.PKCS1v15(), hashes.SHA256())
    return {"keys": [jwk]}, si + "." + b64u(sig)


def config(up_port, jwks):
    svc = {"name": "up", "endpoints": ["127.0.0.1:%d" % up_port], "max_connections": 4096}
    return {
        "services": [svc],
        "routes": [
            {"name": "open", "match": {"path_prefix": "/open"}, "service": "up"},
            {"name": "jwt", "match": {"path_prefix": "/jwt"}, "service": "up", "auth": "bench"},
            {"name": "cors", "match": {"path_prefix": "/cors"}, "service": "up",
             "cors": {"allow_origins": ["https://app.bench"], "allow_methods": ["GET"], "max_age_s": 60}},
        ],
        "auth_policies": [{"name": "bench", "issuer": ISSUER, "audiences": ["api"], "algorithms": ["RS256"],
                           "jwks": jwks, "forward_claims": {"sub": "x-user-id"}}],
    }


def wrk(args, port, path, headers, pids=None):
    cmd = [args.wrk, "-t", str(args.threads), "-c", str(args.conns), "-d", "%ds" % args.duration,
           "--timeout", "10s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    cmd.append("http://127.0.0.1:%d%s" % (port, path))
    c0 = run.cpu_ticks(pids) if pids else 0
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60)
    c1 = run.cpu_ticks(pids) if pids else 0
    if p.returncode != 0:
        raise RuntimeError("wrk failed: %s\n%s" % (" ".join(cmd[:8]), p.stdout + p.stderr))
    r = run.parse_wrk(p.stdout)
    if not r["requests"] or r["non2xx"] or r["socket_errors"]:
        raise RuntimeError("wrk on %s: %d requests, %d non-2xx, socket errors %s"
                           % (path, r["requests"] or 0, r["non2xx"], r["socket_errors"]))
    r["cpu_us_per_req"] = (c1 - c0) * 1e6 / run.CLK_TCK / r["requests"] if pids else None
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bgw", default=os.path.join(run.REPO, "build", "bin", "bgw-proxy"))
    ap.add_argument("--wrk", default="wrk")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="bgw-policy-bench-")
    try:
        up = run.Upstream(tmp, 4096)
        up.start()
        jwks, tok = make_key_and_token()
        d = os.path.join(tmp, "bgw")
        os.makedirs(d)
        conf = os.path.join(d, "config.json")
        with open(conf, "w") as f:
            json.dump(config(up.port, jwks), f)
        port, admin = run.free_port(), run.free_port()
        proxy = run.Proc("bgw-proxy", [args.bgw, "--config", conf, "--listen", "127.0.0.1:%d" % port,
                                       "--admin", "127.0.0.1:%d" % admin, "--workers", str(args.workers)], d)
        run.wait_ready(proxy, "bgw-proxy", run.expect_200(admin, "/readyz"), 15)

        authz = "Authorization: Bearer " + tok
        cases = [
            ("open", "/open/x", [authz]),
            ("open-bare", "/open/x", []),
            ("jwt", "/jwt/x", [authz]),
            ("cors", "/cors/x", [authz, "Origin: https://app.bench"]),
        ]
        results = {name: [] for (name, _, _) in cases}
        for (name, path, hs) in cases:                # warm-up, and a check that each route answers 200
            args_w = argparse.Namespace(**vars(args))
            args_w.duration = args.warmup
            wrk(args_w, port, path, hs)
        for rnd in range(args.rounds):
            order = cases if rnd % 2 == 0 else list(reversed(cases))
            for (name, path, hs) in order:
                r = wrk(args, port, path, hs, run.proc_tree(proxy.pid))
                results[name].append(r)
                run.log("round %d %-9s %9.0f req/s  p50 %.3f ms  p99 %.3f ms  proxy cpu %.1f us/req"
                        % (rnd + 1, name, r["rps"], r["p50_ms"], r["p99_ms"], r["cpu_us_per_req"]))
        proxy.stop()
        up.stop()

        base = statistics.median(r["rps"] for r in results["open"])
        base_cpu = statistics.median(r["cpu_us_per_req"] for r in results["open"])
        print("| route | policy | req/s (median of %d) | ratio to /open | proxy CPU us/req | CPU ratio | p50 ms | p99 ms |"
              % args.rounds)
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        what = {"open": "none (token sent, not checked)", "open-bare": "none, no Authorization header",
                "jwt": "JWT RS256, claim forwarded", "cors": "CORS (allowed Origin)"}
        for (name, _, _) in cases:
            rs = results[name]
            rps = statistics.median(r["rps"] for r in rs)
            cpu = statistics.median(r["cpu_us_per_req"] for r in rs)
            print("| /%s | %s | %.0f | %.3f | %.1f | %.3f | %.3f | %.3f |"
                  % (name, what[name], rps, rps / base, cpu, cpu / base_cpu,
                     statistics.median(r["p50_ms"] for r in rs), statistics.median(r["p99_ms"] for r in rs)))
        print()
        print("wrk -t%d -c%d -d%ds, bgw-proxy --workers %d, %d interleaved rounds, token of %d bytes"
              % (args.threads, args.conns, args.duration, args.workers, args.rounds, len(tok)))
        ratio = statistics.median(r["rps"] for r in results["jwt"]) / base
        return 0 if ratio >= 0.9 else 1
    finally:
        run.stop_all()
        import shutil
        shutil.rmtree(tmp, True)


if __name__ == "__main__":
    sys.exit(main())
