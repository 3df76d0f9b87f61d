"""Reads koji_exporter's default rules (queries/*.yaml) for the benchmark, and finds the
rule and the kind of statement that a query text recorded by pg_stat_statements belongs
to. Knows the rule files and the statement shapes of incremental rules; not PostgreSQL or
the report."""

import dataclasses
import glob
import os
import re

import yaml

# The first line of the task rule as it read before it became incremental
# (bench/sql/old_tasks_rule.sql), which the benchmark runs as the cheapest full count.
OLD_TASKS_MARKER = "-- The task rule before it became incremental"
OLD_TASKS_RULE = "tasks (old, no tag)"

_UNITS = {"s": 1, "m": 60, "h": 3600}


@dataclasses.dataclass
class Rule:
    name: str
    file: str
    interval_seconds: int
    timeout_seconds: int
    sql: str
    incremental: bool
    key: str
    open: str
    labels: list
    values: list
    metrics: list

    @property
    def marker(self):
        """The first line of the rule's SQL, which every statement of the rule contains."""
        return next(line.strip() for line in self.sql.splitlines() if line.strip())


def _seconds(text):
    match = re.fullmatch(r"(\d+)([smh])", str(text))
    if not match:
        raise ValueError(f"invalid interval {text!r}: expected a number and s, m or h")
    return int(match.group(1)) * _UNITS[match.group(2)]


def load_rules(root):
    """Returns the rules of root/queries/*.yaml in file order, with the interval (60s)
    and timeout (10s) that the exporter's defaults give a rule without them."""
    rules = []
    for path in sorted(glob.glob(os.path.join(root, "queries", "*.yaml"))):
        with open(path, encoding="utf-8") as stream:
            document = yaml.safe_load(stream)
        for entry in document.get("rules", []):
            metrics = entry["metrics"]
            values = []
            for metric in metrics:
                if metric["value"] not in values:
                    values.append(metric["value"])
            incremental = entry.get("incremental") or {}
            rules.append(Rule(
                name=entry["name"],
                file=os.path.relpath(path, root),
                interval_seconds=_seconds(entry.get("interval", "60s")),
                timeout_seconds=_seconds(entry.get("timeout", "10s")),
                sql=entry["sql"].rstrip().rstrip(";"),
                incremental=bool(incremental),
                key=incremental.get("key", ""),
                open=incremental.get("open", ""),
                labels=list(metrics[0].get("labels", [])),
                values=values,
                metrics=metrics))
    markers = [rule.marker for rule in rules]
    if len(set(markers)) != len(markers):
        raise ValueError("two rules start with the same line, so their statements cannot be "
                         "told apart: start each rule's SQL with a distinct comment")
    return rules


def full_count_sql(rule):
    """Returns the plain SQL that computes the rule's metrics in one statement: the rule's
    own SQL, or for an incremental rule a GROUP BY over its rows, which reads the whole
    table on every run."""
    if not rule.incremental:
        return rule.sql
    labels = ", ".join(f"r.{label}" for label in rule.labels)
    sums = ", ".join(f"sum(r.{value}) AS {value}" for value in rule.values)
    return f"SELECT {labels}, {sums}\nFROM (\n{rule.sql}\n) AS r\nGROUP BY {labels}"


def statement_kind(query, rule):
    """Names the statement shape: one of the statements of an incremental rule, "full
    count" for full_count_sql() of an incremental rule, or "query" for a plain rule."""
    if not rule.incremental:
        return "query"
    # Both the exporter and full_count_sql() put the rule's SQL in "(\n...\n) AS r".
    match = re.search(r"\n\) AS r(\s|$)", query)
    if not match:
        return "query"
    select = query[:match.start()].split("FROM (", 1)[0]
    tail = query[match.end():]
    if "DESC OFFSET" in tail:
        return "newest key"
    if "= ANY" in tail:
        if any(f'r."{label}"' in select for label in rule.labels):
            return "new rows"
        return "open rows"
    if "IS NOT TRUE" in tail:
        return "sums at start"
    if "IS TRUE" in tail:
        return "open rows at start"
    if ">" in tail:
        return "new keys"
    return "full count"


def classify(query, rules):
    """Returns (rule name, statement kind) for a query text, or (None, "session") for the
    statements around the rules: BEGIN, SET, ROLLBACK and a client's own queries."""
    for rule in rules:
        if rule.marker in query:
            return rule.name, statement_kind(query, rule)
    if OLD_TASKS_MARKER in query:
        return OLD_TASKS_RULE, "query"
    return None, "session"
