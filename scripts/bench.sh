#!/usr/bin/env bash
# keel's published cluster benchmark (BENCHMARKS.md, "Cluster").
#
#   scripts/bench.sh run     the standard set with keel-bench (make bench):
#                            writes bench/results/cluster.jsonl, one JSON
#                            object per run, then reports
#   scripts/bench.sh report  from bench/results/cluster.jsonl: the tables
#                            (bench/results/cluster.md, medians of the runs,
#                            also copied into BENCHMARKS.md between its
#                            bench-report markers) and the chart
#                            (bench/results/cluster.png, gnuplot)
#                            (make bench-report)
#
# Environment: KEEL_BENCH_BIN (build/bin/keel-bench), BENCH_RUNS (runs of
# each configuration, 3), BENCH_DURATION (measured seconds per run, 8),
# BENCH_WARMUP (2), BENCH_OUT (bench/results).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${KEEL_BENCH_BIN:-build/bin/keel-bench}
RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-8}
WARMUP=${BENCH_WARMUP:-2}
OUT=${BENCH_OUT:-bench/results}
CLIENTS=(1 8 32 128)

run() {
  [[ -x $BIN ]] || { echo "bench: $BIN is missing (make build)" >&2; exit 2; }
  mkdir -p "$OUT"
  local results="$OUT/cluster.jsonl" started=$SECONDS
  local machine
  machine=$(printf '%s, %s cores, kernel %s' \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(nproc)" "$(uname -r)")
  {
    printf '{"kind": "machine", "cpu": "%s", "commit": "%s", "date": "%s"}\n' \
      "$machine" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$(date -u +%FT%TZ)"
  } > "$results.tmp"
  echo "bench: $machine; $RUNS runs of ${DURATION} s per configuration, into $results"
  # The floor before and after the runs: the disk's and loopback's cost
  # moves with the neighbours.
  "$BIN" floor --json | sed 's/^{/{"kind": "floor", /' >> "$results.tmp"
  for run in $(seq 1 "$RUNS"); do
    for log in memory wal; do
      for clients in "${CLIENTS[@]}"; do
        printf 'bench: run %s, %s log, %s clients\n' "$run" "$log" "$clients"
        "$BIN" --log "$log" --clients "$clients" --duration "$DURATION" --warmup "$WARMUP" --json \
          | sed 's/^{/{"kind": "write", /' >> "$results.tmp"
      done
    done
    for reads in "linearizable leader" "linearizable follower" "lease leader"; do
      set -- $reads
      printf 'bench: run %s, %s reads on the %s, 32 clients\n' "$run" "$1" "$2"
      "$BIN" --workload read --read "$1" --on "$2" --clients 32 --duration "$DURATION" \
        --warmup "$WARMUP" --json | sed 's/^{/{"kind": "read", /' >> "$results.tmp"
    done
  done
  "$BIN" floor --json | sed 's/^{/{"kind": "floor", /' >> "$results.tmp"
  mv "$results.tmp" "$results"
  echo "bench: done in $((SECONDS - started)) s"
  report
}

# The number after "key": in a JSON line (our own flat format).
field() {
  sed -n -e "s/.*\"$1\": \"\([^\"]*\)\".*/\1/p;t" -e "s/.*\"$1\": \([^,}]*\).*/\1/p" <<<"$2" | head -1
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# KEY of each run in $lines (the runs of one configuration), one a line;
# col KEY: their median.
values() { while read -r l; do field "$1" "$l"; done <<<"$lines"; }
col() { values "$1" | median; }

report() {
  local results="$OUT/cluster.jsonl" table="$OUT/cluster.md" data="$OUT/cluster.dat"
  [[ -s $results ]] || { echo "bench: no $results (run scripts/bench.sh run)" >&2; exit 2; }
  command -v gnuplot >/dev/null || { echo "bench: gnuplot is missing (make deps)" >&2; exit 2; }
  local machine floors
  machine=$(grep '"kind": "machine"' "$results" | head -1)
  floors=$(grep '"kind": "floor"' "$results" || true)
  {
    echo "<!-- made by scripts/bench.sh report from $results -->"
    echo
    echo "Machine: $(field cpu "$machine"); commit \`$(field commit "$machine")\`, $(field date "$machine")."
    echo
    echo "| floor | fdatasync 4 KiB p50 | loopback round trip p50 | sum |"
    echo "|---|---:|---:|---:|"
    local n=0
    while read -r line; do
      [[ -z $line ]] && continue
      n=$((n + 1))
      printf '| %s | %s µs | %s µs | %s µs |\n' "$([[ $n == 1 ]] && echo before || echo after)" \
        "$(sed -n 's/.*"fdatasync_4k_us": {"p50": \([0-9.]*\).*/\1/p' <<<"$line")" \
        "$(sed -n 's/.*"tcp_round_trip_us": {"p50": \([0-9.]*\).*/\1/p' <<<"$line")" \
        "$(field floor_us "$line")"
    done <<<"$floors"
    echo
    echo "Writes, 3 processes, 256-byte commands; the median of the runs (ops/s: lowest–highest)."
    echo
    echo "| log | clients | ops/s | p50 µs | p95 µs | p99 µs | p99.9 µs | p99.99 µs | CPU µs/op (all processes) | disk bytes/op | peak RSS (largest) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  } > "$table"
  : > "$data"
  for log in memory wal; do
    for clients in "${CLIENTS[@]}"; do
      local lines
      lines=$(grep '"kind": "write"' "$results" | grep "\"log\": \"$log\"" \
        | grep "\"clients\": $clients," || true)
      [[ -z $lines ]] && continue
      local ops lo hi
      ops=$(col ops_per_sec)
      lo=$(values ops_per_sec | sort -g | head -1)
      hi=$(values ops_per_sec | sort -g | tail -1)
      printf '| %s | %s | %.0f (%.0f–%.0f) | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f | %.0f | %.0f MB |\n' \
        "$log" "$clients" "$ops" "$lo" "$hi" "$(col p50)" "$(col p95)" "$(col p99)" "$(col p99_9)" \
        "$(col p99_99)" "$(col cluster_cpu_us_per_op)" "$(col cluster_disk_bytes_per_op)" \
        "$(col max_peak_rss_kb | awk '{ print $1 / 1024 }')" >> "$table"
      printf '%s %s %s %s %s\n' "$log" "$clients" "$ops" "$(col p50)" "$(col p99)" >> "$data"
    done
  done
  {
    echo
    echo "Reads, 3 processes, 32 clients; the median of the runs."
    echo
    echo "| reads | on | ops/s | p50 µs | p99 µs | p99.9 µs | CPU µs/op (all processes) |"
    echo "|---|---|---:|---:|---:|---:|---:|"
  } >> "$table"
  for reads in "linearizable leader" "linearizable follower" "lease leader"; do
    set -- $reads
    local lines
    lines=$(grep '"kind": "read"' "$results" | grep "\"read\": \"$1\", \"on\": \"$2\"" || true)
    [[ -z $lines ]] && continue
    printf '| %s | %s | %.0f | %.0f | %.0f | %.0f | %.1f |\n' "$1" "$2" "$(col ops_per_sec)" \
      "$(col p50)" "$(col p99)" "$(col p99_9)" "$(col cluster_cpu_us_per_op)" >> "$table"
  done
  local floor_us
  floor_us=$(field floor_us "$(head -1 <<<"$floors")")
  gnuplot <<GNUPLOT
set terminal pngcairo size 960,420 font "sans,10"
set output "$OUT/cluster.png"
set multiplot layout 1,2 title "keel-bench: 3 processes on loopback, 256-byte writes, median of the runs ($(field cpu "$machine"))"
set logscale x 2
set xrange [0.8:160]
set xtics ("1" 1, "8" 8, "32" 32, "128" 128)
set xlabel "clients"
set grid
set key top left
set ylabel "ops/s"
set format y "%.0s%c"
memory = "#7b2cbf"
wal = "#2a9d8f"
plot "$data" using (strcol(1) eq "memory" ? \$2 : 1/0):3 with linespoints lw 2 lc rgb memory title "memory log", \
     "$data" using (strcol(1) eq "wal" ? \$2 : 1/0):3 with linespoints lw 2 lc rgb wal title "WAL (fdatasync)"
set ylabel "latency, µs"
set logscale y 10
set format y "%.0f"
plot "$data" using (strcol(1) eq "memory" ? \$2 : 1/0):4 with linespoints lw 2 lc rgb memory title "memory p50", \
     "$data" using (strcol(1) eq "memory" ? \$2 : 1/0):5 with linespoints dt 2 lw 2 lc rgb memory title "memory p99", \
     "$data" using (strcol(1) eq "wal" ? \$2 : 1/0):4 with linespoints lw 2 lc rgb wal title "WAL p50", \
     "$data" using (strcol(1) eq "wal" ? \$2 : 1/0):5 with linespoints dt 2 lw 2 lc rgb wal title "WAL p99", \
     ${floor_us:-0} with lines dt 3 lw 1 lc rgb "black" title "floor: fdatasync + round trip"
unset multiplot
GNUPLOT
  rm -f "$data"
  # BENCHMARKS.md shows the published tables between two markers: replace
  # them (only for the published results in bench/results).
  if [[ $OUT == bench/results && -f BENCHMARKS.md ]] && grep -q '^<!-- bench-report:begin -->$' BENCHMARKS.md; then
    awk -v table="$table" '
      /^<!-- bench-report:begin -->$/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
      /^<!-- bench-report:end -->$/ { skip = 0 }
      !skip { print }' BENCHMARKS.md > BENCHMARKS.md.tmp && mv BENCHMARKS.md.tmp BENCHMARKS.md
    echo "bench: BENCHMARKS.md's tables updated"
  fi
  echo "bench: $table and $OUT/cluster.png"
}

case "${1:-}" in
  run) run ;;
  report) report ;;
  *) echo "usage: scripts/bench.sh run|report" >&2; exit 2 ;;
esac
