#!/usr/bin/env python3
"""Reads a tracefs dump of workqueue events (bench/psock_wq_trace.sh) and reports the
psock sender's work items (sk_psock_backlog): count, wait in the queue (queued ->
started) and run time, then the 100 ms windows where the queue was slow or busy."""
import collections
import re
import sys

LINE = re.compile(r'\s(\d+\.\d+): (workqueue_\w+): work struct[= ]?(\w+)(.*)')


def pct(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def main(path):
    queued, started = {}, {}
    waits, runs = [], []
    windows = collections.defaultdict(lambda: [0, 0.0, 0.0])  # items, longest wait, busy
    with open(path, errors='replace') as f:
        for line in f:
            m = LINE.search(line)
            if not m:
                continue
            t, event, work, rest = float(m.group(1)), m.group(2), m.group(3), m.group(4)
            if event == 'workqueue_queue_work':
                if 'sk_psock_backlog' in rest:
                    queued[work] = t
            elif event == 'workqueue_execute_start':
                if work in queued and 'sk_psock_backlog' in rest:
                    wait = t - queued.pop(work)
                    waits.append(wait)
                    started[work] = t
                    w = windows[int(t * 10)]
                    w[0] += 1
                    w[1] = max(w[1], wait)
            elif event == 'workqueue_execute_end' and work in started:
                run = t - started.pop(work)
                runs.append(run)
                windows[int(t * 10)][2] += run
    if not waits:
        sys.exit('psock_wq_trace: no sk_psock_backlog work items in ' + path)
    waits.sort()
    runs.sort()
    print(f'psock work items {len(waits)}; wait in queue ms: p50 {pct(waits, .5) * 1e3:.2f} '
          f'p99 {pct(waits, .99) * 1e3:.2f} max {waits[-1] * 1e3:.1f}')
    print(f'run time us: p50 {pct(runs, .5) * 1e6:.1f} p99 {pct(runs, .99) * 1e6:.1f} '
          f'max {runs[-1] * 1e6:.0f}; total busy {sum(runs):.3f} s')
    first = min(windows)
    for k in sorted(windows):
        n, longest, busy = windows[k]
        if longest > 0.02 or busy > 0.02:
            print(f'  t+{(k - first) / 10:5.1f} s: {n:6d} items, longest wait {longest * 1e3:7.1f} ms, '
                  f'busy {busy * 1e3:6.1f} ms')


if __name__ == '__main__':
    main(sys.argv[1])
