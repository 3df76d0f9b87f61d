#!/usr/bin/env python3
"""Turns the raw measurements of bench/run.sh into SCALE.json and SCALE.md, and prints a
summary.

Usage: report.py ROOT RAW_DIR RESULTS_DIR

Database time is pg_stat_statements' planning plus execution time: the time a backend
spent on the statement, which leaves out the work of parallel workers, network transfer
and connection setup. A cycle is one run of every default rule.
"""

import json
import os
import re
import sys

import rules as rule_files
import stats

EXPORTER_ROLE = "bench_koji_exporter"
TOOLS = {
    "sql_exporter": ("bench_sql_exporter", "prometheus-sql-exporter"),
    "postgres_exporter": ("bench_postgres_exporter", "prometheus-postgres-exporter"),
}
START_KINDS = ("newest key", "sums at start", "open rows at start")


def read_facts(raw):
    facts = {}
    with open(os.path.join(raw, "facts.env"), encoding="utf-8") as stream:
        for line in stream:
            name, _, value = line.rstrip("\n").partition("=")
            facts[name] = value
    return facts


def read_counter(path, metric, extra_labels=""):
    """Returns {rule: value} of an exporter self-metric labelled by query (and by
    extra_labels, written as in the exposition, e.g. ',reason="timeout"')."""
    values = {}
    if not os.path.exists(path):
        return values
    pattern = re.compile(r'^' + metric + r'\{query="([^"]+)"' + re.escape(extra_labels)
                         + r'\} (\S+)$')
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            match = pattern.match(line.strip())
            if match:
                values[match.group(1)] = float(match.group(2))
    return values


def window(raw, rules, before, after, role):
    """Returns {(rule, kind): [calls, ms]} of one role between two snapshots."""
    result = stats.delta(stats.load(os.path.join(raw, f"stats_{before}.json")),
                         stats.load(os.path.join(raw, f"stats_{after}.json")), rules)
    return {(rule, kind): value for (r, rule, kind), value in result.items() if r == role}


def by_rule(entries):
    """Sums {(rule, kind): [calls, ms]} by rule; the statements around rules are left out."""
    result = {}
    for (rule, kind), (calls, ms) in entries.items():
        if rule is None:
            continue
        total = result.setdefault(rule, {"statements": 0, "ms": 0.0, "kinds": {}})
        total["statements"] += calls
        total["ms"] += ms
        total["kinds"][kind] = {"calls": calls, "ms": round(ms, 3)}
    return result


def session_ms(entries):
    return sum(ms for (rule, _), (_, ms) in entries.items() if rule is None)


def exporter_report(raw, rules):
    start = window(raw, rules, "exporter_before", "exporter_started", EXPORTER_ROLE)
    steady = window(raw, rules, "exporter_started", "exporter_steady", EXPORTER_ROLE)
    counters = {}
    for when in ("start", "steady"):
        path = os.path.join(raw, f"metrics_{when}.prom")
        counters[when] = {
            "runs": read_counter(path, "koji_exporter_query_runs_total"),
            "errors": read_counter(path, "koji_exporter_query_errors_total"),
            "timeouts": read_counter(path, "koji_exporter_query_failures_total",
                                     ',reason="timeout"'),
        }
    runs_start = counters["start"]["runs"]
    runs_steady = counters["steady"]["runs"]
    steady_rules = by_rule(steady)
    start_rules = by_rule(start)
    total_runs = sum(runs_steady.get(r.name, 0) - runs_start.get(r.name, 0) for r in rules)
    overhead = session_ms(steady) / total_runs if total_runs else 0.0

    def in_window(kind, name, source):
        after = counters[source][kind].get(name, 0)
        return after - counters["start"][kind].get(name, 0) if source == "steady" else after

    per_rule = []
    timed_out_ms = {"start": 0.0, "steady": 0.0}
    for rule in rules:
        source = "steady"
        measured = steady_rules.get(rule.name, {"ms": 0.0, "statements": 0, "kinds": {}})
        if in_window("runs", rule.name, "steady") <= 0:
            # The rule did not run in the steady window: use its first run.
            source = "start"
            measured = start_rules.get(rule.name, {"ms": 0.0, "statements": 0, "kinds": {}})
        runs = in_window("runs", rule.name, source)
        # pg_stat_statements records only statements that complete, so a statement
        # canceled at the rule's timeout is counted at its timeout.
        timeouts = in_window("timeouts", rule.name, source)
        ms = measured["ms"] + timeouts * rule.timeout_seconds * 1000
        timed_out_ms[source] += timeouts * rule.timeout_seconds * 1000
        per_run = ms / runs if runs else None
        per_rule.append({
            "rule": rule.name, "interval_seconds": rule.interval_seconds, "runs": runs,
            "window": source, "errors": in_window("errors", rule.name, source),
            "timeouts": timeouts, "timeout_seconds": rule.timeout_seconds,
            "ms_per_run": None if per_run is None else round(per_run + overhead, 3),
            "statements_per_run": round(measured["statements"] / runs, 2) if runs else None,
            "kinds": measured["kinds"],
        })
    seed_ms = sum(start_rules.get("tasks", {}).get("kinds", {}).get(k, {}).get("ms", 0.0)
                  for k in START_KINDS)
    start_timeouts = sum(counters["start"]["timeouts"].get(r.name, 0) * r.timeout_seconds * 1000
                         for r in rules)
    return {
        "start_ms": round(sum(v["ms"] for v in start_rules.values()) + session_ms(start)
                          + start_timeouts, 3),
        "start_seed_ms": round(seed_ms, 3),
        "session_ms_per_run": round(overhead, 4),
        "steady_ms": round(sum(v["ms"] for v in steady_rules.values()) + session_ms(steady)
                           + timed_out_ms["steady"], 3),
        "per_rule": per_rule,
    }


def tool_report(raw, rules, name, role):
    entries = window(raw, rules, f"{name}_before", f"{name}_after", role)
    measured = by_rule(entries)
    per_rule = []
    for rule in rules:
        value = measured.get(rule.name)
        calls = value["statements"] if value else 0
        per_rule.append({"rule": rule.name, "interval_seconds": rule.interval_seconds,
                         "runs": calls,
                         "ms_per_run": round(value["ms"] / calls, 3) if calls else None})
    return {"per_rule": per_rule, "session_ms": round(session_ms(entries), 3)}


def floor_report(raw, rules, repeats):
    entries = window(raw, rules, "floor_before", "floor_after", "bench_psql")
    per_rule = []
    full_counts = {}
    for rule in rules:
        ms = sum(v for (r, kind), (_, v) in entries.items() if r == rule.name and kind != "full count")
        per_rule.append({"rule": rule.name, "interval_seconds": rule.interval_seconds,
                         "ms_per_run": round(ms / repeats, 3)})
        full = entries.get((rule.name, "full count"))
        if full:
            full_counts[rule.name] = round(full[1] / full[0], 3)
    old = entries.get((rule_files.OLD_TASKS_RULE, "query"))
    if old:
        full_counts[rule_files.OLD_TASKS_RULE] = round(old[1] / old[0], 3)
    return {"per_rule": per_rule, "full_counts_ms": full_counts, "repeats": repeats}


def cycle(per_rule):
    """Returns (ms of one run of every rule, ms per hour at the rules' intervals, complete)."""
    known = [r for r in per_rule if r["ms_per_run"] is not None]
    per_cycle = sum(r["ms_per_run"] for r in known)
    per_hour = sum(r["ms_per_run"] * 3600 / r["interval_seconds"] for r in known)
    return round(per_cycle, 3), round(per_hour, 1), len(known) == len(per_rule)


def parse_duration_ms(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    number, unit = float(match.group(1)), match.group(2)
    return number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as stream:
        text = stream.read()
    result = {"requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    for percentile in ("50", "75", "90", "99"):
        match = re.search(rf"^\s+{percentile}%\s+(\S+)", text, re.M)
        if match:
            result[f"p{percentile}_ms"] = round(parse_duration_ms(match.group(1)), 3)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    result["non_2xx"] = int(errors.group(1)) if errors else 0
    socket_errors = re.search(r"Socket errors: (.*)", text)
    result["socket_errors"] = socket_errors.group(1) if socket_errors else ""
    return result


def ratio(numerator, denominator):
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 6)


def build(root, raw):
    rules = rule_files.load_rules(root)
    facts = read_facts(raw)

    exporter = exporter_report(raw, rules)
    tools = {name: tool_report(raw, rules, name, role) for name, (role, _) in TOOLS.items()}
    floor = floor_report(raw, rules, int(facts["floor_repeats"]))
    cycles = {"koji_exporter": cycle(exporter["per_rule"]), "floor": cycle(floor["per_rule"])}
    for name in tools:
        cycles[name] = cycle(tools[name]["per_rule"])

    exactness_path = os.path.join(raw, "exactness.json")
    exactness = None
    if os.path.exists(exactness_path):
        with open(exactness_path, encoding="utf-8") as stream:
            exactness = json.load(stream)
    http = {"koji_exporter": parse_wrk(os.path.join(raw, "wrk_exporter.txt")),
            "nginx": parse_wrk(os.path.join(raw, "wrk_nginx.txt"))}

    ours = cycles["koji_exporter"]
    task_full = next(r for r in tools["sql_exporter"]["per_rule"] if r["rule"] == "tasks")
    task_ours = next(r for r in exporter["per_rule"] if r["rule"] == "tasks")
    return {
        "facts": facts,
        "exporter": exporter,
        "full_count_tools": tools,
        "floor": floor,
        "cycles": {name: {"ms_per_cycle": c[0], "ms_per_hour": c[1], "complete": c[2]}
                   for name, c in cycles.items()},
        "ratios": {
            "cycle_vs_sql_exporter": ratio(ours[0], cycles["sql_exporter"][0]),
            "cycle_vs_postgres_exporter": ratio(ours[0], cycles["postgres_exporter"][0]),
            "cycle_vs_floor": ratio(ours[0], cycles["floor"][0]),
            "hour_vs_sql_exporter": ratio(ours[1], cycles["sql_exporter"][1]),
            "hour_vs_postgres_exporter": ratio(ours[1], cycles["postgres_exporter"][1]),
            "task_rule_vs_full_count": ratio(task_ours["ms_per_run"], task_full["ms_per_run"]),
            "requests_per_second_vs_nginx": ratio(
                (http["koji_exporter"] or {}).get("requests_per_second"),
                (http["nginx"] or {}).get("requests_per_second")),
        },
        "http": http,
        "exactness": exactness,
    }


def number(value, digits=1):
    if value is None:
        return "n/a"
    if isinstance(value, float) and 0 < value < 0.01:
        return f"{value:.2g}"
    if isinstance(value, float) and value < 0.1 and digits < 3:
        return f"{value:.3f}"
    return f"{value:,.{digits}f}"


def markdown(report):
    facts = report["facts"]
    lines = [f"# koji_exporter benchmark: {facts['scale']}"
             + (" (smoke run)" if facts.get("smoke") == "true" else ""), ""]
    lines += [f"Run {facts.get('date')} at revision {facts.get('revision')} by `bench/run.sh "
              f"{facts['scale']}`" + (" --smoke" if facts.get("smoke") == "true" else "") + ".",
              "", "## Machine and data", "",
              "| fact | value |", "|---|---|",
              f"| CPU | {facts.get('cpu')}, {facts.get('nproc')} cores |",
              f"| memory | {int(facts.get('memory_kib', 0)) // 1024:,} MiB |",
              f"| PostgreSQL | {facts.get('postgres_version')}, shared_buffers {facts.get('shared_buffers')} |",
              f"| load average at start / end | {facts.get('loadavg_start')} / {facts.get('loadavg_end')} |"]
    for table in ("task", "build", "tag_listing", "tag", "package", "tag_packages", "host"):
        lines.append(f"| rows in {table} | {int(facts.get('rows_' + table, 0)):,} |")
    lines += [f"| database size | {int(facts.get('database_bytes', 0)) / 2**30:.2f} GiB |",
              f"| generation time | {facts.get('load_seconds')} s |",
              f"| activity asked of the generator | {int(facts.get('churn_rate_millis', 0)) / 1000:g} tasks/s created and as many finished |"]
    if facts.get("newest_task_steady_end"):
        created = int(facts["newest_task_steady_end"]) - int(facts["newest_task_steady_start"])
        lines.append(f"| tasks created in the steady window | {created:,} "
                     f"({created / int(facts['steady_seconds']):.2f}/s) |")
    lines.append("")

    cycles = report["cycles"]
    lines += ["## Database time per cycle", "",
              "One cycle is one run of every default rule; per hour counts each rule at its "
              "interval.", "",
              "| client | ms per cycle | ms per hour | % of wall time |", "|---|---:|---:|---:|"]
    names = {"koji_exporter": "koji_exporter, steady state",
             "sql_exporter": "prometheus-sql-exporter, full count",
             "postgres_exporter": "prometheus-postgres-exporter, full count",
             "floor": "bare statements in psql"}
    for name, label in names.items():
        c = cycles[name]
        note = "" if c["complete"] else " (some rules missing)"
        lines.append(f"| {label}{note} | {number(c['ms_per_cycle'])} | {number(c['ms_per_hour'], 0)} "
                     f"| {c['ms_per_hour'] / 3600000 * 100:.4f} % |")
    exporter = report["exporter"]
    lines += ["", f"At start, until every rule had run once: {number(exporter['start_ms'])} ms of "
              f"database time, of which {number(exporter['start_seed_ms'])} ms for the task "
              f"rule's sum of the finished tasks; {facts.get('exporter_start_seconds')} s "
              "of wall time.", ""]
    ratios = report["ratios"]
    lines += ["| ratio | value |", "|---|---:|"]
    for key, label in (("cycle_vs_sql_exporter", "cycle, koji_exporter / prometheus-sql-exporter"),
                       ("cycle_vs_postgres_exporter", "cycle, koji_exporter / prometheus-postgres-exporter"),
                       ("cycle_vs_floor", "cycle, koji_exporter / bare statements"),
                       ("hour_vs_sql_exporter", "hour, koji_exporter / prometheus-sql-exporter"),
                       ("hour_vs_postgres_exporter", "hour, koji_exporter / prometheus-postgres-exporter"),
                       ("task_rule_vs_full_count", "task rule run / full count (prometheus-sql-exporter)"),
                       ("requests_per_second_vs_nginx", "/metrics requests per second, koji_exporter / nginx")):
        lines.append(f"| {label} | {number(ratios[key], 4)} |")

    lines += ["", "## Per rule (ms of database time per run)", "",
              "| rule | interval | koji_exporter | runs | prometheus-sql-exporter | "
              "prometheus-postgres-exporter | psql |", "|---|---:|---:|---:|---:|---:|---:|"]
    tools = report["full_count_tools"]
    for i, row in enumerate(exporter["per_rule"]):
        sql_row = tools["sql_exporter"]["per_rule"][i]
        pg_row = tools["postgres_exporter"]["per_rule"][i]
        floor_row = report["floor"]["per_rule"][i]
        where = "" if row["window"] == "steady" else " (first run)"
        errors = f", {int(row['errors'])} failed" if row["errors"] else ""
        if row["timeouts"]:
            errors += f" ({int(row['timeouts'])} at the {row['timeout_seconds']} s timeout)"
        lines.append(f"| {row['rule']} | {row['interval_seconds']} s | {number(row['ms_per_run'], 2)}"
                     f"{where} | {row['runs']:g}{errors} | {number(sql_row['ms_per_run'], 2)} | "
                     f"{number(pg_row['ms_per_run'], 2)} | {number(floor_row['ms_per_run'], 2)} |")
    lines += ["", f"koji_exporter's figures include {exporter['session_ms_per_run']} ms per run for "
              "the statements around each rule (BEGIN, SET LOCAL, ROLLBACK, advisory unlock). "
              "A run canceled at its timeout counts as its timeout, because pg_stat_statements "
              "records only statements that complete.", ""]
    full = report["floor"]["full_counts_ms"]
    if full:
        lines += ["Full counts of the task metrics in psql: "
                  + "; ".join(f"{name}: {number(ms)} ms" for name, ms in full.items()) + ".", ""]

    http = report["http"]
    lines += ["## /metrics over HTTP", "",
              f"wrk, 2 threads, 4 connections, {facts.get('wrk_seconds')} s, on 127.0.0.1; the "
              f"response is {int(facts.get('metrics_bytes', 0)):,} bytes with "
              f"{int(facts.get('metrics_series', 0)):,} samples.", "",
              "| server | requests/s | p50 ms | p75 ms | p90 ms | p99 ms | non-2xx |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name, label in (("koji_exporter", "koji_exporter"), ("nginx", "nginx, same bytes as a static file")):
        h = http.get(name)
        if h:
            lines.append(f"| {label} | {number(h['requests_per_second'])} | {number(h.get('p50_ms'), 3)} | "
                         f"{number(h.get('p75_ms'), 3)} | {number(h.get('p90_ms'), 3)} | "
                         f"{number(h.get('p99_ms'), 3)} | {h['non_2xx']} |")
    lines += ["", "## Exporter memory", "",
              "| when | VmRSS MiB | VmHWM MiB |", "|---|---:|---:|"]
    for when in ("start", "end"):
        rss = facts.get(f"exporter_VmRSS_kib_{when}")
        hwm = facts.get(f"exporter_VmHWM_kib_{when}")
        if rss:
            lines.append(f"| {when} | {int(rss) / 1024:.1f} | {int(hwm) / 1024:.1f} |")
    exactness = report["exactness"]
    lines += ["", "## Exactness", ""]
    if exactness:
        verdict = "equal" if exactness["exact"] else f"{exactness['differences']} differ"
        lines.append(f"After the activity stopped, {exactness['series_compared']:,} series of the "
                     f"task metrics ({int(exactness['tasks_counted']):,} tasks) were compared with a "
                     f"full count of the task table: {verdict}.")
    else:
        lines.append("Not checked: the run stopped before this step.")
    return "\n".join(lines) + "\n"


def summary(report):
    c = report["cycles"]
    r = report["ratios"]
    exact = report["exactness"]
    return "\n".join([
        f"scale {report['facts']['scale']}: database time per cycle, ms",
        f"  koji_exporter {number(c['koji_exporter']['ms_per_cycle'])}, "
        f"prometheus-sql-exporter {number(c['sql_exporter']['ms_per_cycle'])}, "
        f"prometheus-postgres-exporter {number(c['postgres_exporter']['ms_per_cycle'])}, "
        f"psql floor {number(c['floor']['ms_per_cycle'])}",
        f"  koji_exporter / full count (prometheus-sql-exporter): "
        f"per cycle {number(r['cycle_vs_sql_exporter'], 4)}, "
        f"per hour {number(r['hour_vs_sql_exporter'], 4)}, "
        f"task rule / full count {number(r['task_rule_vs_full_count'], 4)}",
        f"  at start {number(report['exporter']['start_ms'])} ms; "
        f"/metrics vs nginx {number(r['requests_per_second_vs_nginx'], 3)}; "
        f"exact: {exact['exact'] if exact else 'not checked'}",
    ])


def main(argv):
    if len(argv) != 4:
        sys.exit("usage: report.py ROOT RAW_DIR RESULTS_DIR")
    root, raw, results = argv[1:]
    report = build(root, raw)
    scale = report["facts"]["scale"]
    suffix = "-smoke" if report["facts"].get("smoke") == "true" else ""
    with open(os.path.join(results, f"{scale}{suffix}.json"), "w", encoding="utf-8") as stream:
        json.dump(report, stream, indent=2)
    with open(os.path.join(results, f"{scale}{suffix}.md"), "w", encoding="utf-8") as stream:
        stream.write(markdown(report))
    print(summary(report))


if __name__ == "__main__":
    main(sys.argv)
