#!/usr/bin/env python3
"""Reads snapshots of pg_stat_statements (JSON arrays written by bench/run.sh) and sums
the calls and database time of each client role by rule and statement kind.

Usage: stats.py covered ROOT SNAPSHOT ROLE
  prints how many of the default rules have at least one completed call by ROLE
"""

import collections
import json
import sys

import rules as rule_files


def load(path):
    with open(path, encoding="utf-8") as stream:
        return json.load(stream) or []


def totals(snapshot, rules):
    """Returns {(role, rule, kind): [calls, milliseconds]}, where the time is planning plus
    execution, and rule is None for the statements around the rules."""
    result = collections.defaultdict(lambda: [0, 0.0])
    for entry in snapshot:
        rule, kind = rule_files.classify(entry["query"], rules)
        key = (entry["role"], rule, kind)
        result[key][0] += entry["calls"]
        result[key][1] += entry["plan_ms"] + entry["exec_ms"]
    return result


def delta(before, after, rules):
    """Returns totals(after) minus totals(before), keeping only the entries that changed."""
    start = totals(before, rules)
    result = {}
    for key, (calls, ms) in totals(after, rules).items():
        calls_before, ms_before = start.get(key, (0, 0.0))
        if calls != calls_before:
            result[key] = [calls - calls_before, ms - ms_before]
    return result


def main(argv):
    if len(argv) != 5 or argv[1] != "covered":
        sys.exit("usage: stats.py covered ROOT SNAPSHOT ROLE")
    rules = rule_files.load_rules(argv[2])
    found = {rule for (role, rule, _), (calls, _) in totals(load(argv[3]), rules).items()
             if role == argv[4] and rule is not None and calls > 0}
    print(len(found & {rule.name for rule in rules}))


if __name__ == "__main__":
    main(sys.argv)
