/*
 * The CA store's schema, one for both backends, with its migrations.
 *
 * tm_schema holds the version. Each step below takes the database from
 * version i to i + 1 inside one transaction, under a lock every tokenmint
 * process takes (so four servers starting at once migrate once). A released
 * step is never edited: changes are new steps.
 */
#include "castore_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* %1$s: the binary type (BLOB, BYTEA) */
static const char *const steps[] = {
    /* 1: the certificates and small named values */
    "CREATE TABLE tm_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE tm_cert ("
    " serial TEXT PRIMARY KEY CHECK (length(serial) > 0),"
    " spki_sha256 TEXT NOT NULL CHECK (length(spki_sha256) = 64),"
    " purpose TEXT NOT NULL CHECK (length(purpose) > 0),"
    " token_serial TEXT NOT NULL,"
    " operator TEXT NOT NULL,"
    " origin TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " issued_at BIGINT NOT NULL,"
    /* microseconds: the order records were made in (the view's line order) */
    " issued_order BIGINT NOT NULL,"
    " not_after BIGINT NOT NULL,"
    " status CHAR(1) NOT NULL CHECK (status IN ('V', 'R', 'E', 'S')),"
    " revoked_at BIGINT,"
    " revocation_reason INTEGER,"
    " superseded_by TEXT,"
    " der %1$s NOT NULL CHECK (length(der) > 0),"
    " CHECK ((status = 'R') = (revoked_at IS NOT NULL)),"
    " CHECK ((status = 'S') = (superseded_by IS NOT NULL)));"
    /* the never-twice rule: one valid certificate per key and purpose */
    "CREATE UNIQUE INDEX tm_cert_one_valid ON tm_cert (spki_sha256, purpose) WHERE status = 'V';"
    "CREATE INDEX tm_cert_token ON tm_cert (token_serial);"
    "CREATE INDEX tm_cert_not_after ON tm_cert (not_after);"
    "CREATE INDEX tm_cert_order ON tm_cert (issued_order);",
};

typedef struct vctx {
    const cs_backend *be;
    int v;
} vctx;

static int version_of(void *user, cs_row *row)
{
    vctx *c = user;
    c->v = (int)c->be->col_int(row, 0);
    return 0;
}

int tool_cs_schema_migrate(tool_castore *s)
{
    const cs_backend *be = s->be;
    vctx vc = {be, -1};
    char *sql = NULL;
    size_t i;
    int code;

    if ((code = be->begin(s)) != TOOL_CS_OK)
        return code;
    s->in_batch = 1;
    if ((code = be->migration_lock(s)) != TOOL_CS_OK ||
        (code = be->exec(s, "CREATE TABLE IF NOT EXISTS tm_schema (version INTEGER NOT NULL)")) !=
            TOOL_CS_OK ||
        (code = be->query(s, CS_ST_LIST, "SELECT version FROM tm_schema", NULL, 0, version_of, &vc,
                          NULL)) != TOOL_CS_OK)
        goto fail;
    if (vc.v < 0) {
        if ((code = be->exec(s, "INSERT INTO tm_schema (version) VALUES (0)")) != TOOL_CS_OK)
            goto fail;
        vc.v = 0;
    }
    if (vc.v > CS_SCHEMA_VERSION) {
        code = tool_cs_fail(s, TOOL_CS_ERROR,
                            "the CA database has schema version %d; this tokenmint knows up to %d "
                            "(upgrade tokenmint)",
                            vc.v, CS_SCHEMA_VERSION);
        goto fail;
    }
    for (i = (size_t)vc.v; i < sizeof steps / sizeof *steps; i++) {
        char upd[80];
        if (asprintf(&sql, steps[i], be->blob_type) < 0) {
            sql = NULL;
            code = tool_cs_fail(s, TOOL_CS_ERROR, "out of memory");
            goto fail;
        }
        snprintf(upd, sizeof upd, "UPDATE tm_schema SET version = %zu", i + 1);
        if ((code = be->exec(s, sql)) != TOOL_CS_OK || (code = be->exec(s, upd)) != TOOL_CS_OK) {
            char e[sizeof s->err];
            memcpy(e, s->err, sizeof e);
            tool_cs_fail(s, code, "schema migration to version %zu: %s", i + 1, e);
            goto fail;
        }
        free(sql);
        sql = NULL;
    }
    s->in_batch = 0;
    return be->commit(s);
fail:
    free(sql);
    be->rollback(s);
    s->in_batch = 0;
    return code;
}
