/*
 * The serial-bound certificate profile: the one place that knows how a
 * request or certificate names a token's hardware serial and nothing else.
 *
 * The module (write policy), the provider (signing boundary) and the tool
 * (request building, CA) all link this static library. It depends on
 * libcrypto only: no PKCS#11, no file I/O except reading the profile config
 * through OpenSSL's own config parser.
 *
 * Ownership: every function that returns a pointer says who frees it.
 * Errors: functions that can fail for more than one reason report into a
 * tm_violations list, each entry a sentence a person can act on.
 */
#ifndef TOKENMINT_PROFILE_H
#define TOKENMINT_PROFILE_H

#include <stdarg.h>
#include <stddef.h>
#include <openssl/x509.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Raw serial bytes as the token reports them, trimmed; at most 64 (X.520 ub). */
#define TM_SERIAL_MAX 64
/* A serial rendered for the subject serialNumber attribute: every byte may be
 * escaped to three characters ("?XX"). */
#define TM_SERIAL_TEXT_MAX (TM_SERIAL_MAX * 3)

/* ---- debug lines ---------------------------------------------------------
 * The library writes nothing itself: its debug lines go to a sink that the
 * part linking it installs once at start (the PKCS#11 client layer's
 * p11c_debug_prefixed, which honours TOKENMINT_DEBUG). Without a sink they
 * are dropped. The prefix names the library ("tokenmint-profile"). */
typedef void (*tm_debug_sink)(const char *prefix, const char *fmt, va_list ap);
void tm_profile_set_debug_sink(tm_debug_sink sink);

/* ---- violations: a list of messages, each naming what is wrong ---------- */

typedef struct tm_violations tm_violations;

tm_violations *tm_violations_new(void);
void tm_violations_free(tm_violations *v);
/* printf-style; never fails visibly (an allocation failure drops the entry
 * but still counts it, so a check never turns into a pass). */
void tm_violations_add(tm_violations *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
size_t tm_violations_count(const tm_violations *v);
/* Borrowed pointer, valid until the list is freed; NULL past the end. */
const char *tm_violations_get(const tm_violations *v, size_t i);
/* All messages joined with "; " into buf (truncated to fit, always NUL-terminated). */
void tm_violations_join(const tm_violations *v, char *buf, size_t buflen);

/* ---- the token serial ----------------------------------------------------- */

/*
 * Trims CK_TOKEN_INFO.serialNumber (16 bytes, blank padded; trailing 0x20 and
 * 0x00 are padding) into raw bytes. Returns the length, or 0 when the serial
 * is empty (a token without a serial cannot be bound) or longer than out_max.
 */
size_t tm_serial_trim(const unsigned char *field, size_t field_len, unsigned char *out,
                      size_t out_max);

/*
 * Raw serial bytes -> subject serialNumber text (PrintableString).
 * Bytes in the PrintableString set other than '?' stand for themselves; every
 * other byte, and '?' itself, is written "?XX" with two upper-case hex digits.
 * Returns the text length, 0 on error (empty input or output too small).
 */
size_t tm_serial_encode(const unsigned char *raw, size_t raw_len, char *text, size_t text_max);

/* The inverse; returns the raw length, 0 when the text is malformed. */
size_t tm_serial_decode(const char *text, size_t text_len, unsigned char *raw, size_t raw_max);

/*
 * A serial that names no one token: blank, or only '0's once spaces and NULs
 * around it are dropped (tpm2-pkcs11 reports "0000000000000000" for every
 * token). Returns NULL when the serial may bind a certificate, else a short
 * reason ("blank", "all zeros") for messages.
 */
const char *tm_serial_unusable(const unsigned char *raw, size_t raw_len);

/* ---- the profile config ----------------------------------------------------- */

typedef struct tm_profile tm_profile;

/*
 * Loads a profile from an OpenSSL-syntax config file (see conf/profile.cnf).
 * path NULL gives the built-in default (identical to conf/profile.cnf).
 * On error returns NULL and, when errors is not NULL, adds messages naming
 * file, line and problem. Caller frees with tm_profile_free.
 */
tm_profile *tm_profile_load(const char *path, tm_violations *errors);
/* Same, from config text in memory (tests, embedded defaults). */
tm_profile *tm_profile_load_string(const char *text, tm_violations *errors);
void tm_profile_free(tm_profile *p);

/*
 * For every loader of OpenSSL-syntax config files (profile, module, tool):
 * NCONF skips a `.include` whose file is missing; this refuses it. Scans text
 * (named source in messages) and, recursively, every file it includes.
 * Returns 1 when every include can be opened, else 0 with
 * "SOURCE:LINE: .include PATH: why" in err.
 */
int tm_conf_check_includes(const char *text, size_t len, const char *source, char *err,
                           size_t errlen);

/* The pieces of that check a loader that scans its own lines (the tool's)
 * uses too, so both read a file as NCONF does:
 * - 1 when NCONF reads this directory entry of an included directory
 *   (*.cnf, *.conf, the suffix in any case);
 * - the path NCONF opens for `.include VALUE` (n bytes), in out: 1, or 0 when
 *   it does not fit;
 * - the first byte of a line NCONF reads otherwise than a line scanner (NUL,
 *   a control character but tab, CR and LF), or -1. */
int tm_conf_dir_reads(const char *name);
int tm_conf_include_path(const char *value, size_t n, char *out, size_t outlen);
int tm_conf_odd_byte(const char *p, size_t n);

/* Number of configured purposes and their names ("auth", "sign", ...). */
size_t tm_profile_purpose_count(const tm_profile *p);
const char *tm_profile_purpose_name(const tm_profile *p, size_t i);
/* The purpose used when a caller names none. */
const char *tm_profile_default_purpose(const tm_profile *p);

/* hwType OID (dotted text) configured for a token model (CK_TOKEN_INFO.model,
 * trimmed); falls back to the profile's default hwType. Borrowed pointer. */
const char *tm_profile_hw_type(const tm_profile *p, const char *model);

/* ---- the binding: what a request or certificate says about its token ------- */

typedef struct tm_binding {
    unsigned char serial[TM_SERIAL_MAX]; /* hwSerialNum, raw bytes */
    size_t serial_len;
    char serial_text[TM_SERIAL_TEXT_MAX + 1]; /* subject serialNumber */
    char hw_type[128];                        /* dotted OID of hwType */
    char purpose[32];                         /* profile purpose name, "" if none matched */
} tm_binding;

/*
 * Reads the binding out of a request / certificate. Decodes the SAN otherName
 * hardwareModuleName itself (OpenSSL 3.0 prints it as <unsupported>). Returns 1
 * when a complete, self-consistent binding was found; 0 otherwise with the
 * reasons in errors. profile may be NULL (then purpose stays "").
 */
int tm_binding_from_req(const tm_profile *p, const X509_REQ *req, tm_binding *out,
                        tm_violations *errors);
int tm_binding_from_cert(const tm_profile *p, const X509 *cert, tm_binding *out,
                         tm_violations *errors);

/* Does the binding name exactly these raw serial bytes? */
int tm_binding_names_serial(const tm_binding *b, const unsigned char *serial, size_t len);

/* ---- building ----------------------------------------------------------------- */

/*
 * Sets the subject (serialNumber + configured organisation attributes) and the
 * requested extensions (SAN hardwareModuleName, the purpose's keyUsage/EKU) of
 * req for a token. model may be NULL (default hwType); purpose NULL means the
 * profile's default. The public key and signature are the caller's business,
 * but set the public key first when the purpose's keyUsage depends on the key
 * type (the default `encrypt`: keyEncipherment for RSA, keyAgreement for EC);
 * without it such a purpose is refused. Existing requested extensions are
 * replaced. Returns 1 on success, 0 with reasons in errors.
 */
int tm_profile_build_request(const tm_profile *p, X509_REQ *req, const unsigned char *serial,
                             size_t serial_len, const char *model, const char *purpose,
                             tm_violations *errors);

/*
 * CA side: makes cert (which already has its public key set) a profile
 * certificate for the request: subject and SAN from the request's binding,
 * issuer from ca_cert, a fresh random serial number, validity, basicConstraints,
 * SKI/AKI and the purpose's keyUsage/EKU from the profile (never copied from the
 * request). Refuses a request that fails tm_profile_check_req, or whose
 * public key differs from cert's. Does not sign. Returns 1 on success, 0 with
 * reasons in errors (then cert is incomplete: never sign it).
 */
int tm_profile_issue(const tm_profile *p, X509 *cert, const X509_REQ *req, const X509 *ca_cert,
                     tm_violations *errors);

/* A random positive certificate serial of 64 to 159 bits (the caller checks
 * uniqueness against its database). Caller frees. */
ASN1_INTEGER *tm_profile_random_serial(void);

/* ---- checking ------------------------------------------------------------------ */

/*
 * Each returns the number of violations found (0 = conforms) and adds one
 * message per violation to errors (which may be NULL to only count). A request
 * check covers subject, requested extensions, binding consistency and purpose.
 * A certificate check adds CA:FALSE, SKI/AKI, keyUsage/EKU against the purpose,
 * validity and serial number form.
 */
size_t tm_profile_check_req(const tm_profile *p, const X509_REQ *req, tm_violations *errors);
size_t tm_profile_check_cert(const tm_profile *p, const X509 *cert, tm_violations *errors);
/* A DER TBSCertificate (what an issuing key is asked to sign). Malformed DER is
 * one violation saying so. */
size_t tm_profile_check_tbs(const tm_profile *p, const unsigned char *der, size_t der_len,
                            tm_violations *errors);
/* A DER CertificationRequestInfo (what a token key is asked to sign). */
size_t tm_profile_check_req_info(const tm_profile *p, const unsigned char *der, size_t der_len,
                                 tm_violations *errors);
/*
 * Reads the binding out of a DER CertificationRequestInfo / TBSCertificate;
 * same contract as tm_binding_from_req. Used by the provider at signing time.
 */
int tm_binding_from_req_info(const tm_profile *p, const unsigned char *der, size_t der_len,
                             tm_binding *out, tm_violations *errors);
int tm_binding_from_tbs(const tm_profile *p, const unsigned char *der, size_t der_len,
                        tm_binding *out, tm_violations *errors);

/*
 * The DER a signing key is asked to sign, as the object the functions above
 * take: exactly one TBSCertificate / CertificationRequestInfo and nothing after
 * it (at most 1 MiB), under a placeholder signature that is never verified.
 * NULL with one violation naming what is wrong. Lets a caller that must first
 * learn what the bytes are parse them once. Caller frees.
 */
X509 *tm_tbs_parse(const unsigned char *der, size_t der_len, tm_violations *errors);
X509_REQ *tm_req_info_parse(const unsigned char *der, size_t der_len, tm_violations *errors);

/* Registers the profile's OIDs (hardwareModuleName, configured hwTypes) with
 * libcrypto's object table so that text output names them. Idempotent. */
void tm_profile_register_oids(const tm_profile *p);

#ifdef __cplusplus
}
#endif

#endif /* TOKENMINT_PROFILE_H */
