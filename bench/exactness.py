#!/usr/bin/env python3
"""Compares koji_exporter's task metrics with a full count of the task table.

Usage: exactness.py ROOT METRICS_FILE COUNTS_CSV OUT_JSON

METRICS_FILE is a /metrics response, COUNTS_CSV the output of task_counts.sql (written by
configs.py) taken after the exporter's last run. Every series of the task rule's metrics
must equal the full count, and every label set of the count must have its series. Writes
the outcome to OUT_JSON and exits 1 when any value differs.
"""

import csv
import json
import re
import sys

import rules as rule_files

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def unescape(value):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def read_exposition(path, names):
    """Returns {(metric, labels tuple sorted by name): value} for the given metric names."""
    samples = {}
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            match = _SAMPLE.match(line.strip())
            if not match or match.group(1) not in names:
                continue
            labels = {k: unescape(v) for k, v in _LABEL.findall(match.group(2) or "")}
            samples[(match.group(1), tuple(sorted(labels.items())))] = float(match.group(3))
    return samples


def read_counts(path, rule):
    """Returns the full count in the same form as read_exposition()."""
    expected = {}
    with open(path, encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            # A NULL or empty label is no label for Prometheus; the exporter writes it as "".
            labels = tuple(sorted((label, row[label] or "") for label in rule.labels))
            for metric in rule.metrics:
                expected[(metric["name"], labels)] = float(row[metric["value"]] or 0)
    return expected


def compare(actual, expected):
    def normal(labels):
        return tuple((k, v) for k, v in labels if v != "")
    actual = {(name, normal(labels)): value for (name, labels), value in actual.items()}
    expected = {(name, normal(labels)): value for (name, labels), value in expected.items()}
    differences = []
    for key in sorted(set(actual) | set(expected)):
        if actual.get(key) != expected.get(key):
            differences.append({"metric": key[0], "labels": dict(key[1]),
                                "exporter": actual.get(key), "full_count": expected.get(key)})
    return differences


def main(argv):
    if len(argv) != 5:
        sys.exit("usage: " + __doc__.rsplit("Usage: ", 1)[1].split("\n", 1)[0])
    root, metrics_path, counts_path, out_path = argv[1:]
    rule = next(r for r in rule_files.load_rules(root) if r.name == "tasks")
    names = {metric["name"] for metric in rule.metrics}
    actual = read_exposition(metrics_path, names)
    expected = read_counts(counts_path, rule)
    differences = compare(actual, expected)
    outcome = {
        "series_compared": len(expected),
        "series_exported": len(actual),
        "tasks_counted": sum(v for (name, _), v in expected.items() if name == "koji_tasks_total"),
        "differences": len(differences),
        "first_differences": differences[:10],
        "exact": not differences,
    }
    with open(out_path, "w", encoding="utf-8") as stream:
        json.dump(outcome, stream, indent=2)
    print(f"exactness: {len(expected)} series compared, {len(differences)} differ")
    sys.exit(0 if not differences else 1)


if __name__ == "__main__":
    main(sys.argv)
