#!/usr/bin/env bash
# Usage: check-core-purity.sh DIR
#
# Enforces the rules of DESIGN §2.1 on the pure protocol core: no threads,
# clocks, randomness from the OS, files, sockets or other keel modules. Time
# is tick(), randomness is a caller-seeded PRNG, I/O belongs to the shell.
# Scans C++ sources under DIR; lines that start with a comment are skipped.
# Prints file:line: rule for each violation and exits 1; exits 0 otherwise.
set -euo pipefail

dir=${1:?usage: check-core-purity.sh DIR}
[[ -d "$dir" ]] || { echo "check-core-purity: no such directory: $dir" >&2; exit 2; }

# Each rule: an extended regex, then a tab, then the reason printed.
RULES=$(cat <<'RULES'
#include *<(thread|mutex|shared_mutex|condition_variable|future|atomic|stop_token|semaphore|latch|barrier)>	threads and synchronisation belong to the runtime
#include *<(fstream|filesystem|ctime)>	files and wall clocks belong to the shell
#include *<(sys/|netinet|arpa/|unistd\.h|fcntl\.h|netdb\.h|pthread\.h)	OS, socket and file APIs belong to the shell
(steady_clock|system_clock|high_resolution_clock)	no clocks in the core: time is tick()
random_device	no OS randomness: use the PRNG seeded by the caller
(^|[^A-Za-z0-9_.>])(rand|srand|getenv)[[:space:]]*\(	no hidden inputs (rand, getenv): the caller passes them in
(^|[^A-Za-z0-9_.>])time[[:space:]]*\([[:space:]]*(nullptr|NULL|0|&)	no wall clock (time()): time is tick()
(^|[^A-Za-z0-9_])(fopen|freopen|fdopen|tmpfile|popen)[[:space:]]*\(	no file I/O in the core
(^|[^A-Za-z0-9_])asio([^A-Za-z0-9_]|$)	no networking in the core
#include *"(runtime|storage|transport|sim)/	the core must not depend on other keel modules (DESIGN §2)
#include *[<"]keel/	of the public API the core may include only keel/types.h and keel/status.h (DESIGN §2)
RULES
)
# Public headers the core may include (they depend on the standard library only).
ALLOWED='#include *[<"]keel/(types|status)\.h[>"]'

failed=0
while IFS=$'\t' read -r pattern reason; do
  hits=$(grep -rnE --include='*.h' --include='*.hh' --include='*.hpp' --include='*.cc' \
           --include='*.cpp' --include='*.cxx' --include='*.ipp' --include='*.inc' \
           -e "$pattern" "$dir" \
           | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(//|/\*|\*)' | grep -vE "$ALLOWED" || true)
  [[ -z "$hits" ]] && continue
  failed=1
  while IFS= read -r hit; do            # hit is file:line:text
    file=${hit%%:*} rest=${hit#*:}
    echo "$file:${rest%%:*}: $reason" >&2
    echo "    ${rest#*:}" >&2
  done <<<"$hits"
done <<<"$RULES"

if [[ $failed -ne 0 ]]; then
  echo "check-core-purity: FAILED: $dir breaks the purity rules of DESIGN §2.1" >&2
  exit 1
fi
echo "check-core-purity: OK: $dir uses only the standard library and pure keel headers"
