# Tests of the serial-bound certificate profile (issue 2).
set(TM_PROFILE_TEST_UTIL unit/test_profile_util.c)

tm_add_unit(test_profile_serial SOURCES unit/test_profile_serial.c LIBS tokenmint-profile)
tm_add_unit(test_profile_roundtrip SOURCES unit/test_profile_roundtrip.c ${TM_PROFILE_TEST_UTIL}
            LIBS tokenmint-profile)
tm_add_unit(test_profile_violations SOURCES unit/test_profile_violations.c ${TM_PROFILE_TEST_UTIL}
            LIBS tokenmint-profile)
tm_add_unit(test_profile_config SOURCES unit/test_profile_config.c ${TM_PROFILE_TEST_UTIL}
            LIBS tokenmint-profile)
tm_add_unit(test_profile_der SOURCES unit/test_profile_der.c ${TM_PROFILE_TEST_UTIL}
            LIBS tokenmint-profile)

# A test-only command line over the library, for the shell tests.
add_executable(profile-check unit/profile_check_cli.c)
target_link_libraries(profile-check PRIVATE tokenmint-profile)
tm_add_e2e(profile_openssl_ca profile_openssl_ca.sh profile)
set_property(TEST profile_openssl_ca APPEND PROPERTY ENVIRONMENT
             "TM_PROFILE_CHECK=$<TARGET_FILE:profile-check>")

# Benchmark (built, never run by ctest): cost of the profile at signing time.
add_executable(bench_profile bench/bench_profile.c)
target_link_libraries(bench_profile PRIVATE tokenmint-profile)
