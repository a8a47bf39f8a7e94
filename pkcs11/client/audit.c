/*
 * The audit trail of the module and of the tool: one writer, one record
 * shape. Each event is one JSON object on one line, built with
 * json-c and handed to the kernel in a single write(2) on an O_APPEND
 * descriptor: the kernel then places whole lines one after another, whether
 * the writers are threads of this process or other processes sharing the file.
 */
#include "client_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

struct p11c_audit {
    int fd; /* -1: a log that discards */
};

p11c_audit *p11c_audit_open(const char *path, int mode, char *err, size_t errlen)
{
    p11c_audit *a;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "audit log: out of memory");
        return NULL;
    }
    a->fd = -1;
    if (path == NULL || path[0] == '\0')
        return a;

    /* O_NONBLOCK: a FIFO without a reader fails here instead of hanging the
     * application inside C_Initialize. */
    a->fd =
        open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, (mode_t)mode);
    if (a->fd < 0) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "audit log %s: cannot open for appending: %s", path,
                     strerror(errno));
        free(a);
        return NULL;
    }
    /* Only a regular file keeps what is written (/dev/full, /dev/null, a
     * FIFO or a socket would lose records, or take them and fail later):
     * refused now, at start-up, not on the first record. */
    {
        struct stat st;
        if (fstat(a->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            if (err != NULL && errlen > 0)
                snprintf(err, errlen, "audit log %s: not a regular file, records would be lost",
                         path);
            close(a->fd);
            free(a);
            return NULL;
        }
    }
    return a;
}

void p11c_audit_close(p11c_audit *a)
{
    if (a == NULL)
        return;
    if (a->fd >= 0)
        close(a->fd);
    free(a);
}

/* RFC 3339, UTC, milliseconds: 2026-11-25T16:49:15.123Z */
static void format_time(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    char base[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03ldZ", base, ts.tv_nsec / 1000000L);
}

static void add_string(json_object *obj, const char *key, const char *value)
{
    json_object_object_add(obj, key, value != NULL ? json_object_new_string(value) : NULL);
}

void p11c_audit_event(p11c_audit *a, const char *serial, const char *op, const char *outcome,
                      const char *detail)
{
    p11c_audit_record r = {serial, op, outcome, detail, NULL, NULL};

    p11c_audit_write(a, &r);
}

void p11c_audit_write(p11c_audit *a, const p11c_audit_record *r)
{
    json_object *obj = NULL;
    const char *text;
    char *line = NULL;
    char when[48];
    size_t len, done = 0;

    p11c_return_if_fail(r != NULL);
    if (a == NULL || a->fd < 0)
        return;

    format_time(when, sizeof(when));
    obj = json_object_new_object();
    if (obj == NULL)
        goto out;
    add_string(obj, "time", when);
    json_object_object_add(obj, "pid", json_object_new_int64((int64_t)getpid()));
    /* serial and detail are always there (null when absent), so every
     * record has the same keys; who acted is added only where known. */
    add_string(obj, "serial", r->serial);
    add_string(obj, "op", r->op != NULL ? r->op : "");
    add_string(obj, "outcome", r->outcome != NULL ? r->outcome : "");
    add_string(obj, "detail", r->detail);
    if (r->operator_id != NULL)
        add_string(obj, "operator", r->operator_id);
    if (r->by != NULL)
        add_string(obj, "by", r->by);

    text = json_object_to_json_string_ext(obj,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (text == NULL)
        goto out;
    /* json-c escapes control characters, so the text holds no newline of its own. */
    len = strlen(text);
    line = malloc(len + 2);
    if (line == NULL)
        goto out;
    memcpy(line, text, len);
    line[len++] = '\n';
    line[len] = '\0';

    /* One write for the whole line; a short write only happens on errors such
     * as a full disk, where finishing the line is still the best we can do. */
    while (done < len) {
        ssize_t n = write(a->fd, line + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            p11c_debug("audit log write failed: %s", n < 0 ? strerror(errno) : "nothing written");
            break;
        }
        done += (size_t)n;
    }

out:
    free(line);
    json_object_put(obj);
}
