#!/usr/bin/env python3
"""Before/after figures: runs `kiln bench` commands interleaved, round after round, and prints
the median of each command's reported medians.

    python3 scripts/bench_compare.py [--rounds R] 'LABEL=COMMAND' 'LABEL=COMMAND' ...

Each COMMAND is a shell command whose output ends with a `kiln bench` line ("median X ms" or
"median X s"); the order of the commands rotates from round to round, so a machine that slows
down or speeds up during the run affects all of them alike. For a change, build the old commit
into another scratch path and compare the two binaries, e.g.

    git worktree add /tmp/before HEAD~1
    (cd /tmp/before && swift build -c release --scratch-path /tmp/before-build)
    python3 scripts/bench_compare.py \\
        'before=/tmp/before-build/release/kiln bench step --task ner --device cpu --repeats 20' \\
        'after=.build/release/kiln bench step --task ner --device cpu --repeats 20'
"""

import argparse
import re
import statistics
import subprocess
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    ap.add_argument("runs", nargs="+", metavar="LABEL=COMMAND")
    args = ap.parse_args()
    runs = []
    for r in args.runs:
        label, sep, command = r.partition("=")
        if not sep or not command:
            ap.error(f"'{r}' is not LABEL=COMMAND")
        runs.append((label, command))
    samples = {label: [] for label, _ in runs}
    unit = {}
    for r in range(args.rounds):
        k = r % len(runs)
        for label, command in runs[k:] + runs[:k]:
            out = subprocess.run(command, shell=True, capture_output=True, text=True)
            found = re.findall(r"median ([0-9.]+) (ms|s)\b", out.stdout + out.stderr)
            if out.returncode != 0 or not found:
                print(f"{label}: exit {out.returncode}, no median in its output:\n{out.stdout}{out.stderr}", file=sys.stderr)
                return 1
            samples[label].append(float(found[-1][0]))
            unit[label] = found[-1][1]
        print(f"# round {r + 1}/{args.rounds}", file=sys.stderr)
    for label, values in samples.items():
        print(f"{label:>24}: median {statistics.median(values):.3f} {unit[label]} "
              f"[{min(values):.3f}-{max(values):.3f}] over {len(values)} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
