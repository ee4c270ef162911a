"""The scenarios and one measured run of each kind: under eco bench load, or idle connections."""
import json
import os
import selectors
import socket
import subprocess
import time

from .procfs import CLK_TCK, machine_busy_ticks, run_ns, server_sample
from .servers import pick_port, start_server, stop_server

# Each scenario is one `eco bench` invocation per server (or the idle-connection
# opener for 'idle'). 'rate' is the open-loop latency scenario: a fixed total
# rate chosen well under every peer's saturation, so p99 compares servers, not
# queues.

SCENARIOS = [
    dict(id='1x64', title='1 connection × 64 B (closed loop, depth 1)', conns=1, size=64),
    dict(id='50x64', title='50 connections × 64 B (closed loop, depth 1)', conns=50, size=64),
    dict(id='1x16k', title='1 connection × 16 KiB (closed loop, depth 1)', conns=1, size=16384),
    dict(id='50x16k', title='50 connections × 16 KiB (closed loop, depth 1)', conns=50, size=16384),
    dict(id='1000x64', title='1,000 connections × 64 B (closed loop, depth 1)', conns=1000, size=64),
    dict(id='rate', title='Open loop: 10,000 round trips/s over 50 connections × 64 B (latency)',
         conns=50, size=64, rate=10000),
    dict(id='crr', title='crr: a new connection per request, 10 concurrent × 64 B', conns=10, size=64,
         mode='crr'),
    dict(id='udp64', title='UDP: 50 sockets × 64 B datagrams (closed loop, depth 1)', conns=50, size=64,
         udp=True),
    dict(id='idle', title='Idle connections: memory per connection', idle=10000),
]

QUICK_SCENARIOS = ['1x64', '50x64', 'udp64', 'idle']


def start_fresh(a, srv, udp):
    """A new server on a free port; a second try on another port, since a
    port found free can be taken before the server binds it."""
    try:
        port = pick_port()
        return start_server(a, srv, port, udp), port
    except RuntimeError:
        port = pick_port()
        return start_server(a, srv, port, udp), port


def bench_argv(a, sc, port):
    argv = ['taskset', '-c', a.client_cpus, a.eco, 'bench', f'127.0.0.1:{port}',
            '--conns', str(sc['conns']), '--depth', str(sc.get('depth', 1)), '--size', str(sc['size']),
            '--duration', f"{a.duration}s", '--warmup', f"{a.warmup}s", '--threads', str(a.client_threads),
            '--mode', sc.get('mode', 'rr'), '--json', '--quiet']
    if sc.get('udp'):
        argv.append('--udp')
    if sc.get('rate'):
        argv += ['--rate', str(sc['rate'])]
    return argv


def run_load(a, srv, sc):
    """One server, one scenario, one repetition: start, load, sample, stop."""
    udp = bool(sc.get('udp'))
    rec = dict(server=srv.key, scenario=sc['id'], ok=False)
    try:
        proc, port = start_fresh(a, srv, udp)
    except RuntimeError as e:
        rec['failure'] = str(e)
        return rec
    try:
        argv = bench_argv(a, sc, port) + ['--server-pid', str(proc.pid)]
        rec['bench_argv'] = argv
        start = time.monotonic()
        bench = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Sample inside the measured window, away from its edges: connection
        # set-up, warm-up and the final drain are not part of the figure.
        t0 = start + a.warmup + 0.15 * a.duration
        t1 = start + a.warmup + 0.85 * a.duration
        s0 = s1 = None
        m0 = m1 = None
        while time.monotonic() < t0 and bench.poll() is None:
            time.sleep(min(0.01, max(0.0, t0 - time.monotonic())))
        if bench.poll() is None:
            s0, m0 = server_sample(proc.pid, srv.tree), machine_busy_ticks()
            g0 = run_ns(bench.pid) + run_ns(os.getpid())
        while time.monotonic() < t1 and bench.poll() is None:
            time.sleep(min(0.01, max(0.0, t1 - time.monotonic())))
        if bench.poll() is None:
            s1, m1 = server_sample(proc.pid, srv.tree), machine_busy_ticks()
            g1 = run_ns(bench.pid) + run_ns(os.getpid())
        try:
            out, err = bench.communicate(timeout=a.warmup + a.duration + 60)
        except subprocess.TimeoutExpired:
            bench.kill()
            out, err = bench.communicate()
            rec['failure'] = 'eco bench did not finish (killed)'
        rec['bench_rc'] = bench.returncode
        rec['bench_stderr'] = err.decode(errors='replace')[-2000:]
        res = None
        text = out.decode(errors='replace')
        if '{' in text:  # one JSON object, on one line or pretty-printed
            try:
                res, _ = json.JSONDecoder().raw_decode(text[text.index('{'):])
            except ValueError:
                pass
        if res is not None and not a.keep_histograms:
            res.pop('histogram', None)  # ~3 KB each; the percentiles are kept
        rec['bench'] = res
        if s0 and s1 and res:
            dt = s1['t'] - s0['t']
            rt = res.get('rt_per_s', 0) * dt
            ticks = (s1['user'] - s0['user']) + (s1['kern'] - s0['kern'])
            us = (s1['ns'] - s0['ns']) / 1000 if s1['ns'] else ticks * 1e6 / CLK_TCK
            rec['window_s'] = dt
            rec['server_cpu_us_per_rt'] = us / rt if rt > 0 else None
            rec['server_cpu_share'] = us / 1e6 / dt  # cores used
            rec['server_user_share'] = (s1['user'] - s0['user']) / ticks if ticks else None
            rec['machine_cpu_us_per_rt'] = (m1 - m0) * 1e6 / CLK_TCK / rt if rt > 0 else None
            # Everything else the machine did meanwhile (other users, builds): a
            # busy machine is visible in the table instead of hiding in the numbers.
            machine_us = (m1 - m0) * 1e6 / CLK_TCK
            rec['other_cores'] = max(0.0, machine_us - us - (g1 - g0) / 1000) / 1e6 / dt
            rec['rss_kib'] = max(s1['rss_kib'], s1['hwm_kib'] if not srv.tree else 0)
            rec['server_procs'] = s1['nproc']
        if res is None and 'failure' not in rec:
            rec['failure'] = f"no JSON from eco bench (exit {bench.returncode}): " + \
                rec['bench_stderr'].strip().splitlines()[-1][:200] if rec['bench_stderr'].strip() else \
                f'no JSON from eco bench (exit {bench.returncode})'
        errs = (res or {}).get('errors') or {}
        rec['errors'] = {k: v for k, v in errs.items() if v}
        rec['ok'] = res is not None and bench.returncode == 0 and not rec['errors'] and 'failure' not in rec
        if res is not None and not rec['ok'] and 'failure' not in rec:
            rec['failure'] = ('errors: ' + ', '.join(f'{k} {v}' for k, v in rec['errors'].items())) \
                if rec['errors'] else f'eco bench exit {bench.returncode}'
    finally:
        rec['server_stderr'] = stop_server(proc)[-1000:]
    return rec


def open_idle(port, n, size=64, timeout=60):
    """Opens n connections, echoes one verified message on each, and returns
    (sockets, errors). The caller measures, then closes them."""
    socks, errors = [], dict(refused=0, mismatch=0, timeout=0, other=0)
    sel = selectors.DefaultSelector()
    deadline = time.monotonic() + timeout
    batch = 256
    # Connect in batches so a full accept queue stalls us, not the kernel's SYN retries.
    for start in range(0, n, batch):
        pending = []
        for _ in range(min(batch, n - start)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex(('127.0.0.1', port))
            if rc not in (0, 115):  # EINPROGRESS
                errors['refused' if rc == 111 else 'other'] += 1
                s.close()
                continue
            pending.append(s)
            sel.register(s, selectors.EVENT_WRITE)
        left = len(pending)
        while left and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                sel.unregister(s)
                left -= 1
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    errors['refused' if err == 111 else 'other'] += 1
                    s.close()
                else:
                    socks.append(s)
        for key in list(sel.get_map().values()):
            sel.unregister(key.fileobj)
            key.fileobj.close()
            errors['timeout'] += 1
    return socks, errors


def echo_once(socks, size=64, timeout=60):
    """Sends one message carrying the connection's index on every connection
    and checks each echo byte for byte."""
    errors = dict(mismatch=0, timeout=0, reset=0)
    sel = selectors.DefaultSelector()
    want, got = {}, {}
    for i, s in enumerate(socks):
        msg = (f'{i:08d}'.encode() * (size // 8 + 1))[:size]
        try:
            s.send(msg)
        except OSError:
            errors['reset'] += 1
            continue
        want[s], got[s] = msg, b''
        sel.register(s, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    left = len(want)
    while left and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except OSError:
                data = None
            if not data:
                errors['reset'] += 1
                sel.unregister(s)
                left -= 1
                continue
            got[s] += data
            if len(got[s]) >= len(want[s]):
                if got[s] != want[s]:
                    errors['mismatch'] += 1
                sel.unregister(s)
                left -= 1
    errors['timeout'] += left
    sel.close()
    return errors


def run_idle(a, srv, sc):
    n = sc['idle'] if not a.quick else min(sc['idle'], 1000)
    asked = n = min(n, a.idle_conns) if a.idle_conns else n
    if srv.idle_cap:
        n = min(n, srv.idle_cap)
    rec = dict(server=srv.key, scenario=sc['id'], ok=False, conns=n, asked=asked)
    try:
        proc, port = start_fresh(a, srv, False)
    except RuntimeError as e:
        rec['failure'] = str(e)
        return rec
    socks = []
    try:
        time.sleep(0.3)  # let the runtime finish starting (JIT, GC arenas) before the baseline
        base = server_sample(proc.pid, srv.tree)
        socks, cerr = open_idle(port, n)
        time.sleep(0.5)
        connected = server_sample(proc.pid, srv.tree)
        eerr = echo_once(socks)
        time.sleep(1.0)  # idle: let servers drop per-request state
        idle = server_sample(proc.pid, srv.tree)
        errors = {k: v for k, v in {**cerr, **{k: cerr.get(k, 0) + v for k, v in eerr.items()}}.items() if v}
        ok_conns = len(socks)
        rec.update(base_kib=base['pss_kib'], connected_kib=connected['pss_kib'], idle_kib=idle['pss_kib'],
                   opened=ok_conns, errors=errors, server_procs=idle['nproc'])
        if ok_conns:
            rec['bytes_per_conn_connected'] = (connected['pss_kib'] - base['pss_kib']) * 1024 / ok_conns
            rec['bytes_per_conn_idle'] = (idle['pss_kib'] - base['pss_kib']) * 1024 / ok_conns
        rec['ok'] = ok_conns == n and not errors
        if not rec['ok']:
            rec['failure'] = f'{ok_conns}/{n} connected; ' + ', '.join(f'{k} {v}' for k, v in errors.items())
    finally:
        for s in socks:
            s.close()
        rec['server_stderr'] = stop_server(proc)[-1000:]
    return rec
