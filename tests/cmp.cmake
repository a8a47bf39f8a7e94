# CMP tests (issue 6): `tokenmint ca serve`, `tokenmint relay`, `issue --cmp`.
# Every server listens on 127.0.0.1 with a port the kernel picks (port 0,
# read back through --port-file), so tests run in parallel without clashes.

# bench_cmp: the benchmark (certificates per second) and the load test's and
# bad-input test's client (raw POSTs of malformed bodies).
add_executable(bench_cmp bench/bench_cmp.c)
target_link_libraries(bench_cmp PRIVATE tokenmint-profile OpenSSL::Crypto Threads::Threads)

# conn_hold: the hostile clients of the starvation test (loopback only).
add_executable(conn_hold e2e/conn_hold.c)

foreach(t openssl_client relay mock deferred load bad_input station_lock watch checked_first starvation refusal_log rr_signed kur kur_relay)
  tm_add_e2e(cmp_${t} cmp_${t}.sh cmp)
endforeach()

# The relay's serial range rule.
tm_add_unit(test_cmp_serial SOURCES unit/test_cmp_serial.c ${PROJECT_SOURCE_DIR}/tool/cmp/serial.c)
target_include_directories(test_cmp_serial PRIVATE ${PROJECT_SOURCE_DIR}/tool)
target_link_libraries(test_cmp_serial PRIVATE OpenSSL::Crypto)
set_tests_properties(test_cmp_serial PROPERTIES LABELS "unit;cmp")

# Issue 11: the CA's records on PostgreSQL (a throw-away cluster per test):
# pg_basic each operation once (every stage, ASan included), pg_shared volume.
foreach(t pg_basic pg_shared)
  tm_add_e2e(cadb_${t} cadb_${t}.sh cmp cadb)
  set_tests_properties(cadb_${t} PROPERTIES SKIP_RETURN_CODE 77)
endforeach()

# Issue 11: kill -9 of ca serve under load, full disk, read-only file system.
tm_add_e2e(cadb_kill9 cadb_kill9.sh cmp cadb)

# Issue 11: the index.txt view and newcerts/ catch up while ca serve serves.
tm_add_e2e(cadb_view_catchup cadb_view_catchup.sh cmp cadb)
