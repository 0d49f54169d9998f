# keel-sim under ctest (docs/simulation.md).
#
# Label `sim`: a fixed set of seeds of the full swarm (every fault allowed,
# each seed picks its own mix and its cluster's shape), split into ctests of
# equal size so that `ctest -j` spreads them over the cores. Measured on the
# 2-core CI machine (RelWithDebInfo): see BENCHMARKS.md, "Simulator". The
# AddressSanitizer and Debug builds run a twenty-fifth of the seeds (200 of
# the swarm, 16 on disks): they are 5 to 30 times slower, and their job is
# to find memory errors on the simulator's paths, which that many seeds
# cover (the release build runs them all for the protocol's sake);
# ThreadSanitizer builds run a fiftieth (see below).
#
# Label `canary` (only in builds with -DKEEL_CANARIES=ON, `make test-canary`):
# one ctest per deliberately broken rule (src/core/canary.h), passing only if
# keel-sim catches it within a fixed budget of seeds, as a safety violation
# (liveness rules: any violation). All but two run the default swarm; the
# budget expects several catches at the measured rate, so that the test
# stays reliable as the code moves.

if(KEEL_SANITIZE STREQUAL "thread")
  # The simulator runs every server on one thread: ThreadSanitizer has no
  # race to find in it, only the code paths, which a few seeds cover.
  set(keel_sim_default_percent 2)
elseif(KEEL_SANITIZE OR CMAKE_BUILD_TYPE STREQUAL "Debug")
  set(keel_sim_default_percent 4)
else()
  set(keel_sim_default_percent 100)
endif()
set(KEEL_SIM_SEED_PERCENT "${keel_sim_default_percent}" CACHE STRING
    "Percent of the keel-sim seeds that ctest label `sim` runs (100 in release-like builds)")

set(keel_sim_out "${CMAKE_CURRENT_BINARY_DIR}/keel-sim-reports")

# keel_sim_seed_tests(<prefix> <ops> <tests> <seeds per test> <first seed> [args...])
function(keel_sim_seed_tests prefix ops tests seeds_per_test first)
  math(EXPR seeds "(${seeds_per_test} * ${KEEL_SIM_SEED_PERCENT} + 99) / 100")
  math(EXPR last_test "${tests} - 1")
  foreach(i RANGE ${last_test})
    math(EXPR from "${first} + ${i} * ${seeds_per_test}")
    math(EXPR to "${from} + ${seeds} - 1")
    add_test(NAME ${prefix}_${i}
             COMMAND $<TARGET_FILE:keel-sim> --seeds ${from}..${to} --ops ${ops}
                     --out ${keel_sim_out} ${ARGN})
    set_tests_properties(${prefix}_${i} PROPERTIES LABELS sim TIMEOUT 900)
  endforeach()
endfunction()

# The default swarm: each seed draws its cluster's shape (1, 3 or 5 voters,
# 0 to 2 learners), its faults and their rates, and its Config.
keel_sim_seed_tests(keel_sim_swarm 1000 10 500 1)
# The durable stores (write-ahead log, file stable store) on simulated disks.
keel_sim_seed_tests(keel_sim_disk 1000 1 400 200001 --storage disk)

if(KEEL_CANARIES)
  # keel_sim_canary(<canary> <budget> [keel-sim arguments...])
  # Without arguments the canary runs the default swarm (cluster shapes,
  # faults and rates drawn per seed) and must be caught as a safety
  # violation; see docs/simulation.md, "Canaries".
  function(keel_sim_canary canary budget)
    add_test(NAME canary_${canary}
             COMMAND $<TARGET_FILE:keel-sim> --canary ${canary} --seeds 1..${budget} --ops 1000
                     --out ${keel_sim_out}/canary ${ARGN})
    set_tests_properties(canary_${canary} PROPERTIES LABELS canary TIMEOUT 900)
  endfunction()

  # Measured catch rates (share of seeds 1..N that catch it, each canary
  # alone, default swarm unless a fault list is given) in brackets; each
  # budget expects at least five catches.
  keel_sim_canary(figure8-commit 600 --nodes 3 --faults leader-churn,isolate-leader,delay,link-delay
                  --expect-violation safety)                                          # [6 %]
  keel_sim_canary(read-without-term-start 50 --expect-violation safety)               # [48 %]
  keel_sim_canary(ack-before-persist 20 --expect-violation safety)                    # [~100 %]
  keel_sim_canary(no-follower-commit-clamp 50 --expect-violation safety)              # [~100 %]
  keel_sim_canary(vote-before-persist 20 --expect-violation safety)                   # [~100 %]
  # A liveness rule: caught through liveness, with the fault that exposes it.
  keel_sim_canary(no-check-quorum-step-down 100 --nodes 3 --faults one-way
                  --expect-violation any)                                             # [17 %]
  keel_sim_canary(send-before-term-durable 200 --expect-violation safety)             # [8 %]
  keel_sim_canary(read-id-reuse-after-restart 1500 --expect-violation safety)         # [0.8 %]
  keel_sim_canary(step-before-tick-catch-up 300 --expect-violation safety)            # [5 %]
  keel_sim_canary(read-without-confirmation 50 --expect-violation safety)             # [85 %]
  keel_sim_canary(read-confirmed-by-earlier-round 50 --expect-violation safety)       # [75 %]
  keel_sim_canary(lease-from-ack-time 100 --expect-violation safety)                  # [12 %]
  keel_sim_canary(lease-without-drift-margin 50 --expect-violation safety)            # [24 %]
  keel_sim_canary(election-timer-not-reset 100 --expect-violation safety)             # [16 %]
  keel_sim_canary(install-keeps-conflicting-log 200 --expect-violation safety)        # [4.8 %]
  keel_sim_canary(compact-past-snapshot 100 --expect-violation safety)                # [13 %]
  keel_sim_canary(snapshot-inside-restore 300 --expect-violation safety)              # [5 %]
  # Membership: caught through the membership churn of half the seeds (the
  # first two through its split changes).
  keel_sim_canary(config-change-without-term-commit 250 --expect-violation safety)    # [4.5 %]
  keel_sim_canary(joint-single-majority 250 --expect-violation safety)                # [4.5 %]
  keel_sim_canary(removed-server-votes 50 --expect-violation safety)                  # [30 %]
endif()
