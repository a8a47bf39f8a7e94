#!/usr/bin/env bash
# Installation: `cmake --install --component pkcs11 --component p11kit-module`
# puts the module in the PKCS#11 module directory and a .module file naming it,
# and with that file p11-kit's registry lists the module and its tokens. (Where
# the .module file goes with and without TOKENMINT_P11KIT_REGISTER:
# install_prefix.sh.)
set -euo pipefail
. "$TM_SOURCE_DIR/tests/lib/tokens.sh"

tm_make_tokens 2

# Install into a staging root.
dest="$TM_TMP/dest"
DESTDIR="$dest" cmake --install "$TM_BUILD_DIR" --component pkcs11 >/dev/null
DESTDIR="$dest" cmake --install "$TM_BUILD_DIR" --component p11kit-module >/dev/null
modfile=$(find "$dest" -name tokenmint.module)
[ -n "$modfile" ] || tm_fail "no tokenmint.module installed"
[ "$(wc -l <<<"$modfile")" -eq 1 ] || tm_fail "more than one tokenmint.module: $modfile"
installed=$(awk -F': *' '$1=="module"{print $2}' "$modfile")
[ -f "$dest$installed" ] || tm_fail "the .module file names $installed, which was not installed"
case "$installed" in */pkcs11/tokenmint-pkcs11.so) ;; *) tm_fail "module not in a pkcs11/ dir: $installed" ;; esac
find "$dest" -name tokenmint.conf.example | tm_grepq . || tm_fail "example config not installed"

# p11-kit only reads a user's config when not root: run it as nobody then.
home="$TM_TMP/home"
mkdir -p "$home/.config/pkcs11/modules"
sed "s|^module: .*|module: $dest$installed|" "$modfile" >"$home/.config/pkcs11/modules/tokenmint.module"
as_user=()
if [ "$(id -u)" -eq 0 ]; then
    chmod -R a+rwX "$TM_TMP"
    as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
out=$(env HOME="$home" SOFTHSM2_CONF="$SOFTHSM2_CONF" TOKENMINT_BACKEND="$TM_SOFTHSM_MODULE" \
    "${as_user[@]}" p11-kit list-modules 2>&1)
section=$(sed -n '/^tokenmint:/,/^[a-z]/p' <<<"$out")
[ -n "$section" ] || tm_fail "p11-kit list-modules does not show tokenmint: $out"
grep -q "library-manufacturer: tokenmint" <<<"$section" || tm_fail "not our module: $section"
for s in "${TM_SERIALS[@]}"; do
    grep -q "serial-number: $s" <<<"$section" || tm_fail "p11-kit does not see token $s via tokenmint"
done
echo PASS
