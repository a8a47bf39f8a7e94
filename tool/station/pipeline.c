/*
 * The issuing pipeline for one token: SUMMARY steps 3 to 12, one function
 * per step, in order. Steps 1-2 (operator, station initialisation) happen
 * once per run in main.c/operator.c; step 13 (next token) is the worker loop
 * in station.c.
 *
 * Resumability lives here: a token that already holds a certificate for the
 * purpose is done; a free key pair (no certificate) left by an interrupted
 * run is reused; a certificate the CA issued for that key but that never
 * reached the token is taken from the CA directory and written, not issued
 * again.
 */
#include "ca/ca.h"
#include "ca/castore.h"
#include "station/station.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#define PURPOSE_LABEL_PREFIX "tokenmint:"
#define TOOL_OLDS_MAX 8
#define TOOL_OLD_SERIAL 84

typedef struct token_ctx {
    tool_run *run;
    tool_token *t;
    tool_result *res;
    CK_SESSION_HANDLE s;
    int have_session;
    tool_token_key *keys;
    size_t nkeys;
    tool_token_cert *certs;
    size_t ncerts;
    /* the chosen key pair */
    EVP_PKEY *pub; /* borrowed from keys[] or owned_pub */
    EVP_PKEY *owned_pub;
    unsigned char id[64];
    size_t idlen;
    char label[64];
    int login_tried; /* reached tool_token_login (PIN tries are counted there) */
    int refused;     /* failed by a check before the token was touched (audit: refused) */
    /* renew: the token's certificates the new one supersedes at the CA */
    char olds[TOOL_OLDS_MAX][TOOL_OLD_SERIAL];
    size_t nolds;
    /* renew --retire-old: the good certificate already on the token (an
     * interrupted run) and other certificates for the purpose to remove */
    int retire_pending;
    X509 *keep; /* borrowed from certs[] */
    /* renew: the token's newest certificate for the purpose, the one being
     * renewed (borrowed from certs[]), and whether its key pair stays */
    X509 *renew_from;
    size_t renew_idx;
    int same_key;
    int renew_signs; /* the renewed certificate may sign for its renewal (kur) */
    /* renewal over CMP (kur): the old certificate's key protects the
     * request, the new key proves possession; loaded through the provider */
    EVP_PKEY *old_key, *new_key;
    char replaces[TOOL_OLD_SERIAL]; /* same key: its serial, superseded by the CA */
} token_ctx;

static int fail(token_ctx *c, int step, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(token_ctx *c, int step, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->res->error, sizeof c->res->error, fmt, ap);
    va_end(ap);
    c->res->step = step;
    c->res->kind = TOOL_RES_FAILED;
    return 0;
}

/* ---- step 3: is the token there? ------------------------------------------------ */

static int token_present(token_ctx *c)
{
    CK_RV rv = tool_token_refresh(c->run->st, c->t);

    if (rv != CKR_OK)
        return fail(c, 3, "token not present (%s)", p11c_ckr_name(rv));
    if (!(c->t->info.flags & CKF_TOKEN_INITIALIZED) ||
        !(c->t->info.flags & CKF_USER_PIN_INITIALIZED))
        return fail(c, 3, "token is not initialised (no user PIN set)");
    return 1;
}

/* ---- step 4: usable for issuance: open a session and log in ---------------------- */

/* One C_Login at a time across the station. SoftHSM2 rewrites a token's
 * file in place on every login; a kill -9 inside that write empties it and
 * the token is gone. Logins one after the other put at most one token inside
 * that window at any moment, instead of every token at once. */
static pthread_mutex_t login_mu = PTHREAD_MUTEX_INITIALIZER;

int tool_token_login(tool_run *run, tool_token *t, CK_SESSION_HANDLE s, char *err, size_t errlen)
{
    char pin[256];
    size_t len = 0;
    CK_RV rv;
    int ok = 0;

    if (t->info.flags & CKF_USER_PIN_LOCKED) {
        snprintf(err, errlen, "user PIN is locked; not trying");
        tool_pin_skip(run->pin, t);
        return 0;
    }
    if (t->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) {
        /* The module derives the PIN from the serial (claim 5): no PIN here,
         * but a wrong derived PIN costs a try like any other. */
        tool_pin_skip(run->pin, t);
        if ((t->info.flags & CKF_USER_PIN_FINAL_TRY) && !run->pin->allow_final_try) {
            snprintf(err, errlen,
                     "not tried: the token's next wrong PIN locks it (CKF_USER_PIN_FINAL_TRY); "
                     "--allow-final-try logs in anyway");
            return 0;
        }
        pthread_mutex_lock(&login_mu);
        rv = run->st->f->C_Login(s, CKU_USER, NULL, 0);
        pthread_mutex_unlock(&login_mu);
    } else {
        if (!tool_pin_try_begin(run->pin, t, pin, sizeof pin, &len, err, errlen)) {
            tool_pin_skip(run->pin, t);
            return 0;
        }
        pthread_mutex_lock(&login_mu);
        rv = run->st->f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, len);
        pthread_mutex_unlock(&login_mu);
        tool_pin_try_end(run->pin, t, pin, len, rv);
        OPENSSL_cleanse(pin, sizeof pin);
    }
    /* Never retried: one wrong PIN costs the token one try, no more. */
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
        ok = 1;
    else if (rv == CKR_PIN_INCORRECT)
        snprintf(err, errlen, "wrong PIN (tried once; not retried)");
    else if (rv == CKR_PIN_LOCKED)
        snprintf(err, errlen, "user PIN is locked");
    else
        snprintf(err, errlen, "login failed: %s", p11c_ckr_name(rv));
    if (!ok)
        tool_audit_line(run->cfg, t->serial_text, "login", "failed", err);
    return ok;
}

int tool_token_set_derived_pin(tool_run *run, tool_token *t, CK_SESSION_HANDLE s, char *err,
                               size_t errlen)
{
    char pin[256];
    size_t len = 0;
    CK_RV rv;

    if (t->info.flags & CKF_USER_PIN_LOCKED) {
        snprintf(err, errlen, "user PIN is locked; not trying");
        tool_pin_skip(run->pin, t);
        return 0;
    }
    if (!tool_pin_try_begin(run->pin, t, pin, sizeof pin, &len, err, errlen)) {
        tool_pin_skip(run->pin, t);
        return 0;
    }
    /* The module derives the new PIN from the station secret and the serial;
     * the old one is checked by the token and costs a try when wrong. */
    pthread_mutex_lock(&login_mu);
    rv = run->st->f->C_SetPIN(s, (CK_UTF8CHAR_PTR)pin, len, NULL, 0);
    pthread_mutex_unlock(&login_mu);
    tool_pin_try_end(run->pin, t, pin, len, rv);
    OPENSSL_cleanse(pin, sizeof pin);
    if (rv == CKR_OK)
        return 1;
    if (rv == CKR_PIN_INCORRECT)
        snprintf(err, errlen, "wrong factory PIN (tried once; not retried)");
    else if (rv == CKR_PIN_LOCKED)
        snprintf(err, errlen, "user PIN is locked");
    else if (rv == CKR_ARGUMENTS_BAD)
        snprintf(err, errlen, "the module derives no PINs (no station_secret in its config?): %s",
                 p11c_ckr_name(rv));
    else
        snprintf(err, errlen, "C_SetPIN failed: %s", p11c_ckr_name(rv));
    tool_audit_line(run->cfg, t->serial_text, "set-pin", "failed", err);
    return 0;
}

/* A session and the token's certificates: public objects, no login. */
static int token_open(token_ctx *c)
{
    tool_station *st = c->run->st;
    CK_RV rv;

    rv = st->f->C_OpenSession(c->t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &c->s);
    if (rv != CKR_OK)
        return fail(c, 4, "cannot open a session: %s", p11c_ckr_name(rv));
    c->have_session = 1;
    if (!tool_token_list_certs(st, c->s, &c->certs, &c->ncerts))
        return fail(c, 4, "cannot read the token's certificates");
    return 1;
}

/* The login, then the key pairs (private objects). Only for a token that has
 * work to do: SoftHSM2 rewrites its token file on every C_Login, so a kill
 * during a login can cost the token; a token already done is never logged
 * in to. */
static int token_usable(token_ctx *c)
{
    tool_station *st = c->run->st;
    char err[256];

    if (!c->have_session && !token_open(c))
        return 0;
    c->login_tried = 1;
    if (!tool_token_login(c->run, c->t, c->s, err, sizeof err))
        return fail(c, 4, "%s", err);
    if (!tool_token_list_keys(st, c->s, 0, &c->keys, &c->nkeys))
        return fail(c, 4, "cannot read the token's key pairs");
    return 1;
}

/* ---- renewal: which of the token's certificates still count ---------------------- */

enum { CERT_GOOD, CERT_EXPIRING, CERT_EXPIRED, CERT_REVOKED, CERT_SUPERSEDED, CERT_UNKNOWN };

/* What a certificate on the token is worth now: its dates, and what the CA
 * says of it when the CA keeps status (a local CA; a CMP CA does not).
 * *at_ca: 'V', 'R', 'E', 'S' from the CA, 0 when it does not say.
 * CERT_UNKNOWN (why in c->res->error) when the CA cannot be asked: a token
 * is never counted done, or renewed, on a guess. */
static int cert_state(token_ctx *c, X509 *x, long long within, char *at_ca)
{
    time_t now = time(NULL), soon = now + (time_t)within;
    int64_t rat = 0;
    int reason = -1, known = 0;
    char st = 0, e[300] = "";

    *at_ca = 0;
    if (c->run->ca && tool_ca_has_status(c->run->ca))
        known = tool_ca_status(c->run->ca, X509_get_issuer_name(x), X509_get0_serialNumber(x), &st,
                               &rat, &reason, e, sizeof e);
    if (known < 0) {
        fail(c, 4, "cannot read the certificate's status at the CA: %s", e);
        return CERT_UNKNOWN;
    }
    if (known == 1)
        *at_ca = st;
    if (st == 'R')
        return CERT_REVOKED;
    if (st == 'S')
        return CERT_SUPERSEDED;
    if (st == 'E' || X509_cmp_time(X509_get0_notAfter(x), &now) <= 0)
        return CERT_EXPIRED;
    if (within > 0 && X509_cmp_time(X509_get0_notAfter(x), &soon) <= 0)
        return CERT_EXPIRING;
    return CERT_GOOD;
}

static const char *state_words(int st)
{
    switch (st) {
    case CERT_EXPIRING:
        return "expires soon";
    case CERT_EXPIRED:
        return "expired";
    case CERT_REVOKED:
        return "was revoked";
    case CERT_SUPERSEDED:
        return "was superseded";
    }
    return "is good";
}

static void serial_hex_of(X509 *x, char *out, size_t outlen)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *h = bn ? BN_bn2hex(bn) : NULL;
    snprintf(out, outlen, "%s", h ? h : "");
    OPENSSL_free(h);
    BN_free(bn);
}

/* The renewal's bookkeeping: certificates the CA still counts as valid that
 * the token's newest good one replaces. A run killed after the write and
 * before this leaves them valid; the next run finds the good one and ends
 * the job here. */
static int supersede_olds(token_ctx *c, const char *by, char olds[][TOOL_OLD_SERIAL], size_t n)
{
    char e[400];
    size_t i;

    for (i = 0; i < n; i++) {
        /* a same-key renewal's old certificate stepped down as the CA
         * stored the new one */
        if (c->replaces[0] && tool_cs_serial_eq(olds[i], c->replaces))
            goto noted;
        if (tool_ca_supersede(c->run->ca, olds[i], by, e, sizeof e) < 0)
            return fail(c, 12,
                        "certificate %s is on the token, but the CA did not record that it "
                        "supersedes %s: %s (re-run renew)",
                        by, olds[i], e);
        tool_audit_line(c->run->cfg, c->t->serial_text, "supersede", olds[i], by);
    noted:
        if (strlen(c->res->replaces) + strlen(olds[i]) + 2 < sizeof c->res->replaces) {
            if (c->res->replaces[0])
                strcat(c->res->replaces, ",");
            strcat(c->res->replaces, olds[i]);
        }
    }
    return 1;
}

/* A certificate on the token for this purpose that names this token, and
 * still counts: valid, not revoked or superseded at the CA (and for renew,
 * not expiring within the window). Sets the result: DONE; for issue, RENEW
 * when every such certificate has run out; for renew, nothing when one
 * must be made (then the ones it will replace are in c->olds). Returns 1
 * when the token stops here. */
static int already_done(token_ctx *c)
{
    long long within = c->run->renew ? c->run->renew_within : 0;
    int best = -1, nmatch = 0, st, why = CERT_GOOD;
    char why_serial[80] = "";
    size_t i;

    int newest = -1, newest_st = CERT_GOOD;

    c->nolds = 0;
    for (i = 0; i < c->ncerts; i++) {
        tm_binding b;
        char ca_st = 0, sn[80];
        X509 *x = c->certs[i].cert;
        if (!tm_binding_from_cert(c->run->prof, x, &b, NULL))
            continue;
        if (!tm_binding_names_serial(&b, c->t->serial, c->t->serial_len))
            continue;
        if (strcmp(b.purpose, c->run->purpose) != 0)
            continue;
        nmatch++;
        st = cert_state(c, x, within, &ca_st);
        if (st == CERT_UNKNOWN)
            return 1; /* failed, with the reason */
        serial_hex_of(x, sn, sizeof sn);
        if (newest < 0 || ASN1_TIME_compare(X509_get0_notBefore(c->certs[newest].cert),
                                            X509_get0_notBefore(x)) < 0) {
            newest = (int)i;
            newest_st = st;
        }
        if (st == CERT_GOOD) {
            if (best < 0 || ASN1_TIME_compare(X509_get0_notBefore(c->certs[best].cert),
                                              X509_get0_notBefore(x)) < 0) {
                /* the newest good one counts; an older good one is replaced */
                if (best >= 0 && c->nolds < TOOL_OLDS_MAX)
                    serial_hex_of(c->certs[best].cert, c->olds[c->nolds++], TOOL_OLD_SERIAL);
                best = (int)i;
            } else if (c->nolds < TOOL_OLDS_MAX) {
                snprintf(c->olds[c->nolds++], TOOL_OLD_SERIAL, "%s", sn);
            }
            continue;
        }
        /* the CA still counts it valid: the new certificate supersedes it */
        if (ca_st == 'V' && c->nolds < TOOL_OLDS_MAX)
            snprintf(c->olds[c->nolds++], TOOL_OLD_SERIAL, "%s", sn);
        if (why == CERT_GOOD || st > why) {
            why = st;
            snprintf(why_serial, sizeof why_serial, "%s", sn);
        }
    }
    if (best >= 0) {
        X509 *x = c->certs[best].cert;
        serial_hex_of(x, c->res->cert_serial, sizeof c->res->cert_serial);
        p11c_hex_encode(c->certs[best].id, c->certs[best].idlen, c->res->key_id,
                        sizeof c->res->key_id);
        c->res->kind = TOOL_RES_DONE;
        /* an interrupted renewal: the new one is on the token, the old ones
         * are still valid at the CA */
        if (c->run->renew && c->nolds)
            supersede_olds(c, c->res->cert_serial, c->olds, c->nolds);
        /* and perhaps not yet retired: that needs a login (job_prepare) */
        if (c->run->renew && c->run->retire_old && nmatch > 1 && c->res->kind == TOOL_RES_DONE) {
            c->retire_pending = 1;
            c->keep = x;
        }
        return 1;
    }
    if (!nmatch) {
        if (!c->run->renew)
            return 0;
        fail(c, 4,
             "no certificate for %s on this token to renew; `tokenmint issue` gives it its first",
             c->run->purpose);
        return 1;
    }
    if (c->run->renew) {
        /* renewal keeps the newest certificate's key pair unless asked not
         * to, or unless that certificate was revoked (its key may be
         * compromised) */
        c->renew_from = c->certs[newest].cert;
        c->renew_idx = (size_t)newest;
        c->same_key = !c->run->rekey && newest_st != CERT_REVOKED;
        /* a CA that renews by the old certificate's signature (CMP kur)
         * takes no expired one, and a plain request for a key it has
         * certified gets that certificate back: a new key pair then */
        c->renew_signs = newest_st != CERT_REVOKED && newest_st != CERT_EXPIRED;
        if (!c->renew_signs && tool_ca_renews_by_signature(c->run->ca))
            c->same_key = 0;
        return 0;
    }
    {
        c->res->kind = TOOL_RES_RENEW;
        snprintf(c->res->cert_serial, sizeof c->res->cert_serial, "%s", why_serial);
        snprintf(c->res->error, sizeof c->res->error,
                 "needs renewal: certificate %s %s; run `tokenmint renew --token "
                 "pkcs11:serial=%s`",
                 why_serial, state_words(why), c->t->serial_text);
        return 1;
    }
}

/* ---- step 5: a free key pair of the asked type, or a new one --------------------- */

static int key_is_type(EVP_PKEY *pk, tool_keytype kt)
{
    char group[64] = "";
    size_t gl = 0;

    switch (kt) {
    case TOOL_KEY_P256:
    case TOOL_KEY_P384:
        if (!EVP_PKEY_is_a(pk, "EC") ||
            !EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof group, &gl))
            return 0;
        return kt == TOOL_KEY_P256 ? (!strcmp(group, "prime256v1") || !strcmp(group, "P-256"))
                                   : (!strcmp(group, "secp384r1") || !strcmp(group, "P-384"));
    case TOOL_KEY_RSA2048:
        return EVP_PKEY_is_a(pk, "RSA") && EVP_PKEY_get_bits(pk) == 2048;
    case TOOL_KEY_RSA3072:
        return EVP_PKEY_is_a(pk, "RSA") && EVP_PKEY_get_bits(pk) == 3072;
    case TOOL_KEY_ED25519:
        return EVP_PKEY_is_a(pk, "ED25519");
    }
    return 0;
}

static int key_has_cert(token_ctx *c, EVP_PKEY *pub)
{
    size_t i;
    for (i = 0; i < c->ncerts; i++)
        if (EVP_PKEY_eq(X509_get0_pubkey(c->certs[i].cert), pub) == 1)
            return 1;
    return 0;
}

static int find_free_key_pair(token_ctx *c)
{
    char want[64];
    size_t i;

    snprintf(want, sizeof want, PURPOSE_LABEL_PREFIX "%s", c->run->purpose);
    for (i = 0; i < c->nkeys; i++) {
        tool_token_key *k = &c->keys[i];
        /* Key pairs made for another purpose, or by someone else, are left alone. */
        if (strcmp(k->label, want) != 0 || !key_is_type(k->pub, c->run->keytype))
            continue;
        if (key_has_cert(c, k->pub))
            continue;
        c->pub = k->pub;
        memcpy(c->id, k->id, k->idlen);
        c->idlen = k->idlen;
        snprintf(c->label, sizeof c->label, "%s", k->label);
        c->res->key_reused = 1;
        return 1;
    }
    return 0;
}

/* Same-key renewal: the key pair of the certificate being renewed, when
 * it is still complete on the token. */
static int renewed_key_pair(token_ctx *c)
{
    EVP_PKEY *old = X509_get0_pubkey(c->renew_from);
    size_t i;

    for (i = 0; old && i < c->nkeys; i++) {
        tool_token_key *k = &c->keys[i];
        if (EVP_PKEY_eq(k->pub, old) != 1)
            continue;
        c->pub = k->pub;
        memcpy(c->id, k->id, k->idlen);
        c->idlen = k->idlen;
        snprintf(c->label, sizeof c->label, "%s", k->label);
        c->res->key_reused = 1;
        serial_hex_of(c->renew_from, c->replaces, sizeof c->replaces);
        return 1;
    }
    return 0;
}

/* 1 when the token holds an object with the ID just tried (or cannot say). */
static int left_objects(token_ctx *c)
{
    CK_ATTRIBUTE tmpl = {CKA_ID, c->id, c->idlen};
    CK_OBJECT_HANDLE h;

    return p11c_find_first(c->run->st->f, c->s, &tmpl, 1, &h) != CKR_OK || h != CK_INVALID_HANDLE;
}

static int generate_key_pair(token_ctx *c)
{
    static const CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    static const CK_BYTE p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
    static const CK_BYTE ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
    static const CK_BYTE e65537[] = {0x01, 0x00, 0x01};
    tool_station *st = c->run->st;
    CK_BBOOL t = CK_TRUE, f = CK_FALSE;
    CK_ULONG bits = 0;
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pub[8], priv[8];
    CK_ULONG np = 0, nv = 0;
    CK_OBJECT_HANDLE hpub, hpriv;
    CK_RV rv;

    snprintf(c->label, sizeof c->label, PURPOSE_LABEL_PREFIX "%s", c->run->purpose);
    c->idlen = 8;
    if (RAND_bytes(c->id, (int)c->idlen) != 1)
        return fail(c, 5, "no random bytes for the key ID");

#define A(arr, n, ty, p, l)                                                                        \
    (arr[n].type = (ty), arr[n].pValue = (void *)(p), arr[n++].ulValueLen = (l))
    A(pub, np, CKA_TOKEN, &t, sizeof t);
    A(pub, np, CKA_VERIFY, &t, sizeof t);
    A(pub, np, CKA_ID, c->id, c->idlen);
    A(pub, np, CKA_LABEL, c->label, strlen(c->label));
    A(priv, nv, CKA_TOKEN, &t, sizeof t);
    A(priv, nv, CKA_PRIVATE, &t, sizeof t);
    A(priv, nv, CKA_SENSITIVE, &t, sizeof t);
    A(priv, nv, CKA_EXTRACTABLE, &f, sizeof f);
    A(priv, nv, CKA_SIGN, &t, sizeof t);
    A(priv, nv, CKA_ID, c->id, c->idlen);
    A(priv, nv, CKA_LABEL, c->label, strlen(c->label));
    switch (c->run->keytype) {
    case TOOL_KEY_P256:
        A(pub, np, CKA_EC_PARAMS, p256, sizeof p256);
        break;
    case TOOL_KEY_P384:
        A(pub, np, CKA_EC_PARAMS, p384, sizeof p384);
        break;
    case TOOL_KEY_ED25519:
        mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
        A(pub, np, CKA_EC_PARAMS, ed25519, sizeof ed25519);
        break;
    case TOOL_KEY_RSA2048:
    case TOOL_KEY_RSA3072:
        mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
        bits = c->run->keytype == TOOL_KEY_RSA2048 ? 2048 : 3072;
        A(pub, np, CKA_MODULUS_BITS, &bits, sizeof bits);
        A(pub, np, CKA_PUBLIC_EXPONENT, e65537, sizeof e65537);
        break;
    }
#undef A
    rv = st->f->C_GenerateKeyPair(c->s, &mech, pub, np, priv, nv, &hpub, &hpriv);
    /* CKR_GENERAL_ERROR and CKR_FUNCTION_FAILED name no cause: SoftHSM2
     * 2.6.1 returns them now and then under concurrent object creation
     * (its issue #573), a card after a communication glitch. Asked once
     * more, with a new ID, only when the failed call left no object behind:
     * a half-made pair is never doubled. No PIN is involved. */
    if ((rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED) && !left_objects(c)) {
        tool_debug("token %s: key pair generation failed (%s) and left nothing; once more",
                   c->t->serial_text, p11c_ckr_name(rv));
        if (RAND_bytes(c->id, (int)c->idlen) != 1)
            return fail(c, 5, "no random bytes for the key ID");
        c->res->key_retried = 1;
        rv = st->f->C_GenerateKeyPair(c->s, &mech, pub, np, priv, nv, &hpub, &hpriv);
    }
    if (rv != CKR_OK)
        return fail(c, 5, "key pair generation (%s) failed: %s%s",
                    tool_keytype_name(c->run->keytype), p11c_ckr_name(rv),
                    c->res->key_retried ? " (twice; the first failure left nothing)" : "");
    c->owned_pub = tool_token_public_key(st, c->s, hpub);
    if (!c->owned_pub)
        return fail(c, 5, "cannot read the new key pair's public key");
    c->pub = c->owned_pub;
    c->res->key_generated = 1;
    return 1;
}

/* ---- step 6: the token's identification ----------------------------------------- */

static int read_serial(token_ctx *c)
{
    unsigned char before[TM_SERIAL_MAX];
    size_t blen = c->t->serial_len;
    CK_RV rv;

    memcpy(before, c->t->serial, blen);
    rv = tool_token_refresh(c->run->st, c->t);
    if (rv != CKR_OK)
        return fail(c, 6, "cannot read the token serial: %s", p11c_ckr_name(rv));
    if (c->t->serial_len == 0)
        return fail(c, 6, "the token reports an empty serial number; it cannot be bound");
    /* Another token in the same slot is not the one we logged in to. */
    if (blen != c->t->serial_len || memcmp(before, c->t->serial, blen) != 0)
        return fail(c, 6, "the token in this slot changed during issuance");
    return 1;
}

/* ---- step 7: the request, signed on the token ----------------------------------- */

static const char *digest_for(tool_keytype kt)
{
    switch (kt) {
    case TOOL_KEY_P384:
        return "SHA384";
    case TOOL_KEY_ED25519:
        return NULL;
    default:
        return "SHA256";
    }
}

/* The token signs its own request (claim 7) through the tokenmint provider:
 * the key is opened by pkcs11: URI; the provider checks at signing time that
 * the request names this token. */
/* The token's private key with this CKA_ID, opened through the provider. */
static EVP_PKEY *token_private_key(token_ctx *c, const unsigned char *id, size_t idlen)
{
    tool_crypto *cr = c->run->crypto;
    char uri[600], err[400];
    EVP_PKEY *key;

    if (!cr->have_provider) {
        fail(c, 7, "cannot sign on the token: %s", cr->err);
        return NULL;
    }
    if (!tool_key_uri(c->t, id, idlen, "private", uri, sizeof uri)) {
        fail(c, 7, "cannot form the key's pkcs11: URI");
        return NULL;
    }
    key = tool_crypto_load_key(cr, uri, c->run->pin, err, sizeof err);
    if (!key)
        fail(c, 7, "the provider cannot open the token key: %s", err);
    return key;
}

static int sign_request_on_token(token_ctx *c, X509_REQ *req)
{
    tool_crypto *cr = c->run->crypto;
    char err[400];
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    int ok = 0;

    key = token_private_key(c, c->id, c->idlen);
    if (!key)
        goto out;
    md = EVP_MD_CTX_new();
    if (!md ||
        EVP_DigestSignInit_ex(md, NULL, digest_for(c->run->keytype), cr->libctx, NULL, key, NULL) <=
            0 ||
        X509_REQ_sign_ctx(req, md) <= 0) {
        fail(c, 7, "the token did not sign the request: %s", tool_ossl_err(err, sizeof err));
        goto out;
    }
    ok = 1;
    /* kur (renew over CMP) proves possession of the new key again */
    if (c->renew_from && !c->new_key && tool_ca_renews_by_signature(c->run->ca)) {
        c->new_key = key;
        key = NULL;
    }
out:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return ok;
}

/* Renewal: the renewed certificate's key, which signs a kur. A key pair no
 * longer on the token leaves it NULL (the CA then gets a plain request). */
static void load_old_key(token_ctx *c)
{
    tool_token_cert *tc = &c->certs[c->renew_idx];
    char keep[sizeof c->res->error];
    tool_result_kind kind;
    int step;

    if (!c->renew_from || !c->renew_signs || !c->new_key || c->old_key)
        return;
    if (c->same_key) {
        if (EVP_PKEY_up_ref(c->new_key))
            c->old_key = c->new_key;
        return;
    }
    /* a failure to open it is no failure of the token */
    memcpy(keep, c->res->error, sizeof keep);
    kind = c->res->kind;
    step = c->res->step;
    c->old_key = tc->idlen ? token_private_key(c, tc->id, tc->idlen) : NULL;
    if (!c->old_key) {
        memcpy(c->res->error, keep, sizeof keep);
        c->res->kind = kind;
        c->res->step = step;
    }
}

static X509_REQ *build_request(token_ctx *c)
{
    X509_REQ *req = X509_REQ_new();
    tm_violations *v = tm_violations_new();
    char why[512];

    if (!req || !v || !X509_REQ_set_version(req, 0) || !X509_REQ_set_pubkey(req, c->pub)) {
        fail(c, 7, "out of memory building the request");
        goto bad;
    }
    /* {public key, serial, purpose}: no user information (claim 7). */
    if (!tm_profile_build_request(c->run->prof, req, c->t->serial, c->t->serial_len, c->t->model,
                                  c->run->purpose, v)) {
        tm_violations_join(v, why, sizeof why);
        fail(c, 7, "cannot build the request: %s", why);
        goto bad;
    }
    if (!sign_request_on_token(c, req))
        goto bad;
    load_old_key(c);
    tm_violations_free(v);
    return req;
bad:
    tm_violations_free(v);
    X509_REQ_free(req);
    return NULL;
}

/* ---- steps 8-10: to the CA, which verifies and issues ---------------------------- */

static X509 *ca_issue(token_ctx *c, tool_ca_item *it)
{
    tool_ca_item item = *it;

    tool_ca_submit(c->run->ca, &item);
    if (!item.cert) {
        fail(c, 9, "CA refused: %s", item.error);
        return NULL;
    }
    c->res->kind = TOOL_RES_ISSUED;
    return item.cert;
}

/* ---- step 11: the station checks the certificate against the CA root -------------- */

static int verify_certificate(token_ctx *c, X509 *cert, X509_STORE *roots)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    tm_binding b;
    tm_violations *v = tm_violations_new();
    char why[512];
    int ok = 0;

    if (!ctx || !v || !X509_STORE_CTX_init(ctx, roots, cert, NULL)) {
        fail(c, 11, "out of memory verifying the certificate");
        goto out;
    }
    if (X509_verify_cert(ctx) != 1) {
        fail(c, 11, "certificate does not verify against the CA root: %s",
             X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    if (!tm_binding_from_cert(c->run->prof, cert, &b, v)) {
        tm_violations_join(v, why, sizeof why);
        fail(c, 11, "certificate has no serial binding: %s", why);
        goto out;
    }
    if (!tm_binding_names_serial(&b, c->t->serial, c->t->serial_len)) {
        fail(c, 11, "certificate names serial %s, not this token's %s", b.serial_text,
             c->t->serial_text);
        goto out;
    }
    if (c->pub && EVP_PKEY_eq(X509_get0_pubkey(cert), c->pub) != 1) {
        fail(c, 11, "certificate is for another key than the token's key pair");
        goto out;
    }
    ok = 1;
out:
    tm_violations_free(v);
    X509_STORE_CTX_free(ctx);
    return ok;
}

/* ---- step 12: onto the token whose serial the certificate names ------------------- */

static int write_certificate(token_ctx *c, X509 *cert)
{
    tool_station *st = c->run->st;
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ct = CKC_X_509;
    CK_BBOOL t = CK_TRUE;
    unsigned char *der = NULL, *subj = NULL, *iss = NULL, *sn = NULL;
    int dl, sl, il, nl, ok = 0;
    CK_OBJECT_HANDLE h;
    CK_RV rv;

    dl = i2d_X509(cert, &der);
    sl = i2d_X509_NAME(X509_get_subject_name(cert), &subj);
    il = i2d_X509_NAME(X509_get_issuer_name(cert), &iss);
    nl = i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), &sn);
    if (dl <= 0 || sl <= 0 || il <= 0 || nl <= 0) {
        fail(c, 12, "cannot encode the certificate");
        goto out;
    }
    {
        CK_ATTRIBUTE tmpl[] = {
            {CKA_CLASS, &cls, sizeof cls},
            {CKA_CERTIFICATE_TYPE, &ct, sizeof ct},
            {CKA_TOKEN, &t, sizeof t},
            {CKA_VALUE, der, (CK_ULONG)dl},
            {CKA_SUBJECT, subj, (CK_ULONG)sl},
            {CKA_ISSUER, iss, (CK_ULONG)il},
            {CKA_SERIAL_NUMBER, sn, (CK_ULONG)nl},
            {CKA_ID, c->id, c->idlen},
            {CKA_LABEL, c->label, strlen(c->label)},
        };
        /* The module's write policy checks the binding, key match and
         * no-overwrite again, on its side of the boundary. */
        rv = st->f->C_CreateObject(c->s, tmpl, sizeof tmpl / sizeof tmpl[0], &h);
    }
    if (rv != CKR_OK) {
        fail(c, 12, "the token refused the certificate: %s", p11c_ckr_name(rv));
        goto out;
    }
    ok = 1;
out:
    OPENSSL_free(der);
    OPENSSL_free(subj);
    OPENSSL_free(iss);
    OPENSSL_free(sn);
    return ok;
}

/* ---- renew --retire-old: the replaced certificates and key pairs leave ------------ */

/* Destroys every object of class cls with this attribute value (the module
 * audits each destroy and may refuse one by its policy). */
static CK_RV destroy_all(token_ctx *c, CK_OBJECT_CLASS cls, CK_ATTRIBUTE_TYPE type, const void *val,
                         size_t len, int *n)
{
    tool_station *st = c->run->st;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {type, (void *)val, (CK_ULONG)len}};
    CK_OBJECT_HANDLE *objs = NULL;
    CK_ULONG cnt = 0, i;
    CK_RV rv = p11c_find_all(st->f, c->s, tmpl, 2, &objs, &cnt);

    for (i = 0; rv == CKR_OK && i < cnt; i++) {
        rv = st->f->C_DestroyObject(c->s, objs[i]);
        if (rv == CKR_OK)
            (*n)++;
    }
    free(objs);
    return rv;
}

/* keep is verified and on the token: the token's other certificates for
 * the purpose that name this token go, each after its key pair when no
 * certificate left on the token uses that key (key first: a kill between
 * the two leaves a certificate without its key, retired on the next run,
 * never a free key pair a later run could certify again). */
static int retired_by(token_ctx *c, X509 *x, X509 *keep)
{
    tm_binding b;
    return X509_cmp(x, keep) != 0 && tm_binding_from_cert(c->run->prof, x, &b, NULL) &&
           tm_binding_names_serial(&b, c->t->serial, c->t->serial_len) &&
           strcmp(b.purpose, c->run->purpose) == 0;
}

static int retire_olds(token_ctx *c, X509 *keep)
{
    size_t i, j;
    int ncert = 0, nkey = 0;
    char sn[80];
    CK_RV rv = CKR_OK;

    for (i = 0; i < c->ncerts && rv == CKR_OK; i++) {
        tool_token_cert *tc = &c->certs[i];
        unsigned char *der = NULL;
        int dl, shared;
        CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY, pub = CKO_PUBLIC_KEY;

        if (!retired_by(c, tc->cert, keep))
            continue;
        serial_hex_of(tc->cert, sn, sizeof sn);
        /* the key stays while a certificate that stays uses it (the new one
         * on the same key, another purpose's) or one retired later does */
        shared = EVP_PKEY_eq(X509_get0_pubkey(keep), X509_get0_pubkey(tc->cert)) == 1;
        for (j = 0; j < c->ncerts && !shared; j++)
            if (j != i &&
                EVP_PKEY_eq(X509_get0_pubkey(c->certs[j].cert), X509_get0_pubkey(tc->cert)) == 1 &&
                (j > i || !retired_by(c, c->certs[j].cert, keep)))
                shared = 1;
        if (!shared && tc->idlen) {
            int before = nkey;
            rv = destroy_all(c, priv, CKA_ID, tc->id, tc->idlen, &nkey);
            if (rv == CKR_OK)
                rv = destroy_all(c, pub, CKA_ID, tc->id, tc->idlen, &nkey);
            if (rv == CKR_OK && nkey > before)
                tool_audit_line(c->run->cfg, c->t->serial_text, "retire", "key pair", sn);
        }
        dl = rv == CKR_OK ? i2d_X509(tc->cert, &der) : 0;
        if (dl > 0) {
            CK_OBJECT_CLASS cc = CKO_CERTIFICATE;
            int before = ncert;
            rv = destroy_all(c, cc, CKA_VALUE, der, (size_t)dl, &ncert);
            if (rv == CKR_OK && ncert > before)
                tool_audit_line(c->run->cfg, c->t->serial_text, "retire", "certificate", sn);
        }
        OPENSSL_free(der);
    }
    if (rv != CKR_OK)
        return fail(c, 12,
                    "renewed (certificate %s on the token), but retiring the old certificate %s "
                    "failed: %s%s",
                    c->res->cert_serial, sn, p11c_ckr_name(rv),
                    rv == CKR_ACTION_PROHIBITED
                        ? " (the module's policy: destroy_bound_certificates = refuse)"
                        : "");
    c->res->retired = ncert;
    return 1;
}

/* An interrupted run left the new certificate on the token and the old
 * ones not yet retired: verify the new one, log in, retire. */
static void retire_resume(token_ctx *c)
{
    X509_STORE *roots = X509_STORE_new();

    if (!roots || !X509_STORE_add_cert(roots, tool_ca_root(c->run->ca))) {
        fail(c, 11, "out of memory");
        goto out;
    }
    if (!verify_certificate(c, c->keep, roots) || !token_usable(c))
        goto out;
    retire_olds(c, c->keep);
out:
    X509_STORE_free(roots);
}

/* ---- putting it together ------------------------------------------------------------ */

static void ctx_init(token_ctx *c, tool_run *run, tool_token *t, tool_result *res)
{
    memset(c, 0, sizeof *c);
    memset(res, 0, sizeof *res);
    c->run = run;
    c->t = t;
    c->res = res;
    snprintf(res->serial, sizeof res->serial, "%s", t->serial_text);
    snprintf(res->label, sizeof res->label, "%s", t->label);
}

static void ctx_clear(token_ctx *c)
{
    if (c->have_session)
        c->run->st->f->C_CloseSession(c->s);
    tool_token_keys_free(c->keys, c->nkeys);
    tool_token_certs_free(c->certs, c->ncerts);
    EVP_PKEY_free(c->owned_pub);
    EVP_PKEY_free(c->old_key);
    EVP_PKEY_free(c->new_key);
}

static void cert_serial_hex(X509 *cert, char *out, size_t outlen)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *h = bn ? BN_bn2hex(bn) : NULL;
    snprintf(out, outlen, "%s", h ? h : "");
    OPENSSL_free(h);
    BN_free(bn);
}

/* Issue 13: a token whose serial names no one token (blank, all zeros, or
 * shared with another token present) is failed from the slot list alone,
 * before a session, a lock or a PIN try. An uninitialised token is left to
 * step 3, which says that. */
static int serial_usable(token_ctx *c)
{
    char why[sizeof c->res->error];

    if (!(c->t->info.flags & CKF_TOKEN_INITIALIZED))
        return 1;
    if (tool_token_serial_usable(c->run->st, c->t, why, sizeof why))
        return 1;
    c->refused = 1;
    return fail(c, 6, "%s", why);
}

/* Steps 3..6: shared by issue and csr. Returns 1 to go on, 0 when failed or done. */
static int prepare(token_ctx *c, int stop_when_done)
{
    if (!token_present(c) || !token_open(c))
        return 0;
    /* "Done" is decided from public objects, before any login. */
    if (stop_when_done && already_done(c))
        return 0;
    if (!token_usable(c))
        return 0;
    /* A free key pair first: a renewal with a new key pair that was
     * interrupted, or one made for this purpose beforehand; then, renewing,
     * the old certificate's key pair (same key); else a new one. */
    if (!find_free_key_pair(c) && !(c->same_key && renewed_key_pair(c)) && !generate_key_pair(c))
        return 0;
    p11c_hex_encode(c->id, c->idlen, c->res->key_id, sizeof c->res->key_id);
    return read_serial(c);
}

/*
 * The batch (claims 9, 16) splits a token's run in two around the CA:
 * tool_job_prepare (steps 3-7) for every token, then one CA batch (8-10), then
 * tool_job_finish (11-12) for every token. The session stays open in between.
 */
struct tool_job {
    token_ctx c;
    int lockfd;
    X509_REQ *req;
    X509 *cert;
};

tool_job *tool_job_new(tool_run *run, tool_token *t, tool_result *res)
{
    tool_job *j;

    tool_return_val_if_fail(run != NULL && t != NULL && res != NULL, NULL);
    j = calloc(1, sizeof *j);
    if (j) {
        ctx_init(&j->c, run, t, res);
        j->lockfd = -1;
    }
    return j;
}

static int job_prepare(tool_job *j);

static int cert_on_token(token_ctx *c, X509 *x)
{
    size_t i;
    for (i = 0; i < c->ncerts; i++)
        if (X509_cmp(c->certs[i].cert, x) == 0)
            return 1;
    return 0;
}

int tool_job_prepare(tool_job *j)
{
    int ok = job_prepare(j);

    /* A token that never came to a login no longer holds up the count-low
     * tokens waiting for the PIN to be accepted. */
    if (!j->c.login_tried)
        tool_pin_skip(j->c.run->pin, j->c.t);
    return ok;
}

static int job_prepare(tool_job *j)
{
    token_ctx *c = &j->c;

    if (!serial_usable(c))
        return 0;
    /* Two processes never work on one token at once: the CA says where the
     * lock is (a local CA in its directory, CMP in a station-local one). */
    if (c->run->ca && c->t->serial_len) {
        char e[600] = "";
        j->lockfd = tool_ca_token_lock(c->run->ca, c->t->serial, c->t->serial_len, e, sizeof e);
        if (j->lockfd == -2)
            return fail(c, 3, "another tokenmint process is issuing to this token; re-run later");
        if (j->lockfd < 0)
            return fail(c, 3, "%s", e);
    }
    if (!prepare(c, 1)) {
        if (c->retire_pending && c->res->kind == TOOL_RES_DONE)
            retire_resume(c);
        return 0;
    }
    /* A certificate issued for this key by an interrupted run: write it, never re-issue. */
    if (c->res->key_reused && c->run->ca) /* a CMP CA finds it by key itself */
        j->cert = tool_ca_find_by_key(c->run->ca, c->pub, c->run->purpose);
    /* ... unless that is a certificate the token has: the one being renewed */
    if (j->cert && cert_on_token(c, j->cert)) {
        X509_free(j->cert);
        j->cert = NULL;
    }
    if (j->cert) {
        c->res->kind = TOOL_RES_WRITTEN;
        return 1;
    }
    j->req = build_request(c);
    return j->req != NULL;
}

X509_REQ *tool_job_request(tool_job *j)
{
    return j->cert ? NULL : j->req;
}

int tool_job_item(tool_job *j, tool_ca_item *item)
{
    token_ctx *c = &j->c;

    memset(item, 0, sizeof *item);
    if (j->cert || !j->req)
        return 0;
    item->req = j->req;
    item->token_text = c->t->serial_text;
    item->purpose = c->run->purpose;
    item->replaces = c->replaces[0] ? c->replaces : NULL;
    if (c->renew_from && c->old_key && c->new_key) {
        item->old_cert = c->renew_from;
        item->old_key = c->old_key;
        item->new_key = c->new_key;
    }
    return 1;
}

void tool_job_set_cert(tool_job *j, X509 *cert, const char *ca_error)
{
    if (!cert) {
        fail(&j->c, 9, "CA refused: %s", ca_error ? ca_error : "no reason given");
        return;
    }
    j->cert = cert;
    j->c.res->kind = TOOL_RES_ISSUED;
}

void tool_job_finish(tool_job *j)
{
    token_ctx *c = &j->c;
    X509_STORE *roots = NULL;

    if (c->res->kind == TOOL_RES_FAILED || c->res->kind == TOOL_RES_DONE || !j->cert)
        goto out;
    cert_serial_hex(j->cert, c->res->cert_serial, sizeof c->res->cert_serial);
    roots = X509_STORE_new();
    if (!roots || !X509_STORE_add_cert(roots, tool_ca_root(c->run->ca))) {
        fail(c, 11, "out of memory");
        goto out;
    }
    if (!verify_certificate(c, j->cert, roots))
        goto out;
    if (!write_certificate(c, j->cert))
        goto out;
    if (c->run->renew && c->nolds && !supersede_olds(c, c->res->cert_serial, c->olds, c->nolds))
        goto out;
    if (c->run->renew && c->run->retire_old)
        retire_olds(c, j->cert);
out:
    X509_STORE_free(roots);
}

static const char *outcome(tool_result_kind k)
{
    switch (k) {
    case TOOL_RES_FAILED:
        return "failed";
    case TOOL_RES_DONE:
        return "done";
    case TOOL_RES_RENEW:
        return "needs renewal";
    case TOOL_RES_WRITTEN:
        return "written";
    default:
        return "issued";
    }
}

void tool_job_free(tool_job *j)
{
    if (!j)
        return;
    /* Every token's run ends here exactly once, however far it got. */
    tool_audit_line(j->c.run->cfg, j->c.t->serial_text, j->c.run->renew ? "renew" : "issue",
                    j->c.refused ? "refused" : outcome(j->c.res->kind),
                    j->c.res->kind == TOOL_RES_FAILED ? j->c.res->error : j->c.res->cert_serial);
    X509_free(j->cert);
    X509_REQ_free(j->req);
    ctx_clear(&j->c);
    tool_ca_token_unlock(j->lockfd);
    free(j);
}

/* One token on its own (watch): its request goes to the CA through the group
 * commit queue, with whatever else is ready at that moment. */
void tool_pipeline_issue(tool_run *run, tool_token *t, tool_result *res)
{
    tool_job *j = tool_job_new(run, t, res);

    if (!j) {
        res->kind = TOOL_RES_FAILED;
        snprintf(res->error, sizeof res->error, "out of memory");
        return;
    }
    tool_ca_item item;

    if (tool_job_prepare(j) && tool_job_item(j, &item)) {
        X509 *cert = ca_issue(&j->c, &item);
        if (cert)
            tool_job_set_cert(j, cert, NULL);
    }
    tool_job_finish(j);
    tool_job_free(j);
}

X509_REQ *tool_pipeline_request(tool_run *run, tool_token *t, tool_result *res)
{
    token_ctx c;
    X509_REQ *req = NULL;

    ctx_init(&c, run, t, res);
    if (!serial_usable(&c)) {
        tool_audit_line(run->cfg, t->serial_text, "csr", "refused", res->error);
        goto out;
    }
    if (prepare(&c, 0))
        req = build_request(&c);
    if (req)
        res->kind = TOOL_RES_ISSUED;
out:
    ctx_clear(&c);
    return req;
}

int tool_pipeline_write(tool_run *run, X509 *cert, X509_STORE *roots, tool_result *res)
{
    tm_binding b;
    tm_violations *v = tm_violations_new();
    char why[512];
    token_ctx c;
    tool_token *t = NULL;
    size_t i, k;
    int ok = 0;
    tool_return_val_if_fail(run != NULL && cert != NULL && res != NULL, 0);

    memset(res, 0, sizeof *res);
    res->kind = TOOL_RES_FAILED;
    if (!v || !tm_binding_from_cert(run->prof, cert, &b, v)) {
        tm_violations_join(v, why, sizeof why);
        snprintf(res->error, sizeof res->error, "certificate has no serial binding: %s", why);
        res->step = 12;
        tm_violations_free(v);
        return 0;
    }
    /* the whole profile, as the CA applies it: a stock CA in the pipeline
     * may have added what ours never would (issue 10 item 3) */
    if (tm_profile_check_cert(run->prof, cert, v) > 0) {
        tm_violations_join(v, why, sizeof why);
        snprintf(res->serial, sizeof res->serial, "%s", b.serial_text);
        snprintf(res->error, sizeof res->error, "certificate is outside the profile: %s", why);
        res->step = 12;
        tm_violations_free(v);
        return 0;
    }
    tm_violations_free(v);
    snprintf(res->serial, sizeof res->serial, "%s", b.serial_text);
    for (i = 0; i < run->st->ntokens; i++)
        if (tm_binding_names_serial(&b, run->st->tokens[i].serial, run->st->tokens[i].serial_len))
            t = &run->st->tokens[i];
    if (!t) {
        snprintf(res->error, sizeof res->error, "no token with serial %s at this station",
                 b.serial_text);
        res->step = 12;
        return 0;
    }
    ctx_init(&c, run, t, res);
    cert_serial_hex(cert, res->cert_serial, sizeof res->cert_serial);
    if (!token_present(&c) || !token_usable(&c))
        goto out;
    for (k = 0; k < c.nkeys; k++)
        if (EVP_PKEY_eq(c.keys[k].pub, X509_get0_pubkey(cert)) == 1)
            break;
    if (k == c.nkeys) {
        fail(&c, 12, "no key pair on token %s matches the certificate", t->serial_text);
        goto out;
    }
    if (key_has_cert(&c, c.keys[k].pub)) {
        fail(&c, 12, "key pair already has a certificate; certificates are never overwritten");
        goto out;
    }
    c.pub = c.keys[k].pub;
    memcpy(c.id, c.keys[k].id, c.keys[k].idlen);
    c.idlen = c.keys[k].idlen;
    snprintf(c.label, sizeof c.label, "%s", c.keys[k].label);
    p11c_hex_encode(c.id, c.idlen, res->key_id, sizeof res->key_id);
    if ((roots && !verify_certificate(&c, cert, roots)) || !write_certificate(&c, cert))
        goto out;
    res->kind = TOOL_RES_WRITTEN;
    ok = 1;
out:
    ctx_clear(&c);
    return ok;
}

int tool_token_state_read(tool_run *run, tool_token *t, tool_token_state *s)
{
    tool_result res;
    token_ctx c;
    size_t i;

    memset(s, 0, sizeof *s);
    ctx_init(&c, run, t, &res);
    if (!(t->info.flags & CKF_TOKEN_INITIALIZED) || !(t->info.flags & CKF_USER_PIN_INITIALIZED)) {
        s->state = "not initialised";
        return 1;
    }
    if (t->info.flags & CKF_USER_PIN_LOCKED) {
        s->state = "PIN locked";
        return 1;
    }
    /* Certificates and public keys are public objects: no login, no PIN. */
    if (run->st->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &c.s) != CKR_OK) {
        s->state = "not present";
        return 0;
    }
    c.have_session = 1;
    if (!tool_token_list_keys(run->st, c.s, 1, &c.keys, &c.nkeys) ||
        !tool_token_list_certs(run->st, c.s, &c.certs, &c.ncerts)) {
        s->state = "unreadable";
        ctx_clear(&c);
        return 0;
    }
    s->ncerts = (int)c.ncerts;
    s->nkeys = (int)c.nkeys;
    for (i = 0; i < c.nkeys; i++)
        if (!key_has_cert(&c, c.keys[i].pub))
            s->nfree++;
    for (i = 0; i < c.ncerts; i++) {
        size_t k;
        for (k = 0; k < c.nkeys; k++)
            if (EVP_PKEY_eq(X509_get0_pubkey(c.certs[i].cert), c.keys[k].pub) == 1)
                break;
        if (k == c.nkeys)
            s->nkeyless++;
    }
    s->state = s->ncerts ? "issued" : s->nfree ? "free key pair" : "no key";
    ctx_clear(&c);
    return 1;
}
