#!/usr/bin/env bash
# Abuse benchmark: slowloris, unfinished large heads, a connection flood and slow uploads
# against nginx (reverse proxy, 1 worker) and userhook (1 worker), side by side, on 127.0.0.1
# only. During each attack an unrelated client (wrk, 4 connections) measures p50/p99; the
# proxy's RSS and its connections to the IAM are sampled at the attack's peak. Each attack
# runs ATTACK seconds and every process started here is stopped at the end.
#
#   bash bench/abuse.sh                 # about 3 minutes
#   ATTACK=20 N=2000 bash bench/abuse.sh
#
# Needs: wrk, nginx (Debian: wrk, nginx-light), python3. The attackers are a python3 asyncio
# script (below); the file-descriptor limit is raised to what the flood needs.
set -euo pipefail
cd "$(dirname "$0")/.."

ATTACK=${ATTACK:-12}
N=${N:-1000}             # slowloris and flood connections
HEADS=${HEADS:-500}      # unfinished 15 KiB heads
UPLOADS=${UPLOADS:-300}  # slow POST bodies
UP_NGX=${UP_NGX:-18281}; UP_UH=${UP_UH:-18282}
NGINX_PORT=${NGINX_PORT:-18283}; UH_PORT=${UH_PORT:-18284}; UH_ADMIN=${UH_ADMIN:-18285}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/userhook}

for t in wrk nginx python3; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done
[ -x "$BIN" ] || cargo build --release --quiet
ulimit -n "$(( N * 2 + 1024 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

mkdir -p "$WORK/up" "$WORK/px"
# The IAM: nginx answering from memory, one port per proxy so their IAM connections are told apart.
cat > "$WORK/up/nginx.conf" <<NGX
worker_processes 1; daemon off; pid $WORK/up/nginx.pid; error_log $WORK/up/error.log crit;
events { worker_connections 8192; }
http { access_log off; client_body_timeout 120s;
  server { listen 127.0.0.1:$UP_NGX; listen 127.0.0.1:$UP_UH;
    location / { default_type application/json; return 200 '{"ok":true}'; } } }
NGX
nginx -c "$WORK/up/nginx.conf" -p "$WORK/up" & PIDS+=($!)

# nginx as the reference: its defaults for timeouts and head buffers, 4096 connections.
cat > "$WORK/px/nginx.conf" <<NGX
worker_processes 1; daemon off; pid $WORK/px/nginx.pid; error_log $WORK/px/error.log crit;
worker_rlimit_nofile 65536;
events { worker_connections 4096; }
http { access_log off;
  upstream iam { server 127.0.0.1:$UP_NGX; keepalive 64; }
  server { listen 127.0.0.1:$NGINX_PORT;
    location / { proxy_pass http://iam; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NGX
nginx -c "$WORK/px/nginx.conf" -p "$WORK/px" & PIDS+=($!)
NGX_PID=$!

cat > "$WORK/uh.yaml" <<YAML
listen: 127.0.0.1:$UH_PORT
upstream: http://127.0.0.1:$UP_UH
admin: {listen: 127.0.0.1:$UH_ADMIN}
delivery: {spool_dir: $WORK/spool}
log: {level: warn}
YAML
"$BIN" --workers 1 serve --config "$WORK/uh.yaml" 2>"$WORK/uh.log" & PIDS+=($!)
UH_PID=$!

cat > "$WORK/attack.py" <<'PY'
import asyncio, sys
kind, port, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
async def one(i):
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return
    try:
        if kind == "slowloris":
            w.write(b"GET / HTTP/1.1\r\nHost: iam\r\n"); await w.drain()
            while True:
                await asyncio.sleep(5); w.write(b"X-a: b\r\n"); await w.drain()
        elif kind == "largehead":
            w.write(b"GET / HTTP/1.1\r\nHost: iam\r\n" + b"X-Fill: " + b"a" * 15000); await w.drain()
            await asyncio.sleep(secs + 5)
        elif kind == "flood":
            await asyncio.sleep(secs + 5)
        elif kind == "slowupload":
            w.write(b"POST /upload HTTP/1.1\r\nHost: iam\r\nContent-Length: 1000\r\n\r\n0123456789"); await w.drain()
            while True:
                await asyncio.sleep(1); w.write(b"x"); await w.drain()
    except (OSError, ConnectionError):
        pass
async def main():
    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    await asyncio.sleep(secs)
    for t in tasks: t.cancel()
asyncio.run(main())
PY

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 not up" >&2; exit 1; }
wait_port $UP_NGX; wait_port $NGINX_PORT; wait_port $UH_PORT

# The process and its children (nginx's worker runs under its master).
rss_kb() { local sum=0 p; for p in $1 $(pgrep -P "$1" || true); do sum=$(( sum + $(awk '/VmRSS/ {print $2}' "/proc/$p/status") )); done; echo $sum; }
iam_conns() { ss -Htn state established "( dport = :$1 )" 2>/dev/null | wc -l; }
pcts() { awk '$1 == "50%" {p50=$2} $1 == "99%" {p99=$2} /requests in/ {n=$1} /Non-2xx|Socket errors/ {err=err" "$0} END {printf "%s / %s, %s requests%s", p50, p99, n, (err ? " (" err ")" : "")}'; }

printf '| attack | proxy | RSS before MiB | RSS at peak MiB | IAM connections at peak | unrelated client p50 / p99 |\n|---|---|---:|---:|---:|---|\n'
# The unrelated client with no attack: what each attack's p99 is held against (goal: <= 2x).
for target in nginx userhook; do
  if [ $target = nginx ]; then port=$NGINX_PORT; pid=$(cat "$WORK/px/nginx.pid")
  else port=$UH_PORT; pid=$UH_PID; fi
  wrk -t1 -c4 -d"$(( ATTACK - 5 ))s" --latency "http://127.0.0.1:$port/" >"$WORK/wrk.txt" 2>&1 || true
  printf '| idle | %s | %s | %s | - | %s |\n' $target \
    "$(awk "BEGIN {printf \"%.1f\", $(rss_kb "$pid") / 1024}")" "$(awk "BEGIN {printf \"%.1f\", $(rss_kb "$pid") / 1024}")" "$(pcts < "$WORK/wrk.txt")"
done
for attack in slowloris largehead flood slowupload; do
  case $attack in largehead) n=$HEADS ;; slowupload) n=$UPLOADS ;; *) n=$N ;; esac
  for target in nginx userhook; do
    if [ $target = nginx ]; then port=$NGINX_PORT; pid=$(cat "$WORK/px/nginx.pid"); up=$UP_NGX
    else port=$UH_PORT; pid=$UH_PID; up=$UP_UH; fi
    before=$(rss_kb "$pid")
    python3 "$WORK/attack.py" $attack $port $n $ATTACK & apid=$!
    sleep 3
    wrk -t1 -c4 -d"$(( ATTACK - 5 ))s" --latency "http://127.0.0.1:$port/" >"$WORK/wrk.txt" 2>&1 & wpid=$!
    sleep $(( ATTACK / 2 ))
    peak=$(rss_kb "$pid"); conns=$(iam_conns $up)
    wait $wpid || true
    lat=$(pcts < "$WORK/wrk.txt")
    wait $apid 2>/dev/null || true
    printf '| %s (%s) | %s | %s | %s | %s | %s |\n' $attack $n $target \
      "$(awk "BEGIN {printf \"%.1f\", $before / 1024}")" "$(awk "BEGIN {printf \"%.1f\", $peak / 1024}")" "$conns" "$lat"
    sleep 2
  done
done
