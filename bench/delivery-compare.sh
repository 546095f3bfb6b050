#!/usr/bin/env bash
# Before/after for webhook delivery: two builds of `benches/delivery.rs` (deliveries/s through
# the real engine and spool to a receiver on 127.0.0.1), run in alternating rounds, medians
# printed side by side. Throughput on a shared 2-core machine moves by 10% from run to run,
# so one run of each proves nothing; alternating rounds share whatever else the machine does.
#
#   cargo bench --bench delivery --no-run        # prints the bench binary's path; build the
#                                                # old commit the same way in a worktree,
#                                                # with this benches/delivery.rs copied in
#                                                # (older ones ran on glibc's malloc)
#   bash bench/delivery-compare.sh OLD_BENCH_BINARY NEW_BENCH_BINARY   # ROUNDS=5 EVENTS=20000
set -euo pipefail
BEFORE=${1:?usage: delivery-compare.sh OLD_BENCH_BINARY NEW_BENCH_BINARY}
AFTER=${2:?usage: delivery-compare.sh OLD_BENCH_BINARY NEW_BENCH_BINARY}
ROUNDS=${ROUNDS:-5}
export EVENTS=${EVENTS:-20000}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for round in $(seq "$ROUNDS"); do
  # Who goes first alternates too, so neither build always runs on a cooler machine.
  order="before after"; [ $((round % 2)) = 0 ] && order="after before"
  for n in $order; do
    bin=$([ $n = before ] && echo "$BEFORE" || echo "$AFTER")
    # Rows are "concurrency unsigned signed"; the header lines are dropped.
    "$bin" --bench | awk '$1 ~ /^[0-9]+$/ && NF == 3' >> "$W/$n"
  done
  echo "round $round of $ROUNDS done" >&2
done
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
echo "webhook deliveries/s, medians of $ROUNDS alternating rounds, $EVENTS deliveries per row"
printf '%12s %12s %12s %8s %12s %12s %8s\n' concurrency "unsigned old" "unsigned new" change "signed old" "signed new" change
for c in $(awk '{print $1}' "$W/before" | sort -nu); do
  row=()
  for col in 2 3; do
    old=$(awk -v c="$c" -v k="$col" '$1 == c {print $k}' "$W/before" | median)
    new=$(awk -v c="$c" -v k="$col" '$1 == c {print $k}' "$W/after" | median)
    row+=("$old" "$new" "$(awk -v a="$old" -v b="$new" 'BEGIN {if (a > 0) printf "%+.1f%%", (b - a) * 100 / a; else print "n/a"}')")
  done
  printf '%12s %12.0f %12.0f %8s %12.0f %12.0f %8s\n' "$c" "${row[@]}"
done
