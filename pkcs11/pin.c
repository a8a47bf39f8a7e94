/*
 * Derived PINs: the station and whoever set the token's PIN compute the same
 * value from the station secret and the token's hardware serial, so no PIN is
 * ever stored or typed during issuance (patent claim 5).
 */
#include "pin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* A secret is a few dozen bytes; anything much larger is the wrong file. */
#define TM_SECRET_MIN 32
#define TM_SECRET_MAX (64 * 1024)
/* The default derived PIN length when the token allows it. */
#define TM_PIN_DEFAULT_LEN 16

/* Every message names the file and the problem, never the content. */
static void set_err(char *err, size_t errlen, const char *path, const char *what)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "station secret %s: %s", path, what);
}

int mod_station_secret_load(const char *path, mod_station_secret *out, char *err, size_t errlen)
{
    struct stat st;
    unsigned char *buf = NULL;
    size_t got = 0;
    int fd = -1;
    int ok = 0;
    char what[128];

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL || path == NULL || path[0] == '\0') {
        set_err(err, errlen, "(none)", "no path given");
        return 0;
    }
    out->bytes = NULL;
    out->len = 0;

    /* The client layer's secret-file opener: a FIFO cannot hang the module, a
     * directory or device is named as such, the same words as for every other
     * secret file. Its mode and owner rules are left to the stricter ones
     * below (exactly 0600, ours). */
    fd = p11c_secret_open(path, "station secret", P11C_SECRET_ALLOW_OPEN, err, errlen);
    if (fd < 0)
        goto out;
    if (fstat(fd, &st) != 0) {
        set_err(err, errlen, path, strerror(errno));
        goto out;
    }
    if ((st.st_mode & 07777) != 0600) {
        snprintf(what, sizeof(what), "mode is %04o, must be 0600 (chmod 600 it)",
                 (unsigned)(st.st_mode & 07777));
        set_err(err, errlen, path, what);
        goto out;
    }
    if (st.st_uid != geteuid()) {
        snprintf(what, sizeof(what),
                 "owned by uid %lu, must be owned by the running user (uid %lu)",
                 (unsigned long)st.st_uid, (unsigned long)geteuid());
        set_err(err, errlen, path, what);
        goto out;
    }
    if (st.st_size < TM_SECRET_MIN) {
        snprintf(what, sizeof(what), "holds %lld bytes, needs at least %d", (long long)st.st_size,
                 TM_SECRET_MIN);
        set_err(err, errlen, path, what);
        goto out;
    }
    if (st.st_size > TM_SECRET_MAX) {
        snprintf(what, sizeof(what), "holds %lld bytes, at most %d expected", (long long)st.st_size,
                 TM_SECRET_MAX);
        set_err(err, errlen, path, what);
        goto out;
    }

    buf = malloc((size_t)st.st_size);
    if (buf == NULL) {
        set_err(err, errlen, path, "out of memory");
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            set_err(err, errlen, path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got != (size_t)st.st_size) {
        set_err(err, errlen, path, "file changed size while being read");
        goto out;
    }

    out->bytes = buf;
    out->len = got;
    buf = NULL;
    ok = 1;

out:
    if (buf != NULL) {
        OPENSSL_cleanse(buf, (size_t)st.st_size);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return ok;
}

void mod_station_secret_clear(mod_station_secret *s)
{
    if (s == NULL)
        return;
    if (s->bytes != NULL) {
        OPENSSL_cleanse(s->bytes, s->len);
        free(s->bytes);
    }
    s->bytes = NULL;
    s->len = 0;
}

/*
 * Block 0 is HMAC(secret, serial); block i > 0 is HMAC(secret, serial ||
 * uint32_be(i)). Bytes >= 250 are skipped so that every digit 0-9 is equally
 * likely (250 = 25 * 10).
 */
static int hmac_block(const mod_station_secret *secret, const unsigned char *serial,
                      size_t serial_len, uint32_t counter, unsigned char out[32])
{
    unsigned char msg[256 + 4]; /* serials are at most 64 bytes; the heap covers the rest */
    unsigned char *data = msg;
    size_t len = serial_len;
    unsigned int mdlen = 0;
    unsigned char *heap = NULL;
    int ok = 0;

    if (counter > 0) {
        if (serial_len + 4 > sizeof(msg)) {
            heap = malloc(serial_len + 4);
            if (heap == NULL)
                return 0;
            data = heap;
        }
        memcpy(data, serial, serial_len);
        data[serial_len] = (unsigned char)(counter >> 24);
        data[serial_len + 1] = (unsigned char)(counter >> 16);
        data[serial_len + 2] = (unsigned char)(counter >> 8);
        data[serial_len + 3] = (unsigned char)counter;
        len = serial_len + 4;
    } else {
        data = (unsigned char *)serial;
    }

    if (HMAC(EVP_sha256(), secret->bytes, (int)secret->len, data, len, out, &mdlen) != NULL &&
        mdlen == 32)
        ok = 1;

    free(heap);
    return ok;
}

size_t mod_pin_derive(const mod_station_secret *secret, const unsigned char *serial,
                      size_t serial_len, CK_ULONG min_len, CK_ULONG max_len, char *pin,
                      size_t pin_max)
{
    unsigned char block[32];
    size_t want = TM_PIN_DEFAULT_LEN;
    size_t have = 0;
    uint32_t counter = 0;
    size_t i;

    if (pin != NULL && pin_max > 0)
        pin[0] = '\0';
    if (secret == NULL || secret->bytes == NULL || secret->len == 0 || serial == NULL ||
        serial_len == 0 || pin == NULL)
        return 0;

    if (want < min_len)
        want = min_len;
    if (max_len != 0 && want > max_len)
        want = max_len;
    if (want > TM_PIN_MAX - 1)
        want = TM_PIN_MAX - 1;
    /* A token whose range we cannot meet gets no PIN rather than one it rejects. */
    if (want == 0 || want < min_len || want + 1 > pin_max)
        return 0;

    while (have < want) {
        if (!hmac_block(secret, serial, serial_len, counter, block)) {
            OPENSSL_cleanse(pin, pin_max);
            OPENSSL_cleanse(block, sizeof(block));
            return 0;
        }
        for (i = 0; i < sizeof(block) && have < want; i++) {
            if (block[i] < 250)
                pin[have++] = (char)('0' + block[i] % 10);
        }
        counter++;
    }
    pin[have] = '\0';
    OPENSSL_cleanse(block, sizeof(block));
    return have;
}
