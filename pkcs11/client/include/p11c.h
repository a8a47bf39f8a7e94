/*
 * The PKCS#11 client layer: the one public header that the module, the
 * provider and the tool compile against. It brings p11-kit's PKCS#11 2.40
 * header plus the few 3.0 definitions p11-kit 0.24 lacks (the module needs
 * them for C_GetInterfaceList / C_GetInterface), and the helpers every
 * PKCS#11 caller in tokenmint shares, so there is one copy of each.
 *
 * Names: p11c_. Link target: tokenmint-p11client (static).
 */
#ifndef TOKENMINT_P11C_H
#define TOKENMINT_P11C_H

#include <stdarg.h>
#include <stddef.h>

#include <p11-kit/pkcs11.h>

#ifndef CKF_INTERFACE_FORK_SAFE
typedef struct CK_INTERFACE {
    CK_CHAR *pInterfaceName;
    CK_VOID_PTR pFunctionList;
    CK_FLAGS flags;
} CK_INTERFACE;
typedef CK_INTERFACE *CK_INTERFACE_PTR;
typedef CK_INTERFACE_PTR *CK_INTERFACE_PTR_PTR;
#define CKF_INTERFACE_FORK_SAFE 0x00000001UL
typedef CK_RV (*CK_C_GetInterfaceList)(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount);
typedef CK_RV (*CK_C_GetInterface)(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                                   CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags);
#endif

/* ---- debug switch ------------------------------------------------------
 * The one TOKENMINT_DEBUG switch: set, non-empty and not "0" means on. Read
 * on every call: tests switch it between runs in one process, and there is
 * no cached state for threads to race on. Each part keeps its own prefix so
 * a line says who wrote it. Debug lines never carry a PIN or a secret. */
int p11c_debug_enabled(void);
/* "PREFIX: message\n" on stderr when enabled. */
void p11c_debug_prefixed(const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* ---- secret sources (PINs, passphrases, shared secrets) -----------------
 * One syntax everywhere (the tool's --pin-source and other *-source
 * options, the provider's pin-source URI attribute and config key):
 *   PATH | file:PATH | file://PATH
 * and, where the secret is per token, "%s" once in PATH stands for the
 * token's serial (its printable profile text). The secret is the file's
 * first line without its CR/LF; an empty first line is an error.
 *
 * The file must be a regular file (a FIFO, device, socket or directory is
 * refused without blocking), owned by the running user (or root), and
 * neither readable nor writable by group or others, as ssh demands of
 * private keys. P11C_SECRET_ALLOW_OPEN lifts the mode and owner rules only;
 * a caller sets it solely on the user's explicit request (the tool's
 * --allow-open-secrets, the provider's allow-open-secrets). */

/* Accept a secret file that group/others may read or write, or that another
 * user owns. */
#define P11C_SECRET_ALLOW_OPEN 0x1u

/* Opens PATH (a path, not a source) for reading after the checks above;
 * the descriptor (O_NONBLOCK, O_CLOEXEC) or -1 with the reason in err. For
 * readers of other secret formats (the module's binary station secret). */
int p11c_secret_open(const char *path, const char *what, unsigned int flags, char *err,
                     size_t errlen);
/* 1 when SOURCE names one file per token (has a "%s"). */
int p11c_secret_per_token(const char *source);
/* The file SOURCE names for SERIAL (NULL: no token, "%s" stays as it is).
 * 0 with a message in err when the path does not fit. */
int p11c_secret_path(const char *source, const char *serial, char *path, size_t pathlen, char *err,
                     size_t errlen);
/* Reads the secret into out (NUL-terminated, *len without the NUL). WHAT
 * names it in messages ("PIN", "passphrase"); messages name the file and
 * what is wrong with it, never the secret. On failure out is cleansed.
 * p11c_secret_read is p11c_secret_read_ex with flags 0. */
int p11c_secret_read(const char *source, const char *serial, const char *what, char *out,
                     size_t outlen, size_t *len, char *err, size_t errlen);
int p11c_secret_read_ex(const char *source, const char *serial, const char *what,
                        unsigned int flags, char *out, size_t outlen, size_t *len, char *err,
                        size_t errlen);

/* ---- conventions -------------------------------------------------------
 * Buffers a p11c_ function hands out are the caller's, freed with free(3);
 * on failure nothing is handed out (*out is NULL, counts are 0). A broken
 * precondition (NULL where a value is needed) is a failure with a debug
 * line, never a crash. */

/* ---- finding objects ---------------------------------------------------
 * The whole search (Init, batches, Final; Final also after an error, so the
 * session stays usable). *objs: every match, the caller frees it; NULL when
 * none. */
CK_RV p11c_find_all(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                    CK_OBJECT_HANDLE **objs, CK_ULONG *count);
/* The first match, or CK_INVALID_HANDLE (CKR_OK) when there is none. */
CK_RV p11c_find_first(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                      CK_OBJECT_HANDLE *obj);

/* ---- reading attributes ------------------------------------------------
 * One attribute of any length, two calls (length, value). On CKR_OK *val is
 * a fresh buffer of *len bytes plus a NUL (text attributes can be used as
 * strings; an empty value is a 1-byte buffer and *len 0); the caller frees
 * it. A length the module marks unavailable under CKR_OK (against the
 * standard) is CKR_ATTRIBUTE_TYPE_INVALID. */
CK_RV p11c_attr_get(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                    CK_ATTRIBUTE_TYPE type, unsigned char **val, CK_ULONG *len);

/* ---- EC public keys ----------------------------------------------------
 * The readings of a CKA_EC_POINT value: the point inside a DER OCTET STRING
 * (the standard) first when it is one, then the value as a bare point (some
 * tokens; a bare uncompressed point can look wrapped). Returns how many
 * (0 for an empty value, else 1 or 2); the pointers point into v, nothing
 * is allocated. A caller takes the first reading that fits its key. */
size_t p11c_ec_point_readings(const unsigned char *v, size_t len, const unsigned char *point[2],
                              size_t point_len[2]);
/* The curve a CKA_EC_PARAMS value names (DER OID, or the PrintableString
 * curve name of PKCS#11 3.0, e.g. "edwards25519"), as an OpenSSL NID;
 * NID_undef when it names none. Leaves OpenSSL's error queue as it was. */
int p11c_ec_params_nid(const unsigned char *params, size_t len);

/* ---- return values ----------------------------------------------------
 * "CKR_PIN_INCORRECT" for every CKR_ of PKCS#11 2.40; "CKR 0x..." for any
 * other (per-thread buffer, valid until the thread's next call). */
const char *p11c_ckr_name(CK_RV rv);

/* ---- hex ----------------------------------------------------------------
 * Lower-case hex of bin into out, NUL-terminated, whole bytes only (as many
 * as fit); returns the number of digits written. */
size_t p11c_hex_encode(const unsigned char *bin, size_t n, char *out, size_t outlen);
/* Strict: an even number of hex digits (either case), nothing else, at most
 * outlen bytes. 1 with *n bytes in out; 0 otherwise. */
int p11c_hex_decode(const char *hex, size_t hexlen, unsigned char *out, size_t outlen, size_t *n);

/* ---- the audit trail (link tokenmint-p11client-audit) -------------------
 * Append-only JSON lines, one object per event, in one write(2) on an
 * O_APPEND descriptor (lines of threads and processes never interleave):
 * {"time":"2026-11-25T16:49:15.123Z","pid":123,"serial":"..."|null,
 *  "op":"...","outcome":"...","detail":"..."|null[,"operator":"..."][,"by":"..."]}
 * Never a PIN or a secret. */
typedef struct p11c_audit p11c_audit;
typedef struct p11c_audit_record {
    const char *serial;      /* printable serial text; NULL: null */
    const char *op;          /* what was done: "login", "certificate-write", ... */
    const char *outcome;     /* "ok", "failed", "refused", ... */
    const char *detail;      /* the reason; NULL: null */
    const char *operator_id; /* who asked; NULL: key left out */
    const char *by;          /* which program wrote it; NULL: key left out */
} p11c_audit_record;
/* Opens PATH for appending (created with MODE). NULL or "" gives a log that
 * discards, still safe to write to. Refuses (NULL, message in err) a path it
 * cannot open or that is not a regular file: records would be lost. */
p11c_audit *p11c_audit_open(const char *path, int mode, char *err, size_t errlen);
void p11c_audit_close(p11c_audit *a);
/* Thread-safe. */
void p11c_audit_write(p11c_audit *a, const p11c_audit_record *r);
void p11c_audit_event(p11c_audit *a, const char *serial, const char *op, const char *outcome,
                      const char *detail);

#endif
