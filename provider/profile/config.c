/*
 * Loading the profile config. Parsing is OpenSSL's (NCONF); this file only
 * gives the values meaning and refuses anything it does not know, naming
 * file, line and problem.
 */
#include "profile_int.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#define TM_PROFILE_MAX_BYTES (1024 * 1024)
#define TM_PURPOSES_MAX 32

typedef struct loader {
    CONF *conf;
    const char *text; /* for line numbers in messages only */
    const char *source;
    tm_violations *errors;
    size_t failures;
    /* sections some key pointed at: any other section is a typo (refused) */
    char used[TM_PURPOSES_MAX + 8][128];
    size_t n_used;
} loader;

/*
 * Locates the line of key in [section] so that a message can point at it. NCONF
 * keeps no line numbers once loaded; this scan only finds lines, it does not
 * interpret values. Returns 0 when not found (e.g. the key came from .include).
 */
static long find_line(const char *text, const char *section, const char *key)
{
    const char *line = text;
    char current[128] = "default";
    long no = 1;
    size_t klen = key ? strlen(key) : 0;

    while (line != NULL && *line != '\0') {
        const char *s = line, *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        while ((size_t)(s - line) < len && (*s == ' ' || *s == '\t'))
            s++;
        if (*s == '[') {
            const char *a = s + 1, *b;
            size_t n;
            while (*a == ' ' || *a == '\t')
                a++;
            b = a;
            while ((size_t)(b - line) < len && *b != ']' && *b != ' ' && *b != '\t')
                b++;
            n = (size_t)(b - a) < sizeof(current) - 1 ? (size_t)(b - a) : sizeof(current) - 1;
            memcpy(current, a, n);
            current[n] = '\0';
            if (key == NULL && strcmp(current, section) == 0)
                return no;
        } else if (key != NULL && strcmp(current, section) == 0 && strncmp(s, key, klen) == 0 &&
                   (s[klen] == ' ' || s[klen] == '\t' || s[klen] == '=')) {
            return no;
        }
        line = end ? end + 1 : NULL;
        no++;
    }
    return 0;
}

static void fail(loader *l, const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(loader *l, const char *section, const char *key, const char *fmt, ...)
{
    char what[512];
    char where[64] = "";
    long no = find_line(l->text, section, key);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (no > 0)
        snprintf(where, sizeof(where), ":%ld", no);
    if (key != NULL)
        tm_violations_add(l->errors, "%s%s: [%s] %s: %s", l->source, where, section, key, what);
    else
        tm_violations_add(l->errors, "%s%s: [%s]: %s", l->source, where, section, what);
    l->failures++;
}

static void trim(char *s)
{
    size_t n = strlen(s), i = 0;

    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    while (isspace((unsigned char)s[i]))
        i++;
    memmove(s, s + i, n - i + 1);
}

/* Comma separated list -> up to max trimmed items in items (each len bytes). */
static int split_list(const char *value, char *items, size_t len, size_t max, size_t *count)
{
    const char *s = value;

    *count = 0;
    while (s != NULL && *s != '\0') {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        char *item = items + *count * len;
        if (*count >= max || n >= len)
            return 0;
        memcpy(item, s, n);
        item[n] = '\0';
        trim(item);
        if (item[0] == '\0')
            return 0;
        (*count)++;
        s = comma ? comma + 1 : NULL;
    }
    return 1;
}

static int value_is_blank(const char *v)
{
    while (*v != '\0' && isspace((unsigned char)*v))
        v++;
    return *v == '\0';
}

/* Refuses keys of section not in known (NULL-terminated). */
static STACK_OF(CONF_VALUE) *
    section_checked(loader *l, const char *section, const char *named_by, const char *const *known)
{
    STACK_OF(CONF_VALUE) *sk = NCONF_get_section(l->conf, section);
    int i;

    if (sk == NULL) {
        if (named_by != NULL)
            fail(l, "profile", named_by, "section [%s] is missing", section);
        else
            fail(l, section, NULL, "section is missing: a profile needs one");
        return NULL;
    }
    if (l->n_used < sizeof(l->used) / sizeof(l->used[0]))
        snprintf(l->used[l->n_used++], sizeof(l->used[0]), "%s", section);
    for (i = 0; known != NULL && i < sk_CONF_VALUE_num(sk); i++) {
        const CONF_VALUE *cv = sk_CONF_VALUE_value(sk, i);
        size_t k;
        int ok = 0;
        for (k = 0; known[k] != NULL; k++)
            ok |= strcmp(cv->name, known[k]) == 0;
        if (!ok) {
            char list[256] = "";
            for (k = 0; known[k] != NULL; k++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", k ? ", " : "",
                         known[k]);
            fail(l, section, cv->name, "unknown key; known keys here are: %s", list);
        }
    }
    return sk;
}

static const char *get(loader *l, const char *section, const char *key)
{
    const char *v = NCONF_get_string(l->conf, section, key);
    return v;
}

static void load_purpose(loader *l, tm_purpose *pu, const char *name, const char *section)
{
    static const char *const known[] = {"keyUsage",       "keyUsage.rsa",     "keyUsage.ec",
                                        "keyUsage.eddsa", "extendedKeyUsage", NULL};
    static const char *const ku_keys[TM_KEY_CLASSES] = {"keyUsage", "keyUsage.rsa", "keyUsage.ec",
                                                        "keyUsage.eddsa"};
    char items[16][64];
    size_t n, i;
    int c, any = 0;
    const char *v;

    snprintf(pu->name, sizeof(pu->name), "%s", name);
    if (section_checked(l, section, NULL, known) == NULL)
        return;
    for (c = 0; c < TM_KEY_CLASSES; c++) {
        v = get(l, section, ku_keys[c]);
        if (v == NULL)
            continue;
        if (!split_list(v, &items[0][0], sizeof(items[0]), 16, &n) || n == 0) {
            fail(l, section, ku_keys[c], "expected a comma separated list of keyUsage names");
            continue;
        }
        for (i = 0; i < n; i++) {
            unsigned int flag;
            if (!tm_ku_from_name(items[i], &flag)) {
                fail(l, section, ku_keys[c],
                     "%s is not a keyUsage name (digitalSignature, nonRepudiation, "
                     "keyEncipherment, dataEncipherment, keyAgreement, encipherOnly, "
                     "decipherOnly)",
                     items[i]);
            } else if (flag & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) {
                fail(l, section, ku_keys[c],
                     "%s would make a token certificate a CA; the profile issues CA:FALSE only",
                     items[i]);
            }
            pu->ku[c] |= flag;
        }
        pu->has_ku[c] = 1;
        any = 1;
    }
    if (!any) {
        fail(l, section, NULL,
             "purpose %s has no keyUsage: set keyUsage or keyUsage.<rsa|ec|eddsa>", name);
        return;
    }
    /* keyUsage is the fallback for key classes without their own line */
    for (c = 1; c < TM_KEY_CLASSES; c++) {
        if (!pu->has_ku[c] && pu->has_ku[TM_KEY_OTHER]) {
            pu->has_ku[c] = 1;
            pu->ku[c] = pu->ku[TM_KEY_OTHER];
        }
    }
    v = get(l, section, "extendedKeyUsage");
    if (v != NULL && !value_is_blank(v)) {
        if (!split_list(v, &items[0][0], sizeof(items[0]), TM_EKU_MAX, &n)) {
            fail(l, section, "extendedKeyUsage",
                 "expected a comma separated list of at most %d "
                 "names or OIDs",
                 TM_EKU_MAX);
            return;
        }
        for (i = 0; i < n; i++) {
            ASN1_OBJECT *o = OBJ_txt2obj(items[i], 0);
            if (o == NULL) {
                fail(l, section, "extendedKeyUsage", "%s is not a known name or a dotted OID",
                     items[i]);
                continue;
            }
            OBJ_obj2txt(pu->eku[pu->eku_count++], sizeof(pu->eku[0]), o, 1);
            ASN1_OBJECT_free(o);
        }
    }
}

static int valid_name(const char *s, size_t max)
{
    size_t n = strlen(s), i;

    if (n == 0 || n >= max)
        return 0;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

static void load_purposes(loader *l, tm_profile *p, const char *section)
{
    STACK_OF(CONF_VALUE) *sk = section_checked(l, section, "purposes", NULL);
    int i;
    size_t a, b;
    int c;

    if (sk == NULL)
        return;
    if (sk_CONF_VALUE_num(sk) == 0 || sk_CONF_VALUE_num(sk) > TM_PURPOSES_MAX) {
        fail(l, section, NULL, "list 1 to %d purposes", TM_PURPOSES_MAX);
        return;
    }
    p->purposes = OPENSSL_zalloc(sizeof(tm_purpose) * (size_t)sk_CONF_VALUE_num(sk));
    if (p->purposes == NULL) {
        fail(l, section, NULL, "out of memory");
        return;
    }
    for (i = 0; i < sk_CONF_VALUE_num(sk); i++) {
        const CONF_VALUE *cv = sk_CONF_VALUE_value(sk, i);
        if (!valid_name(cv->name, sizeof(p->purposes[0].name))) {
            fail(l, section, cv->name, "a purpose name is 1 to 31 letters, digits, '_' or '-'");
            continue;
        }
        if (tm_profile_find_purpose(p, cv->name) != NULL) {
            fail(l, section, cv->name, "purpose listed twice");
            continue;
        }
        load_purpose(l, &p->purposes[p->purpose_count++], cv->name, cv->value);
    }
    /* the reader maps keyUsage/EKU back to a name: two purposes with one set
     * would make a request ambiguous */
    for (a = 0; a < p->purpose_count; a++)
        for (b = a + 1; b < p->purpose_count; b++)
            for (c = 1; c < TM_KEY_CLASSES; c++) {
                const tm_purpose *x = &p->purposes[a], *y = &p->purposes[b];
                size_t e, same = 0;
                if (!x->has_ku[c] || !y->has_ku[c] || x->ku[c] != y->ku[c] ||
                    x->eku_count != y->eku_count)
                    continue;
                for (e = 0; e < x->eku_count; e++) {
                    size_t f;
                    for (f = 0; f < y->eku_count; f++)
                        same += strcmp(x->eku[e], y->eku[f]) == 0;
                }
                if (same == x->eku_count) {
                    fail(l, section, y->name,
                         "purposes %s and %s have the same keyUsage/extendedKeyUsage for %s "
                         "keys: a request could not say which one it means",
                         x->name, y->name, tm_key_class_name((enum tm_key_class)c));
                    c = TM_KEY_CLASSES;
                }
            }
}

static void load_subject(loader *l, tm_profile *p)
{
    const char *v = get(l, "profile", "allowed_subject_attributes");
    char items[8][32];
    size_t n = 0, i;

    if (v != NULL && !value_is_blank(v)) {
        if (!split_list(v, &items[0][0], sizeof(items[0]), 8, &n)) {
            fail(l, "profile", "allowed_subject_attributes", "expected a list of O, OU, C");
            return;
        }
        for (i = 0; i < n; i++) {
            if (strcmp(items[i], "O") == 0)
                p->allowed_attrs |= TM_ATTR_O;
            else if (strcmp(items[i], "OU") == 0)
                p->allowed_attrs |= TM_ATTR_OU;
            else if (strcmp(items[i], "C") == 0)
                p->allowed_attrs |= TM_ATTR_C;
            else
                fail(l, "profile", "allowed_subject_attributes",
                     "%s cannot be allowed: only O, OU and C never name a person", items[i]);
        }
    }
    v = get(l, "profile", "organisation");
    if (v != NULL) {
        static const char *const known[] = {"O", "OU", "C", NULL};
        static const struct {
            const char *key;
            unsigned int attr;
            size_t max;
        } keys[] = {{"C", TM_ATTR_C, 2}, {"O", TM_ATTR_O, 64}, {"OU", TM_ATTR_OU, 64}};
        char *dst[] = {p->org_c, p->org_o, p->org_ou};
        char sect[128];
        snprintf(sect, sizeof(sect), "%s", v);
        trim(sect);
        if (section_checked(l, sect, "organisation", known) == NULL)
            return;
        for (i = 0; i < 3; i++) {
            const char *val = get(l, sect, keys[i].key);
            size_t len;
            if (val == NULL)
                continue;
            len = strlen(val);
            if (!(p->allowed_attrs & keys[i].attr))
                fail(l, sect, keys[i].key,
                     "%s is not in allowed_subject_attributes, so it cannot have a value",
                     keys[i].key);
            else if (len == 0 || len > keys[i].max)
                fail(l, sect, keys[i].key, "value must be 1 to %zu characters", keys[i].max);
            else if (keys[i].attr == TM_ATTR_C &&
                     (!isupper((unsigned char)val[0]) || !isupper((unsigned char)val[1])))
                fail(l, sect, keys[i].key, "a country is two upper-case letters (ISO 3166)");
            else
                memcpy(dst[i], val, len + 1);
        }
    }
}

static void load_san(loader *l, tm_profile *p)
{
    static const struct {
        const char *name;
        unsigned int bit;
    } types[] = {{"email", TM_SAN_EMAIL},
                 {"DNS", TM_SAN_DNS},
                 {"URI", TM_SAN_URI},
                 {"IP", TM_SAN_IP},
                 {"dirName", TM_SAN_DIRNAME},
                 {"RID", TM_SAN_RID},
                 {"otherName", TM_SAN_OTHERNAME}};
    const char *v = get(l, "profile", "allowed_san_types");
    char items[8][32];
    size_t n = 0, i, t;

    if (v == NULL || value_is_blank(v))
        return;
    if (!split_list(v, &items[0][0], sizeof(items[0]), 8, &n)) {
        fail(l, "profile", "allowed_san_types", "expected a comma separated list");
        return;
    }
    for (i = 0; i < n; i++) {
        int found = 0;
        for (t = 0; t < sizeof(types) / sizeof(types[0]); t++)
            if (strcmp(items[i], types[t].name) == 0) {
                p->allowed_san |= types[t].bit;
                found = 1;
            }
        if (!found)
            fail(l, "profile", "allowed_san_types",
                 "%s is not a SAN type (email, DNS, URI, IP, dirName, RID, otherName)", items[i]);
    }
}

/* A dotted OID in canonical form, or 0. */
static int canonical_oid(const char *text, char *out, size_t len)
{
    ASN1_OBJECT *o = OBJ_txt2obj(text, 1);
    int ok;

    if (o == NULL)
        return 0;
    ok = OBJ_obj2txt(out, (int)len, o, 1) > 0 && (size_t)OBJ_obj2txt(NULL, 0, o, 1) < len;
    ASN1_OBJECT_free(o);
    return ok;
}

static int valid_short_name(loader *l, const char *section, const char *key, const char *name,
                            const char *oid)
{
    int nid;

    if (!valid_name(name, 64) || !isalpha((unsigned char)name[0]) || strchr(name, '-') != NULL) {
        fail(l, section, key, "%s is not usable as an OID short name (letters, digits, '_')", name);
        return 0;
    }
    nid = OBJ_sn2nid(name);
    if (nid == NID_undef)
        nid = OBJ_ln2nid(name);
    if (nid != NID_undef) {
        char known[128];
        OBJ_obj2txt(known, sizeof(known), OBJ_nid2obj(nid), 1);
        if (strcmp(known, oid) != 0) {
            fail(l, section, key, "%s already names OID %s in OpenSSL", name, known);
            return 0;
        }
    }
    return 1;
}

static void load_hwtypes(loader *l, tm_profile *p)
{
    const char *v = get(l, "profile", "hw_type");
    tm_hwtype *h = &p->hwtypes[0];
    STACK_OF(CONF_VALUE) * sk;
    int i;

    if (v == NULL) {
        fail(l, "profile", NULL, "hw_type is missing: name the default hwType OID");
    } else if (!canonical_oid(v, h->oid, sizeof(h->oid))) {
        fail(l, "profile", "hw_type", "%s is not a dotted OID", v);
    } else if (strcmp(h->oid, TM_OID_HWMN) == 0) {
        fail(l, "profile", "hw_type", "%s is hardwareModuleName itself, not a hardware type", v);
    }
    p->hwtype_count = 1;
    v = get(l, "profile", "hw_type_name");
    if (v != NULL && h->oid[0] != '\0' && valid_short_name(l, "profile", "hw_type_name", v, h->oid))
        snprintf(h->name, sizeof(h->name), "%s", v);

    v = get(l, "profile", "hw_type_models");
    if (v == NULL)
        return;
    sk = section_checked(l, v, "hw_type_models", NULL);
    for (i = 0; sk != NULL && i < sk_CONF_VALUE_num(sk); i++) {
        const CONF_VALUE *cv = sk_CONF_VALUE_value(sk, i);
        const char *colon = strchr(cv->value, ':');
        char oid[256];
        size_t n;

        if (p->hwtype_count >= TM_HWTYPE_MAX) {
            fail(l, v, cv->name, "at most %d hwTypes", TM_HWTYPE_MAX - 1);
            break;
        }
        h = &p->hwtypes[p->hwtype_count];
        n = colon ? (size_t)(colon - cv->value) : 0;
        if (colon == NULL || n >= sizeof(oid)) {
            fail(l, v, cv->name, "expected <dotted OID> : <token model>");
            continue;
        }
        memcpy(oid, cv->value, n);
        oid[n] = '\0';
        trim(oid);
        snprintf(h->model, sizeof(h->model), "%s", colon + 1);
        trim(h->model);
        if (!canonical_oid(oid, h->oid, sizeof(h->oid))) {
            fail(l, v, cv->name, "%s is not a dotted OID", oid);
            continue;
        }
        if (h->model[0] == '\0' || strlen(colon + 1) > 64) {
            fail(l, v, cv->name, "the token model after ':' must be 1 to 32 characters");
            continue;
        }
        if (!valid_short_name(l, v, cv->name, cv->name, h->oid))
            continue;
        snprintf(h->name, sizeof(h->name), "%s", cv->name);
        p->hwtype_count++;
    }
}

static void load_validity(loader *l, tm_profile *p)
{
    const char *v = get(l, "profile", "validity_days");
    char *end = NULL;
    long days;

    if (v == NULL) {
        fail(l, "profile", NULL, "validity_days is missing: give days or no_expiry");
        return;
    }
    if (strcmp(v, "no_expiry") == 0) {
        p->no_expiry = 1;
        return;
    }
    errno = 0;
    days = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || days < 1 || days > 36500)
        fail(l, "profile", "validity_days", "%s is neither 1..36500 days nor no_expiry", v);
    else
        p->validity_days = days;
}

/* A positive bound from [profile], or the default when the key is absent. */
static long load_bound(loader *l, const char *key, long dflt, long max)
{
    const char *v = get(l, "profile", key);
    char *end = NULL;
    long n;

    if (v == NULL)
        return dflt;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < 1 || n > max) {
        fail(l, "profile", key, "%s is not a number from 1 to %ld", v, max);
        return dflt;
    }
    return n;
}

static void load_url(loader *l, const char *key, char *out, size_t outlen)
{
    const char *v = get(l, "profile", key);
    char why[128];

    if (v == NULL)
        return;
    if (!tm_url_check(v, why, sizeof why))
        fail(l, "profile", key, "%s %s", v, why);
    else
        snprintf(out, outlen, "%s", v);
}

static void load_bounds(loader *l, tm_profile *p)
{
    p->max_subject_attributes =
        load_bound(l, "max_subject_attributes", TM_DEFAULT_MAX_SUBJECT_ATTRIBUTES, 64);
    p->max_subject_bytes = load_bound(l, "max_subject_bytes", TM_DEFAULT_MAX_SUBJECT_BYTES, 4096);
    p->max_request_bytes = load_bound(l, "max_request_bytes", TM_DEFAULT_MAX_REQUEST_BYTES, 65536);
}

/*
 * A section nothing points at is a misspelt name ([purpose_auht]) whose
 * settings would silently not apply, or a leftover: refused either way. Keys
 * before the first section header land in [default]: refused too.
 */
static void unknown_sections(loader *l)
{
    STACK_OF(OPENSSL_CSTRING) *names = NCONF_get_section_names(l->conf);
    int i;

    if (names == NULL) {
        fail(l, "profile", NULL, "out of memory");
        return;
    }
    for (i = 0; i < sk_OPENSSL_CSTRING_num(names); i++) {
        const char *name = sk_OPENSSL_CSTRING_value(names, i);
        size_t k;
        int used = 0;

        for (k = 0; k < l->n_used && !used; k++)
            used = strcmp(l->used[k], name) == 0;
        if (used)
            continue;
        if (strcmp(name, "default") == 0) {
            STACK_OF(CONF_VALUE) *sk = NCONF_get_section(l->conf, name);
            if (sk != NULL && sk_CONF_VALUE_num(sk) > 0)
                fail(l, "default", sk_CONF_VALUE_value(sk, 0)->name,
                     "set outside any section (profile settings go in [profile])");
            continue;
        }
        fail(l, name, NULL,
             "unknown section: no key of the profile names it (misspelt, or a leftover)");
    }
    sk_OPENSSL_CSTRING_free(names);
}

static tm_profile *load_conf(loader *l)
{
    static const char *const known[] = {
        "default_purpose",        "purposes",          "allowed_subject_attributes",
        "organisation",           "allowed_san_types", "hw_type",
        "hw_type_name",           "hw_type_models",    "validity_days",
        "max_subject_attributes", "max_subject_bytes", "max_request_bytes",
        "crl_distribution_point", "ocsp_url",          NULL};
    tm_profile *p = OPENSSL_zalloc(sizeof(*p));
    const char *v;

    if (p == NULL) {
        tm_violations_add(l->errors, "%s: out of memory", l->source);
        return NULL;
    }
    snprintf(p->source, sizeof(p->source), "%s", l->source);
    if (section_checked(l, "profile", NULL, known) == NULL)
        goto out;
    v = get(l, "profile", "purposes");
    if (v == NULL)
        fail(l, "profile", NULL, "purposes is missing: name the section listing the purposes");
    else
        load_purposes(l, p, v);
    v = get(l, "profile", "default_purpose");
    if (v == NULL)
        fail(l, "profile", NULL, "default_purpose is missing");
    else if (tm_profile_find_purpose(p, v) == NULL && p->purpose_count > 0)
        fail(l, "profile", "default_purpose", "%s is not one of the listed purposes", v);
    else
        snprintf(p->default_purpose, sizeof(p->default_purpose), "%s", v);
    load_subject(l, p);
    load_san(l, p);
    load_hwtypes(l, p);
    load_validity(l, p);
    load_bounds(l, p);
    load_url(l, "crl_distribution_point", p->crl_url, sizeof p->crl_url);
    load_url(l, "ocsp_url", p->ocsp_url, sizeof p->ocsp_url);
    unknown_sections(l);
out:
    if (l->failures > 0) {
        tm_profile_free(p);
        return NULL;
    }
    tm_debug("profile %s: %zu purposes, %zu hwTypes", l->source, p->purpose_count, p->hwtype_count);
    return p;
}

static tm_profile *load_text(const char *text, size_t len, const char *source,
                             tm_violations *errors)
{
    loader l = {NULL, text, source, errors, 0, {{0}}, 0};
    tm_profile *p = NULL;
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    long eline = 0;
    char why[512];

    if (!tm_conf_check_includes(text, len, source, why, sizeof(why))) {
        tm_violations_add(errors, "%s", why);
        goto out;
    }
    l.conf = NCONF_new(NULL);
    if (bio == NULL || l.conf == NULL) {
        tm_violations_add(errors, "%s: out of memory", source);
        goto out;
    }
    if (NCONF_load_bio(l.conf, bio, &eline) <= 0) {
        unsigned long e = ERR_peek_last_error();
        const char *why = ERR_reason_error_string(e);
        tm_violations_add(errors, "%s:%ld: %s", source, eline,
                          why ? why : "not OpenSSL config syntax");
        goto out;
    }
    p = load_conf(&l);
out:
    NCONF_free(l.conf);
    BIO_free(bio);
    return p;
}

static tm_profile *tm_profile_load_string_impl(const char *text, tm_violations *errors)
{
    return_val_if_fail(text != NULL, NULL);
    return load_text(text, strlen(text), "(profile text)", errors);
}

static tm_profile *tm_profile_load_impl(const char *path, tm_violations *errors)
{
    BIO *in = NULL;
    char *buf = NULL;
    size_t len = 0;
    int n;
    tm_profile *p = NULL;

    if (path == NULL)
        return load_text(tm_profile_default_text, strlen(tm_profile_default_text),
                         "(built-in profile)", errors);
    errno = 0;
    in = BIO_new_file(path, "rb");
    if (in == NULL) {
        tm_violations_add(errors, "%s: cannot open profile: %s", path,
                          errno ? strerror(errno) : "unknown error");
        goto out;
    }
    buf = OPENSSL_malloc(TM_PROFILE_MAX_BYTES + 1);
    if (buf == NULL) {
        tm_violations_add(errors, "%s: out of memory", path);
        goto out;
    }
    while ((n = BIO_read(in, buf + len, (int)(TM_PROFILE_MAX_BYTES + 1 - len))) > 0) {
        len += (size_t)n;
        if (len > TM_PROFILE_MAX_BYTES) {
            tm_violations_add(errors, "%s: larger than %d bytes: not a profile", path,
                              TM_PROFILE_MAX_BYTES);
            goto out;
        }
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        tm_violations_add(errors, "%s: contains NUL bytes: not a text config", path);
        goto out;
    }
    p = load_text(buf, len, path, errors);
out:
    OPENSSL_free(buf);
    BIO_free(in);
    return p;
}

void tm_profile_free(tm_profile *p)
{
    if (p == NULL)
        return;
    OPENSSL_free(p->purposes);
    OPENSSL_free(p);
}

const char *tm_profile_hw_type(const tm_profile *p, const char *model)
{
    size_t i;

    return_val_if_fail(p != NULL, NULL);
    for (i = 1; model != NULL && i < p->hwtype_count; i++)
        if (strcmp(p->hwtypes[i].model, model) == 0)
            return p->hwtypes[i].oid;
    return p->hwtypes[0].oid;
}

/* Public entry points: libcrypto errors raised inside stay inside, and the
 * caller's own error queue is left as it was. */
tm_profile *tm_profile_load(const char *path, tm_violations *errors)
{
    tm_profile *r;

    ERR_set_mark();
    r = tm_profile_load_impl(path, errors);
    ERR_pop_to_mark();
    return r;
}

tm_profile *tm_profile_load_string(const char *text, tm_violations *errors)
{
    tm_profile *r;

    ERR_set_mark();
    r = tm_profile_load_string_impl(text, errors);
    ERR_pop_to_mark();
    return r;
}
