#!/usr/bin/env bash
# Before/after: CPU microseconds per request of two userhook binaries (from /proc utime+stime
# of the proxy process over each wrk run), alternating rounds against the same nginx upstream,
# for an unmatched GET, a matched user-create POST (~500-byte body, three fields) and the same
# POST unmatched. CPU per request is steadier than req/s
# on a shared machine, but still compare medians.
#
#   bash bench/compare.sh OLD_BINARY NEW_BINARY        # ROUNDS=6 DURATION=4 by default
#
# The proxies are pinned to CPU 0, nginx and wrk to CPU 1. Needs wrk and nginx (Debian: wrk,
# nginx-light).
set -euo pipefail
BEFORE=${1:?usage: compare.sh OLD_BINARY NEW_BINARY}
AFTER=${2:?usage: compare.sh OLD_BINARY NEW_BINARY}
ROUNDS=${ROUNDS:-6}
DURATION=${DURATION:-4}
W=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
cat > $W/up.conf <<NGX
worker_processes 1; daemon off; pid $W/up.pid; error_log $W/err.log crit;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:18281;
    location = /api/v1/users { default_type application/json; return 201 '{"id":"u-1","username":"alice"}'; }
    location / { default_type application/json; return 200 '{"ok":true}'; } } }
NGX
taskset -c 1 nginx -c $W/up.conf -p $W & PIDS+=($!)
for n in before after; do
  port=$([ $n = before ] && echo 18282 || echo 18283)
  cat > $W/$n.yaml <<Y
listen: 127.0.0.1:$port
upstream: http://127.0.0.1:18281
admin: {listen: 127.0.0.1:$((port+100))}
routes:
  - {action: created, method: POST, path: /api/v1/users, fields: {ID: response.body.id, Name: request.body.username, Email: request.body.email}}
log: {level: warn}
delivery: {spool_dir: $W/spool-$n}
Y
  bin=$([ $n = before ] && echo "$BEFORE" || echo "$AFTER")
  taskset -c 0 "$bin" serve --config $W/$n.yaml 2>/dev/null & PIDS+=($!)
  eval "PID_$n=$!"
done
for port in 18282 18283; do
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.1; done
done
# The same ~500-byte Keycloak-style user as bench/proxy.sh.
BODY='{"username":"alice","email":"alice@example.com","firstName":"Alice","lastName":"Liddell","enabled":true,"attributes":{"department":["engineering"],"location":["Shanghai"],"employeeNumber":["000042"]},"credentials":[{"type":"password","value":"not-a-real-password","temporary":false}],"groups":["/staff","/engineering"],"requiredActions":[]}'
printf 'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' "$BODY" > $W/post.lua
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
# /api/v1/echo takes the same POST unmatched: with OLD = NEW the last two rows give the
# cost of matching (tap, hand-off, extraction) on one build.
for path in /users/42 /api/v1/users /api/v1/echo; do
  script=""; [ $path != /users/42 ] && script="-s $W/post.lua"
  for _ in $(seq "$ROUNDS"); do
    for n in before after; do
      port=$([ $n = before ] && echo 18282 || echo 18283); eval "pid=\$PID_$n"
      t0=$(ticks $pid)
      reqs=$(taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" $script http://127.0.0.1:$port$path | awk '/requests in/ {print $1}')
      t1=$(ticks $pid)
      awk -v n=$n -v p=$path -v r=$reqs -v t=$((t1-t0)) 'BEGIN{printf "%s %s %d req %.2f us/req\n", p, n, r, t*10000/r}'
    done
  done
done
