# songda_add_test(NAME <name> LABEL <unit|integration|e2e> SOURCES <files...> LIBS <targets...>)
# Declares one GoogleTest executable and registers its tests with ctest under a label,
# so `ctest -L unit` runs the tier that needs no services.
include(GoogleTest)
function(songda_add_test)
  cmake_parse_arguments(T "" "NAME;LABEL" "SOURCES;LIBS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gmock GTest::gtest_main)
  target_include_directories(${T_NAME} PRIVATE ${SONGDA_INCLUDE_ROOT})
  gtest_discover_tests(${T_NAME} PROPERTIES LABELS ${T_LABEL} DISCOVERY_TIMEOUT 30)
  # `ninja <label>_tests` builds just one tier (the sanitizer build needs only the unit tier).
  if(NOT TARGET ${T_LABEL}_tests)
    add_custom_target(${T_LABEL}_tests)
  endif()
  add_dependencies(${T_LABEL}_tests ${T_NAME})
endfunction()
