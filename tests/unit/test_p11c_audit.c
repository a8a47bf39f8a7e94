/* The client layer's audit writer (the module's and the tool's log): one JSON
 * object per line, whole lines under concurrency. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "p11c.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    strcpy(dir, "/tmp/tm-test-audit.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    return rmdir(dir);
}

/* Reads the whole log; caller frees. */
static char *slurp(size_t *len)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

/* Splits the log into parsed objects; every line must be a complete JSON object. */
static size_t parse_lines(json_object **objs, size_t max)
{
    char *text = slurp(NULL);
    char *line, *save = NULL;
    size_t n = 0;

    assert_true(text[0] == '\0' || text[strlen(text) - 1] == '\n');
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        json_object *o = json_tokener_parse(line);
        if (o == NULL || !json_object_is_type(o, json_type_object))
            fail_msg("line %zu is not a JSON object: %.200s", n + 1, line);
        assert_true(n < max);
        objs[n++] = o;
    }
    free(text);
    return n;
}

static const char *field(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("field %s missing", key);
    return v == NULL ? NULL : json_object_get_string(v);
}

static void test_fields(void **state)
{
    char err[256];
    p11c_audit *a;
    json_object *objs[4];
    json_object *pid;
    regex_t re;
    struct stat st;

    unlink(path);
    a = p11c_audit_open(path, 0600, err, sizeof(err));
    assert_non_null(a);
    p11c_audit_event(a, "5a1f0c3e9b2d4411", "certificate-write", "refused",
                     "certificate names serial X; this token is \"Y\"\nsecond line");
    p11c_audit_event(a, NULL, "token-removed", "ok", NULL);
    p11c_audit_close(a);

    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(parse_lines(objs, 4), 2);
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    assert_int_equal(regexec(&re, field(objs[0], "time"), 0, NULL, 0), 0);
    regfree(&re);
    assert_true(json_object_object_get_ex(objs[0], "pid", &pid));
    assert_true(json_object_is_type(pid, json_type_int));
    assert_int_equal(json_object_get_int64(pid), getpid());
    assert_string_equal(field(objs[0], "serial"), "5a1f0c3e9b2d4411");
    assert_string_equal(field(objs[0], "op"), "certificate-write");
    assert_string_equal(field(objs[0], "outcome"), "refused");
    /* quotes and newlines survive as data, not as line breaks */
    assert_string_equal(field(objs[0], "detail"),
                        "certificate names serial X; this token is \"Y\"\nsecond line");
    /* absent serial / detail are JSON null, the keys are still there */
    assert_null(field(objs[1], "serial"));
    assert_null(field(objs[1], "detail"));
    assert_string_equal(field(objs[1], "op"), "token-removed");
    json_object_put(objs[0]);
    json_object_put(objs[1]);
}

static void test_appends(void **state)
{
    char err[256];
    p11c_audit *a;
    json_object *objs[4];
    size_t i;

    unlink(path);
    a = p11c_audit_open(path, 0600, err, sizeof(err));
    p11c_audit_event(a, "A", "login", "ok", NULL);
    p11c_audit_close(a);
    a = p11c_audit_open(path, 0600, err, sizeof(err));
    p11c_audit_event(a, "B", "login", "ok", NULL);
    p11c_audit_close(a);
    assert_int_equal(parse_lines(objs, 4), 2);
    assert_string_equal(field(objs[0], "serial"), "A");
    assert_string_equal(field(objs[1], "serial"), "B");
    for (i = 0; i < 2; i++)
        json_object_put(objs[i]);
}

#define THREADS 8
#define PER_THREAD 300

struct writer {
    p11c_audit *a;
    int id;
};

static void *write_many(void *arg)
{
    struct writer *w = arg;
    char serial[16], detail[3000];
    int i;

    snprintf(serial, sizeof(serial), "T%02d", w->id);
    /* long lines make a torn or interleaved write likely if writes were split */
    memset(detail, 'a' + w->id, sizeof(detail) - 1);
    detail[sizeof(detail) - 1] = '\0';
    for (i = 0; i < PER_THREAD; i++)
        p11c_audit_event(w->a, serial, "sign", "ok", detail);
    return NULL;
}

static void test_concurrent_threads_do_not_interleave(void **state)
{
    char err[256];
    pthread_t th[THREADS];
    struct writer w[THREADS];
    static json_object *objs[THREADS * PER_THREAD + 1];
    int counts[THREADS] = {0};
    size_t n, i;
    p11c_audit *a;

    unlink(path);
    a = p11c_audit_open(path, 0600, err, sizeof(err));
    assert_non_null(a);
    for (i = 0; i < THREADS; i++) {
        w[i].a = a;
        w[i].id = (int)i;
        assert_int_equal(pthread_create(&th[i], NULL, write_many, &w[i]), 0);
    }
    for (i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    p11c_audit_close(a);

    n = parse_lines(objs, THREADS * PER_THREAD + 1);
    assert_int_equal(n, THREADS * PER_THREAD);
    for (i = 0; i < n; i++) {
        const char *serial = field(objs[i], "serial");
        const char *detail = field(objs[i], "detail");
        int id = atoi(serial + 1);
        size_t k;
        assert_true(id >= 0 && id < THREADS);
        /* the detail belongs wholly to the thread that named itself */
        assert_int_equal(strlen(detail), 2999);
        for (k = 0; k < 2999; k++)
            assert_int_equal(detail[k], 'a' + id);
        counts[id]++;
        json_object_put(objs[i]);
    }
    for (i = 0; i < THREADS; i++)
        assert_int_equal(counts[i], PER_THREAD);
}

static void test_concurrent_processes(void **state)
{
    char err[256];
    json_object *objs[201];
    pid_t kids[2];
    size_t n, i;
    int k, status;

    unlink(path);
    for (k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            p11c_audit *a = p11c_audit_open(path, 0600, err, sizeof(err));
            int j;
            if (a == NULL)
                _exit(1);
            for (j = 0; j < 100; j++)
                p11c_audit_event(a, k ? "T01" : "T00", "login", "ok", "x");
            p11c_audit_close(a);
            _exit(0);
        }
    }
    for (k = 0; k < 2; k++) {
        assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    n = parse_lines(objs, 201);
    assert_int_equal(n, 200);
    for (i = 0; i < n; i++)
        json_object_put(objs[i]);
}

static void test_never_a_pin(void **state)
{
    /* A simulated login: the module has the PIN in hand, but the audit API has
     * no parameter for it, so what reaches the log is serial, op and outcome. */
    const char *test_pin = "73519024";
    char err[256];
    char *text;
    p11c_audit *a;

    unlink(path);
    a = p11c_audit_open(path, 0600, err, sizeof(err));
    assert_non_null(a);
    p11c_audit_event(a, "5a1f0c3e9b2d4411", "login", "failed", "CKR_PIN_INCORRECT");
    p11c_audit_event(a, "5a1f0c3e9b2d4411", "login", "ok", "derived PIN");
    p11c_audit_close(a);
    text = slurp(NULL);
    assert_non_null(strstr(text, "\"op\":\"login\""));
    assert_null(strstr(text, test_pin));
    free(text);
}

static void test_discarding_and_errors(void **state)
{
    char err[256];
    p11c_audit *a;

    a = p11c_audit_open(NULL, 0600, err, sizeof(err));
    assert_non_null(a);
    p11c_audit_event(a, "X", "login", "ok", NULL);
    p11c_audit_close(a);
    a = p11c_audit_open("", 0600, err, sizeof(err));
    assert_non_null(a);
    p11c_audit_close(a);
    p11c_audit_event(NULL, "X", "login", "ok", NULL);

    a = p11c_audit_open("/nonexistent-dir/audit.log", 0600, err, sizeof(err));
    assert_null(a);
    assert_non_null(strstr(err, "/nonexistent-dir/audit.log"));
    assert_non_null(strstr(err, "No such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_appends),
        cmocka_unit_test(test_concurrent_threads_do_not_interleave),
        cmocka_unit_test(test_concurrent_processes),
        cmocka_unit_test(test_never_a_pin),
        cmocka_unit_test(test_discarding_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
