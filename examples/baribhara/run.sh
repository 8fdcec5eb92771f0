#!/bin/sh
# The Baribhara system behind the gateway: a sign-in service (issuer.py, 9200) and example business
# services (properties 9201-9202, tenants 9203, payments 9204-9205), bgw-control bootstrapped from
# examples/baribhara/bgw.json (admin 127.0.0.1:9000, stream 127.0.0.1:18000) and a managed bgw-proxy
# (127.0.0.1:8080, admin 127.0.0.1:9901). Foreground; Ctrl-C stops everything. State lives in a
# temporary directory (BGW_EX_RUN_DIR to keep it elsewhere).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$root/build/bin
run=${BGW_EX_RUN_DIR:-$(mktemp -d /tmp/bgw-baribhara.XXXXXX)}
mkdir -p "$run"

pids=""
trap 'kill $pids 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
python3 "$here/issuer.py" 9200 & pids="$pids $!"
for svc in properties:9201 properties:9202 tenants:9203 payments:9204 payments:9205; do
  python3 "$root/examples/quickstart/upstream.py" "${svc#*:}" "${svc%%:*}-${svc#*:}" & pids="$pids $!"
done

wait_ready() {   # URL NAME
  i=0
  until curl -fsS "$1" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 150 ]; then echo "$2 did not start" >&2; exit 1; fi
    sleep 0.1
  done
}
for port in 9200 9201 9202 9203 9204 9205; do wait_ready "http://127.0.0.1:$port/healthz" "the service on $port"; done

"$bin/bgw-control" --state-dir "$run/state" --bootstrap "$here/bgw.json" \
    --admin-listen 127.0.0.1:9000 --xds-listen 127.0.0.1:18000 & pids="$pids $!"
"$bin/bgw-proxy" --control-plane 127.0.0.1:18000 --node-id baribhara-1 --cache-dir "$run/cache" \
    --listen 127.0.0.1:8080 --admin 127.0.0.1:9901 & pids="$pids $!"
wait_ready http://127.0.0.1:9000/readyz bgw-control
wait_ready http://127.0.0.1:9901/readyz bgw-proxy

cat <<MSG

The gateway serves http://127.0.0.1:8080 in front of auth, properties, tenants and payments. Try:
  curl -s http://127.0.0.1:8080/api/properties/42                       # public, rate limited per client
  curl -si -X POST http://127.0.0.1:8080/api/payments -d '{}'           # 401: a token is required
  TOKEN=\$(curl -s -X POST http://127.0.0.1:8080/api/auth/token \\
      -H 'content-type: application/json' -d '{"user": "alice", "tenant": "t-1", "role": "owner"}' \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s http://127.0.0.1:8080/api/tenants/t-1 -H "authorization: Bearer \$TOKEN"   # x-user-id: alice upstream
  $bin/bgwctl endpoints payments                                        # health of each payments endpoint
Ctrl-C stops everything.

MSG
wait
