/*
 * The CA's records: one storage interface, two backends.
 *
 *   SQLite (libsqlite3), the default: DIR/ca.db in WAL mode, synchronous=FULL,
 *   so a committed batch is on disk when tool_castore_commit returns.
 *   PostgreSQL (libpq): a connection string ("postgresql://..." or
 *   "host=... dbname=..."), for several CA servers sharing one database.
 *
 * Both run the same versioned schema (castore_schema.c). Its constraints
 * do the never-twice work: the certificate serial is the primary key, and a
 * partial unique index allows one valid ('V') certificate per (SPKI hash,
 * purpose). Every record carries its certificate's DER (NOT NULL, non-empty).
 *
 * Batches: tool_castore_begin .. tool_castore_commit is one transaction
 * (group commit: one per CA batch). Every operation may also run outside a
 * batch; it is then its own transaction.
 *
 * Adding an operation: write it once in castore.c on top of cs_query() with
 * one SQL text (parameters $1, $2, ... in order of appearance, so the same
 * text runs on both backends), give it a statement number in cs_stmt, and
 * declare it here. Schema changes go into castore_schema.c as a new
 * migration step; never edit a released step.
 *
 * Ownership: records returned are the caller's (tool_cs_record_clear);
 * strings passed in are borrowed.
 */
#ifndef TOKENMINT_CASTORE_H
#define TOKENMINT_CASTORE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

/* Return codes of every operation. */
#define TOOL_CS_OK 0
#define TOOL_CS_NOTFOUND 1
#define TOOL_CS_CONFLICT 2 /* a constraint said no: serial taken, or key+purpose valid */
#define TOOL_CS_ERROR (-1)
#define TOOL_CS_UNAVAIL (-2) /* the database cannot be reached now: retry later */

/* Status letters, the same as index.txt's, plus S (superseded by a renewal). */
#define TOOL_CS_VALID 'V'
#define TOOL_CS_REVOKED 'R'
#define TOOL_CS_EXPIRED 'E'
#define TOOL_CS_SUPERSEDED 'S'

#define TOOL_CS_SERIAL_MAX 84 /* hex of a 320-bit serial, with room */

typedef struct tool_castore tool_castore;

typedef struct tool_cs_record {
    char serial[TOOL_CS_SERIAL_MAX]; /* upper-case hex as index.txt has it */
    char spki[65];                   /* SHA-256 of the SubjectPublicKeyInfo, lower hex */
    char purpose[64];
    char token[160];       /* token serial, profile text encoding; "-" unknown */
    char operator_id[256]; /* who issued ("cmp", an operator, "openssl ca") */
    char origin[16];       /* tokenmint, openssl, migrated, recovered */
    char *subject;         /* owned; X509_NAME_oneline form, as in index.txt */
    int64_t issued_at;     /* seconds since the epoch */
    int64_t not_after;
    char status;                            /* TOOL_CS_VALID ... */
    int64_t revoked_at;                     /* 0 unless revoked */
    int reason;                             /* CRLReason, -1 none */
    char superseded_by[TOOL_CS_SERIAL_MAX]; /* "" unless superseded */
    unsigned char *der;                     /* owned: the certificate */
    size_t der_len;
} tool_cs_record;

void tool_cs_record_clear(tool_cs_record *r);
/* Fills r from a certificate (serial, spki, subject, not_after, DER);
 * token/purpose/operator/origin as given, status V, issued now. */
int tool_cs_record_from_cert(tool_cs_record *r, X509 *cert, const char *token, const char *purpose,
                             const char *operator_id, const char *origin);
/* The record's certificate, decoded. Caller frees. */
X509 *tool_cs_record_cert(const tool_cs_record *r);
/* Serial of a certificate in the records' form. Caller frees (OPENSSL_free). */
char *tool_cs_serial_hex(const ASN1_INTEGER *sn);
/* Do two hex serials (any case, leading zeros) name the same number? */
int tool_cs_serial_eq(const char *a, const char *b);
/* SHA-256 hex of an encoded SubjectPublicKeyInfo. */
int tool_cs_spki_hash(const X509_PUBKEY *xp, char hex[65]);

/* Opens (and creates or migrates the schema of) the store: conninfo NULL or
 * "" is SQLite in DIR/ca.db; "sqlite:PATH" another SQLite file; anything
 * else a libpq connection string. NULL with the reason in err. */
tool_castore *tool_castore_open(const char *dir, const char *conninfo, char *err, size_t errlen);
void tool_castore_close(tool_castore *s);
const char *tool_castore_backend(const tool_castore *s); /* "sqlite", "postgresql" */
/* The last error in words (borrowed, until the next call). */
const char *tool_castore_error(const tool_castore *s);
int tool_castore_schema_version(tool_castore *s);

/* One transaction for a batch. begin takes the write lock (SQLite: BEGIN
 * IMMEDIATE, waiting for other processes). commit returns OK only when the
 * batch is durable. A failed operation inside a batch leaves it to be rolled
 * back; rollback is safe to call when nothing is open. */
int tool_castore_begin(tool_castore *s);
int tool_castore_commit(tool_castore *s);
void tool_castore_rollback(tool_castore *s);

/* The valid certificate for (spki, purpose), or NOTFOUND. */
int tool_castore_find_valid(tool_castore *s, const char *spki, const char *purpose,
                            tool_cs_record *out);
/* Any record by certificate serial (hex, any case, leading zeros ignored). */
int tool_castore_find_serial(tool_castore *s, const char *serial, tool_cs_record *out);
/* Inserts a new record. CONFLICT when the serial exists or, for a valid
 * record, its key and purpose already have a valid certificate; nothing is
 * written then and the batch stays usable. */
int tool_castore_insert(tool_castore *s, const tool_cs_record *r);
/* Status changes. Revoke: a valid or superseded record becomes R with the
 * time and CRLReason (CONFLICT when already revoked, NOTFOUND when absent).
 * Supersede: a valid record becomes S, naming its successor. Expire: V -> E. */
int tool_castore_revoke(tool_castore *s, const char *serial, int64_t when, int reason);
int tool_castore_supersede(tool_castore *s, const char *serial, const char *by_serial);
int tool_castore_expire(tool_castore *s, const char *serial);

typedef struct tool_cs_filter {
    const char *token;       /* token serial text, NULL: any */
    const char *serial;      /* certificate serial, NULL: any */
    const char *spki;        /* NULL: any */
    const char *purpose;     /* NULL: any */
    char status;             /* 0: any */
    int64_t expiring_before; /* 0: any; else not_after < this */
    int with_der;            /* 0: der left NULL (cheaper) */
} tool_cs_filter;

/* Calls fn for every matching record in issue order (the record is only
 * borrowed for the call; fn returns 0 to stop). Returns OK or an error. */
typedef int (*tool_cs_each_fn)(const tool_cs_record *r, void *user);
int tool_castore_list(tool_castore *s, const tool_cs_filter *f, tool_cs_each_fn fn, void *user);

/* Takes in a record made elsewhere (stock openssl ca, an old-format
 * directory): inserted when its serial is new; NOTFOUND-free idempotence:
 * a serial already present is left alone (returns CONFLICT). When its key
 * and purpose already have a valid certificate, the older of the two is
 * marked superseded by the newer (by notBefore order of arrival): the
 * returned *superseded names it ("" when none). */
int tool_castore_import(tool_castore *s, const tool_cs_record *r, char *superseded,
                        size_t superseded_len);

/* Small named values (schema bookkeeping, migration state). */
int tool_castore_meta_get(tool_castore *s, const char *key, char *out, size_t outlen);
int tool_castore_meta_set(tool_castore *s, const char *key, const char *value);

/* CRLReason names as index.txt writes them; -1 for an unknown name. */
const char *tool_cs_reason_name(int reason);
int tool_cs_reason_code(const char *name);

#endif
