# Stock `openssl cmp` as the client of `tokenmint ca serve`: p10cr (the
# patent's PKCS#10 packet, token-signed) and ir (CRMF), with shared-secret
# (PBMAC) and with signature protection. Each certificate must be a profile
# certificate from the CA directory, recorded in index.txt, and the p10cr one
# must go onto its token with `tokenmint write`.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
tm_make_tokens 2
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"

# Signature protection: a station certificate under a station CA the server
# trusts, and the server's own CMP signer certificate that clients pin.
cmp_signers st "station CA" "station 1"

# The secret never goes on a command line.
tm_expect_fail "ca serve without any client authentication" \
    "$T" ca serve "$CA" --listen 127.0.0.1:0 2>/dev/null
cmp_start serve "$T" ca serve "$CA" --secret-source "$SECRET" \
    --trusted stca.pem --srv-cert srv.pem --srv-key srv.key
SRV=$CMP_PID
URL="127.0.0.1:$CMP_PORT/pkix/"

# 1. p10cr with PBMAC: the token's own signed request.
S0=${TM_SERIALS[0]}
"$T" csr --token "pkcs11:serial=$S0" --pin-source "$PIN" >req0.pem || tm_fail "csr"
openssl cmp -cmd p10cr -csr req0.pem -server "$URL" -secret "file:$SECRET" -ref station1 \
    -certout c0.pem >p10.log 2>&1 || { cat p10.log; tm_fail "openssl cmp p10cr (PBMAC)"; }
profile_check c0.pem
openssl verify -CAfile "$CA/ca.pem" c0.pem >/dev/null || tm_fail "p10cr certificate does not chain"
openssl x509 -in c0.pem -noout -subject | tm_grepq "serialNumber *= *$S0" ||
    tm_fail "the certificate must name token $S0"
sn=$(openssl x509 -in c0.pem -noout -serial | cut -d= -f2)
ca_view_lines "$CA" 1 >/dev/null
grep -q "$sn" "$CA/index.txt" || tm_fail "index.txt does not record $sn"
[ -s "$CA/newcerts/$sn.pem" ] || tm_fail "newcerts/$sn.pem missing"
"$T" write --pin-source "$PIN" c0.pem >write.out || { cat write.out; tm_fail "write"; }
grep -q "^OK *$S0" write.out || tm_fail "write should put the certificate on $S0"

# 2. ir (CRMF) with PBMAC, built by stock openssl from a config section.
HW=2.25.306879213863795936203097792690857128826.1 # the built-in profile's default hwType
cat >ir.cnf <<CNF
[default]
[exts]
subjectAltName = critical, otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hwmn
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
[hwmn]
hwType = OID:$HW
hwSerialNum = FORMAT:ASCII,OCTETSTRING:00c0ffee01
CNF
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out irk.pem 2>/dev/null
openssl cmp -config ir.cnf -cmd ir -newkey irk.pem -subject /serialNumber=00c0ffee01 \
    -reqexts exts -server "$URL" -secret "file:$SECRET" -ref station1 -certout ir.pem \
    >ir.log 2>&1 || { cat ir.log; tm_fail "openssl cmp ir"; }
profile_check ir.pem
openssl verify -CAfile "$CA/ca.pem" ir.pem >/dev/null || tm_fail "ir certificate does not chain"
openssl x509 -in ir.pem -noout -subject | tm_grepq "serialNumber *= *00c0ffee01" ||
    tm_fail "ir certificate must name 00c0ffee01"
"$TM_TOOL" ca list "$CA" | tm_grepq "	00c0ffee01	" || tm_fail "the CA database should record the ir certificate"

# 3. p10cr with signature protection (station certificate; server signer pinned).
S1=${TM_SERIALS[1]}
"$T" csr --token "pkcs11:serial=$S1" --pin-source "$PIN" >req1.pem || tm_fail "csr"
openssl cmp -cmd p10cr -csr req1.pem -server "$URL" -cert st.pem -key st.key \
    -srvcert srv.pem -certout c1.pem >sig.log 2>&1 ||
    { cat sig.log; tm_fail "openssl cmp p10cr (signature)"; }
profile_check c1.pem
openssl x509 -in c1.pem -noout -subject | tm_grepq "serialNumber *= *$S1" ||
    tm_fail "the certificate must name token $S1"

# 4. An ir without the token binding is refused with the profile's reason.
openssl cmp -cmd ir -newkey irk.pem -subject "/CN=Alice" -server "$URL" \
    -secret "file:$SECRET" -ref station1 -certout none.pem >bad.log 2>&1 &&
    tm_fail "a request naming a person must be refused"
grep -q "rejection" bad.log || { cat bad.log; tm_fail "refusal should be a CMP rejection"; }
grep -q "badCertTemplate" bad.log || { cat bad.log; tm_fail "refusal should say badCertTemplate"; }
[ ! -e none.pem ] || tm_fail "no certificate for a refused request"

[ "$(ca_view_lines "$CA" 3)" -eq 3 ] || tm_fail "index.txt should hold exactly 3 certificates"
"$T" verify --all --ca "$CA" >/dev/null || tm_fail "verify --all"
cmp_stop "$SRV"
echo "PASS: stock openssl cmp p10cr/ir, PBMAC and signature, against tokenmint ca serve"
