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

#endif
