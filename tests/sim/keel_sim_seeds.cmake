# keel-sim under ctest (docs/simulation.md).
#
# Label `sim`: a fixed set of seeds of the full swarm (every fault allowed,
# each seed picks its own mix), 3- and 5-server clusters, split into ctests of
# equal size so that `ctest -j` spreads them over the cores. Measured on the
# 2-core CI machine (RelWithDebInfo): see BENCHMARKS.md, "Simulator". The
# sanitizer and Debug builds run a tenth of the seeds: they are 5 to 30 times
# slower, and their job is to find memory and threading errors on the
# simulator's paths, which a tenth of the seeds covers.
#
# Label `canary` (only in builds with -DKEEL_CANARIES=ON, `make test-canary`):
# one ctest per deliberately broken rule (src/core/canary.h), passing only if
# keel-sim catches it within a fixed budget of seeds. Each uses the faults
# that expose its rule; the budget is several times the seeds it took to be
# caught when measured, so that the test stays reliable as the code moves.

if(KEEL_SANITIZE OR CMAKE_BUILD_TYPE STREQUAL "Debug")
  set(keel_sim_default_percent 10)
else()
  set(keel_sim_default_percent 100)
endif()
set(KEEL_SIM_SEED_PERCENT "${keel_sim_default_percent}" CACHE STRING
    "Percent of the keel-sim seeds that ctest label `sim` runs (100 in release-like builds)")

set(keel_sim_out "${CMAKE_CURRENT_BINARY_DIR}/keel-sim-reports")

# keel_sim_seed_tests(<prefix> <nodes> <ops> <tests> <seeds per test> <first seed> [args...])
function(keel_sim_seed_tests prefix nodes ops tests seeds_per_test first)
  math(EXPR seeds "(${seeds_per_test} * ${KEEL_SIM_SEED_PERCENT} + 99) / 100")
  math(EXPR last_test "${tests} - 1")
  foreach(i RANGE ${last_test})
    math(EXPR from "${first} + ${i} * ${seeds_per_test}")
    math(EXPR to "${from} + ${seeds} - 1")
    add_test(NAME ${prefix}_${i}
             COMMAND $<TARGET_FILE:keel-sim> --seeds ${from}..${to} --nodes ${nodes}
                     --ops ${ops} --out ${keel_sim_out} ${ARGN})
    set_tests_properties(${prefix}_${i} PROPERTIES LABELS sim TIMEOUT 900)
  endforeach()
endfunction()

keel_sim_seed_tests(keel_sim_3_nodes 3 1000 5 600 1)
keel_sim_seed_tests(keel_sim_5_nodes 5 1000 5 400 100001)
# The durable stores (write-ahead log, file stable store) on simulated disks.
keel_sim_seed_tests(keel_sim_disk 3,5 1000 1 400 200001 --storage disk)

if(KEEL_CANARIES)
  # keel_sim_canary(<canary> <nodes> <faults> <budget>)
  function(keel_sim_canary canary nodes faults budget)
    add_test(NAME canary_${canary}
             COMMAND $<TARGET_FILE:keel-sim> --canary ${canary} --seeds 1..${budget}
                     --nodes ${nodes} --faults ${faults} --expect-violation
                     --out ${keel_sim_out}/canary)
    set_tests_properties(canary_${canary} PROPERTIES LABELS canary TIMEOUT 900)
  endfunction()

  # Measured catch rates (seeds 1..400 or 1..600, each run alone) in
  # brackets; each budget expects well over ten catches.
  keel_sim_canary(figure8-commit 3 leader-churn,isolate-leader,delay,link-delay 600)  # [3 %]
  keel_sim_canary(read-without-term-start 3 isolate-leader,leader-churn,delay 200)    # [14 %]
  keel_sim_canary(ack-before-persist 3 crash,disk,isolate-leader,leader-churn 300)    # [6 %]
  keel_sim_canary(no-follower-commit-clamp 3 swarm 50)                                # [56 %]
  keel_sim_canary(vote-before-persist 3 election-crash,disk,halves,isolate,isolate-leader 1500)  # [1.3 %]
  keel_sim_canary(no-check-quorum-step-down 3 one-way 100)                            # [21 %]
endif()
