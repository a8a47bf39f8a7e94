#!/usr/bin/env bash
# Installation stays where it is told (issue 14):
# - `cmake --install --prefix P` under DESTDIR=D writes only below D/P: a file
#   with an absolute destination would land elsewhere under D;
# - the p11-kit .module file names the module under P, the prefix installed to;
# - only TOKENMINT_P11KIT_REGISTER=ON puts it where p11-kit reads
#   (pkg-config p11_module_configs), still under DESTDIR.
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"

tm_tmpdir
prefix=/opt/tokenmint-test
dest="$TM_TMP/dest"
DESTDIR="$dest" cmake --install "$TM_BUILD_DIR" --prefix "$prefix" >"$TM_TMP/install.log"
outside=$(cd "$dest" && find . \( -type f -o -type l \) | sed 's|^\.||' | grep -v "^$prefix/" || true)
[ -z "$outside" ] || tm_fail "installed outside the prefix $prefix: $outside"
for f in bin/tokenmint etc/tokenmint/tokenmint.conf.example etc/tokenmint/profile.cnf; do
    [ -e "$dest$prefix/$f" ] || tm_fail "$prefix/$f not installed"
done
so=$(cd "$dest" && find ".$prefix" -name tokenmint-pkcs11.so | sed 's|^\.||')
[ -n "$so" ] || tm_fail "module not installed under $prefix"
modfile=$(find "$dest" -name tokenmint.module)
[ "$modfile" = "$dest$prefix/share/tokenmint/p11-kit/tokenmint.module" ] ||
    tm_fail "without TOKENMINT_P11KIT_REGISTER the .module file went to '$modfile'"
grep -qx "module: $so" "$modfile" || tm_fail "the .module file does not name $so: $(cat "$modfile")"

# The explicit option: configure (no build needed, the file is its own
# component) and install the registration alone.
p11dir=$(pkg-config --variable=p11_module_configs p11-kit-1)
[ -n "$p11dir" ] || tm_fail "pkg-config names no p11-kit module directory"
cmake -S "$TM_SOURCE_DIR" -B "$TM_TMP/b" -DBUILD_TESTING=OFF -DTOKENMINT_P11KIT_REGISTER=ON \
    -DCMAKE_INSTALL_PREFIX=/usr >"$TM_TMP/configure.log" 2>&1 ||
    { cat "$TM_TMP/configure.log"; tm_fail "configure with TOKENMINT_P11KIT_REGISTER=ON failed"; }
dest2="$TM_TMP/dest2"
DESTDIR="$dest2" cmake --install "$TM_TMP/b" --component p11kit-module >/dev/null
[ -f "$dest2$p11dir/tokenmint.module" ] ||
    tm_fail "TOKENMINT_P11KIT_REGISTER=ON: no $p11dir/tokenmint.module ($(cd "$dest2" && find . -type f))"
libdir=$(sed -n "s/^CMAKE_INSTALL_LIBDIR:PATH=//p" "$TM_TMP/b/CMakeCache.txt")
grep -qx "module: /usr/$libdir/pkcs11/tokenmint-pkcs11.so" "$dest2$p11dir/tokenmint.module" ||
    tm_fail "registered .module names the wrong module: $(cat "$dest2$p11dir/tokenmint.module")"
echo PASS
