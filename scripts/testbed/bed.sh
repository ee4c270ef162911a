#!/usr/bin/env bash
# The scale-out test bed by hand: 3 eco servers behind HAProxy, 2 client hosts, all in
# network namespaces of this run (see lib.sh for the layout). Everything is removed on
# exit, also on Ctrl-C or failure.
#
#   scripts/testbed/bed.sh demo [ECO]   bring it up, load it from both clients for 5 s
#                                       through HAProxy, print the merged report, tear down
#   scripts/testbed/bed.sh up [ECO]     bring it up and wait (Ctrl-C tears it down); prints
#                                       the commands to run things on its hosts
#   scripts/testbed/bed.sh clean        remove beds left by runs that were SIGKILLed
#
# ECO defaults to build/release/eco. Needs root (network namespaces) and haproxy.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

cmd=${1:-}
BED_ECO=$(readlink -f "${2:-$HERE/../../build/release/eco}")

case "$cmd" in
  clean)
    bed_clean_stale
    exit 0
    ;;
  demo | up) ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac

why=$(bed_can_run) || bed_die "cannot build the bed here: $why"
[ -x "$BED_ECO" ] || bed_die "no eco binary at $BED_ECO (build it, or pass its path)"
bed_clean_stale
bed_init
trap bed_down EXIT
trap 'exit 130' INT TERM
bed_up
bed_start_servers
bed_start_haproxy
bed_log "up: $BED_PREFIX ($BED_FEATURES); HAProxy sees: $(bed_backend_states | tr '\n' ' ')"

if [ "$cmd" = demo ]; then
  pids=()
  for h in "${BED_CLIENTS[@]}"; do
    ip netns exec "$(bed_ns "$h")" "$BED_ECO" bench "$(bed_addr lb):$BED_PORT" --conns 16 --duration 5s \
      --json -q >"$BED_DIR/$h.json" </dev/null &
    pids+=($!)
  done
  rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=$?; done
  "$BED_ECO" bench merge "$BED_DIR"/c*.json || rc=$?
  exit $rc
fi

cat <<EOF
The bed is up. In another shell (as root):
  ip netns exec $(bed_ns c1) $BED_ECO bench $(bed_addr lb):$BED_PORT --conns 16 --duration 10s
  ip netns exec $(bed_ns c2) $BED_ECO send $(bed_addr lb):$BED_PORT "hello"
  ip netns exec $(bed_ns c1) $BED_ECO bench udp://$BED_VIP:$BED_PORT --conns 12      (ECMP to s1..s3)
  ip netns exec $(bed_ns lb) bash -c 'exec 3<>/dev/tcp/127.0.0.1/9999; echo "show stat" >&3; cat <&3'
  kill -TERM \$(cat $BED_DIR/s2.pid)                         (drain s2; HAProxy routes around it)
Logs: $BED_DIR (removed on exit; BED_KEEP=1 keeps them). Ctrl-C tears the bed down.
EOF
while true; do sleep 3600; done
