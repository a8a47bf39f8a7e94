/*
 * Inside the CA store: what a backend (castore_sqlite.c, castore_pg.c)
 * provides to the operations in castore.c. One SQL text runs on both: the
 * parameters are $1, $2, ... in order of first appearance (SQLite numbers
 * named parameters that way), and the schema names its one differing type
 * through blob_type.
 */
#ifndef TOKENMINT_CASTORE_INT_H
#define TOKENMINT_CASTORE_INT_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "castore.h"

/* API-edge guard: a broken caller gets a debug line and an error code. */
#define cs_return_val_if_fail(expr, val)                                                           \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            if (getenv("TOKENMINT_DEBUG"))                                                         \
                fprintf(stderr, "tokenmint: %s: '%s' not true\n", __func__, #expr);                \
            return (val);                                                                          \
        }                                                                                          \
    } while (0)

enum { CS_NULL, CS_TEXT, CS_INT, CS_BLOB };

typedef struct cs_param {
    int type;
    const char *text;
    int64_t i;
    const unsigned char *blob;
    size_t len;
} cs_param;

typedef struct cs_row cs_row;
typedef int (*cs_row_fn)(void *user, cs_row *row); /* 0 stops */

/* Statement numbers: a backend caches one prepared statement per number. */
enum {
    CS_ST_FIND_VALID,
    CS_ST_FIND_SERIAL,
    CS_ST_INSERT,
    CS_ST_REVOKE,
    CS_ST_SUPERSEDE,
    CS_ST_EXPIRE,
    CS_ST_META_GET,
    CS_ST_META_SET,
    CS_ST_VERSION,
    CS_ST_LIST, /* built per filter: not cached */
    CS_ST_COUNT
};

typedef struct cs_backend {
    const char *name;
    const char *blob_type;
    int (*connect)(tool_castore *s, const char *target, char *err, size_t errlen);
    void (*close)(tool_castore *s);
    /* Statements without parameters or rows (schema, transactions). */
    int (*exec)(tool_castore *s, const char *sql);
    /* One statement. id < CS_ST_LIST is cached; *changes = rows changed. */
    int (*query)(tool_castore *s, int id, const char *sql, const cs_param *p, int np, cs_row_fn fn,
                 void *user, long *changes);
    const char *(*col_text)(cs_row *r, int i); /* NULL for SQL NULL */
    int64_t (*col_int)(cs_row *r, int i);
    const unsigned char *(*col_blob)(cs_row *r, int i, size_t *len);
    /* Transactions: begin takes the write lock (SQLite BEGIN IMMEDIATE). */
    int (*begin)(tool_castore *s);
    int (*commit)(tool_castore *s);
    void (*rollback)(tool_castore *s);
    /* Serialises schema migrations between processes (inside a transaction). */
    int (*migration_lock)(tool_castore *s);
} cs_backend;

struct tool_castore {
    const cs_backend *be;
    void *conn; /* the backend's */
    int in_batch;
    char err[600];
    char dir[PATH_MAX];
};

extern const cs_backend tool_cs_sqlite;
extern const cs_backend tool_cs_pg;

/* Sets s->err (printf style) and returns code. */
int tool_cs_fail(tool_castore *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* castore_schema.c: creates or migrates to the current version. */
int tool_cs_schema_migrate(tool_castore *s);
#define CS_SCHEMA_VERSION 1

#endif
