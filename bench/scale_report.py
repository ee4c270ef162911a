#!/usr/bin/env python3
"""Helpers of bench/scale.sh.

  scale_report.py row MERGED.json LABEL PROTO SERVERS EXIT CPU_CLIENTS CPU_SERVERS CPU_LB BUSY HZ DURATION_S
      one JSON line: the merged bench result plus the CPU (in cores) each part used
  scale_report.py table [OUT.json] META_JSON < rows
      the Markdown table (medians over repetitions); the rows and META into OUT.json
  scale_report.py from-json RESULTS.json
      the table again from a saved run (docs/results/scale.json)
"""
import collections
import json
import statistics
import sys

NAMES = {"direct": "TCP, client → server (no balancer)", "lb": "TCP through HAProxy", "udp": "UDP, ECMP anycast"}


def row(a):
    d = json.load(open(a[0]))
    label, proto, ns, rc = a[1], a[2], int(a[3]), int(a[4])
    cc, cs, cl, busy, hz, dur = (float(x) for x in a[5:11])
    r = {"label": label, "proto": proto, "servers": ns, "exit": rc, "rt_per_s": d["rt_per_s"],
         "p50_us": d["latency_us"]["p50"], "p99_us": d["latency_us"]["p99"], "errors": sum(d["errors"].values()),
         "cpu_cores": {"clients": cc / hz / dur, "servers": cs / hz / dur, "haproxy": cl / hz / dur,
                       "machine_busy": busy / hz / dur}}
    print(json.dumps(r))
    c = r["cpu_cores"]
    print(f"  {label}: {r['rt_per_s']:,.0f} rt/s, p99 {r['p99_us']:,.0f} µs, errors {r['errors']}, CPU cores: clients "
          f"{c['clients']:.2f} servers {c['servers']:.2f} haproxy {c['haproxy']:.2f} machine {c['machine_busy']:.2f}",
          file=sys.stderr)


def table(a):
    out, meta = (a[0], json.loads(a[1])) if len(a) > 1 else ("", json.loads(a[0]))
    rows = [json.loads(line) for line in sys.stdin if line.strip()]
    if out:
        with open(out, "w") as f:
            json.dump(dict(meta, runs=rows), f, indent=1)
    print_table(rows)


def from_json(a):
    print_table(json.load(open(a[0]))["runs"])


def print_table(rows):
    groups = collections.OrderedDict()
    for r in rows:
        groups.setdefault(r["label"].rsplit(".r", 1)[0], []).append(r)
    print("| path | servers | rt/s (median) | runs | p99 µs (median) | errors "
          "| CPU cores used: clients / servers / HAProxy / whole machine | CPU µs per round trip: servers / HAProxy |")
    print("|---|---:|---:|---|---:|---:|---|---|")
    for key, rs in groups.items():
        kind, n = key.split("-")
        med = lambda f: statistics.median(f(r) for r in rs)  # noqa: E731
        cpu = lambda k: med(lambda r: r["cpu_cores"][k])  # noqa: E731
        runs = " · ".join(f"{r['rt_per_s']:,.0f}" for r in rs)
        print(f"| {NAMES[kind]} | {n} | {med(lambda r: r['rt_per_s']):,.0f} | {runs} | {med(lambda r: r['p99_us']):,.0f} | "
              f"{sum(r['errors'] for r in rs)} | {cpu('clients'):.2f} / {cpu('servers'):.2f} / {cpu('haproxy'):.2f} / "
              f"{cpu('machine_busy'):.2f} | {med(lambda r: per_rt(r, 'servers')):.1f} / {med(lambda r: per_rt(r, 'haproxy')):.1f} |")


def per_rt(r, part):
    """CPU µs per round trip of one part (0 when no round trip completed)."""
    return r["cpu_cores"][part] / r["rt_per_s"] * 1e6 if r["rt_per_s"] else 0.0


if __name__ == "__main__":
    {"row": row, "table": table, "from-json": from_json}[sys.argv[1]](sys.argv[2:])
