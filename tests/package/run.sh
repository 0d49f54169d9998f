#!/usr/bin/env bash
# tests/package/run.sh — builds and runs a small user project against keel,
# the way a user would get keel (ctest -L package; tests/package/CMakeLists.txt):
#
#   find_package  cmake --install into a fresh prefix; the project in
#                 find_package/ finds it (CONFIG, with the version) and links
#                 keel::keel (shared), keel::keel_static and keel::sim. The
#                 installed tree is checked too: files, soname, no Asio,
#                 OpenSSL or internal header in include/keel, no Asio symbol
#                 exported by libkeel.so.
#   pkg_config    cmake --install into a fresh prefix; the consumers are
#                 compiled by hand with `pkg-config --cflags --libs keel`
#                 (and keel-sim).
#   subproject    the project in subdirectory/ builds keel from source with
#                 add_subdirectory, then again with FetchContent; keel must
#                 build only the static library the project links.
#
# Every consumer runs and must exit 0: it opens a one-server cluster,
# applies a command and checks its state machine saw it (consumer/).
#
# Usage: run.sh MODE BUILD_DIR SOURCE_DIR WORK_DIR VERSION SONAME
# Environment: CMAKE (cmake to use), CXX (compiler), LAUNCHER (ccache or
# empty), GENERATOR (CMake generator). WORK_DIR is removed first, and again
# when the test passes; after a failure it is kept for a look.
set -euo pipefail

mode=$1 build=$2 source=$3 work=$4 version=$5 soname=$6
cmake=${CMAKE:-cmake}
cxx=${CXX:-c++}
launcher=${LAUNCHER:-}
generator=${GENERATOR:-Ninja}
jobs=2

rm -rf "$work"
mkdir -p "$work"
trap 'echo "package test ($mode) FAILED; its files are in $work" >&2' ERR

configure_args=(-G "$generator" "-DCMAKE_CXX_COMPILER=$cxx")
if [[ -n $launcher ]]; then configure_args+=("-DCMAKE_CXX_COMPILER_LAUNCHER=$launcher"); fi

fail() {
  echo "package test ($mode) FAILED: $*" >&2
  exit 1
}

# Runs a consumer; it prints what it did, or why it failed.
run_consumer() {
  echo "+ $*"
  "$@" || fail "$1 exited $?"
}

install_keel() {
  prefix=$work/prefix
  "$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" ||
    { cat "$work/install.log"; fail "cmake --install"; }
  pc=$(find "$prefix" -name keel.pc -print -quit)
  [[ -n $pc ]] || fail "no keel.pc installed"
  libdir=$(dirname "$(dirname "$pc")")
}

check_installed_tree() {
  local file
  for file in include/keel/raft.h include/keel/version.h include/keel-sim/sim/sim_cluster.h \
    share/doc/keel/LICENSE; do
    [[ -f $prefix/$file ]] || fail "$file not installed"
  done
  for file in libkeel.a libkeel_sim.a "libkeel.so.$soname" "libkeel.so.$version" libkeel.so \
    cmake/keel/keelConfig.cmake cmake/keel/keelConfigVersion.cmake pkgconfig/keel-sim.pc; do
    [[ -e $libdir/$file ]] || fail "$libdir/$file not installed"
  done
  local actual
  actual=$(objdump -p "$libdir/libkeel.so" | awk '$1 == "SONAME" { print $2 }')
  [[ $actual == "libkeel.so.$soname" ]] || fail "soname is '$actual', expected libkeel.so.$soname"
  # The public headers reach nothing outside include/keel and the standard library.
  if grep -rnE '^\s*#\s*include\s*[<"](asio|openssl|core/|runtime/|storage/|transport/|sim/)' \
    "$prefix/include/keel"; then
    fail "a public header includes Asio, OpenSSL or an internal header (above)"
  fi
  # Asio is compiled into the TCP transport; an application's own Asio must
  # not see it (cmake/keel.map). (Whole outputs are captured before grep:
  # grep -q would stop reading early and fail the pipe under pipefail.)
  local exported
  exported=$(nm -D --defined-only -C "$libdir/libkeel.so")
  if grep -E ' asio::' <<<"$exported"; then fail "libkeel.so exports Asio symbols (above)"; fi
  grep -q 'keel::Raft::open' <<<"$exported" || fail "libkeel.so does not export keel::Raft::open"
}

case $mode in
  find_package)
    install_keel
    check_installed_tree
    "$cmake" -S "$source/tests/package/find_package" -B "$work/consumer" "${configure_args[@]}" \
      "-DCMAKE_PREFIX_PATH=$prefix" "-DKEEL_EXPECTED_VERSION=$version" >"$work/configure.log" ||
      { cat "$work/configure.log"; fail "configuring the find_package consumer"; }
    "$cmake" --build "$work/consumer" -j "$jobs" || fail "building the find_package consumer"
    # The shared consumer must run on the libkeel.so just installed.
    local_libs=$(ldd "$work/consumer/keel-consumer-shared")
    grep -q "$libdir/libkeel.so.$soname" <<<"$local_libs" ||
      { echo "$local_libs"; fail "keel-consumer-shared does not load $libdir/libkeel.so.$soname"; }
    if grep 'libkeel\.so' <<<"$(ldd "$work/consumer/keel-consumer-static")"; then
      fail "keel-consumer-static loads libkeel.so"
    fi
    # keel::sim links the keel::keel find_package chose: the shared library.
    grep -q "$libdir/libkeel.so.$soname" <<<"$(ldd "$work/consumer/keel-sim-consumer")" ||
      fail "keel-sim-consumer does not load $libdir/libkeel.so.$soname"
    run_consumer "$work/consumer/keel-consumer-shared" "$version"
    run_consumer "$work/consumer/keel-consumer-static" "$version"
    run_consumer "$work/consumer/keel-sim-consumer"
    # A version the package must refuse: the next minor version while the
    # major is 0 (any 0.y may break), the next major after.
    IFS=. read -r major minor _ <<<"$version"
    if ((major == 0)); then too_new="0.$((minor + 1))"; else too_new="$((major + 1)).0"; fi
    if "$cmake" -S "$source/tests/package/find_package" -B "$work/too-new" "${configure_args[@]}" \
      "-DCMAKE_PREFIX_PATH=$prefix" "-DKEEL_EXPECTED_VERSION=$too_new" >"$work/too-new.log" 2>&1; then
      fail "find_package(keel $too_new) accepted keel $version"
    fi
    ;;
  pkg_config)
    install_keel
    export PKG_CONFIG_PATH=$libdir/pkgconfig
    actual=$(pkg-config --modversion keel) || fail "pkg-config does not find keel"
    [[ $actual == "$version" ]] || fail "pkg-config says keel $actual, expected $version"
    strict=(-std=c++20 -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Werror)
    read -ra cflags <<<"$(pkg-config --cflags keel)"
    read -ra libs <<<"$(pkg-config --libs keel)"
    echo "+ pkg-config --cflags --libs keel: ${cflags[*]} ${libs[*]}"
    $launcher "$cxx" "${strict[@]}" "${cflags[@]}" "$source/tests/package/consumer/keel_consumer.cc" \
      -o "$work/keel-consumer" "${libs[@]}" "-Wl,-rpath,$libdir" || fail "compiling with pkg-config's flags"
    run_consumer "$work/keel-consumer" "$version"
    read -ra sim_cflags <<<"$(pkg-config --cflags keel-sim)"
    read -ra sim_libs <<<"$(pkg-config --libs keel-sim)"
    $launcher "$cxx" -std=c++20 "${sim_cflags[@]}" "$source/tests/package/consumer/sim_consumer.cc" \
      -o "$work/keel-sim-consumer" "${sim_libs[@]}" "-Wl,-rpath,$libdir" ||
      fail "compiling the simulator consumer with pkg-config's flags"
    run_consumer "$work/keel-sim-consumer"
    ;;
  subproject)
    # No build type: keel builds at -O0 without debug information, which
    # compiles quickest (and lets ccache reuse objects across the two runs).
    for via in add_subdirectory FetchContent; do
      echo "+ keel by $via"
      rm -rf "$work/consumer"
      "$cmake" -S "$source/tests/package/subdirectory" -B "$work/consumer" "${configure_args[@]}" \
        "-DKEEL_SOURCE_DIR=$source" "-DKEEL_VIA=$via" >"$work/configure-$via.log" ||
        { cat "$work/configure-$via.log"; fail "configuring the $via consumer"; }
      # The whole project: keel adds only the library it links to it.
      "$cmake" --build "$work/consumer" -j "$jobs" >"$work/build-$via.log" ||
        { tail -50 "$work/build-$via.log"; fail "building the $via consumer"; }
      extra=$(find "$work/consumer" -name 'libkeel.so*' -o -name 'libkeel_sim.a' -o -name 'keel-sim')
      [[ -z $extra ]] || fail "keel as a subproject built more than the project links: $extra"
      run_consumer "$work/consumer/keel-consumer" "$version"
    done
    ;;
  *)
    fail "unknown mode '$mode'"
    ;;
esac

trap - ERR
rm -rf "$work"
echo "package test ($mode) passed"
