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
foreach(t provider_tpm provider_tpm_via_module tool_tpm)
  if(TEST ${t})
    set_property(TEST ${t} APPEND PROPERTY LABELS tpm)
    set_tests_properties(${t} PROPERTIES SKIP_RETURN_CODE 77)
  endif()
endforeach()
