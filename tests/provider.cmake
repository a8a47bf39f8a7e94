# The provider's tests (issue 4).
tm_add_unit(test_provider_uri SOURCES unit/test_provider_uri.c LIBS tokenmint-provider-core)
tm_add_unit(test_provider_pin SOURCES unit/test_provider_pin.c
  LIBS OpenSSL::Crypto PkgConfig::P11KIT Threads::Threads ${CMAKE_DL_LIBS})
add_dependencies(test_provider_pin tokenmint-provider)

# Each e2e test runs with the provider talking to SoftHSM2 directly and, when
# the module is built, through tokenmint-pkcs11.so in front of SoftHSM2.
foreach(t req sign batch pin load_order decrypt keygen tls store tpm)
  tm_add_e2e(provider_${t} provider_${t}.sh provider)
  if(TARGET tokenmint-pkcs11)
    tm_add_e2e(provider_${t}_via_module provider_${t}.sh provider)
    set_property(TEST provider_${t}_via_module APPEND PROPERTY ENVIRONMENT
                 "TM_PROVIDER_ROUTE=module")
  endif()
endforeach()

# Issue 10 item 12: pin-source files the provider refuses (one route: the
# file rules are the client layer's, whichever module is behind).
tm_add_e2e(provider_secret_files provider_secret_files.sh provider)

# Benchmark: built, never run by ctest.
add_executable(bench_provider bench/bench_provider.c)
target_link_libraries(bench_provider PRIVATE tokenmint-p11client OpenSSL::Crypto PkgConfig::P11KIT ${CMAKE_DL_LIBS})
add_executable(bench_decrypt bench/bench_decrypt.c)
target_link_libraries(bench_decrypt PRIVATE tokenmint-p11client OpenSSL::Crypto PkgConfig::P11KIT ${CMAKE_DL_LIBS})

# The session pool against a token that allows 2 sessions (the shim's limit).
add_executable(tm-provider-threads e2e/provider_threads.c)
target_link_libraries(tm-provider-threads PRIVATE tokenmint-p11client OpenSSL::Crypto Threads::Threads ${CMAKE_DL_LIBS})
add_dependencies(tm-provider-threads tokenmint-provider)
tm_add_e2e(provider_sessions provider_sessions.sh provider)

# tpm2-pkcs11 on swtpm as a third backend (tests/lib/tpm.sh): exit 77 is a
# skip outside CI when the packages are absent; under CI=true it fails.
tm_add_e2e(tool_tpm tool_tpm.sh tool tpm)
# Issue 13: these provider tests run again with their tokens on tpm2-pkcs11
# over a per-test swtpm (TM_TOKEN_BACKEND=tpm), through the module only:
# tpm2-pkcs11 reports one placeholder serial for every token, which only the
# module's token_serials turns into one per token. SoftHSM2 only:
# provider_decrypt (ECDH: tpm2-pkcs11 1.9 has no CKM_ECDH1_DERIVE; its RSA
# decryption is in provider_tpm), provider_keygen and provider_tls (Ed25519
# keys; provider_tls's P-384 key pair is refused by tpm2-pkcs11 too),
# provider_load_order (file keys and TLS in software but for one token key,
# which provider_tpm's TLS covers: 13 s for little TPM work),
# provider_pin (asserts SoftHSM2's CKF_USER_PIN_COUNT_LOW after one wrong
# PIN, which tpm2-pkcs11 does not report), provider_batch (64 tokens),
# provider_sessions (the shim's session limit), provider_secret_files (no
# token work). Also in tests/README.md ("Tests on the TPM").
if(TARGET tokenmint-pkcs11)
  foreach(t req sign store)
    tm_add_e2e(provider_${t}_tpm provider_${t}.sh provider tpm)
    set_property(TEST provider_${t}_tpm APPEND PROPERTY ENVIRONMENT
                 "TM_PROVIDER_ROUTE=module" "TM_TOKEN_BACKEND=tpm")
    set_tests_properties(provider_${t}_tpm PROPERTIES SKIP_RETURN_CODE 77)
  endforeach()
endif()
foreach(t provider_tpm provider_tpm_via_module tool_tpm)
  if(TEST ${t})
    set_property(TEST ${t} APPEND PROPERTY LABELS tpm)
    set_tests_properties(${t} PROPERTIES SKIP_RETURN_CODE 77)
  endif()
endforeach()
