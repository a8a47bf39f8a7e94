/*
 * Fuzz target: arbitrary bytes as the tool's config file, read by
 * tool_config_read (tool/station/config.c: the fail-closed line check, then
 * NCONF). The input is written to DIR/tool.conf in a directory of this
 * process's own, next to fixtures a relative .include can name: good and
 * misspelt files, directories of them, a FIFO, and an include directory of
 * files with the good names but misspelt sections (the trap for an include
 * that NCONF resolves elsewhere than the check did, OPENSSL_CONF_INCLUDE).
 * The working directory is DIR while the input is read.
 *
 * Besides crashes, leaks and sanitizer reports, it fails when a load that
 * succeeded lets NCONF see a section other than [ tokenmint ] and
 * [ operator ], a key the tool does not know, or a value other than the one
 * the tool kept (require not yes/no/true/false); when a refusal says nothing,
 * overruns its buffer or does not start with the name of the file the
 * problem is in; when a short message buffer changes the outcome. Nothing is
 * opened for writing (tool_config_read never creates the audit file).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/conf.h>
#include <openssl/err.h>

#include "fuzz_temp.h"
#include "station/station.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CANARY 0x5a

/* The working directory before the input moved it, so a failed check's
 * crash file is written where libFuzzer was asked to write it, not into the
 * scratch directory (ctest also passes an absolute -artifact_prefix, for the
 * sanitizers' reports). */
static int home = -1;

static void fail(void)
{
    if (home >= 0 && fchdir(home) != 0)
        home = -1;
    abort();
}

/* Each is made only when the input names its first path component (the
 * file system work costs most of a run); "incdir/X" also when it names X,
 * as NCONF reads X from there under OPENSSL_CONF_INCLUDE. */
static const struct {
    const char *name;
    const char *text;
} fixtures[] = {
    {"good.conf", "[operator]\nrequire = no\n"},
    {"bad.conf", "[operatr]\nrequire = yes\n"},
    {"empty.conf", ""},
    {"conf.d/10-tokenmint.conf", "[tokenmint]\nstate_dir = /nonexistent/state\n"},
    {"conf.d/20-operator.cnf", "[operator]\nname = fuzz\n"},
    {"conf.d/README", "[not read: no .cnf or .conf suffix]\n"},
    {"mixed.d/10-good.conf", "[operator]\nrequire = no\n"},
    {"mixed.d/20-upper.CNF", "[operatr]\nrequire = yes\n"},
    /* OPENSSL_CONF_INCLUDE points here in the second pass */
    {"incdir/good.conf", "[operatr]\nrequire = yes\n"},
    {"incdir/conf.d/10-tokenmint.conf", "[tokenmint\n"},
};

static int named(const uint8_t *data, size_t size, const char *name, size_t len)
{
    return memmem(data, size, name, len) != NULL;
}

static void make_fixtures(const uint8_t *data, size_t size)
{
    char fifo[4200];
    int made_dir[4] = {0, 0, 0, 0};
    size_t i;

    for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        const char *n = fixtures[i].name, *slash = strchr(n, '/');
        const char *rest = slash != NULL ? slash + 1 : n;
        const char *rslash = strchr(rest, '/');
        size_t first = slash != NULL ? (size_t)(slash - n) : strlen(n);
        size_t second = rslash != NULL ? (size_t)(rslash - rest) : strlen(rest);
        int in_incdir = strncmp(n, "incdir/", 7) == 0;

        if (!named(data, size, n, first) && !(in_incdir && named(data, size, rest, second)))
            continue;
        /* the directories on the way, once */
        if (strncmp(n, "conf.d/", 7) == 0 && !made_dir[0]++)
            fuzz_temp_mkdir("conf.d");
        if (strncmp(n, "mixed.d/", 8) == 0 && !made_dir[1]++)
            fuzz_temp_mkdir("mixed.d");
        if (in_incdir && !made_dir[2]++)
            fuzz_temp_mkdir("incdir");
        if (strncmp(n, "incdir/conf.d/", 14) == 0 && !made_dir[3]++)
            fuzz_temp_mkdir("incdir/conf.d");
        fuzz_temp_write(n, (const uint8_t *)fixtures[i].text, strlen(fixtures[i].text));
    }
    /* NCONF would block on it: the check must refuse it unread */
    if (named(data, size, "pipe", 4)) {
        snprintf(fifo, sizeof(fifo), "%s/pipe.conf", fuzz_temp_dir());
        if (mkfifo(fifo, 0600) != 0)
            fail();
    }
}

static void said(const char *err, size_t errlen)
{
    if (err[errlen] != CANARY)
        fail(); /* written past the size it was given */
    if (err[0] == '\0' || memchr(err, '\0', errlen) == NULL)
        fail();
}

/*
 * Every refusal starts "FILE line N: " or "FILE: ", FILE being the config
 * or the include the problem is in, which exists as a regular file (a
 * missing or odd include is named after the line that includes it).
 */
static void names_file(const char *err, const char *path)
{
    const char *colon = strstr(err, ": "), *line = strstr(err, " line ");
    const char *end = line != NULL && (colon == NULL || line < colon) ? line : colon;
    char who[4200];
    struct stat sb;

    if (end == NULL || end == err || (size_t)(end - err) >= sizeof(who))
        fail();
    memcpy(who, err, (size_t)(end - err));
    who[end - err] = '\0';
    if (strcmp(who, path) == 0)
        return;
    if (stat(who, &sb) != 0 || !S_ISREG(sb.st_mode))
        fail();
}

/* The last value of name in sk (NCONF keeps only the last of a key). */
static const char *value_of(STACK_OF(CONF_VALUE) * sk, const char *name)
{
    const char *v = NULL;
    int i;

    for (i = 0; sk != NULL && i < sk_CONF_VALUE_num(sk); i++)
        if (strcmp(sk_CONF_VALUE_value(sk, i)->name, name) == 0)
            v = sk_CONF_VALUE_value(sk, i)->value;
    return v;
}

static void same(const char *kept, const char *want)
{
    if ((kept == NULL) != (want == NULL) || (kept != NULL && strcmp(kept, want) != 0))
        fail();
}

static int known(const char *const *keys, const char *name)
{
    for (; *keys != NULL; keys++)
        if (strcmp(*keys, name) == 0)
            return 1;
    return 0;
}

/* What OpenSSL itself makes of the file the tool accepted. */
static void check_loaded(const tool_config *cfg, const char *path)
{
    static const char *const tokenmint_keys[] = {"audit_log", "audit", "profile", "state_dir",
                                                 NULL};
    static const char *const operator_keys[] = {"require", "passphrase", "name", "ca", NULL};
    CONF *conf = NCONF_new(NULL);
    STACK_OF(OPENSSL_CSTRING) *names = NULL;
    STACK_OF(CONF_VALUE) * tm, *op;
    const char *req, *audit_log, *audit;
    long line = -1;
    int i, j;

    if (cfg->path == NULL || strcmp(cfg->path, path) != 0)
        fail();
    if (conf == NULL || NCONF_load(conf, path, &line) <= 0)
        fail(); /* the tool read it a moment ago */
    names = NCONF_get_section_names(conf);
    if (names == NULL)
        fail();
    for (i = 0; i < sk_OPENSSL_CSTRING_num(names); i++) {
        const char *n = sk_OPENSSL_CSTRING_value(names, i);
        STACK_OF(CONF_VALUE) *sk = NCONF_get_section(conf, n);
        const char *const *keys = strcmp(n, "tokenmint") == 0  ? tokenmint_keys
                                  : strcmp(n, "operator") == 0 ? operator_keys
                                                               : NULL;
        if (strcmp(n, "default") == 0 && sk_CONF_VALUE_num(sk) == 0)
            continue; /* NCONF's own, empty: nothing stood before a section */
        if (keys == NULL)
            fail(); /* a section the check let through */
        for (j = 0; j < sk_CONF_VALUE_num(sk); j++)
            if (!known(keys, sk_CONF_VALUE_value(sk, j)->name))
                fail();
    }
    tm = NCONF_get_section(conf, "tokenmint");
    op = NCONF_get_section(conf, "operator");
    audit_log = value_of(tm, "audit_log");
    audit = value_of(tm, "audit");
    if (audit_log != NULL && audit != NULL)
        fail(); /* both names: refused by the check */
    same(cfg->audit, audit_log != NULL ? audit_log : audit);
    same(cfg->profile, value_of(tm, "profile"));
    same(cfg->state_dir, value_of(tm, "state_dir"));
    same(cfg->scrypt, value_of(op, "passphrase"));
    same(cfg->operator_name, value_of(op, "name"));
    same(cfg->operator_ca, value_of(op, "ca"));
    req = value_of(op, "require");
    if (req != NULL && strcmp(req, "yes") != 0 && strcmp(req, "true") != 0 &&
        strcmp(req, "no") != 0 && strcmp(req, "false") != 0)
        fail();
    if (cfg->require_operator != (req != NULL && (!strcmp(req, "yes") || !strcmp(req, "true"))))
        fail();
    sk_OPENSSL_CSTRING_free(names);
    NCONF_free(conf);
}

static void read_once(const char *path)
{
    char err[1024], shortmsg[9];
    tool_config cfg;
    int ok, again;

    memset(err, CANARY, sizeof(err));
    ok = tool_config_read(path, &cfg, err, sizeof(err) - 1);
    if (ok)
        check_loaded(&cfg, path);
    else {
        said(err, sizeof(err) - 1);
        names_file(err, path);
    }
    tool_config_clear(&cfg);

    /* a message cut short changes nothing else */
    memset(shortmsg, CANARY, sizeof(shortmsg));
    again = tool_config_read(path, &cfg, shortmsg, sizeof(shortmsg) - 1);
    if (again != ok)
        fail();
    if (!again)
        said(shortmsg, sizeof(shortmsg) - 1);
    tool_config_clear(&cfg);
    ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[4200], incdir[4200];
    int includes = memmem(data, size, ".include", 8) != NULL;

    if (size > 64 * 1024)
        return 0;
    snprintf(path, sizeof(path), "%s", fuzz_temp_write("tool.conf", data, size));
    snprintf(incdir, sizeof(incdir), "%s/incdir", fuzz_temp_dir());
    /* only an include can name them (and they cost most of the time) */
    if (includes)
        make_fixtures(data, size);
    /* relative includes are resolved against the working directory */
    home = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (home < 0 || chdir(fuzz_temp_dir()) != 0)
        fail();

    read_once(path);
    if (includes) {
        /* NCONF reads a relative include from there instead: the include
         * directory, or with an empty value the root (x.conf is /x.conf) */
        if (setenv("OPENSSL_CONF_INCLUDE", size % 2 ? incdir : "", 1) != 0)
            fail();
        read_once(path);
        unsetenv("OPENSSL_CONF_INCLUDE");
    }

    if (fchdir(home) != 0)
        fail();
    close(home);
    home = -1;
    fuzz_temp_done();
    return 0;
}
