# Shared CMake helpers for rla. No download steps here: every dependency is a Debian package.

function(rla_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()

# rla_add_test(NAME <binary> LABEL <ctest label> SOURCES <files...>)
# Builds one GoogleTest binary and registers each of its tests with ctest under LABEL.
function(rla_add_test)
  cmake_parse_arguments(ARG "" "NAME;LABEL;TIMEOUT" "SOURCES" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE rla_core GTest::gtest GTest::gtest_main)
  target_precompile_headers(${ARG_NAME} REUSE_FROM rla_core)
  target_compile_definitions(${ARG_NAME} PRIVATE
    RLA_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    RLA_FIXTURES_DIR="${PROJECT_SOURCE_DIR}/tests/fixtures"
    RLA_BINARY="$<TARGET_FILE:rla>")
  rla_set_warnings(${ARG_NAME})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  gtest_discover_tests(${ARG_NAME} DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS ${ARG_LABEL} TIMEOUT ${ARG_TIMEOUT})
endfunction()
