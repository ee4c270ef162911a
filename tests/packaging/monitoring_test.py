#!/usr/bin/env python3
"""The Grafana dashboard (deploy/grafana/) and the Prometheus alert rules
(deploy/prometheus/) against a running eco serve: both files parse, every metric and label
their queries use is one eco exports (scraped from /metrics) or one Prometheus adds to
every target, the dashboard shows every eco_* metric, and promtool accepts the rules, the
dashboard's queries and the exposition, and passes the alerts' unit tests."""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import yaml

ARGS = None


def read(path):
    with open(path) as f:
        return f.read()

# Series and labels Prometheus itself attaches to every scrape target.
PROMETHEUS_SERIES = {"up"}
TARGET_LABELS = {"job", "instance"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
                "and", "or", "unless", "inf", "nan"}


def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def metric_names(expr):
    """Metric names in a PromQL expression: identifiers that are neither functions,
    keywords, label names (inside {...} or by/without/on (...)) nor durations."""
    e = strip_strings(expr)
    e = re.sub(r"\{[^}]*\}", " ", e)                                  # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)                                 # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\boffset\s+\w+", " ", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or word.lower() in PROMQL_WORDS:
            continue                                                  # a function or keyword
        names.add(word)
    return names


def label_names(expr):
    e = strip_strings(expr)
    labels = set()
    for block in re.findall(r"\{([^}]*)\}", e):
        labels |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", block))
    for block in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", e):
        labels |= {w.strip() for w in block.split(",") if w.strip()}
    return labels


def dashboard_exprs(dash):
    exprs = []
    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                exprs.append((p["title"], t["expr"]))
            walk(p.get("panels", []))
    walk(dash["panels"])
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            # label_values(METRIC, LABEL): the metric is a selector, the label one of its labels.
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q)
            assert m, f"templating query {q!r} is not label_values(metric, label)"
            exprs.append((f"variable {var['name']}", f"{m.group(1)}{{{m.group(2)}=~\".+\"}}"))
    return exprs


def for_promtool(expr):
    """A dashboard query as plain PromQL: Grafana's variables given values."""
    return expr.replace("$__rate_interval", "5m").replace("$instance", ".*")


class Monitoring(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        root = ARGS.root
        with open(os.path.join(root, "deploy/grafana/eco-dashboard.json")) as f:
            cls.dashboard = json.load(f)
        with open(os.path.join(root, "deploy/prometheus/eco-alerts.yml")) as f:
            cls.rules = yaml.safe_load(f)
        cls.rule_exprs = [(r["alert"], r["expr"]) for g in cls.rules["groups"] for r in g["rules"]]
        cls.dash_exprs = dashboard_exprs(cls.dashboard)
        cls.scrape_text, cls.exported, cls.exported_labels = cls.scrape_running_server()

    @classmethod
    def scrape_running_server(cls):
        with tempfile.TemporaryDirectory() as tmp:
            port_file = os.path.join(tmp, "port")
            log = open(os.path.join(tmp, "log"), "w+")
            srv = subprocess.Popen([ARGS.eco, "serve", "--listen", "127.0.0.1:0", "--udp", "--threads", "1",
                                    "--metrics", "127.0.0.1:0", "--port-file", port_file],
                                   stderr=log, stdout=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + 20
                metrics_port = None
                while time.monotonic() < deadline and not (metrics_port and os.path.exists(port_file)):
                    assert srv.poll() is None, f"eco serve exited: {read(log.name)}"
                    m = re.search(r"Metrics on http://127\.0\.0\.1:(\d+)/metrics", read(log.name))
                    metrics_port = m and int(m.group(1))
                    time.sleep(0.05)
                assert metrics_port and os.path.exists(port_file), f"eco serve did not start: {read(log.name)}"
                port = int(read(port_file))
                # Some traffic, so the counters have moved when they are read.
                with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                    c.sendall(b"dashboard")
                    assert c.recv(100) == b"dashboard"
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                u.settimeout(5)
                u.sendto(b"datagram", ("127.0.0.1", port))
                assert u.recvfrom(100)[0] == b"datagram"
                u.close()
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
                    text = r.read().decode()
            finally:
                srv.send_signal(signal.SIGTERM)
                srv.wait(timeout=20)
                log.close()
        names, labels = set(), set()
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{([^}]*)\})?\s", line)
            assert m, f"unparsable exposition line: {line!r}"
            names.add(m.group(1))
            if m.group(3):
                labels |= set(re.findall(r"(\w+)=", m.group(3)))
        return text, names, labels

    def test_scrape_has_eco_metrics(self):
        self.assertIn("eco_connections_active", self.exported)
        self.assertIn("eco_build_info", self.exported)

    def test_every_metric_used_is_exported(self):
        known = self.exported | PROMETHEUS_SERIES
        for where, exprs in (("dashboard", self.dash_exprs), ("alert rules", self.rule_exprs)):
            for title, expr in exprs:
                used = metric_names(expr)
                self.assertTrue(used, f"{where}: {title}: no metric found in {expr!r}")
                unknown = used - known
                self.assertFalse(unknown, f"{where}: {title}: {sorted(unknown)} not exported by eco ({expr})")

    def test_every_label_used_is_exported(self):
        known = self.exported_labels | TARGET_LABELS
        for where, exprs in (("dashboard", self.dash_exprs), ("alert rules", self.rule_exprs)):
            for title, expr in exprs:
                unknown = label_names(expr) - known
                self.assertFalse(unknown, f"{where}: {title}: labels {sorted(unknown)} are not on eco's metrics")

    def test_dashboard_shows_every_eco_metric(self):
        shown = set().union(*(metric_names(e) for _, e in self.dash_exprs))
        missing = {n for n in self.exported if n.startswith("eco_")} - shown
        self.assertFalse(missing, f"eco exports {sorted(missing)} but no panel of deploy/grafana/eco-dashboard.json shows it")

    def test_dashboard_structure(self):
        d = self.dashboard
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids repeat")
        variables = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        for p in d["panels"]:
            for k in ("x", "y", "w", "h"):
                self.assertIn(k, p["gridPos"], p["title"])
            self.assertLessEqual(p["gridPos"]["x"] + p["gridPos"]["w"], 24, p["title"])
            if p["type"] != "row":
                self.assertEqual(p["datasource"]["uid"], "${datasource}", p["title"])
                self.assertTrue(p["targets"], p["title"])

    def test_alerts_cover_the_operator_states(self):
        alerts = {a for a, _ in self.rule_exprs}
        by_metric = {a: metric_names(e) for a, e in self.rule_exprs}
        self.assertTrue(any("eco_accept_paused_total" in m for m in by_metric.values()), "no alert on accept pauses")
        self.assertTrue(any("eco_connections_rejected_total" in m for m in by_metric.values()), "no alert on refusals")
        self.assertTrue(any("up" in m for m in by_metric.values()), "no alert for a server that is down")
        for g in self.rules["groups"]:
            for r in g["rules"]:
                self.assertIn("severity", r["labels"], r["alert"])
                self.assertIn("summary", r["annotations"], r["alert"])
        self.assertEqual(len(alerts), len(self.rule_exprs), "alert names repeat")

    def promtool(self, *args, stdin=None):
        p = subprocess.run([ARGS.promtool, *args], input=stdin, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, f"promtool {' '.join(args)}:\n{p.stdout}{p.stderr}")

    def test_promtool_checks_the_alert_rules(self):
        self.promtool("check", "rules", os.path.join(ARGS.root, "deploy/prometheus/eco-alerts.yml"))

    def test_promtool_unit_tests_of_the_alerts(self):
        self.promtool("test", "rules", os.path.join(ARGS.root, "tests/packaging/alerts_test.yml"))

    def test_promtool_parses_every_dashboard_query(self):
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:query{i}", "expr": for_promtool(e)} for i, (_, e) in enumerate(self.dash_exprs)]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
            yaml.safe_dump(rules, f)
            f.flush()
            self.promtool("check", "rules", f.name)

    def test_promtool_lints_the_exposition(self):
        self.promtool("check", "metrics", stdin=self.scrape_text)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--eco", required=True)
    ap.add_argument("--promtool", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0], "-v", *rest])
