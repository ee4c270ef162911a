#!/bin/bash
# Runs a command while tracefs records the kernel's workqueue events, then reports the
# sockmap engine's psock work (sk_psock_backlog): how many items ran, how long they
# waited in the queue and how long they ran (bench/psock_wq_trace.py). As root.
#   bench/psock_wq_trace.sh build/release/tests/hostile/hostile_tests \
#       --gtest_filter='*TenThousand*/sockmap'
# It shows the late echoes under two concurrent floods as psock retries (docs/engines.md,
# "Under TCP memory pressure"). The trace buffer (128 MiB per CPU) is put back afterwards.
set -u
T=/sys/kernel/tracing
OUT=${OUT:-/tmp/psock_wq.trace}
EVENTS="workqueue_queue_work workqueue_execute_start workqueue_execute_end"
[ -d $T/events/workqueue ] || { echo "psock_wq_trace: no tracefs workqueue events at $T" >&2; exit 2; }
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
old_size=$(sed 's/ .*//' $T/buffer_size_kb)
restore() {
  echo 0 > $T/tracing_on
  for e in $EVENTS; do echo 0 > $T/events/workqueue/$e/enable; done
  echo > $T/trace
  echo "$old_size" > $T/buffer_size_kb
}
trap restore EXIT
echo 0 > $T/tracing_on
echo > $T/trace
echo 131072 > $T/buffer_size_kb
for e in $EVENTS; do echo 1 > $T/events/workqueue/$e/enable; done
echo 1 > $T/tracing_on
"$@"
rc=$?
echo 0 > $T/tracing_on
cat $T/trace > "$OUT"
python3 "$(dirname "$0")/psock_wq_trace.py" "$OUT"
exit $rc
