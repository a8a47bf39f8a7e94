# Bad input to `ca serve`: garbage, truncated DER, an oversized body, a
# wrong Content-Type, wrong or missing protection, a replayed request (reused
# transactionID or senderNonce) and a certConf for no open transaction. Each gets an HTTP 4xx
# (not a PKIMessage at all) or a CMP error/rejection; the server does not
# crash and writes nothing.
. "$TM_SOURCE_DIR/tests/e2e/cmp_lib.sh"
tm_make_tokens 1
CA="$TM_TMP/ca"
"$T" ca init "$CA" >/dev/null || tm_fail "ca init"
cd "$TM_TMP"
cmp_start serve "$T" ca serve "$CA" --secret-source "$SECRET" --max-body 16384
SRV=$CMP_PID
URL="http://127.0.0.1:$CMP_PORT/pkix/"
S0=${TM_SERIALS[0]}
"$T" csr --token "pkcs11:serial=$S0" --pin-source "$PIN" >req.pem || tm_fail "csr"

# One good exchange, its messages kept: p10cr then certConf.
openssl cmp -cmd p10cr -csr req.pem -server "127.0.0.1:$CMP_PORT/pkix/" -secret "file:$SECRET" \
    -ref station -certout good.pem -reqout p10cr.der,certconf.der >good.log 2>&1 ||
    { cat good.log; tm_fail "the good exchange"; }
[ -s p10cr.der ] && [ -s certconf.der ] || tm_fail "openssl cmp -reqout kept no messages"
[ "$(ca_view_lines "$CA" 1)" -eq 1 ] || tm_fail "one certificate after the good exchange"
snapshot() { cat "$CA/index.txt"; "$TM_TOOL" ca list "$CA"; ls "$CA/newcerts"; }
snapshot >before

post() { # name file [post args] -> HTTP line in $name.http, body in $name.rsp
    "$BC" post "$URL" "$2" --out "$1.rsp" "${@:3}" >"$1.http" || tm_fail "$1: no HTTP answer"
}

# 1. Not DER at all, and a truncated PKIMessage: HTTP 400 naming the problem.
head -c 300 /dev/urandom >garbage.der
post garbage garbage.der
grep -q "^HTTP 400" garbage.http || { cat garbage.http; tm_fail "garbage should get 400"; }
grep -q "not a DER PKIMessage" garbage.rsp || tm_fail "400 should say what is wrong"
head -c $(($(stat -c %s p10cr.der) / 2)) p10cr.der >half.der
post half half.der
grep -q "^HTTP 400" half.http || { cat half.http; tm_fail "truncated DER should get 400"; }
for n in 1 2 3 10 50; do # every cut point class: tag, length, inside the header
    head -c "$n" p10cr.der >cut.der
    post cut cut.der
    grep -q "^HTTP 400" cut.http || { cat cut.http; tm_fail "a $n-byte prefix should get 400"; }
done
{ cat p10cr.der; printf 'xx'; } >trail.der
post trail trail.der
grep -q "^HTTP 400" trail.http || tm_fail "trailing bytes should get 400"

# 2. Larger than --max-body: 413 before anything is parsed.
head -c 20000 /dev/zero >big.der
post big big.der
grep -q "^HTTP 413" big.http || { cat big.http; tm_fail "an oversized body should get 413"; }

# 3. Not application/pkixcmp: 415; not POST: 405.
post ctype p10cr.der --type text/plain
grep -q "^HTTP 415" ctype.http || { cat ctype.http; tm_fail "wrong Content-Type should get 415"; }

post get p10cr.der --method GET
grep -q "^HTTP 405" get.http || { cat get.http; tm_fail "GET should get 405"; }

# 4. Replayed request (same transactionID and nonce): a CMP rejection saying so.
post replay p10cr.der
grep -q "^HTTP 200" replay.http || { cat replay.http; tm_fail "a replay gets a CMP answer"; }
grep -aq "transactionID already used" replay.rsp || tm_fail "the answer should name the replay"

# A new transaction (fresh transactionID, correct PBMAC) reusing the old
# senderNonce: refused as well.
"$BC" reuse-nonce p10cr.der req.pem nonce.der --secret-source "$SECRET" --ref station ||
    tm_fail "cannot build the nonce-reusing request"
cmp -s nonce.der p10cr.der && tm_fail "the nonce-reusing request must be a new message"
post nonce nonce.der
grep -aq "senderNonce already used" nonce.rsp || { cat nonce.http; tm_fail "a reused nonce must be refused"; }

# 5. A certConf for a transaction that is not open: a CMP error message (body 23).
post conf certconf.der
grep -q "^body 23" conf.http || { cat conf.http; tm_fail "a stray certConf should get a CMP error"; }

# 6. Wrong secret and no protection: refused with a CMP error, no certificate.
echo "not-the-secret" >wrong
openssl cmp -cmd p10cr -csr req.pem -server "127.0.0.1:$CMP_PORT/pkix/" -secret file:wrong \
    -ref station -certout w.pem >wrong.log 2>&1 && tm_fail "a wrong secret must be refused"
grep -qi "error" wrong.log || { cat wrong.log; tm_fail "the refusal should be a CMP error"; }
openssl cmp -cmd p10cr -csr req.pem -server "127.0.0.1:$CMP_PORT/pkix/" -unprotected_requests \
    -ref station -certout u.pem -unprotected_errors >unprot.log 2>&1 &&
    tm_fail "an unprotected request must be refused"
[ ! -e w.pem ] && [ ! -e u.pem ] || tm_fail "no certificate for refused requests"

# Nothing written, server alive, and still serving good requests.
snapshot >after
cmp -s before after || { diff before after; tm_fail "bad input changed the CA directory"; }
kill -0 "$SRV" || tm_fail "the server died"
"$T" csr --token "pkcs11:serial=$S0" --pin-source "$PIN" >req2.pem
openssl cmp -cmd p10cr -csr req2.pem -server "127.0.0.1:$CMP_PORT/pkix/" -secret "file:$SECRET" \
    -ref station -certout again.pem >again.log 2>&1 || { cat again.log; tm_fail "good request after bad"; }
cmp_stop "$SRV"
echo "PASS: malformed, truncated, oversized, wrong type, replayed, stray and badly protected input refused"
