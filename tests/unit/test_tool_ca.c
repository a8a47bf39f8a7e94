/*
 * The tool's local CA (tool/ca/local.c) and operator passphrase check
 * (tool/station/operator.c), without tokens: requests signed by software keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ca/ca.h"
#include "ca/castore.h"

typedef struct fixture {
    char top[256];
    char dir[300];
    tool_crypto crypto;
    tm_profile *prof;
    tool_ca *ca;
} fixture;

static int lines_of(const char *dir, const char *name)
{
    char path[512], buf[4096];
    FILE *f;
    int n = 0;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(buf, sizeof buf, f))
        n++;
    fclose(f);
    return n;
}

static int count_cb(const tool_cs_record *r, void *user)
{
    (void)r;
    (*(int *)user)++;
    return 1;
}

/* Records in the CA's database with this status (0: any). */
static int records(fixture *fx, char status)
{
    tool_cs_filter f = {0};
    int n = 0;

    f.status = status;
    assert_int_equal(tool_castore_list(tool_ca_store(fx->ca), &f, count_cb, &n), TOOL_CS_OK);
    return n;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    char err[512] = "";
    char tmpl[] = "/tmp/tm-tool-ca.XXXXXX";

    assert_non_null(fx);
    assert_non_null(mkdtemp(tmpl));
    snprintf(fx->top, sizeof fx->top, "%s", tmpl);
    snprintf(fx->dir, sizeof fx->dir, "%s/ca", tmpl);
    tool_crypto_open(&fx->crypto, NULL);
    fx->prof = tm_profile_load(NULL, NULL);
    assert_non_null(fx->prof);
    assert_true(tool_ca_init(fx->dir, NULL, NULL, "Unit CA", &fx->crypto, err, sizeof err));
    fx->ca = tool_ca_open(fx->dir, fx->prof, &fx->crypto, "unit-operator", err, sizeof err);
    assert_non_null(fx->ca);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char cmd[600];

    tool_ca_close(fx->ca);
    tm_profile_free(fx->prof);
    tool_crypto_close(&fx->crypto);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->top);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

/* A request for a token serial, signed by a fresh software key. */
static X509_REQ *request(fixture *fx, const char *serial, EVP_PKEY **keyp)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();

    assert_non_null(key);
    assert_non_null(req);
    assert_true(X509_REQ_set_pubkey(req, key));
    assert_true(tm_profile_build_request(fx->prof, req, (const unsigned char *)serial,
                                         strlen(serial), NULL, "auth", NULL));
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    if (keyp)
        *keyp = key;
    else
        EVP_PKEY_free(key);
    return req;
}

static void test_init_makes_an_openssl_ca_directory(void **state)
{
    fixture *fx = *state;
    const char *files[] = {"ca.cnf", "ca.pem",  "index.txt",      "index.txt.attr", "serial",
                           "ca.db",  "db.lock", "private/ca.key", "newcerts"};
    char path[512], err[256];
    struct stat sb;
    size_t i;

    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", fx->dir, files[i]);
        assert_int_equal(stat(path, &sb), 0);
    }
    snprintf(path, sizeof path, "%s/private/ca.key", fx->dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 077, 0); /* the key is private */
    /* a second init never overwrites a CA */
    assert_false(tool_ca_init(fx->dir, NULL, NULL, NULL, &fx->crypto, err, sizeof err));
    assert_non_null(strstr(err, "already a CA directory"));
}

static void test_batch_issues_unique_serials_and_records(void **state)
{
    fixture *fx = *state;
    tool_ca_item items[3];
    char path[512];
    size_t i;

    memset(items, 0, sizeof items);
    items[0].req = request(fx, "tok-a", NULL);
    items[1].req = request(fx, "tok-b", NULL);
    items[2].req = request(fx, "tok-c", NULL);
    for (i = 0; i < 3; i++)
        items[i].purpose = "auth", items[i].token_text = "t";
    assert_int_equal(tool_ca_issue_batch(fx->ca, items, 3), 3);
    assert_int_equal(lines_of(fx->dir, "index.txt"), 3);
    assert_int_equal(records(fx, 'V'), 3);
    for (i = 0; i < 3; i++) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(items[i].cert), NULL);
        char *hex = BN_bn2hex(bn);
        X509_STORE *st = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        assert_non_null(items[i].cert);
        snprintf(path, sizeof path, "%s/newcerts/%s.pem", fx->dir, hex);
        assert_int_equal(access(path, R_OK), 0); /* the file is there for every record */
        X509_STORE_add_cert(st, tool_ca_root(fx->ca));
        X509_STORE_CTX_init(ctx, st, items[i].cert, NULL);
        assert_int_equal(X509_verify_cert(ctx), 1);
        assert_int_equal(tm_profile_check_cert(fx->prof, items[i].cert, NULL), 0);
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(st);
        OPENSSL_free(hex);
        BN_free(bn);
    }
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(items[0].cert),
                                          X509_get0_serialNumber(items[1].cert)),
                         0);
    for (i = 0; i < 3; i++) {
        X509_free(items[i].cert);
        X509_REQ_free(items[i].req);
    }
}

static void test_same_key_is_never_issued_twice(void **state)
{
    fixture *fx = *state;
    EVP_PKEY *key = NULL;
    tool_ca_item a, b;
    X509 *found;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.req = request(fx, "tok-d", &key);
    a.purpose = b.purpose = "auth";
    assert_null(tool_ca_find_by_key(fx->ca, key, "auth"));
    assert_int_equal(tool_ca_issue_batch(fx->ca, &a, 1), 1);
    found = tool_ca_find_by_key(fx->ca, key, "auth");
    assert_non_null(found);
    assert_int_equal(X509_cmp(found, a.cert), 0);
    assert_null(tool_ca_find_by_key(fx->ca, key, "sign")); /* per purpose */
    /* The same request again (a re-run that lost its answer): the same certificate. */
    b.req = a.req;
    assert_int_equal(tool_ca_issue_batch(fx->ca, &b, 1), 1);
    assert_int_equal(X509_cmp(b.cert, a.cert), 0);
    assert_int_equal(lines_of(fx->dir, "index.txt"), 1);
    X509_free(found);
    X509_free(a.cert);
    X509_free(b.cert);
    X509_REQ_free(a.req);
    EVP_PKEY_free(key);
}

/* Issue 10 item 2: a certified key that comes back bound to another token
 * (or with a personal name) is refused with the reason, never answered with
 * the earlier certificate. */
static X509_REQ *request_for_key(fixture *fx, EVP_PKEY *key, const char *serial, int cn)
{
    X509_REQ *req = X509_REQ_new();

    assert_non_null(req);
    assert_true(X509_REQ_set_pubkey(req, key));
    assert_true(tm_profile_build_request(fx->prof, req, (const unsigned char *)serial,
                                         strlen(serial), NULL, "auth", NULL));
    if (cn)
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                   (const unsigned char *)"Mallory", -1, -1, 0);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    return req;
}

static void test_certified_key_with_another_binding_is_refused(void **state)
{
    fixture *fx = *state;
    EVP_PKEY *key = NULL;
    tool_ca_item a, b, c;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    a.req = request(fx, "tok-h", &key);
    a.purpose = b.purpose = c.purpose = "auth";
    a.token_text = "tok-h";
    assert_int_equal(tool_ca_issue_batch(fx->ca, &a, 1), 1);
    /* the same key, another token serial */
    b.req = request_for_key(fx, key, "tok-other", 0);
    b.token_text = "tok-other";
    assert_int_equal(tool_ca_issue_batch(fx->ca, &b, 1), 0);
    assert_null(b.cert);
    assert_non_null(strstr(b.error, "already certified"));
    assert_non_null(strstr(b.error, "tok-other"));
    /* the same key and serial with a CN: the profile refuses it first */
    c.req = request_for_key(fx, key, "tok-h", 1);
    c.token_text = "tok-h";
    assert_int_equal(tool_ca_issue_batch(fx->ca, &c, 1), 0);
    assert_null(c.cert);
    assert_non_null(strstr(c.error, "profile"));
    assert_int_equal(records(fx, 0), 1);
    X509_free(a.cert);
    X509_REQ_free(a.req);
    X509_REQ_free(b.req);
    X509_REQ_free(c.req);
    EVP_PKEY_free(key);
}

static void test_bad_requests_are_refused_without_a_record(void **state)
{
    fixture *fx = *state;
    tool_ca_item it;
    EVP_PKEY *other = EVP_EC_gen("P-256");

    memset(&it, 0, sizeof it);
    it.purpose = "auth";
    /* signed by another key than the one it carries (step 9) */
    it.req = request(fx, "tok-e", NULL);
    assert_true(X509_REQ_sign(it.req, other, EVP_sha256()) > 0);
    assert_int_equal(tool_ca_issue_batch(fx->ca, &it, 1), 0);
    assert_null(it.cert);
    assert_non_null(strstr(it.error, "does not verify"));
    X509_REQ_free(it.req);
    /* a personal name in the subject breaks the profile */
    it.req = request(fx, "tok-f", NULL);
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(it.req), "CN", MBSTRING_ASC,
                               (const unsigned char *)"Alice", -1, -1, 0);
    assert_true(X509_REQ_sign(it.req, other, EVP_sha256()) > 0);
    X509_REQ_set_pubkey(it.req, other);
    assert_true(X509_REQ_sign(it.req, other, EVP_sha256()) > 0);
    assert_int_equal(tool_ca_issue_batch(fx->ca, &it, 1), 0);
    assert_non_null(strstr(it.error, "profile"));
    assert_int_equal(lines_of(fx->dir, "index.txt"), 0);
    assert_int_equal(records(fx, 0), 0);
    X509_REQ_free(it.req);
    EVP_PKEY_free(other);
}

/* A certificate file no record names (stock openssl ca or the old format
 * died between its writes) is taken in at the next open; the index view is
 * rebuilt from the database, so a lost index.txt loses nothing. */
static void test_orphan_certificate_is_recovered(void **state)
{
    fixture *fx = *state;
    EVP_PKEY *key = NULL;
    tool_ca_item it;
    char path[1024], err[256], *hex;
    X509 *found;
    FILE *f;

    memset(&it, 0, sizeof it);
    it.purpose = "auth";
    it.req = request(fx, "tok-g", &key);
    assert_int_equal(tool_ca_issue_batch(fx->ca, &it, 1), 1);
    tool_ca_close(fx->ca);
    /* lose the database and the index, keep the file */
    snprintf(path, sizeof path, "rm -f %s/ca.db %s/ca.db-wal %s/ca.db-shm", fx->dir, fx->dir,
             fx->dir);
    assert_int_equal(system(path), 0);
    snprintf(path, sizeof path, "%s/index.txt", fx->dir);
    assert_int_equal(truncate(path, 0), 0);
    /* and an empty certificate file left by a crash */
    snprintf(path, sizeof path, "%s/newcerts/0ABC.pem", fx->dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    fx->ca = tool_ca_open(fx->dir, fx->prof, &fx->crypto, "unit-operator", err, sizeof err);
    assert_non_null(fx->ca);
    assert_int_equal(lines_of(fx->dir, "index.txt"), 1);
    assert_int_equal(records(fx, 'V'), 1);
    assert_int_not_equal(access(path, F_OK), 0); /* the empty file is gone */
    found = tool_ca_find_by_key(fx->ca, key, "auth");
    assert_non_null(found);
    assert_int_equal(X509_cmp(found, it.cert), 0);
    /* an index.txt lost after that costs nothing either */
    tool_ca_close(fx->ca);
    snprintf(path, sizeof path, "%s/index.txt", fx->dir);
    assert_int_equal(unlink(path), 0);
    hex = tool_cs_serial_hex(X509_get0_serialNumber(it.cert));
    snprintf(path, sizeof path, "%s/newcerts/%s.pem", fx->dir, hex);
    assert_int_equal(truncate(path, 0), 0); /* emptied by a crash: rewritten from the record */
    fx->ca = tool_ca_open(fx->dir, fx->prof, &fx->crypto, "unit-operator", err, sizeof err);
    assert_non_null(fx->ca);
    assert_int_equal(lines_of(fx->dir, "index.txt"), 1);
    X509_free(found);
    found = NULL;
    f = fopen(path, "r");
    assert_non_null(f);
    found = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(found);
    assert_int_equal(X509_cmp(found, it.cert), 0);
    OPENSSL_free(hex);
    X509_free(found);
    X509_free(it.cert);
    X509_REQ_free(it.req);
    EVP_PKEY_free(key);
}

/* A file at dir/name (empty). */
static void touch_in(const char *dir, const char *name)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
}

static int exists_in(const char *dir, const char *name)
{
    char path[1024];

    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* The temporary files of a view writer killed between writing and renaming
 * them (or one whose rename and unlink a full or read-only disk refused)
 * are removed at the next open; a live writer's are left alone. */
static void test_dead_writers_temporary_files_are_removed(void **state)
{
    fixture *fx = *state;
    char err[256], dead_idx[64], dead_ser[64], dead_pem[64], live_idx[64];
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid); /* pid names no process now */
    tool_ca_close(fx->ca);
    snprintf(dead_idx, sizeof dead_idx, "index.txt.tmp.%ld", (long)pid);
    snprintf(dead_ser, sizeof dead_ser, "serial.tmp.%ld", (long)pid);
    snprintf(dead_pem, sizeof dead_pem, "newcerts/0ABC.pem.tmp.%ld", (long)pid);
    snprintf(live_idx, sizeof live_idx, "index.txt.tmp.%ld", (long)getppid());
    touch_in(fx->dir, dead_idx);
    touch_in(fx->dir, dead_ser);
    touch_in(fx->dir, dead_pem);
    touch_in(fx->dir, live_idx);
    touch_in(fx->dir, "index.txt.tmp.x1"); /* not a writer's */
    fx->ca = tool_ca_open(fx->dir, fx->prof, &fx->crypto, "unit-operator", err, sizeof err);
    assert_non_null(fx->ca);
    assert_false(exists_in(fx->dir, dead_idx));
    assert_false(exists_in(fx->dir, dead_ser));
    assert_false(exists_in(fx->dir, dead_pem));
    assert_true(exists_in(fx->dir, live_idx));
    assert_true(exists_in(fx->dir, "index.txt.tmp.x1"));
}

/* An open that changes nothing rewrites no view file: `ca list` on a full
 * disk failed because every open renamed a new index.txt into place. */
static void test_unchanged_view_is_not_rewritten(void **state)
{
    fixture *fx = *state;
    char err[256], path[512];
    struct stat idx_before, ser_before, idx_after, ser_after;

    tool_ca_close(fx->ca);
    snprintf(path, sizeof path, "%s/index.txt", fx->dir);
    assert_int_equal(stat(path, &idx_before), 0);
    snprintf(path, sizeof path, "%s/serial", fx->dir);
    assert_int_equal(stat(path, &ser_before), 0);
    fx->ca = tool_ca_open(fx->dir, fx->prof, &fx->crypto, "unit-operator", err, sizeof err);
    assert_non_null(fx->ca);
    tool_ca_close(fx->ca);
    fx->ca = tool_ca_open(fx->dir, fx->prof, &fx->crypto, "unit-operator", err, sizeof err);
    assert_non_null(fx->ca);
    snprintf(path, sizeof path, "%s/index.txt", fx->dir);
    assert_int_equal(stat(path, &idx_after), 0);
    snprintf(path, sizeof path, "%s/serial", fx->dir);
    assert_int_equal(stat(path, &ser_after), 0);
    assert_int_equal(idx_before.st_ino, idx_after.st_ino);
    assert_int_equal(ser_before.st_ino, ser_after.st_ino);
}

static void test_operator_passphrase(void **state)
{
    fixture *fx = *state;
    char hash[300], id[128], err[300], path[512];
    tool_config cfg;
    tool_station st;
    FILE *f;

    memset(&cfg, 0, sizeof cfg);
    memset(&st, 0, sizeof st);
    assert_true(tool_operator_hash("open sesame", hash, sizeof hash));
    assert_non_null(strstr(hash, "scrypt:N="));
    assert_null(strstr(hash, "open sesame"));
    cfg.scrypt = hash;
    cfg.require_operator = 1;
    cfg.operator_name = "desk-1";
    snprintf(path, sizeof path, "%s/pass", fx->dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("open sesame\n", f);
    fclose(f);
    /* a secret file is private (p11c_secret_read refuses it otherwise) */
    assert_int_equal(chmod(path, 0600), 0);
    assert_true(tool_operator_auth(&cfg, &st, &fx->crypto, path, NULL, NULL, id, sizeof id, err,
                                   sizeof err));
    assert_string_equal(id, "passphrase:desk-1");
    f = fopen(path, "w");
    fputs("open sesame!\n", f);
    fclose(f);
    assert_false(tool_operator_auth(&cfg, &st, &fx->crypto, path, NULL, NULL, id, sizeof id, err,
                                    sizeof err));
    assert_non_null(strstr(err, "wrong"));
    /* a hash line that is not one is a config error, not a pass */
    cfg.scrypt = "open sesame";
    assert_false(tool_operator_auth(&cfg, &st, &fx->crypto, path, NULL, NULL, id, sizeof id, err,
                                    sizeof err));
    assert_non_null(strstr(err, "not a scrypt"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_makes_an_openssl_ca_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_issues_unique_serials_and_records, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_same_key_is_never_issued_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certified_key_with_another_binding_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests_are_refused_without_a_record, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_orphan_certificate_is_recovered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_writers_temporary_files_are_removed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_view_is_not_rewritten, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operator_passphrase, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
