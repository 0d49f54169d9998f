#!/usr/bin/env bash
# Installs the Debian 12 packages keel needs to build, test and lint.
# Quiet and fast when everything is present: no apt-get at all then.
# As root it installs what is missing; otherwise it prints the command to run.
set -euo pipefail

# The one list of build dependencies. Add new packages here.
PACKAGES=(
  build-essential g++ cmake ninja-build
  libgtest-dev libgmock-dev libbenchmark-dev
  ccache clang clang-format clang-tidy
  libasio-dev libssl-dev openssl
  # keel-kv (apps/kv): HTTP, JSON, flags; its chaos tests: packet filters
  libcpp-httplib-dev nlohmann-json3-dev libcli11-dev iptables iproute2
  # the API reference (make docs), the benchmark chart (make bench-report),
  # the cluster page's browser test
  doxygen gnuplot-nox chromium chromium-driver pkg-config
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
