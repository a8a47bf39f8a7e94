#!/usr/bin/env bash
# Stock `openssl req` + `openssl ca -config conf/ca.cnf` (file keys) produce
# certificates that the profile library accepts; a personal name is refused.
set -euo pipefail

: "${TM_SOURCE_DIR:?}" "${TM_PROFILE_CHECK:?}"
CA_CNF="$TM_SOURCE_DIR/conf/ca.cnf"
HW_TYPE=2.25.306879213863795936203097792690857128826.1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

fail() { echo "FAIL: $*" >&2; exit 1; }

# --- a throw-away CA in the current directory, as conf/ca.cnf expects -------
mkdir certs
: > index.txt
cat > ca-req.cnf <<'CNF'
[req]
distinguished_name = dn
x509_extensions = v3_ca
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CNF
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -config ca-req.cnf -subj "/O=tokenmint test/CN=Test CA" \
    -days 30 -out ca.pem

# --- a request the way the profile wants it, with stock openssl req ---------
# The SAN otherName uses OpenSSL's ASN.1 generator syntax; SEQUENCE: needs a
# section, which lives in the -config file.
request() { # serial subject key-type out [extra req args...]
    local serial=$1 subj=$2 keyalg=$3 out=$4
    shift 4
    cat > "$out.cnf" <<CNF
[req]
distinguished_name = dn
[dn]
[hwmn]
hwType = OID:$HW_TYPE
hwSerialNum = FORMAT:ASCII,OCTETSTRING:$serial
CNF
    case $keyalg in
    ec) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out.key" 2>/dev/null ;;
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$out.key" 2>/dev/null ;;
    esac
    openssl req -new -key "$out.key" -config "$out.cnf" -subj "$subj" \
        -addext "subjectAltName=otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hwmn" "$@" -out "$out"
}
issue() { # request purpose-section out [extra ca args...]
    local in=$1 ext=$2 out=$3
    shift 3
    openssl ca -batch -notext -config "$CA_CNF" -extensions "$ext" -in "$in" -out "$out" "$@" \
        2> "$out.log" || { cat "$out.log" >&2; fail "openssl ca refused $in"; }
}
AUTH=(-addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=clientAuth")

# 1. conforming request and certificate, purpose auth
request 0A1B2C3D "/serialNumber=0A1B2C3D" ec good.csr "${AUTH[@]}"
"$TM_PROFILE_CHECK" good.csr | tee out.txt
grep -q "conforms: serialNumber=0A1B2C3D hwType=$HW_TYPE purpose=auth" out.txt ||
    fail "library did not accept the stock request"
issue good.csr auth good.pem
"$TM_PROFILE_CHECK" good.pem | tee out.txt || fail "library refused the stock certificate"
grep -q "conforms: serialNumber=0A1B2C3D hwType=$HW_TYPE purpose=auth" out.txt ||
    fail "certificate does not name the token"
openssl verify -CAfile ca.pem good.pem
# serial numbers: rand_serial gives positive, at most 159 bits; unique_subject = no
issue good.csr auth good2.pem
[ "$(openssl x509 -in good.pem -noout -serial)" != "$(openssl x509 -in good2.pem -noout -serial)" ] ||
    fail "two certificates with one serial number"
[ "$(wc -l < index.txt)" -eq 2 ] || fail "index.txt should hold both certificates"

# 2. purpose sign with an RSA key, organisation attributes kept by the policy
request "TOKEN 42" "/C=DE/O=Example Bank/serialNumber=TOKEN 42" rsa sign.csr \
    -addext "keyUsage=critical,digitalSignature,nonRepudiation"
issue sign.csr sign sign.pem
"$TM_PROFILE_CHECK" sign.pem | tee out.txt || fail "library refused the sign certificate"
grep -q "purpose=sign" out.txt || fail "purpose sign not recognised"
openssl x509 -in sign.pem -noout -subject | grep -q "O = Example Bank" ||
    fail "policy dropped O"

# 3. CN=Alice: the library refuses the request ...
request 0A1B2C3E "/serialNumber=0A1B2C3E/CN=Alice" ec alice.csr "${AUTH[@]}"
if "$TM_PROFILE_CHECK" alice.csr > out.txt; then fail "library accepted CN=Alice"; fi
cat out.txt
grep -q "subject has CN=Alice: the profile allows no personal name" out.txt ||
    fail "no message naming CN=Alice"
# ... stock openssl ca drops the field the policy does not name ...
issue alice.csr auth alice-stripped.pem
openssl x509 -in alice-stripped.pem -noout -subject | grep -q Alice && fail "policy kept CN"
"$TM_PROFILE_CHECK" alice-stripped.pem
# ... and a certificate that kept it (-preserveDN) is refused
issue alice.csr auth alice.pem -preserveDN
openssl x509 -in alice.pem -noout -subject | grep -q "CN = Alice" || fail "-preserveDN lost CN"
if "$TM_PROFILE_CHECK" alice.pem > out.txt; then fail "library accepted a certificate with CN=Alice"; fi
cat out.txt
grep -q "alice.pem: subject has CN=Alice: the profile allows no personal name" out.txt ||
    fail "no message naming CN=Alice for the certificate"

# 4. the wrong -extensions section for the request's purpose is caught
issue good.csr sign wrong.pem
if "$TM_PROFILE_CHECK" wrong.pem > out.txt; then fail "library accepted mixed purposes"; fi
cat out.txt
grep -q "does not match any purpose of the profile" out.txt || fail "no purpose message"

# 5. a request whose hwSerialNum differs from its subject serialNumber
request 0A1B2C3F "/serialNumber=0A1B2C30" ec mismatch.csr "${AUTH[@]}"
if "$TM_PROFILE_CHECK" mismatch.csr > out.txt; then fail "library accepted a mismatch"; fi
grep -q "SAN hwSerialNum 0A1B2C3F differs from subject serialNumber 0A1B2C30" out.txt ||
    fail "no mismatch message"
echo "PASS"
