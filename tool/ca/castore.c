/*
 * The CA store's operations, written once over the backend's cs_query (see
 * castore_int.h): the same SQL runs on SQLite and PostgreSQL.
 */
#include "castore_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "p11c.h"

#define COLS                                                                                       \
    "serial, spki_sha256, purpose, token_serial, operator, origin, subject, issued_at, "           \
    "not_after, status, revoked_at, revocation_reason, superseded_by"

int tool_cs_fail(tool_castore *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- records --------------------------------------------------------------------- */

void tool_cs_record_clear(tool_cs_record *r)
{
    if (!r)
        return;
    free(r->subject);
    free(r->der);
    memset(r, 0, sizeof *r);
    r->reason = -1;
}

char *tool_cs_serial_hex(const ASN1_INTEGER *sn)
{
    BIGNUM *bn = sn ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
    char *h = NULL;
    if (bn)
        h = BN_is_zero(bn) ? OPENSSL_strdup("00") : BN_bn2hex(bn);
    BN_free(bn);
    return h;
}

/* Any spelling of a hex serial in the records' form; 0 when not hex. */
static int serial_norm(const char *in, char out[TOOL_CS_SERIAL_MAX])
{
    BIGNUM *bn = NULL;
    char *h = NULL;
    int ok = 0;
    size_t l = in ? strlen(in) : 0;

    if (l == 0 || l >= TOOL_CS_SERIAL_MAX || strspn(in, "0123456789abcdefABCDEF") != l)
        return 0;
    if (BN_hex2bn(&bn, in) == (int)l) {
        h = BN_is_zero(bn) ? OPENSSL_strdup("00") : BN_bn2hex(bn);
        if (h && strlen(h) < TOOL_CS_SERIAL_MAX) {
            strcpy(out, h);
            ok = 1;
        }
    }
    OPENSSL_free(h);
    BN_free(bn);
    return ok;
}

int tool_cs_spki_hash(const X509_PUBKEY *xp, char hex[65])
{
    unsigned char *der = NULL, md[32];
    unsigned int mdlen = 0;
    int len, ok = 0;

    hex[0] = 0;
    if (!xp)
        return 0;
    len = i2d_X509_PUBKEY(xp, &der);
    if (len > 0 && EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL)) {
        p11c_hex_encode(md, 32, hex, 65);
        ok = 1;
    }
    OPENSSL_free(der);
    return ok;
}

static int64_t time_of(const ASN1_TIME *t)
{
    struct tm tmv;
    if (!t || !ASN1_TIME_to_tm(t, &tmv))
        return 0;
    return (int64_t)timegm(&tmv);
}

int tool_cs_record_from_cert(tool_cs_record *r, X509 *cert, const char *token, const char *purpose,
                             const char *operator_id, const char *origin)
{
    char *sn;
    unsigned char *p;
    int len;

    tool_cs_record_clear(r);
    sn = tool_cs_serial_hex(X509_get0_serialNumber(cert));
    if (!sn || strlen(sn) >= sizeof r->serial) {
        OPENSSL_free(sn);
        return 0;
    }
    strcpy(r->serial, sn);
    OPENSSL_free(sn);
    if (!tool_cs_spki_hash(X509_get_X509_PUBKEY(cert), r->spki))
        return 0;
    snprintf(r->token, sizeof r->token, "%s", token && *token ? token : "-");
    snprintf(r->purpose, sizeof r->purpose, "%s", purpose && *purpose ? purpose : "-");
    snprintf(r->operator_id, sizeof r->operator_id, "%s", operator_id ? operator_id : "-");
    snprintf(r->origin, sizeof r->origin, "%s", origin ? origin : "tokenmint");
    r->subject = X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0);
    if (r->subject) { /* OPENSSL_malloc'd: keep one allocator per field */
        char *t = strdup(r->subject);
        OPENSSL_free(r->subject);
        r->subject = t;
    }
    r->issued_at = (int64_t)time(NULL);
    r->not_after = time_of(X509_get0_notAfter(cert));
    r->status = TOOL_CS_VALID;
    r->reason = -1;
    len = i2d_X509(cert, NULL);
    if (!r->subject || len <= 0 || !(r->der = malloc((size_t)len)))
        return 0;
    p = r->der;
    r->der_len = (size_t)i2d_X509(cert, &p);
    return 1;
}

X509 *tool_cs_record_cert(const tool_cs_record *r)
{
    const unsigned char *p = r ? r->der : NULL;
    return p ? d2i_X509(NULL, &p, (long)r->der_len) : NULL;
}

static const char *const reasons[] = {
    "unspecified",   "keyCompromise",        "CACompromise",    "affiliationChanged",
    "superseded",    "cessationOfOperation", "certificateHold", NULL, /* 7 unused */
    "removeFromCRL", "privilegeWithdrawn",   "AACompromise",
};

const char *tool_cs_reason_name(int reason)
{
    if (reason < 0 || reason >= (int)(sizeof reasons / sizeof *reasons) || !reasons[reason])
        return NULL;
    return reasons[reason];
}

int tool_cs_reason_code(const char *name)
{
    size_t i;
    for (i = 0; name && i < sizeof reasons / sizeof *reasons; i++)
        if (reasons[i] && strcasecmp(reasons[i], name) == 0)
            return (int)i;
    return -1;
}

/* ---- open ------------------------------------------------------------------------ */

tool_castore *tool_castore_open(const char *dir, const char *conninfo, char *err, size_t errlen)
{
    tool_castore *s = calloc(1, sizeof *s);
    char path[PATH_MAX + 16];
    const char *target;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->dir, sizeof s->dir, "%s", dir ? dir : ".");
    if (!conninfo || !*conninfo || strncmp(conninfo, "sqlite:", 7) == 0) {
        s->be = &tool_cs_sqlite;
        if (conninfo && *conninfo)
            target = conninfo + 7;
        else {
            snprintf(path, sizeof path, "%s/ca.db", s->dir);
            target = path;
        }
    } else {
        s->be = &tool_cs_pg;
        target = conninfo;
    }
    if (s->be->connect(s, target, err, errlen) != TOOL_CS_OK)
        goto fail;
    if (tool_cs_schema_migrate(s) != TOOL_CS_OK) {
        snprintf(err, errlen, "%s", s->err);
        goto fail;
    }
    return s;
fail:
    tool_castore_close(s);
    return NULL;
}

void tool_castore_close(tool_castore *s)
{
    if (!s)
        return;
    if (s->in_batch)
        s->be->rollback(s);
    s->be->close(s);
    free(s);
}

const char *tool_castore_backend(const tool_castore *s)
{
    return s ? s->be->name : "none";
}

const char *tool_castore_error(const tool_castore *s)
{
    return s ? s->err : "no CA store";
}

static int int_of(void *user, cs_row *row);

typedef struct ictx {
    const cs_backend *be;
    int64_t v;
    int found;
} ictx;

static int int_of(void *user, cs_row *row)
{
    ictx *c = user;
    c->v = c->be->col_int(row, 0);
    c->found = 1;
    return 0;
}

int tool_castore_schema_version(tool_castore *s)
{
    ictx c = {s->be, -1, 0};
    if (s->be->query(s, CS_ST_VERSION, "SELECT version FROM tm_schema", NULL, 0, int_of, &c,
                     NULL) != TOOL_CS_OK)
        return -1;
    return (int)c.v;
}

/* ---- transactions --------------------------------------------------------------------- */

int tool_castore_begin(tool_castore *s)
{
    int code;
    if (s->in_batch)
        return tool_cs_fail(s, TOOL_CS_ERROR, "a batch is already open");
    code = s->be->begin(s);
    if (code == TOOL_CS_OK)
        s->in_batch = 1;
    return code;
}

int tool_castore_commit(tool_castore *s)
{
    int code;
    if (!s->in_batch)
        return tool_cs_fail(s, TOOL_CS_ERROR, "no batch is open");
    code = s->be->commit(s);
    if (code != TOOL_CS_OK)
        s->be->rollback(s);
    s->in_batch = 0;
    return code;
}

void tool_castore_rollback(tool_castore *s)
{
    if (!s)
        return;
    s->be->rollback(s);
    s->in_batch = 0;
}

/* ---- reads ------------------------------------------------------------------------ */

typedef struct rctx {
    const cs_backend *be;
    tool_cs_record *out;
    tool_cs_each_fn fn;
    void *user;
    int found;
    int with_der;
    int oom;
} rctx;

static void fill(const cs_backend *be, cs_row *row, tool_cs_record *r, int with_der)
{
    const char *t;
    size_t len = 0;
    const unsigned char *b;

#define TXT(i, field) snprintf(r->field, sizeof r->field, "%s", (t = be->col_text(row, i)) ? t : "")
    TXT(0, serial);
    TXT(1, spki);
    TXT(2, purpose);
    TXT(3, token);
    TXT(4, operator_id);
    TXT(5, origin);
    t = be->col_text(row, 6);
    r->subject = strdup(t ? t : "");
    r->issued_at = be->col_int(row, 7);
    r->not_after = be->col_int(row, 8);
    t = be->col_text(row, 9);
    r->status = t ? t[0] : '?';
    r->revoked_at = be->col_int(row, 10);
    r->reason = be->col_text(row, 11) ? (int)be->col_int(row, 11) : -1;
    TXT(12, superseded_by);
#undef TXT
    if (with_der && (b = be->col_blob(row, 13, &len)) && len > 0 && (r->der = malloc(len))) {
        memcpy(r->der, b, len);
        r->der_len = len;
    }
}

static int one_row(void *user, cs_row *row)
{
    rctx *c = user;
    tool_cs_record_clear(c->out);
    fill(c->be, row, c->out, 1);
    c->found = 1;
    c->oom = !c->out->subject || !c->out->der;
    return 0;
}

int tool_castore_find_valid(tool_castore *s, const char *spki, const char *purpose,
                            tool_cs_record *out)
{
    cs_param p[2] = {{.type = CS_TEXT, .text = spki}, {.type = CS_TEXT, .text = purpose}};
    rctx c = {s->be, out, NULL, NULL, 0, 1, 0};
    int code;
    cs_return_val_if_fail(s && spki && purpose && out, TOOL_CS_ERROR);

    code = s->be->query(s, CS_ST_FIND_VALID,
                        "SELECT " COLS ", der FROM tm_cert WHERE spki_sha256 = $1 AND "
                        "purpose = $2 AND status = 'V'",
                        p, 2, one_row, &c, NULL);
    if (code != TOOL_CS_OK)
        return code;
    if (c.found && c.oom)
        return tool_cs_fail(s, TOOL_CS_ERROR, "out of memory");
    return c.found ? TOOL_CS_OK : TOOL_CS_NOTFOUND;
}

int tool_castore_find_serial(tool_castore *s, const char *serial, tool_cs_record *out)
{
    char sn[TOOL_CS_SERIAL_MAX];
    cs_param p[1] = {{.type = CS_TEXT, .text = sn}};
    rctx c = {s->be, out, NULL, NULL, 0, 1, 0};
    int code;
    cs_return_val_if_fail(s && serial && out, TOOL_CS_ERROR);

    if (!serial_norm(serial, sn))
        return tool_cs_fail(s, TOOL_CS_NOTFOUND, "%s is not a hexadecimal certificate serial",
                            serial);
    code = s->be->query(s, CS_ST_FIND_SERIAL, "SELECT " COLS ", der FROM tm_cert WHERE serial = $1",
                        p, 1, one_row, &c, NULL);
    if (code != TOOL_CS_OK)
        return code;
    if (c.found && c.oom)
        return tool_cs_fail(s, TOOL_CS_ERROR, "out of memory");
    return c.found ? TOOL_CS_OK : TOOL_CS_NOTFOUND;
}

static int each_row(void *user, cs_row *row)
{
    rctx *c = user;
    tool_cs_record r;
    int go;

    memset(&r, 0, sizeof r);
    fill(c->be, row, &r, c->with_der);
    if (!r.subject || (c->with_der && !r.der)) {
        c->oom = 1;
        tool_cs_record_clear(&r);
        return 0;
    }
    go = c->fn(&r, c->user);
    tool_cs_record_clear(&r);
    return go;
}

int tool_castore_list(tool_castore *s, const tool_cs_filter *f, tool_cs_each_fn fn, void *user)
{
    char sql[800], sn[TOOL_CS_SERIAL_MAX], st[2] = {0, 0};
    cs_param p[6];
    int np = 0, code;
    rctx c = {s->be, NULL, fn, user, 0, f && f->with_der, 0};
    size_t l;
    cs_return_val_if_fail(s && fn, TOOL_CS_ERROR);

    l = (size_t)snprintf(sql, sizeof sql, "SELECT " COLS ", %s FROM tm_cert WHERE 1 = 1",
                         c.with_der ? "der" : "NULL");
#define WHERE(cond, ptype, field, value)                                                           \
    do {                                                                                           \
        p[np].type = ptype;                                                                        \
        p[np].field = value;                                                                       \
        np++;                                                                                      \
        l += (size_t)snprintf(sql + l, sizeof sql - l, " AND " cond " $%d", np);                   \
    } while (0)
    if (f && f->token)
        WHERE("token_serial =", CS_TEXT, text, f->token);
    if (f && f->serial) {
        if (!serial_norm(f->serial, sn))
            return tool_cs_fail(s, TOOL_CS_ERROR, "%s is not a hexadecimal certificate serial",
                                f->serial);
        WHERE("serial =", CS_TEXT, text, sn);
    }
    if (f && f->spki)
        WHERE("spki_sha256 =", CS_TEXT, text, f->spki);
    if (f && f->purpose)
        WHERE("purpose =", CS_TEXT, text, f->purpose);
    if (f && f->status) {
        st[0] = f->status;
        WHERE("status =", CS_TEXT, text, st);
    }
    if (f && f->expiring_before)
        WHERE("not_after <", CS_INT, i, f->expiring_before);
#undef WHERE
    snprintf(sql + l, sizeof sql - l, " ORDER BY issued_order, serial");
    code = s->be->query(s, CS_ST_LIST, sql, p, np, each_row, &c, NULL);
    if (code == TOOL_CS_OK && c.oom)
        code = tool_cs_fail(s, TOOL_CS_ERROR, "out of memory");
    return code;
}

/* ---- writes ------------------------------------------------------------------------ */

int tool_castore_insert(tool_castore *s, const tool_cs_record *r)
{
    char st[2] = {r ? r->status : 0, 0};
    cs_param p[15];
    long changes = 0;
    struct timespec ts;
    int code;
    cs_return_val_if_fail(s && r && r->der && r->der_len > 0 && r->subject, TOOL_CS_ERROR);

    p[0] = (cs_param){.type = CS_TEXT, .text = r->serial};
    p[1] = (cs_param){.type = CS_TEXT, .text = r->spki};
    p[2] = (cs_param){.type = CS_TEXT, .text = r->purpose};
    p[3] = (cs_param){.type = CS_TEXT, .text = r->token};
    p[4] = (cs_param){.type = CS_TEXT, .text = r->operator_id};
    p[5] = (cs_param){.type = CS_TEXT, .text = r->origin};
    p[6] = (cs_param){.type = CS_TEXT, .text = r->subject};
    p[7] = (cs_param){.type = CS_INT, .i = r->issued_at};
    p[8] = (cs_param){.type = CS_INT, .i = r->not_after};
    p[9] = (cs_param){.type = CS_TEXT, .text = st};
    p[10] = r->status == TOOL_CS_REVOKED ? (cs_param){.type = CS_INT, .i = r->revoked_at}
                                         : (cs_param){.type = CS_NULL};
    p[11] = r->status == TOOL_CS_REVOKED && r->reason >= 0
                ? (cs_param){.type = CS_INT, .i = r->reason}
                : (cs_param){.type = CS_NULL};
    p[12] = r->status == TOOL_CS_SUPERSEDED ? (cs_param){.type = CS_TEXT, .text = r->superseded_by}
                                            : (cs_param){.type = CS_NULL};
    p[13] = (cs_param){.type = CS_BLOB, .blob = r->der, .len = r->der_len};
    /* now for what is made now, else when it was made (imports) */
    clock_gettime(CLOCK_REALTIME, &ts);
    p[14] = (cs_param){.type = CS_INT,
                       .i = r->issued_at >= (int64_t)ts.tv_sec - 5
                                ? (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000
                                : r->issued_at * 1000000};
    /* ON CONFLICT DO NOTHING: a clash with another server's row waits for it
     * and then reports zero rows instead of aborting the whole batch. */
    code = s->be->query(s, CS_ST_INSERT,
                        "INSERT INTO tm_cert (" COLS
                        ", der, issued_order) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                        "$8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT DO NOTHING",
                        p, 15, NULL, NULL, &changes);
    if (code != TOOL_CS_OK)
        return code;
    if (changes == 0)
        return tool_cs_fail(s, TOOL_CS_CONFLICT,
                            "serial %s or a valid certificate for this key and purpose exists",
                            r->serial);
    return TOOL_CS_OK;
}

/* An UPDATE of one record; NOTFOUND / CONFLICT told apart by a read. */
static int change(tool_castore *s, int id, const char *sql, cs_param *p, int np, const char *sn,
                  const char *what)
{
    tool_cs_record r;
    long changes = 0;
    int code = s->be->query(s, id, sql, p, np, NULL, NULL, &changes);

    if (code != TOOL_CS_OK || changes > 0)
        return code;
    memset(&r, 0, sizeof r);
    code = tool_castore_find_serial(s, sn, &r);
    if (code == TOOL_CS_OK)
        code = tool_cs_fail(s, TOOL_CS_CONFLICT, "certificate %s cannot be %s: its status is %c",
                            sn, what, r.status);
    else if (code == TOOL_CS_NOTFOUND)
        tool_cs_fail(s, code, "no certificate with serial %s", sn);
    tool_cs_record_clear(&r);
    return code;
}

int tool_cs_serial_eq(const char *a, const char *b)
{
    char na[TOOL_CS_SERIAL_MAX], nb[TOOL_CS_SERIAL_MAX];
    return serial_norm(a, na) && serial_norm(b, nb) && strcmp(na, nb) == 0;
}

int tool_castore_revoke(tool_castore *s, const char *serial, int64_t when, int reason)
{
    char sn[TOOL_CS_SERIAL_MAX];
    cs_param p[3];
    cs_return_val_if_fail(s && serial, TOOL_CS_ERROR);

    if (!serial_norm(serial, sn))
        return tool_cs_fail(s, TOOL_CS_NOTFOUND, "%s is not a hexadecimal certificate serial",
                            serial);
    p[0] = (cs_param){.type = CS_INT, .i = when};
    p[1] = reason >= 0 ? (cs_param){.type = CS_INT, .i = reason} : (cs_param){.type = CS_NULL};
    p[2] = (cs_param){.type = CS_TEXT, .text = sn};
    return change(s, CS_ST_REVOKE,
                  "UPDATE tm_cert SET status = 'R', revoked_at = $1, revocation_reason = $2, "
                  "superseded_by = NULL WHERE serial = $3 AND status IN ('V', 'S')",
                  p, 3, sn, "revoked");
}

int tool_castore_supersede(tool_castore *s, const char *serial, const char *by_serial)
{
    char sn[TOOL_CS_SERIAL_MAX], by[TOOL_CS_SERIAL_MAX];
    cs_param p[2];
    cs_return_val_if_fail(s && serial && by_serial, TOOL_CS_ERROR);

    if (!serial_norm(serial, sn) || !serial_norm(by_serial, by))
        return tool_cs_fail(s, TOOL_CS_NOTFOUND, "not a hexadecimal certificate serial");
    p[0] = (cs_param){.type = CS_TEXT, .text = by};
    p[1] = (cs_param){.type = CS_TEXT, .text = sn};
    return change(s, CS_ST_SUPERSEDE,
                  "UPDATE tm_cert SET status = 'S', superseded_by = $1 WHERE serial = $2 AND "
                  "status = 'V'",
                  p, 2, sn, "superseded");
}

int tool_castore_expire(tool_castore *s, const char *serial)
{
    char sn[TOOL_CS_SERIAL_MAX];
    cs_param p[1];
    cs_return_val_if_fail(s && serial, TOOL_CS_ERROR);

    if (!serial_norm(serial, sn))
        return tool_cs_fail(s, TOOL_CS_NOTFOUND, "%s is not a hexadecimal certificate serial",
                            serial);
    p[0] = (cs_param){.type = CS_TEXT, .text = sn};
    return change(s, CS_ST_EXPIRE,
                  "UPDATE tm_cert SET status = 'E' WHERE serial = $1 AND status = 'V'", p, 1, sn,
                  "marked expired");
}

int tool_castore_import(tool_castore *s, const tool_cs_record *r, char *superseded,
                        size_t superseded_len)
{
    tool_cs_record have, mine;
    int code;
    cs_return_val_if_fail(s && r, TOOL_CS_ERROR);

    if (superseded && superseded_len)
        superseded[0] = 0;
    memset(&have, 0, sizeof have);
    code = tool_castore_find_serial(s, r->serial, &have);
    tool_cs_record_clear(&have);
    if (code == TOOL_CS_OK)
        return tool_cs_fail(s, TOOL_CS_CONFLICT, "serial %s is already in the database", r->serial);
    if (code != TOOL_CS_NOTFOUND)
        return code;
    if (r->status != TOOL_CS_VALID)
        return tool_castore_insert(s, r);
    code = tool_castore_find_valid(s, r->spki, r->purpose, &have);
    if (code == TOOL_CS_NOTFOUND) {
        return tool_castore_insert(s, r);
    } else if (code != TOOL_CS_OK) {
        return code;
    }
    /* Two valid certificates for one key and purpose: the later one is taken
     * for the renewal of the earlier. */
    mine = *r;
    if (have.issued_at <= r->issued_at) {
        code = tool_castore_supersede(s, have.serial, r->serial);
        if (code == TOOL_CS_OK)
            code = tool_castore_insert(s, r);
        if (code == TOOL_CS_OK && superseded)
            snprintf(superseded, superseded_len, "%s", have.serial);
    } else {
        mine.status = TOOL_CS_SUPERSEDED;
        snprintf(mine.superseded_by, sizeof mine.superseded_by, "%s", have.serial);
        code = tool_castore_insert(s, &mine);
        if (code == TOOL_CS_OK && superseded)
            snprintf(superseded, superseded_len, "%s", r->serial);
    }
    tool_cs_record_clear(&have);
    return code;
}

/* ---- named values ------------------------------------------------------------------ */

typedef struct tctx {
    const cs_backend *be;
    char *out;
    size_t outlen;
    int found;
} tctx;

static int text_of(void *user, cs_row *row)
{
    tctx *c = user;
    const char *t = c->be->col_text(row, 0);
    snprintf(c->out, c->outlen, "%s", t ? t : "");
    c->found = 1;
    return 0;
}

int tool_castore_meta_get(tool_castore *s, const char *key, char *out, size_t outlen)
{
    cs_param p[1] = {{.type = CS_TEXT, .text = key}};
    tctx c = {s->be, out, outlen, 0};
    int code;
    cs_return_val_if_fail(s && key && out && outlen, TOOL_CS_ERROR);

    out[0] = 0;
    code = s->be->query(s, CS_ST_META_GET, "SELECT value FROM tm_meta WHERE key = $1", p, 1,
                        text_of, &c, NULL);
    if (code != TOOL_CS_OK)
        return code;
    return c.found ? TOOL_CS_OK : TOOL_CS_NOTFOUND;
}

int tool_castore_meta_set(tool_castore *s, const char *key, const char *value)
{
    cs_param p[2] = {{.type = CS_TEXT, .text = key}, {.type = CS_TEXT, .text = value}};
    cs_return_val_if_fail(s && key && value, TOOL_CS_ERROR);

    return s->be->query(s, CS_ST_META_SET,
                        "INSERT INTO tm_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO "
                        "UPDATE SET value = excluded.value",
                        p, 2, NULL, NULL, NULL);
}
