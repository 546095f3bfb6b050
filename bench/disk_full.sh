#!/usr/bin/env bash
# A real full disk under the spool (needs root to mount a tmpfs; CI uses tests/disk_faults.rs
# and its fault-injecting file layer instead). Mounts a 20 MiB tmpfs, fills it to ~1 MiB free,
# runs userhook (debug build unless USERHOOK_BIN is set) in front of a tiny IAM with a webhook
# receiver that is down (so deliveries stay pending), sends creates until the spool faults,
# shows /readyz and /spool, frees the space, waits for recovery, then times SIGTERM.
#   bash bench/disk_full.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${USERHOOK_BIN:-${CARGO_TARGET_DIR:-target}/debug/userhook}
[ -x "$BIN" ] || { echo "build first: cargo build (or set USERHOOK_BIN)"; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root to mount a tmpfs"; exit 2; }
WORK=$(mktemp -d)
MNT=$WORK/spool
mkdir -p "$MNT"
mount -t tmpfs -o size=20m tmpfs "$MNT"
cleanup() {
  [ -n "${UH:-}" ] && kill "$UH" 2>/dev/null || true
  [ -n "${IAM:-}" ] && kill "$IAM" 2>/dev/null || true
  umount "$MNT" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

python3 - "$WORK/iam.port" <<'PY' &
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("content-length", 0)); body = self.rfile.read(n)
        self.send_response(201); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1])); s.serve_forever()
PY
IAM=$!
for _ in $(seq 50); do [ -s "$WORK/iam.port" ] && break; sleep 0.1; done
cat > "$WORK/userhook.yaml" <<YAML
listen: 127.0.0.1:18080
upstream: http://127.0.0.1:$(cat "$WORK/iam.port")
admin: {listen: 127.0.0.1:19090}
profiles: [generic]
timeouts: {shutdown_grace: 5s}
delivery: {spool_dir: $MNT}
webhooks:
  - {name: down, actions: ["*"], url: "http://127.0.0.1:9/hook"}
YAML
"$BIN" serve --config "$WORK/userhook.yaml" 2> "$WORK/log" &
UH=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:19090/healthz >/dev/null && break; sleep 0.1; done
# Leave about 1 MiB free.
FREE=$(df --output=avail -B1 "$MNT" | tail -1)
dd if=/dev/zero of="$MNT/filler" bs=1M count=$(( FREE / 1048576 - 1 )) status=none || true
echo "free after filler: $(df --output=avail -h "$MNT" | tail -1)"
sent=0
while curl -s http://127.0.0.1:19090/readyz | grep -q '"ready":true'; do
  for i in $(seq 50); do
    curl -s -o /dev/null -X POST -H 'content-type: application/json' \
      -d "{\"id\":\"u$sent-$i\",\"username\":\"user$sent\",\"email\":\"u$sent@example.com\"}" http://127.0.0.1:18080/users
  done
  sent=$(( sent + 50 ))
  [ $sent -gt 20000 ] && { echo "the disk never filled"; exit 1; }
done
echo "after $sent creates: /readyz $(curl -s http://127.0.0.1:19090/readyz)"
for i in $(seq 100); do
  curl -s -o /dev/null -X POST -H 'content-type: application/json' -d '{"id":"x","username":"x"}' http://127.0.0.1:18080/users
done
echo "/spool: $(curl -s http://127.0.0.1:19090/spool)"
echo "RSS: $(grep VmRSS /proc/$UH/status)"
grep -E 'userhook_events_dropped_total\{reason="spool_fault"\}|userhook_spool_writable ' <(curl -s http://127.0.0.1:19090/metrics)
echo "error lines in the log so far: $(grep -c ERROR "$WORK/log")"
rm "$MNT/filler"
start=$(date +%s.%N)
until curl -s http://127.0.0.1:19090/readyz | grep -q '"ready":true'; do sleep 0.1; done
echo "ready again $(echo "$(date +%s.%N) - $start" | bc) s after the space came back"
start=$(date +%s.%N)
kill -TERM "$UH"; wait "$UH" || true; UH=
echo "SIGTERM to exit: $(echo "$(date +%s.%N) - $start" | bc) s"
