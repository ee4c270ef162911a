#!/usr/bin/env python3
"""Peer comparison harness: eco and the echo servers a user would pick instead,
side by side under the same `eco bench` load, every echoed byte verified.

Writes a Markdown results section into docs/peers.md (between the
`<!-- peers:results:begin/end -->` markers) and the raw numbers as JSON into
docs/results/. Python 3 standard library only. See bench/README.md.

    /usr/bin/python3 bench/run_peers.py --eco build/release/eco --peers-dir build/peers [--quick]

Method, in short (docs/peers.md has the long version):
  * each server runs pinned to --server-cpus with taskset, eco bench (and this
    script) on --client-cpus; a fresh server process for every run;
  * every scenario runs every server R times, interleaved (A B C, B C A, ...),
    so machine noise hits all of them alike; the table shows medians and the
    spread (max-min)/median of round trips/s;
  * server CPU comes from /proc/PID/stat (utime+stime, summed over the
    server's process tree, reaped children included) and machine-wide CPU from
    /proc/stat, both sampled inside the measured window only (after warm-up,
    away from the edges), divided by the round trips in that window;
  * a run with any bench error (mismatch, short read, reset, refused,
    timeout, other) or a nonzero bench exit is shown as FAILED with the
    counts, never as a speed.
"""
import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from peerbench.chart import write_chart
from peerbench.common import REPO, log
from peerbench.report import (SUMMARY_BEGIN, SUMMARY_END, fmt_lat, fmt_num, machine_info, markdown, ratio_table,
                              summarize, write_between, write_markdown)
from peerbench.runs import QUICK_SCENARIOS, SCENARIOS, run_idle, run_load
from peerbench.servers import define_servers, probe_engines


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--eco', default=str(REPO / 'build' / 'release' / 'eco'), help='eco binary (release build)')
    p.add_argument('--peers-dir', default=str(REPO / 'build' / 'peers'),
                   help='where bench/peers/build.sh put the compiled peers (DIR/bin)')
    p.add_argument('--python', default='/usr/bin/python3',
                   help="Python for the Python peers: Debian's, which has python3-uvloop")
    p.add_argument('--quick', action='store_true',
                   help='smoke run: 4 scenarios, 1 repetition, short runs, 1,000 idle connections')
    p.add_argument('--reps', type=int, help='repetitions per cell (default 3; --quick 1)')
    p.add_argument('--duration', type=float, help='measured seconds per run (default 1.5; --quick 0.5)')
    p.add_argument('--warmup', type=float, help='warm-up seconds per run (default 0.5; --quick 0.2)')
    p.add_argument('--scenarios', help='comma list of scenario ids: ' + ','.join(s['id'] for s in SCENARIOS))
    p.add_argument('--only', help='comma list of servers: eco-epoll,eco-uring,tight-c,asio,go,tokio,asyncio,'
                                  'uvloop,node,socat,py-oneclient')
    p.add_argument('--engines',
                   help='eco engines to try (default: those `eco --version` lists, else epoll,uring); '
                        'each one `eco serve --engine X` accepts becomes a row')
    p.add_argument('--server-cpus', default='1', help='CPU list for the server (taskset -c)')
    p.add_argument('--client-cpus', default='0', help='CPU list for eco bench and this harness')
    p.add_argument('--threads', type=int,
                   help='server threads for the multi-thread rows (default: number of server CPUs; '
                        'a 1-thread row is always there)')
    p.add_argument('--client-threads', type=int, default=1, help='eco bench --threads')
    p.add_argument('--idle-conns', type=int, help='idle connections (default 10,000; --quick 1,000)')
    p.add_argument('--socat-idle-cap', type=int, default=1000,
                   help='most idle connections against socat (a process each)')
    p.add_argument('--out-md', help='full tables; default docs/peers.md (--quick: docs/results/peers-quick.md)')
    p.add_argument('--out-summary',
                   help='ratio table + targets, written between the peers:summary markers; '
                        'default docs/benchmarks.md (--quick: docs/results/peers-quick-summary.md)')
    p.add_argument('--out-json', help='default docs/results/peers.json (--quick: peers-quick.json)')
    p.add_argument('--out-png', help='chart; default docs/peers.png (--quick: docs/results/peers-quick.png)')
    p.add_argument('--keep-histograms', action='store_true',
                   help="keep each run's HdrHistogram (base64) in the JSON (for `eco bench merge`)")
    p.add_argument('--list', action='store_true', help='print servers and scenarios, run nothing')
    a = p.parse_args()
    a.reps = a.reps or (1 if a.quick else 3)
    a.duration = a.duration or (0.5 if a.quick else 1.5)
    a.warmup = a.warmup if a.warmup is not None else (0.2 if a.quick else 0.5)
    a.only = set(a.only.split(',')) if a.only else None
    ncpu = len(parse_cpus(a.server_cpus))
    a.threads = a.threads or ncpu
    a.out_md = a.out_md or str(REPO / 'docs' / ('results/peers-quick.md' if a.quick else 'peers.md'))
    a.out_summary = a.out_summary or str(REPO / 'docs' / ('results/peers-quick-summary.md' if a.quick
                                                          else 'benchmarks.md'))
    a.out_json = a.out_json or str(REPO / 'docs' / 'results' / ('peers-quick.json' if a.quick else 'peers.json'))
    a.out_png = a.out_png or str(REPO / 'docs' / ('results/peers-quick.png' if a.quick else 'peers.png'))
    return a


def parse_cpus(spec):
    cpus = set()
    for part in spec.split(','):
        if '-' in part:
            lo, hi = part.split('-')
            cpus.update(range(int(lo), int(hi) + 1))
        elif part:
            cpus.add(int(part))
    return cpus


def main():
    a = parse_args()
    a.eco = str(Path(a.eco).resolve())
    if not os.access(a.eco, os.X_OK):
        sys.exit(f'run-peers: {a.eco} is not an executable eco (build it: make build)')
    help_text = subprocess.run([a.eco, 'bench', '--help'], capture_output=True, text=True).stdout
    if '--conns' not in help_text:
        sys.exit(f'run-peers: {a.eco} has no `bench` subcommand (is it eco?)')
    if not shutil.which('taskset'):
        sys.exit('run-peers: taskset not found (util-linux)')
    # The generator side: this process (idle-connection opener) on the client CPUs.
    os.sched_setaffinity(0, parse_cpus(a.client_cpus))
    # 10,000 idle connections need that many descriptors here and in the
    # server, and Go's io.Copy(c, c) splices through a pipe pair per connection
    # (3 descriptors each): ask for 65,536 where allowed (root), else the hard limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, 65536), max(hard, 65536)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    scen = SCENARIOS
    if a.scenarios:
        ids = a.scenarios.split(',')
        unknown = set(ids) - {s['id'] for s in SCENARIOS}
        if unknown:
            sys.exit(f'run-peers: unknown scenario(s) {", ".join(sorted(unknown))}')
        scen = [s for s in SCENARIOS if s['id'] in ids]
    elif a.quick:
        scen = [s for s in SCENARIOS if s['id'] in QUICK_SCENARIOS]

    if a.engines:
        a.engine_candidates = [e for e in a.engines.split(',') if e]
    else:  # `eco --version` says e.g. "eco 0.1.0 (engines: epoll, uring; Linux ...)"
        m = re.search(r'engines: ([\w, ]+)', subprocess.run([a.eco, '--version'], capture_output=True,
                                                             text=True).stdout)
        a.engine_candidates = [e.strip() for e in m.group(1).split(',')] if m else ['epoll', 'uring']
    if a.only is None or any(n.startswith('eco-') for n in a.only):
        a.engines = probe_engines(a)
    else:
        a.engines = []
    servers, unavailable = define_servers(a)
    if a.list:
        for s in servers:
            print(f'server {s.key:22} {s.row}')
        for s in scen:
            print(f"scenario {s['id']:10} {s['title']}")
        for k, w in unavailable.items():
            print(f'unavailable {k}: {w}')
        return 0

    # The cells to run, and the ones a server cannot take part in (said in the table).
    plan, skipped_cells = [], {}
    for sc in scen:
        for srv in servers:
            why = None
            if srv.max_conns is not None and (sc.get('idle') or sc.get('mode') == 'crr'
                                              or sc.get('conns', 0) > srv.max_conns):
                why = f'{srv.row} ({srv.note})'
            elif sc.get('udp') and not srv.udp:
                why = f'{srv.row} (no UDP)'
            if why:
                skipped_cells.setdefault(sc['id'], []).append(why)
            else:
                plan.append((sc, srv))
    info = machine_info(a)
    load_runs = sum(1 for sc, _ in plan if not sc.get('idle')) * a.reps
    idle_runs = sum(1 for sc, _ in plan if sc.get('idle'))
    est = load_runs * (a.warmup + a.duration + 0.6) + idle_runs * (3 if a.quick else 10)
    log(f'run-peers: {len(servers)} servers, {len(scen)} scenarios, {load_runs} load runs + {idle_runs} idle runs, '
        f'about {est / 60:.1f} min')

    runs, done, t_start = [], 0, time.monotonic()
    for sc in scen:
        cells = [srv for s, srv in plan if s is sc]
        reps = 1 if sc.get('idle') else a.reps
        for rep in range(reps):
            # Interleave: every repetition visits all servers, each time in a
            # rotated order, so slow drifts in machine load hit all alike.
            order = cells[rep % len(cells):] + cells[:rep % len(cells)] if cells else []
            for srv in order:
                done += 1
                r = run_idle(a, srv, sc) if sc.get('idle') else run_load(a, srv, sc)
                r['rep'] = rep
                runs.append(r)
                if sc.get('idle'):
                    what = (f"{r.get('opened', 0)} conns, {fmt_num(r.get('bytes_per_conn_idle'))} B/conn idle"
                            if r['ok'] else 'FAILED: ' + r.get('failure', '?'))
                else:
                    b = r.get('bench') or {}
                    what = (f"{fmt_num(b.get('rt_per_s'))} rt/s, p99 {fmt_lat((b.get('latency_us') or {}).get('p99'))} µs, "
                            f"srv {fmt_num(r.get('server_cpu_us_per_rt'), 2)} µs/rt" if r['ok']
                            else 'FAILED: ' + r.get('failure', '?'))
                log(f"[{done}/{load_runs + idle_runs}] {sc['id']} rep{rep + 1} {srv.row}: {what}")

    info['loadavg_end'] = open('/proc/loadavg').read().split()[:3]
    info['harness_s'] = round(time.monotonic() - t_start, 1)
    summary = summarize(runs, servers, scen)
    section = markdown(info, a, servers, unavailable, scen, summary, skipped_cells)
    Path(a.out_png).parent.mkdir(parents=True, exist_ok=True)
    kind = 'smoke run (--quick), not a result' if a.quick else f"{info['date']}, median of {a.reps}"
    why_not = write_chart(a.out_png, servers, scen, summary, f'Echo servers relative to eco: {kind}')
    if why_not:
        log(f'run-peers: no chart: {why_not}')
    else:
        rel = os.path.relpath(Path(a.out_png).resolve(), Path(a.out_md).resolve().parent)
        section = f'![round trips/s relative to eco, per scenario]({rel})\n\n' + section
    write_markdown(a.out_md, section)
    table = ratio_table(info, a, servers, scen, summary)
    if not why_not:
        rel = os.path.relpath(Path(a.out_png).resolve(), Path(a.out_summary).resolve().parent)
        table = f'![round trips/s relative to eco, per scenario]({rel})\n\n' + table
    write_between(a.out_summary, SUMMARY_BEGIN, SUMMARY_END, table)
    Path(a.out_json).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out_json, 'w') as f:
        json.dump(dict(machine=info,
                       config=dict(quick=a.quick, reps=a.reps, duration_s=a.duration, warmup_s=a.warmup,
                                   server_cpus=a.server_cpus, client_cpus=a.client_cpus, threads=a.threads,
                                   client_threads=a.client_threads, engines=a.engines),
                       unavailable=unavailable, skipped=skipped_cells,
                       summary={f'{k[0]}|{k[1]}': v for k, v in summary.items()},
                       runs=runs), f, indent=1)
    failed = sum(1 for r in runs if not r['ok'])
    log(f'run-peers: wrote {a.out_md}, {a.out_summary} and {a.out_json} in {info["harness_s"]:.0f} s; {failed} failed run(s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
