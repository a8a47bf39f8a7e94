# The module's write policy, derived PINs and audit log, tested on their own:
# the unit tests compile the sources directly so they do not wait on the
# module build. Also the test shim's own tests (tests/shim/, tests/lib/shim.sh).
set(TM_PKCS11_DIR ${PROJECT_SOURCE_DIR}/pkcs11)

tm_add_unit(test_policy
  SOURCES unit/test_policy.c ${TM_PKCS11_DIR}/policy.c
  LIBS tokenmint-p11client tokenmint-profile PkgConfig::P11KIT OpenSSL::Crypto)
target_include_directories(test_policy PRIVATE ${TM_PKCS11_DIR})

tm_add_unit(test_pin
  SOURCES unit/test_pin.c ${TM_PKCS11_DIR}/pin.c
  LIBS tokenmint-p11client OpenSSL::Crypto)
target_include_directories(test_pin PRIVATE ${TM_PKCS11_DIR})


# The shim through pkcs11-tool, and two shim copies inside one process.
tm_add_e2e(shim_basic shim_basic.sh shim)
tm_add_e2e(shim_inprocess shim_inprocess.sh shim)

# The policy against a real SoftHSM2 token: a cmocka program run by a script
# that makes the token.
add_executable(tm-policy-softhsm unit/policy_softhsm.c ${TM_PKCS11_DIR}/policy.c)
target_include_directories(tm-policy-softhsm PRIVATE ${TM_PKCS11_DIR})
target_link_libraries(tm-policy-softhsm PRIVATE PkgConfig::CMOCKA tokenmint-p11client tokenmint-profile
  PkgConfig::P11KIT OpenSSL::Crypto ${CMAKE_DL_LIBS})
tm_add_e2e(policy_softhsm policy_softhsm.sh)

# Fuzzing the write policy: arbitrary CKA_VALUE bytes. Seeds are made at
# build time through the profile library; the replay program (every seed,
# every truncation, a byte flip at every offset) runs on every compiler, the
# libFuzzer target for a bounded time with -DTOKENMINT_FUZZ=ON and clang.
set(TM_POLICY_SEEDS "${CMAKE_CURRENT_BINARY_DIR}/policy-seeds")
add_executable(policy-fuzz-corpus fuzz/policy_corpus.c)
target_link_libraries(policy-fuzz-corpus PRIVATE tokenmint-profile)
add_custom_command(
  OUTPUT "${TM_POLICY_SEEDS}/.stamp"
  COMMAND ${CMAKE_COMMAND} -E rm -rf "${TM_POLICY_SEEDS}"
  COMMAND ${CMAKE_COMMAND} -E make_directory "${TM_POLICY_SEEDS}"
  COMMAND policy-fuzz-corpus "${TM_POLICY_SEEDS}"
  COMMAND ${CMAKE_COMMAND} -E touch "${TM_POLICY_SEEDS}/.stamp"
  DEPENDS policy-fuzz-corpus
  COMMENT "Generating the write policy fuzz seeds")
add_custom_target(policy-fuzz-seeds ALL DEPENDS "${TM_POLICY_SEEDS}/.stamp")

add_executable(fuzz_policy_replay fuzz/fuzz_policy.c fuzz/replay_main.c ${TM_PKCS11_DIR}/policy.c)
target_include_directories(fuzz_policy_replay PRIVATE ${TM_PKCS11_DIR})
target_link_libraries(fuzz_policy_replay PRIVATE tokenmint-p11client tokenmint-profile PkgConfig::P11KIT OpenSSL::Crypto)
add_dependencies(fuzz_policy_replay policy-fuzz-seeds)
add_test(NAME policy_fuzz_replay COMMAND fuzz_policy_replay "${TM_POLICY_SEEDS}")
set_tests_properties(policy_fuzz_replay PROPERTIES LABELS "fuzz" TIMEOUT 300)

if(TOKENMINT_LIBFUZZER)
  add_executable(fuzz_policy fuzz/fuzz_policy.c ${TM_PKCS11_DIR}/policy.c)
  target_include_directories(fuzz_policy PRIVATE ${TM_PKCS11_DIR})
  target_compile_options(fuzz_policy PRIVATE -fsanitize=fuzzer,address,undefined
                                             -fno-sanitize-recover=undefined)
  target_link_options(fuzz_policy PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_policy PRIVATE tokenmint-p11client tokenmint-profile PkgConfig::P11KIT OpenSSL::Crypto)
  add_dependencies(fuzz_policy policy-fuzz-seeds)
  # new inputs go to a scratch directory emptied before each run: bounded time
  set(_tm_policy_fuzz_work "${CMAKE_CURRENT_BINARY_DIR}/policy-fuzz-work")
  add_test(NAME policy_fuzz
           COMMAND sh -c "rm -rf \"$1\" && mkdir -p \"$1\" && exec \"$2\" -max_total_time=15 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \"$1\" \"$3\""
                   sh "${_tm_policy_fuzz_work}" "$<TARGET_FILE:fuzz_policy>" "${TM_POLICY_SEEDS}")
  set_tests_properties(policy_fuzz PROPERTIES LABELS "fuzz" TIMEOUT 120)
endif()
