#!/usr/bin/env bash
# tests/docs/check_snippets_selftest.sh: check_snippets.sh fails on each
# thing it exists to catch, and passes a doc that is right. It runs the
# check on small repositories made up in a temporary folder.
set -euo pipefail

check=$(cd "$(dirname "$0")" && pwd)/check_snippets.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# make_repo DOC: a repository whose docs/guide.md is DOC, with a compiled
# examples/demo.cc holding a region `main-loop`.
make_repo() {
  rm -rf "$work/repo"
  mkdir -p "$work/repo/docs" "$work/repo/examples"
  printf 'add_executable(demo demo.cc)\n' >"$work/repo/examples/CMakeLists.txt"
  cat >"$work/repo/examples/demo.cc" <<'CODE'
int main() {
  // doc-snippet: main-loop
  for (int i = 0; i < 3; ++i) {
  }
  // end-doc-snippet: main-loop
  return 0;
}
CODE
  printf 'int stray;\n' >"$work/repo/examples/stray.cc"
  printf '# readme\n' >"$work/repo/README.md"
  printf '%s\n' "$1" >"$work/repo/docs/guide.md"
}

# expect STATUS WHAT DOC [REASON]: the check exits STATUS on DOC, and its
# output says REASON.
expect() {
  make_repo "$3"
  local status=0
  bash "$check" "$work/repo" >"$work/out" 2>&1 || status=$?
  if [[ $status -ne $1 ]] || ! grep -qF -- "${4:-}" "$work/out"; then
    echo "check_snippets_selftest: $2: exit $status, expected $1 and '${4:-}'" >&2
    cat "$work/out" >&2
    failures=$((failures + 1))
  fi
}

region=$'<!-- snippet: examples/demo.cc#main-loop -->\n```cpp\nfor (int i = 0; i < 3; ++i) {\n}\n```'
expect 0 "a region copied exactly" "$region"
expect 0 "a region inside a list item, indented" \
  $'- step\n\n  <!-- snippet: examples/demo.cc#main-loop -->\n  ```cpp\n  for (int i = 0; i < 3; ++i) {\n  }\n  ```'
expect 0 "a text block" $'```text\nanything at all\n```'
expect 1 "a region that differs" "${region/i < 3/i < 4}" "differs from"
expect 1 "a C++ block without a marker" $'```cpp\nint x = 1;\n```' "without a <!-- snippet"
expect 1 "a block without a language" $'```\nint x = 1;\n```' "without a language"
expect 1 "a region that does not exist" "${region/main-loop/no-such-region}" "has no region"
expect 1 "a file that does not exist" $'<!-- snippet: examples/other.cc -->\n```cpp\n```' \
  "does not exist"
expect 1 "a file the build does not compile" \
  $'<!-- snippet: examples/stray.cc -->\n```cpp\nint stray;\n```' "does not compile it"
expect 1 "a block never closed" $'```text\nopen' "never closed"

if ((failures > 0)); then exit 1; fi
echo "check_snippets_selftest: every case as expected"
