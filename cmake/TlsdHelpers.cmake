# tlsd_cc_test(NAME SRCS ... DEPS ... [LABELS ...]) — the one way to declare a
# GoogleTest binary (cf. absl_cc_test). Tests are discovered at test time so a
# cross-built binary list is not needed at configure time.
function(tlsd_cc_test NAME)
  cmake_parse_arguments(T "" "" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${NAME} ${T_SRCS})
  target_link_libraries(${NAME} PRIVATE ${T_DEPS} GTest::gtest_main GTest::gmock)
  gtest_discover_tests(${NAME}
    DISCOVERY_MODE PRE_TEST
    TEST_PREFIX "${NAME}."
    PROPERTIES LABELS "${T_LABELS}"
    DISCOVERY_TIMEOUT 30)
endfunction()
