#!/usr/bin/env bash
# Proxy benchmark: the same upstream driven directly, through nginx (reverse proxy, upstream
# keepalive, 1 worker) and through userhook, with wrk, in one run on 127.0.0.1.
#
#   bash bench/proxy.sh            # 3 rounds x 5 s per case (about 3 minutes)
#   ROUNDS=5 DURATION=10 bash bench/proxy.sh
#
# Cases: a small GET, a ~500-byte JSON POST (both unmatched: pure pass-through), a matched
# user-create POST (tapped, fires an event, no webhook), the same create where every event
# fires a webhook to a receiver that answers after 2 s (userhook+hook2s), and the create
# with a webhook to an immediate receiver in delivery.guarantee fast and strict. The proxy under test is pinned to CPU 0,
# the upstream and wrk to CPU 1 (on a 2-core machine). Medians of interleaved rounds are
# printed side by side with the ratios userhook/nginx, with the proxy's CPU time per request
# (from /proc: steadier than req/s when the VM's neighbours are busy). Needs: wrk, nginx
# (Debian: wrk, nginx-light); installs them with apt-get when missing and running as root.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
CASES=${CASES:-get post create}  # e.g. CASES="get post" for the pass-through rows only
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
UP_PORT=${UP_PORT:-18181}
NGINX_PORT=${NGINX_PORT:-18182}
UH_PORT=${UH_PORT:-18183}
UH_ADMIN=${UH_ADMIN:-18184}
HOOK_PORT=${HOOK_PORT:-18185}
UH2_PORT=${UH2_PORT:-18186}
UH2_ADMIN=${UH2_ADMIN:-18187}
UH3_PORT=${UH3_PORT:-18188}
UH3_ADMIN=${UH3_ADMIN:-18189}
FASTHOOK_PORT=${FASTHOOK_PORT:-18190}
UH4_PORT=${UH4_PORT:-18191}
UH4_ADMIN=${UH4_ADMIN:-18192}

need() { command -v "$1" >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] && apt-get install -y -qq "$2" >/dev/null; } || { echo "missing $1 (apt-get install $2)" >&2; exit 1; }; }
need wrk wrk
need nginx nginx-light

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

cargo build --release --quiet
BIN=target/release/userhook

# The upstream: nginx answering from memory, like a fast IAM endpoint.
mkdir -p "$WORK/up" "$WORK/px"
cat > "$WORK/up/nginx.conf" <<NGX
worker_processes 1; daemon off; pid $WORK/up/nginx.pid; error_log $WORK/up/error.log crit;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP_PORT;
    location = /api/v1/users { default_type application/json; return 201 '{"id":"u-1","username":"alice","email":"alice@example.com"}'; }
    location / { default_type application/json; return 200 '{"ok":true}'; } } }
NGX
taskset -c 1 nginx -c "$WORK/up/nginx.conf" -p "$WORK/up" & PIDS+=($!)

# nginx as the reference reverse proxy.
cat > "$WORK/px/nginx.conf" <<NGX
worker_processes 1; daemon off; pid $WORK/px/nginx.pid; error_log $WORK/px/error.log crit;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream iam { server 127.0.0.1:$UP_PORT; keepalive 64; }
  server { listen 127.0.0.1:$NGINX_PORT;
    location / { proxy_pass http://iam; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme; proxy_set_header X-Forwarded-Host \$host; } } }
NGX
taskset -c 0 nginx -c "$WORK/px/nginx.conf" -p "$WORK/px" & PIDS+=($!)

# userhook with a route that matches user creation (and nothing else), in three variants:
# no webhook; a webhook to a receiver that answers after 2 s; strict delivery guarantee.
uh_config() { # PORT ADMIN NAME EXTRA
  cat > "$WORK/$3.yaml" <<YAML
listen: 127.0.0.1:$1
upstream: http://127.0.0.1:$UP_PORT
admin: {listen: 127.0.0.1:$2}
routes:
  - {action: created, method: POST, path: /api/v1/users, fields: {ID: response.body.id, Name: request.body.username, Email: request.body.email}}
log: {level: error}
$4
YAML
}
uh_config "$UH_PORT" "$UH_ADMIN" plain "delivery: {spool_dir: $WORK/spool1}"
uh_config "$UH2_PORT" "$UH2_ADMIN" hooked "delivery: {spool_dir: $WORK/spool2}
webhooks:
  - {name: slow, actions: [created], url: http://127.0.0.1:$HOOK_PORT/hook, timeout: 5s, retry: {attempts: 1}}"
uh_config "$UH3_PORT" "$UH3_ADMIN" fast "delivery: {spool_dir: $WORK/spool3, guarantee: fast}
webhooks:
  - {name: quick, actions: [created], url: http://127.0.0.1:$FASTHOOK_PORT/hook, retry: {attempts: 1}}"
uh_config "$UH4_PORT" "$UH4_ADMIN" strict "delivery: {spool_dir: $WORK/spool4, guarantee: strict}
webhooks:
  - {name: quick, actions: [created], url: http://127.0.0.1:$FASTHOOK_PORT/hook, retry: {attempts: 1}}"
taskset -c 1 python3 bench/slow_receiver.py "$HOOK_PORT" 2 & PIDS+=($!)
taskset -c 1 python3 bench/slow_receiver.py "$FASTHOOK_PORT" 0 & PIDS+=($!)
# The plain userhook (no webhooks: no background work) runs for the whole benchmark, as nginx
# does. Each webhook variant runs only while it is measured (started fresh, with an empty
# spool), so no instance's delivery work steals CPU from another's row.
UH_PID=""
start_uh() { # VARIANT PORT
  rm -rf "$WORK/spool-$1"
  sed "s|spool_dir: [^,}]*|spool_dir: $WORK/spool-$1|" "$WORK/$1.yaml" > "$WORK/$1.run.yaml"
  taskset -c 0 "$BIN" serve --config "$WORK/$1.run.yaml" 2>>"$WORK/$1.log" & UH_PID=$!
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$2/" 2>/dev/null && return; sleep 0.05; done
  echo "userhook ($1) did not start; see $WORK/$1.log" >&2; exit 1
}
stop_uh() {
  [ -n "$UH_PID" ] && kill "$UH_PID" 2>/dev/null && wait "$UH_PID" 2>/dev/null || true
  UH_PID=""
}
variant_of() { case "$1" in userhook) echo plain;; userhook+hook2s) echo hooked;; hook-fast) echo fast;; hook-strict) echo strict;; *) echo "";; esac; }

for port in $UP_PORT $NGINX_PORT; do
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.1; done
done

BODY='{"username":"alice","email":"alice@example.com","firstName":"Alice","lastName":"Liddell","enabled":true,"attributes":{"department":["engineering"],"location":["Shanghai"],"employeeNumber":["000042"]},"credentials":[{"type":"password","value":"not-a-real-password","temporary":false}],"groups":["/staff","/engineering"],"requiredActions":[]}'
cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = [[$BODY]]
wrk.headers["Content-Type"] = "application/json"
LUA

# CPU ticks (user+system) a process has used so far; 0 without a process.
ticks() { if [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ]; then awk '{print $14+$15}' "/proc/$1/stat"; else echo 0; fi; }

# run NAME PORT PATH [lua] [PID] -> "rps p50_ms p99_ms cpu_us_per_request" (the proxy's CPU
# per request: steadier than req/s on a shared machine; "-" for the direct rows)
run() {
  local port=$2 path=$3 script=${4:-} pid=${5:-}
  local args=(-t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency)
  [ -n "$script" ] && args+=(-s "$script")
  local t0 t1
  t0=$(ticks "$pid")
  taskset -c 1 wrk "${args[@]}" "http://127.0.0.1:$port$path" > "$WORK/wrk.out"
  t1=$(ticks "$pid")
  awk -v pid="$pid" -v dt=$((t1 - t0)) '
    /Requests\/sec/ {rps=$2}
    / requests in / {n=$1}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    END { cpu = (pid == "" || n == 0) ? "-" : sprintf("%.2f", dt * 10000 / n)
          printf "%.0f %.3f %.3f %s\n", rps, ms(p50), ms(p99), cpu }' "$WORK/wrk.out"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A R
declare -A OUTCOMES
admin_of() { case "$1" in plain) echo "$UH_ADMIN";; hooked) echo "$UH2_ADMIN";; fast) echo "$UH3_ADMIN";; strict) echo "$UH4_ADMIN";; esac; }
count_records() { # ADMIN_PORT -> "successful=N failed=N retrying=N" of the kept records
  curl -fsS "http://127.0.0.1:$1/deliveries" 2>/dev/null | python3 -c '
import collections, json, sys
c = collections.Counter(r.get("status") for r in json.load(sys.stdin).get("deliveries", []))
print(" ".join(f"{k}={c[k]}" for k in ("successful", "failed", "retrying")))' 2>/dev/null || echo "unavailable"
  printf ', spool pending=%s' "$(curl -fsS "http://127.0.0.1:$1/spool" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("pending","?"))' 2>/dev/null || echo "?")"
}
# ROWS: case:target:port:path:script
ROWS=(
  "get:direct:$UP_PORT:/users/42:"
  "get:nginx:$NGINX_PORT:/users/42:"
  "get:userhook:$UH_PORT:/users/42:"
  "post:direct:$UP_PORT:/api/v1/echo:$WORK/post.lua"
  "post:nginx:$NGINX_PORT:/api/v1/echo:$WORK/post.lua"
  "post:userhook:$UH_PORT:/api/v1/echo:$WORK/post.lua"
  "create:direct:$UP_PORT:/api/v1/users:$WORK/post.lua"
  "create:nginx:$NGINX_PORT:/api/v1/users:$WORK/post.lua"
  "create:userhook:$UH_PORT:/api/v1/users:$WORK/post.lua"
  "create:userhook+hook2s:$UH2_PORT:/api/v1/users:$WORK/post.lua"
  "create:hook-fast:$UH3_PORT:/api/v1/users:$WORK/post.lua"
  "create:hook-strict:$UH4_PORT:/api/v1/users:$WORK/post.lua"
)
NGINX_WORKER=$(ps -eo pid,ppid,args | awk -v m="$(cat "$WORK/px/nginx.pid")" '$2==m && /worker/ {print $1}')
echo "warming up..." >&2
for port in $UP_PORT $NGINX_PORT; do run x "$port" /users/42 >/dev/null; done
start_uh plain "$UH_PORT"
PLAIN_PID=$UH_PID
PIDS+=("$PLAIN_PID")
UH_PID=""
DURATION=2 run warm "$UH_PORT" /users/42 >/dev/null
for round in $(seq "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  for row in "${ROWS[@]}"; do
    IFS=: read -r cname tname tport cpath cscript <<<"$row"
    [[ " $CASES " == *" $cname "* ]] || continue
    variant=$(variant_of "$tname")
    [ "$variant" = plain ] && variant="" && pid=$PLAIN_PID
    if [ -n "$variant" ]; then
      start_uh "$variant" "$tport"
      DURATION=1 run warm "$tport" "$cpath" "$cscript" >/dev/null  # warm pools, like the others
    fi
    [ "$tname" = nginx ] && pid=$NGINX_WORKER
    [ "$tname" = direct ] && pid=""
    [ -n "$variant" ] && pid=$UH_PID
    R["$cname/$tname/$round"]=$(run "$tname" "$tport" "$cpath" "$cscript" "$pid")
    if [ -n "$variant" ]; then
      [ "$round" = "$ROUNDS" ] && OUTCOMES["$tname"]=$(count_records "$(admin_of "$variant")")
      stop_uh
    fi
  done
done

declare -A S
printf '\n%-8s %-16s %12s %10s %10s %14s\n' case target "req/s" "p50 ms" "p99 ms" "proxy cpu us"
for row in "${ROWS[@]}"; do
  IFS=: read -r cname tname _ _ _ <<<"$row"
  [[ " $CASES " == *" $cname "* ]] || continue
  M=()
  for f in 1 2 3 4; do
    M[$f]=$(for r in $(seq "$ROUNDS"); do echo "${R[$cname/$tname/$r]}" | cut -d' ' -f$f; done | median)
  done
  printf '%-8s %-16s %12s %10s %10s %14s\n' "$cname" "$tname" "${M[1]}" "${M[2]}" "${M[3]}" "${M[4]}"
  S["$cname/$tname"]="${M[1]} ${M[2]} ${M[3]} ${M[4]}"
done
ratio() { # label caseA targetA caseB targetB
  [ -n "${S[$2/$3]:-}" ] && [ -n "${S[$4/$5]:-}" ] || return 0
  read -r ar _ ap ac <<<"${S[$2/$3]}"; read -r br _ bp bc <<<"${S[$4/$5]}"
  awk -v l="$1" -v ar="$ar" -v br="$br" -v ap="$ap" -v bp="$bp" -v ac="$ac" -v bc="$bc" \
    'BEGIN { printf "%-44s throughput %.2fx   p99 %.2fx   cpu/request %s\n", l, ar/br, ap/bp,
             (ac == "-" || bc == "-" || bc == 0) ? "-" : sprintf("%.2fx", ac/bc) }'
}
echo
echo "ratios (throughput: higher is better; p99 and cpu/request: lower is better)"
ratio "get: userhook / nginx" get userhook get nginx
ratio "post: userhook / nginx" post userhook post nginx
ratio "create: userhook / nginx" create userhook create nginx
ratio "userhook: matched create / passthrough post" create userhook post userhook
ratio "create: webhook to a 2 s receiver / none" create userhook+hook2s create userhook
ratio "create with webhook: strict / fast" create hook-strict create hook-fast
[[ " $CASES " == *" create "* ]] && echo "delivery records after the last round's row (last delivery.records kept): hook2s: ${OUTCOMES[userhook+hook2s]:-?}; hook-fast: ${OUTCOMES[hook-fast]:-?}; hook-strict: ${OUTCOMES[hook-strict]:-?}"
