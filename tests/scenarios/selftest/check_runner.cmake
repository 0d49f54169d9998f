# Checks keel-scenario's failure path and its rewrite mode (ctest
# scenario_runner_reports_diff_and_rewrites). Run with cmake -P and
# -DRUNNER=<keel-scenario> -DSCRIPT=<script with a wrong expectation>
# -DWORK_DIR=<scratch folder>.
foreach(var RUNNER SCRIPT WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_runner.cmake: -D${var}=... is required")
  endif()
endforeach()

# 1. A wrong expectation: exit code 1 (not a crash, not a script error) and a
#    diff naming the command, its line, the expected and the actual line;
#    only the deliberately wrong block differs.
execute_process(COMMAND "${RUNNER}" "${SCRIPT}" RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
if(NOT rc EQUAL 1)
  message(FATAL_ERROR "expected exit code 1 for a mismatch, got '${rc}'\n${out}\n${err}")
endif()
foreach(needle "wrong_expectation.txt:11: output differs for 'leader'" "--- expected"
               "+++ actual" "\n- 1\n" "\n+ none\n" "1 of 2 blocks differ")
  string(FIND "${out}" "${needle}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the mismatch report lacks '${needle}':\n${out}")
  endif()
endforeach()

# 2. --rewrite on a copy writes the actual output; the copy then passes, and
#    its comments survive.
file(MAKE_DIRECTORY "${WORK_DIR}")
set(copy "${WORK_DIR}/rewritten.txt")
file(COPY_FILE "${SCRIPT}" "${copy}")
execute_process(COMMAND "${RUNNER}" --rewrite "${copy}" RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "--rewrite failed with '${rc}'\n${out}\n${err}")
endif()
execute_process(COMMAND "${RUNNER}" "${copy}" RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the rewritten script does not pass ('${rc}')\n${out}\n${err}")
endif()
file(READ "${copy}" text)
string(FIND "${text}" "# Selftest of keel-scenario itself" at)
if(at EQUAL -1)
  message(FATAL_ERROR "--rewrite lost the comments:\n${text}")
endif()

# 3. A malformed script is a script error (exit code 2), not a pass.
set(bad "${WORK_DIR}/malformed.txt")
file(WRITE "${bad}" "add-nodes 3\n----\n\nno-such-command\n----\n")
execute_process(COMMAND "${RUNNER}" "${bad}" RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "expected exit code 2 for an unknown command, got '${rc}'\n${out}\n${err}")
endif()
