#!/usr/bin/env bash
# The sockmap engine against io_uring and epoll: 64-byte ping-pong at 1 and
# 50 connections, and connection churn (crr: connect, one 64-byte echo, close) at 10,
# engines interleaved within each repetition, medians over the reps.
# Server pinned to CPU 0 (--threads 1), eco bench pinned to CPU 1. Machine-wide CPU
# per round trip comes from /proc/stat (eco bench --server-pid), because with sockmap
# the echo runs in softirq and kworker context, not in the server's own CPU time.
#
#   bench/engines_sockmap.sh [ECO_BINARY] [REPS] [DURATION]   (defaults: build/release/eco 5 5s)
# Needs root (or CAP_BPF + CAP_NET_ADMIN) for the sockmap engine, and a quiet machine.
#
# RPS_CPUS=1 (a CPU mask) sets loopback's receive packet steering for the run, for every
# engine alike, and restores it at exit. On loopback the receive softirq runs on the
# sender's CPU, so the in-kernel echo (verdict, psock work) lands on the load
# generator's core; with RPS_CPUS=1 the server's core (CPU 0) receives, as a server's
# own cores would receive from a NIC.
set -euo pipefail

ECO=${1:-build/release/eco}
REPS=${2:-5}
DUR=${3:-5s}
[[ -x $ECO ]] || { echo "engines_sockmap: no eco binary at $ECO" >&2; exit 2; }
command -v taskset >/dev/null || { echo "engines_sockmap: needs taskset (util-linux)" >&2; exit 2; }

tmp=$(mktemp -d)
server=""
rps_file=/sys/class/net/lo/queues/rx-0/rps_cpus
rps_saved=""
cleanup() {
  [[ -n $server ]] && kill -KILL "$server" 2>/dev/null || true
  [[ -n $rps_saved ]] && echo "$rps_saved" >"$rps_file" || true
  rm -rf "$tmp"
}
trap cleanup EXIT
if [[ -n ${RPS_CPUS:-} ]]; then
  rps_saved=$(cat "$rps_file")
  echo "$RPS_CPUS" >"$rps_file" || { echo "engines_sockmap: cannot set $rps_file" >&2; exit 2; }
  echo "engines_sockmap: loopback RPS mask $RPS_CPUS (was $rps_saved)" >&2
fi

run_one() {  # engine mode conns -> one result line on stdout
  local engine=$1 mode=$2 conns=$3
  rm -f "$tmp/port"
  taskset -c 0 "$ECO" serve --engine "$engine" --threads 1 --quiet --listen 127.0.0.1:0 \
    --port-file "$tmp/port" 2>"$tmp/server.log" &
  server=$!
  for _ in $(seq 200); do [[ -s $tmp/port ]] && break; sleep 0.02; done
  [[ -s $tmp/port ]] || { echo "engines_sockmap: $engine did not start: $(cat "$tmp/server.log")" >&2; exit 1; }
  local port
  port=$(cat "$tmp/port")
  local ctxt0 ctxt1
  ctxt0=$(awk '/^ctxt/ {print $2}' /proc/stat)
  taskset -c 1 "$ECO" bench "127.0.0.1:$port" --mode "$mode" --conns "$conns" --size 64 --duration "$DUR" --warmup 1s \
    --quiet --server-pid "$server" >"$tmp/bench.txt" 2>&1 || true
  ctxt1=$(awk '/^ctxt/ {print $2}' /proc/stat)
  kill -TERM "$server"
  wait "$server" || true
  server=""
  python3 - "$engine" "$mode$conns" "$tmp/bench.txt" $((ctxt1 - ctxt0)) <<'PY'
import re, sys
engine, conns, path, switches = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
text = open(path).read()
def us(v, unit):
    return float(v) * {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}[unit]
rt = re.search(r"throughput\s+([\d.]+) rt/s", text)
p50 = re.search(r"p50 ([\d.]+) (ns|µs|ms|s)\b", text)
p99 = re.search(r"p99 ([\d.]+) (ns|µs|ms|s)\b", text)
cpu = re.search(r"machine-wide CPU: ([\d.]+) µs per round trip", text)
srv = re.search(r"server .*?: ([\d.]+) µs CPU per round trip", text)
n = re.search(r"\((\d+) round trips", text)
if not (rt and p50 and p99 and cpu and n):
    sys.exit(f"engines_sockmap: cannot parse eco bench output:\n{text}")
# Context switches per round trip, machine-wide: where the in-kernel echo's kworker
# preempts the client instead of batching. ctxt (/proc/stat) is counted over warm-up
# and measurement but divided by the measured round trips only, so it reads about 1.2x
# high at the default 5 s: compare engines, not absolute values.
print(engine, conns, rt.group(1), us(*p50.groups()), us(*p99.groups()), cpu.group(1), srv.group(1) if srv else "nan",
      f"{switches / int(n.group(1)):.3f}")
PY
}

: >"$tmp/results"
for rep in $(seq "$REPS"); do
  for scenario in "rr 1" "rr 50" "crr 10"; do
    for engine in sockmap uring epoll; do
      run_one "$engine" $scenario | tee -a "$tmp/results" >&2
    done
  done
done

python3 - "$tmp/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print("| load | engine | rt/s | p50 µs | p99 µs | machine CPU-µs/rt | server CPU-µs/rt | switches/rt |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
med = {}
loads = ("rr1", "rr50", "crr10")
for conns in loads:
    for engine in ("sockmap", "uring", "epoll"):
        rs = [r for r in rows if r[0] == engine and r[1] == conns]
        if not rs:
            continue
        m = [statistics.median(float(r[i]) for r in rs) for i in range(2, 8)]
        med[(engine, conns)] = m
        print(f"| {conns} | {engine} | {m[0]:.0f} | {m[1]:.1f} | {m[2]:.1f} | {m[3]:.1f} | {m[4]:.2f} | {m[5]:.2f} |")
print()
for conns in loads:
    s = med.get(("sockmap", conns))
    if not s:
        continue
    best = max((med[(e, conns)] for e in ("uring", "epoll") if (e, conns) in med), key=lambda m: m[0])
    ep = med.get(("epoll", conns))
    print(f"{conns}: sockmap/best-user-space rt/s {s[0]/best[0]:.2f}x, p50 {s[1]/best[1]:.2f}x, "
          f"machine CPU/rt {s[3]/best[3]:.2f}x" + (f", p99 vs epoll {s[2]/ep[2]:.2f}x" if ep else ""))
PY
