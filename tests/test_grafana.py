"""The Grafana dashboard and the Prometheus recording rules: valid, every query valid PromQL
(checked by a real Prometheus), and every metric they name one the exporter emits (read from
a running exporter with every collector)."""
import json
import os
import re
import shutil
import subprocess

import pytest

from promkit import Exporter, PrometheusServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "bpfsight.json")
RULES = os.path.join(ROOT, "deploy", "prometheus", "bpfsight-rules.yml")
METRIC = re.compile(r"\b((?:bpfsight|process)_[a-z0-9_]+)\b")
HISTOGRAM_PARTS = ("_bucket", "_sum", "_count")
# Grafana's own variables, as Grafana substitutes them before querying
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "15s", "$instance": ".*",
                "$disk": ".*", "$job": ".*"}


def dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def panels(dash):
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])  # collapsed rows hold their panels


def queries(dash):
    """Every PromQL expression: panel targets and query variables."""
    found = [t["expr"] for p in panels(dash) for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            found.append(var["query"]["query"] if isinstance(var["query"], dict)
                         else var["query"])
    return found


def rule_exprs():
    import yaml
    with open(RULES) as f:
        rules = yaml.safe_load(f)
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def grafana_to_promql(expr):
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", expr)
    return m.group(1) if m else expr  # label_values(Q, L) is Grafana's: Q is the PromQL


def family(metric):
    for part in HISTOGRAM_PARTS:
        if metric.endswith(part):
            return metric[:-len(part)]
    return metric


def test_dashboard_shape():
    dash = dashboard()
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 30
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids))
    graphs = [p for p in panels(dash) if p["type"] != "row"]
    for p in graphs:
        assert p["targets"] and all(t["expr"].strip() for t in p["targets"]), p["title"]
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert {"x", "y", "w", "h"} <= set(p["gridPos"])
    exprs = {p["type"]: [] for p in graphs}
    for p in graphs:
        exprs[p["type"]] += [t["expr"] for t in p["targets"]]
    # what the issue asks for: disk latency heat map, run-queue latency, retransmits, top
    # processes by off-CPU cause
    assert any("bpfsight_block_io_latency_seconds_bucket" in e for e in exprs["heatmap"])
    assert any("bpfsight_runqueue_latency_seconds" in e for p in graphs
               for e in [t["expr"] for t in p["targets"]])
    assert any("bpfsight_tcp_retransmits_total" in e for p in graphs
               for e in [t["expr"] for t in p["targets"]])
    assert any("topk" in e and "bpfsight_offcpu_seconds_total" in e and "cause" in e
               for p in graphs for e in [t["expr"] for t in p["targets"]])
    for p in graphs:
        if p["type"] == "heatmap":
            assert all(t.get("format") == "heatmap" for t in p["targets"]), p["title"]


def test_rules_pass_promtool():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("needs Debian's prometheus package (promtool)")
    res = subprocess.run([promtool, "check", "rules", RULES], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.bpf
def test_every_query_is_valid_and_names_an_emitted_metric(tmp_path):
    exprs = queries(dashboard()) + rule_exprs()
    named = {family(m) for e in exprs for m in METRIC.findall(e)}
    with Exporter() as exporter:  # every collector
        status, _, body = exporter.get()
        with PrometheusServer(tmp_path, [exporter.address]) as prom:
            for expr in exprs:
                prom.query(grafana_to_promql(expr))  # asserts Prometheus accepts it
    assert status == 200
    emitted = set(re.findall(r"^# TYPE (\S+) ", body.decode(), re.M))
    # a counter's TYPE line names it without _total (the OpenMetrics family name)
    emitted |= {f"{m}_total" for m in emitted}
    missing = sorted(named - emitted)
    assert not missing, missing
    assert len(named) >= 12
