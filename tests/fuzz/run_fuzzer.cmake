# Runs one libFuzzer binary for a fixed time on a fresh copy of its seed corpus
# (so the committed seeds are never modified). Invoked by the fuzz_* ctests:
#   cmake -DFUZZER=... -DSEED_DIR=... -DWORK_DIR=... -DSECONDS=... [-DARGS=...]
#         [-DDICT=...] -P run_fuzzer.cmake
# Every seed runs first, so a committed crash reproducer fails at once. Any
# crash, sanitizer report, oracle abort, timeout or OOM makes libFuzzer exit
# non-zero, and this script then fails the test. Left in ${WORK_DIR}:
#   artifacts/   the crashing input (crash-*, timeout-*, oom-*, leak-*)
#   fuzz.log     libFuzzer's whole output
#   summary.txt  one line: executions, coverage, features, corpus size
foreach(var FUZZER SEED_DIR WORK_DIR SECONDS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${var}= is required")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}/corpus")
file(REMOVE "${WORK_DIR}/summary.txt")
file(MAKE_DIRECTORY "${WORK_DIR}/corpus" "${WORK_DIR}/artifacts")
file(COPY "${SEED_DIR}/" DESTINATION "${WORK_DIR}/corpus")
set(dict_arg)
if(DICT)
  set(dict_arg -dict=${DICT})
endif()

get_filename_component(name "${FUZZER}" NAME)
execute_process(
  COMMAND "${FUZZER}" -max_total_time=${SECONDS} -print_final_stats=1
          -artifact_prefix=${WORK_DIR}/artifacts/ ${dict_arg} ${ARGS} "${WORK_DIR}/corpus"
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE out)
file(WRITE "${WORK_DIR}/fuzz.log" "${out}")

# The figures for the CI log: libFuzzer's final stats (stat::...) and the
# coverage of the last status line ("#N DONE cov: C ft: F corp: ...").
string(REGEX MATCH "stat::number_of_executed_units: *[0-9]+" execs "${out}")
string(REGEX MATCHALL "#[0-9]+[ \t]+[A-Z]+[ \t]+cov: [0-9]+ ft: [0-9]+ corp: [^ ]+" status "${out}")
list(POP_BACK status last)
string(REGEX MATCH "cov: [0-9]+ ft: [0-9]+ corp: [^ ]+" last "${last}")
set(summary "${name}: ${execs} ${last} (${SECONDS} s, exit ${rc})")
file(WRITE "${WORK_DIR}/summary.txt" "${summary}\n")

if(NOT rc EQUAL 0)
  # The crash report is at the end; the whole output is in fuzz.log.
  string(REGEX MATCHALL "[^\n]*\n" lines "${out}")
  list(LENGTH lines n)
  if(n GREATER 200)
    math(EXPR from "${n} - 200")
    list(SUBLIST lines ${from} 200 lines)
  endif()
  string(JOIN "" tail ${lines})
  message("${tail}")
  message(FATAL_ERROR "${summary}\n${FUZZER} failed; crashing input in ${WORK_DIR}/artifacts/, "
                      "whole output in ${WORK_DIR}/fuzz.log")
endif()
message("${summary}")
