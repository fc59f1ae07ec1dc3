# Runs one libFuzzer binary for a fixed time on a fresh copy of its seed corpus
# (so the committed seeds are never modified). Invoked by the fuzz_* ctests:
#   cmake -DFUZZER=... -DSEED_DIR=... -DWORK_DIR=... -DSECONDS=... [-DARGS=...] -P run_fuzzer.cmake
# Crashing inputs are left in ${WORK_DIR}/artifacts/.
foreach(var FUZZER SEED_DIR WORK_DIR SECONDS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${var}= is required")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}/corpus")
file(MAKE_DIRECTORY "${WORK_DIR}/corpus" "${WORK_DIR}/artifacts")
file(COPY "${SEED_DIR}/" DESTINATION "${WORK_DIR}/corpus")

execute_process(
  COMMAND "${FUZZER}" -max_total_time=${SECONDS} -print_final_stats=1
          -artifact_prefix=${WORK_DIR}/artifacts/ ${ARGS} "${WORK_DIR}/corpus"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} exited with ${rc}; crashing input in ${WORK_DIR}/artifacts/")
endif()
