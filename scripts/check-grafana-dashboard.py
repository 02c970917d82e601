#!/usr/bin/env python3
"""Checks a Grafana dashboard against the metrics the tracker really exports.

    check-grafana-dashboard.py DASHBOARD.json METRICS

METRICS is the text of a running tracker's /metrics (a file, or an http:// URL to fetch).
Checks, for every query of every panel (rows included) and of the template variables:
- it names at least one metric, and every metric it names is a sample name in METRICS;
- every label it matches on (`{label=...}`), groups by (`by (...)`, `without (...)`) or shows in
  its legend (`{{label}}`) is a label of one of its metrics in METRICS (or `instance`/`job`,
  which Prometheus adds when it scrapes);
and of the dashboard: valid JSON with a title, a uid and panels; unique panel ids; each panel
has a type, a title and a grid position, and each query panel a Prometheus data source; every
metric family in REQUIRED (requests, failures, refusals, swarm sizes, loop stall, memory)
is shown somewhere.

Python standard library only. Exit status 0 when the dashboard passes, 1 with the problems
listed otherwise.
"""

import json
import re
import sys
import urllib.request

# What the dashboard is for (the list): each must be queried by some panel.
REQUIRED = [
    "opentracker_requests_total",  # requests by protocol and family
    "opentracker_requests_failed_total",  # failures
    "opentracker_refused_total",  # refusals
    "opentracker_torrents",  # swarm sizes
    "opentracker_seeders",
    "opentracker_leechers",
    "opentracker_loop_longest_stall_seconds",  # loop stall
    "process_resident_memory_bytes",  # memory
]

# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"instance", "job"}

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan", "atan2",
}


def exported(text):
    """{metric name: set of label names} from the Prometheus text format."""
    metrics = {}
    sample = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+\S+")
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = sample.match(line)
        if not m:
            raise SystemExit(f"check-grafana-dashboard: not a sample line in METRICS: {line!r}")
        labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*=", m.group(3) or ""))
        metrics.setdefault(m.group(1), set()).update(labels)
    return metrics


def parse_query(expr):
    """(metric names, {metric: matcher label names}, grouping label names) of a PromQL query,
    Grafana variables included. Enough of PromQL for dashboards: selectors, ranges, functions,
    aggregations with by/without, binary operators with on/ignoring/group_*."""
    # Grafana variables: $__rate_interval, ${var}, $var, [[var]].
    text = re.sub(r"\$\{[^}]*\}|\$[a-zA-Z_][a-zA-Z0-9_]*|\[\[[^\]]*\]\]", "VAR", expr)
    matchers = {}
    for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}", text):
        names = re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", re.sub(r'"(?:[^"\\]|\\.)*"', '""', m.group(2)))
        matchers.setdefault(m.group(1), set()).update(names)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', " ", text)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    grouping = set()
    clause = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
    for m in clause.finditer(text):
        grouping.update(x.strip() for x in m.group(2).split(",") if x.strip())
    text = clause.sub(" ", text)
    names = []
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS or word == "VAR":
            continue
        names.append(word)
    return names, matchers, grouping


def panels_of(dashboard):
    """Every panel, rows' children included."""
    out = []
    for p in dashboard.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1]) as f:
        try:
            dash = json.load(f)
        except json.JSONDecodeError as e:
            raise SystemExit(f"check-grafana-dashboard: {sys.argv[1]}: not JSON: {e}")
    source = sys.argv[2]
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=10) as r:
            text = r.read().decode()
    else:
        with open(source) as f:
            text = f.read()
    metrics = exported(text)
    if not metrics:
        raise SystemExit("check-grafana-dashboard: METRICS holds no sample")

    problems = []
    for key in ("title", "uid", "panels", "schemaVersion"):
        if key not in dash:
            problems.append(f"dashboard: no {key!r}")
    queries = []  # (where, expr, legend)
    ids = set()
    for p in panels_of(dash):
        where = f"panel {p.get('id')} {p.get('title')!r}"
        for key in ("type", "title", "gridPos", "id"):
            if key not in p:
                problems.append(f"{where}: no {key!r}")
        if p.get("id") in ids:
            problems.append(f"{where}: duplicate id")
        ids.add(p.get("id"))
        grid = p.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in "xywh") or grid.get("x", 0) + grid.get("w", 0) > 24:
            problems.append(f"{where}: bad gridPos {grid}")
        if p.get("type") == "row":
            continue
        targets = p.get("targets") or []
        if not targets:
            problems.append(f"{where}: no query")
        ds = p.get("datasource") or {}
        if ds.get("type") != "prometheus":
            problems.append(f"{where}: data source {ds} is not Prometheus")
        for t in targets:
            if not t.get("expr"):
                problems.append(f"{where}: target {t.get('refId')} has no expr")
                continue
            queries.append((f"{where} target {t.get('refId')}", t["expr"], t.get("legendFormat", "")))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if v.get("type") == "query":
            q = q.get("query") if isinstance(q, dict) else q
            m = re.match(r"\s*label_values\(\s*(.*?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$", q or "")
            if not m:
                problems.append(f"variable {v.get('name')}: query {q!r} is not label_values(...)")
                continue
            queries.append((f"variable {v.get('name')}", m.group(1), "{{" + m.group(2) + "}}"))

    used = set()
    for where, expr, legend in queries:
        names, matchers, grouping = parse_query(expr)
        if not names:
            problems.append(f"{where}: {expr!r} names no metric")
        labels = set(TARGET_LABELS)
        for name in names:
            used.add(name)
            if name not in metrics:
                problems.append(f"{where}: {name} is not exported (query {expr!r})")
            else:
                labels |= metrics[name]
        for name, names_matched in matchers.items():
            for label in names_matched - metrics.get(name, set()) - TARGET_LABELS:
                problems.append(f"{where}: {name} has no label {label!r}")
        for label in grouping - labels:
            problems.append(f"{where}: groups by {label!r}, which none of {names} has")
        for label in set(re.findall(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", legend)) - labels:
            problems.append(f"{where}: legend shows {label!r}, which none of {names} has")
    for name in REQUIRED:
        if name not in used:
            problems.append(f"no panel shows {name}")

    if problems:
        print(f"check-grafana-dashboard: {sys.argv[1]}: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        print(f"  (exported: {', '.join(sorted(metrics))})", file=sys.stderr)
        raise SystemExit(1)
    print(f"check-grafana-dashboard: {sys.argv[1]}: ok ({len(queries)} queries over "
          f"{len(used)} metrics, all exported by the tracker)")


if __name__ == "__main__":
    main()
