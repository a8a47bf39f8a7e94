# The tool's tests (issue 5): end-to-end scripts in tests/e2e/tool_*.sh.
# tool_json reads their --json output (json-c), so the scripts need neither
# python nor jq.
add_executable(tool_json e2e/tool_json.c)
target_link_libraries(tool_json PRIVATE PkgConfig::JSONC)

foreach(t serial_refused issue_32 renew_within renew_retire renew_kill9 renew_cmp profile_urls interrupt kill9 leftovers pin_flags pin_derive config validate concurrent openssl_ca operator pins pin_source secret_files cli cli_table watch demo screen write_profile)
  tm_add_e2e(tool_${t} tool_${t}.sh tool)
endforeach()

# Issue 11: kill -9 of issue with the CA on a full and on a read-only file
# system (root: tmpfs and loop mounts; exit 77, skipped, otherwise).
tm_add_e2e(tool_kill9_fs tool_kill9_fs.sh tool)
set_tests_properties(tool_kill9_fs PROPERTIES SKIP_RETURN_CODE 77)

# Issue 12: revocation and CRLs with stock openssl on the same CA.
foreach(t revoke ocsp)
  tm_add_e2e(ca_${t} ca_${t}.sh tool ca)
endforeach()

# The local CA and the operator passphrase check, without tokens.
set(TM_TOOL_DIR ${PROJECT_SOURCE_DIR}/tool)
tm_add_unit(test_tool_ca
  SOURCES unit/test_tool_ca.c ${TM_TOOL_DIR}/ca/ca.c ${TM_TOOL_DIR}/ca/local.c ${TM_TOOL_DIR}/station/tokenlock.c
          ${TM_TOOL_DIR}/station/crypto.c ${TM_TOOL_DIR}/tool.c ${TM_TOOL_DIR}/station/secret.c
          ${TM_TOOL_DIR}/station/operator.c ${TM_TOOL_DIR}/station/config.c ${TM_TOOL_DIR}/station/pintries.c ${TM_TOOL_DIR}/station/station.c ${TM_TOOL_DIR}/station/tokenobj.c
          ${TM_TOOL_DIR}/ca/castore.c ${TM_TOOL_DIR}/ca/castore_schema.c
          ${TM_TOOL_DIR}/ca/castore_sqlite.c ${TM_TOOL_DIR}/ca/castore_pg.c
          ${TM_TOOL_DIR}/ca/ca_view.c ${TM_TOOL_DIR}/ca/ca_known.c ${TM_TOOL_DIR}/ca/ca_import.c ${TM_TOOL_DIR}/ca/crl.c
  LIBS tokenmint-p11client tokenmint-p11client-audit tokenmint-profile OpenSSL::Crypto PkgConfig::P11KIT PkgConfig::JSONC
       Threads::Threads PkgConfig::SQLITE3 PkgConfig::LIBPQ ${CMAKE_DL_LIBS})
target_include_directories(test_tool_ca PRIVATE ${TM_TOOL_DIR})
target_compile_definitions(test_tool_ca PRIVATE _GNU_SOURCE
  TM_SOURCE_CONF_DIR="${PROJECT_SOURCE_DIR}/conf")

# Issue 11: the CA's records in a database, stock openssl ca on the same
# directory, migration of old-format directories, kill -9 under load.
foreach(t openssl_roundtrip migrate kill9_issue)
  tm_add_e2e(cadb_${t} cadb_${t}.sh tool cadb)
endforeach()

# Benchmark (issue 12): time to make a CRL with 100,000 revoked entries.
add_executable(bench_crl bench/bench_crl.c ${TM_TOOL_DIR}/ca/crl.c ${TM_TOOL_DIR}/ca/castore.c
               ${TM_TOOL_DIR}/ca/castore_schema.c ${TM_TOOL_DIR}/ca/castore_sqlite.c
               ${TM_TOOL_DIR}/ca/castore_pg.c ${TM_TOOL_DIR}/tool.c)
target_include_directories(bench_crl PRIVATE ${TM_TOOL_DIR})
target_compile_definitions(bench_crl PRIVATE _GNU_SOURCE)
target_link_libraries(bench_crl PRIVATE tokenmint-p11client tokenmint-profile OpenSSL::Crypto
                      PkgConfig::P11KIT PkgConfig::SQLITE3 PkgConfig::LIBPQ Threads::Threads)

# Benchmark (issue 12): signed OCSP responses per second from ca serve
# (tests/bench/bench_ocsp.sh starts the server and runs it).
add_executable(bench_ocsp bench/bench_ocsp.c)
target_compile_definitions(bench_ocsp PRIVATE _GNU_SOURCE)
target_link_libraries(bench_ocsp PRIVATE OpenSSL::Crypto Threads::Threads)

# Issue 13: these run again with their tokens on tpm2-pkcs11 over a per-test
# swtpm (TM_TOKEN_BACKEND=tpm: tests/lib/tokens.sh, tests/lib/tpm.sh), through
# the module, whose token_serials names each token. Exit 77 is a skip outside
# CI when the TPM packages are absent; under CI=true it fails. Not run on the
# TPM, and why, in tests/README.md ("Tests on the TPM").
# SoftHSM2 only: tool_cli (Ed25519 keys); tool_validate, tool_openssl_ca
# (pass on the TPM, but `issue --all` over 3-4 tokens fails about 1 run in
# 5: tpm2-pkcs11 1.9 fails concurrent certificate writes to tokens of one
# store now and then, sqlite "cannot start a transaction within a
# transaction", CKR_GENERAL_ERROR at step 12); tool_issue_32,
# tool_concurrent, tool_renew_*, tool_operator, tool_pins, tool_pin_derive,
# tool_demo (more tokens at once, so not tried; tool_pin_derive also needs the derived-PIN marker, a public data
# object tpm2-pkcs11 cannot hold); tool_interrupt, tool_kill9, tool_renew_kill9, tool_pin_flags, tool_watch,
# tool_screen (the test shim's fault injection, kill -9 timing over 16-32
# SoftHSM2 tokens); tool_leftovers, tool_secret_files (SoftHSM2's
# token.object file); tool_serial_refused (two copies of libsofthsm2.so);
# tool_tpm (already mixes SoftHSM2 and the TPM).
set(TM_TPM_VARIANTS tool_pin_source tool_write_profile tool_profile_urls)
foreach(t ${TM_TPM_VARIANTS})
  tm_add_e2e(${t}_tpm ${t}.sh tool tpm)
  set_property(TEST ${t}_tpm APPEND PROPERTY ENVIRONMENT "TM_TOKEN_BACKEND=tpm")
  set_tests_properties(${t}_tpm PROPERTIES SKIP_RETURN_CODE 77)
endforeach()
