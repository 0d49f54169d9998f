# Runs `keel-sim check-history` once and fails unless its exit status and
# output are the expected ones (check_history_tests.cmake). Variables:
#   KEEL_SIM         the keel-sim binary
#   HISTORY          the FILE argument ("-": standard input)
#   STDIN            the file fed to standard input (optional)
#   EXTRA_ARGS       more arguments, separated by spaces (optional)
#   EXPECTED_EXIT    the exact exit status
#   EXPECTED_OUTPUT  a regex for stdout (exit 0 or 1) or stderr (exit 2)

separate_arguments(extra_args UNIX_COMMAND "${EXTRA_ARGS}")
set(input_file)
if(STDIN)
  set(input_file INPUT_FILE "${STDIN}")
endif()
execute_process(COMMAND "${KEEL_SIM}" check-history "${HISTORY}" ${extra_args}
                ${input_file}
                RESULT_VARIABLE exit_status
                OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
set(shown "--- stdout ---\n${out}--- stderr ---\n${err}")
if(NOT exit_status STREQUAL "${EXPECTED_EXIT}")
  message(FATAL_ERROR "exit status ${exit_status}, expected ${EXPECTED_EXIT}\n${shown}")
endif()
if(EXPECTED_EXIT EQUAL 2)
  set(checked "${err}")
  set(other "${out}")
else()
  set(checked "${out}")
  set(other "${err}")
endif()
if(NOT checked MATCHES "${EXPECTED_OUTPUT}")
  message(FATAL_ERROR "output does not match '${EXPECTED_OUTPUT}'\n${shown}")
endif()
# Verdicts go to stdout and errors to stderr, never both.
if(NOT other STREQUAL "")
  message(FATAL_ERROR "unexpected output on the other stream\n${shown}")
endif()
message(STATUS "exit status ${exit_status} as expected\n${shown}")
