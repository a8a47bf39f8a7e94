/*
 * tokenmint-shim.so: a TEST-ONLY PKCS#11 module. It wraps one backend module
 * and, on command, hides and shows tokens (simulated removal and insertion),
 * delays chosen functions and fails the Nth call of a chosen function.
 *
 * Configuration: "<path of this .so>.conf" when that file exists, else the
 * file named by $TM_SHIM_CONF. Reading the file beside the .so lets a test
 * copy the .so into a temporary directory once per backend, so that several
 * shims (each a separate copy, hence separate globals) wrap different
 * backends in one process. Lines are "key = value", '#' starts a comment:
 *
 *   module        = /usr/lib/softhsm/libsofthsm2.so   (required)
 *   softhsm2_conf = /tmp/x/softhsm2.conf  (SOFTHSM2_CONF during the backend's C_Initialize)
 *   control       = /tmp/x/ctl            (directory of control files)
 *   max_sessions  = 3     (a real token's session limit: C_OpenSession returns
 *                          CKR_SESSION_COUNT while 3 sessions of the process
 *                          are open on that slot)
 *   report_max_sessions = yes  (also report it as ulMaxSessionCount; with no,
 *                          the token reports CK_EFFECTIVELY_INFINITE and a
 *                          client learns the limit from CKR_SESSION_COUNT only)
 *
 * Relative paths are taken relative to the config file's directory.
 *
 * Control files, re-read whenever their inode, size or times change (one
 * stat(2) per file per call):
 *   hidden    one token serial per line: those tokens are "removed"
 *   latency   "C_GenerateKeyPair 300": milliseconds added before each call
 *             ("*" for every function)
 *   fail      "C_Sign 3 CKR_DEVICE_REMOVED [sticky]": counting from when the
 *             file was (re)loaded, the 3rd C_Sign returns that code without
 *             reaching the backend (sticky: and every later one). The code is
 *             a CKR_ name, hex (0x32) or decimal.
 *   flags     "SERIAL CKF_USER_PIN_FINAL_TRY [CKF_USER_PIN_COUNT_LOW ...]": those
 *             flags are added to the token's CK_TOKEN_INFO (names or hex), so a
 *             test can show what SoftHSM2 never reports.
 *
 * A hidden token's slot stays in C_GetSlotList(CK_FALSE) but not in
 * C_GetSlotList(CK_TRUE); C_GetSlotInfo clears CKF_TOKEN_PRESENT; slot calls
 * return CKR_TOKEN_NOT_PRESENT. Sessions open on it when it is hidden are
 * closed in the backend (as a real removal would log out) and from then on
 * return CKR_DEVICE_REMOVED. C_WaitForSlotEvent is passed through untouched:
 * SoftHSM2 lacks it, and the module under test must cope with that.
 *
 * Messages about bad config or control lines go to stderr (it is a test tool:
 * a silently ignored line would make a test pass for the wrong reason).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "p11c.h"

#define SHIM_EXPORT __attribute__((visibility("default")))

/* ---- function names ------------------------------------------------------ */

#define SHIM_FUNCS(X)                                                                              \
    X(C_Initialize)                                                                                \
    X(C_Finalize)                                                                                  \
    X(C_GetInfo)                                                                                   \
    X(C_GetFunctionList)                                                                           \
    X(C_GetSlotList)                                                                               \
    X(C_GetSlotInfo)                                                                               \
    X(C_GetTokenInfo)                                                                              \
    X(C_GetMechanismList)                                                                          \
    X(C_GetMechanismInfo)                                                                          \
    X(C_InitToken)                                                                                 \
    X(C_InitPIN)                                                                                   \
    X(C_SetPIN)                                                                                    \
    X(C_OpenSession)                                                                               \
    X(C_CloseSession)                                                                              \
    X(C_CloseAllSessions)                                                                          \
    X(C_GetSessionInfo)                                                                            \
    X(C_GetOperationState)                                                                         \
    X(C_SetOperationState)                                                                         \
    X(C_Login)                                                                                     \
    X(C_Logout)                                                                                    \
    X(C_CreateObject)                                                                              \
    X(C_CopyObject)                                                                                \
    X(C_DestroyObject)                                                                             \
    X(C_GetObjectSize)                                                                             \
    X(C_GetAttributeValue)                                                                         \
    X(C_SetAttributeValue)                                                                         \
    X(C_FindObjectsInit)                                                                           \
    X(C_FindObjects)                                                                               \
    X(C_FindObjectsFinal)                                                                          \
    X(C_EncryptInit)                                                                               \
    X(C_Encrypt)                                                                                   \
    X(C_EncryptUpdate)                                                                             \
    X(C_EncryptFinal)                                                                              \
    X(C_DecryptInit)                                                                               \
    X(C_Decrypt)                                                                                   \
    X(C_DecryptUpdate)                                                                             \
    X(C_DecryptFinal)                                                                              \
    X(C_DigestInit)                                                                                \
    X(C_Digest)                                                                                    \
    X(C_DigestUpdate)                                                                              \
    X(C_DigestKey)                                                                                 \
    X(C_DigestFinal)                                                                               \
    X(C_SignInit)                                                                                  \
    X(C_Sign)                                                                                      \
    X(C_SignUpdate)                                                                                \
    X(C_SignFinal)                                                                                 \
    X(C_SignRecoverInit)                                                                           \
    X(C_SignRecover)                                                                               \
    X(C_VerifyInit)                                                                                \
    X(C_Verify)                                                                                    \
    X(C_VerifyUpdate)                                                                              \
    X(C_VerifyFinal)                                                                               \
    X(C_VerifyRecoverInit)                                                                         \
    X(C_VerifyRecover)                                                                             \
    X(C_DigestEncryptUpdate)                                                                       \
    X(C_DecryptDigestUpdate)                                                                       \
    X(C_SignEncryptUpdate)                                                                         \
    X(C_DecryptVerifyUpdate)                                                                       \
    X(C_GenerateKey)                                                                               \
    X(C_GenerateKeyPair)                                                                           \
    X(C_WrapKey)                                                                                   \
    X(C_UnwrapKey)                                                                                 \
    X(C_DeriveKey)                                                                                 \
    X(C_SeedRandom)                                                                                \
    X(C_GenerateRandom)                                                                            \
    X(C_GetFunctionStatus)                                                                         \
    X(C_CancelFunction)                                                                            \
    X(C_WaitForSlotEvent)

#define SHIM_ENUM(n) F_##n,
enum { SHIM_FUNCS(SHIM_ENUM) F_COUNT };
#define SHIM_NAME(n) #n,
static const char *const func_names[F_COUNT] = {SHIM_FUNCS(SHIM_NAME)};

static int func_index(const char *name)
{
    int i;
    for (i = 0; i < F_COUNT; i++)
        if (strcmp(func_names[i], name) == 0)
            return i;
    return -1;
}

/* ---- CKR names ------------------------------------------------------------- */

#define R(x)                                                                                       \
    {                                                                                              \
#x, x                                                                                      \
    }
static const struct {
    const char *name;
    CK_RV rv;
} ckr_names[] = {
    R(CKR_OK),
    R(CKR_CANCEL),
    R(CKR_HOST_MEMORY),
    R(CKR_SLOT_ID_INVALID),
    R(CKR_GENERAL_ERROR),
    R(CKR_FUNCTION_FAILED),
    R(CKR_ARGUMENTS_BAD),
    R(CKR_NO_EVENT),
    R(CKR_NEED_TO_CREATE_THREADS),
    R(CKR_CANT_LOCK),
    R(CKR_ATTRIBUTE_READ_ONLY),
    R(CKR_ATTRIBUTE_SENSITIVE),
    R(CKR_ATTRIBUTE_TYPE_INVALID),
    R(CKR_ATTRIBUTE_VALUE_INVALID),
    R(CKR_ACTION_PROHIBITED),
    R(CKR_DATA_INVALID),
    R(CKR_DATA_LEN_RANGE),
    R(CKR_DEVICE_ERROR),
    R(CKR_DEVICE_MEMORY),
    R(CKR_DEVICE_REMOVED),
    R(CKR_ENCRYPTED_DATA_INVALID),
    R(CKR_ENCRYPTED_DATA_LEN_RANGE),
    R(CKR_FUNCTION_CANCELED),
    R(CKR_FUNCTION_NOT_PARALLEL),
    R(CKR_FUNCTION_NOT_SUPPORTED),
    R(CKR_KEY_HANDLE_INVALID),
    R(CKR_KEY_SIZE_RANGE),
    R(CKR_KEY_TYPE_INCONSISTENT),
    R(CKR_KEY_NOT_NEEDED),
    R(CKR_KEY_CHANGED),
    R(CKR_KEY_NEEDED),
    R(CKR_KEY_INDIGESTIBLE),
    R(CKR_KEY_FUNCTION_NOT_PERMITTED),
    R(CKR_KEY_NOT_WRAPPABLE),
    R(CKR_KEY_UNEXTRACTABLE),
    R(CKR_MECHANISM_INVALID),
    R(CKR_MECHANISM_PARAM_INVALID),
    R(CKR_OBJECT_HANDLE_INVALID),
    R(CKR_OPERATION_ACTIVE),
    R(CKR_OPERATION_NOT_INITIALIZED),
    R(CKR_PIN_INCORRECT),
    R(CKR_PIN_INVALID),
    R(CKR_PIN_LEN_RANGE),
    R(CKR_PIN_EXPIRED),
    R(CKR_PIN_LOCKED),
    R(CKR_SESSION_CLOSED),
    R(CKR_SESSION_COUNT),
    R(CKR_SESSION_HANDLE_INVALID),
    R(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    R(CKR_SESSION_READ_ONLY),
    R(CKR_SESSION_EXISTS),
    R(CKR_SESSION_READ_ONLY_EXISTS),
    R(CKR_SESSION_READ_WRITE_SO_EXISTS),
    R(CKR_SIGNATURE_INVALID),
    R(CKR_SIGNATURE_LEN_RANGE),
    R(CKR_TEMPLATE_INCOMPLETE),
    R(CKR_TEMPLATE_INCONSISTENT),
    R(CKR_TOKEN_NOT_PRESENT),
    R(CKR_TOKEN_NOT_RECOGNIZED),
    R(CKR_TOKEN_WRITE_PROTECTED),
    R(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
    R(CKR_UNWRAPPING_KEY_SIZE_RANGE),
    R(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
    R(CKR_USER_ALREADY_LOGGED_IN),
    R(CKR_USER_NOT_LOGGED_IN),
    R(CKR_USER_PIN_NOT_INITIALIZED),
    R(CKR_USER_TYPE_INVALID),
    R(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    R(CKR_USER_TOO_MANY_TYPES),
    R(CKR_WRAPPED_KEY_INVALID),
    R(CKR_WRAPPED_KEY_LEN_RANGE),
    R(CKR_WRAPPING_KEY_HANDLE_INVALID),
    R(CKR_WRAPPING_KEY_SIZE_RANGE),
    R(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
    R(CKR_RANDOM_SEED_NOT_SUPPORTED),
    R(CKR_RANDOM_NO_RNG),
    R(CKR_DOMAIN_PARAMS_INVALID),
    R(CKR_CURVE_NOT_SUPPORTED),
    R(CKR_BUFFER_TOO_SMALL),
    R(CKR_SAVED_STATE_INVALID),
    R(CKR_INFORMATION_SENSITIVE),
    R(CKR_STATE_UNSAVEABLE),
    R(CKR_CRYPTOKI_NOT_INITIALIZED),
    R(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    R(CKR_MUTEX_BAD),
    R(CKR_MUTEX_NOT_LOCKED),
    R(CKR_NEW_PIN_MODE),
    R(CKR_NEXT_OTP),
    R(CKR_EXCEEDED_MAX_ITERATIONS),
    R(CKR_FIPS_SELF_TEST_FAILED),
    R(CKR_LIBRARY_LOAD_FAILED),
    R(CKR_PIN_TOO_WEAK),
    R(CKR_PUBLIC_KEY_INVALID),
    R(CKR_FUNCTION_REJECTED),
};
#undef R

static int parse_ckr(const char *text, CK_RV *out)
{
    size_t i;
    char *end;
    unsigned long v;

    for (i = 0; i < sizeof(ckr_names) / sizeof(ckr_names[0]); i++) {
        if (strcasecmp(ckr_names[i].name, text) == 0) {
            *out = ckr_names[i].rv;
            return 1;
        }
    }
    errno = 0;
    v = strtoul(text, &end, 0); /* 0x32 or 50 */
    if (errno != 0 || end == text || *end != '\0')
        return 0;
    *out = v;
    return 1;
}

/* ---- state ------------------------------------------------------------------ */

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tokenmint-shim: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* TOKENMINT_DEBUG: say when a rule fires, so a failing test shows why. */
static void debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void debug(const char *fmt, ...)
{
    const char *v = getenv("TOKENMINT_DEBUG");
    va_list ap;
    if (v == NULL || v[0] == '\0' || strcmp(v, "0") == 0)
        return;
    va_start(ap, fmt);
    fputs("tokenmint-shim: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

typedef struct ctl_file {
    const char *name;
    int present;
    struct stat st;
} ctl_file;

typedef struct fail_rule {
    int func;
    unsigned long nth;
    unsigned long seen;
    CK_RV rv;
    int sticky;
} fail_rule;

typedef struct slot_entry {
    CK_SLOT_ID slot;
    char serial[17]; /* "" when no token */
} slot_entry;

typedef struct sess_entry {
    CK_SESSION_HANDLE h;
    CK_SLOT_ID slot;
} sess_entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *backend_dl;
static char backend_path[PATH_MAX];
static CK_FUNCTION_LIST *be; /* non-NULL while initialised */

static struct {
    char module[PATH_MAX];
    char softhsm2_conf[PATH_MAX];
    char control[PATH_MAX];
    unsigned long max_sessions; /* 0: the backend's own limit */
    int report_max_sessions;
} conf;

static ctl_file ctl_hidden = {"hidden", 0, {0}};
static ctl_file ctl_latency = {"latency", 0, {0}};
static ctl_file ctl_fail = {"fail", 0, {0}};
static ctl_file ctl_flags = {"flags", 0, {0}};

typedef struct flag_rule {
    char serial[17];
    CK_FLAGS add;
} flag_rule;
static flag_rule *flag_rules;
static size_t n_flag_rules;

static char (*hidden)[17];
static size_t n_hidden;
static long latency_ms[F_COUNT];
static long latency_all_ms;
static fail_rule *fails;
static size_t n_fails;

static slot_entry *slots;
static size_t n_slots;
static sess_entry *open_sess;
static size_t n_open;
static sess_entry *removed_sess;
static size_t n_removed;

/* ---- config ------------------------------------------------------------------ */

static char *trim(char *s)
{
    char *e;
    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

static void resolve(const char *conf_dir, const char *value, char *out, size_t outlen)
{
    if (value[0] == '/' || conf_dir[0] == '\0')
        snprintf(out, outlen, "%s", value);
    else
        snprintf(out, outlen, "%s/%s", conf_dir, value);
}

static int find_conf(char *path, size_t len)
{
    Dl_info info;
    const char *env;

    if (dladdr((void *)find_conf, &info) != 0 && info.dli_fname != NULL) {
        snprintf(path, len, "%s.conf", info.dli_fname);
        if (access(path, R_OK) == 0)
            return 1;
    }
    env = getenv("TM_SHIM_CONF");
    if (env != NULL && env[0] != '\0') {
        snprintf(path, len, "%s", env);
        return 1;
    }
    warn("no config: neither %s nor $TM_SHIM_CONF", path);
    return 0;
}

static int load_conf(void)
{
    char path[PATH_MAX], dir[PATH_MAX], line[2 * PATH_MAX];
    FILE *f;
    int lineno = 0, ok = 1;
    char *slash;

    memset(&conf, 0, sizeof(conf));
    if (!find_conf(path, sizeof(path)))
        return 0;
    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
    else
        dir[0] = '\0';

    f = fopen(path, "re");
    if (f == NULL) {
        warn("%s: %s", path, strerror(errno));
        return 0;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *key, *value, *eq, *hash;
        lineno++;
        hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        key = trim(line);
        if (*key == '\0')
            continue;
        eq = strchr(key, '=');
        if (eq == NULL) {
            warn("%s:%d: expected \"key = value\"", path, lineno);
            ok = 0;
            continue;
        }
        *eq = '\0';
        key = trim(key);
        value = trim(eq + 1);
        if (strcmp(key, "module") == 0)
            resolve(dir, value, conf.module, sizeof(conf.module));
        else if (strcmp(key, "softhsm2_conf") == 0)
            resolve(dir, value, conf.softhsm2_conf, sizeof(conf.softhsm2_conf));
        else if (strcmp(key, "control") == 0)
            resolve(dir, value, conf.control, sizeof(conf.control));
        else if (strcmp(key, "max_sessions") == 0) {
            char *end;
            conf.max_sessions = strtoul(value, &end, 10);
            if (*end != '\0' || conf.max_sessions == 0) {
                warn("%s:%d: max_sessions wants a number above 0", path, lineno);
                ok = 0;
            }
        } else if (strcmp(key, "report_max_sessions") == 0) {
            conf.report_max_sessions = strcmp(value, "yes") == 0;
            if (!conf.report_max_sessions && strcmp(value, "no") != 0) {
                warn("%s:%d: report_max_sessions wants yes or no", path, lineno);
                ok = 0;
            }
        } else {
            warn("%s:%d: unknown key \"%s\" (module, softhsm2_conf, control, max_sessions, "
                 "report_max_sessions)",
                 path, lineno, key);
            ok = 0;
        }
    }
    fclose(f);
    if (ok && conf.module[0] == '\0') {
        warn("%s: no \"module = PATH\" line", path);
        ok = 0;
    }
    return ok;
}

/* ---- control files --------------------------------------------------------------- */

/* Returns 1 when the file changed since last seen (appeared, vanished or rewritten). */
static int ctl_changed(ctl_file *c, char *path, size_t len)
{
    struct stat st;
    int present;

    if (conf.control[0] == '\0')
        return 0;
    snprintf(path, len, "%s/%s", conf.control, c->name);
    present = stat(path, &st) == 0;
    if (!present && !c->present)
        return 0;
    if (present && c->present && st.st_ino == c->st.st_ino && st.st_dev == c->st.st_dev &&
        st.st_size == c->st.st_size && st.st_mtim.tv_sec == c->st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == c->st.st_mtim.tv_nsec && st.st_ctim.tv_sec == c->st.st_ctim.tv_sec &&
        st.st_ctim.tv_nsec == c->st.st_ctim.tv_nsec)
        return 0;
    c->present = present;
    if (present)
        c->st = st;
    return 1;
}

/* Calls fn for each non-empty, non-comment line of the file. */
static void ctl_read(const char *path, void (*fn)(char *line, const char *path, int lineno))
{
    char line[512];
    int lineno = 0;
    FILE *f = fopen(path, "re");

    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *hash = strchr(line, '#');
        char *t;
        lineno++;
        if (hash != NULL)
            *hash = '\0';
        t = trim(line);
        if (*t != '\0')
            fn(t, path, lineno);
    }
    fclose(f);
}

static void hidden_line(char *line, const char *path, int lineno)
{
    void *grown;
    if (strlen(line) > 16) {
        warn("%s:%d: \"%s\" is longer than a 16-byte token serial", path, lineno, line);
        return;
    }
    grown = realloc(hidden, (n_hidden + 1) * sizeof(*hidden));
    if (grown == NULL)
        return;
    hidden = grown;
    snprintf(hidden[n_hidden++], sizeof(hidden[0]), "%s", line);
}

static void latency_line(char *line, const char *path, int lineno)
{
    char name[64];
    long ms;
    int f;

    if (sscanf(line, "%63s %ld", name, &ms) != 2 || ms < 0) {
        warn("%s:%d: expected \"C_Function MILLISECONDS\"", path, lineno);
        return;
    }
    if (strcmp(name, "*") == 0) {
        latency_all_ms = ms;
        return;
    }
    f = func_index(name);
    if (f < 0) {
        warn("%s:%d: unknown function \"%s\"", path, lineno, name);
        return;
    }
    latency_ms[f] = ms;
}

static void fail_line(char *line, const char *path, int lineno)
{
    char name[64], code[64], extra[16] = "";
    unsigned long nth;
    CK_RV rv;
    int f, n;
    void *grown;

    n = sscanf(line, "%63s %lu %63s %15s", name, &nth, code, extra);
    if (n < 3 || nth == 0 || (n == 4 && strcmp(extra, "sticky") != 0)) {
        warn("%s:%d: expected \"C_Function N CKR_CODE [sticky]\" with N >= 1", path, lineno);
        return;
    }
    f = func_index(name);
    if (f < 0) {
        warn("%s:%d: unknown function \"%s\"", path, lineno, name);
        return;
    }
    if (!parse_ckr(code, &rv)) {
        warn("%s:%d: unknown return code \"%s\"", path, lineno, code);
        return;
    }
    grown = realloc(fails, (n_fails + 1) * sizeof(*fails));
    if (grown == NULL)
        return;
    fails = grown;
    fails[n_fails].func = f;
    fails[n_fails].nth = nth;
    fails[n_fails].seen = 0;
    fails[n_fails].rv = rv;
    fails[n_fails].sticky = n == 4;
    n_fails++;
}

static void flags_line(char *line, const char *path, int lineno)
{
    static const struct {
        const char *name;
        CK_FLAGS v;
    } names[] = {
        {"CKF_USER_PIN_COUNT_LOW", CKF_USER_PIN_COUNT_LOW},
        {"CKF_USER_PIN_FINAL_TRY", CKF_USER_PIN_FINAL_TRY},
        {"CKF_USER_PIN_LOCKED", CKF_USER_PIN_LOCKED},
        {"CKF_PROTECTED_AUTHENTICATION_PATH", CKF_PROTECTED_AUTHENTICATION_PATH},
    };
    char *save = NULL, *serial = strtok_r(line, " \t", &save), *w;
    flag_rule r;
    void *grown;
    size_t i;

    memset(&r, 0, sizeof(r));
    if (serial == NULL || strlen(serial) > 16) {
        warn("%s:%d: expected \"SERIAL FLAG...\"", path, lineno);
        return;
    }
    snprintf(r.serial, sizeof(r.serial), "%s", serial);
    while ((w = strtok_r(NULL, " \t", &save)) != NULL) {
        char *end;
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (strcmp(w, names[i].name) == 0)
                break;
        if (i < sizeof(names) / sizeof(names[0])) {
            r.add |= names[i].v;
            continue;
        }
        r.add |= (CK_FLAGS)strtoul(w, &end, 0);
        if (*end != '\0') {
            warn("%s:%d: unknown flag \"%s\"", path, lineno, w);
            return;
        }
    }
    grown = realloc(flag_rules, (n_flag_rules + 1) * sizeof(*flag_rules));
    if (grown == NULL)
        return;
    flag_rules = grown;
    flag_rules[n_flag_rules++] = r;
}

static void serial_of(const CK_TOKEN_INFO *ti, char out[17])
{
    size_t n = sizeof(ti->serialNumber);
    while (n > 0 && (ti->serialNumber[n - 1] == ' ' || ti->serialNumber[n - 1] == '\0'))
        n--;
    memcpy(out, ti->serialNumber, n);
    out[n] = '\0';
}

/* Lock held. Slot IDs and serials of the backend, refreshed when unknown. */
static void refresh_slots(void)
{
    CK_ULONG n = 0, i;
    CK_SLOT_ID *ids = NULL;

    n_slots = 0;
    if (be == NULL || be->C_GetSlotList(CK_FALSE, NULL, &n) != CKR_OK || n == 0)
        return;
    ids = calloc(n, sizeof(*ids));
    if (ids == NULL || be->C_GetSlotList(CK_FALSE, ids, &n) != CKR_OK) {
        free(ids);
        return;
    }
    free(slots);
    slots = calloc(n, sizeof(*slots));
    if (slots == NULL) {
        free(ids);
        return;
    }
    for (i = 0; i < n; i++) {
        CK_SLOT_INFO si;
        CK_TOKEN_INFO ti;
        slots[i].slot = ids[i];
        slots[i].serial[0] = '\0';
        if (be->C_GetSlotInfo(ids[i], &si) == CKR_OK && (si.flags & CKF_TOKEN_PRESENT) &&
            be->C_GetTokenInfo(ids[i], &ti) == CKR_OK)
            serial_of(&ti, slots[i].serial);
    }
    n_slots = n;
    free(ids);
}

static int serial_hidden(const char *serial)
{
    size_t i;
    if (serial[0] == '\0')
        return 0;
    for (i = 0; i < n_hidden; i++)
        if (strcmp(hidden[i], serial) == 0)
            return 1;
    return 0;
}

static const slot_entry *find_slot(CK_SLOT_ID id)
{
    size_t i;
    for (i = 0; i < n_slots; i++)
        if (slots[i].slot == id)
            return &slots[i];
    return NULL;
}

/* Lock held. */
static int slot_hidden(CK_SLOT_ID id)
{
    const slot_entry *s;
    if (n_hidden == 0)
        return 0;
    s = find_slot(id);
    if (s == NULL) {
        refresh_slots();
        s = find_slot(id);
    }
    return s != NULL && serial_hidden(s->serial);
}

static void sess_add(sess_entry **arr, size_t *n, CK_SESSION_HANDLE h, CK_SLOT_ID slot)
{
    void *grown = realloc(*arr, (*n + 1) * sizeof(**arr));
    if (grown == NULL)
        return;
    *arr = grown;
    (*arr)[*n].h = h;
    (*arr)[*n].slot = slot;
    (*n)++;
}

static int sess_remove(sess_entry *arr, size_t *n, CK_SESSION_HANDLE h)
{
    size_t i;
    for (i = 0; i < *n; i++) {
        if (arr[i].h == h) {
            arr[i] = arr[--(*n)];
            return 1;
        }
    }
    return 0;
}

static int sess_find(const sess_entry *arr, size_t n, CK_SESSION_HANDLE h)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (arr[i].h == h)
            return 1;
    return 0;
}

/* Lock held: a token just hidden loses its sessions, as on a real removal. */
static void remove_sessions_of_hidden(void)
{
    size_t i = 0;
    while (i < n_open) {
        if (slot_hidden(open_sess[i].slot)) {
            debug("session 0x%lx removed with its token", (unsigned long)open_sess[i].h);
            be->C_CloseSession(open_sess[i].h);
            sess_add(&removed_sess, &n_removed, open_sess[i].h, open_sess[i].slot);
            open_sess[i] = open_sess[--n_open];
        } else {
            i++;
        }
    }
}

/* Lock held. */
static void reload_control(void)
{
    char path[PATH_MAX + 16];

    if (ctl_changed(&ctl_hidden, path, sizeof(path))) {
        free(hidden);
        hidden = NULL;
        n_hidden = 0;
        if (ctl_hidden.present)
            ctl_read(path, hidden_line);
        debug("%zu token(s) hidden", n_hidden);
        if (n_hidden > 0) {
            refresh_slots();
            remove_sessions_of_hidden();
        }
    }
    if (ctl_changed(&ctl_latency, path, sizeof(path))) {
        memset(latency_ms, 0, sizeof(latency_ms));
        latency_all_ms = 0;
        if (ctl_latency.present)
            ctl_read(path, latency_line);
    }
    if (ctl_changed(&ctl_flags, path, sizeof(path))) {
        free(flag_rules);
        flag_rules = NULL;
        n_flag_rules = 0;
        if (ctl_flags.present)
            ctl_read(path, flags_line);
    }
    if (ctl_changed(&ctl_fail, path, sizeof(path))) {
        free(fails);
        fails = NULL;
        n_fails = 0;
        if (ctl_fail.present)
            ctl_read(path, fail_line);
    }
}

/* ---- the common preamble ------------------------------------------------------------ */

enum kind { K_NONE, K_SLOT, K_SESSION };

/*
 * Runs before every forwarded call: picks up control file changes, sleeps
 * the configured latency, then decides whether the call fails here.
 */
static CK_RV pre(int func, enum kind kind, CK_ULONG id)
{
    CK_RV rv = CKR_OK;
    long ms;
    size_t i;

    pthread_mutex_lock(&lock);
    if (be == NULL) {
        pthread_mutex_unlock(&lock);
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    }
    reload_control();
    ms = latency_ms[func] > 0 ? latency_ms[func] : latency_all_ms;
    for (i = 0; i < n_fails; i++) {
        fail_rule *r = &fails[i];
        if (r->func != func)
            continue;
        r->seen++;
        if (r->seen == r->nth || (r->sticky && r->seen > r->nth)) {
            rv = r->rv;
            debug("%s call %lu fails with 0x%lx (fail rule)", func_names[func], r->seen,
                  (unsigned long)rv);
        }
    }
    if (rv == CKR_OK && kind == K_SLOT && slot_hidden(id))
        rv = CKR_TOKEN_NOT_PRESENT;
    if (rv == CKR_OK && kind == K_SESSION && n_removed > 0 &&
        sess_find(removed_sess, n_removed, id))
        rv = CKR_DEVICE_REMOVED;
    pthread_mutex_unlock(&lock);

    if (ms > 0) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    return rv;
}

#define PRE(func, kind, id)                                                                        \
    do {                                                                                           \
        CK_RV pre_rv_ = pre(F_##func, kind, id);                                                   \
        if (pre_rv_ != CKR_OK)                                                                     \
            return pre_rv_;                                                                        \
    } while (0)

/* ---- general ---------------------------------------------------------------------- */

static CK_FUNCTION_LIST shim_list;

static CK_RV shim_C_Initialize(CK_VOID_PTR args)
{
    CK_C_GetFunctionList get_list;
    CK_FUNCTION_LIST *list = NULL;
    char *saved_env = NULL;
    CK_RV rv = CKR_GENERAL_ERROR;
    size_t i;

    pthread_mutex_lock(&lock);
    if (be != NULL) {
        rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
        goto out;
    }
    if (!load_conf())
        goto out;

    /* The backend stays loaded across C_Finalize: some modules do not survive
     * being unloaded and reloaded in one process. */
    if (backend_dl == NULL || strcmp(backend_path, conf.module) != 0) {
        if (backend_dl != NULL)
            dlclose(backend_dl);
        backend_dl = dlopen(conf.module, RTLD_NOW | RTLD_LOCAL);
        if (backend_dl == NULL) {
            warn("cannot load backend %s: %s", conf.module, dlerror());
            goto out;
        }
        snprintf(backend_path, sizeof(backend_path), "%s", conf.module);
    }
    get_list = (CK_C_GetFunctionList)dlsym(backend_dl, "C_GetFunctionList");
    if (get_list == NULL || get_list(&list) != CKR_OK || list == NULL) {
        warn("backend %s has no usable C_GetFunctionList", conf.module);
        goto out;
    }

    /* Fresh state: nothing from an earlier C_Initialize carries over, and a
     * fail rule counts from this run's start. */
    ctl_hidden.present = ctl_latency.present = ctl_fail.present = ctl_flags.present = 0;
    free(flag_rules);
    flag_rules = NULL;
    n_flag_rules = 0;
    free(hidden);
    hidden = NULL;
    n_hidden = 0;
    free(fails);
    fails = NULL;
    n_fails = 0;
    memset(latency_ms, 0, sizeof(latency_ms));
    latency_all_ms = 0;
    n_open = n_removed = n_slots = 0;
    be = list; /* the backend is not initialised yet: slot lookups just fail */
    reload_control();
    for (i = 0; i < n_fails; i++) {
        if (fails[i].func == F_C_Initialize && ++fails[i].seen == fails[i].nth) {
            rv = fails[i].rv;
            be = NULL;
            goto out;
        }
    }

    if (conf.softhsm2_conf[0] != '\0') {
        const char *old = getenv("SOFTHSM2_CONF");
        saved_env = old != NULL ? strdup(old) : NULL;
        setenv("SOFTHSM2_CONF", conf.softhsm2_conf, 1);
    }
    rv = list->C_Initialize(args);
    if (conf.softhsm2_conf[0] != '\0') {
        if (saved_env != NULL)
            setenv("SOFTHSM2_CONF", saved_env, 1);
        else
            unsetenv("SOFTHSM2_CONF");
    }
    if (rv != CKR_OK) {
        be = NULL;
        goto out;
    }
    refresh_slots();

out:
    free(saved_env);
    pthread_mutex_unlock(&lock);
    return rv;
}

static CK_RV shim_C_Finalize(CK_VOID_PTR reserved)
{
    CK_RV rv;
    PRE(C_Finalize, K_NONE, 0);
    pthread_mutex_lock(&lock);
    rv = be->C_Finalize(reserved);
    if (rv == CKR_OK) {
        be = NULL;
        n_open = n_removed = n_slots = 0;
    }
    pthread_mutex_unlock(&lock);
    return rv;
}

static CK_RV shim_C_GetInfo(CK_INFO_PTR info)
{
    PRE(C_GetInfo, K_NONE, 0);
    return be->C_GetInfo(info);
}

static CK_RV shim_C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    if (out == NULL)
        return CKR_ARGUMENTS_BAD;
    *out = &shim_list;
    return CKR_OK;
}

SHIM_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    return shim_C_GetFunctionList(out);
}

/* ---- slots and tokens ------------------------------------------------------------------ */

static CK_RV shim_C_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    CK_SLOT_ID *all = NULL;
    CK_ULONG n = 0, kept = 0, i;
    CK_RV rv;
    int any_hidden;

    PRE(C_GetSlotList, K_NONE, 0);
    pthread_mutex_lock(&lock);
    any_hidden = n_hidden > 0;
    pthread_mutex_unlock(&lock);
    if (!present || !any_hidden)
        return be->C_GetSlotList(present, list, count);
    if (count == NULL)
        return CKR_ARGUMENTS_BAD;

    do {
        free(all);
        all = NULL;
        rv = be->C_GetSlotList(CK_TRUE, NULL, &n);
        if (rv != CKR_OK)
            return rv;
        all = calloc(n + 1, sizeof(*all));
        if (all == NULL)
            return CKR_HOST_MEMORY;
        rv = be->C_GetSlotList(CK_TRUE, all, &n);
    } while (rv == CKR_BUFFER_TOO_SMALL);
    if (rv != CKR_OK)
        goto out;

    pthread_mutex_lock(&lock);
    for (i = 0; i < n; i++)
        if (!slot_hidden(all[i]))
            all[kept++] = all[i];
    pthread_mutex_unlock(&lock);

    if (list != NULL && *count < kept)
        rv = CKR_BUFFER_TOO_SMALL;
    else if (list != NULL)
        memcpy(list, all, kept * sizeof(*all));
    *count = kept;
out:
    free(all);
    return rv;
}

static CK_RV shim_C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    CK_RV rv;
    PRE(C_GetSlotInfo, K_NONE, 0);
    rv = be->C_GetSlotInfo(slot, info);
    if (rv == CKR_OK) {
        pthread_mutex_lock(&lock);
        if (slot_hidden(slot))
            info->flags &= ~(CK_FLAGS)CKF_TOKEN_PRESENT;
        pthread_mutex_unlock(&lock);
    }
    return rv;
}

static CK_RV shim_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    CK_RV rv;
    PRE(C_GetTokenInfo, K_SLOT, slot);
    rv = be->C_GetTokenInfo(slot, info);
    if (rv == CKR_OK && info != NULL) {
        char serial[17];
        size_t i;
        serial_of(info, serial);
        pthread_mutex_lock(&lock);
        for (i = 0; i < n_flag_rules; i++)
            if (strcmp(flag_rules[i].serial, serial) == 0)
                info->flags |= flag_rules[i].add;
        if (conf.max_sessions > 0)
            info->ulMaxSessionCount =
                conf.report_max_sessions ? conf.max_sessions : CK_EFFECTIVELY_INFINITE;
        pthread_mutex_unlock(&lock);
    }
    return rv;
}

static CK_RV shim_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved)
{
    PRE(C_WaitForSlotEvent, K_NONE, 0);
    return be->C_WaitForSlotEvent(flags, slot, reserved);
}

static CK_RV shim_C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list,
                                     CK_ULONG_PTR count)
{
    PRE(C_GetMechanismList, K_SLOT, slot);
    return be->C_GetMechanismList(slot, list, count);
}

static CK_RV shim_C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                                     CK_MECHANISM_INFO_PTR info)
{
    PRE(C_GetMechanismInfo, K_SLOT, slot);
    return be->C_GetMechanismInfo(slot, type, info);
}

static CK_RV shim_C_InitToken(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG len,
                              CK_UTF8CHAR_PTR label)
{
    CK_RV rv;
    PRE(C_InitToken, K_SLOT, slot);
    rv = be->C_InitToken(slot, pin, len, label);
    if (rv == CKR_OK) { /* the slot's serial may have changed */
        pthread_mutex_lock(&lock);
        refresh_slots();
        pthread_mutex_unlock(&lock);
    }
    return rv;
}

/* ---- sessions ------------------------------------------------------------------------- */

static CK_RV shim_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                                CK_SESSION_HANDLE_PTR session)
{
    CK_RV rv;
    PRE(C_OpenSession, K_SLOT, slot);
    if (conf.max_sessions > 0) {
        /* counted and opened under the lock, so threads cannot overshoot */
        size_t i, on_slot = 0;
        pthread_mutex_lock(&lock);
        for (i = 0; i < n_open; i++)
            on_slot += open_sess[i].slot == slot;
        rv = on_slot >= conf.max_sessions ? CKR_SESSION_COUNT
                                          : be->C_OpenSession(slot, flags, app, notify, session);
        if (rv == CKR_OK) {
            sess_remove(removed_sess, &n_removed, *session);
            sess_add(&open_sess, &n_open, *session, slot);
        }
        pthread_mutex_unlock(&lock);
        return rv;
    }
    rv = be->C_OpenSession(slot, flags, app, notify, session);
    if (rv == CKR_OK) {
        pthread_mutex_lock(&lock);
        /* a backend may hand out a handle we remember as removed */
        sess_remove(removed_sess, &n_removed, *session);
        sess_add(&open_sess, &n_open, *session, slot);
        pthread_mutex_unlock(&lock);
    }
    return rv;
}

static CK_RV shim_C_CloseSession(CK_SESSION_HANDLE session)
{
    CK_RV rv;
    PRE(C_CloseSession, K_NONE, 0);
    pthread_mutex_lock(&lock);
    if (sess_remove(removed_sess, &n_removed, session)) {
        pthread_mutex_unlock(&lock);
        return CKR_DEVICE_REMOVED;
    }
    pthread_mutex_unlock(&lock);
    rv = be->C_CloseSession(session);
    if (rv == CKR_OK) {
        pthread_mutex_lock(&lock);
        sess_remove(open_sess, &n_open, session);
        pthread_mutex_unlock(&lock);
    }
    return rv;
}

static void forget_slot_sessions(sess_entry *arr, size_t *n, CK_SLOT_ID slot)
{
    size_t i = 0;
    while (i < *n) {
        if (arr[i].slot == slot)
            arr[i] = arr[--(*n)];
        else
            i++;
    }
}

static CK_RV shim_C_CloseAllSessions(CK_SLOT_ID slot)
{
    CK_RV rv;
    int is_hidden;

    PRE(C_CloseAllSessions, K_NONE, 0);
    pthread_mutex_lock(&lock);
    is_hidden = slot_hidden(slot);
    forget_slot_sessions(removed_sess, &n_removed, slot);
    pthread_mutex_unlock(&lock);
    if (is_hidden) /* its sessions went with the token */
        return CKR_OK;
    rv = be->C_CloseAllSessions(slot);
    if (rv == CKR_OK) {
        pthread_mutex_lock(&lock);
        forget_slot_sessions(open_sess, &n_open, slot);
        pthread_mutex_unlock(&lock);
    }
    return rv;
}

/* Everything below takes a session as its first argument and only forwards. */
#define SESSION_FN(name, params, args)                                                             \
    static CK_RV shim_##name params                                                                \
    {                                                                                              \
        PRE(name, K_SESSION, s);                                                                   \
        return be->name args;                                                                      \
    }

typedef CK_SESSION_HANDLE SH;
typedef CK_OBJECT_HANDLE OH;
typedef CK_BYTE_PTR BP;
typedef CK_ULONG UL;
typedef CK_ULONG_PTR ULP;
typedef CK_MECHANISM_PTR MP;
typedef CK_ATTRIBUTE_PTR AP;

SESSION_FN(C_GetSessionInfo, (SH s, CK_SESSION_INFO_PTR i), (s, i))
SESSION_FN(C_InitPIN, (SH s, BP p, UL l), (s, p, l))
SESSION_FN(C_SetPIN, (SH s, BP o, UL ol, BP n, UL nl), (s, o, ol, n, nl))
SESSION_FN(C_GetOperationState, (SH s, BP st, ULP l), (s, st, l))
SESSION_FN(C_SetOperationState, (SH s, BP st, UL l, OH e, OH a), (s, st, l, e, a))
SESSION_FN(C_Login, (SH s, CK_USER_TYPE u, BP p, UL l), (s, u, p, l))
SESSION_FN(C_Logout, (SH s), (s))
SESSION_FN(C_CreateObject, (SH s, AP t, UL n, CK_OBJECT_HANDLE_PTR o), (s, t, n, o))
SESSION_FN(C_CopyObject, (SH s, OH o, AP t, UL n, CK_OBJECT_HANDLE_PTR no), (s, o, t, n, no))
SESSION_FN(C_DestroyObject, (SH s, OH o), (s, o))
SESSION_FN(C_GetObjectSize, (SH s, OH o, ULP z), (s, o, z))
SESSION_FN(C_GetAttributeValue, (SH s, OH o, AP t, UL n), (s, o, t, n))
SESSION_FN(C_SetAttributeValue, (SH s, OH o, AP t, UL n), (s, o, t, n))
SESSION_FN(C_FindObjectsInit, (SH s, AP t, UL n), (s, t, n))
SESSION_FN(C_FindObjects, (SH s, CK_OBJECT_HANDLE_PTR o, UL m, ULP n), (s, o, m, n))
SESSION_FN(C_FindObjectsFinal, (SH s), (s))
SESSION_FN(C_EncryptInit, (SH s, MP m, OH k), (s, m, k))
SESSION_FN(C_Encrypt, (SH s, BP d, UL dl, BP o, ULP ol), (s, d, dl, o, ol))
SESSION_FN(C_EncryptUpdate, (SH s, BP d, UL dl, BP o, ULP ol), (s, d, dl, o, ol))
SESSION_FN(C_EncryptFinal, (SH s, BP o, ULP ol), (s, o, ol))
SESSION_FN(C_DecryptInit, (SH s, MP m, OH k), (s, m, k))
SESSION_FN(C_Decrypt, (SH s, BP d, UL dl, BP o, ULP ol), (s, d, dl, o, ol))
SESSION_FN(C_DecryptUpdate, (SH s, BP d, UL dl, BP o, ULP ol), (s, d, dl, o, ol))
SESSION_FN(C_DecryptFinal, (SH s, BP o, ULP ol), (s, o, ol))
SESSION_FN(C_DigestInit, (SH s, MP m), (s, m))
SESSION_FN(C_Digest, (SH s, BP d, UL dl, BP o, ULP ol), (s, d, dl, o, ol))
SESSION_FN(C_DigestUpdate, (SH s, BP d, UL dl), (s, d, dl))
SESSION_FN(C_DigestKey, (SH s, OH k), (s, k))
SESSION_FN(C_DigestFinal, (SH s, BP o, ULP ol), (s, o, ol))
SESSION_FN(C_SignInit, (SH s, MP m, OH k), (s, m, k))
SESSION_FN(C_Sign, (SH s, BP d, UL dl, BP o, ULP ol), (s, d, dl, o, ol))
SESSION_FN(C_SignUpdate, (SH s, BP d, UL dl), (s, d, dl))
SESSION_FN(C_SignFinal, (SH s, BP o, ULP ol), (s, o, ol))
SESSION_FN(C_SignRecoverInit, (SH s, MP m, OH k), (s, m, k))
SESSION_FN(C_SignRecover, (SH s, BP d, UL dl, BP o, ULP ol), (s, d, dl, o, ol))
SESSION_FN(C_VerifyInit, (SH s, MP m, OH k), (s, m, k))
SESSION_FN(C_Verify, (SH s, BP d, UL dl, BP g, UL gl), (s, d, dl, g, gl))
SESSION_FN(C_VerifyUpdate, (SH s, BP d, UL dl), (s, d, dl))
SESSION_FN(C_VerifyFinal, (SH s, BP g, UL gl), (s, g, gl))
SESSION_FN(C_VerifyRecoverInit, (SH s, MP m, OH k), (s, m, k))
SESSION_FN(C_VerifyRecover, (SH s, BP g, UL gl, BP o, ULP ol), (s, g, gl, o, ol))
SESSION_FN(C_DigestEncryptUpdate, (SH s, BP d, UL dl, BP o, ULP ol), (s, d, dl, o, ol))
SESSION_FN(C_DecryptDigestUpdate, (SH s, BP d, UL dl, BP o, ULP ol), (s, d, dl, o, ol))
SESSION_FN(C_SignEncryptUpdate, (SH s, BP d, UL dl, BP o, ULP ol), (s, d, dl, o, ol))
SESSION_FN(C_DecryptVerifyUpdate, (SH s, BP d, UL dl, BP o, ULP ol), (s, d, dl, o, ol))
SESSION_FN(C_GenerateKey, (SH s, MP m, AP t, UL n, CK_OBJECT_HANDLE_PTR k), (s, m, t, n, k))
SESSION_FN(C_GenerateKeyPair,
           (SH s, MP m, AP pt, UL pn, AP kt, UL kn, CK_OBJECT_HANDLE_PTR pub,
            CK_OBJECT_HANDLE_PTR priv),
           (s, m, pt, pn, kt, kn, pub, priv))
SESSION_FN(C_WrapKey, (SH s, MP m, OH w, OH k, BP o, ULP ol), (s, m, w, k, o, ol))
SESSION_FN(C_UnwrapKey, (SH s, MP m, OH u, BP w, UL wl, AP t, UL n, CK_OBJECT_HANDLE_PTR k),
           (s, m, u, w, wl, t, n, k))
SESSION_FN(C_DeriveKey, (SH s, MP m, OH b, AP t, UL n, CK_OBJECT_HANDLE_PTR k), (s, m, b, t, n, k))
SESSION_FN(C_SeedRandom, (SH s, BP d, UL dl), (s, d, dl))
SESSION_FN(C_GenerateRandom, (SH s, BP d, UL dl), (s, d, dl))
SESSION_FN(C_GetFunctionStatus, (SH s), (s))
SESSION_FN(C_CancelFunction, (SH s), (s))

static CK_FUNCTION_LIST shim_list = {
    {2, 40},
    shim_C_Initialize,
    shim_C_Finalize,
    shim_C_GetInfo,
    shim_C_GetFunctionList,
    shim_C_GetSlotList,
    shim_C_GetSlotInfo,
    shim_C_GetTokenInfo,
    shim_C_GetMechanismList,
    shim_C_GetMechanismInfo,
    shim_C_InitToken,
    shim_C_InitPIN,
    shim_C_SetPIN,
    shim_C_OpenSession,
    shim_C_CloseSession,
    shim_C_CloseAllSessions,
    shim_C_GetSessionInfo,
    shim_C_GetOperationState,
    shim_C_SetOperationState,
    shim_C_Login,
    shim_C_Logout,
    shim_C_CreateObject,
    shim_C_CopyObject,
    shim_C_DestroyObject,
    shim_C_GetObjectSize,
    shim_C_GetAttributeValue,
    shim_C_SetAttributeValue,
    shim_C_FindObjectsInit,
    shim_C_FindObjects,
    shim_C_FindObjectsFinal,
    shim_C_EncryptInit,
    shim_C_Encrypt,
    shim_C_EncryptUpdate,
    shim_C_EncryptFinal,
    shim_C_DecryptInit,
    shim_C_Decrypt,
    shim_C_DecryptUpdate,
    shim_C_DecryptFinal,
    shim_C_DigestInit,
    shim_C_Digest,
    shim_C_DigestUpdate,
    shim_C_DigestKey,
    shim_C_DigestFinal,
    shim_C_SignInit,
    shim_C_Sign,
    shim_C_SignUpdate,
    shim_C_SignFinal,
    shim_C_SignRecoverInit,
    shim_C_SignRecover,
    shim_C_VerifyInit,
    shim_C_Verify,
    shim_C_VerifyUpdate,
    shim_C_VerifyFinal,
    shim_C_VerifyRecoverInit,
    shim_C_VerifyRecover,
    shim_C_DigestEncryptUpdate,
    shim_C_DecryptDigestUpdate,
    shim_C_SignEncryptUpdate,
    shim_C_DecryptVerifyUpdate,
    shim_C_GenerateKey,
    shim_C_GenerateKeyPair,
    shim_C_WrapKey,
    shim_C_UnwrapKey,
    shim_C_DeriveKey,
    shim_C_SeedRandom,
    shim_C_GenerateRandom,
    shim_C_GetFunctionStatus,
    shim_C_CancelFunction,
    shim_C_WaitForSlotEvent,
};
