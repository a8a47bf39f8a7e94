/*
 * PINs and passphrases: from a file (first line) or ONE prompt on the
 * terminal for the whole run. Never from argv or the environment, never
 * logged; every buffer is cleansed.
 */
#include "station/station.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

int tool_prompt_secret(const char *prompt, char *out, size_t outlen, size_t *len)
{
    struct termios old, noecho;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC), echo_off = 0;
    size_t l = 0;
    char ch;

    if (fd < 0)
        return 0;
    if (write(fd, prompt, strlen(prompt)) < 0) {
        close(fd);
        return 0;
    }
    if (tcgetattr(fd, &old) == 0) {
        noecho = old;
        noecho.c_lflag &= ~(tcflag_t)ECHO;
        echo_off = tcsetattr(fd, TCSAFLUSH, &noecho) == 0;
    }
    while (read(fd, &ch, 1) == 1 && ch != '\n' && ch != '\r')
        if (l + 1 < outlen)
            out[l++] = ch;
    out[l] = 0;
    ch = 0;
    if (echo_off)
        tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0)
        l = 0;
    close(fd);
    *len = l;
    return l > 0;
}

void tool_pin_init(tool_pin *p, const char *source)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->source = source;
}

void tool_pin_clear(tool_pin *p)
{
    OPENSSL_cleanse(p->pin, sizeof p->pin);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->passed);
    p->passed = NULL;
}

int tool_pin_get(tool_pin *p, const char *serial, char *out, size_t outlen, size_t *len, char *err,
                 size_t errlen)
{
    int ok = 0;

    /* A per-token source ("%s" for the serial) is read for each token; it
     * cannot fail "for the run", so nothing is cached. */
    if (p11c_secret_per_token(p->source)) {
        if (serial == NULL) {
            snprintf(err, errlen, "PIN source %s is per token, but no token serial is known here",
                     p->source);
            return 0;
        }
        return tool_secret_read(p->source, serial, "PIN", out, outlen, len, err, errlen);
    }
    pthread_mutex_lock(&p->mu);
    if (!p->loaded && !p->failed) {
        char e[300] = "";
        if (p->source)
            p->loaded = tool_secret_read(p->source, NULL, "PIN", p->pin, sizeof p->pin, &p->len, e,
                                         sizeof e);
        else
            p->loaded = tool_prompt_secret(
                p->prompt ? p->prompt : "Token user PIN (used once per token): ", p->pin,
                sizeof p->pin, &p->len);
        if (!p->loaded) {
            p->failed = 1;
            snprintf(p->pin, sizeof p->pin, "%s",
                     p->source ? e : "no PIN: give a PIN source file or run on a terminal");
        }
    }
    if (p->loaded && p->len < outlen) {
        memcpy(out, p->pin, p->len + 1);
        *len = p->len;
        ok = 1;
    } else {
        /* On failure p->pin holds the reason, not a secret. */
        snprintf(err, errlen, "%s", p->failed ? p->pin : "PIN too long");
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}
