#!/usr/bin/env bash
# Where a server's time goes, in figures that do not depend on machine noise:
# system calls per round trip (strace -c -f) and user-space instructions per round
# trip (valgrind --tool=callgrind), for eco's engines and the compiled peers, under
# the same `eco bench` load (C connections × S bytes, closed loop). Used to tell
# whether eco loses to a peer in user space (instructions) or in how it drives the
# kernel (syscalls), or not at all (docs/benchmarks.md, "Where the time goes").
#
#   bench/profile_peers.sh [C] [S] [SECONDS]    (defaults: 50 64 3)
# Needs: build/release/eco (make build), build/peers (bench/peers/build.sh), strace, valgrind.
set -euo pipefail

C=${1:-50}
S=${2:-64}
T=${3:-3}
ECO=${ECO:-build/release/eco}
PEERS=${PEERS:-build/peers/bin}
for tool in strace valgrind taskset python3; do
  command -v $tool >/dev/null || { echo "profile_peers: needs $tool" >&2; exit 2; }
done
[[ -x $ECO ]] || { echo "profile_peers: no eco binary at $ECO (make build)" >&2; exit 2; }

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

servers=(
  "eco-uring|$ECO serve --engine uring --threads 1 --quiet --listen 127.0.0.1:PORT"
  "eco-epoll|$ECO serve --engine epoll --threads 1 --quiet --listen 127.0.0.1:PORT"
)
[[ -x $PEERS/tight_epoll ]] && servers+=("tight-c|$PEERS/tight_epoll PORT")
[[ -x $PEERS/asio_echo ]] && servers+=("asio|$PEERS/asio_echo PORT 1")
[[ -x $PEERS/tokio_echo ]] && servers+=("tokio|$PEERS/tokio_echo PORT 1")
# Go under valgrind is not reliable (its runtime's signals and threads); strace only.
[[ -x $PEERS/go_net ]] && servers+=("go|$PEERS/go_net PORT 1")

wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }

bench() {  # port -> round trips (exits on any echo error)
  local out
  out=$(taskset -c 0 "$ECO" bench "127.0.0.1:$1" -c "$C" -s "$S" -t "${T}s" -w 0s -q --json)
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); e=sum(d["errors"].values());
sys.exit("profile_peers: bench errors %s" % d["errors"]) if e else print(d["round_trips"])' "$out"
}

printf '%-10s %12s %10s %s\n' server "syscalls/rt" "Ir/rt" "top syscalls per round trip"
for entry in "${servers[@]}"; do
  name=${entry%%|*}
  port=$((20000 + RANDOM % 9000))  # below the ephemeral range (32768+), where clients bind
  cmd=${entry#*|}
  cmd=${cmd//PORT/$port}
  # 1. strace -c: every syscall of every thread, counted.
  taskset -c 1 strace -f -c -o "$tmp/$name.strace" $cmd >/dev/null 2>"$tmp/$name.err" &
  pids+=($!)
  wait_port "$port" || { echo "profile_peers: $name did not start: $(tail -2 "$tmp/$name.err")" >&2; continue; }
  rts=$(bench "$port")
  pkill -TERM -P "${pids[-1]}" 2>/dev/null || true  # the server (strace's child) exits; strace prints its counts
  wait "${pids[-1]}" 2>/dev/null || true
  sc=$(awk -v n="$rts" '$4 ~ /^[0-9]+$/ && $NF != "total" { t += $4; printf "%s %.2f\n", $NF, $4 / n > "/dev/stderr" }
       END { printf "%.2f", t / n }' "$tmp/$name.strace" 2>"$tmp/$name.per")
  top=$(sort -k2 -nr "$tmp/$name.per" | awk '$2 >= 0.01' | head -4 | awk '{printf "%s %s, ", $1, $2}')
  # 2. callgrind: user-space instructions (the kernel's share is invisible to it).
  ir="—"
  if [[ $name != go ]]; then
    port=$((20000 + RANDOM % 9000))  # below the ephemeral range (32768+), where clients bind
    cmd=${entry#*|}
    cmd=${cmd//PORT/$port}
    taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$tmp/$name.cg" $cmd >/dev/null 2>"$tmp/$name.vg" &
    pids+=($!)
    if wait_port "$port"; then
      vg=${pids[-1]}
      sleep 1
      # Count only the measured load: zero after start-up, dump right after the run
      # (some servers do not exit cleanly under valgrind, so they are killed after).
      callgrind_control -z "$vg" >/dev/null 2>&1 || true
      rts_cg=$(bench "$port")
      callgrind_control -d "$vg" >/dev/null 2>&1 || true
      kill -KILL "$vg" 2>/dev/null || true
      wait "$vg" 2>/dev/null || true
      dump=$(ls -t "$tmp/$name.cg".* 2>/dev/null | head -1)
      total=$([[ -n $dump ]] && awk '/^summary:|^totals:/ {print $2; exit}' "$dump")
      [[ -n $total ]] && ir=$(python3 -c "print(f'{$total / $rts_cg:,.0f}')")
    fi
  fi
  printf '%-10s %12s %10s %s\n' "$name" "$sc" "$ir" "${top%, }"
done
