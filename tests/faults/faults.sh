#!/usr/bin/env bash
# Network-fault test for one engine: `eco serve` and the clients (`eco bench`, `eco send`)
# run in two network namespaces of their own joined by a veth pair, and faults are
# injected with what this kernel has (no tc netem): nftables random drops in either
# direction, a tbf qdisc (bandwidth + queueing delay), `ip link set down` mid-transfer,
# and tests/tools/fault_proxy for delay/jitter, 1-byte re-segmentation, stalls and
# injected resets. Under each fault every byte is verified (bench and send compare every
# echoed byte): zero mismatches, and the server is healthy afterwards (it echoes, its fd
# count is back to its baseline). Namespaces and processes are torn down on any exit.
#
# Usage: faults.sh ECO_BINARY FAULT_PROXY_BINARY ENGINE
# Addresses: 198.18.0.0/15 (RFC 2544, reserved for benchmark testing), only inside the
# two namespaces made here; nothing leaves the machine.
set -euo pipefail
ECO=$1 PROXY=$2 ENGINE=$3
SKIP=77  # ctest SKIP_RETURN_CODE

say() { echo "faults[$ENGINE]: $*"; }
fail() { echo "faults[$ENGINE]: FAIL: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then say "SKIP: needs root to create network namespaces"; exit $SKIP; fi
for tool in ip nft tc python3; do
  command -v $tool >/dev/null || { say "SKIP: '$tool' not installed (Debian package: apt-get install nftables iproute2)"; exit $SKIP; }
done

id=$(( ($$ + RANDOM) % 100000 ))
NS_C=eco-f$id-c NS_S=eco-f$id-s VC=ef${id}c VS=ef${id}s
ADDR_C=198.18.0.1 ADDR_S=198.18.0.2 PORT=7000
TMP=$(mktemp -d /tmp/eco-faults-XXXXXX)
SPID="" PPID_PROXY=""
cleanup() {
  local rc=$?
  [ -n "$PPID_PROXY" ] && kill -9 "$PPID_PROXY" 2>/dev/null || true
  [ -n "$SPID" ] && kill -9 "$SPID" 2>/dev/null || true
  wait 2>/dev/null || true
  ip netns del "$NS_C" 2>/dev/null || true
  ip netns del "$NS_S" 2>/dev/null || true
  if [ $rc -ne 0 ] && [ $rc -ne $SKIP ] && [ -f "$TMP/server.log" ]; then
    echo "--- server log (tail) ---" >&2; tail -20 "$TMP/server.log" >&2
  fi
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! ip netns add "$NS_C" 2>"$TMP/err" || ! ip netns add "$NS_S" 2>>"$TMP/err"; then
  say "SKIP: cannot create network namespaces: $(cat "$TMP/err")"; exit $SKIP
fi
C() { ip netns exec "$NS_C" "$@"; }
S() { ip netns exec "$NS_S" "$@"; }
ip link add "$VC" netns "$NS_C" type veth peer name "$VS" netns "$NS_S"
C ip addr add $ADDR_C/30 dev "$VC"; S ip addr add $ADDR_S/30 dev "$VS"
C ip link set lo up; S ip link set lo up
C ip link set "$VC" up; S ip link set "$VS" up
C nft add table inet eco_faults; S nft add table inet eco_faults
C nft add chain inet eco_faults out '{ type filter hook output priority 0; }'
S nft add chain inet eco_faults out '{ type filter hook output priority 0; }'

# ---- the server ----
# (ip netns exec execs the command, so $! is eco itself: the trap can kill it.)
ip netns exec "$NS_S" "$ECO" serve --engine "$ENGINE" --listen $ADDR_S:$PORT --threads 2 --quiet --drain-timeout 2s \
  --port-file "$TMP/port" 2>"$TMP/server.log" &
SPID=$!
for _ in $(seq 300); do [ -s "$TMP/port" ] && break; sleep 0.05; done
[ -s "$TMP/port" ] || fail "server did not start: $(cat "$TMP/server.log")"
sleep 0.3
fd_count() { ls /proc/"$SPID"/fd 2>/dev/null | wc -l; }
BASE_FDS=$(fd_count)
TARGET=$ADDR_S:$PORT

# The server echoes, runs, and its fd count comes back to the baseline (bounded wait).
healthy() {
  local what=$1 limit=${2:-20} n
  kill -0 "$SPID" 2>/dev/null || fail "$what: server died"
  out=$(C "$ECO" send --timeout 5s "$TARGET" "healthy after $what" 2>&1) || fail "$what: echo failed afterwards: $out"
  for _ in $(seq $((limit * 10))); do n=$(fd_count); [ "$n" -eq "$BASE_FDS" ] && break; sleep 0.1; done
  [ "$n" -eq "$BASE_FDS" ] || fail "$what: server holds $n fds, baseline $BASE_FDS (leak)"
}

# eco bench with every byte verified; the JSON must show traffic, zero mismatches and
# (unless $2 = allow-errors) no errors at all.
bench() {
  local what=$1 policy=$2; shift 2
  local rc=0
  C timeout 60 "$ECO" bench "$@" --json --quiet >"$TMP/bench.json" 2>"$TMP/bench.err" || rc=$?
  [ $rc -ne 124 ] || fail "$what: eco bench hung (killed after 60 s)"
  python3 - "$TMP/bench.json" "$what" "$policy" <<'PY' || fail "$what: $(tail -3 "$TMP/bench.err")"
import json, sys
r = json.load(open(sys.argv[1])); what, policy = sys.argv[2], sys.argv[3]
e = r["errors"]; total = sum(e.values())
print(f"  {what}: {r['round_trips']} echoes, {r['bytes']} bytes verified, p99 {r['latency_us']['p99']:.0f} us, "
      f"mismatches {e['mismatch']}, errors {total}")
assert e["mismatch"] == 0, "mismatched bytes"
assert r["bytes"] > 0, "no traffic"
if policy != "allow-errors": assert total == 0, f"errors: {e}"
PY
  [ $rc -eq 0 ] || [ "$policy" = allow-errors ] || fail "$what: eco bench exited $rc: $(tail -3 "$TMP/bench.err")"
}

# eco send of a random file (it compares every echoed byte): exit 0 expected.
head -c $((1 << 20)) /dev/urandom >"$TMP/1M"
head -c $((64 << 10)) /dev/urandom >"$TMP/64K"
send_file() {
  local what=$1 file=$2 target=${3:-$TARGET} rc=0
  C timeout 60 "$ECO" send --timeout 10s --file "$file" "$target" >/dev/null 2>"$TMP/send.err" || rc=$?
  [ $rc -eq 0 ] || fail "$what: eco send of $(stat -c %s "$file") bytes exited $rc: $(cat "$TMP/send.err")"
  say "  $what: eco send $(stat -c %s "$file") bytes verified"
}

say "server $ENGINE pid $SPID, baseline $BASE_FDS fds"

# ---- no fault: the setup itself works ----
bench "no fault" strict "$TARGET" --conns 8 --size 1024 --duration 1s --warmup 200ms
healthy "no fault"

# ---- random loss (nftables numgen), each direction, then both ----
loss() {  # $1 = c|s|both, $2 = percent
  C nft flush chain inet eco_faults out; S nft flush chain inet eco_faults out
  if [ "$1" = c ] || [ "$1" = both ]; then C nft add rule inet eco_faults out numgen random mod 100 '<' "$2" drop; fi
  if [ "$1" = s ] || [ "$1" = both ]; then S nft add rule inet eco_faults out numgen random mod 100 '<' "$2" drop; fi
}
for dir in c s both; do
  loss $dir 5
  bench "5% loss ($dir)" strict "$TARGET" --conns 4 --mode stream --size 16384 --depth 4 --duration 2s \
    --warmup 0s --timeout 10s
  send_file "5% loss ($dir)" "$TMP/1M"
done
loss c 0; C nft flush chain inet eco_faults out
healthy "loss"

# ---- bandwidth limit + queueing delay (tbf) on both ends ----
C tc qdisc add dev "$VC" root tbf rate 20mbit burst 32kb latency 50ms
S tc qdisc add dev "$VS" root tbf rate 20mbit burst 32kb latency 50ms
bench "tbf 20 Mbit/s" strict "$TARGET" --conns 4 --mode stream --size 65536 --depth 2 --duration 2s --warmup 0s \
  --timeout 10s
send_file "tbf 20 Mbit/s" "$TMP/1M"
C tc qdisc del dev "$VC" root; S tc qdisc del dev "$VS" root
healthy "tbf"

# ---- the fault proxy (in the client namespace, on its loopback) ----
proxy() {
  rm -f "$TMP/pport"
  ip netns exec "$NS_C" "$PROXY" --listen 127.0.0.1:0 --upstream "$TARGET" --port-file "$TMP/pport" --max-seconds 60 "$@" \
    2>"$TMP/proxy.log" &
  PPID_PROXY=$!
  for _ in $(seq 100); do [ -s "$TMP/pport" ] && break; sleep 0.05; done
  [ -s "$TMP/pport" ] || fail "fault_proxy did not start: $(cat "$TMP/proxy.log")"
  PTARGET=127.0.0.1:$(cat "$TMP/pport")
}
proxy_stop() { kill "$PPID_PROXY" 2>/dev/null || true; wait "$PPID_PROXY" 2>/dev/null || true; PPID_PROXY=""; }

proxy --delay-ms 2 --jitter-ms 15
bench "delay 2 ms + jitter 0-15 ms" strict "$PTARGET" --conns 4 --depth 4 --size 4096 --duration 2s --warmup 0s
send_file "delay + jitter" "$TMP/1M" "$PTARGET"
proxy_stop; healthy "delay + jitter"

proxy --chunk 1
bench "1-byte segments" strict "$PTARGET" --conns 2 --size 2000 --duration 1s --warmup 0s
send_file "1-byte segments" "$TMP/64K" "$PTARGET"
proxy_stop; healthy "1-byte segments"

proxy --stall-every 65536 --stall-ms 800
send_file "800 ms stall every 64 KiB" "$TMP/1M" "$PTARGET"
proxy_stop; healthy "stalls"

# An injected reset mid-echo: eco send must end with one clean error line and a failure
# exit (3: connection reset, or 1: short echo if the close won the race), not hang and
# not claim success; the server must not notice beyond a close.
proxy --reset-after 300000
rc=0; C timeout 30 "$ECO" send --timeout 5s --file "$TMP/1M" "$PTARGET" >/dev/null 2>"$TMP/send.err" || rc=$?
[ $rc -eq 3 ] || [ $rc -eq 1 ] || fail "injected reset: eco send exited $rc (want 3 or 1): $(cat "$TMP/send.err")"
grep -q '^eco: ' "$TMP/send.err" || fail "injected reset: no 'eco: ' error line: $(cat "$TMP/send.err")"
say "  injected reset: eco send exit $rc: $(head -1 "$TMP/send.err")"
bench "resets every 300 KB" allow-errors "$PTARGET" --conns 2 --mode stream --size 16384 --duration 1s --warmup 0s
proxy_stop; healthy "injected resets"

# ---- the link goes down mid-transfer ----
# Clients must end by themselves with clean errors (bench: counted timeouts, no
# mismatch; send: exit 3) within their timeouts; once the link is back the server's
# retransmissions meet the client's RSTs and it closes everything: fds back to baseline.
start=$SECONDS
ip netns exec "$NS_C" timeout 60 "$ECO" bench "$TARGET" --conns 4 --mode stream --size 16384 --duration 8s --warmup 0s --timeout 1s \
  --json --quiet >"$TMP/down.json" 2>"$TMP/down.err" &
bpid=$!
sleep 1
C ip link set "$VC" down
# A client that arrives while the link is down: a clean connect timeout, exit 3.
rc2=0; C timeout 30 "$ECO" send --timeout 2s "$TARGET" "anyone there?" >/dev/null 2>"$TMP/down-send.err" || rc2=$?
[ $rc2 -eq 3 ] || fail "link down: eco send exited $rc2 (want 3): $(cat "$TMP/down-send.err")"
grep -q '^eco: ' "$TMP/down-send.err" || fail "link down: no 'eco: ' error line from eco send"
rc=0; wait $bpid || rc=$?
[ $rc -ne 124 ] || fail "link down: eco bench hung"
took=$((SECONDS - start))
python3 - "$TMP/down.json" <<'PY' || fail "link down: bench report: $(tail -3 "$TMP/down.err")"
import json, sys
r = json.load(open(sys.argv[1])); e = r["errors"]
print(f"  link down: bench ended with {r['bytes']} bytes verified, mismatches {e['mismatch']}, "
      f"timeouts {e['timeout']}, other errors {sum(e.values()) - e['timeout']}")
assert e["mismatch"] == 0 and r["bytes"] > 0
assert sum(e.values()) > 0, "a dead link must show as errors"
PY
say "  link down: clients ended in $took s (bench exit $rc, send exit $rc2: $(head -1 "$TMP/down-send.err"))"
[ $took -le 30 ] || fail "link down: clients took $took s to give up"
C ip link set "$VC" up
healthy "link down and up" 60

# ---- finally a clean stop ----
kill -TERM "$SPID"
rc=0; timeout 10 tail --pid="$SPID" -f /dev/null || fail "server did not exit within 10 s of SIGTERM"
wait "$SPID" || rc=$?
SPID=""
[ $rc -eq 0 ] || fail "server exited $rc after SIGTERM"
grep -qiE 'AddressSanitizer|runtime error|ThreadSanitizer' "$TMP/server.log" && fail "sanitizer report in server log"
say "PASS"
