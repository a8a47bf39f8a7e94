/*
 * The CA store on SQLite: one file (DIR/ca.db), WAL journal, synchronous =
 * FULL so that a COMMIT returns only after the WAL is fsync'd: a batch is
 * durable when tool_castore_commit says OK. Other processes on the same
 * directory (`issue` next to `ca serve`) wait for the write lock
 * (busy_timeout) instead of failing.
 */
#include "castore_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define CS_SQLITE_BUSY_MS 30000

typedef struct sq_conn {
    sqlite3 *db;
    sqlite3_stmt *st[CS_ST_COUNT];
} sq_conn;

struct cs_row {
    sqlite3_stmt *st;
};

/* The OS error behind SQLite's last I/O failure: the connection's (opening
 * files), else the database file's, else the WAL's (a failed WAL write or
 * fsync is recorded only on that file). 0: none known. */
static int sq_errno(sqlite3 *db)
{
    sqlite3_file *wal = NULL;
    int e = db ? sqlite3_system_errno(db) : 0;

    if (db && e == 0 && sqlite3_file_control(db, "main", SQLITE_FCNTL_LAST_ERRNO, &e) != SQLITE_OK)
        e = 0;
    if (db && e == 0 &&
        sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) == SQLITE_OK && wal &&
        wal->pMethods && wal->pMethods->xFileControl(wal, SQLITE_FCNTL_LAST_ERRNO, &e) != SQLITE_OK)
        e = 0;
    return e;
}

/* msg, and when SQLite failed on the file system the OS error under it:
 * "disk I/O error" alone does not say that the disk is full or read-only
 * (the -shm could not grow, a WAL write got EROFS). */
static const char *sq_why(sqlite3 *db, int rc, const char *msg, char *out, size_t len)
{
    int prim = rc & 0xff;
    int sys = prim == SQLITE_IOERR || prim == SQLITE_CANTOPEN || prim == SQLITE_FULL ||
                      prim == SQLITE_READONLY
                  ? sq_errno(db)
                  : 0;

    if (sys > 0 && !strstr(msg, strerror(sys)))
        snprintf(out, len, "%s (%s)", msg, strerror(sys));
    else
        snprintf(out, len, "%s", msg);
    return out;
}

static int sq_code(tool_castore *s, int rc, const char *what)
{
    sq_conn *c = s->conn;
    char why[400];
    const char *msg = c && c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc);

    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return tool_cs_fail(s, TOOL_CS_CONFLICT, "%s: %s", what, msg);
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
        return tool_cs_fail(s, TOOL_CS_UNAVAIL,
                            "%s: the CA database is locked by another process: %s", what, msg);
    return tool_cs_fail(s, TOOL_CS_ERROR, "%s: %s", what,
                        sq_why(c ? c->db : NULL, rc, msg, why, sizeof why));
}

static int sq_exec(tool_castore *s, const char *sql)
{
    sq_conn *c = s->conn;
    char *msg = NULL, why[400];
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        int code = sq_code(s, rc, "SQLite");
        if (msg)
            tool_cs_fail(s, code, "SQLite: %s", sq_why(c->db, rc, msg, why, sizeof why));
        sqlite3_free(msg);
        return code;
    }
    return TOOL_CS_OK;
}

static int sq_connect(tool_castore *s, const char *path, char *err, size_t errlen)
{
    sq_conn *c = calloc(1, sizeof *c);
    int rc;

    if (!c) {
        snprintf(err, errlen, "out of memory");
        return TOOL_CS_ERROR;
    }
    s->conn = c;
    rc = sqlite3_open_v2(path, &c->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        char why[400];
        snprintf(
            err, errlen, "%s: %s", path,
            sq_why(c->db, rc, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc), why, sizeof why));
        return TOOL_CS_ERROR;
    }
    sqlite3_busy_timeout(c->db, CS_SQLITE_BUSY_MS);
    sqlite3_extended_result_codes(c->db, 1);
    /* WAL: readers never block the writer; FULL: fsync at every commit. */
    if (sq_exec(s, "PRAGMA journal_mode=WAL") != TOOL_CS_OK ||
        sq_exec(s, "PRAGMA synchronous=FULL") != TOOL_CS_OK ||
        sq_exec(s, "PRAGMA foreign_keys=ON") != TOOL_CS_OK) {
        snprintf(err, errlen, "%s: %s", path, s->err);
        return TOOL_CS_ERROR;
    }
    return TOOL_CS_OK;
}

static void sq_close(tool_castore *s)
{
    sq_conn *c = s->conn;
    int i;

    if (!c)
        return;
    for (i = 0; i < CS_ST_COUNT; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close(c->db);
    free(c);
    s->conn = NULL;
}

static int sq_query(tool_castore *s, int id, const char *sql, const cs_param *p, int np,
                    cs_row_fn fn, void *user, long *changes)
{
    sq_conn *c = s->conn;
    sqlite3_stmt *st = id < CS_ST_LIST ? c->st[id] : NULL;
    struct cs_row row;
    int rc, i, code = TOOL_CS_OK, go = 1;

    if (!st) {
        rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
            return sq_code(s, rc, "SQLite prepare");
        if (id < CS_ST_LIST)
            c->st[id] = st;
    }
    for (i = 0; i < np; i++) {
        switch (p[i].type) {
        case CS_TEXT:
            rc = sqlite3_bind_text(st, i + 1, p[i].text, -1, SQLITE_STATIC);
            break;
        case CS_INT:
            rc = sqlite3_bind_int64(st, i + 1, p[i].i);
            break;
        case CS_BLOB:
            rc = sqlite3_bind_blob(st, i + 1, p[i].blob, (int)p[i].len, SQLITE_STATIC);
            break;
        default:
            rc = sqlite3_bind_null(st, i + 1);
        }
        if (rc != SQLITE_OK) {
            code = sq_code(s, rc, "SQLite bind");
            goto out;
        }
    }
    row.st = st;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (go && fn && !fn(user, &row))
            go = 0;
    if (rc != SQLITE_DONE) {
        code = sq_code(s, rc, "SQLite");
        goto out;
    }
    if (changes)
        *changes = sqlite3_changes(c->db);
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (id >= CS_ST_LIST)
        sqlite3_finalize(st);
    return code;
}

static const char *sq_text(cs_row *r, int i)
{
    if (sqlite3_column_type(r->st, i) == SQLITE_NULL)
        return NULL;
    return (const char *)sqlite3_column_text(r->st, i);
}

static int64_t sq_int(cs_row *r, int i)
{
    return sqlite3_column_int64(r->st, i);
}

static const unsigned char *sq_blob(cs_row *r, int i, size_t *len)
{
    const unsigned char *b = sqlite3_column_blob(r->st, i);
    *len = (size_t)sqlite3_column_bytes(r->st, i);
    return b;
}

static int sq_begin(tool_castore *s)
{
    return sq_exec(s, "BEGIN IMMEDIATE");
}

static int sq_commit(tool_castore *s)
{
    return sq_exec(s, "COMMIT");
}

static void sq_rollback(tool_castore *s)
{
    sq_conn *c = s->conn;
    if (c && !sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

static int sq_migration_lock(tool_castore *s)
{
    (void)s; /* BEGIN IMMEDIATE already holds the database's write lock */
    return TOOL_CS_OK;
}

const cs_backend tool_cs_sqlite = {
    .name = "sqlite",
    .blob_type = "BLOB",
    .connect = sq_connect,
    .close = sq_close,
    .exec = sq_exec,
    .query = sq_query,
    .col_text = sq_text,
    .col_int = sq_int,
    .col_blob = sq_blob,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .migration_lock = sq_migration_lock,
};
