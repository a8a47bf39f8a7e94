/*
 * ir and cr for `tokenmint ca serve`: CRMF requests carry their proof of
 * possession in the CMP message (checked by OpenSSL's server code), not a
 * PKCS#10 signature, so tm_ca_issue_batch (which verifies one, step 9) cannot
 * take them. This file issues them from the same CA directory without
 * touching the database formats:
 *
 *   1. a certificate already issued for this key and purpose is returned
 *      (never twice), as tm_ca does;
 *   2. the template (as an unsigned request) is checked and turned into a
 *      certificate by the profile library, signed with the CA key of ca.cnf;
 *   3. under DIR/db.lock, newcerts/SERIAL.pem is written and synced (a serial
 *      the index knows is drawn again);
 *   4. the CA is reopened: tm_ca_open's crash recovery completes issued.txt
 *      and index.txt for a certificate file without records, with the tool's
 *      own code and formats. Such records name "recovered" as the operator.
 *
 * Only then is the certificate returned. When tm_ca grows an entry point for
 * a request whose POP the caller verified, this file shrinks to a call.
 */
#include "cmp.h"
#include "cmp_crmf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/pem.h>

struct tm_cmp_crmf {
    char dir[PATH_MAX];
    char newcerts[PATH_MAX];
    char index[PATH_MAX];
    EVP_PKEY *key;
    const tm_profile *prof;
    tm_crypto *crypto;
    tm_ca *ca; /* borrowed: the server's open CA */
};

static const char *cnf(CONF *c, const char *sect, const char *key)
{
    const char *v = sect ? NCONF_get_string(c, sect, key) : NULL;
    ERR_clear_error();
    return v;
}

tm_cmp_crmf *tm_cmp_crmf_open(const char *dir, tm_ca *ca, const tm_profile *prof, tm_crypto *crypto,
                              char *err, size_t errlen)
{
    tm_cmp_crmf *c = calloc(1, sizeof *c);
    char path[PATH_MAX + 16], e[300];
    CONF *conf = NULL;
    long line = -1;
    const char *sect, *keyref, *db, *nc;

    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->ca = ca;
    c->prof = prof;
    c->crypto = crypto;
    if (!realpath(dir, c->dir)) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof path, "%s/ca.cnf", c->dir);
    conf = NCONF_new(NULL);
    if (!conf || NCONF_load(conf, path, &line) <= 0) {
        snprintf(err, errlen, "%s: cannot read", path);
        goto fail;
    }
    sect = cnf(conf, "ca", "default_ca");
    keyref = cnf(conf, sect, "private_key");
    db = cnf(conf, sect, "database");
    nc = cnf(conf, sect, "new_certs_dir");
    if (!keyref || !db || !nc) {
        snprintf(err, errlen, "%s: no private_key, database or new_certs_dir", path);
        goto fail;
    }
    snprintf(c->index, sizeof c->index, "%s", db);
    snprintf(c->newcerts, sizeof c->newcerts, "%s", nc);
    if (strncmp(keyref, "pkcs11:", 7) == 0) {
        c->key = tm_crypto_load_key(crypto, keyref, NULL, e, sizeof e);
    } else {
        FILE *f = fopen(keyref, "r");
        c->key = f ? PEM_read_PrivateKey_ex(f, NULL, NULL, NULL, crypto->libctx, NULL) : NULL;
        if (f)
            fclose(f);
        snprintf(e, sizeof e, "not a readable unencrypted PEM private key");
    }
    if (!c->key) {
        snprintf(err, errlen, "CA key %s: %s", keyref, e);
        goto fail;
    }
    NCONF_free(conf);
    return c;
fail:
    NCONF_free(conf);
    tm_cmp_crmf_close(c);
    return NULL;
}

void tm_cmp_crmf_close(tm_cmp_crmf *c)
{
    if (!c)
        return;
    EVP_PKEY_free(c->key);
    free(c);
}

static int index_has(const char *index, const char *serial)
{
    FILE *f = fopen(index, "r");
    char line[4096];
    int found = 0;

    if (!f)
        return 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *p = line;
        int i;
        for (i = 0; i < 3 && p; i++) {
            p = strchr(p, '\t');
            if (p)
                p++;
        }
        if (p) {
            size_t l = strcspn(p, "\t\n");
            found = l == strlen(serial) && strncmp(p, serial, l) == 0;
        }
    }
    fclose(f);
    return found;
}

static int sign(X509 *cert, EVP_PKEY *key, OSSL_LIB_CTX *libctx)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    const char *dg = "SHA256";
    int ok;

    if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
        dg = NULL;
    else if (EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) >= 384)
        dg = "SHA384";
    ok = md && EVP_DigestSignInit_ex(md, NULL, dg, libctx, NULL, key, NULL) > 0 &&
         X509_sign_ctx(cert, md) > 0;
    EVP_MD_CTX_free(md);
    return ok;
}

/* Writes newcerts/SERIAL.pem (synced) under db.lock, drawing a new serial
 * while the index knows it. Returns 1, or 0 with err. */
static int store(tm_cmp_crmf *c, X509 *cert, char *err, size_t errlen)
{
    char path[PATH_MAX + 16], nc[PATH_MAX + 300], *sn = NULL;
    int lockfd, fd = -1, ok = 0, tries;
    BIO *b = NULL;
    char *pem;
    long pemlen;

    snprintf(path, sizeof path, "%s/db.lock", c->dir);
    lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lockfd < 0 || flock(lockfd, LOCK_EX) != 0) {
        snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
        goto out;
    }
    for (tries = 0; tries < 8; tries++) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
        OPENSSL_free(sn);
        sn = bn ? BN_bn2hex(bn) : NULL;
        BN_free(bn);
        if (!sn)
            break;
        snprintf(nc, sizeof nc, "%s/%s.pem", c->newcerts, sn);
        if (!index_has(c->index, sn) && access(nc, F_OK) != 0)
            break;
        {
            ASN1_INTEGER *r = tm_profile_random_serial();
            X509_set_serialNumber(cert, r);
            ASN1_INTEGER_free(r);
        }
        if (!sign(cert, c->key, c->crypto->libctx))
            break;
        OPENSSL_free(sn);
        sn = NULL;
    }
    if (!sn) {
        snprintf(err, errlen, "no unique certificate serial");
        goto out;
    }
    b = BIO_new(BIO_s_mem());
    if (!b || !PEM_write_bio_X509(b, cert)) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    pemlen = BIO_get_mem_data(b, &pem);
    fd = open(nc, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, pem, (size_t)pemlen) != (ssize_t)pemlen || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot store %s: %s", nc, strerror(errno));
        if (fd >= 0)
            unlink(nc);
        goto out;
    }
    {
        int dfd = open(c->newcerts, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ok = dfd >= 0 && fsync(dfd) == 0;
        if (dfd >= 0)
            close(dfd);
        if (!ok)
            snprintf(err, errlen, "cannot sync %s: %s", c->newcerts, strerror(errno));
    }
out:
    if (fd >= 0)
        close(fd);
    if (lockfd >= 0)
        close(lockfd); /* releases the flock */
    BIO_free(b);
    OPENSSL_free(sn);
    return ok;
}

X509 *tm_cmp_crmf_issue(tm_cmp_crmf *c, const X509_REQ *tmpl, const char *purpose, int *failinfo,
                        char *err, size_t errlen)
{
    tm_violations *v = tm_violations_new();
    EVP_PKEY *pub = X509_REQ_get0_pubkey((X509_REQ *)tmpl);
    X509 *cert = NULL;
    tm_ca *again;
    char why[400];

    *failinfo = OSSL_CMP_PKIFAILUREINFO_systemFailure;
    if (!v || !pub) {
        snprintf(err, errlen, "out of memory");
        goto bad;
    }
    cert = tm_ca_find_by_key(c->ca, pub, purpose);
    if (cert)
        goto done; /* issued before for this key: never twice */
    if (tm_profile_check_req(c->prof, tmpl, v) != 0) {
        tm_violations_join(v, why, sizeof why);
        *failinfo = OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
        snprintf(err, errlen, "request breaks the profile: %s", why);
        goto bad;
    }
    cert = X509_new_ex(c->crypto->libctx, NULL);
    if (!cert || !X509_set_version(cert, 2) || !X509_set_pubkey(cert, pub) ||
        !tm_profile_issue(c->prof, cert, tmpl, tm_ca_root(c->ca), v)) {
        tm_violations_join(v, why, sizeof why);
        *failinfo = OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
        snprintf(err, errlen, "cannot issue: %s", why);
        goto bad;
    }
    if (!sign(cert, c->key, c->crypto->libctx)) {
        snprintf(err, errlen, "the CA key did not sign");
        goto bad;
    }
    if (!store(c, cert, err, errlen))
        goto bad;
    /* tm_ca_open completes the records of the file just written. */
    again = tm_ca_open(c->dir, c->prof, c->crypto, "cmp", why, sizeof why);
    if (!again) {
        snprintf(err, errlen, "certificate stored but the CA database was not updated: %s", why);
        goto bad;
    }
    tm_ca_close(again);
done:
    tm_violations_free(v);
    return cert;
bad:
    ERR_clear_error();
    tm_violations_free(v);
    X509_free(cert);
    return NULL;
}
