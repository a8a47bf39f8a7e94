/*
 * Config file reading. NCONF does the parsing; because it keeps no line
 * numbers for values, a small locator scans the text afterwards only to say
 * on which line a key or section that NCONF already parsed was written.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <p11-kit/uri.h>

#include "debug.h"
#include "tm_profile.h"

#define TM_CONFIG_MAX_BYTES (1024 * 1024)

typedef struct src {
    const char *path;
    char *text;
    size_t len;
    char *err;
    size_t errlen;
} src;

static void fail(src *s, long line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void fail(src *s, long line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (s->err == NULL || s->errlen == 0)
        return;
    if (line > 0)
        n = snprintf(s->err, s->errlen, "%s:%ld: ", s->path, line);
    else
        n = snprintf(s->err, s->errlen, "%s: ", s->path);
    if (n < 0 || (size_t)n >= s->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(s->err + n, s->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Line of the nth (1-based) "key =" in [section]; key NULL finds the section
 * header itself. 0 when not found. */
static long locate(const src *s, const char *section, const char *key, int nth)
{
    const char *p = s->text, *end = s->text + s->len;
    char cur[128] = "default";
    long line = 0;
    int seen = 0;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *q = p;
        size_t n;

        if (eol == NULL)
            eol = end;
        line++;
        while (q < eol && isspace((unsigned char)*q))
            q++;
        if (q < eol && *q == '[') {
            const char *b = q + 1, *e;
            while (b < eol && isspace((unsigned char)*b))
                b++;
            e = b;
            while (e < eol && *e != ']' && !isspace((unsigned char)*e))
                e++;
            n = (size_t)(e - b);
            if (n < sizeof(cur)) {
                memcpy(cur, b, n);
                cur[n] = '\0';
            }
            if (key == NULL && strcmp(cur, section) == 0)
                return line;
        } else if (key != NULL && strcmp(cur, section) == 0) {
            n = strlen(key);
            if ((size_t)(eol - q) > n && strncmp(q, key, n) == 0) {
                const char *r = q + n;
                while (r < eol && (*r == ' ' || *r == '\t'))
                    r++;
                if (r < eol && *r == '=' && ++seen == nth)
                    return line;
            }
        }
        p = eol + 1;
    }
    return 0;
}

static int read_file(src *s)
{
    FILE *f = fopen(s->path, "rb");
    size_t cap = 4096, len = 0;
    char *buf = NULL;
    int ok = 0;

    if (f == NULL) {
        fail(s, 0, "cannot open config file: %s", strerror(errno));
        return 0;
    }
    buf = malloc(cap + 1);
    if (buf == NULL)
        goto out;
    for (;;) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len < cap)
            break;
        if (cap >= TM_CONFIG_MAX_BYTES) {
            fail(s, 0, "config file is larger than %d bytes", TM_CONFIG_MAX_BYTES);
            goto out;
        }
        cap *= 2;
        char *nb = realloc(buf, cap + 1);
        if (nb == NULL)
            goto out;
        buf = nb;
    }
    if (ferror(f)) {
        fail(s, 0, "cannot read config file");
        goto out;
    }
    buf[len] = '\0';
    s->text = buf;
    s->len = len;
    buf = NULL;
    ok = 1;
out:
    if (!ok && s->err != NULL && s->err[0] == '\0')
        fail(s, 0, "out of memory reading config file");
    free(buf);
    fclose(f);
    return ok;
}

static char *dup_value(src *s, const char *section, const CONF_VALUE *v, char **slot)
{
    const char *b = v->value;
    size_t n = strlen(b);

    if (n == 0) {
        fail(s, locate(s, section, v->name, 1), "%s is empty", v->name);
        return NULL;
    }
    free(*slot);
    *slot = strdup(b);
    if (*slot == NULL)
        fail(s, 0, "out of memory");
    return *slot;
}

static int no_duplicate(src *s, const char *section, const char *key)
{
    long l = locate(s, section, key, 2);
    if (l > 0) {
        fail(s, l, "%s is set twice in [%s] (first on line %ld)", key, section,
             locate(s, section, key, 1));
        return 0;
    }
    return 1;
}

static int valid_name(const char *n)
{
    if (*n == '\0')
        return 0;
    for (; *n; n++)
        if (!isalnum((unsigned char)*n) && *n != '_' && *n != '-')
            return 0;
    return 1;
}

/* Spaces around [b, *e) dropped; returns the new start, *e moved back. */
static char *trim(char *b, char **e)
{
    while (b < *e && isspace((unsigned char)*b))
        b++;
    while (*e > b && isspace((unsigned char)(*e)[-1]))
        (*e)--;
    return b;
}

/*
 * token_serials = LABEL:SERIAL, LABEL2:SERIAL2. Split at the last ':' so a
 * label may hold one; a serial takes what the profile writes literally into
 * the subject serialNumber (tm_serial_encode leaves it as it is), and so no
 * ',' or ':'. Each entry must be able to name one token: a serial that is
 * itself a placeholder, or a label given twice, would make two tokens look
 * like one.
 */
static int parse_token_serials(src *s, const char *section, const char *value, mod_backend_conf *b)
{
    long line = locate(s, section, "token_serials", 1);
    char *copy = strdup(value), *item, *save = NULL;
    size_t n = 1, i;
    int ok = 0;

    if (copy == NULL) {
        fail(s, 0, "out of memory");
        return 0;
    }
    for (const char *p = value; *p; p++)
        n += (*p == ',');
    b->token_serials = calloc(n, sizeof(*b->token_serials));
    if (b->token_serials == NULL) {
        fail(s, 0, "out of memory");
        goto out;
    }
    for (item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *end = item + strlen(item), *colon, *label, *lend, *serial, *send;
        char text[TM_SERIAL_TEXT_MAX + 1];
        const char *bad;
        mod_token_serial *t;

        item = trim(item, &end);
        *end = '\0';
        colon = strrchr(item, ':');
        if (colon == NULL) {
            fail(s, line, "token_serials: '%s' is not LABEL:SERIAL", item);
            goto out;
        }
        lend = colon;
        label = trim(item, &lend);
        *lend = '\0';
        send = end;
        serial = trim(colon + 1, &send);
        *send = '\0';
        if (*label == '\0' || *serial == '\0') {
            fail(s, line, "token_serials: '%s%s%s' has an empty %s (LABEL:SERIAL)", label, ":",
                 serial, *label == '\0' ? "label" : "serial");
            goto out;
        }
        if (strlen(label) > 32) {
            fail(s, line, "token_serials: label '%s' is longer than a token label (32 bytes)",
                 label);
            goto out;
        }
        if (strlen(serial) > 16) {
            fail(s, line,
                 "token_serials: serial '%s' for '%s' is longer than a token serial (16 "
                 "characters)",
                 serial, label);
            goto out;
        }
        if (tm_serial_encode((const unsigned char *)serial, strlen(serial), text, sizeof(text)) ==
                0 ||
            strcmp(text, serial) != 0) {
            fail(s, line,
                 "token_serials: serial '%s' for '%s' has a character the profile's serialNumber "
                 "does not take as it is (letters, digits, space and '()+-./= only)",
                 serial, label);
            goto out;
        }
        bad = tm_serial_unusable((const unsigned char *)serial, strlen(serial));
        if (bad != NULL) {
            fail(s, line, "token_serials: serial '%s' for '%s' is %s: it names no one token",
                 serial, label, bad);
            goto out;
        }
        for (i = 0; i < b->n_token_serials; i++) {
            if (strcmp(b->token_serials[i].label, label) == 0) {
                fail(s, line, "token_serials: label '%s' is given twice", label);
                goto out;
            }
            if (strcmp(b->token_serials[i].serial, serial) == 0) {
                fail(s, line, "token_serials: serial '%s' is given to '%s' and to '%s'", serial,
                     b->token_serials[i].label, label);
                goto out;
            }
        }
        t = &b->token_serials[b->n_token_serials];
        t->label = strdup(label);
        t->serial = strdup(serial);
        b->n_token_serials++;
        if (t->label == NULL || t->serial == NULL) {
            fail(s, 0, "out of memory");
            goto out;
        }
    }
    if (b->n_token_serials == 0) {
        fail(s, line, "token_serials lists no LABEL:SERIAL");
        goto out;
    }
    ok = 1;
out:
    free(copy);
    return ok;
}

/* A serial token_serials gives in two backends would bind one certificate to two tokens. */
static int serials_unique(src *s, const mod_config *c, const mod_backend_conf *b)
{
    size_t i, j, k;

    for (i = 0; i < c->n_backends && &c->backends[i] != b; i++)
        for (j = 0; j < c->backends[i].n_token_serials; j++)
            for (k = 0; k < b->n_token_serials; k++)
                if (strcmp(c->backends[i].token_serials[j].serial, b->token_serials[k].serial) ==
                    0) {
                    char section[160];
                    snprintf(section, sizeof(section), "backend_%s", b->name);
                    fail(s, locate(s, section, "token_serials", 1),
                         "token_serials: serial '%s' for '%s' is also given to '%s' in "
                         "[backend_%s]",
                         b->token_serials[k].serial, b->token_serials[k].label,
                         c->backends[i].token_serials[j].label, c->backends[i].name);
                    return 0;
                }
    return 1;
}

static int parse_backend(src *s, CONF *conf, mod_backend_conf *b)
{
    char section[160];
    STACK_OF(CONF_VALUE) * values;
    P11KitUri *uri = NULL;
    int i, ok = 0;

    snprintf(section, sizeof(section), "backend_%s", b->name);
    b->line = locate(s, section, NULL, 1);
    values = NCONF_get_section(conf, section);
    for (i = 0; values != NULL && i < sk_CONF_VALUE_num(values); i++) {
        CONF_VALUE *v = sk_CONF_VALUE_value(values, i);
        char **slot;

        if (strcmp(v->name, "module") == 0)
            slot = &b->module;
        else if (strcmp(v->name, "p11kit_module") == 0)
            slot = &b->p11kit_module;
        else if (strcmp(v->name, "uri") == 0)
            slot = &b->uri;
        else if (strcmp(v->name, "init_args") == 0)
            slot = &b->init_args;
        else if (strcmp(v->name, "token_serials") == 0) {
            if (!no_duplicate(s, section, v->name))
                goto out;
            if (v->value[0] == '\0') {
                fail(s, locate(s, section, v->name, 1), "%s is empty", v->name);
                goto out;
            }
            if (!parse_token_serials(s, section, v->value, b))
                goto out;
            continue;
        } else {
            fail(s, locate(s, section, v->name, 1),
                 "unknown key '%s' in [%s] (known: module, p11kit_module, uri, init_args, "
                 "token_serials)",
                 v->name, section);
            goto out;
        }
        if (!no_duplicate(s, section, v->name) || dup_value(s, section, v, slot) == NULL)
            goto out;
    }
    if ((b->module == NULL) == (b->p11kit_module == NULL)) {
        fail(s, b->line, "[%s] needs exactly one of 'module' (a path) or 'p11kit_module' (a name)",
             section);
        goto out;
    }
    if (b->uri != NULL) {
        int r;
        uri = p11_kit_uri_new();
        if (uri == NULL)
            goto out;
        r = p11_kit_uri_parse(b->uri, P11_KIT_URI_FOR_ANY, uri);
        if (r != P11_KIT_URI_OK) {
            fail(s, locate(s, section, "uri", 1), "uri '%s' is not a valid PKCS#11 URI: %s", b->uri,
                 p11_kit_uri_message(r));
            goto out;
        }
        if (p11_kit_uri_any_unrecognized(uri)) {
            fail(s, locate(s, section, "uri", 1),
                 "uri '%s' has attributes that cannot select a token", b->uri);
            goto out;
        }
    }
    ok = 1;
out:
    if (uri != NULL)
        p11_kit_uri_free(uri);
    return ok;
}

static int parse_backends(src *s, CONF *conf, mod_config *c, const char *list)
{
    long line = locate(s, "tokenmint", "backends", 1);
    char *copy = strdup(list), *tok, *save = NULL;
    size_t n = 1, i;
    int ok = 0;

    if (copy == NULL)
        goto out;
    for (const char *p = list; *p; p++)
        n += (*p == ',');
    c->backends = calloc(n, sizeof(*c->backends));
    if (c->backends == NULL)
        goto out;
    for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *e = tok + strlen(tok);
        tok = trim(tok, &e);
        *e = '\0';
        if (!valid_name(tok)) {
            fail(s, line, "backends: '%s' is not a backend name (letters, digits, '_', '-')", tok);
            goto out;
        }
        for (i = 0; i < c->n_backends; i++) {
            if (strcmp(c->backends[i].name, tok) == 0) {
                fail(s, line, "backends: '%s' is listed twice", tok);
                goto out;
            }
        }
        char section[160];
        snprintf(section, sizeof(section), "backend_%s", tok);
        if (NCONF_get_section(conf, section) == NULL) {
            fail(s, line, "backend '%s' is listed but there is no [%s] section", tok, section);
            goto out;
        }
        c->backends[c->n_backends].name = strdup(tok);
        if (c->backends[c->n_backends].name == NULL)
            goto out;
        c->n_backends++;
        if (!parse_backend(s, conf, &c->backends[c->n_backends - 1]) ||
            !serials_unique(s, c, &c->backends[c->n_backends - 1]))
            goto out;
    }
    if (c->n_backends == 0) {
        fail(s, line, "backends lists no backend");
        goto out;
    }
    ok = 1;
out:
    free(copy);
    return ok;
}

static int parse_sections(src *s, CONF *conf, mod_config *c)
{
    STACK_OF(OPENSSL_CSTRING) *names = NCONF_get_section_names(conf);
    int i, ok = 0;

    if (names == NULL) {
        fail(s, 0, "out of memory");
        return 0;
    }
    for (i = 0; i < sk_OPENSSL_CSTRING_num(names); i++) {
        const char *name = sk_OPENSSL_CSTRING_value(names, i);
        STACK_OF(CONF_VALUE) *values = NCONF_get_section(conf, name);
        size_t j;
        int listed = 0;

        if (strcmp(name, "tokenmint") == 0)
            continue;
        if (strcmp(name, "default") == 0) {
            if (values != NULL && sk_CONF_VALUE_num(values) > 0) {
                CONF_VALUE *v = sk_CONF_VALUE_value(values, 0);
                fail(s, locate(s, "default", v->name, 1),
                     "'%s' is set outside any section (settings go in [tokenmint])", v->name);
                goto out;
            }
            continue;
        }
        for (j = 0; j < c->n_backends; j++)
            if (strncmp(name, "backend_", 8) == 0 && strcmp(name + 8, c->backends[j].name) == 0)
                listed = 1;
        if (!listed) {
            fail(s, locate(s, name, NULL, 1),
                 strncmp(name, "backend_", 8) == 0
                     ? "section [%s] is not listed in [tokenmint] backends"
                     : "unknown section [%s]",
                 name);
            goto out;
        }
    }
    ok = 1;
out:
    sk_OPENSSL_CSTRING_free(names);
    return ok;
}

static int parse(src *s, CONF *conf, mod_config *c)
{
    STACK_OF(CONF_VALUE) *values = NCONF_get_section(conf, "tokenmint");
    const char *backends = NULL;
    int i;

    if (values == NULL) {
        fail(s, 0, "no [tokenmint] section");
        return 0;
    }
    /* audit_log first: a later error can then still be recorded there. */
    for (i = 0; i < sk_CONF_VALUE_num(values); i++) {
        CONF_VALUE *v = sk_CONF_VALUE_value(values, i);
        if (strcmp(v->name, "audit_log") == 0 && v->value[0] != '\0')
            c->audit_log = strdup(v->value);
    }
    for (i = 0; i < sk_CONF_VALUE_num(values); i++) {
        CONF_VALUE *v = sk_CONF_VALUE_value(values, i);
        long line = locate(s, "tokenmint", v->name, 1);

        if (!no_duplicate(s, "tokenmint", v->name))
            return 0;
        if (strcmp(v->name, "backends") == 0) {
            backends = v->value;
        } else if (strcmp(v->name, "audit_log") == 0) {
            if (dup_value(s, "tokenmint", v, &c->audit_log) == NULL)
                return 0;
        } else if (strcmp(v->name, "station_secret") == 0) {
            if (dup_value(s, "tokenmint", v, &c->station_secret) == NULL)
                return 0;
        } else if (strcmp(v->name, "trusted_roots") == 0) {
            if (dup_value(s, "tokenmint", v, &c->trusted_roots) == NULL)
                return 0;
        } else if (strcmp(v->name, "profile") == 0) {
            if (dup_value(s, "tokenmint", v, &c->profile) == NULL)
                return 0;
        } else if (strcmp(v->name, "outside_profile") == 0) {
            if (strcmp(v->value, "refuse") == 0) {
                c->outside_profile_allow = 0;
            } else if (strcmp(v->value, "allow") == 0) {
                c->outside_profile_allow = 1;
            } else {
                fail(s, line, "outside_profile must be 'refuse' or 'allow', not '%s'", v->value);
                return 0;
            }
        } else if (strcmp(v->name, "issuing_keys") == 0) {
            if (dup_value(s, "tokenmint", v, &c->issuing_keys) == NULL)
                return 0;
        } else if (strcmp(v->name, "destroy_bound_certificates") == 0) {
            if (strcmp(v->value, "refuse") == 0) {
                c->destroy_bound_refuse = 1;
            } else if (strcmp(v->value, "allow") == 0) {
                c->destroy_bound_refuse = 0;
            } else {
                fail(s, line, "destroy_bound_certificates must be 'refuse' or 'allow', not '%s'",
                     v->value);
                return 0;
            }
        } else {
            fail(s, line,
                 "unknown key '%s' in [tokenmint] (known: backends, audit_log, station_secret, "
                 "outside_profile, trusted_roots, profile, destroy_bound_certificates, "
                 "issuing_keys)",
                 v->name);
            return 0;
        }
    }
    if (backends == NULL) {
        fail(s, locate(s, "tokenmint", NULL, 1), "[tokenmint] has no 'backends' key");
        return 0;
    }
    return parse_backends(s, conf, c, backends) && parse_sections(s, conf, c);
}

int mod_config_load_file(const char *path, mod_config **out, char *err, size_t errlen)
{
    src s = {.path = path, .err = err, .errlen = errlen};
    CONF *conf = NULL;
    BIO *bio = NULL;
    mod_config *c = NULL;
    long eline = 0;
    int ok = 0;

    mod_return_val_if_fail(out != NULL, 0);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    *out = NULL;
    if (path == NULL || path[0] == '\0') {
        s.path = "(config)";
        fail(&s, 0, "no config file named");
        return 0;
    }
    ERR_set_mark(); /* the application's errors stay; ours are dropped at out */
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->path = strdup(path)) == NULL) {
        fail(&s, 0, "out of memory");
        goto out;
    }
    if (!read_file(&s))
        goto out;
    /* NCONF skips a missing include: whatever it should have set would be
     * silently off. */
    {
        char why[512];
        if (!tm_conf_check_includes(s.text, s.len, path, why, sizeof(why))) {
            if (err != NULL && errlen > 0)
                snprintf(err, errlen, "%s", why);
            goto out;
        }
    }
    conf = NCONF_new(NULL);
    bio = BIO_new_mem_buf(s.text, (int)s.len);
    if (conf == NULL || bio == NULL) {
        fail(&s, 0, "out of memory");
        goto out;
    }
    if (NCONF_load_bio(conf, bio, &eline) <= 0) {
        unsigned long e = ERR_peek_last_error();
        const char *why = ERR_reason_error_string(e);
        fail(&s, eline, "syntax error: %s", why != NULL ? why : "cannot parse");
        goto out;
    }
    ok = parse(&s, conf, c);
out:
    ERR_pop_to_mark();
    BIO_free(bio);
    NCONF_free(conf);
    free(s.text);
    *out = c;
    return ok;
}

int mod_config_from_backend_list(const char *list, mod_config **out, char *err, size_t errlen)
{
    src s = {.path = "TOKENMINT_BACKEND", .err = err, .errlen = errlen};
    mod_config *c = calloc(1, sizeof(*c));
    char *copy = list != NULL ? strdup(list) : NULL, *tok, *save = NULL;
    size_t n = 1;
    int ok = 0;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    *out = c;
    if (c == NULL || copy == NULL) {
        fail(&s, 0, list == NULL ? "not set" : "out of memory");
        goto out;
    }
    for (const char *p = list; *p; p++)
        n += (*p == ':');
    c->backends = calloc(n, sizeof(*c->backends));
    if (c->backends == NULL)
        goto out;
    for (tok = strtok_r(copy, ":", &save); tok != NULL; tok = strtok_r(NULL, ":", &save)) {
        mod_backend_conf *b = &c->backends[c->n_backends];
        char name[32];

        snprintf(name, sizeof(name), "env%zu", c->n_backends + 1);
        b->name = strdup(name);
        b->module = strdup(tok);
        c->n_backends++;
        if (b->name == NULL || b->module == NULL) {
            fail(&s, 0, "out of memory");
            goto out;
        }
    }
    if (c->n_backends == 0) {
        fail(&s, 0, "lists no module path");
        goto out;
    }
    ok = 1;
out:
    free(copy);
    return ok;
}

int mod_config_load_env(const char *default_path, mod_config **out, char *err, size_t errlen)
{
    const char *conf = getenv("TOKENMINT_CONF");
    const char *list = getenv("TOKENMINT_BACKEND");

    if (conf != NULL && conf[0] != '\0')
        return mod_config_load_file(conf, out, err, errlen);
    if (list != NULL && list[0] != '\0')
        return mod_config_from_backend_list(list, out, err, errlen);
    if (default_path != NULL && access(default_path, F_OK) == 0)
        return mod_config_load_file(default_path, out, err, errlen);
    *out = NULL;
    snprintf(err, errlen,
             "no configuration: TOKENMINT_CONF and TOKENMINT_BACKEND are not set and %s does not "
             "exist",
             default_path != NULL ? default_path : "the default config file");
    return 0;
}

void mod_config_free(mod_config *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < c->n_backends; i++) {
        free(c->backends[i].name);
        free(c->backends[i].module);
        free(c->backends[i].p11kit_module);
        free(c->backends[i].uri);
        free(c->backends[i].init_args);
        for (size_t j = 0; j < c->backends[i].n_token_serials; j++) {
            free(c->backends[i].token_serials[j].label);
            free(c->backends[i].token_serials[j].serial);
        }
        free(c->backends[i].token_serials);
    }
    free(c->backends);
    free(c->path);
    free(c->audit_log);
    free(c->station_secret);
    free(c->trusted_roots);
    free(c->profile);
    free(c->issuing_keys);
    free(c);
}
