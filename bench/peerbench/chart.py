"""The PNG chart: round trips/s of every server relative to eco, per scenario,
drawn by gnuplot (Debian's gnuplot-nox) when it is installed."""
import shutil
import subprocess
import tempfile
from pathlib import Path

from .report import reference


PALETTE = ['#08519c', '#6baed6', '#e6550d', '#fdae6b', '#31a354', '#a1d99b', '#756bb1', '#bcbddc',
           '#636363', '#bdbdbd', '#d6616b', '#e7ba52', '#8c6d31', '#7b4173']


def write_chart(png, servers, scenarios, summary, title):
    """Returns None when drawn, else why not (gnuplot missing, nothing to draw)."""
    if not shutil.which('gnuplot'):
        return 'gnuplot not installed (gnuplot-nox)'
    load = [sc for sc in scenarios if not sc.get('idle')]
    cols = []  # servers with at least one figure
    rows = []
    for sc in load:
        _, ref = reference(summary, sc['id'], servers)
        row = []
        for srv in servers:
            s = summary.get((sc['id'], srv.key))
            ok = ref and s and not s['failed'] and s.get('rt_per_s')
            row.append(s['rt_per_s'] / ref['rt_per_s'] if ok else None)
        rows.append((sc['id'], row))
    cols = [i for i, srv in enumerate(servers) if any(r[i] is not None for _, r in rows)]
    if not cols or not rows:
        return 'no results to draw'
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / 'ratios.dat'
        with open(data, 'w') as f:
            # Missing cells (failed, not run) are '?', which gnuplot skips.
            f.write('scenario ' + ' '.join(f'"{servers[i].row}"' for i in cols) + '\n')
            for scid, row in rows:
                f.write(scid + ' ' + ' '.join('?' if row[i] is None else f'{row[i]:.4f}' for i in cols) + '\n')
        top = max(v for _, row in rows for v in row if v is not None)
        ymax = max(2.0, top * 1.5)
        # One distinct colour per server (gnuplot's default cycle repeats after 8).
        colors = '\n'.join(f'set linetype {n + 1} lc rgb "{c}"' for n, c in enumerate(PALETTE))
        script = f'''
set terminal pngcairo size 1400,700 font "sans,10"
{colors}
set output "{png}"
set title "{title}"
set datafile missing "?"
set style data histograms
set style histogram clustered gap 2
set style fill solid 0.9 border -1
set boxwidth 0.9
set logscale y 10
set yrange [0.01:{ymax:.3g}]
set ylabel "round trips/s relative to eco (log scale; 1 = eco)"
set grid ytics
set key outside right top vertical
set arrow from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 lw 1.5 lc rgb "black"
plot for [c=2:{len(cols) + 1}] "{data}" using c:xtic(1) title columnheader(c)
'''
        r = subprocess.run(['gnuplot'], input=script, capture_output=True, text=True)
        if r.returncode != 0:
            return 'gnuplot failed: ' + r.stderr.strip()[-300:]
    return None
