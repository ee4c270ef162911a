#!/usr/bin/env bash
# Scale-out on the namespace test bed (scripts/testbed/): 3 eco servers behind HAProxy
# (TCP mode, health checks, PROXY v2), 2 load clients; then UDP over ECMP anycast.
#
#   1. load from both client hosts through HAProxy, every echoed byte verified, spread
#      over all three servers, which see the real client addresses (PROXY v2);
#   2. --deny and --max-conns-per-ip applied to those real addresses: client 2 is
#      refused while client 1 is served; client 1 over its per-address limit is cut;
#   3. one server gets SIGTERM mid-run: it drains and exits 0, HAProxy routes around it,
#      no mismatch, only the connections it held are cut; the two clients' JSON results
#      combined with `eco bench merge`;
#   4. UDP to an anycast address over an ECMP route: sockets spread over the servers.
#
# Usage: [BED_ENGINE=epoll|uring|...] scale_test.sh ECO_BINARY. Exit 0 pass, 1 fail, 77 skipped
# (no namespaces or no haproxy here). An eco without working --proxy-protocol, --deny on
# the PROXY source or --metrics fails at bed_up (scripts/testbed/probe.py names which).
set -euo pipefail

ECO=${1:?usage: scale_test.sh ECO_BINARY}
ECO=$(readlink -f "$ECO")
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../scripts/testbed/lib.sh
source "$HERE/../../scripts/testbed/lib.sh"
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3

if ! why=$(bed_can_run); then
  echo "SKIP: scale test needs network namespaces: $why"
  exit 77
fi
command -v haproxy >/dev/null 2>&1 || { echo "SKIP: scale test needs haproxy (scripts/install-deps.sh installs it)"; exit 77; }

passed=0 failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() {  # check "what" test-args...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
# A field of a bench JSON result, by Python expression on `d`: jq FILE 'd["errors"]["mismatch"]'.
jq() { "$PY" -c 'import json,sys
try: d=json.load(open(sys.argv[1]))
except Exception as e: print(-1); sys.stderr.write("scale: cannot read %s: %s\n" % (sys.argv[1], e)); sys.exit(0)
print(eval(sys.argv[2]))' "$1" "$2"; }
errors_total() { jq "$1" 'sum(d["errors"].values())'; }
# Connect events in a server's JSON log, optionally only from one peer address.
connects() { grep -c "\"event\":\"connect\".*\"peer\":\"${2:-}" "$BED_DIR/$1.log" || true; }
# Reject events in the servers' JSON logs for one reason and peer address.
rejects() { cat "$BED_DIR"/s[0-9].log | grep '"event":"reject"' | grep "\"reason\":\"$1\"" | grep -c "\"peer\":\"$2:" || true; }
# The "refused: denied=N ..." counts from a stopped server's last log line.
refused() { local n; n=$(grep -o "$2=[0-9]*" "$BED_DIR/$1.log" | tail -1 | cut -d= -f2 || true); echo "${n:-0}"; }

bed_clean_stale
BED_ECO=$ECO
bed_init
on_exit() {
  local rc=$?
  if [ $rc -ne 0 ] || [ $failed -ne 0 ]; then
    for f in "$BED_DIR"/*.log; do [ -f "$f" ] && { echo "--- ${f##*/} (last 15 lines)"; tail -15 "$f"; }; done
    [ -f "$BED_DIR/haproxy.cfg" ] && { echo "--- haproxy.cfg"; cat "$BED_DIR/haproxy.cfg"; }
    BED_KEEP=1  # bed_down keeps the logs for a look
  fi
  bed_down
}
trap on_exit EXIT
trap 'exit 130' INT TERM

T0=$(date +%s)
bed_up
echo "scale: eco features (probed): $BED_FEATURES; engine ${BED_ENGINE:-auto}; bed $BED_PREFIX in $BED_DIR"
LB="$(bed_addr lb):$BED_PORT"
C1=$(bed_addr c1) C2=$(bed_addr c2)

# Runs eco bench on a client host in the background; result JSON in $BED_DIR/<name>.json.
bench_bg() {  # bench_bg HOST NAME ARGS...
  local h=$1 name=$2; shift 2
  ip netns exec "$(bed_ns "$h")" "$ECO" bench "$@" --json -q >"$BED_DIR/$name.json" 2>"$BED_DIR/$name.err" </dev/null &
  BENCH_PID=$!
}
# Sets RC to the exit code of background job $1 (only this shell can reap it: no $(...)).
# Starts the servers' logs afresh, keeping the last phase's as <host>.<phase>.log.
PHASE=load
new_phase() {
  local s
  for s in "${BED_SERVERS[@]}"; do [ -f "$BED_DIR/$s.log" ] && mv "$BED_DIR/$s.log" "$BED_DIR/$s.$PHASE.log"; done
  PHASE=$1
}
wait_rc() { RC=0; wait "$1" || RC=$?; }

# ---- 1. balanced load from two client hosts ----
bed_start_servers
bed_start_haproxy
checks=$(bed_backend_checks | tr '\n' ' ')
check "HAProxy health-checks eco over HTTP on the metrics port ($checks)" test "$(grep -o L7OK <<<"$checks" | wc -l)" = 3
bench_bg c1 load1 "$LB" --conns 6 --duration 2s --warmup 0.3s; p1=$BENCH_PID
bench_bg c2 load2 "$LB" --conns 6 --duration 2s --warmup 0.3s; p2=$BENCH_PID
wait_rc $p1; rc1=$RC; wait_rc $p2; rc2=$RC
check "client 1 load through HAProxy: exit $rc1, $(jq "$BED_DIR/load1.json" 'd["round_trips"]') round trips verified, $(errors_total "$BED_DIR/load1.json") errors" \
  test "$rc1" = 0 -a "$(errors_total "$BED_DIR/load1.json")" = 0 -a "$(jq "$BED_DIR/load1.json" 'd["round_trips"]')" -gt 0
check "client 2 load through HAProxy: exit $rc2, $(jq "$BED_DIR/load2.json" 'd["round_trips"]') round trips verified, $(errors_total "$BED_DIR/load2.json") errors" \
  test "$rc2" = 0 -a "$(errors_total "$BED_DIR/load2.json")" = 0 -a "$(jq "$BED_DIR/load2.json" 'd["round_trips"]')" -gt 0
bed_stop_servers
for s in "${BED_SERVERS[@]}"; do
  check "$s got a share of the 12 connections ($(connects "$s"))" [ "$(connects "$s")" -ge 2 ]
done
n1=0 n2=0 nlb=0
for s in "${BED_SERVERS[@]}"; do
  n1=$((n1 + $(connects "$s" "$C1"))); n2=$((n2 + $(connects "$s" "$C2"))); nlb=$((nlb + $(connects "$s" "$(bed_addr lb):")))
done
check "servers saw the real client addresses via PROXY v2 ($C1: $n1, $C2: $n2, balancer: $nlb)" \
  test "$n1" -ge 6 -a "$n2" -ge 6 -a "$nlb" = 0
"$ECO" bench merge "$BED_DIR/load1.json" "$BED_DIR/load2.json" --json >"$BED_DIR/load_merged.json" || true
merged_rt=$(jq "$BED_DIR/load_merged.json" 'd["round_trips"]')
sum_rt=$(( $(jq "$BED_DIR/load1.json" 'd["round_trips"]') + $(jq "$BED_DIR/load2.json" 'd["round_trips"]') ))
check "eco bench merge adds the two hosts' round trips ($merged_rt = $sum_rt, $(jq "$BED_DIR/load_merged.json" 'd["hosts"]') hosts)" \
  test "$merged_rt" = "$sum_rt" -a "$(jq "$BED_DIR/load_merged.json" 'd["hosts"]')" = 2

# ---- 2. allow/deny and per-client limits on the real addresses ----
bed_wait_backends_down
new_phase limits
bed_start_servers --deny "$C2/32" --max-conns-per-ip 2
bed_wait_backends_up
# Client 1: 3 connections, one per server (round robin), under the limit of 2 per address.
bench_bg c1 limit_ok "$LB" --conns 3 --duration 2s --warmup 0; p1=$BENCH_PID
sleep 0.5
denied_rcs=""
for _ in 1 2 3; do
  rc=0; bed_exec c2 "$ECO" send "$LB" "from client 2" --timeout 3s >/dev/null 2>&1 </dev/null || rc=$?
  denied_rcs+="$rc "
done
wait_rc $p1; rc1=$RC
check "client 1 is served while client 2 is denied (exit $rc1, $(jq "$BED_DIR/limit_ok.json" 'd["round_trips"]') round trips, $(errors_total "$BED_DIR/limit_ok.json") errors)" \
  test "$rc1" = 0 -a "$(errors_total "$BED_DIR/limit_ok.json")" = 0 -a "$(jq "$BED_DIR/limit_ok.json" 'd["round_trips"]')" -gt 0
check "client 2's connections are closed unanswered (eco send exits: $denied_rcs)" \
  bash -c '[[ " $1" != *" 0 "* ]]' _ "$denied_rcs"
# Client 1 with 12 connections: 4 per server, 2 over the per-address limit on each.
bench_bg c1 limit_over "$LB" --conns 12 --duration 1s --warmup 0 --timeout 2s; p1=$BENCH_PID
wait_rc $p1; rc1=$RC
over_err=$(errors_total "$BED_DIR/limit_over.json")
check "client 1 over --max-conns-per-ip is cut (exit $rc1, $over_err connection errors, no mismatch, $(jq "$BED_DIR/limit_over.json" 'd["round_trips"]') round trips still served)" \
  test "$rc1" = 1 -a "$over_err" -gt 0 -a "$(jq "$BED_DIR/limit_over.json" 'd["errors"]["mismatch"]')" = 0 \
  -a "$(jq "$BED_DIR/limit_over.json" 'd["round_trips"]')" -gt 0
bed_stop_servers
denied=0 perip=0
for s in "${BED_SERVERS[@]}"; do
  denied=$((denied + $(refused "$s" denied))); perip=$((perip + $(refused "$s" max_conns_per_ip)))
done
check "servers counted the refusals by reason (denied=$denied >= 3, max_conns_per_ip=$perip > 0)" \
  test "$denied" -ge 3 -a "$perip" -gt 0
# The refusals are logged (at most once a second per reason) with the real client address.
check "refusals logged with the real client: denied $C2, max_conns_per_ip $C1" \
  test "$(rejects denied "$C2")" -gt 0 -a "$(rejects max_conns_per_ip "$C1")" -gt 0 \
  -a "$(rejects denied "$(bed_addr lb)")" = 0 -a "$(rejects max_conns_per_ip "$(bed_addr lb)")" = 0

# ---- 3. one server drained mid-run; HAProxy routes around it ----
bed_wait_backends_down
new_phase drain
BED_DRAIN=1s bed_start_servers
bed_wait_backends_up
bench_bg c1 drain1 "$LB" --conns 6 --duration 4s --warmup 0 --timeout 3s; p1=$BENCH_PID
bench_bg c2 drain2 "$LB" --conns 6 --duration 4s --warmup 0 --timeout 3s; p2=$BENCH_PID
sleep 0.3
# The server to stop: the one holding most of the 12 request/echo connections (round
# robin gives each 4; taking the busiest keeps the test meaningful if it does not).
victim="" held=0 spread=""
for s in "${BED_SERVERS[@]}"; do
  n=$(connects "$s"); spread+="$s=$n "
  if [ "$n" -gt "$held" ]; then victim=$s held=$n; fi
done
others=(); for s in "${BED_SERVERS[@]}"; do [ "$s" != "$victim" ] && others+=("$s"); done
check "request/echo connections spread over the servers before the stop ($spread)" test "$held" -gt 0
[ -n "$victim" ] || victim=s2
# And a new connection per request from client 2, so connects keep arriving while the server
# stops: those refused by its closed listener must be redispatched, never seen by the client.
bench_bg c2 drain_crr "$LB" --mode crr --conns 2 --duration 4s --warmup 0 --timeout 3s; p3=$BENCH_PID
# The /readyz and /healthz probe of the drain window (1 s) is started now and waits on a
# FIFO: starting a shell in a namespace can take longer than the window on a loaded
# machine, and a probe started late finds a server that has already exited.
mkfifo "$BED_DIR/probe.go"
bed_exec lb bash -c 'read -r _ <"$1"; for p in /readyz /healthz; do
    (exec 3<>"/dev/tcp/$2/$3" && printf "GET %s HTTP/1.0\r\n\r\n" "$p" >&3 && head -1 <&3 | tr -d "\r") 2>/dev/null || echo "no answer"
  done' _ "$BED_DIR/probe.go" "$(bed_addr "$victim")" "$BED_METRICS_PORT" >"$BED_DIR/probe.out" &
probe_pid=$!
sleep 0.9
before=$(( $(connects "${others[0]}") + $(connects "${others[1]}") ))
bed_signal_server "$victim" TERM
# While it drains: not ready (HAProxy's check fails, no new connections), still alive.
# Probed once the server has said it is draining (bounded wait), so never before.
for _ in $(seq 100); do grep -q 'no longer accepting' "$BED_DIR/$victim.log" && break; sleep 0.01; done
echo go >"$BED_DIR/probe.go"
wait "$probe_pid" || true
ready=$(sed -n 1p "$BED_DIR/probe.out") alive=$(sed -n 2p "$BED_DIR/probe.out")
check "draining $victim: /readyz says '$ready', /healthz says '$alive'" \
  test "$(cut -d' ' -f2 <<<"$ready")" = 503 -a "$(cut -d' ' -f2 <<<"$alive")" = 200
bed_wait_server "$victim" 5
check "$victim drained and exited 0 after SIGTERM (exit $BED_STOP_RC)" [ "$BED_STOP_RC" = 0 ]
check "HAProxy marked $victim DOWN" bed_wait_backend "$victim" DOWN
wait_rc $p1; rc1=$RC; wait_rc $p2; rc2=$RC; wait_rc $p3; rc3=$RC
e1=$(errors_total "$BED_DIR/drain1.json"); e2=$(errors_total "$BED_DIR/drain2.json")
# At most a connection or two may be lost: eco closes its listener at SIGTERM, and a
# connection already in its accept queue then is reset after HAProxy has forwarded the
# request (so it cannot be redispatched). None may be refused, time out or differ.
crr_cut=$(jq "$BED_DIR/drain_crr.json" 'd["errors"]["short_read"]+d["errors"]["reset"]')
check "a connection per request through the drain: $(jq "$BED_DIR/drain_crr.json" 'd["round_trips"]') connections, $crr_cut cut from $victim's accept queue (<= 2), no other error ($(jq "$BED_DIR/drain_crr.json" 'd["errors"]'))" \
  test "$crr_cut" -le 2 -a "$(errors_total "$BED_DIR/drain_crr.json")" = "$crr_cut" -a "$(jq "$BED_DIR/drain_crr.json" 'd["round_trips"]')" -gt 100
mm=$(( $(jq "$BED_DIR/drain1.json" 'd["errors"]["mismatch"]') + $(jq "$BED_DIR/drain2.json" 'd["errors"]["mismatch"]') ))
bad=$(( $(jq "$BED_DIR/drain1.json" 'd["errors"]["refused"]+d["errors"]["timeout"]+d["errors"]["other"]') \
      + $(jq "$BED_DIR/drain2.json" 'd["errors"]["refused"]+d["errors"]["timeout"]+d["errors"]["other"]') ))
check "no mismatch through the drain ($mm)" [ "$mm" = 0 ]
# What the server itself said it held when SIGTERM came ("draining N connections").
draining=$(grep -o -m1 'draining [0-9]* connection' "$BED_DIR/$victim.log" | cut -d' ' -f2)
check "$victim was draining connections at SIGTERM (${draining:-none})" test "${draining:-0}" -gt 0
check "only connections $victim held were cut: $((e1 + e2)) request/echo connections cut (short read/reset) of the ${draining:-0} it was draining; none refused or timed out ($bad)" \
  test $((e1 + e2)) -le "${draining:-0}" -a "$bad" = 0
after=$(( $(connects "${others[0]}") + $(connects "${others[1]}") ))
check "the cut connections were reopened on ${others[*]} ($after connects there, $before before the stop)" [ "$after" -ge $((before + e1 + e2)) ]
"$ECO" bench merge "$BED_DIR/drain1.json" "$BED_DIR/drain2.json" >"$BED_DIR/drain_merged.txt" || true
"$ECO" bench merge "$BED_DIR/drain1.json" "$BED_DIR/drain2.json" --json >"$BED_DIR/drain_merged.json" || true
echo "--- merged report of the drain run (2 client hosts):"; cat "$BED_DIR/drain_merged.txt"
check "merged drain report: $(jq "$BED_DIR/drain_merged.json" 'd["round_trips"]') round trips, errors = $((e1 + e2)) summed" \
  test "$(errors_total "$BED_DIR/drain_merged.json")" = $((e1 + e2)) -a "$(jq "$BED_DIR/drain_merged.json" 'd["hosts"]')" = 2
bed_stop_servers
bed_stop_haproxy

# ---- 4. UDP: anycast address, ECMP route on each client, hashed on the 5-tuple ----
new_phase udp
bed_start_servers
bench_bg c1 udp1 "udp://$BED_VIP:$BED_PORT" --conns 12 --duration 1s --warmup 0; p1=$BENCH_PID
bench_bg c2 udp2 "udp://$BED_VIP:$BED_PORT" --conns 12 --duration 1s --warmup 0; p2=$BENCH_PID
wait_rc $p1; rc1=$RC; wait_rc $p2; rc2=$RC
check "UDP through ECMP from both clients: exit $rc1/$rc2, $(jq "$BED_DIR/udp1.json" 'd["round_trips"]')/$(jq "$BED_DIR/udp2.json" 'd["round_trips"]') round trips, $(errors_total "$BED_DIR/udp1.json")/$(errors_total "$BED_DIR/udp2.json") errors" \
  test "$rc1" = 0 -a "$rc2" = 0 -a "$(errors_total "$BED_DIR/udp1.json")" = 0 -a "$(errors_total "$BED_DIR/udp2.json")" = 0
bed_stop_servers
spread=""; used=0
for s in "${BED_SERVERS[@]}"; do
  n=$(grep -o '[0-9]* UDP datagram' "$BED_DIR/$s.log" | tail -1 | cut -d' ' -f1); n=${n:-0}
  spread+="$s=$n "; [ "$n" -gt 0 ] && used=$((used + 1))
done
check "24 UDP sockets spread over the servers by ECMP ($spread)" [ "$used" -ge 2 ]

echo "scale: $(( $(date +%s) - T0 )) s on the bed"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
