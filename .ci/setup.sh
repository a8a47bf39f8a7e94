#!/usr/bin/env bash
# Installs what is missing (Debian 12, as root), then configures and builds one
# configuration. Run by .ci/run (tests) and .ci/demo (demo station).
#   bash .ci/setup.sh                  packages + the default build in ./build
#                                      (clang, RelWithDebInfo, -Werror, fuzz targets)
#   bash .ci/setup.sh DIR CC TYPE [CMAKE ARGS...]
#                                      packages + that configuration in DIR, e.g.
#                                      bash .ci/setup.sh build-gcc-release gcc Release
#   TM_SETUP_NO_BUILD=1                packages only
#   TM_SETUP_NO_PACKAGES=1             build only (.ci/run installs once, up front)
# Every CI/developer build has -DTOKENMINT_WERROR=ON; a packager's plain cmake
# build does not.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# One package a line, with why. A part that needs a package adds it here.
TM_PACKAGES=(
    build-essential cmake pkg-config        # toolchain (gcc)
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
    scdoc                                   # the man pages' source format, built with the tree
    mandoc                                  # mandoc -T lint: the man pages lint clean
    lintian                                 # .ci/packages: the .deb packages have no errors
    systemd                                 # systemd-analyze verify of conf/systemd units
    tmux                                    # tool_screen: what a person sees during a long run
    swtpm tpm2-tools                        # a TPM 2.0 simulator and its tools: a third token
                                            # backend for provider_tpm/tool_tpm (tests/lib/tpm.sh)
    libtpm2-pkcs11-1 libtpm2-pkcs11-tools   # tpm2-pkcs11 (the module) and tpm2_ptool (its store)
    libtss2-tcti-swtpm0                     # the TSS's loopback TCP transport to swtpm
)

tm_install_packages() {
    local missing=() p
    for p in "${TM_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "tokenmint: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y --no-install-recommends "${missing[@]}"
    fi
}

# tm_build DIR CC TYPE [CMAKE ARGS...]: configure and build one configuration.
tm_build() {
    local dir=$1 cc=$2 type=$3
    shift 3
    # CMAKE_C_COMPILER, not just CC: CC is ignored once DIR has a cache.
    cmake -S . -B "$dir" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE="$type" -DTOKENMINT_WERROR=ON "$@"
    cmake --build "$dir" -j"$(nproc)"
}

[ -n "${TM_SETUP_NO_PACKAGES:-}" ] || tm_install_packages
[ -z "${TM_SETUP_NO_BUILD:-}" ] || exit 0
if [ $# -eq 0 ]; then
    tm_build build clang RelWithDebInfo -DTOKENMINT_FUZZ=ON
else
    tm_build "$@"
fi
