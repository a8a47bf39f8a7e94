#!/usr/bin/env bash
# Installs what is missing (Debian 12, as root), then configures and builds
# into ./build. Sourced by .ci/run (tests) and .ci/demo (demo station).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TM_PACKAGES=(
    build-essential cmake pkg-config        # toolchain
    clang libclang-rt-14-dev                # clang + its sanitizer/libFuzzer runtime (a mere
                                            # recommendation of clang) for the fuzz targets
    libssl-dev openssl                      # OpenSSL 3: libcrypto, the provider API, stock CLI
    libp11-kit-dev p11-kit                  # pkcs11.h, RFC 7512 URI parser, module registry
    libjson-c-dev                           # JSON for the audit log and --json output
    libcmocka-dev                           # unit tests
    softhsm2                                # software tokens standing in for hardware
    opensc                                  # pkcs11-tool, used by tests and admins
    libnss3-tools                           # certutil: an NSS softokn store as a second backend in tests
    gnutls-bin                              # p11tool, a second PKCS#11 client in tests
    libmicrohttpd-dev                       # HTTP server for the CMP CA and relay
    libsqlite3-dev                          # the CA's records: embedded SQLite (default)
    libpq-dev postgresql                    # the CA's records on PostgreSQL; the tests start a
                                            # throw-away cluster (initdb/pg_ctl) of their own
    valgrind                                # leak check of the module's init/finalize cycles
    bc                                      # shared/bench/stock_pipeline.sh
)

missing=()
for p in "${TM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "tokenmint: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

CC=${CC:-clang} cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOKENMINT_FUZZ=ON
cmake --build build -j"$(nproc)"
