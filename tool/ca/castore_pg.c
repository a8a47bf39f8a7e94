/*
 * The CA store on PostgreSQL (libpq), for several CA servers sharing one
 * database. READ COMMITTED is enough: the never-twice rules are constraints
 * (primary key, partial unique index), and an insert that races another
 * server's waits for it and then reports the conflict (ON CONFLICT DO
 * NOTHING), so no transaction is aborted by it.
 *
 * A lost connection (server restart, network) is reported as TOOL_CS_UNAVAIL
 * and the next operation reconnects; prepared statements are made again on
 * the new connection. An open batch is lost with the connection, which is
 * right: nothing in it was acknowledged.
 */
#include "castore_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

typedef struct pg_conn {
    PGconn *c;
    unsigned prepared; /* bit per cached statement */
} pg_conn;

struct cs_row {
    PGresult *res;
    int row;
    unsigned char *scratch; /* the last bytea, unescaped */
};

static int pg_unavail_state(const char *st)
{
    /* 08: connection exception; 57P0x: shutdown, crash, cannot connect now;
     * 40001/40P01: serialization failure, deadlock: both worth a retry; 53: out
     * of resources (disk full) */
    return st &&
           (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0 || strcmp(st, "40001") == 0 ||
            strcmp(st, "40P01") == 0 || strncmp(st, "53", 2) == 0);
}

static int pg_code(tool_castore *s, PGresult *res, const char *what)
{
    pg_conn *c = s->conn;
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(c->c);
    char clean[400];
    size_t l;

    snprintf(clean, sizeof clean, "%s", msg && *msg ? msg : "no answer from the server");
    l = strlen(clean);
    while (l && (clean[l - 1] == '\n' || clean[l - 1] == ' '))
        clean[--l] = 0;
    if (PQstatus(c->c) != CONNECTION_OK) {
        c->prepared = 0;
        return tool_cs_fail(s, TOOL_CS_UNAVAIL, "%s: PostgreSQL connection lost: %s", what, clean);
    }
    if (st && strcmp(st, "23505") == 0)
        return tool_cs_fail(s, TOOL_CS_CONFLICT, "%s: %s", what, clean);
    if (pg_unavail_state(st))
        return tool_cs_fail(s, TOOL_CS_UNAVAIL, "%s: PostgreSQL unavailable (%s): %s", what, st,
                            clean);
    return tool_cs_fail(s, TOOL_CS_ERROR, "%s: PostgreSQL: %s", what, clean);
}

/* Reconnects when the connection went bad, outside a transaction only. */
static int pg_ensure(tool_castore *s)
{
    pg_conn *c = s->conn;

    if (PQstatus(c->c) == CONNECTION_OK)
        return TOOL_CS_OK;
    c->prepared = 0;
    PQreset(c->c);
    if (PQstatus(c->c) != CONNECTION_OK)
        return pg_code(s, NULL, "reconnect");
    return TOOL_CS_OK;
}

static int pg_exec(tool_castore *s, const char *sql)
{
    pg_conn *c = s->conn;
    PGresult *res;
    int code = TOOL_CS_OK;

    if (!s->in_batch && (code = pg_ensure(s)) != TOOL_CS_OK)
        return code;
    res = PQexec(c->c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        code = pg_code(s, res, "SQL");
    PQclear(res);
    return code;
}

static int pg_connect(tool_castore *s, const char *conninfo, char *err, size_t errlen)
{
    pg_conn *c = calloc(1, sizeof *c);
    /* expand_dbname: the "dbname" value may be a whole connection string;
     * keywords after it fill in what that string leaves out. */
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {conninfo, "5", "tokenmint", NULL};
    PGresult *res;

    PQconninfoOption *opts, *o;
    char *perr = NULL;
    int has_password = 0;

    if (!c) {
        snprintf(err, errlen, "out of memory");
        return TOOL_CS_ERROR;
    }
    s->conn = c;
    /* ca.cnf and argv are readable by others: no password in them */
    opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        snprintf(err, errlen, "PostgreSQL connection string: %s",
                 perr ? perr : "not a connection string");
        PQfreemem(perr);
        return TOOL_CS_ERROR;
    }
    for (o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
            has_password = 1;
    PQconninfoFree(opts);
    if (has_password) {
        snprintf(err, errlen,
                 "the PostgreSQL connection string carries a password: put it in ~/.pgpass "
                 "or the file PGPASSFILE names (mode 0600), not in ca.cnf or on the command "
                 "line");
        return TOOL_CS_ERROR;
    }
    c->c = PQconnectdbParams(keys, vals, 1);
    if (!c->c || PQstatus(c->c) != CONNECTION_OK) {
        const char *m = c->c ? PQerrorMessage(c->c) : "out of memory";
        size_t l;
        snprintf(err, errlen, "PostgreSQL: %s", m);
        l = strlen(err);
        while (l && err[l - 1] == '\n')
            err[--l] = 0;
        return TOOL_CS_UNAVAIL;
    }
    res = PQexec(c->c, "SET client_min_messages = warning");
    PQclear(res);
    return TOOL_CS_OK;
}

static void pg_close(tool_castore *s)
{
    pg_conn *c = s->conn;
    if (!c)
        return;
    PQfinish(c->c);
    free(c);
    s->conn = NULL;
}

static int pg_query(tool_castore *s, int id, const char *sql, const cs_param *p, int np,
                    cs_row_fn fn, void *user, long *changes)
{
    pg_conn *c = s->conn;
    const char *vals[16];
    int lens[16], fmts[16], i, n, code = TOOL_CS_OK, go = 1;
    char ints[16][24], name[16];
    PGresult *res = NULL;
    struct cs_row row = {0};

    if (np > 16)
        return tool_cs_fail(s, TOOL_CS_ERROR, "too many parameters");
    if (!s->in_batch && (code = pg_ensure(s)) != TOOL_CS_OK)
        return code;
    for (i = 0; i < np; i++) {
        lens[i] = 0;
        fmts[i] = 0;
        switch (p[i].type) {
        case CS_TEXT:
            vals[i] = p[i].text;
            break;
        case CS_INT:
            snprintf(ints[i], sizeof ints[i], "%lld", (long long)p[i].i);
            vals[i] = ints[i];
            break;
        case CS_BLOB:
            vals[i] = (const char *)p[i].blob;
            lens[i] = (int)p[i].len;
            fmts[i] = 1;
            break;
        default:
            vals[i] = NULL;
        }
    }
    if (id < CS_ST_LIST) {
        snprintf(name, sizeof name, "tm%d", id);
        if (!(c->prepared & (1u << id))) {
            res = PQprepare(c->c, name, sql, 0, NULL);
            if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                code = pg_code(s, res, "PostgreSQL prepare");
                goto out;
            }
            PQclear(res);
            c->prepared |= 1u << id;
        }
        res = PQexecPrepared(c->c, name, np, vals, lens, fmts, 0);
    } else {
        res = PQexecParams(c->c, sql, np, NULL, vals, lens, fmts, 0);
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        code = pg_code(s, res, "PostgreSQL");
        goto out;
    }
    row.res = res;
    n = PQntuples(res);
    for (i = 0; i < n && go && fn; i++) {
        row.row = i;
        go = fn(user, &row);
        PQfreemem(row.scratch);
        row.scratch = NULL;
    }
    if (changes) {
        const char *t = PQcmdTuples(res);
        *changes = t && *t ? strtol(t, NULL, 10) : 0;
    }
out:
    PQclear(res);
    return code;
}

static const char *pg_text(cs_row *r, int i)
{
    if (PQgetisnull(r->res, r->row, i))
        return NULL;
    return PQgetvalue(r->res, r->row, i);
}

static int64_t pg_int(cs_row *r, int i)
{
    const char *t = pg_text(r, i);
    return t ? strtoll(t, NULL, 10) : 0;
}

static const unsigned char *pg_blob(cs_row *r, int i, size_t *len)
{
    const char *t = pg_text(r, i);
    *len = 0;
    if (!t)
        return NULL;
    PQfreemem(r->scratch);
    r->scratch = PQunescapeBytea((const unsigned char *)t, len);
    return r->scratch;
}

static int pg_begin(tool_castore *s)
{
    int code = pg_ensure(s);
    return code != TOOL_CS_OK ? code : pg_exec(s, "BEGIN");
}

static int pg_commit(tool_castore *s)
{
    /* synchronous_commit is the server's (on by default): COMMIT returns once
     * the WAL is flushed there. */
    return pg_exec(s, "COMMIT");
}

static void pg_rollback(tool_castore *s)
{
    pg_conn *c = s->conn;
    if (c && PQstatus(c->c) == CONNECTION_OK && PQtransactionStatus(c->c) != PQTRANS_IDLE) {
        PGresult *res = PQexec(c->c, "ROLLBACK");
        PQclear(res);
    }
}

static int pg_migration_lock(tool_castore *s)
{
    /* one key for every tokenmint process on this database */
    return pg_exec(s, "SELECT pg_advisory_xact_lock(7305016)");
}

const cs_backend tool_cs_pg = {
    .name = "postgresql",
    .blob_type = "BYTEA",
    .connect = pg_connect,
    .close = pg_close,
    .exec = pg_exec,
    .query = pg_query,
    .col_text = pg_text,
    .col_int = pg_int,
    .col_blob = pg_blob,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .migration_lock = pg_migration_lock,
};
