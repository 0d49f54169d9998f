# ctests of `keel-sim check-history` as a script would run it: each runs the
# binary through run_check_history.cmake, which fails the test unless the
# exit status is exactly the expected one (a parse error, 2, must not pass
# for a violation, 1) and the output matches.

set(keel_histories "${CMAKE_CURRENT_SOURCE_DIR}/histories")

# keel_check_history_test(<name> <exit status> <file or -> <regex>
#                         [STDIN <file>] [ARGS "<more arguments>"])
# <regex> must match the output (stdout for 0 and 1, stderr for 2).
function(keel_check_history_test name exit_status file regex)
  cmake_parse_arguments(PARSE_ARGV 4 arg "" "STDIN;ARGS" "")
  add_test(NAME keel_sim_check_history_${name}
           COMMAND ${CMAKE_COMMAND}
                   -DKEEL_SIM=$<TARGET_FILE:keel-sim>
                   -DHISTORY=${file}
                   -DSTDIN=${arg_STDIN}
                   "-DEXTRA_ARGS=${arg_ARGS}"
                   -DEXPECTED_EXIT=${exit_status}
                   "-DEXPECTED_OUTPUT=${regex}"
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/run_check_history.cmake)
  set_tests_properties(keel_sim_check_history_${name} PROPERTIES LABELS sim TIMEOUT 60)
endfunction()

keel_check_history_test(linearizable 0 ${keel_histories}/linearizable.jsonl
  "^linearizable: 12 operations, 2 keys, [0-9]+ states\noutcomes: 10 ok, 1 failed, 1 unknown; stale reads \\(unchecked\\): 1\n$")
keel_check_history_test(not_linearizable 1 ${keel_histories}/not_linearizable.jsonl
  "^NOT linearizable: key=.k1.; 3 operations, 2 keys.*smallest failing history found:")
keel_check_history_test(not_linearizable_from_stdin 1 -
  "^NOT linearizable: key=.k1."
  STDIN ${keel_histories}/not_linearizable.jsonl)
keel_check_history_test(budget_exhausted_is_not_proven 1 ${keel_histories}/linearizable.jsonl
  "^not proven: budget exhausted \\(--max-states 1\\)"
  ARGS "--max-states 1")
keel_check_history_test(malformed 2 ${keel_histories}/malformed.jsonl
  "^keel-sim check-history: [^\n]*malformed.jsonl:3: missing .key.[^\n]*\n$")
keel_check_history_test(missing_file 2 ${keel_histories}/no-such-history.jsonl
  "^keel-sim check-history: [^\n]*no-such-history.jsonl: cannot read: [^\n]*\n$")
keel_check_history_test(bad_flag 2 ${keel_histories}/linearizable.jsonl
  "^keel-sim check-history: --max-states takes a positive integer, not 'many'\n$"
  ARGS "--max-states many")
