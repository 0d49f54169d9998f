#!/usr/bin/env bash
# Tests scripts/check-core-purity.sh: it must pass a clean core file and fail
# on each kind of forbidden construct. A checker that cannot fail is worse
# than none. Exits 0 only if every case behaves.
set -euo pipefail

checker="$(cd "$(dirname "$0")" && pwd)/check-core-purity.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# run_case NAME EXPECTED(pass|fail) SOURCE: checks a one-file directory.
run_case() {
  local name=$1 expected=$2 source=$3 got
  mkdir -p "$tmp/$name"
  printf '%s\n' "$source" >"$tmp/$name/node.cc"
  if bash "$checker" "$tmp/$name" >"$tmp/$name.log" 2>&1; then got=pass; else got=fail; fi
  if [[ $got != "$expected" ]]; then
    echo "FAIL: case '$name': checker said $got, expected $expected" >&2
    cat "$tmp/$name.log" >&2
    failures=$((failures + 1))
  fi
}

run_case clean pass '#include <chrono>
#include <vector>
#include <keel/types.h>
#include "core/log.h"
// Comments may say std::thread, time(nullptr) or <mutex> freely.
std::chrono::milliseconds timeout{150};
int election_time(int ticks) { return ticks; }'
run_case thread fail '#include <thread>'
run_case mutex fail '#include <mutex>'
run_case clock fail 'auto now = std::chrono::steady_clock::now();'
run_case random_device fail 'std::random_device seed_source;'
run_case rand fail 'int r = std::rand();'
run_case wall_time fail 'auto t = time(nullptr);'
run_case socket fail '#include <sys/socket.h>'
run_case fopen fail 'FILE* f = fopen("log", "w");'
run_case asio fail '#include <asio.hpp>'
run_case runtime_module fail '#include "runtime/raft.h"'
run_case public_raft_header fail '#include <keel/raft.h>'

if [[ $failures -ne 0 ]]; then
  echo "test-core-purity-check: $failures case(s) wrong" >&2
  exit 1
fi
echo "test-core-purity-check: OK: checker passes clean code and catches each violation"
