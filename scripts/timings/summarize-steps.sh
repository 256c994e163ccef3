#!/usr/bin/env bash
# Where a unit stage's time goes, per test executable: compile and link CPU seconds (user +
# sys) from the step times that scripts/timings/time-step.sh recorded, and the run time that
# ctest printed, sorted by compile CPU. Then the totals.
# Usage: bash scripts/timings/summarize-steps.sh STEPS.tsv CTEST_OUTPUT.log
set -euo pipefail
steps=$1
log=$2
awk -F'\t' -v log_file="$log" '
  BEGIN {
    while ((getline line < log_file) > 0)
      if (match(line, /Test +#[0-9]+: [^ ]+ \.+[^0-9]* ([0-9.]+) sec/)) {
        split(line, words, " ")
        for (i = 1; i <= length(words); ++i) if (words[i] ~ /^#[0-9]+:$/) name = words[i + 1]
        run[name] = words[length(words) - 1]
      }
  }
  NF == 5 && $2 !~ /cmTC_/ {
    name = $2
    sub(/\.dir\/.*/, "", name); sub(/.*\//, "", name); sub(/\.cpp\.o$/, "", name)
    cpu = $4 + $5
    if ($1 == "compile") compile[name] += cpu; else link[name] += cpu
    names[name] = 1
    total[$1] += cpu
  }
  END {
    printf "target\tcompile_cpu_seconds\tlink_cpu_seconds\tctest_run_seconds\n"
    for (name in names) {
      r = (name in run) ? run[name] : "-"
      printf "%s\t%.1f\t%.1f\t%s\n", name, compile[name], link[name], r | "sort -t\"\t\" -k2,2 -n -r"
    }
    close("sort -t\"\t\" -k2,2 -n -r")
    for (name in run) if (name ~ /^test_/) run_total += run[name]
    printf "TOTAL\t%.1f\t%.1f\t%.1f\n", total["compile"], total["link"], run_total
  }' "$steps"
