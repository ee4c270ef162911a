#!/usr/bin/env python3
"""Tests of the peer harness (not part of `make test`; run by hand or by a
bench job):

    /usr/bin/python3 bench/test_peers.py            # report logic, no servers, < 1 s
    ECO=build/release/eco PEERS=build/peers \\
        /usr/bin/python3 bench/test_peers.py --e2e   # also a real --quick run (about a minute)

The end-to-end test asserts that a --quick run produces complete output (a
row or a "not run" line for every server in every scenario, a JSON record per
planned run, the chart), not any speed.
"""
import json
import os
import subprocess
import sys
import tempfile
import types
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peerbench.report import (RESULTS_BEGIN, RESULTS_END, SUMMARY_BEGIN, SUMMARY_END, markdown,  # noqa: E402
                              ratio_table, summarize, write_between, write_markdown)
from peerbench.runs import SCENARIOS  # noqa: E402
from peerbench.servers import Server  # noqa: E402


def load_run(server, scenario, rt, ok=True, errors=None, p99=100.0, cpu=10.0):
    bench = dict(rt_per_s=rt, mb_per_s=rt * 128 / 1e6, latency_us={'p50': 50.0, 'p99': p99, 'p99.9': 2 * p99},
                 errors=errors or {}, rate_shortfall=None)
    return dict(server=server, scenario=scenario, ok=ok, bench=bench, errors=errors or {},
                server_cpu_us_per_rt=cpu, machine_cpu_us_per_rt=2 * cpu, server_user_share=0.1,
                rss_kib=4096, server_cpu_share=0.9,
                **({} if ok else {'failure': 'errors: ' + ', '.join(f'{k} {v}' for k, v in (errors or {}).items())}))


def args(**kw):
    base = dict(quick=False, reps=3, server_cpus='1', client_cpus='0', client_threads=1, warmup=0.5, duration=1.5)
    base.update(kw)
    return types.SimpleNamespace(**base)


INFO = dict(date='2026-01-01 00:00 UTC', kernel='6.1', cpu='test CPU', cpus=2, loadavg_start=['0.00'] * 3,
            loadavg_end=['0.00'] * 3, versions={'eco': 'eco test'})


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.eco = Server('eco-uring', 'eco (uring)', None)
        self.fast_wrong = Server('tight-c', 'tight C', None)
        self.slow = Server('node', 'Node.js net', None)
        self.servers = [self.eco, self.fast_wrong, self.slow]
        self.sc = [s for s in SCENARIOS if s['id'] == '50x64']

    def test_median_and_spread_over_repetitions(self):
        runs = [load_run('eco-uring/t1', '50x64', rt) for rt in (90, 100, 120)]
        s = summarize(runs, self.servers, self.sc)[('50x64', 'eco-uring/t1')]
        self.assertEqual(s['rt_per_s'], 100)
        self.assertAlmostEqual(s['spread'], 0.3)
        self.assertEqual(s['failed'], 0)

    def test_a_server_with_mismatches_never_shows_a_speed(self):
        runs = [load_run('eco-uring/t1', '50x64', 100_000),
                load_run('tight-c/t1', '50x64', 900_000, ok=False, errors={'mismatch': 7}),
                load_run('node/t1', '50x64', 30_000)]
        summary = summarize(runs, self.servers, self.sc)
        md = markdown(INFO, args(reps=1), self.servers, {}, self.sc, summary, {})
        row = next(line for line in md.splitlines() if line.startswith('| tight C'))
        self.assertIn('FAILED', row)
        self.assertIn('mismatch 7', row)
        self.assertNotIn('900,000', md)
        # The summary line compares eco with the best *verified* peer.
        best = next(line for line in md.splitlines() if line.startswith('| 50x64'))
        self.assertIn('Node.js net', best)
        self.assertIn('3.33', best)  # 100,000 / 30,000

    def test_ratios_are_against_eco(self):
        runs = [load_run('eco-uring/t1', '50x64', 100_000, cpu=5.0), load_run('node/t1', '50x64', 25_000, cpu=20.0)]
        md = markdown(INFO, args(reps=1), self.servers, {}, self.sc, summarize(runs, self.servers, self.sc), {})
        row = next(line for line in md.splitlines() if line.startswith('| Node.js'))
        cells = [c.strip() for c in row.split('|')]
        self.assertEqual(cells[3], '0.25')  # ×eco rt/s
        self.assertEqual(cells[9], '4.00')  # ×eco CPU

    def test_skipped_servers_are_named_under_their_scenario(self):
        md = markdown(INFO, args(), self.servers, {'tokio': 'offline cargo build failed'}, self.sc, {},
                      {'50x64': ["tutorial's Python server (serves one client, then exits)"]})
        self.assertIn('Not run in this scenario: tutorial', md)
        self.assertIn('tokio (offline cargo build failed)', md)

    def test_results_replace_only_the_marked_section(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / 'peers.md'
            p.write_text(f'# Title\n\nhand-written method\n\n{RESULTS_BEGIN}\nold numbers\n{RESULTS_END}\n\ntail\n')
            write_markdown(p, 'new numbers')
            text = p.read_text()
            self.assertIn('hand-written method', text)
            self.assertIn('new numbers', text)
            self.assertNotIn('old numbers', text)
            self.assertTrue(text.rstrip().endswith('tail'))
            write_markdown(p, 'newer')
            self.assertEqual(p.read_text().count(RESULTS_BEGIN), 1)


class RatioTableTest(unittest.TestCase):
    def setUp(self):
        self.eco = Server('eco-uring', 'eco (uring)', None)
        self.c = Server('tight-c', 'tight C', None)
        self.sc = [s for s in SCENARIOS if s['id'] in ('50x64', 'rate')]

    def table(self, runs):
        servers = [self.eco, self.c]
        return ratio_table(INFO, args(reps=1), servers, self.sc, summarize(runs, servers, self.sc))

    def test_cells_are_ratios_to_eco_and_targets_follow_the_numbers(self):
        md = self.table([load_run('eco-uring/t1', '50x64', 100_000, cpu=8.0),
                         load_run('tight-c/t1', '50x64', 110_000, cpu=9.0),
                         load_run('eco-uring/t1', 'rate', 10_000, p99=400.0),
                         load_run('tight-c/t1', 'rate', 10_000, p99=300.0)])
        row = next(line for line in md.splitlines() if line.startswith('| tight C'))
        self.assertIn('1.10 · 1.12', row)   # rt/s ratio · CPU ratio (9/8)
        self.assertIn('0.75', row)          # open-loop p99 ratio
        self.assertIn('**not met**: server CPU per round trip at 50x64', md)  # 8/9 = 0.89 > 0.8
        self.assertIn('**not met**: round trips/s', md)
        self.assertIn('50x64 (eco (uring) 0.91× tight C', md)
        self.assertIn('**not met**: open-loop p99', md)

    def test_targets_met_when_eco_leads(self):
        md = self.table([load_run('eco-uring/t1', '50x64', 120_000, cpu=7.0),
                         load_run('tight-c/t1', '50x64', 110_000, cpu=10.0),
                         load_run('eco-uring/t1', 'rate', 10_000, p99=200.0),
                         load_run('tight-c/t1', 'rate', 10_000, p99=300.0)])
        self.assertNotIn('not met', md)
        self.assertIn('met: server CPU per round trip at 50x64', md)

    def test_write_between_keeps_the_hand_written_text(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / 'b.md'
            p.write_text(f'# B\n\nintro\n\n{SUMMARY_BEGIN}\nold\n{SUMMARY_END}\n\nrest\n')
            write_between(p, SUMMARY_BEGIN, SUMMARY_END, 'new')
            text = p.read_text()
            self.assertIn('intro', text)
            self.assertIn('new', text)
            self.assertNotIn('old', text)
            self.assertTrue(text.rstrip().endswith('rest'))


@unittest.skipUnless('--e2e' in sys.argv or os.environ.get('ECO_PEERS_E2E'), 'end-to-end run: pass --e2e')
class QuickRunTest(unittest.TestCase):
    def test_quick_run_produces_complete_output(self):
        eco = os.environ.get('ECO', str(HERE.parent / 'build' / 'release' / 'eco'))
        peers = os.environ.get('PEERS', str(HERE.parent / 'build' / 'peers'))
        with tempfile.TemporaryDirectory() as tmp:
            md, js, png = Path(tmp) / 'p.md', Path(tmp) / 'p.json', Path(tmp) / 'p.png'
            summ = Path(tmp) / 'summary.md'
            only = os.environ.get('ECO_PEERS_ONLY')  # ctest: only the peers the base install can run
            r = subprocess.run([sys.executable, str(HERE / 'run_peers.py'), '--eco', eco, '--peers-dir', peers,
                                '--quick', '--out-md', str(md), '--out-json', str(js), '--out-png', str(png),
                                '--out-summary', str(summ)] + (['--only', only] if only else []),
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            data = json.loads(js.read_text())
            text = md.read_text()
            self.assertIn('SMOKE RUN', text)
            servers = {run['server'] for run in data['runs']}
            self.assertTrue(any(s.startswith('eco-') for s in servers), servers)
            self.assertGreaterEqual(len(servers), 2, 'no peer ran at all')
            for sc in ('1x64', '50x64', 'udp64', 'idle'):
                section = text.split('### ')[[i for i, s in enumerate(text.split('### ')) if s.startswith(
                    next(x['title'] for x in SCENARIOS if x['id'] == sc))][0]]
                ran = {run['server'] for run in data['runs'] if run['scenario'] == sc}
                skipped = data['skipped'].get(sc, [])
                # Every server either has a row here or is named as not run.
                self.assertEqual(len(ran) + len(skipped), len(servers), (sc, ran, skipped))
                rows = [line for line in section.splitlines() if line.startswith('| ') and
                        not line.startswith('| server')]
                self.assertEqual(len(rows), len(ran), (sc, rows))
            self.assertTrue(png.exists() or 'no chart' in r.stderr)
            # The ratio table: one row per server that ran, and a verdict for every target.
            summary = summ.read_text()
            self.assertIn(SUMMARY_BEGIN, summary)
            table_rows = [line for line in summary.splitlines() if line.startswith('| ')
                          and not line.startswith('| server')]
            self.assertEqual(len(table_rows), len(servers), summary)
            self.assertIn('round trips/s ≥ the best peer', summary)
            self.assertIn('memory per idle connection', summary)


if __name__ == '__main__':
    argv = [a for a in sys.argv if a != '--e2e']
    unittest.main(argv=argv)
