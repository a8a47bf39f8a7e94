# Helpers for the module's e2e tests (sourced after tests/lib/tokens.sh).

TM_NSS_MODULE=${TM_NSS_MODULE:-/usr/lib/x86_64-linux-gnu/libsoftokn3.so}

# tm_slot_of_serial SERIAL: the module's slot ID (decimal) of the token.
tm_slot_of_serial() {
    local hex
    hex=$(pkcs11-tool --module "$TM_MODULE" -L 2>/dev/null |
        awk -v s="$1" '/^Slot /{id=$3; gsub(/[():]/,"",id)} $0 ~ "serial num *: "s"$" {print id}')
    [ -n "$hex" ] && printf '%d\n' "$hex"
}

# tm_test_ca DIR: a throwaway P-256 CA (DIR/ca.key, DIR/ca.pem).
tm_test_ca() {
    mkdir -p "$1"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/ca.key" \
        -out "$1/ca.pem" -subj "/O=tokenmint test CA" -days 30 2>/dev/null
}

# tm_profile_cert CADIR SERIAL PUBKEY.pem OUT.der [DAYS]: a certificate in the
# serial-bound profile (subject serialNumber + SAN hardwareModuleName naming
# SERIAL, purpose "auth") for PUBKEY, issued by the test CA, valid DAYS (30).
tm_profile_cert() {
    local ca=$1 serial=$2 pub=$3 out=$4 days=${5:-30} tmp
    tmp=$(mktemp -d "$TM_TMP/cert.XXXXXX")
    cat >"$tmp/ext.cnf" <<CNF
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hmn
[hmn]
hwType = OID:2.25.306879213863795936203097792690857128826.2
hwSerialNum = FORMAT:ASCII,OCTETSTRING:$serial
CNF
    # x509 -req needs a request; its key is replaced by -force_pubkey.
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/throwaway.key" \
        -subj "/serialNumber=$serial" -out "$tmp/req.csr" 2>/dev/null
    openssl x509 -req -in "$tmp/req.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -force_pubkey "$pub" \
        -set_serial "0x1$(openssl rand -hex 10)" -days "$days" -extfile "$tmp/ext.cnf" -extensions ext \
        -outform DER -out "$out" 2>/dev/null
    rm -rf "$tmp"
}
