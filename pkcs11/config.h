/*
 * The module's configuration: which backend modules front which tokens, and
 * the station settings (audit log, station secret, write policy inputs).
 *
 * Read with OpenSSL's NCONF parser. Every problem is reported as
 * "FILE:LINE: what is wrong" so that an admin can go straight to it.
 */
#ifndef TOKENMINT_CONFIG_H
#define TOKENMINT_CONFIG_H

#include <stddef.h>

/* One token_serials entry: the serial the module reports for the backend's
 * token with this label when the backend's own serial is a placeholder. */
typedef struct mod_token_serial {
    char *label;  /* CK_TOKEN_INFO.label, trimmed (1..32 bytes) */
    char *serial; /* 1..16 PrintableString characters, the raw serial as text */
} mod_token_serial;

typedef struct mod_backend_conf {
    char *name;          /* the name listed in "backends" (or "env1".. for TOKENMINT_BACKEND) */
    char *module;        /* path of the module library, or NULL */
    char *p11kit_module; /* name of a module registered with p11-kit, or NULL */
    char *uri;           /* RFC 7512 URI selecting tokens, or NULL for all */
    char *init_args;     /* string for CK_C_INITIALIZE_ARGS.pReserved, or NULL */
    long line;           /* line of its section header, for messages (0: none) */
    mod_token_serial *token_serials; /* token_serials, in the order given */
    size_t n_token_serials;
} mod_backend_conf;

typedef struct mod_config {
    char *path; /* file read; NULL when built from TOKENMINT_BACKEND */
    mod_backend_conf *backends;
    size_t n_backends;
    char *audit_log;      /* NULL: no audit log */
    char *station_secret; /* NULL: no derived PINs */
    char *trusted_roots;  /* NULL: no chain check */
    char *profile;        /* NULL: the built-in profile */
    int outside_profile_allow;
    int destroy_bound_refuse; /* destroy_bound_certificates = refuse */
    char *issuing_keys;       /* NULL: none; else pkcs11: URIs (issuing.h) */
} mod_config;

/*
 * Loads a config file. Returns 1 on success. On failure returns 0 with
 * "FILE:LINE: problem" in err; *out may then still hold what was read before
 * the problem (at least audit_log when it was readable) so that the caller can
 * record the error there. The caller frees *out in both cases.
 */
int mod_config_load_file(const char *path, mod_config **out, char *err, size_t errlen);

/* A config from TOKENMINT_BACKEND's colon-separated module paths. */
int mod_config_from_backend_list(const char *list, mod_config **out, char *err, size_t errlen);

/*
 * Picks the source the way the module does: TOKENMINT_CONF names a file; else
 * TOKENMINT_BACKEND lists module paths; else default_path is read. None of
 * them is an error that says how to provide one.
 */
int mod_config_load_env(const char *default_path, mod_config **out, char *err, size_t errlen);

void mod_config_free(mod_config *c);

#endif
