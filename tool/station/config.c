/*
 * The tool config fails closed (issue 10, item 1). Before OpenSSL reads the
 * file, every line of it and of every file it includes is checked: a section
 * or key the tool does not know, a missing include, a file that is not a
 * regular file (/dev/zero, a FIFO) is refused, naming file and line. NCONF
 * alone would ignore a misspelt section (so `[operatr] require = yes` left
 * operator authentication off) and a missing `.include`.
 */
#include "station/station.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/conf.h>
#include <openssl/err.h>

#define MAX_DEPTH 8
#define MAX_CONFIG_BYTES (1024 * 1024)

/* "audit" is the old name of "audit_log" (the module's name for the same
 * file, issue 14): still read, with a warning from tool_config_load. */
static const char *const tokenmint_keys[] = {"audit_log", "audit", "profile", "state_dir", NULL};
static const char *const operator_keys[] = {"require", "passphrase", "name", "ca", NULL};

static const char *const *keys_of(const char *section)
{
    if (strcmp(section, "tokenmint") == 0)
        return tokenmint_keys;
    if (strcmp(section, "operator") == 0)
        return operator_keys;
    return NULL;
}

static char *trim(char *s)
{
    char *e;
    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

/* A regular file we can read, not too big to be a config. */
static int regular_file(const char *path, const char *from, int fromline, char *err, size_t errlen)
{
    struct stat sb;
    char where[PATH_MAX + 64] = "";

    if (from)
        snprintf(where, sizeof where, "%s line %d: ", from, fromline);
    if (stat(path, &sb) != 0) {
        snprintf(err, errlen, "%s%s: %s", where, path, strerror(errno));
        return 0;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s%s: not a regular file (a config must be one)", where, path);
        return 0;
    }
    if (sb.st_size > MAX_CONFIG_BYTES) {
        snprintf(err, errlen, "%s%s: %lld bytes is too big for a config file", where, path,
                 (long long)sb.st_size);
        return 0;
    }
    return 1;
}

typedef struct scan_ctx {
    char section[128];
    char audit_at[PATH_MAX + 32]; /* "FILE line N" of the audit key */
    const char *audit_key;        /* as written: "audit_log", or the old "audit" */
    char other_at[PATH_MAX + 32]; /* where the other of the two names stands, if it does */
} scan_ctx;

static int scan(const char *path, int depth, scan_ctx *c, char *err, size_t errlen);

static int scan_dir(const char *dir, const char *from, int fromline, int depth, scan_ctx *c,
                    char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int ok = 1;

    if (!d) {
        snprintf(err, errlen, "%s line %d: .include %s: %s", from, fromline, dir, strerror(errno));
        return 0;
    }
    while (ok && (e = readdir(d)) != NULL) {
        char full[PATH_MAX];
        /* each file NCONF reads there is checked as an included file is (a
         * FIFO would block NCONF, a misspelt section would be ignored) */
        if (!tm_conf_dir_reads(e->d_name))
            continue;
        if (snprintf(full, sizeof full, "%s/%s", dir, e->d_name) >= (int)sizeof full) {
            snprintf(err, errlen, "%s line %d: .include %s: path too long", from, fromline, dir);
            ok = 0;
            break;
        }
        ok = regular_file(full, from, fromline, err, errlen) &&
             scan(full, depth + 1, c, err, errlen);
    }
    closedir(d);
    return ok;
}

/* ".include PATH" or ".include = PATH": the file (or every file of the
 * directory, as OpenSSL reads them) must be there. The file checked is the
 * one NCONF opens: the path as written, under $OPENSSL_CONF_INCLUDE when
 * that is set and the path is relative (NCONF's rule, an empty value
 * included: it makes "x.conf" "/x.conf"). */
static int scan_include(const char *path, int lineno, char *arg, int depth, scan_ctx *c, char *err,
                        size_t errlen)
{
    struct stat sb;
    char inc[PATH_MAX];

    if (*arg == '=')
        arg = trim(arg + 1);
    if (!*arg) {
        snprintf(err, errlen, "%s line %d: .include names no file", path, lineno);
        return 0;
    }
    /* NCONF expands variables, quotes and escapes in the path (a trailing
     * backslash joins the next line to it): only a path written literally
     * is known to be the file it opens. */
    if (strpbrk(arg, "$\"'\\") != NULL) {
        snprintf(err, errlen,
                 "%s line %d: .include %s: write the path literally (no $variables, quotes or "
                 "escapes)",
                 path, lineno, arg);
        return 0;
    }
    if (depth >= MAX_DEPTH) {
        snprintf(err, errlen, "%s line %d: includes nested deeper than %d", path, lineno,
                 MAX_DEPTH);
        return 0;
    }
    if (!tm_conf_include_path(arg, strlen(arg), inc, sizeof inc)) {
        snprintf(err, errlen, "%s line %d: .include path too long", path, lineno);
        return 0;
    }
    if (stat(inc, &sb) != 0) {
        snprintf(err, errlen, "%s line %d: .include %s: %s (a missing include is refused)", path,
                 lineno, inc, strerror(errno));
        return 0;
    }
    if (S_ISDIR(sb.st_mode))
        return scan_dir(inc, path, lineno, depth, c, err, errlen);
    if (!regular_file(inc, path, lineno, err, errlen))
        return 0;
    return scan(inc, depth + 1, c, err, errlen);
}

static int scan(const char *path, int depth, scan_ctx *c, char *err, size_t errlen)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0, ok = 0, odd;
    FILE *f = fopen(path, "re");

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return 0;
    }
    /* whole lines, however long: a line cut in two is not what NCONF reads */
    while ((got = getline(&line, &cap, f)) >= 0) {
        char *s, *eq, *hash;
        const char *const *keys;
        lineno++;
        /* trim() takes \v and \f for blanks, NCONF does not: ".include
         * x.conf\v" was checked as x.conf and skipped by NCONF */
        if ((odd = tm_conf_odd_byte(line, (size_t)got)) >= 0) {
            snprintf(err, errlen,
                     "%s line %d: control character 0x%02x (a config line is text; OpenSSL "
                     "would read this one otherwise than it was checked)",
                     path, lineno, (unsigned)odd);
            goto out;
        }
        if ((hash = strchr(line, '#')) != NULL)
            *hash = 0;
        s = trim(line);
        if (!*s)
            continue;
        if (*s == '.') {
            /* a directive word ends at a blank or '=': NCONF reads
             * ".pragma::require = yes" as a key of a section ".pragma" */
            size_t len = strlen(s);
            int word_end7 = len > 7 && (isspace((unsigned char)s[7]) || s[7] == '=');
            int word_end8 = len > 8 && (isspace((unsigned char)s[8]) || s[8] == '=');
            if (strncmp(s, ".include", 8) == 0 && word_end8) {
                if (!scan_include(path, lineno, trim(s + 8), depth, c, err, errlen))
                    goto out;
                continue;
            }
            /* includedir moves where NCONF looks for a relative include
             * away from the file checked here */
            if (strncmp(s, ".pragma", 7) == 0 && word_end7 && strstr(s, "includedir") != NULL) {
                snprintf(err, errlen,
                         "%s line %d: .pragma includedir is refused (write include paths in "
                         "full)",
                         path, lineno);
                goto out;
            }
            if (strncmp(s, ".pragma", 7) == 0 && word_end7)
                continue;
            snprintf(err, errlen, "%s line %d: unknown directive \"%s\"", path, lineno, s);
            goto out;
        }
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (!end) {
                snprintf(err, errlen, "%s line %d: section header without ]", path, lineno);
                goto out;
            }
            *end = 0;
            s = trim(s + 1);
            if (!keys_of(s)) {
                snprintf(err, errlen,
                         "%s line %d: unknown section [ %s ] (the tool config has [ tokenmint ] "
                         "and [ operator ])",
                         path, lineno, s);
                goto out;
            }
            snprintf(c->section, sizeof c->section, "%s", s);
            continue;
        }
        eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s line %d: expected \"key = value\"", path, lineno);
            goto out;
        }
        *eq = 0;
        s = trim(s);
        keys = keys_of(c->section);
        if (!keys) {
            snprintf(err, errlen,
                     "%s line %d: \"%s\" outside a section (put it in [ tokenmint ] "
                     "or [ operator ])",
                     path, lineno, s);
            goto out;
        }
        for (; *keys && strcmp(*keys, s) != 0; keys++)
            ;
        if (!*keys) {
            snprintf(err, errlen, "%s line %d: unknown key \"%s\" in [ %s ]", path, lineno, s,
                     c->section);
            goto out;
        }
        if (strcmp(c->section, "tokenmint") == 0 &&
            (strcmp(s, "audit_log") == 0 || strcmp(s, "audit") == 0)) {
            const char *key = strcmp(s, "audit") == 0 ? "audit" : "audit_log";
            /* Both names in one config: which one wins would depend on
             * the order; refused, naming both places. */
            if (c->audit_key != NULL && strcmp(c->audit_key, key) != 0) {
                snprintf(err, errlen,
                         "%s line %d: both \"audit_log\" and the old name \"audit\" are set "
                         "(the other at %s); keep only audit_log",
                         path, lineno, c->audit_at);
                goto out;
            }
            c->audit_key = key;
            snprintf(c->audit_at, sizeof c->audit_at, "%s line %d", path, lineno);
        }
    }
    ok = 1;
out:
    free(line);
    fclose(f);
    return ok;
}

int tool_config_check(const char *path, const char *audit, char *err, size_t errlen)
{
    scan_ctx c;
    struct stat sb;
    int fd;

    tool_return_val_if_fail(path != NULL && err != NULL, 0);
    memset(&c, 0, sizeof c);
    snprintf(c.audit_at, sizeof c.audit_at, "%s", path);
    if (!regular_file(path, NULL, 0, err, errlen) || !scan(path, 0, &c, err, errlen))
        return 0;
    if (!audit)
        return 1;
    /* Opened for appending as every audit line will be: a destination the
     * tool cannot write is found now, not after a token was changed. */
    fd = open(audit, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s = %s: cannot write: %s", c.audit_at,
                 c.audit_key ? c.audit_key : "audit_log", audit, strerror(errno));
        return 0;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        snprintf(err, errlen, "%s: %s = %s: not a regular file", c.audit_at,
                 c.audit_key ? c.audit_key : "audit_log", audit);
        return 0;
    }
    close(fd);
    return 1;
}

/* ---- reading the values (NCONF) ---- */

static int known_key(const char *sect, const char *name)
{
    static const char *tokenmint[] = {"audit_log", "audit", "profile", "state_dir", NULL};
    static const char *operator[] = {"require", "passphrase", "name", "ca", NULL};
    const char **k = strcmp(sect, "tokenmint") == 0 ? tokenmint : operator;
    for (; *k; k++)
        if (strcmp(*k, name) == 0)
            return 1;
    return 0;
}

/* The values, after tool_config_check(path, NULL): opens nothing for writing. */
int tool_config_read(const char *path, tool_config *cfg, char *err, size_t errlen)
{
    static const char *sections[] = {"tokenmint", "operator"};
    CONF *conf = NCONF_new(NULL);
    long line = -1;
    size_t i;
    int ok = 0, j;
    char e[256];

    memset(cfg, 0, sizeof *cfg);
    /* Before NCONF reads anything: /dev/zero or a FIFO must not be read at all. */
    if (!tool_config_check(path, NULL, err, errlen))
        goto out;
    if (!conf || NCONF_load(conf, path, &line) <= 0) {
        if (line > 0)
            snprintf(err, errlen, "%s line %ld: %s", path, line, tool_ossl_err(e, sizeof e));
        else
            snprintf(err, errlen, "%s: cannot read the config file", path);
        goto out;
    }
    if ((cfg->path = strdup(path)) == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    for (i = 0; i < 2; i++) {
        STACK_OF(CONF_VALUE) *sk = NCONF_get_section(conf, sections[i]);
        for (j = 0; sk && j < sk_CONF_VALUE_num(sk); j++) {
            CONF_VALUE *v = sk_CONF_VALUE_value(sk, j);
            char **slot = NULL;
            if (!known_key(sections[i], v->name)) {
                snprintf(err, errlen, "%s: unknown key \"%s\" in [ %s ]", path, v->name,
                         sections[i]);
                goto out;
            }
            if (i == 1 && strcmp(v->name, "require") == 0) {
                if (!strcmp(v->value, "yes") || !strcmp(v->value, "true"))
                    cfg->require_operator = 1;
                else if (strcmp(v->value, "no") && strcmp(v->value, "false")) {
                    snprintf(err, errlen, "%s: [ operator ] require must be yes or no, not \"%s\"",
                             path, v->value);
                    goto out;
                }
                continue;
            }
            if (i == 0 && !strcmp(v->name, "audit"))
                /* Accepted, not refused: the meaning is not in doubt, and a
                 * rename must not stop a working station on upgrade. */
                fprintf(stderr,
                        "tokenmint: %s: [ tokenmint ] \"audit\" is deprecated, name it "
                        "\"audit_log\" (as in the module's config)\n",
                        path);
            if (i == 0)
                slot = !strcmp(v->name, "audit") || !strcmp(v->name, "audit_log") ? &cfg->audit
                       : !strcmp(v->name, "profile")                              ? &cfg->profile
                                                                                  : &cfg->state_dir;
            else if (!strcmp(v->name, "passphrase"))
                slot = &cfg->scrypt;
            else if (!strcmp(v->name, "name"))
                slot = &cfg->operator_name;
            else
                slot = &cfg->operator_ca;
            free(*slot);
            if ((*slot = strdup(v->value)) == NULL) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto out;
            }
        }
    }
    ERR_clear_error();
    ok = 1;
out:
    NCONF_free(conf);
    if (!ok)
        tool_config_clear(cfg);
    return ok;
}

int tool_config_load(const char *path, tool_config *cfg, char *err, size_t errlen)
{
    if (!tool_config_read(path, cfg, err, errlen))
        return 0;
    /* the audit destination is opened for appending only now it is known */
    if (cfg->audit && !tool_config_check(path, cfg->audit, err, errlen)) {
        tool_config_clear(cfg);
        return 0;
    }
    return 1;
}

void tool_config_clear(tool_config *cfg)
{
    free(cfg->path);
    free(cfg->scrypt);
    free(cfg->operator_name);
    free(cfg->operator_ca);
    free(cfg->audit);
    free(cfg->profile);
    free(cfg->state_dir);
    memset(cfg, 0, sizeof *cfg);
}
