#!/usr/bin/env bash
# Proxy benchmark: the same upstream driven directly, through nginx (reverse proxy, upstream
# keepalive, 1 worker) and through userhook, with wrk, in one run on 127.0.0.1.
#
#   bash bench/proxy.sh            # 3 rounds x 5 s per case (about 3 minutes)
#   ROUNDS=5 DURATION=10 bash bench/proxy.sh
#
# Cases: a small GET, a ~500-byte JSON POST (both unmatched: pure pass-through), and a
# matched user-create POST (tapped, fires an event). The proxy under test is pinned to CPU 0,
# the upstream and wrk to CPU 1 (on a 2-core machine). Medians of interleaved rounds are
# printed side by side with the ratios userhook/nginx. Needs: wrk, nginx (Debian: wrk,
# nginx-light); installs them with apt-get when missing and running as root.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
UP_PORT=${UP_PORT:-18181}
NGINX_PORT=${NGINX_PORT:-18182}
UH_PORT=${UH_PORT:-18183}
UH_ADMIN=${UH_ADMIN:-18184}

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

# userhook with a route that matches user creation (and nothing else).
cat > "$WORK/userhook.yaml" <<YAML
listen: 127.0.0.1:$UH_PORT
upstream: http://127.0.0.1:$UP_PORT
admin: {listen: 127.0.0.1:$UH_ADMIN}
routes:
  - {action: created, method: POST, path: /api/v1/users, fields: {ID: response.body.id, Name: request.body.username, Email: request.body.email}}
delivery: {spool_dir: $WORK/spool}
log: {level: warn}
YAML
taskset -c 0 "$BIN" serve --config "$WORK/userhook.yaml" 2>"$WORK/userhook.log" & PIDS+=($!)

for port in $UP_PORT $NGINX_PORT $UH_PORT; do
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.1; done
done

BODY='{"username":"alice","email":"alice@example.com","firstName":"Alice","lastName":"Liddell","enabled":true,"attributes":{"department":["engineering"],"location":["Shanghai"],"employeeNumber":["000042"]},"credentials":[{"type":"password","value":"not-a-real-password","temporary":false}],"groups":["/staff","/engineering"],"requiredActions":[]}'
cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = [[$BODY]]
wrk.headers["Content-Type"] = "application/json"
LUA

# run NAME PORT PATH [lua] -> "rps p50_ms p99_ms"
run() {
  local port=$2 path=$3 script=${4:-}
  local args=(-t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency)
  [ -n "$script" ] && args+=(-s "$script")
  taskset -c 1 wrk "${args[@]}" "http://127.0.0.1:$port$path" | awk '
    /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    END { printf "%.0f %.3f %.3f\n", rps, ms(p50), ms(p99) }'
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A R
CASES=("get:/users/42:" "post:/api/v1/echo:$WORK/post.lua" "create:/api/v1/users:$WORK/post.lua")
TARGETS=("direct:$UP_PORT" "nginx:$NGINX_PORT" "userhook:$UH_PORT")
echo "warming up..." >&2
for t in "${TARGETS[@]}"; do run x "${t#*:}" /users/42 >/dev/null; done
for round in $(seq "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  for c in "${CASES[@]}"; do
    IFS=: read -r cname cpath cscript <<<"$c"
    for t in "${TARGETS[@]}"; do
      tname=${t%%:*}; tport=${t#*:}
      R["$cname/$tname/$round"]=$(run "$tname" "$tport" "$cpath" "$cscript")
    done
  done
done

printf '\n%-8s %-9s %12s %10s %10s\n' case target "req/s" "p50 ms" "p99 ms"
for c in "${CASES[@]}"; do
  cname=${c%%:*}
  for t in "${TARGETS[@]}"; do
    tname=${t%%:*}
    for f in 1 2 3; do
      M[$f]=$(for r in $(seq "$ROUNDS"); do echo "${R[$cname/$tname/$r]}" | cut -d' ' -f$f; done | median)
    done
    printf '%-8s %-9s %12s %10s %10s\n' "$cname" "$tname" "${M[1]}" "${M[2]}" "${M[3]}"
    eval "S_${cname}_${tname}=\"${M[1]} ${M[2]} ${M[3]}\""
  done
done
echo
echo "ratios userhook/nginx (throughput: higher is better; p99: lower is better)"
for c in "${CASES[@]}"; do
  cname=${c%%:*}
  eval "u=(\$S_${cname}_userhook)"; eval "n=(\$S_${cname}_nginx)"
  awk -v c="$cname" -v ur="${u[0]}" -v nr="${n[0]}" -v up="${u[2]}" -v np="${n[2]}" \
    'BEGIN { printf "%-8s throughput %.2fx   p99 %.2fx\n", c, ur/nr, up/np }'
done
eval "g=(\$S_get_userhook)"; eval "m=(\$S_create_userhook)"
awk -v g="${g[0]}" -v m="${m[0]}" 'BEGIN { printf "userhook matched create vs passthrough GET: %.2fx throughput\n", m/g }'
