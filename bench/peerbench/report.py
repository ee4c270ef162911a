"""Environment record, medians over repetitions, and the Markdown tables."""
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
from pathlib import Path

RESULTS_BEGIN = '<!-- peers:results:begin -->'
RESULTS_END = '<!-- peers:results:end -->'


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
                for k in ('bytes_per_conn_connected', 'bytes_per_conn_idle', 'base_kib', 'idle_kib',
                          'server_procs'):
                    s[k] = median([r.get(k) for r in good])
                s['conns'] = median([r.get('conns') for r in rs])
                s['asked'] = median([r.get('asked') for r in rs])
            else:
                rt = [r['bench']['rt_per_s'] for r in good]
                s['rt_per_s'] = median(rt)
                s['spread'] = (max(rt) - min(rt)) / s['rt_per_s'] if len(rt) > 1 and s['rt_per_s'] else None
                s['mb_per_s'] = median([r['bench'].get('mb_per_s') for r in good])
                for p in ('p50', 'p99', 'p99.9'):
                    s[p] = median([r['bench'].get('latency_us', {}).get(p) for r in good])
                for k in ('server_cpu_us_per_rt', 'machine_cpu_us_per_rt', 'server_user_share', 'rss_kib',
                          'server_cpu_share', 'other_cores'):
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
    others = [x.get('other_cores') for x in summary.values() if x.get('other_cores') is not None]
    if others:
        o = median(others)
        L.append(f'- Quiet machine? Other processes kept a median of {o:.2f} CPU cores busy during the measured '
                 f'windows (max {max(others):.2f})' + ('.' if o < 0.1 else ': **not a quiet run**, the figures '
                                                      'carry that noise.'))
    v = info['versions']
    L.append('- Versions: ' + '; '.join(f'{k} `{v[k]}`' for k in v if v[k]))
    if unavailable:
        L.append('- Not run: ' + '; '.join(f'{k} ({w})' for k, w in unavailable.items()))
    L.append('')
    L.append('Columns: rt/s = verified round trips per second; ×eco = rt/s relative to the eco row the ratios '
             'use (io_uring if available, else epoll); srv µs/rt = server CPU (user+kernel, whole process tree) '
             'per round trip; ×eco CPU = that relative to eco (lower is better); machine µs/rt = busy time of all '
             'CPUs per round trip (client included); srv busy = server CPU time over wall time (100% = one '
             'core saturated: the server is the bottleneck; well below = the generator or the kernel is); '
             'user = user-space share of server CPU; other = CPU cores busy with anything but the server, '
             'eco bench and this harness during the window (well above 0: the machine was not quiet, and '
             'the row is noise); RSS = server '
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
                if s['conns'] is not None and s['asked'] and s['conns'] < s['asked'] and srv.note:
                    res += f' (fewer connections: {srv.note})'
                L.append(f"| {srv.row} | {fmt_num(s['conns'])} | {fmt_num(s['base_kib'] and s['base_kib'] / 1024, 1)} MiB"
                         f" | {fmt_num(s['bytes_per_conn_connected'])} B | {fmt_num(s['bytes_per_conn_idle'])} B | {res} |")
        else:
            ref_srv, ref = reference(summary, sc['id'], servers)
            L.append('| server | rt/s | ×eco | MB/s | p50 µs | p99 µs | p99.9 µs | srv µs/rt | ×eco CPU '
                     '| machine µs/rt | srv busy | user | other | RSS MiB | result |')
            L.append('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
            for srv in servers:
                s = summary.get((sc['id'], srv.key))
                if not s:
                    continue
                if s['failed']:
                    L.append(f"| {srv.row} | FAILED | | | | | | | | | | | | | {s['failed']}/{s['reps']} runs failed: "
                             f"{'; '.join(sorted(set(s['failures'])))[:200]} |")
                    continue
                spread = f" ±{s['spread'] * 100:.0f}%" if s.get('spread') is not None else ''
                ratio = f"{s['rt_per_s'] / ref['rt_per_s']:.2f}" if ref else '—'
                cratio = f"{s['server_cpu_us_per_rt'] / ref['server_cpu_us_per_rt']:.2f}" \
                    if ref and ref.get('server_cpu_us_per_rt') and s.get('server_cpu_us_per_rt') else '—'
                note = 'ok' + (' (rate shortfall: could not hold the asked rate)' if s.get('rate_shortfall') else '')
                other = f"{s['other_cores']:.2f}" if s.get('other_cores') is not None else '—'
                busy = f"{s['server_cpu_share'] * 100:.0f}%" if s.get('server_cpu_share') is not None else '—'
                user = f"{s['server_user_share'] * 100:.0f}%" if s.get('server_user_share') is not None else '—'
                L.append(f"| {srv.row} | {fmt_num(s['rt_per_s'])}{spread} | {ratio} | {fmt_num(s['mb_per_s'], 1)} | "
                         f"{fmt_lat(s['p50'])} | {fmt_lat(s['p99'])} | {fmt_lat(s['p99.9'])} | "
                         f"{fmt_num(s['server_cpu_us_per_rt'], 2)} | {cratio} | {fmt_num(s['machine_cpu_us_per_rt'], 2)} | "
                         f"{busy} | {user} | {other} | {fmt_num(s['rss_kib'] and s['rss_kib'] / 1024, 1)} | {note} |")
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
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('# eco and its peers\n\nMethod: see bench/README.md.\n\n## Results\n\n')
    elif RESULTS_BEGIN not in path.read_text():
        path.write_text(path.read_text().rstrip('\n') + '\n\n## Results\n\n')
    write_between(path, RESULTS_BEGIN, RESULTS_END, section)

SUMMARY_BEGIN = '<!-- peers:summary:begin -->'
SUMMARY_END = '<!-- peers:summary:end -->'


def _ok(s):
    return s and not s['failed'] and (s.get('rt_per_s') or s.get('bytes_per_conn_idle') is not None)


def ratio_table(info, a, servers, scenarios, summary):
    """The compact view for docs/benchmarks.md: every server against eco (io_uring),
    one column per scenario, then eco's speed targets checked one by one from the
    same numbers (so the verdict cannot drift from the table)."""
    L = []
    load = [sc for sc in scenarios if not sc.get('idle')]
    idle = [sc for sc in scenarios if sc.get('idle')]
    L.append(f"Run of {info['date']} ({'smoke run, --quick: not a result' if a.quick else f'{a.reps} interleaved repetitions, medians'}); "
             f"full tables in [peers.md](peers.md). Each cell is **rt/s ÷ eco's · server CPU per round trip ÷ "
             f"eco's** (above 1 / below 1 means that server beat eco on that figure); for the open-loop scenario it "
             f"is **p99 ÷ eco's p99** (below 1: better tail than eco); for idle connections, user-space bytes per "
             f"connection. eco = eco (uring), 1 thread.")
    L.append('')
    head = '| server | ' + ' | '.join(sc['id'] for sc in load) + ''.join(' | idle B/conn' for _ in idle) + ' |'
    L.append(head)
    L.append('|---|' + '---:|' * (len(load) + len(idle)))
    for srv in servers:
        cells, any_cell = [], False
        for sc in load:
            _, ref = reference(summary, sc['id'], servers)
            s = summary.get((sc['id'], srv.key))
            if not s:
                cells.append('—')
            elif s['failed']:
                cells.append('FAILED')
                any_cell = True
            elif not ref:
                cells.append('?')
            elif sc.get('rate'):
                cells.append(f"{s['p99'] / ref['p99']:.2f}" if s.get('p99') and ref.get('p99') else '—')
                any_cell = True
            else:
                rt = s['rt_per_s'] / ref['rt_per_s']
                cpu = (s['server_cpu_us_per_rt'] / ref['server_cpu_us_per_rt']
                       if s.get('server_cpu_us_per_rt') and ref.get('server_cpu_us_per_rt') else None)
                cells.append(f"{rt:.2f} · {cpu:.2f}" if cpu else f'{rt:.2f}')
                any_cell = True
        for sc in idle:
            s = summary.get((sc['id'], srv.key))
            if _ok(s):
                cells.append(fmt_num(s['bytes_per_conn_idle']))
                any_cell = True
            else:
                cells.append('FAILED' if s else '—')
        if any_cell:
            L.append(f'| {srv.row} | ' + ' | '.join(cells) + ' |')
    L.append('')
    L.append("eco's targets, checked against the best peer in each scenario:")
    L.append('')
    L.extend(target_lines(servers, scenarios, summary))
    L.append('')
    return '\n'.join(L)


def target_lines(servers, scenarios, summary):
    out = []
    def cells(scid, eco):
        r = [(srv, summary.get((scid, srv.key))) for srv in servers if srv.is_eco == eco]
        return [(srv, s) for srv, s in r if _ok(s)]
    eco_ref = {sc['id']: reference(summary, sc['id'], servers) for sc in scenarios}
    for scid in ('50x64', '50x16k'):
        srv, ref = eco_ref.get(scid, (None, None))
        peers = [c for c in cells(scid, False) if c[1].get('server_cpu_us_per_rt')]
        if not ref or not peers:
            continue
        bp = min(peers, key=lambda c: c[1]['server_cpu_us_per_rt'])
        r = ref['server_cpu_us_per_rt'] / bp[1]['server_cpu_us_per_rt']
        out.append(f"- {'met' if r <= 0.8 else '**not met**'}: server CPU per round trip at {scid} ≤ 0.8× the "
                   f"leanest peer's: eco {ref['server_cpu_us_per_rt']:.2f} µs against {bp[0].row} "
                   f"{bp[1]['server_cpu_us_per_rt']:.2f} µs = {r:.2f}×")
    lost = []
    for sc in scenarios:
        if sc.get('idle') or sc.get('rate'):
            continue
        ecos, peers = cells(sc['id'], True), cells(sc['id'], False)
        if not ecos or not peers:
            continue
        be = max(ecos, key=lambda c: c[1]['rt_per_s'])
        bp = max(peers, key=lambda c: c[1]['rt_per_s'])
        r = be[1]['rt_per_s'] / bp[1]['rt_per_s']
        if r < 1:
            spread = max(be[1].get('spread') or 0, bp[1].get('spread') or 0)
            lost.append(f"{sc['id']} ({be[0].row} {r:.2f}× {bp[0].row}; spread ±{spread * 100:.0f}%)")
    out.append('- ' + ('met' if not lost else '**not met**') + ': round trips/s ≥ the best peer in every scenario'
               + (' (best eco row against best peer); below in: ' + ', '.join(lost) if lost else ''))
    for sc in scenarios:
        if not sc.get('rate'):
            continue
        ecos, peers = cells(sc['id'], True), cells(sc['id'], False)
        if ecos and peers:
            be = min(ecos, key=lambda c: c[1]['p99'] or 1e18)
            bp = min(peers, key=lambda c: c[1]['p99'] or 1e18)
            out.append(f"- {'met' if be[1]['p99'] <= bp[1]['p99'] else '**not met**'}: open-loop p99 ≤ the best "
                       f"peer's: {be[0].row} {fmt_lat(be[1]['p99'])} µs against {bp[0].row} {fmt_lat(bp[1]['p99'])} µs")
    for sc in scenarios:
        if not sc.get('idle'):
            continue
        ecos, peers = cells(sc['id'], True), cells(sc['id'], False)
        if ecos and peers:
            be = min(ecos, key=lambda c: c[1]['bytes_per_conn_idle'])
            bp = min(peers, key=lambda c: c[1]['bytes_per_conn_idle'])
            ok = be[1]['bytes_per_conn_idle'] < bp[1]['bytes_per_conn_idle']
            out.append(f"- {'met' if ok else '**not met**'}: user-space memory per idle connection the lowest: "
                       f"{be[0].row} {fmt_num(be[1]['bytes_per_conn_idle'])} B against {bp[0].row} "
                       f"{fmt_num(bp[1]['bytes_per_conn_idle'])} B")
    return out


def write_between(path, begin, end, section):
    """Replaces the text between the markers in `path` (appends the block if absent)."""
    path = Path(path)
    block = f'{begin}\n{section}\n{end}\n'
    text = path.read_text() if path.exists() else ''
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip('\n')
        path.write_text(head + block + tail)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.rstrip('\n') + ('\n\n' if text else '') + block)
