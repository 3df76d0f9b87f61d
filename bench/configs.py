#!/usr/bin/env python3
"""Writes the configuration of every client that bench/run.sh starts, all from the default
rules in queries/*.yaml, so that each client computes the same metrics:

  koji_exporter.yaml      koji_exporter with the default rules
  sql_exporter.yml        Debian's prometheus-sql-exporter: each rule's plain SQL on the
                          rule's interval, the task rule as one full count
  postgres_exporter.yml   Debian's prometheus-postgres-exporter: the same queries, cached
                          for the rule's interval
  floor.sql               the bare statements of one run of every rule, for psql
  full_counts.sql         the task metrics by full count, for psql
  task_counts.sql         the task metrics by full count as CSV, for bench/exactness.py

Usage: configs.py ROOT OUT_DIR PG_PORT EXPORTER_PORT
"""

import os
import sys

import yaml

import rules as rule_files


def exporter_config(root, pg_port, port):
    return {
        "database": {
            "dsn": f"host=127.0.0.1 port={pg_port} dbname=koji user=bench_koji_exporter "
                   "sslmode=disable",
        },
        "web": {"listen_address": f"127.0.0.1:{port}"},
        "rule_files": [os.path.join(root, "queries", "*.yaml")],
    }


# Labels that prometheus-sql-exporter adds to every metric itself; a rule's label of the
# same name is renamed with a koji_ prefix.
SQL_EXPORTER_LABELS = {"driver", "host", "database", "user", "col"}


def sql_exporter_query(rule):
    """Returns the labels and the rule's full-count SQL as prometheus-sql-exporter needs
    them. Clashing labels are renamed, and values become float8, the only type it accepts
    (a boolean becomes 0 or 1). PostgreSQL's planner flattens the wrapping subquery, so it
    adds only the conversion of the result rows."""
    labels = [f"koji_{label}" if label in SQL_EXPORTER_LABELS else label for label in rule.labels]
    columns = [f"r.{old} AS {new}" for old, new in zip(rule.labels, labels)]
    columns += [f"CASE r.{value}::text WHEN 'true' THEN 1 WHEN 'false' THEN 0 "
                f"ELSE r.{value}::text::float8 END AS {value}" for value in rule.values]
    sql = rule_files.full_count_sql(rule)
    return labels, f"SELECT {', '.join(columns)}\nFROM (\n{sql}\n) AS r"


def sql_exporter_config(rules, pg_port):
    connection = (f"postgres://bench_sql_exporter@127.0.0.1:{pg_port}/koji"
                  "?sslmode=disable&application_name=sql_exporter")
    jobs = {}
    for rule in rules:
        job = jobs.setdefault(rule.interval_seconds, {
            "name": f"koji_every_{rule.interval_seconds}s",
            "interval": f"{rule.interval_seconds}s",
            "connections": [connection],
            "queries": [],
        })
        labels, query = sql_exporter_query(rule)
        job["queries"].append({
            "name": rule.name,
            "help": f"Metrics of koji_exporter's rule {rule.name}, by full count.",
            "labels": labels,
            "values": rule.values,
            "query": query + "\n",
        })
    return {"jobs": [jobs[interval] for interval in sorted(jobs)]}


def postgres_exporter_config(rules):
    queries = {}
    for rule in rules:
        metrics = [{label: {"usage": "LABEL", "description": label}} for label in rule.labels]
        metrics += [{value: {"usage": "GAUGE", "description": value}} for value in rule.values]
        queries[f"koji_{rule.name}"] = {
            "query": rule_files.full_count_sql(rule) + "\n",
            "cache_seconds": rule.interval_seconds,
            "metrics": metrics,
        }
    return queries


def quoted(name):
    return '"' + name.replace('"', '""') + '"'


def psql_statement(sql):
    """Returns the statement as psql should send it. psql 15 drops the comments in front of
    a statement but keeps those inside it. bench/rules.py recognizes a rule by its first
    line, often a comment, so such a statement goes into a subquery, which PostgreSQL's
    planner flattens."""
    if sql.lstrip().startswith("--"):
        return f"SELECT * FROM (\n{sql}\n) AS statement;"
    return sql + ";"


def floor_sql(rules):
    """Returns a psql script of one run of every rule as bare statements. For an
    incremental rule these are the statements of a run after the start, worded as the
    exporter words them, with psql variables for the keys: :low_key, :key_limit, :new_keys
    and :open_keys."""
    parts = ["\\set ON_ERROR_STOP on", "\\o /dev/null"]
    for rule in rules:
        if not rule.incremental:
            parts.append(psql_statement(rule.sql))
            continue
        source = f"(\n{rule.sql}\n) AS r"
        key = f"r.{quoted(rule.key)}"
        open_column = f"r.{quoted(rule.open)}"
        labels = ", ".join(f"r.{quoted(label)}" for label in rule.labels)
        values = ", ".join(f"r.{quoted(value)}" for value in rule.values)
        parts.append(f"SELECT {key} FROM {source} WHERE {key} > :low_key::bigint "
                     f"ORDER BY {key} LIMIT :key_limit;")
        parts.append(f"SELECT {key}, {open_column}, {labels}, {values} FROM {source} "
                     f"WHERE {key} = ANY (:'new_keys'::bigint[]);")
        parts.append(f"SELECT {key}, {open_column}, {values} FROM {source} "
                     f"WHERE {key} = ANY (:'open_keys'::bigint[]);")
    parts.append("\\o")
    return "\n".join(parts) + "\n"


def task_rule(rules):
    return next(rule for rule in rules if rule.name == "tasks")


def full_counts_sql(root, rules):
    with open(os.path.join(root, "bench", "sql", "old_tasks_rule.sql"), encoding="utf-8") as old:
        old_rule = old.read().strip().rstrip(";")
    return ("\\set ON_ERROR_STOP on\n\\o /dev/null\n"
            f"{psql_statement(rule_files.full_count_sql(task_rule(rules)))}\n"
            f"{psql_statement(old_rule)}\n\\o\n")


def task_counts_sql(rules):
    query = rule_files.full_count_sql(task_rule(rules))
    return f"COPY (\n{query}\n) TO STDOUT WITH (FORMAT csv, HEADER);\n"


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings, the SQL, as literal blocks that read like the rule files."""


_Dumper.add_representer(
    str, lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def dump(data):
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=100)


def write(path, text):
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(text)


def main(argv):
    if len(argv) != 5:
        sys.exit("usage: " + __doc__.rsplit("Usage: ", 1)[1].strip())
    root, out, pg_port, exporter_port = argv[1:]
    rules = rule_files.load_rules(root)
    write(os.path.join(out, "koji_exporter.yaml"),
          dump(exporter_config(root, pg_port, exporter_port)))
    write(os.path.join(out, "sql_exporter.yml"), dump(sql_exporter_config(rules, pg_port)))
    write(os.path.join(out, "postgres_exporter.yml"), dump(postgres_exporter_config(rules)))
    write(os.path.join(out, "floor.sql"), floor_sql(rules))
    write(os.path.join(out, "full_counts.sql"), full_counts_sql(root, rules))
    write(os.path.join(out, "task_counts.sql"), task_counts_sql(rules))


if __name__ == "__main__":
    main(sys.argv)
