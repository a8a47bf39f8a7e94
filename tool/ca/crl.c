/*
 * The local CA's full CRL (issue 12): every revoked record of the store,
 * with its revocation time and CRLReason, a CRL number and a nextUpdate
 * default_crl_days after thisUpdate (ca.cnf, the key stock `openssl ca
 * -gencrl` reads too). The number lives in DIR/crlnumber, the file stock
 * openssl ca counts in, so CRLs made by either are numbered in one sequence.
 */
#include "ca/crl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

typedef struct crl_fill {
    X509_CRL *crl;
    size_t n;
    int failed;
} crl_fill;

static int add_revoked(const tool_cs_record *r, void *user)
{
    crl_fill *f = user;
    X509_REVOKED *rv = X509_REVOKED_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *sn = NULL;
    ASN1_TIME *when = NULL;
    ASN1_ENUMERATED *reason = NULL;
    int ok = 0;

    if (!rv || !BN_hex2bn(&bn, r->serial) || !(sn = BN_to_ASN1_INTEGER(bn, NULL)) ||
        !X509_REVOKED_set_serialNumber(rv, sn) ||
        !(when = ASN1_TIME_set(NULL, (time_t)r->revoked_at)) ||
        !X509_REVOKED_set_revocationDate(rv, when))
        goto out;
    /* unspecified (0) is left out, as RFC 5280 section 5.3.1 asks */
    if (r->reason > 0) {
        reason = ASN1_ENUMERATED_new();
        if (!reason || !ASN1_ENUMERATED_set(reason, r->reason) ||
            !X509_REVOKED_add1_ext_i2d(rv, NID_crl_reason, reason, 0, 0))
            goto out;
    }
    if (!X509_CRL_add0_revoked(f->crl, rv))
        goto out;
    rv = NULL;
    f->n++;
    ok = 1;
out:
    X509_REVOKED_free(rv);
    BN_free(bn);
    ASN1_INTEGER_free(sn);
    ASN1_TIME_free(when);
    ASN1_ENUMERATED_free(reason);
    if (!ok)
        f->failed = 1;
    return ok;
}

/* DIR/crlnumber (hex, as openssl ca writes it): read, or 1 when absent. */
static BIGNUM *read_number(const char *path, char *err, size_t errlen)
{
    char line[256] = "";
    BIGNUM *bn = NULL;
    FILE *f = fopen(path, "r");

    if (!f) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return NULL;
        }
        bn = BN_new();
        if (bn)
            BN_set_word(bn, 1);
        return bn;
    }
    if (!fgets(line, sizeof line, f))
        line[0] = 0;
    fclose(f);
    line[strcspn(line, "\r\n \t")] = 0;
    if (!line[0] || strspn(line, "0123456789abcdefABCDEF") != strlen(line) ||
        !BN_hex2bn(&bn, line)) {
        snprintf(err, errlen, "%s: not a hex CRL number", path);
        return NULL;
    }
    return bn;
}

/* The next number, written durably before the CRL it numbers is handed out. */
static int write_number(const char *path, const BIGNUM *next, char *err, size_t errlen)
{
    char tmp[4200];
    char *hex = BN_bn2hex(next);
    int fd = -1, ok = 0;
    size_t len;

    snprintf(tmp, sizeof tmp, "%s.new", path);
    if (!hex)
        goto out;
    len = strlen(hex);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, hex, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
        fsync(fd) != 0 || close(fd) != 0) {
        if (fd >= 0)
            close(fd);
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto out;
    ok = 1;
out:
    if (!ok)
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    OPENSSL_free(hex);
    return ok;
}

X509_CRL *tool_crl_build(const tool_crl_params *p, char *err, size_t errlen)
{
    X509_CRL *crl = X509_CRL_new();
    crl_fill f = {crl, 0, 0};
    tool_cs_filter filter;
    BIGNUM *num = NULL;
    ASN1_INTEGER *crlnum = NULL;
    ASN1_TIME *now = NULL, *next = NULL;
    EVP_MD_CTX *md = NULL;
    time_t t = time(NULL);
    int ok = 0;

    tool_return_val_if_fail(p != NULL && p->db != NULL && p->root != NULL && p->key != NULL, NULL);
    if (!crl)
        goto oom;
    num = read_number(p->number_path, err, errlen);
    if (!num)
        goto out;
    if (!X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(p->root)) ||
        !(now = ASN1_TIME_set(NULL, t)) || !X509_CRL_set1_lastUpdate(crl, now) ||
        !(next = ASN1_TIME_adj(NULL, t, (int)p->days, 0)) || !X509_CRL_set1_nextUpdate(crl, next))
        goto oom;
    memset(&filter, 0, sizeof filter);
    filter.status = TOOL_CS_REVOKED;
    if (tool_castore_list(p->db, &filter, add_revoked, &f) != TOOL_CS_OK) {
        snprintf(err, errlen, "CA database: %s", tool_castore_error(p->db));
        goto out;
    }
    if (f.failed)
        goto oom;
    {
        /* authorityKeyIdentifier from the root's SKI, and the number */
        X509V3_CTX v3;
        X509_EXTENSION *aki;
        X509V3_set_ctx(&v3, p->root, NULL, NULL, crl, 0);
        aki = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier, "keyid:always");
        if (!aki || !X509_CRL_add_ext(crl, aki, -1)) {
            X509_EXTENSION_free(aki);
            snprintf(err, errlen, "the CA certificate has no subjectKeyIdentifier for the CRL");
            goto out;
        }
        X509_EXTENSION_free(aki);
    }
    if (!(crlnum = BN_to_ASN1_INTEGER(num, NULL)) ||
        !X509_CRL_add1_ext_i2d(crl, NID_crl_number, crlnum, 0, 0))
        goto oom;
    X509_CRL_sort(crl);
    md = EVP_MD_CTX_new();
    if (!md ||
        EVP_DigestSignInit_ex(md, NULL,
                              EVP_PKEY_get_id(p->key) == EVP_PKEY_ED25519 ? NULL : "SHA256",
                              p->libctx, NULL, p->key, NULL) != 1 ||
        X509_CRL_sign_ctx(crl, md) <= 0) {
        snprintf(err, errlen, "the CA key did not sign the CRL");
        goto out;
    }
    if (!BN_add_word(num, 1) || !write_number(p->number_path, num, err, errlen))
        goto out;
    ok = 1;
    goto out;
oom:
    snprintf(err, errlen, "cannot build the CRL (out of memory?)");
out:
    if (p && ok && p->count)
        *p->count = f.n;
    EVP_MD_CTX_free(md);
    BN_free(num);
    ASN1_INTEGER_free(crlnum);
    ASN1_TIME_free(now);
    ASN1_TIME_free(next);
    ERR_clear_error();
    if (!ok) {
        X509_CRL_free(crl);
        return NULL;
    }
    return crl;
}
