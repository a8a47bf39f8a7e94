# Load: 8 concurrent CMP clients x 200 p10cr each against one `ca serve`.
# Every request must be answered with a certificate for its own key and
# serial that chains to the root, certificate serials must be unique, and the
# CA directory must be consistent afterwards: one index line, one record and
# one certificate file per certificate, nothing else.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"
cmp_start serve "$T" ca serve "$CA" --secret-source "$SECRET"
SRV=$CMP_PID
"$BC" load --url "http://127.0.0.1:$CMP_PORT/pkix/" --secret-source "$SECRET" \
    --root "$CA/ca.pem" --clients 8 --requests 200 --check >load.out 2>&1 ||
    { cat load.out; tm_fail "not every request got a good certificate"; }
cat load.out
grep -q "answered 1600 " load.out || tm_fail "1600 requests should be answered"
cmp_stop "$SRV"

[ "$(wc -l <"$CA/index.txt")" -eq 1600 ] || tm_fail "index.txt should hold 1600 lines"
[ "$(cut -f4 "$CA/index.txt" | sort -u | wc -l)" -eq 1600 ] || tm_fail "index serials must be unique"
"$TM_TOOL" ca list "$CA" >records || tm_fail "ca list"
[ "$(wc -l <records)" -eq 1600 ] || tm_fail "the CA database should hold 1600 records"
[ "$(ls "$CA/newcerts" | wc -l)" -eq 1600 ] || tm_fail "newcerts/ should hold 1600 files"
cut -f4 "$CA/index.txt" | sort >in_index
cut -f1 records | sort >in_records
ls "$CA/newcerts" | sed 's/\.pem$//' | sort >in_files
cmp -s in_index in_records || tm_fail "index.txt and the CA database disagree"
cmp -s in_index in_files || tm_fail "index.txt and newcerts/ disagree"
# stock openssl ca still reads the database the server wrote
openssl ca -config "$CA/ca.cnf" -updatedb >/dev/null 2>&1 || tm_fail "openssl ca -updatedb"
echo "PASS: 8 x 200 concurrent requests, all answered, serials unique, CA directory consistent"
