# Issue 11: under `ca serve` the index.txt view and newcerts/ are written by
# a thread of their own, after the answers (the database holds every
# acknowledged certificate; the files are copies for stock openssl ca).
# While a burst is served and after it, with the server still running:
#   - every index.txt a reader sees names only certificates whose newcerts/
#     file is there and not empty (sampled throughout the burst);
#   - the view catches up with no request and no restart to push it: every
#     acknowledged certificate gets its index line and its file;
#   - the view, newcerts/ and the database then agree, and stock openssl ca
#     accepts the directory.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"
cmp_start serve "$T" ca serve "$CA" --secret-source "$SECRET"
SRV=$CMP_PID
TOTAL=800

# The reader: snapshots of index.txt (a rename replaces it, so one read is
# one whole version) checked against newcerts/ until told to stop.
: >violations
: >snapshots
(
    while [ ! -e stop-reader ]; do
        cp "$CA/index.txt" snap 2>/dev/null || continue
        echo "$(wc -l <snap)" >>snapshots
        cut -f4 snap | sort >snap_serials
        # listed after the snapshot: every file it names must be there
        ls "$CA/newcerts" | sed 's/\.pem$//' | sort >snap_files
        comm -23 snap_serials snap_files | sed "s/\$/ in an index.txt of $(wc -l <snap) lines, no file/" >>violations
        find "$CA/newcerts" -name '*.pem' -empty | sed 's/$/ empty/' >>violations
        sleep 0.05 # a reader, not a CPU hog: the server is what is being tested
    done
) &
READER=$!

"$BC" load --url "http://127.0.0.1:$CMP_PORT/" --secret-source "$SECRET" --root "$CA/ca.pem" \
    --clients 4 --requests $((TOTAL / 4)) --check --acked acked >load.out 2>&1 ||
    { cat load.out; tm_fail "not every request got a good certificate"; }
tm_grepq "answered $TOTAL " <load.out || { cat load.out; tm_fail "$TOTAL requests should be answered"; }
[ "$(wc -l <acked)" -eq "$TOTAL" ] || tm_fail "bench_cmp should list $TOTAL acknowledged certificates"

# Caught up by the server alone (nothing else opens the CA meanwhile).
for i in $(seq 600); do
    [ "$(wc -l <"$CA/index.txt")" -eq "$TOTAL" ] && [ "$(ls "$CA/newcerts" | wc -l)" -eq "$TOTAL" ] &&
        break
    sleep 0.1
done
touch stop-reader
wait "$READER"
[ "$(wc -l <"$CA/index.txt")" -eq "$TOTAL" ] ||
    tm_fail "index.txt holds $(wc -l <"$CA/index.txt") lines a minute after the burst, not $TOTAL"
[ "$(ls "$CA/newcerts" | wc -l)" -eq "$TOTAL" ] ||
    tm_fail "newcerts/ holds $(ls "$CA/newcerts" | wc -l) files a minute after the burst, not $TOTAL"
[ -s violations ] && { head violations; tm_fail "index.txt named a certificate before its file was written"; }
# the reader must have seen the view grow, or it checked nothing
grew=$(awk '$1 > 0 && $1 < '"$TOTAL"' { n++ } END { print n + 0 }' snapshots)
[ "$grew" -gt 0 ] || tm_fail "the reader saw no index.txt during the burst (snapshots: $(wc -l <snapshots))"
cut -f1 acked | sort >acked_serials
cut -f4 "$CA/index.txt" | sort >in_index
ls "$CA/newcerts" | sed 's/\.pem$//' | sort >in_files
cmp -s acked_serials in_index || tm_fail "index.txt and the acknowledged certificates disagree"
cmp -s acked_serials in_files || tm_fail "newcerts/ and the acknowledged certificates disagree"
# the files hold the right certificates (a sample: openssl is slow to start)
{ head -5 acked; tail -5 acked; } | while IFS="$(printf '\t')" read -r sn tok; do
    openssl x509 -in "$CA/newcerts/$sn.pem" -noout -subject | tm_grepq "serialNumber *= *$tok" ||
        tm_fail "newcerts/$sn.pem is not the certificate issued for $tok"
done
cmp_stop "$SRV"

"$T" ca list "$CA" >records || tm_fail "ca list"
cut -f1 records | sort >in_records
cmp -s acked_serials in_records || tm_fail "the CA database and the acknowledged certificates disagree"
openssl ca -config "$CA/ca.cnf" -updatedb >/dev/null 2>&1 || tm_fail "openssl ca -updatedb"
echo "PASS: $TOTAL answers; the view caught up while serving ($grew growing snapshots checked, no line before its file)"
