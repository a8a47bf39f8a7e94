/*
 * The stock `openssl ca` files of a CA directory, as a view of the CA store
 * (ca_view.c) and as a source of records made by stock `openssl ca` or by
 * tokenmint's old directory format (ca_import.c).
 */
#ifndef TOKENMINT_CA_FILES_H
#define TOKENMINT_CA_FILES_H

#include <sys/stat.h>

#include <openssl/x509.h>

#include "castore.h"
#include "tm_profile.h"

typedef struct tool_ca_paths {
    const char *dir;      /* the CA directory */
    const char *index;    /* index.txt */
    const char *serial;   /* serial, or NULL */
    const char *newcerts; /* newcerts/ */
} tool_ca_paths;

/* Serials whose certificate file is known to be in newcerts/ (ca_known.c). */
typedef struct tool_ca_known tool_ca_known;
tool_ca_known *tool_ca_known_new(void);
void tool_ca_known_free(tool_ca_known *k);
int tool_ca_known_has(const tool_ca_known *k, const char *serial);
int tool_ca_known_add(tool_ca_known *k, const char *serial); /* 0: out of memory */

/* Rewrites index.txt and serial from every record (temporary file, fsync,
 * rename: a reader sees the old or the new file, never a torn one) and
 * writes every certificate file that is missing or empty, before the index
 * line naming it. known (may be NULL): files known to be there are not
 * looked at; the files seen or written are added. *written gets
 * index.txt's identity, so that a later foreign change can be told. */
int tool_ca_view_write(tool_castore *db, const tool_ca_paths *p, tool_ca_known *known,
                       struct stat *written, char *err, size_t errlen);
/* newcerts/SERIAL.pem from a certificate's DER, through a temporary file and
 * rename. Not fsync'd: the database holds the certificate, the file is a
 * copy. */
int tool_ca_view_cert_file(const char *newcerts, const char *serial, const unsigned char *der,
                           size_t der_len);
/* index.txt changed since *written (stock openssl ca wrote it)? */
int tool_ca_view_changed(const tool_ca_paths *p, const struct stat *written);

typedef struct tool_ca_import_report {
    size_t migrated;   /* records from an old-format issued.txt */
    size_t imported;   /* certificates stock openssl ca issued */
    size_t recovered;  /* certificate files no index named */
    size_t revoked;    /* revocations stock openssl ca made */
    size_t expired;    /* `openssl ca -updatedb` marks */
    size_t superseded; /* a key+purpose certified twice: the older one */
    size_t duplicates; /* lines naming a serial already taken in */
    size_t cleaned;    /* empty certificate files and dead writers' temporary files removed */
    size_t problems;   /* lines or files that could not be taken in */
} tool_ca_import_report;

/*
 * Takes into the store, in one transaction: an old-format issued.txt (then
 * renamed issued.txt.migrated), every index.txt line the store does not
 * know (lines of any length; a torn last line is reported and skipped),
 * revocations and expiries marked there, and certificate files in newcerts/
 * signed by the CA that no record names. Removes empty certificate files
 * and the temporary files (index.txt, serial, newcerts/) of dead writers.
 * Problems are reported through report_fn (one line each) and counted;
 * only a store error fails the import.
 */
int tool_ca_import(tool_castore *db, const tool_ca_paths *p, X509 *root, const tm_profile *prof,
                   void (*report_fn)(const char *line, void *user), void *user,
                   tool_ca_import_report *rep, char *err, size_t errlen);

#endif
