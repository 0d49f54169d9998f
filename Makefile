# keel: `make test` and `make run` are the two commands a fresh clone needs.
# Each build flavour has its own folder; all are configured with Ninja.

SHELL := /bin/bash

# `make run` starts a 3-process keel-kv cluster (scripts/kv-cluster.sh);
# `make demo` the walkthrough of the pure core in one process.
DEMO_BIN := build/bin/keel-demo

JOBS ?= 2
# -Werror only under CI (CI=true), so a newer compiler's new warning does not
# stop a local build.
WERROR := $(if $(CI),ON,OFF)
# Per-test limit in seconds; a test may set its own TIMEOUT property instead.
CTEST_TIMEOUT ?= 600
CTEST_FLAGS := --output-on-failure -j$(JOBS) --timeout $(CTEST_TIMEOUT)

, := ,
SOURCE_DIRS := $(wildcard include src tests bench apps examples fuzz)
SOURCES = $(shell find $(SOURCE_DIRS) -name '*.h' -o -name '*.cc')

# $(call configure,DIR,CMAKE_ARGS[,ENV]): configure DIR, or re-apply
# CMAKE_ARGS to an existing DIR (a reused folder must not keep options the
# target no longer passes, such as -Werror under CI=true; ENV, the
# compiler, only counts for a new folder: `make clean` to change it).
define configure
	@if [ -f $(1)/build.ninja ]; then cmake -S . -B $(1) $(2) >/dev/null; \
	 else $(3) cmake -S . -B $(1) -G Ninja $(2); fi
endef

.PHONY: all deps configure build test run run-clean demo clean format format-check tidy test-clang test-asan test-tsan \
        test-canary sim-long fuzz bench bench-report install test-package docs docs-check

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	$(call configure,build,-DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEEL_WERROR=$(WERROR))

build: configure
	cmake --build build -j$(JOBS)

test: build
	ctest --test-dir build $(CTEST_FLAGS)

run: build
	@bash scripts/kv-cluster.sh

run-clean: build
	@bash scripts/kv-cluster.sh --clean

demo: build
	$(DEMO_BIN)

# Sanitizer builds compile at -O1 with line tables only (-g1): what the
# sanitizers are meant to run at, and much less compile time than -O2 -g.
# Their keel-kv chaos runs are shorter (the release build's are 20 s each).
SANITIZER_BUILD := -DCMAKE_BUILD_TYPE=RelWithDebInfo '-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG' \
  -DKEEL_KV_CHAOS_SECONDS=10 \
  -DKEEL_BUILD_BENCH=OFF

# clang 14 with ThreadSanitizer and -Werror: a second compiler's warnings,
# and data races between the runtime's threads, executors and observers, in
# one build (CI's time budget has room for one clang build).
test-clang: deps
	$(call configure,build-clang,$(SANITIZER_BUILD) -DKEEL_SANITIZE=thread -DKEEL_WERROR=$(WERROR),CC=clang CXX=clang++)
	cmake --build build-clang -j$(JOBS)
	ctest --test-dir build-clang $(CTEST_FLAGS)

# GCC with AddressSanitizer and UndefinedBehaviorSanitizer. No -Werror here:
# GCC warns spuriously under -fsanitize (its manual says so).
test-asan: deps
	$(call configure,build-asan,$(SANITIZER_BUILD) -DKEEL_SANITIZE=address$(,)undefined)
	cmake --build build-asan -j$(JOBS)
	UBSAN_OPTIONS=print_stacktrace=1 ctest --test-dir build-asan $(CTEST_FLAGS)

# GCC with ThreadSanitizer (CI runs clang's, in test-clang).
test-tsan: deps
	$(call configure,build-tsan,$(SANITIZER_BUILD) -DKEEL_SANITIZE=thread)
	cmake --build build-tsan -j$(JOBS)
	ctest --test-dir build-tsan $(CTEST_FLAGS)

# The simulator's canaries: rules of the protocol broken on purpose
# (src/core/canary.h, compiled in only here), each of which keel-sim must
# catch within a fixed budget of seeds (tests/sim/keel_sim_seeds.cmake).
test-canary: deps
	$(call configure,build-canary,-DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEEL_CANARIES=ON -DKEEL_WERROR=$(WERROR) -DKEEL_BUILD_BENCH=OFF)
	cmake --build build-canary -j$(JOBS) --target keel-sim core_membership_canary_tests keel-kv-chaos
	ctest --test-dir build-canary $(CTEST_FLAGS) -L canary

# libFuzzer targets (fuzz/) for the network decoders: built with clang,
# AddressSanitizer and UndefinedBehaviorSanitizer, each run for FUZZ_SECONDS
# from its seed corpus (new inputs go to build-fuzz/corpus, the repository's
# corpus is only read). A crash or sanitizer report fails, leaving the input
# in build-fuzz/artifacts/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := tcp_frame tcp_handshake codec
fuzz: deps
	$(call configure,build-fuzz,-DCMAKE_BUILD_TYPE=RelWithDebInfo '-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g' -DKEEL_FUZZ=ON -DKEEL_SANITIZE=address$(,)undefined -DKEEL_WERROR=$(WERROR),CC=clang CXX=clang++)
	cmake --build build-fuzz -j$(JOBS)
	@mkdir -p build-fuzz/artifacts
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  build-fuzz/bin/keel-fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/artifacts/$$t- build-fuzz/corpus/$$t fuzz/corpus/$$t 2>&1 \
	    | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|INFO: Seed|.*ERROR)' ; \
	  test $${PIPESTATUS[0]} -eq 0; \
	done

# Seeds of the simulator until interrupted (or SIM_COUNT of them), from a
# random start unless SIM_START is given; each seed draws its cluster's shape
# unless SIM_NODES fixes the voters (e.g. SIM_NODES=3,5).
# Failures leave reports in sim-reports/. Example:
#   make sim-long SIM_COUNT=100000 SIM_ARGS="--ops 1000"
SIM_START ?= $(shell od -An -N4 -tu4 /dev/urandom | tr -d ' ')
SIM_NODES ?=
sim-long: build
	@echo "keel-sim from seed $(SIM_START) (each failure prints its replay command)"
	set -o pipefail; build/bin/keel-sim --seeds $(SIM_START).. $(if $(SIM_NODES),--nodes $(SIM_NODES)) \
	  $(if $(SIM_COUNT),--count $(SIM_COUNT)) --out sim-reports $(SIM_ARGS) | grep -v ' ok$$'

# Installs keel (headers, libkeel.a and libkeel.so, the CMake package, keel.pc
# and the sim component) under PREFIX; `make test-package` builds and runs
# small consumer projects against an install of its own (ctest label package).
PREFIX ?= /usr/local
install: build
	cmake --install build --prefix $(PREFIX)

test-package: build
	ctest --test-dir build -L package --output-on-failure

# The cluster benchmark's standard set (BENCHMARKS.md, "Cluster"), about 8
# minutes on 2 cores: 3 processes, memory and WAL logs, 1 to 128 clients,
# reads, the machine's floor; into bench/results/cluster.jsonl, then the
# tables and the chart (bench-report: bench/results/cluster.{md,png}).
bench: build
	@bash scripts/bench.sh run

bench-report: deps
	@bash scripts/bench.sh report

clean:
	rm -rf build build-clang build-asan build-tsan build-canary build-fuzz

format:
	@clang-format -i $(SOURCES)

# Fails, naming each file and line, when `make format` would change anything.
format-check:
	@clang-format --dry-run --Werror $(SOURCES) && echo "format-check: $(words $(SOURCES)) files formatted"

# The API reference: Doxygen (docs/Doxyfile) over include/keel/, the
# keel/version.h that configuring writes, and the guides in docs/, into
# build/docs/html/index.html. Any warning fails it.
docs: configure
	@mkdir -p build/docs
	(cat docs/Doxyfile; echo "INPUT += build/generated/include/keel/version.h") | doxygen -
	@echo "docs: build/docs/html/index.html"

# Every C++ block in docs/*.md and README.md is a copy of a file the build
# compiles (tests/docs/check_snippets.sh; ctest runs it as docs_snippets).
docs-check:
	@bash tests/docs/check_snippets.sh

# clang-tidy over src/ with .clang-tidy, which makes every finding an error:
# the target fails on any (pipefail keeps clang-tidy's exit status through the
# sed). One process, so a finding in a header is reported once; about 4
# minutes on 2 cores. The sed drops clang-tidy's "N warnings generated." lines
# (system headers).
tidy: configure
	set -o pipefail; clang-tidy -p build --quiet $(sort $(shell find src -name '*.cc')) 2>&1 \
	  | sed '/warnings generated\.$$/d'
