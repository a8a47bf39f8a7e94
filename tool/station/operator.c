/*
 * Operator authentication before anything touches a token (claim 6), the
 * tool's config file, and the audit lines the tool adds to the station's
 * audit log.
 *
 * Config (OpenSSL config syntax, read with NCONF):
 *   [ tokenmint ]
 *   audit = /var/log/tokenmint/audit.jsonl   # same file as the module's audit log
 *   profile = /etc/tokenmint/profile.cnf
 *   [ operator ]
 *   require = yes                            # refuse to run without an operator
 *   passphrase = scrypt:N=16384,r=8,p=1:<salt>:<hash>   # `tokenmint operator hash`
 *   name = desk-1                            # identity recorded for passphrase logins
 *   ca = /etc/tokenmint/operator-ca.pem      # operator tokens' certificates chain here
 */
#include "station/station.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

static char audit_operator[256] = "";

void tool_audit_line(const tool_config *cfg, const char *serial, const char *op,
                     const char *outcome, const char *detail)
{
    p11c_audit_record r = {serial, op, outcome, detail, NULL, "tokenmint-tool"};
    p11c_audit *a;
    char err[256];

    if (!cfg || !cfg->audit || !*cfg->audit)
        return;
    if (audit_operator[0])
        r.operator_id = audit_operator;
    /* Opened per line: the tool writes a few lines a run, and the path was
     * checked at start (tool_config); a log rotated meanwhile is followed. */
    a = p11c_audit_open(cfg->audit, 0640, err, sizeof err);
    if (a == NULL) {
        tool_debug("%s", err);
        return;
    }
    p11c_audit_write(a, &r);
    p11c_audit_close(a);
}

/* ---- passphrase against an scrypt hash ------------------------------------------ */

#define SCRYPT_N 16384
#define SCRYPT_R 8
#define SCRYPT_P 1

static int scrypt(const char *pass, size_t plen, const unsigned char *salt, size_t slen, uint64_t n,
                  uint64_t r, uint64_t p, unsigned char *out, size_t outlen)
{
    return EVP_PBE_scrypt(pass, plen, salt, slen, n, r, p, 0, out, outlen) == 1;
}

int tool_operator_hash(const char *pass, char *out, size_t outlen)
{
    unsigned char salt[16], h[32];
    unsigned char bs[32], bh[48];
    int ok;

    if (RAND_bytes(salt, sizeof salt) != 1 ||
        !scrypt(pass, strlen(pass), salt, sizeof salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, h, sizeof h))
        return 0;
    EVP_EncodeBlock(bs, salt, sizeof salt);
    EVP_EncodeBlock(bh, h, sizeof h);
    ok = (size_t)snprintf(out, outlen, "scrypt:N=%d,r=%d,p=%d:%s:%s", SCRYPT_N, SCRYPT_R, SCRYPT_P,
                          bs, bh) < outlen;
    OPENSSL_cleanse(h, sizeof h);
    return ok;
}

static int b64dec(const char *in, size_t inlen, unsigned char *out, size_t outmax, size_t *outlen)
{
    int n, pad = 0;
    if (inlen == 0 || inlen % 4 || inlen / 4 * 3 > outmax)
        return 0;
    n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)inlen);
    if (n < 0)
        return 0;
    if (in[inlen - 1] == '=')
        pad++;
    if (in[inlen - 2] == '=')
        pad++;
    *outlen = (size_t)n - pad;
    return 1;
}

static int check_passphrase(const char *stored, const char *pass, size_t plen, char *err,
                            size_t errlen)
{
    unsigned long n, r, p;
    char salt64[128], hash64[128];
    unsigned char salt[96], want[96], got[96];
    size_t sl, hl;
    int ok = 0;

    if (sscanf(stored, "scrypt:N=%lu,r=%lu,p=%lu:%127[^:]:%127s", &n, &r, &p, salt64, hash64) !=
            5 ||
        !b64dec(salt64, strlen(salt64), salt, sizeof salt, &sl) ||
        !b64dec(hash64, strlen(hash64), want, sizeof want, &hl) || hl < 16 || n < 2 || r < 1 ||
        p < 1) {
        snprintf(err, errlen,
                 "[ operator ] passphrase is not a scrypt:N=..,r=..,p=..:salt:hash value "
                 "(make one with `tokenmint operator hash`)");
        return -1;
    }
    if (!scrypt(pass, plen, salt, sl, n, r, p, got, hl)) {
        snprintf(err, errlen, "scrypt failed (N=%lu r=%lu p=%lu too large?)", n, r, p);
        return -1;
    }
    ok = CRYPTO_memcmp(got, want, hl) == 0;
    OPENSSL_cleanse(got, sizeof got);
    if (!ok)
        snprintf(err, errlen, "operator passphrase is wrong");
    return ok;
}

/* ---- operator token: log in, sign a fresh challenge, chain to the operator CA ---- */

static int token_auth(const tool_config *cfg, tool_station *st, tool_crypto *crypto,
                      const char *uri, const char *pin_source, char *id, size_t idlen, char *err,
                      size_t errlen)
{
    unsigned char *sel = calloc(st->ntokens ? st->ntokens : 1, 1), chal[32], sig[1024];
    size_t i, k = 0, c, siglen = sizeof sig, pinlen = 0;
    tool_token *t = NULL;
    CK_SESSION_HANDLE s = 0;
    tool_token_cert *certs = NULL;
    tool_token_key *keys = NULL;
    size_t ncerts = 0, nkeys = 0;
    X509_STORE *store = NULL;
    X509 *ca = NULL;
    EVP_PKEY *priv = NULL;
    EVP_MD_CTX *md = NULL;
    char kuri[600], e[300], pin[256];
    int ok = 0, have_s = 0;
    tool_pin opin;
    CK_RV rv;

    /* Its own PIN holder: the provider asks it again when it opens the key. */
    tool_pin_init(&opin, pin_source);
    opin.prompt = "Operator token PIN: ";
    if (!cfg || !cfg->operator_ca) {
        snprintf(err, errlen, "operator token given but the config names no [ operator ] ca");
        goto out;
    }
    if (!sel || !tool_station_select(st, (char **)&uri, 1, sel, err, errlen))
        goto out;
    for (i = 0; i < st->ntokens; i++)
        if (sel[i])
            t = t ? NULL : &st->tokens[i];
    if (!t) {
        snprintf(err, errlen, "--operator-token %s must name exactly one token", uri);
        goto out;
    }
    {
        FILE *f = fopen(cfg->operator_ca, "r");
        ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
        if (f)
            fclose(f);
        if (!ca) {
            snprintf(err, errlen, "%s: not a PEM certificate (operator CA)", cfg->operator_ca);
            goto out;
        }
    }
    rv = st->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        snprintf(err, errlen, "operator token: %s", p11c_ckr_name(rv));
        goto out;
    }
    have_s = 1;
    if (t->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) {
        if (t->info.flags & CKF_USER_PIN_FINAL_TRY) {
            snprintf(err, errlen, "operator token: not tried: its next wrong PIN locks it");
            goto out;
        }
        rv = st->f->C_Login(s, CKU_USER, NULL, 0);
    } else {
        /* The operator's PIN follows the same rules as the tokens' PINs: the
         * station's refused-PIN record, never the final try. */
        if (!tool_pin_record_open(&opin, tool_state_dir(cfg), err, errlen) ||
            !tool_pin_try_begin(&opin, t, pin, sizeof pin, &pinlen, err, errlen))
            goto out;
        rv = st->f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, pinlen);
        tool_pin_try_end(&opin, t, pin, pinlen, rv);
        OPENSSL_cleanse(pin, sizeof pin);
    }
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        snprintf(err, errlen, "operator token login failed: %s (not retried)", p11c_ckr_name(rv));
        goto out;
    }
    if (!tool_token_list_certs(st, s, &certs, &ncerts) ||
        !tool_token_list_keys(st, s, 0, &keys, &nkeys)) {
        snprintf(err, errlen, "cannot read the operator token");
        goto out;
    }
    store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    for (c = 0; c < ncerts; c++) {
        X509_STORE_CTX *vctx = X509_STORE_CTX_new();
        int good = vctx && X509_STORE_CTX_init(vctx, store, certs[c].cert, NULL) &&
                   X509_verify_cert(vctx) == 1;
        X509_STORE_CTX_free(vctx);
        if (!good)
            continue;
        for (k = 0; k < nkeys; k++)
            if (EVP_PKEY_eq(keys[k].pub, X509_get0_pubkey(certs[c].cert)) == 1)
                break;
        if (k < nkeys)
            break;
    }
    if (c == ncerts) {
        snprintf(err, errlen,
                 "operator token %s holds no certificate with its key that chains to %s",
                 t->serial_text, cfg->operator_ca);
        goto out;
    }
    /* A fresh challenge: a recorded signature cannot be replayed. */
    if (RAND_bytes(chal, sizeof chal) != 1 ||
        !tool_key_uri(t, keys[k].id, keys[k].idlen, "private", kuri, sizeof kuri)) {
        snprintf(err, errlen, "cannot make a challenge");
        goto out;
    }
    priv = tool_crypto_load_key(crypto, kuri, &opin, e, sizeof e);
    md = EVP_MD_CTX_new();
    if (!priv || !md ||
        EVP_DigestSignInit_ex(md, NULL, EVP_PKEY_is_a(priv, "ED25519") ? NULL : "SHA256",
                              crypto->libctx, NULL, priv, NULL) <= 0 ||
        EVP_DigestSign(md, sig, &siglen, chal, sizeof chal) <= 0) {
        snprintf(err, errlen, "operator token did not sign the challenge: %s",
                 priv ? tool_ossl_err(e, sizeof e) : e);
        goto out;
    }
    EVP_MD_CTX_free(md);
    md = EVP_MD_CTX_new();
    if (!md ||
        EVP_DigestVerifyInit_ex(md, NULL, EVP_PKEY_is_a(keys[k].pub, "ED25519") ? NULL : "SHA256",
                                crypto->libctx, NULL, X509_get0_pubkey(certs[c].cert), NULL) <= 0 ||
        EVP_DigestVerify(md, sig, siglen, chal, sizeof chal) != 1) {
        snprintf(err, errlen, "operator token's challenge signature does not verify");
        goto out;
    }
    {
        char *subj = X509_NAME_oneline(X509_get_subject_name(certs[c].cert), NULL, 0);
        snprintf(id, idlen, "token:%s", subj ? subj : t->serial_text);
        OPENSSL_free(subj);
    }
    ok = 1;
out:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(priv);
    X509_STORE_free(store);
    X509_free(ca);
    tool_token_certs_free(certs, ncerts);
    tool_token_keys_free(keys, nkeys);
    if (have_s)
        st->f->C_CloseSession(s);
    free(sel);
    tool_pin_clear(&opin);
    return ok;
}

int tool_operator_auth(const tool_config *cfg, tool_station *st, tool_crypto *crypto,
                       const char *pass_source, const char *op_token, const char *op_pin_source,
                       char *id, size_t idlen, char *err, size_t errlen)
{
    char pass[256];
    size_t plen = 0;
    int ok = 0, rc;
    const char *user = getenv("USER");

    id[0] = 0;
    if (op_token) {
        ok = token_auth(cfg, st, crypto, op_token, op_pin_source, id, idlen, err, errlen);
    } else if (pass_source || (cfg && cfg->scrypt && cfg->require_operator)) {
        if (!cfg || !cfg->scrypt) {
            snprintf(err, errlen,
                     "an operator passphrase was given but the config has no [ operator ] "
                     "passphrase hash");
            return 0;
        }
        if (pass_source ? !tool_secret_read(pass_source, NULL, "passphrase", pass, sizeof pass,
                                            &plen, err, errlen)
                        : !tool_prompt_secret("Operator passphrase: ", pass, sizeof pass, &plen)) {
            if (!pass_source)
                snprintf(err, errlen,
                         "operator authentication required: give --operator-pass-source FILE "
                         "or run on a terminal");
            return 0;
        }
        rc = check_passphrase(cfg->scrypt, pass, plen, err, errlen);
        OPENSSL_cleanse(pass, sizeof pass);
        if (rc == 1) {
            snprintf(id, idlen, "passphrase:%s",
                     cfg->operator_name ? cfg->operator_name : (user ? user : "operator"));
            ok = 1;
        }
    } else if (cfg && cfg->require_operator) {
        snprintf(err, errlen,
                 "%s requires operator authentication but names neither a passphrase hash "
                 "nor was --operator-token given",
                 cfg->path);
        return 0;
    } else {
        snprintf(id, idlen, "unauthenticated:%s", user ? user : "unknown");
        ok = 1;
    }
    if (ok)
        snprintf(audit_operator, sizeof audit_operator, "%s", id);
    tool_audit_line(cfg, NULL, "operator-auth", ok ? "ok" : "refused", ok ? id : err);
    return ok;
}
