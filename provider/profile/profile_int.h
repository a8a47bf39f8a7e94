/*
 * Internals shared by the files of the profile library. Not installed, not
 * used outside provider/profile/.
 */
#ifndef TOKENMINT_PROFILE_INT_H
#define TOKENMINT_PROFILE_INT_H

#include "tm_profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <openssl/asn1.h>
#include <openssl/x509v3.h>

#define return_val_if_fail(expr, val)                                                              \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            tm_debug("%s: assertion '%s' failed", __func__, #expr);                                \
            return (val);                                                                          \
        }                                                                                          \
    } while (0)

#define return_if_fail(expr)                                                                       \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            tm_debug("%s: assertion '%s' failed", __func__, #expr);                                \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Debug lines, to the sink installed with tm_profile_set_debug_sink. */
void tm_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* id-on-hardwareModuleName, RFC 4108 section 5 */
#define TM_OID_HWMN "1.3.6.1.5.5.7.8.4"

/* Key usage bits as X509_get_key_usage() reports them (KU_* in x509v3.h). */
#define TM_KEY_CLASSES 4
enum tm_key_class { TM_KEY_OTHER = 0, TM_KEY_RSA, TM_KEY_EC, TM_KEY_EDDSA };

#define TM_EKU_MAX 8
#define TM_HWTYPE_MAX 16

typedef struct tm_purpose {
    char name[32];
    /* keyUsage per key class; has_ku[c] says whether the class may use the
     * purpose at all. */
    unsigned int ku[TM_KEY_CLASSES];
    int has_ku[TM_KEY_CLASSES];
    /* extendedKeyUsage OIDs in dotted form; none = no EKU extension */
    char eku[TM_EKU_MAX][64];
    size_t eku_count;
} tm_purpose;

typedef struct tm_hwtype {
    char oid[128];  /* dotted */
    char name[64];  /* short name to register, "" for none */
    char model[64]; /* CK_TOKEN_INFO.model it applies to, "" = the default */
} tm_hwtype;

/* Subject attributes a profile may allow besides serialNumber. */
enum { TM_ATTR_C = 1u << 0, TM_ATTR_O = 1u << 1, TM_ATTR_OU = 1u << 2 };

/* SAN GeneralName types a profile may allow besides hardwareModuleName. */
enum {
    TM_SAN_EMAIL = 1u << 0,
    TM_SAN_DNS = 1u << 1,
    TM_SAN_URI = 1u << 2,
    TM_SAN_IP = 1u << 3,
    TM_SAN_DIRNAME = 1u << 4,
    TM_SAN_RID = 1u << 5,
    TM_SAN_OTHERNAME = 1u << 6,
};

#define TM_URL_MAX 256

struct tm_profile {
    char source[256]; /* file name or "(built-in default)" for messages */
    tm_purpose *purposes;
    size_t purpose_count;
    char default_purpose[32];
    unsigned int allowed_attrs;
    /* organisation values the builder writes; "" = none */
    char org_c[3];
    char org_o[65];
    char org_ou[65];
    unsigned int allowed_san;
    tm_hwtype hwtypes[TM_HWTYPE_MAX]; /* [0] is the default */
    size_t hwtype_count;
    int no_expiry;
    long validity_days;
    /* size bounds (issue 10 item 4): an index line, a database row and the
     * CA's parsers stay small whatever a client sends */
    long max_subject_attributes;
    long max_subject_bytes;
    long max_request_bytes;
    /* revocation pointers in issued certificates (urls.c); "" = none */
    char crl_url[TM_URL_MAX + 1];
    char ocsp_url[TM_URL_MAX + 1];
};

/* The bounds when a profile names none (conf/profile.cnf documents them). */
#define TM_DEFAULT_MAX_SUBJECT_ATTRIBUTES 8
#define TM_DEFAULT_MAX_SUBJECT_BYTES 512
#define TM_DEFAULT_MAX_REQUEST_BYTES 8192

/* urls.c: crl_distribution_point and ocsp_url. A usable http:// URL, or 0
 * with why; the extensions for an issued certificate; the check that a
 * certificate carries them. */
int tm_url_check(const char *url, char *why, size_t whylen);
int tm_urls_add_exts(const tm_profile *p, X509 *cert, tm_violations *errors);
size_t tm_urls_check_cert(const tm_profile *p, X509 *cert, tm_violations *errors);

/* config.c: the built-in default profile text (generated from conf/profile.cnf) */
extern const char tm_profile_default_text[];

/* purpose.c */
enum tm_key_class tm_key_class_of(const EVP_PKEY *pkey);
const char *tm_key_class_name(enum tm_key_class c);
const tm_purpose *tm_profile_find_purpose(const tm_profile *p, const char *name);
/* The purpose whose keyUsage/EKU equal exactly these, or NULL. */
const tm_purpose *tm_purpose_match(const tm_profile *p, enum tm_key_class kc, unsigned int ku,
                                   const EXTENDED_KEY_USAGE *eku);
/* "digitalSignature,nonRepudiation" */
void tm_ku_text(unsigned int ku, char *buf, size_t len);
int tm_ku_from_name(const char *name, unsigned int *bit);
/* Adds keyUsage (critical) and, if any, extendedKeyUsage for the purpose and key
 * class to exts. */
int tm_purpose_add_exts(const tm_purpose *pu, enum tm_key_class kc,
                        STACK_OF(X509_EXTENSION) * *exts, tm_violations *errors);

/* hwmn.c: hardwareModuleName otherName */
int tm_hwmn_encode(const char *hw_type, const unsigned char *serial, size_t serial_len,
                   GENERAL_NAME **out);
/* Returns 1 when gn is an otherName of type hardwareModuleName. */
int tm_gn_is_hwmn(const GENERAL_NAME *gn);
/* Decodes the otherName value; on failure writes the reason into why. */
int tm_hwmn_decode(const GENERAL_NAME *gn, char *hw_type, size_t hw_type_len, unsigned char *serial,
                   size_t *serial_len, char *why, size_t why_len);

/* text.c: safe printing of untrusted values for messages */
void tm_asn1_string_text(const ASN1_STRING *s, char *buf, size_t len);
void tm_hex(const unsigned char *b, size_t n, char *buf, size_t len);
void tm_gn_text(const GENERAL_NAME *gn, char *buf, size_t len);
void tm_obj_text(const ASN1_OBJECT *o, char *buf, size_t len);

/* view.c: what the readers and checkers look at, for a request or a certificate */
typedef struct tm_view {
    const char *what;                /* "request" or "certificate" */
    const X509_NAME *subject;        /* borrowed */
    STACK_OF(X509_EXTENSION) * exts; /* owned when owns_exts */
    int owns_exts;
    EVP_PKEY *pkey;      /* borrowed, may be NULL */
    X509 *cert;          /* borrowed, certificates only */
    const X509_REQ *req; /* borrowed, requests only */
} tm_view;

/* 0 with one violation when the request's extensions do not decode (the view
 * still needs tm_view_clear). */
int tm_view_from_req(tm_view *v, const X509_REQ *req, tm_violations *errors);
void tm_view_from_cert(tm_view *v, const X509 *cert);
void tm_view_clear(tm_view *v);

/* binding.c */
/* The purpose the view's keyUsage/EKU name, or NULL with the reason in why. */
const tm_purpose *tm_view_purpose(const tm_profile *p, const tm_view *v, char *why, size_t len);
size_t tm_binding_read(const tm_profile *p, const tm_view *v, tm_binding *out,
                       tm_violations *errors);

/* check.c */
/* Every check for the view; the binding it reads goes to binding when not NULL
 * (complete only when nothing is wrong). */
size_t tm_check_view(const tm_profile *p, const tm_view *v, tm_binding *binding,
                     tm_violations *errors);
size_t tm_check_cert_only(const tm_profile *p, X509 *cert, tm_violations *errors);

#endif
