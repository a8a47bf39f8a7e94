/*
 * PIN tries (issue 10, item 5). A wrong PIN costs a token one of its few
 * tries, so:
 *   - a PIN no token has accepted yet goes to one token at a time; after a
 *     token refuses it, the other tokens of the run are not tried ("not
 *     tried: PIN refused by token X");
 *   - a token is never sent a PIN it refused before, in this run or any
 *     earlier one: the station keeps a record of refused PINs, a salted
 *     scrypt hash per (token, PIN), in a file of mode 0600 that only its
 *     owner may read;
 *   - the final try (CKF_USER_PIN_FINAL_TRY) is never spent unless the
 *     operator says so (--allow-final-try);
 *   - an untested PIN goes to the tokens one at a time, in the run's order
 *     with tokens reporting CKF_USER_PIN_COUNT_LOW last, so a count-low
 *     token is tried only after another token accepted the PIN, or when no
 *     other token could tell.
 */
#include "station/station.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define REC_N 4096 /* scrypt cost: a few ms per check, only for tokens with records */
#define REC_R 8
#define REC_P 1
#define REC_SALT 16
#define REC_HASH 32

/* One scrypt at a time: each takes REC_N * REC_R * 128 bytes. */
static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;

static int rec_hash(const tool_token *t, const unsigned char *salt, const char *pin, size_t len,
                    unsigned char out[REC_HASH])
{
    unsigned char s[REC_SALT + TM_SERIAL_MAX];
    int ok;

    /* The serial joins the salt: a hash says nothing about another token. */
    memcpy(s, salt, REC_SALT);
    memcpy(s + REC_SALT, t->serial, t->serial_len);
    ok = EVP_PBE_scrypt(pin, len, s, REC_SALT + t->serial_len, REC_N, REC_R, REC_P, 0, out,
                        REC_HASH) == 1;
    return ok;
}

const char *tool_state_dir(const tool_config *cfg)
{
    static char dflt[4096];
    const char *env = getenv("TOKENMINT_STATE_DIR"), *base;

    if (env && *env)
        return env;
    if (cfg && cfg->state_dir && *cfg->state_dir)
        return cfg->state_dir;
    if (geteuid() == 0)
        return "/var/lib/tokenmint";
    if ((base = getenv("XDG_STATE_HOME")) && *base)
        snprintf(dflt, sizeof dflt, "%s/tokenmint", base);
    else
        snprintf(dflt, sizeof dflt, "%s/.local/state/tokenmint",
                 getenv("HOME") ? getenv("HOME") : "");
    return dflt;
}

/* Opens (makes) the record and checks that nobody else can read or change it. */
int tool_pin_record_open(tool_pin *p, const char *dir, char *err, size_t errlen)
{
    struct stat sb;
    int fd;

    tool_return_val_if_fail(p != NULL && dir != NULL, 0);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen,
                 "cannot make the station state directory %s: %s (it keeps the record of "
                 "refused PINs; set state_dir in the tool config or TOKENMINT_STATE_DIR)",
                 dir, strerror(errno));
        return 0;
    }
    snprintf(p->record, sizeof p->record, "%s/refused-pins", dir);
    fd = open(p->record, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open the refused-PIN record %s: %s", p->record,
                 strerror(errno));
        goto bad;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "the refused-PIN record %s is not a regular file", p->record);
        goto bad;
    }
    if (sb.st_uid != geteuid() || (sb.st_mode & 077)) {
        snprintf(err, errlen,
                 "the refused-PIN record %s is open to others (owner %lu, mode %04o); it must "
                 "be mode 0600 and ours (chmod 600)",
                 p->record, (unsigned long)sb.st_uid, (unsigned)(sb.st_mode & 07777));
        goto bad;
    }
    close(fd);
    return 1;
bad:
    if (fd >= 0)
        close(fd);
    p->record[0] = 0;
    return 0;
}

/* 1 when the record says this token refused this PIN. */
static int record_has(tool_pin *p, const tool_token *t, const char *pin, size_t len)
{
    char sh[2 * TM_SERIAL_MAX + 1], line[512];
    unsigned char salt[REC_SALT], want[REC_HASH], got[REC_HASH];
    size_t nsalt, nwant;
    FILE *f;
    int found = 0;

    if (!p->record[0])
        return 0;
    f = fopen(p->record, "re");
    if (!f)
        return 0;
    p11c_hex_encode(t->serial, t->serial_len, sh, sizeof sh);
    pthread_mutex_lock(&rec_mu);
    while (!found && fgets(line, sizeof line, f)) {
        char *v = strtok(line, " \n"), *ser = strtok(NULL, " \n"), *sa = strtok(NULL, " \n"),
             *h = strtok(NULL, " \n");
        if (!v || !ser || !sa || !h || strcmp(v, "v1") != 0 || strcmp(ser, sh) != 0 ||
            !p11c_hex_decode(sa, strlen(sa), salt, sizeof salt, &nsalt) || nsalt != sizeof salt ||
            !p11c_hex_decode(h, strlen(h), want, sizeof want, &nwant) || nwant != sizeof want)
            continue;
        if (rec_hash(t, salt, pin, len, got) && CRYPTO_memcmp(got, want, sizeof got) == 0)
            found = 1;
    }
    pthread_mutex_unlock(&rec_mu);
    OPENSSL_cleanse(got, sizeof got);
    fclose(f);
    return found;
}

static void record_add(tool_pin *p, const tool_token *t, const char *pin, size_t len)
{
    char sh[2 * TM_SERIAL_MAX + 1], ss[2 * REC_SALT + 1], hh[2 * REC_HASH + 1], line[256];
    unsigned char salt[REC_SALT], h[REC_HASH];
    int fd, n, ok;

    if (!p->record[0] || RAND_bytes(salt, sizeof salt) != 1)
        return;
    pthread_mutex_lock(&rec_mu);
    ok = rec_hash(t, salt, pin, len, h);
    pthread_mutex_unlock(&rec_mu);
    if (!ok)
        return;
    p11c_hex_encode(t->serial, t->serial_len, sh, sizeof sh);
    p11c_hex_encode(salt, sizeof salt, ss, sizeof ss);
    p11c_hex_encode(h, sizeof h, hh, sizeof hh);
    OPENSSL_cleanse(h, sizeof h);
    n = snprintf(line, sizeof line, "v1 %s %s %s\n", sh, ss, hh);
    fd = open(p->record, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    /* One write per line (O_APPEND): lines from other processes never mix;
     * fsync: a refusal forgotten in a crash would cost the token a try. */
    if (fd < 0 || write(fd, line, (size_t)n) != n || fsync(fd) != 0)
        tool_err("cannot add to the refused-PIN record %s: %s", p->record, strerror(errno));
    if (fd >= 0)
        close(fd);
}

void tool_pin_expect(tool_pin *p, tool_token **order, size_t n)
{
    pthread_mutex_lock(&p->mu);
    free(p->passed);
    p->passed = calloc(n ? n : 1, 1);
    p->order = p->passed ? order : NULL;
    p->norder = p->passed ? n : 0;
    p->pos = 0;
    pthread_mutex_unlock(&p->mu);
}

/* Lock held: t is through (tried, or will not try); the next token in the
 * order may be the one to test an untested PIN. */
static void passed_locked(tool_pin *p, const tool_token *t)
{
    size_t i;
    for (i = 0; i < p->norder; i++)
        if (p->order[i] == t)
            p->passed[i] = 1;
    while (p->pos < p->norder && p->passed[p->pos])
        p->pos++;
    pthread_cond_broadcast(&p->cv);
}

/* Lock held: may t be the one to send an untested PIN now? */
static int may_test_locked(const tool_pin *p, const tool_token *t)
{
    return p->pos >= p->norder || p->order[p->pos] == t;
}

int tool_pin_try_begin(tool_pin *p, const tool_token *t, char *out, size_t outlen, size_t *len,
                       char *err, size_t errlen)
{
    int ok = 0;

    if ((t->info.flags & CKF_USER_PIN_FINAL_TRY) && !p->allow_final_try) {
        snprintf(err, errlen,
                 "not tried: the token's next wrong PIN locks it (CKF_USER_PIN_FINAL_TRY); "
                 "--allow-final-try sends the PIN anyway");
        return 0;
    }
    if (!tool_pin_get(p, t->serial_text, out, outlen, len, err, errlen))
        return 0;
    if (record_has(p, t, out, *len)) {
        snprintf(err, errlen, "not tried: token %s refused this PIN before (refused-PIN record %s)",
                 t->serial_text, p->record);
        goto out;
    }
    if (p11c_secret_per_token(p->source)) {
        /* Each token has its own PIN file: one token refusing its PIN says
         * nothing about another's, so only the record and the final try
         * apply. */
        ok = 1;
        goto out;
    }
    pthread_mutex_lock(&p->mu);
    /* An untested PIN goes to one token at a time, in the run's order
     * (count-low tokens last), until a token accepts it. */
    while (p->state == TOOL_PIN_TRYING || (p->state == TOOL_PIN_UNTRIED && !may_test_locked(p, t)))
        pthread_cond_wait(&p->cv, &p->mu);
    if (p->state == TOOL_PIN_REFUSED) {
        snprintf(err, errlen, "not tried: PIN refused by token %s", p->refused_by);
    } else {
        if (p->state == TOOL_PIN_UNTRIED)
            p->state = TOOL_PIN_TRYING;
        ok = 1;
    }
    pthread_mutex_unlock(&p->mu);
out:
    if (!ok)
        OPENSSL_cleanse(out, outlen);
    return ok;
}

void tool_pin_try_end(tool_pin *p, const tool_token *t, const char *pin, size_t len, CK_RV rv)
{
    int refused = rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE;

    if (refused)
        record_add(p, t, pin, len);
    pthread_mutex_lock(&p->mu);
    if (p11c_secret_per_token(p->source)) {
        /* per-token PINs: no shared PIN state (see tool_pin_try_begin) */
    } else if (refused && p->state != TOOL_PIN_ACCEPTED) {
        /* Nobody took it: most likely a typo. No other token gets it. A PIN
         * another token accepted is no typo: only this token is spared it
         * from now on (the record). */
        snprintf(p->refused_by, sizeof p->refused_by, "%s", t->serial_text);
        p->state = TOOL_PIN_REFUSED;
    } else if (p->state == TOOL_PIN_TRYING) {
        /* accepted, or an error that says nothing about the PIN */
        p->state =
            rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN ? TOOL_PIN_ACCEPTED : TOOL_PIN_UNTRIED;
    }
    passed_locked(p, t);
    pthread_mutex_unlock(&p->mu);
}

void tool_pin_skip(tool_pin *p, const tool_token *t)
{
    pthread_mutex_lock(&p->mu);
    passed_locked(p, t);
    pthread_mutex_unlock(&p->mu);
}
