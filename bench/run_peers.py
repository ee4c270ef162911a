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
import datetime
import json
import os
import platform
import random
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEERS_SRC = REPO / 'bench' / 'peers'
CLK_TCK = os.sysconf('SC_CLK_TCK')
PAGE = os.sysconf('SC_PAGE_SIZE')
RESULTS_BEGIN = '<!-- peers:results:begin -->'
RESULTS_END = '<!-- peers:results:end -->'


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- scenarios --

# Each scenario is one `eco bench` invocation per server (or the idle-connection
# opener for 'idle'). 'rate' is the open-loop latency scenario: a fixed total
# rate chosen well under every peer's saturation, so p99 compares servers, not
# queues.
SCENARIOS = [
    dict(id='1x64', title='1 connection × 64 B (closed loop, depth 1)', conns=1, size=64),
    dict(id='50x64', title='50 connections × 64 B (closed loop, depth 1)', conns=50, size=64),
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


# -------------------------------------------------------------------- peers --

class Server:
    """One row of the table: a server program at a thread count."""

    def __init__(self, name, label, cmd, threads=1, max_conns=None, udp=True, tree=False,
                 idle_cap=None, note=''):
        self.name = name          # stable id, used in JSON and --only
        self.label = label        # what the table shows
        self.cmd = cmd            # f(port, threads, udp) -> argv
        self.threads = threads
        self.max_conns = max_conns
        self.udp = udp
        self.tree = tree          # forks a process per connection
        self.idle_cap = idle_cap  # most idle connections we open against it
        self.note = note
        self.is_eco = name.startswith('eco-')

    @property
    def row(self):
        return self.label if self.threads == 1 else f'{self.label} ×{self.threads}t'

    @property
    def key(self):
        return f'{self.name}/t{self.threads}'


def define_servers(a):
    """Every server the harness knows, with the reason any is unavailable."""
    py = a.python
    pbin = Path(a.peers_dir) / 'bin'
    defs = []   # (name, label, cmd, supports_threads, kwargs, unavailable_reason)

    def binary(name):
        path = pbin / name
        if path.exists():
            return str(path), None
        skipped = pbin / f'{name}.skipped'
        why = skipped.read_text().strip() if skipped.exists() else f'not built ({path} missing; run bench/peers/build.sh)'
        return str(path), why

    for engine in a.engines:
        defs.append((f'eco-{engine}', f'eco ({engine})',
                     lambda p, t, u, e=engine: [a.eco, 'serve', '--listen', f'127.0.0.1:{p}', '--threads', str(t),
                                                '--quiet', '--engine', e] + (['--udp'] if u else []),
                     True, {}, None))
    path, why = binary('tight_epoll')
    defs.append(('tight-c', 'tight C epoll (ET)', lambda p, t, u, x=path: [x, str(p)], False, {}, why))
    path, why = binary('asio_echo')
    defs.append(('asio', 'Asio (standalone)', lambda p, t, u, x=path: [x, str(p), str(t)], True, {}, why))
    path, why = binary('go_net')
    defs.append(('go', 'Go net', lambda p, t, u, x=path: [x, str(p), str(t)], True, {}, why))
    path, why = binary('tokio_echo')
    defs.append(('tokio', 'Rust tokio', lambda p, t, u, x=path: [x, str(p), str(t)], True, {}, why))
    pyok = shutil.which(py) is not None
    defs.append(('asyncio', 'Python asyncio',
                 lambda p, t, u: [py, str(PEERS_SRC / 'python_asyncio.py'), str(p)], False, {},
                 None if pyok else f'{py} not found'))
    uv = subprocess.run([py, '-c', 'import uvloop'], capture_output=True) if pyok else None
    defs.append(('uvloop', 'Python asyncio+uvloop',
                 lambda p, t, u: [py, str(PEERS_SRC / 'python_asyncio.py'), str(p), '--uvloop'], False, {},
                 None if uv is not None and uv.returncode == 0 else 'python3-uvloop not installed'))
    node = shutil.which('node') or shutil.which('nodejs')
    defs.append(('node', 'Node.js net',
                 lambda p, t, u: [node, str(PEERS_SRC / 'node_net.js'), str(p)], False, {},
                 None if node else 'node not installed (nodejs)'))
    socat = shutil.which('socat')
    defs.append(('socat', 'socat fork',
                 lambda p, t, u: [socat, f'UDP-RECVFROM:{p},bind=127.0.0.1,reuseaddr,fork', 'PIPE'] if u else
                 [socat, f'TCP-LISTEN:{p},bind=127.0.0.1,reuseaddr,fork,backlog=4096,nodelay', 'PIPE'],
                 False, dict(tree=True, idle_cap=a.socat_idle_cap,
                             note='a process per connection; UDP: a process per datagram (UDP-RECVFROM fork)'),
                 None if socat else 'socat not installed'))
    defs.append(('py-oneclient', "tutorial's Python server",
                 lambda p, t, u: [py, str(PEERS_SRC / 'python_oneclient.py'), str(p)], False,
                 dict(max_conns=1, udp=False, note='serves one client, then exits'),
                 None if pyok else f'{py} not found'))

    servers, unavailable = [], {}
    for name, label, cmd, threads_ok, kw, why in defs:
        if a.only and name not in a.only:
            continue
        if why:
            unavailable[name] = why
            continue
        servers.append(Server(name, label, cmd, 1, **kw))
        if threads_ok and a.threads > 1:
            servers.append(Server(name, label, cmd, a.threads, **kw))
    return servers, unavailable


# ------------------------------------------------------------------- /proc ---

def proc_stat_fields(pid):
    """(ppid, utime, stime, cutime, cstime) in ticks; None if gone."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(')') + 2:].split()  # comm may hold spaces and ')'
    return int(rest[1]), int(rest[11]), int(rest[12]), int(rest[13]), int(rest[14])


def process_tree(root):
    children = {}
    for d in os.listdir('/proc'):
        if d.isdigit():
            f = proc_stat_fields(d)
            if f:
                children.setdefault(f[0], []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def status_kib(pid, key):
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid):
    try:
        with open(f'/proc/{pid}/smaps_rollup') as f:
            for line in f:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return status_kib(pid, 'VmRSS')


def run_ns(pid):
    """On-CPU nanoseconds of a process's live threads (schedstat: exact, where
    /proc/PID/stat counts whole clock ticks and truncates each process's share,
    which reads 0 for a tree of many small socat processes)."""
    total = 0
    try:
        for tid in os.listdir(f'/proc/{pid}/task'):
            try:
                with open(f'/proc/{pid}/task/{tid}/schedstat') as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        pass
    return total


def server_sample(root, tree):
    """CPU time and memory of the server, its children included (live ones
    directly, exited and reaped ones through cutime/cstime). ns is the total
    on-CPU time; user/kern are clock ticks, used only for the user share."""
    pids = process_tree(root) if tree else [root]
    user = kern = ns = 0
    rss = pss = 0
    for p in pids:
        f = proc_stat_fields(p)
        if not f:
            continue
        user += f[1] + f[3]
        kern += f[2] + f[4]
        ns += run_ns(p) + (f[3] + f[4]) * 1_000_000_000 // CLK_TCK
        rss += status_kib(p, 'VmRSS')
        pss += pss_kib(p) if tree else 0
    return dict(t=time.monotonic(), user=user, kern=kern, ns=ns, rss_kib=rss, pss_kib=pss if tree else rss,
                hwm_kib=status_kib(root, 'VmHWM'), nproc=len(pids))


def machine_busy_ticks():
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal: busy excludes idle+iowait
    return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)


# ------------------------------------------------------------- server life ---

def port_is_free(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(('127.0.0.1', port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def pick_port():
    # Below the ephemeral range, so the generator's own source ports never collide.
    for _ in range(200):
        p = random.randint(20000, 29999)
        if port_is_free(p):
            return p
    raise RuntimeError('no free port in 20000-29999')


def listening(port, udp):
    """True when something listens on 127.0.0.1:port, read from /proc/net so
    that checking does not take the one-client server's only connection."""
    want = f':{port:04X}'
    files = [('/proc/net/udp', '07')] if udp else [('/proc/net/tcp', '0A')]
    for path, state in files:
        found = False
        with open(path) as f:
            next(f)
            for line in f:
                col = line.split()
                if col[1].endswith(want) and col[3] == state:
                    found = True
                    break
        if not found:
            return False
    return True


def start_server(a, srv, port, udp):
    argv = ['taskset', '-c', a.server_cpus] + srv.cmd(port, srv.threads, udp)
    env = dict(os.environ)
    if srv.name == 'go':
        env.pop('GOMAXPROCS', None)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, env=env)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors='replace').strip()
            raise RuntimeError(f'{srv.row} exited with {proc.returncode} at start: {err[-300:]}')
        if listening(port, udp):
            return proc
        time.sleep(0.02)
    stop_server(proc)
    raise RuntimeError(f'{srv.row} did not listen on port {port} within 15 s')


def stop_server(proc):
    """Ends the server and everything it forked (its own process group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers: socat children
    except ProcessLookupError:
        pass
    if proc.poll() is None:
        proc.wait()
    err = proc.stderr.read().decode(errors='replace') if proc.stderr else ''
    return err


# ------------------------------------------------------------- one bench run --

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
    port = pick_port()
    rec = dict(server=srv.key, scenario=sc['id'], ok=False)
    try:
        proc = start_server(a, srv, port, udp)
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
        while time.monotonic() < t1 and bench.poll() is None:
            time.sleep(min(0.01, max(0.0, t1 - time.monotonic())))
        if bench.poll() is None:
            s1, m1 = server_sample(proc.pid, srv.tree), machine_busy_ticks()
        try:
            out, err = bench.communicate(timeout=a.warmup + a.duration + 60)
        except subprocess.TimeoutExpired:
            bench.kill()
            out, err = bench.communicate()
            rec['failure'] = 'eco bench did not finish (killed)'
        rec['bench_rc'] = bench.returncode
        rec['bench_stderr'] = err.decode(errors='replace')[-2000:]
        res = None
        for line in reversed(out.decode(errors='replace').splitlines()):
            if line.startswith('{'):
                try:
                    res = json.loads(line)
                except ValueError:
                    pass
                break
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


# ------------------------------------------------------- idle connections ---

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
    n = min(n, a.idle_conns) if a.idle_conns else n
    if srv.idle_cap:
        n = min(n, srv.idle_cap)
    port = pick_port()
    rec = dict(server=srv.key, scenario=sc['id'], ok=False, conns=n)
    try:
        proc = start_server(a, srv, port, False)
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


# ------------------------------------------------------------- environment ---

def first_line(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        out = (r.stdout or r.stderr).strip().splitlines()
        return out[0] if out else ''
    except (OSError, subprocess.TimeoutExpired):
        return ''


def socat_version():
    if not shutil.which('socat'):
        return ''
    r = subprocess.run(['socat', '-V'], capture_output=True, text=True)
    m = re.search(r'socat version (\S+)', r.stdout + r.stderr)
    return m.group(1) if m else ''


def machine_info(a):
    cpu = ''
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    tokio = sorted(Path('/usr/share/cargo/registry').glob('tokio-1.*')) if Path('/usr/share/cargo/registry').exists() else []
    asio = ''
    vh = Path('/usr/include/asio/version.hpp')
    if vh.exists():
        m = re.search(r'#define ASIO_VERSION (\d+)', vh.read_text())
        if m:
            v = int(m.group(1))
            asio = f'{v // 100000}.{v // 100 % 1000}.{v % 100}'
    node = shutil.which('node') or shutil.which('nodejs')
    return dict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        kernel=platform.release(), cpu=cpu, cpus=os.cpu_count(),
        loadavg_start=open('/proc/loadavg').read().split()[:3],
        versions={
            'eco': first_line([a.eco, '--version']),
            'python3': first_line([a.python, '--version']),
            'uvloop': first_line([a.python, '-c', 'import uvloop; print(uvloop.__version__)']),
            'node': first_line([node, '--version']) if node else '',
            'go': first_line(['go', 'version']) if shutil.which('go') else '',
            'rustc': first_line(['/usr/bin/rustc', '--version']) if Path('/usr/bin/rustc').exists() else '',
            'tokio': tokio[-1].name if tokio else '',
            'asio': asio,
            'socat': socat_version(),
            'gcc': first_line(['gcc', '--version']),
        })


def probe_engines(a):
    """The eco engines `eco serve --engine X` accepts here, each one a row."""
    ok = []
    for engine in a.engine_candidates:
        srv = Server(f'eco-{engine}', engine, lambda p, t, u, e=engine: [
            a.eco, 'serve', '--listen', f'127.0.0.1:{p}', '--threads', '1', '--quiet', '--engine', e])
        try:
            proc = start_server(a, srv, pick_port(), False)
        except RuntimeError as e:
            log(f'run-peers: eco engine {engine!r} not available: {str(e).splitlines()[0][:200]}')
            continue
        stop_server(proc)
        ok.append(engine)
    return ok


# --------------------------------------------------------------- summaries ---

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(runs, servers, scenarios):
    """Median per (scenario, server) over its repetitions."""
    out = {}
    for sc in scenarios:
        for srv in servers:
            rs = [r for r in runs if r['scenario'] == sc['id'] and r['server'] == srv.key]
            if not rs:
                continue
            good = [r for r in rs if r['ok']]
            bad = [r for r in rs if not r['ok']]
            s = dict(reps=len(rs), failed=len(bad), failures=[r.get('failure', '?') for r in bad])
            if sc.get('idle'):
                for k in ('bytes_per_conn_connected', 'bytes_per_conn_idle', 'base_kib', 'idle_kib', 'conns',
                          'server_procs'):
                    s[k] = median([r.get(k) for r in good])
            else:
                rt = [r['bench']['rt_per_s'] for r in good]
                s['rt_per_s'] = median(rt)
                s['spread'] = (max(rt) - min(rt)) / s['rt_per_s'] if len(rt) > 1 and s['rt_per_s'] else None
                s['mb_per_s'] = median([r['bench'].get('mb_per_s') for r in good])
                for p in ('p50', 'p99', 'p99.9'):
                    s[p] = median([r['bench'].get('latency_us', {}).get(p) for r in good])
                for k in ('server_cpu_us_per_rt', 'machine_cpu_us_per_rt', 'server_user_share', 'rss_kib',
                          'server_cpu_share'):
                    s[k] = median([r.get(k) for r in good])
                s['rate_shortfall'] = any(r['bench'].get('rate_shortfall') for r in good)
            out[(sc['id'], srv.key)] = s
    return out


def fmt_num(x, digits=0):
    if x is None:
        return '—'
    if digits == 0:
        return f'{x:,.0f}'
    return f'{x:,.{digits}f}'


def fmt_lat(us):
    if us is None:
        return '—'
    return f'{us:,.0f}' if us >= 100 else f'{us:.1f}'


def reference(summary, scid, servers):
    """The eco row the ratios are against: io_uring if it ran, else epoll;
    1 thread, no failures."""
    for name in ('eco-uring', 'eco-epoll'):
        for srv in servers:
            if srv.name == name and srv.threads == 1:
                s = summary.get((scid, srv.key))
                if s and not s['failed'] and s.get('rt_per_s'):
                    return srv, s
    return None, None


def markdown(info, a, servers, unavailable, scenarios, summary, skipped_cells):
    L = []
    kind = 'SMOKE RUN (--quick): short runs, 1 repetition, machine possibly busy — checks the harness, ' \
           'not a result to quote' if a.quick else f'Full run: {a.reps} repetitions per cell, interleaved'
    L.append(f'**{kind}.**')
    L.append('')
    L.append(f"- Date: {info['date']}; kernel {info['kernel']}; CPU {info['cpu']} ×{info['cpus']}; "
             f"load average at start {' '.join(info['loadavg_start'])}, at end {' '.join(info.get('loadavg_end', []))}")
    L.append(f'- Server pinned to CPU {a.server_cpus}, eco bench ({a.client_threads} thread) and the harness to CPU '
             f'{a.client_cpus}; warm-up {a.warmup} s, measured {a.duration} s per run; figures are medians over '
             f'{a.reps} run(s), ± is (max−min)/median of rt/s.')
    v = info['versions']
    L.append('- Versions: ' + '; '.join(f'{k} `{v[k]}`' for k in v if v[k]))
    if unavailable:
        L.append('- Not run: ' + '; '.join(f'{k} ({w})' for k, w in unavailable.items()))
    L.append('')
    L.append('Columns: rt/s = verified round trips per second; ×eco = rt/s relative to the eco row the ratios '
             'use (io_uring if available, else epoll); srv µs/rt = server CPU (user+kernel, whole process tree) '
             'per round trip; ×eco CPU = that relative to eco (lower is better); machine µs/rt = busy time of all '
             'CPUs per round trip (client included); user = user-space share of server CPU; RSS = server '
             'resident memory at the end of the window. A run with any error shows FAILED and no speed.')
    L.append('')
    for sc in scenarios:
        L.append(f"### {sc['title']}")
        L.append('')
        if sc.get('idle'):
            L.append('| server | conns | base RSS | per conn, connected | per conn, after one echo | result |')
            L.append('|---|---:|---:|---:|---:|---|')
            for srv in servers:
                s = summary.get((sc['id'], srv.key))
                if not s:
                    continue
                res = 'ok' if not s['failed'] else 'FAILED: ' + '; '.join(s['failures'])[:150]
                L.append(f"| {srv.row} | {fmt_num(s['conns'])} | {fmt_num(s['base_kib'] and s['base_kib'] / 1024, 1)} MiB"
                         f" | {fmt_num(s['bytes_per_conn_connected'])} B | {fmt_num(s['bytes_per_conn_idle'])} B | {res} |")
        else:
            ref_srv, ref = reference(summary, sc['id'], servers)
            L.append('| server | rt/s | ×eco | MB/s | p50 µs | p99 µs | p99.9 µs | srv µs/rt | ×eco CPU '
                     '| machine µs/rt | user | RSS MiB | result |')
            L.append('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
            for srv in servers:
                s = summary.get((sc['id'], srv.key))
                if not s:
                    continue
                if s['failed']:
                    L.append(f"| {srv.row} | FAILED | | | | | | | | | | | {s['failed']}/{s['reps']} runs failed: "
                             f"{'; '.join(sorted(set(s['failures'])))[:200]} |")
                    continue
                spread = f" ±{s['spread'] * 100:.0f}%" if s.get('spread') is not None else ''
                ratio = f"{s['rt_per_s'] / ref['rt_per_s']:.2f}" if ref else '—'
                cratio = f"{s['server_cpu_us_per_rt'] / ref['server_cpu_us_per_rt']:.2f}" \
                    if ref and ref.get('server_cpu_us_per_rt') and s.get('server_cpu_us_per_rt') else '—'
                note = 'ok' + (' (rate shortfall: could not hold the asked rate)' if s.get('rate_shortfall') else '')
                user = f"{s['server_user_share'] * 100:.0f}%" if s.get('server_user_share') is not None else '—'
                L.append(f"| {srv.row} | {fmt_num(s['rt_per_s'])}{spread} | {ratio} | {fmt_num(s['mb_per_s'], 1)} | "
                         f"{fmt_lat(s['p50'])} | {fmt_lat(s['p99'])} | {fmt_lat(s['p99.9'])} | "
                         f"{fmt_num(s['server_cpu_us_per_rt'], 2)} | {cratio} | {fmt_num(s['machine_cpu_us_per_rt'], 2)} | "
                         f"{user} | {fmt_num(s['rss_kib'] and s['rss_kib'] / 1024, 1)} | {note} |")
        skipped = skipped_cells.get(sc['id'])
        if skipped:
            L.append('')
            L.append('Not run in this scenario: ' + '; '.join(skipped) + '.')
        L.append('')
    # One line per scenario: the best eco row against the best peer.
    L.append('### Summary: best eco against the best peer')
    L.append('')
    L.append('| scenario | best eco | rt/s | best peer | rt/s | eco ÷ peer rt/s | eco srv µs/rt | peer srv µs/rt | '
             'eco ÷ peer CPU |')
    L.append('|---|---|---:|---|---:|---:|---:|---:|---:|')
    for sc in scenarios:
        if sc.get('idle'):
            continue
        cells = [(srv, summary.get((sc['id'], srv.key))) for srv in servers]
        cells = [(srv, s) for srv, s in cells if s and not s['failed'] and s.get('rt_per_s')]
        ecos = [c for c in cells if c[0].is_eco]
        peers = [c for c in cells if not c[0].is_eco]
        if not ecos or not peers:
            continue
        if sc.get('rate'):  # open loop: the best is the lowest p99, not the rate everyone holds
            be = min(ecos, key=lambda c: c[1]['p99'] or 1e18)
            bp = min(peers, key=lambda c: c[1]['p99'] or 1e18)
        else:
            be = max(ecos, key=lambda c: c[1]['rt_per_s'])
            bp = max(peers, key=lambda c: c[1]['rt_per_s'])
        ce, cp = be[1].get('server_cpu_us_per_rt'), bp[1].get('server_cpu_us_per_rt')
        L.append(f"| {sc['id']}{' (by p99: ' + fmt_lat(be[1]['p99']) + ' vs ' + fmt_lat(bp[1]['p99']) + ' µs)' if sc.get('rate') else ''}"
                 f" | {be[0].row} | {fmt_num(be[1]['rt_per_s'])} | {bp[0].row} | {fmt_num(bp[1]['rt_per_s'])} | "
                 f"{be[1]['rt_per_s'] / bp[1]['rt_per_s']:.2f} | {fmt_num(ce, 2)} | {fmt_num(cp, 2)} | "
                 f"{(ce / cp) if ce and cp else float('nan'):.2f} |")
    L.append('')
    return '\n'.join(L)


def write_markdown(path, section):
    path = Path(path)
    block = f'{RESULTS_BEGIN}\n{section}\n{RESULTS_END}\n'
    if path.exists():
        text = path.read_text()
        if RESULTS_BEGIN in text and RESULTS_END in text:
            head, rest = text.split(RESULTS_BEGIN, 1)
            tail = rest.split(RESULTS_END, 1)[1].lstrip('\n')
            path.write_text(head + block + tail)
            return
        path.write_text(text.rstrip('\n') + '\n\n## Results\n\n' + block)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('# eco and its peers\n\nMethod: see bench/README.md.\n\n## Results\n\n' + block)


# -------------------------------------------------------------------- main ---

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
    p.add_argument('--duration', type=float, help='measured seconds per run (default 2; --quick 0.5)')
    p.add_argument('--warmup', type=float, help='warm-up seconds per run (default 0.5; --quick 0.2)')
    p.add_argument('--scenarios', help='comma list of scenario ids: ' + ','.join(s['id'] for s in SCENARIOS))
    p.add_argument('--only', help='comma list of servers: eco-epoll,eco-uring,tight-c,asio,go,tokio,asyncio,'
                                  'uvloop,node,socat,py-oneclient')
    p.add_argument('--engines', default='epoll,uring',
                   help='eco engines to try; each one `eco serve --engine X` accepts becomes a row')
    p.add_argument('--server-cpus', default='1', help='CPU list for the server (taskset -c)')
    p.add_argument('--client-cpus', default='0', help='CPU list for eco bench and this harness')
    p.add_argument('--threads', type=int,
                   help='server threads for the multi-thread rows (default: number of server CPUs; '
                        'a 1-thread row is always there)')
    p.add_argument('--client-threads', type=int, default=1, help='eco bench --threads')
    p.add_argument('--idle-conns', type=int, help='idle connections (default 10,000; --quick 1,000)')
    p.add_argument('--socat-idle-cap', type=int, default=1000,
                   help='most idle connections against socat (a process each)')
    p.add_argument('--out-md', default=str(REPO / 'docs' / 'peers.md'))
    p.add_argument('--out-json', help='default docs/results/peers.json (--quick: peers-quick.json)')
    p.add_argument('--list', action='store_true', help='print servers and scenarios, run nothing')
    a = p.parse_args()
    a.reps = a.reps or (1 if a.quick else 3)
    a.duration = a.duration or (0.5 if a.quick else 2.0)
    a.warmup = a.warmup if a.warmup is not None else (0.2 if a.quick else 0.5)
    a.only = set(a.only.split(',')) if a.only else None
    a.engine_candidates = [e for e in a.engines.split(',') if e]
    ncpu = len(parse_cpus(a.server_cpus))
    a.threads = a.threads or ncpu
    a.out_json = a.out_json or str(REPO / 'docs' / 'results' / ('peers-quick.json' if a.quick else 'peers.json'))
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
    if subprocess.run([a.eco, 'bench', '--help'], capture_output=True).returncode != 0:
        sys.exit(f'run-peers: {a.eco} has no `bench` subcommand yet')
    if not shutil.which('taskset'):
        sys.exit('run-peers: taskset not found (util-linux)')
    # The generator side: this process (idle-connection opener) on the client CPUs.
    os.sched_setaffinity(0, parse_cpus(a.client_cpus))
    # 10,000 idle connections need that many descriptors here and in the server.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
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
    est = load_runs * (a.warmup + a.duration + 0.6) + idle_runs * 4
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
    write_markdown(a.out_md, section)
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
    log(f'run-peers: wrote {a.out_md} and {a.out_json} in {info["harness_s"]:.0f} s; {failed} failed run(s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
