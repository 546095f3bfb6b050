#!/usr/bin/env bash
# Before/after in instructions: user-space instructions per request of two userhook binaries,
# counted by valgrind's callgrind, for the same three rows as bench/compare.sh (an unmatched
# GET, a matched user-create POST of ~500 bytes, the same POST unmatched).
#
#   bash bench/insns.sh OLD_BINARY NEW_BINARY        # REQUESTS=2000 CONNS=8 by default
#   KEEP=DIR bash bench/insns.sh ...                 # also keep the callgrind files, per row
#
# Why a second before/after: CPU time per request (compare.sh) moves by a few percent with
# whatever else the machine runs, so a 2% change is lost in it on a shared 2-core machine.
# Instruction counts are the same run after run for the same binary and input, whatever else
# is running. They leave out the kernel's share (the socket calls, the same for both builds)
# and do not see cache misses, so read them beside compare.sh, not instead of it.
#
# Each binary runs under callgrind with instrumentation off; a keep-alive client warms it up,
# instrumentation is switched on, REQUESTS requests go over CONNS keep-alive connections at
# once (as wrk does in compare.sh), and the counts are dumped. All threads are counted: the proxy's and the event
# path's (detection, extraction, the spool) alike. Needs valgrind, nginx and python3.
set -euo pipefail
[ -n "${TRACE:-}" ] && set -x
BEFORE=${1:?usage: insns.sh OLD_BINARY NEW_BINARY}
AFTER=${2:?usage: insns.sh OLD_BINARY NEW_BINARY}
REQUESTS=${REQUESTS:-2000}
CONNS=${CONNS:-8}
W=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
cat > $W/up.conf <<NGX
worker_processes 1; daemon off; pid $W/up.pid; error_log $W/err.log crit;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:18291;
    location = /api/v1/users { default_type application/json; return 201 '{"id":"u-1","username":"alice"}'; }
    location / { default_type application/json; return 200 '{"ok":true}'; } } }
NGX
nginx -c $W/up.conf -p $W & PIDS+=($!)
for n in before after; do
  port=$([ $n = before ] && echo 18292 || echo 18293)
  cat > $W/$n.yaml <<Y
listen: 127.0.0.1:$port
upstream: http://127.0.0.1:18291
admin: {listen: 127.0.0.1:$((port+100))}
routes:
  - {action: created, method: POST, path: /api/v1/users, fields: {ID: response.body.id, Name: request.body.username, Email: request.body.email}}
log: {level: warn}
delivery: {spool_dir: $W/spool-$n}
Y
  bin=$([ $n = before ] && echo "$BEFORE" || echo "$AFTER")
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$W/cg-$n.out \
    "$bin" --workers 1 serve --config $W/$n.yaml 2>$W/vg-$n.log & PIDS+=($!)
  eval "PID_$n=$!"
done
for port in 18292 18293; do
  for _ in $(seq 300); do curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.2; done
done
cat > $W/client.py <<'PY'
import http.client, sys, threading
port, path, method, n, conns = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
body = ('{"username":"alice","email":"alice@example.com","firstName":"Alice","lastName":"Liddell",'
        '"enabled":true,"attributes":{"department":["engineering"],"location":["Shanghai"],'
        '"employeeNumber":["000042"]},"credentials":[{"type":"password","value":"not-a-real-password",'
        '"temporary":false}],"groups":["/staff","/engineering"],"requiredActions":[]}').encode()
failed = []
def run(count):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(count):
        if method == "POST":
            c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        else:
            c.request("GET", path)
        r = c.getresponse(); r.read()
        if r.status >= 300: failed.append(r.status)
threads = [threading.Thread(target=run, args=(n // conns,)) for _ in range(conns)]
for t in threads: t.start()
for t in threads: t.join()
if failed: sys.exit(f"unexpected statuses {sorted(set(failed))} for {method} {path}")
PY
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !t {gsub(",","",$1); t=$1} END {print t}'; }
printf '%-22s %14s %14s %8s\n' row "before Ir/req" "after Ir/req" change
for row in "GET /users/42" "POST /api/v1/users" "POST /api/v1/echo"; do
  method=${row% *}; path=${row#* }
  declare -A per=()
  for n in before after; do
    port=$([ $n = before ] && echo 18292 || echo 18293); eval "pid=\$PID_$n"
    python3 $W/client.py $port "$path" $method 200 "$CONNS"
    callgrind_control -z "$pid" >/dev/null 2>&1
    callgrind_control -i on "$pid" >/dev/null 2>&1
    python3 $W/client.py $port "$path" $method "$REQUESTS" "$CONNS"
    callgrind_control -i off "$pid" >/dev/null 2>&1
    rm -f $W/cg-$n.out.*
    callgrind_control -d "$pid" >/dev/null 2>&1
    dump=$(ls -t $W/cg-$n.out.* | head -1)
    per[$n]=$(( $(total "$dump") / REQUESTS ))
    if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; cp "$dump" "$KEEP/$n-${method}${path//\//_}.out"; fi
  done
  awk -v r="$row" -v b=${per[before]} -v a=${per[after]} \
    'BEGIN{printf "%-22s %14d %14d %+7.1f%%\n", r, b, a, (a-b)*100/b}'
done
