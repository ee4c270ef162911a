"""The servers under test (eco's engines and the peers) and their start, readiness and stop."""
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .common import PEERS_SRC, log


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
    # io.Copy(c, c) between TCP connections splices through a pipe pair per
    # connection: 3 descriptors each, so the descriptor limit caps its idle count.
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    defs.append(('go', 'Go net', lambda p, t, u, x=path: [x, str(p), str(t)], True,
                 dict(idle_cap=nofile // 3 - 100,
                      note=f'io.Copy splices through a pipe pair per connection (3 descriptors each; limit here {nofile})'),
                 why))
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
