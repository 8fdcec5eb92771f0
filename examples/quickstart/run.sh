#!/bin/sh
# Starts two example upstreams, bgw-control (bootstrapped from examples/quickstart/bgw.json) and a bgw-proxy
# managed by it, in the foreground. State and the proxy's config cache live in .run/ at the top of the tree
# (BGW_QS_RUN_DIR moves them).
# Addresses: BGW_QS_LISTEN (proxy, default 127.0.0.1:8080), BGW_QS_ADMIN (proxy admin, 127.0.0.1:9901),
# BGW_QS_CONTROL (admin API, 127.0.0.1:9000), BGW_QS_XDS (config stream, 127.0.0.1:18000); upstreams 9001/9002.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$root/build/bin
run=${BGW_QS_RUN_DIR:-$root/.run}
listen=${BGW_QS_LISTEN:-127.0.0.1:8080}
admin=${BGW_QS_ADMIN:-127.0.0.1:9901}
control=${BGW_QS_CONTROL:-127.0.0.1:9000}
xds=${BGW_QS_XDS:-127.0.0.1:18000}
mkdir -p "$run"

pids=""
trap 'kill $pids 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
python3 "$here/upstream.py" 9001 orders-1 & up1=$!
python3 "$here/upstream.py" 9002 orders-2 & up2=$!
pids="$up1 $up2"

wait_ready() {   # URL PID NAME
  i=0
  until curl -fsS "$1" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$2" 2>/dev/null; then echo "$3 did not start" >&2; exit 1; fi
    sleep 0.1
  done
}
wait_ready http://127.0.0.1:9001/ $up1 "the upstream on 9001"
wait_ready http://127.0.0.1:9002/ $up2 "the upstream on 9002"

"$bin/bgw-control" --state-dir "$run/bgw-state" --bootstrap "$here/bgw.json" \
    --admin-listen "$control" --xds-listen "$xds" & control_pid=$!
pids="$pids $control_pid"
"$bin/bgw-proxy" --control-plane "$xds" --node-id quickstart-1 --cache-dir "$run/proxy-cache" \
    --listen "$listen" --admin "$admin" --workers 2 & proxy_pid=$!
pids="$pids $proxy_pid"

wait_ready "http://$control/readyz" $control_pid bgw-control
wait_ready "http://$admin/readyz" $proxy_pid bgw-proxy

cat <<MSG

bgw-control serves its admin API on http://$control and the config stream on $xds;
bgw-proxy (node quickstart-1) serves http://$listen with the config it streams (admin on http://$admin).
Try:
  curl -s http://$listen/api/orders/42              # route "orders-api": rewritten to /42, two upstreams
  curl -si http://$listen/hello                      # 404 {"error":"no_route"} (on a first run: no such route yet)
  $bin/bgwctl --server http://$control get routes
  $bin/bgwctl --server http://$control apply -f $here/new-route.yaml
  curl -s http://$listen/hello                       # now served, within milliseconds, no restart
  $bin/bgwctl --server http://$control status        # the proxy, its acked version
  curl -s http://$admin/metrics | grep bgw_http_requests_total
Ctrl-C stops everything. (Standalone, without a control plane: bgw-proxy --config $here/bgw.json)

MSG
wait $control_pid $proxy_pid
