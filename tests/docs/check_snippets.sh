#!/usr/bin/env bash
# tests/docs/check_snippets.sh [REPO]: every code example in keel's docs
# compiles, because each one is a copy of a file the build compiles.
#
# In docs/*.md and README.md:
#  - a ```cpp (or ```c++, ```cc) block must follow, on the line before it
#    (blank lines aside), a marker naming where it comes from:
#      <!-- snippet: examples/getting_started.cc -->          the whole file
#      <!-- snippet: examples/docs_snippets.cc#bootstrap -->  one region
#    A region is the lines between `// doc-snippet: NAME` and
#    `// end-doc-snippet: NAME`, less their common indentation. The block
#    must equal it byte for byte (less the block's own indentation), and the
#    file must be named in its folder's CMakeLists.txt (so it is built);
#  - every block opens with a language (```text for pseudo-code and output,
#    ```sh for commands), so that nobody takes a sketch for compiled code.
#
# Exit 0 if all hold, 1 naming each block that does not. ctest runs it as
# docs_snippets; `make docs-check` too.
set -euo pipefail

repo=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$repo"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failures=0
checked=0
fail() {
  echo "check_snippets: $*" >&2
  failures=$((failures + 1))
}

# Writes each fenced block of $1 to $work/block.N and prints one line per
# block: N, the fence's line, its language and the marker before it.
split_blocks() {
  awk -v out="$work/block." '
    {
      if (!inside) {
        if (match($0, /^[ \t]*```/)) {
          indent = RLENGTH - 3
          lang = substr($0, RLENGTH + 1)
          sub(/[ \t]+$/, "", lang)
          inside = 1; count++; start = NR
          file = out count
          printf "" > file
          printf "%d\t%d\t%s\t%s\n", count, NR, lang, marker
          marker = ""
          next
        }
        if ($0 ~ /^[ \t]*<!-- snippet: [^ ]+ -->[ \t]*$/) {
          marker = $0
          sub(/^[ \t]*<!-- snippet: /, "", marker)
          sub(/ -->[ \t]*$/, "", marker)
        } else if ($0 !~ /^[ \t]*$/) {
          marker = ""
        }
        next
      }
      if ($0 ~ /^[ \t]*```[ \t]*$/) { inside = 0; close(file); next }
      line = $0
      # The block is indented like its fence (inside a list item): drop that.
      for (k = 0; k < indent && substr(line, 1, 1) == " "; k++) line = substr(line, 2)
      print line >> file
    }
    END { if (inside) printf "%d\t%d\tUNCLOSED\t\n", count, start }
  ' "$1"
}

# Prints region $2 of file $1 (or the whole file without $2), dedented.
extract() {
  if [[ -z $2 ]]; then
    cat "$1"
    return
  fi
  awk -v name="$2" '
    $0 ~ ("// end-doc-snippet: " name "[ \t]*$") { inside = 0; found_end = 1; next }
    inside { lines[++n] = $0 }
    $0 ~ ("// doc-snippet: " name "[ \t]*$") { inside = 1; found = 1 }
    END {
      if (!found || !found_end) exit 3
      min = -1
      for (i = 1; i <= n; i++) {
        if (lines[i] ~ /^[ \t]*$/) continue
        match(lines[i], /^ */)
        if (min < 0 || RLENGTH < min) min = RLENGTH
      }
      for (i = 1; i <= n; i++) print (lines[i] ~ /^[ \t]*$/ ? "" : substr(lines[i], min + 1))
    }
  ' "$1"
}

for doc in README.md docs/*.md; do
  while IFS=$'\t' read -r n line lang marker; do
    where="$doc:$line"
    if [[ $lang == UNCLOSED ]]; then
      fail "$where: a code block is never closed"
      continue
    fi
    if [[ -z $lang ]]; then
      fail "$where: a code block without a language (\`\`\`text for pseudo-code or output, \`\`\`sh, \`\`\`cpp)"
      continue
    fi
    case $lang in
      cpp | c++ | cc | cxx | C++ | c) ;;
      *) continue ;;
    esac
    checked=$((checked + 1))
    if [[ -z $marker ]]; then
      fail "$where: a C++ block without a <!-- snippet: FILE[#REGION] --> marker before it"
      continue
    fi
    path=${marker%%#*}
    region=""
    [[ $marker == *"#"* ]] && region=${marker#*#}
    if [[ ! -f $path ]]; then
      fail "$where: $path does not exist"
      continue
    fi
    if ! grep -qF "$(basename "$path")" "$(dirname "$path")/CMakeLists.txt" 2>/dev/null; then
      fail "$where: $path is not named in $(dirname "$path")/CMakeLists.txt, so the build does not compile it"
      continue
    fi
    if ! extract "$path" "$region" >"$work/expected"; then
      fail "$where: $path has no region '$region' (// doc-snippet: $region ... // end-doc-snippet: $region)"
      continue
    fi
    if ! diff -u --label "$marker (compiled)" --label "$where (in the doc)" \
        "$work/expected" "$work/block.$n" >"$work/diff"; then
      fail "$where: the block differs from $marker:"
      cat "$work/diff" >&2
    fi
  done < <(split_blocks "$doc")
done

if ((failures > 0)); then
  echo "check_snippets: $failures problem(s); $checked C++ block(s) checked" >&2
  exit 1
fi
echo "check_snippets: $checked C++ block(s) in README.md and docs/*.md match the files the build compiles"
