#!/bin/sh
# Starts two example upstreams and bgw-proxy on examples/quickstart/bgw.json, in the foreground.
# Ports: BGW_QS_LISTEN (default 127.0.0.1:8080), BGW_QS_ADMIN (default 127.0.0.1:9901); upstreams on 9001/9002.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
listen=${BGW_QS_LISTEN:-127.0.0.1:8080}
admin=${BGW_QS_ADMIN:-127.0.0.1:9901}

python3 "$here/upstream.py" 9001 orders-1 & up1=$!
python3 "$here/upstream.py" 9002 orders-2 & up2=$!
trap 'kill $up1 $up2 2>/dev/null; kill $proxy 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

"$root/build/bin/bgw-proxy" --config "$here/bgw.json" --listen "$listen" --admin "$admin" --workers 2 & proxy=$!

i=0
until curl -fsS "http://$admin/readyz" >/dev/null 2>&1; do
  i=$((i + 1))
  if [ $i -gt 100 ] || ! kill -0 $proxy 2>/dev/null; then echo "bgw-proxy did not start" >&2; exit 1; fi
  sleep 0.1
done

cat <<MSG

bgw-proxy is serving examples/quickstart/bgw.json on http://$listen (admin on http://$admin).
Try:
  curl -s http://$listen/api/orders/42          # routed to service "orders", path rewritten to /42
  curl -s http://$listen/catalog/items          # service "catalog"
  curl -si http://$listen/nowhere               # 404 {"error":"no_route"}
  curl -s http://$admin/metrics | grep bgw_http_requests_total
  curl -s http://$admin/config
Edit examples/quickstart/bgw.json, then: kill -HUP $proxy   (reloads; a bad file keeps the running config)
Ctrl-C stops everything.

MSG
wait $proxy
