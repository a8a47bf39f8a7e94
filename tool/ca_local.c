/*
 * A local CA in a directory that stock `openssl ca -config DIR/ca.cnf` also
 * works with:
 *
 *   DIR/ca.cnf          openssl ca config (the tool reads it too: one truth)
 *   DIR/ca.pem          root certificate
 *   DIR/private/ca.key  root key (0600), unless ca.cnf names a pkcs11: URI
 *   DIR/index.txt       openssl ca database; index.txt.attr: unique_subject = no
 *   DIR/serial          openssl ca's next serial (the tool uses random serials)
 *   DIR/newcerts/       every issued certificate, SERIAL.pem
 *   DIR/issued.txt      the tool's record per certificate: serial, SHA-256 of the
 *                       public key, token serial, purpose, operator, time
 *   DIR/db.lock         flock(2)ed by the tool around every database write
 *
 * Order of writes, so that a crash never leaves a record without its
 * certificate: newcerts/SERIAL.pem (fsync, dir fsync), then issued.txt, then
 * index.txt (each fsync'd). A certificate file whose records were lost to a
 * crash is picked up again when the CA is next opened.
 */
#include "tool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

typedef struct record {
    char serial[80];
    char spki[65];
    char purpose[32];
} record;

struct tm_ca {
    char dir[PATH_MAX];
    char newcerts[PATH_MAX];
    char index[PATH_MAX];
    X509 *root;
    EVP_PKEY *key;
    const tm_profile *prof;
    tm_crypto *crypto;
    char operator_id[256];
    int lockfd;
    /* the tool's records, reloaded when issued.txt grows */
    record *recs;
    size_t nrecs;
    off_t recs_size;
    /* dbmu: one thread at a time holds the flock (it belongs to the open
     * file, not the thread) and touches recs */
    pthread_mutex_t dbmu;
    /* group commit */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tm_ca_item **pending;
    size_t npending, cap;
    int busy;
};

int tm_spki_hash(EVP_PKEY *pub, char hex[65])
{
    unsigned char *der = NULL, md[32];
    unsigned int mdlen = 0;
    int len = i2d_PUBKEY(pub, &der), i;

    hex[0] = 0;
    if (len <= 0)
        return 0;
    if (!EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL)) {
        OPENSSL_free(der);
        return 0;
    }
    OPENSSL_free(der);
    for (i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
    return 1;
}

static char *serial_hex(const ASN1_INTEGER *sn)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
    char *h = NULL;
    if (bn)
        h = BN_is_zero(bn) ? OPENSSL_strdup("00") : BN_bn2hex(bn);
    BN_free(bn);
    return h;
}

static int fsync_path(const char *path, int dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC), rc;
    if (fd < 0)
        return 0;
    rc = fsync(fd);
    close(fd);
    return rc == 0;
}

/* Appends text with one write(2) on O_APPEND, then fsync. */
static int append_sync(const char *path, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644), ok = 0;
    if (fd < 0)
        return 0;
    ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    return ok;
}

static int write_file_sync(const char *path, const char *text, size_t len, mode_t mode, int excl)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (excl ? O_EXCL : O_TRUNC), mode), ok;
    if (fd < 0)
        return 0;
    ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    return ok;
}

/* A new file, not yet synced: the batch syncs all of them at once. */
static int write_file_new(const char *path, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644), ok;
    if (fd < 0)
        return 0;
    ok = write(fd, text, len) == (ssize_t)len;
    if (close(fd) != 0)
        ok = 0;
    return ok;
}

static char *pem_of_cert(X509 *cert, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL, *out = NULL;
    long l;
    if (b && PEM_write_bio_X509(b, cert)) {
        l = BIO_get_mem_data(b, &p);
        out = malloc(l + 1);
        if (out) {
            memcpy(out, p, l);
            out[l] = 0;
            *len = l;
        }
    }
    BIO_free(b);
    return out;
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = NULL;
    if (f) {
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    return x;
}

/* ---- ca init --------------------------------------------------------------------- */

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return 0;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

static const char *md_for(EVP_PKEY *k)
{
    if (EVP_PKEY_is_a(k, "ED25519") || EVP_PKEY_is_a(k, "ED448"))
        return NULL;
    if (EVP_PKEY_is_a(k, "EC") && EVP_PKEY_get_bits(k) >= 384)
        return "SHA384";
    return "SHA256";
}

static int sign_cert(X509 *cert, EVP_PKEY *key, tm_crypto *crypto)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md &&
             EVP_DigestSignInit_ex(md, NULL, md_for(key), crypto ? crypto->libctx : NULL, NULL, key,
                                   NULL) > 0 &&
             X509_sign_ctx(cert, md) > 0;
    EVP_MD_CTX_free(md);
    return ok;
}

#ifndef TM_SOURCE_CONF_DIR
#define TM_SOURCE_CONF_DIR ""
#endif
#ifndef TM_INSTALLED_CONF_DIR
#define TM_INSTALLED_CONF_DIR "/etc/tokenmint"
#endif

/* The profile's stock-openssl template (conf/ca.cnf): the build tree's, else
 * the installed one. NULL when neither is there. */
static FILE *open_template(void)
{
    char path[PATH_MAX];
    FILE *f = NULL;

    if (TM_SOURCE_CONF_DIR[0]) {
        snprintf(path, sizeof path, "%s/ca.cnf", TM_SOURCE_CONF_DIR);
        f = fopen(path, "r");
    }
    if (!f) {
        snprintf(path, sizeof path, "%s/ca.cnf", TM_INSTALLED_CONF_DIR);
        f = fopen(path, "r");
    }
    return f;
}

static const char *fallback_cnf = "[ ca ]\n"
                                  "default_ca = tokenmint_ca\n"
                                  "\n"
                                  "[ tokenmint_ca ]\n"
                                  "dir = .\n"
                                  "database = $dir/index.txt\n"
                                  "new_certs_dir = $dir/newcerts\n"
                                  "certificate = $dir/ca.pem\n"
                                  "private_key = $dir/ca.key\n"
                                  "rand_serial = yes\n"
                                  "unique_subject = no\n"
                                  "default_md = sha256\n"
                                  "default_days = 3650\n"
                                  "policy = tokenmint_policy\n"
                                  "email_in_dn = no\n"
                                  "copy_extensions = copy\n"
                                  "x509_extensions = auth\n"
                                  "\n"
                                  "[ tokenmint_policy ]\n"
                                  "serialNumber = supplied\n"
                                  "countryName = optional\n"
                                  "organizationName = optional\n"
                                  "organizationalUnitName = optional\n"
                                  "\n"
                                  "[ auth ]\n"
                                  "basicConstraints = critical, CA:FALSE\n"
                                  "keyUsage = critical, digitalSignature\n"
                                  "extendedKeyUsage = clientAuth\n"
                                  "subjectKeyIdentifier = hash\n"
                                  "authorityKeyIdentifier = keyid:always\n";

static int key_is(const char *line, const char *key)
{
    size_t n = strlen(key);
    line += strspn(line, " \t");
    return strncmp(line, key, n) == 0 && (line[n] == ' ' || line[n] == '\t' || line[n] == '=');
}

/* DIR/ca.cnf: the profile's template with this directory's paths put in, so
 * that `openssl ca -config DIR/ca.cnf` works from anywhere. */
static int write_cnf(const char *dir, const char *keyref, char *err, size_t errlen)
{
    char path[PATH_MAX + 16], line[2048];
    FILE *tmpl = open_template(), *out = NULL;
    const char *p = fallback_cnf;
    int fd, ok = 0;

    snprintf(path, sizeof path, "%s/ca.cnf", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!out) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out;
    }
    fprintf(out,
            "# Written by `tokenmint ca init` from the profile's ca.cnf template. Both the\n"
            "# tool (`tokenmint issue --ca %s`) and stock\n"
            "# `openssl ca -config %s/ca.cnf` issue from this directory.\n"
            "# The tool flock()s db.lock around every database write. Stock openssl ca\n"
            "# does no locking: never run it while a `tokenmint issue` runs here.\n\n",
            dir, dir);
    for (;;) {
        if (tmpl) {
            if (!fgets(line, sizeof line, tmpl))
                break;
        } else {
            size_t l = strcspn(p, "\n");
            if (!*p)
                break;
            snprintf(line, sizeof line, "%.*s\n", (int)l, p);
            p += l + (p[l] == '\n');
        }
        if (key_is(line, "dir"))
            fprintf(out, "dir = %s\nserial = $dir/serial\n", dir);
        else if (key_is(line, "new_certs_dir"))
            fprintf(out, "new_certs_dir = $dir/newcerts\n");
        else if (key_is(line, "private_key"))
            fprintf(out, "private_key = %s\n", keyref);
        else if (key_is(line, "serial"))
            continue;
        else
            fputs(line, out);
    }
    ok = fflush(out) == 0 && fsync(fileno(out)) == 0;
    if (!ok)
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
out:
    if (out)
        fclose(out);
    if (tmpl)
        fclose(tmpl);
    return ok;
}

int tm_ca_init(const char *dir_in, const char *key_uri, const char *key_file, const char *subject,
               tm_crypto *crypto, char *err, size_t errlen)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], keyref[PATH_MAX + 600], e[300];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    X509_NAME *name = NULL;
    ASN1_INTEGER *sn = NULL;
    char *pem = NULL;
    size_t pemlen = 0;
    int ok = 0;

    if (mkdir(dir_in, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir_in, strerror(errno));
        return 0;
    }
    if (!realpath(dir_in, dir)) {
        snprintf(err, errlen, "%s: %s", dir_in, strerror(errno));
        return 0;
    }
    snprintf(path, sizeof path, "%s/ca.cnf", dir);
    if (access(path, F_OK) == 0) {
        snprintf(err, errlen, "%s is already a CA directory (ca.cnf exists); not touching it", dir);
        return 0;
    }
    snprintf(path, sizeof path, "%s/newcerts", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/private", dir);
    mkdir(path, 0700);

    if (key_uri) {
        key = tm_crypto_load_key(crypto, key_uri, NULL, e, sizeof e);
        if (!key) {
            snprintf(err, errlen, "--key %s: %s", key_uri, e);
            goto out;
        }
        snprintf(keyref, sizeof keyref, "%s", key_uri);
    } else if (key_file) {
        FILE *f = fopen(key_file, "r");
        if (f) {
            key = PEM_read_PrivateKey_ex(f, NULL, NULL, NULL, crypto->libctx, NULL);
            fclose(f);
        }
        if (!key) {
            snprintf(err, errlen, "--key-file %s: not a readable unencrypted PEM private key",
                     key_file);
            goto out;
        }
        if (!realpath(key_file, keyref))
            snprintf(keyref, sizeof keyref, "%s", key_file);
    } else {
        FILE *f;
        int fd;
        key = EVP_PKEY_Q_keygen(crypto->libctx, NULL, "EC", "P-256");
        snprintf(keyref, sizeof keyref, "%s/private/ca.key", dir);
        fd = key ? open(keyref, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
        f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f || !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) || fflush(f) ||
            fsync(fileno(f))) {
            snprintf(err, errlen, "cannot write %s: %s", keyref, strerror(errno));
            if (f)
                fclose(f);
            else if (fd >= 0)
                close(fd);
            goto out;
        }
        fclose(f);
    }

    cert = X509_new();
    name = X509_NAME_new();
    sn = tm_profile_random_serial();
    if (!cert || !name || !sn || !X509_set_version(cert, 2) || !X509_set_serialNumber(cert, sn) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                    (const unsigned char *)(subject ? subject : "tokenmint CA"), -1,
                                    -1, 0) ||
        !X509_set_subject_name(cert, name) || !X509_set_issuer_name(cert, name) ||
        !X509_gmtime_adj(X509_getm_notBefore(cert), 0) ||
        !X509_time_adj_ex(X509_getm_notAfter(cert), 7305, 0, NULL) || !X509_set_pubkey(cert, key) ||
        !add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE") ||
        !add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        !add_ext(cert, cert, NID_subject_key_identifier, "hash") ||
        !add_ext(cert, cert, NID_authority_key_identifier, "keyid:always")) {
        snprintf(err, errlen, "cannot build the root certificate: %s", tm_ossl_err(e, sizeof e));
        goto out;
    }
    if (!sign_cert(cert, key, crypto)) {
        snprintf(err, errlen, "the CA key cannot sign: %s", tm_ossl_err(e, sizeof e));
        goto out;
    }
    pem = pem_of_cert(cert, &pemlen);
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    if (!pem || !write_file_sync(path, pem, pemlen, 0644, 1)) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    snprintf(path, sizeof path, "%s/index.txt", dir);
    if (!write_file_sync(path, "", 0, 0644, 1))
        goto ioerr;
    snprintf(path, sizeof path, "%s/index.txt.attr", dir);
    if (!write_file_sync(path, "unique_subject = no\n", 20, 0644, 1))
        goto ioerr;
    snprintf(path, sizeof path, "%s/serial", dir);
    if (!write_file_sync(path, "1000\n", 5, 0644, 1))
        goto ioerr;
    snprintf(path, sizeof path, "%s/issued.txt", dir);
    if (!write_file_sync(path, "", 0, 0644, 1))
        goto ioerr;
    snprintf(path, sizeof path, "%s/db.lock", dir);
    if (!write_file_sync(path, "", 0, 0644, 1))
        goto ioerr;
    /* ca.cnf last: its presence marks a complete CA directory. */
    if (!write_cnf(dir, keyref, err, errlen))
        goto out;
    fsync_path(dir, 1);
    ok = 1;
    goto out;
ioerr:
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
out:
    free(pem);
    ASN1_INTEGER_free(sn);
    X509_NAME_free(name);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ok;
}

/* ---- open --------------------------------------------------------------------------- */

static int load_records(tm_ca *ca)
{
    char path[PATH_MAX + 16], line[1024];
    struct stat sb;
    FILE *f;

    snprintf(path, sizeof path, "%s/issued.txt", ca->dir);
    if (stat(path, &sb) != 0)
        return errno == ENOENT;
    if (sb.st_size == ca->recs_size)
        return 1;
    f = fopen(path, "r");
    if (!f)
        return 0;
    ca->nrecs = 0;
    while (fgets(line, sizeof line, f)) {
        record r;
        char *save = NULL, *s = strtok_r(line, "\t\n", &save), *k = strtok_r(NULL, "\t\n", &save);
        char *tok = strtok_r(NULL, "\t\n", &save), *p = strtok_r(NULL, "\t\n", &save);
        record *tmp;
        (void)tok;
        if (!s || !k || !p || strlen(s) >= sizeof r.serial || strlen(k) != 64)
            continue;
        snprintf(r.serial, sizeof r.serial, "%s", s);
        snprintf(r.spki, sizeof r.spki, "%s", k);
        snprintf(r.purpose, sizeof r.purpose, "%s", p);
        tmp = realloc(ca->recs, (ca->nrecs + 1) * sizeof *tmp);
        if (!tmp)
            break;
        ca->recs = tmp;
        ca->recs[ca->nrecs++] = r;
    }
    fclose(f);
    ca->recs_size = sb.st_size;
    return 1;
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Serials in index.txt, sorted, for uniqueness checks. */
static char **load_index_serials(tm_ca *ca, size_t *n)
{
    FILE *f = fopen(ca->index, "r");
    char line[4096], **v = NULL, **tmp;
    size_t cnt = 0;

    *n = 0;
    if (!f)
        return NULL;
    while (fgets(line, sizeof line, f)) {
        char *fields[4] = {0}, *p = line;
        int i;
        for (i = 0; i < 4 && p; i++) {
            fields[i] = p;
            p = strchr(p, '\t');
            if (p)
                *p++ = 0;
        }
        if (!fields[3] || !*fields[3])
            continue;
        tmp = realloc(v, (cnt + 1) * sizeof *v);
        if (!tmp)
            break;
        v = tmp;
        v[cnt++] = strdup(fields[3]);
    }
    fclose(f);
    if (cnt)
        qsort(v, cnt, sizeof *v, cmpstr);
    *n = cnt;
    return v;
}

static int serial_known(char **v, size_t n, const char *s)
{
    return n && bsearch(&s, v, n, sizeof *v, cmpstr) != NULL;
}

static void free_serials(char **v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static char *index_line(X509 *cert)
{
    const ASN1_TIME *na = X509_get0_notAfter(cert);
    char *sn = serial_hex(X509_get0_serialNumber(cert));
    char *subj = X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0);
    char *line = NULL;

    if (sn && subj &&
        asprintf(&line, "V\t%.*s\t\t%s\tunknown\t%s\n", na->length, (const char *)na->data, sn,
                 subj) < 0)
        line = NULL;
    OPENSSL_free(sn);
    OPENSSL_free(subj);
    return line;
}

static char *record_line(tm_ca *ca, X509 *cert, const char *token, const char *purpose,
                         const char *op)
{
    char spki[65], *sn = serial_hex(X509_get0_serialNumber(cert)), *line = NULL, ts[32];
    time_t now = time(NULL);
    struct tm tmv;

    gmtime_r(&now, &tmv);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    if (sn && tm_spki_hash(X509_get0_pubkey(cert), spki) &&
        asprintf(&line, "%s\t%s\t%s\t%s\t%s\t%s\n", sn, spki, token, purpose, op, ts) < 0)
        line = NULL;
    OPENSSL_free(sn);
    return line;
}

/* Certificate files in newcerts/ that no index line names: written just
 * before a crash. Their records are completed here, under the lock. */
static void recover_orphans(tm_ca *ca)
{
    size_t n = 0;
    char **serials = load_index_serials(ca, &n);
    DIR *d = opendir(ca->newcerts);
    struct dirent *e;

    while (d && (e = readdir(d))) {
        char serial[256], path[PATH_MAX + 300], *il, *rl;
        size_t l = strlen(e->d_name);
        X509 *x;
        tm_binding b;
        if (l < 5 || l - 4 >= sizeof serial || strcmp(e->d_name + l - 4, ".pem") != 0)
            continue;
        memcpy(serial, e->d_name, l - 4);
        serial[l - 4] = 0;
        if (serial_known(serials, n, serial))
            continue;
        snprintf(path, sizeof path, "%s/%s", ca->newcerts, e->d_name);
        x = read_cert(path);
        if (!x)
            continue;
        memset(&b, 0, sizeof b);
        tm_binding_from_cert(ca->prof, x, &b, NULL);
        load_records(ca);
        {
            size_t i;
            int have = 0;
            for (i = 0; i < ca->nrecs; i++)
                if (strcmp(ca->recs[i].serial, serial) == 0)
                    have = 1;
            rl = have ? NULL
                      : record_line(ca, x, b.serial_text[0] ? b.serial_text : "-",
                                    b.purpose[0] ? b.purpose : "-", "recovered");
        }
        if (rl) {
            snprintf(path, sizeof path, "%s/issued.txt", ca->dir);
            append_sync(path, rl, strlen(rl));
        }
        il = index_line(x);
        if (il)
            append_sync(ca->index, il, strlen(il));
        tool_debug("CA: recovered %s (file without index line)", serial);
        free(il);
        free(rl);
        X509_free(x);
    }
    if (d)
        closedir(d);
    free_serials(serials, n);
}

static char *cnf_get(CONF *conf, const char *sect, const char *key)
{
    char *v = NCONF_get_string(conf, sect, key);
    ERR_clear_error();
    return v;
}

tm_ca *tm_ca_open(const char *dir, const tm_profile *prof, tm_crypto *crypto,
                  const char *operator_id, char *err, size_t errlen)
{
    tm_ca *ca = calloc(1, sizeof *ca);
    char path[PATH_MAX + 32], e[300];
    CONF *conf = NULL;
    long line = -1;
    const char *sect, *keyref, *certp, *db, *nc;

    if (!ca)
        return NULL;
    ca->lockfd = -1;
    pthread_mutex_init(&ca->mu, NULL);
    pthread_mutex_init(&ca->dbmu, NULL);
    pthread_cond_init(&ca->cv, NULL);
    ca->prof = prof;
    ca->crypto = crypto;
    snprintf(ca->operator_id, sizeof ca->operator_id, "%s", operator_id ? operator_id : "-");
    if (!realpath(dir, ca->dir)) {
        snprintf(err, errlen, "--ca %s: %s", dir, strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof path, "%s/ca.cnf", ca->dir);
    conf = NCONF_new(NULL);
    if (!conf || NCONF_load(conf, path, &line) <= 0) {
        if (line > 0)
            snprintf(err, errlen, "%s line %ld: %s", path, line, tm_ossl_err(e, sizeof e));
        else
            snprintf(err, errlen, "%s: cannot read (is %s a CA made with `tokenmint ca init`?)",
                     path, dir);
        goto fail;
    }
    sect = cnf_get(conf, "ca", "default_ca");
    keyref = sect ? cnf_get(conf, sect, "private_key") : NULL;
    certp = sect ? cnf_get(conf, sect, "certificate") : NULL;
    db = sect ? cnf_get(conf, sect, "database") : NULL;
    nc = sect ? cnf_get(conf, sect, "new_certs_dir") : NULL;
    if (!keyref || !certp || !db || !nc) {
        snprintf(err, errlen,
                 "%s: [ca] default_ca section must set private_key, certificate, database and "
                 "new_certs_dir",
                 path);
        goto fail;
    }
    snprintf(ca->index, sizeof ca->index, "%s", db);
    snprintf(ca->newcerts, sizeof ca->newcerts, "%s", nc);
    ca->root = read_cert(certp);
    if (!ca->root) {
        snprintf(err, errlen, "%s: not a PEM certificate", certp);
        goto fail;
    }
    if (strncmp(keyref, "pkcs11:", 7) == 0) {
        ca->key = tm_crypto_load_key(crypto, keyref, NULL, e, sizeof e);
    } else {
        FILE *f = fopen(keyref, "r");
        if (f) {
            ca->key = PEM_read_PrivateKey_ex(f, NULL, NULL, NULL, crypto->libctx, NULL);
            fclose(f);
        }
        snprintf(e, sizeof e, "not a readable unencrypted PEM private key");
    }
    if (!ca->key) {
        snprintf(err, errlen, "CA key %s: %s", keyref, e);
        goto fail;
    }
    if (X509_check_private_key(ca->root, ca->key) != 1) {
        snprintf(err, errlen, "CA key %s does not match %s", keyref, certp);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/db.lock", ca->dir);
    ca->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (ca->lockfd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    flock(ca->lockfd, LOCK_EX);
    recover_orphans(ca);
    load_records(ca);
    flock(ca->lockfd, LOCK_UN);
    NCONF_free(conf);
    return ca;
fail:
    NCONF_free(conf);
    tm_ca_close(ca);
    return NULL;
}

void tm_ca_close(tm_ca *ca)
{
    if (!ca)
        return;
    if (ca->lockfd >= 0)
        close(ca->lockfd);
    X509_free(ca->root);
    EVP_PKEY_free(ca->key);
    free(ca->recs);
    free(ca->pending);
    pthread_mutex_destroy(&ca->mu);
    pthread_mutex_destroy(&ca->dbmu);
    pthread_cond_destroy(&ca->cv);
    free(ca);
}

X509 *tm_ca_root(tm_ca *ca)
{
    return ca->root;
}

/* Under the lock (or with a fresh read): the certificate for this key and purpose. */
static X509 *find_locked(tm_ca *ca, const char *spki, const char *purpose)
{
    char path[PATH_MAX + 100];
    size_t i;

    load_records(ca);
    for (i = ca->nrecs; i-- > 0;) {
        if (strcmp(ca->recs[i].spki, spki) != 0 || strcmp(ca->recs[i].purpose, purpose) != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s.pem", ca->newcerts, ca->recs[i].serial);
        return read_cert(path);
    }
    return NULL;
}

X509 *tm_ca_find_by_key(tm_ca *ca, EVP_PKEY *pub, const char *purpose)
{
    char spki[65];
    X509 *x;
    tm_return_val_if_fail(ca != NULL && pub != NULL && purpose != NULL, NULL);

    if (!tm_spki_hash(pub, spki))
        return NULL;
    pthread_mutex_lock(&ca->dbmu);
    flock(ca->lockfd, LOCK_SH);
    x = find_locked(ca, spki, purpose);
    flock(ca->lockfd, LOCK_UN);
    pthread_mutex_unlock(&ca->dbmu);
    return x;
}

/* Steps 9 and 10 for one request; the certificate is signed but not yet stored. */
static X509 *issue_one(tm_ca *ca, tm_ca_item *it, char **serials, size_t nserials, char **batch,
                       size_t nbatch)
{
    tm_violations *v = tm_violations_new();
    EVP_PKEY *pub = X509_REQ_get0_pubkey(it->req);
    X509 *cert = NULL;
    char why[400], e[300], *sn = NULL;
    int tries;

    if (!v)
        goto bad;
    /* Step 9: the request is signed by the key it carries. */
    if (!pub || X509_REQ_verify_ex(it->req, pub, ca->crypto->libctx, NULL) != 1) {
        snprintf(it->error, sizeof it->error,
                 "request signature does not verify with its public key");
        goto bad;
    }
    if (tm_profile_check_req(ca->prof, it->req, v) != 0) {
        tm_violations_join(v, why, sizeof why);
        snprintf(it->error, sizeof it->error, "request breaks the profile: %s", why);
        goto bad;
    }
    /* Step 10. */
    cert = X509_new();
    if (!cert || !X509_set_version(cert, 2) || !X509_set_pubkey(cert, pub) ||
        !tm_profile_issue(ca->prof, cert, it->req, ca->root, v)) {
        tm_violations_join(v, why, sizeof why);
        snprintf(it->error, sizeof it->error, "cannot issue: %s", why);
        goto bad;
    }
    for (tries = 0; tries < 8; tries++) {
        size_t i;
        int dup;
        OPENSSL_free(sn);
        sn = serial_hex(X509_get0_serialNumber(cert));
        dup = !sn || serial_known(serials, nserials, sn);
        for (i = 0; sn && i < nbatch; i++)
            if (batch[i] && strcmp(batch[i], sn) == 0)
                dup = 1;
        if (!dup)
            break;
        {
            ASN1_INTEGER *r = tm_profile_random_serial();
            X509_set_serialNumber(cert, r);
            ASN1_INTEGER_free(r);
        }
    }
    OPENSSL_free(sn);
    if (tries == 8) {
        snprintf(it->error, sizeof it->error, "no unique certificate serial");
        goto bad;
    }
    if (!sign_cert(cert, ca->key, ca->crypto)) {
        snprintf(it->error, sizeof it->error, "the CA key did not sign: %s",
                 tm_ossl_err(e, sizeof e));
        goto bad;
    }
    tm_violations_free(v);
    return cert;
bad:
    tm_violations_free(v);
    X509_free(cert);
    return NULL;
}

size_t tm_ca_issue_batch(tm_ca *ca, tm_ca_item *items, size_t n)
{
    size_t nserials = 0, i, issued = 0;
    char **serials = NULL, **batch = calloc(n ? n : 1, sizeof *batch);
    char *idx = NULL, *recs = NULL, path[PATH_MAX + 32];
    size_t idxlen = 0, recslen = 0;
    int *fresh = calloc(n ? n : 1, sizeof *fresh);
    tm_return_val_if_fail(ca != NULL && (items != NULL || n == 0), 0);

    if (!batch || !fresh) {
        for (i = 0; i < n; i++)
            snprintf(items[i].error, sizeof items[i].error, "out of memory");
        free(batch);
        free(fresh);
        return 0;
    }
    pthread_mutex_lock(&ca->dbmu);
    flock(ca->lockfd, LOCK_EX);
    serials = load_index_serials(ca, &nserials);
    for (i = 0; i < n; i++) {
        tm_ca_item *it = &items[i];
        char spki[65], *pem, *il, *rl;
        size_t pemlen = 0;
        EVP_PKEY *pub = X509_REQ_get0_pubkey(it->req);

        it->cert = NULL;
        /* Never twice: another process (or an earlier run) may have issued for this key. */
        if (pub && tm_spki_hash(pub, spki) && (it->cert = find_locked(ca, spki, it->purpose))) {
            issued++;
            continue;
        }
        it->cert = issue_one(ca, it, serials, nserials, batch, i);
        if (!it->cert)
            continue;
        batch[i] = serial_hex(X509_get0_serialNumber(it->cert));
        pem = pem_of_cert(it->cert, &pemlen);
        snprintf(path, sizeof path, "%s/%s.pem", ca->newcerts, batch[i] ? batch[i] : "?");
        if (!batch[i] || !pem || !write_file_new(path, pem, pemlen)) {
            snprintf(it->error, sizeof it->error, "cannot store %.300s: %s", path, strerror(errno));
            X509_free(it->cert);
            it->cert = NULL;
            free(pem);
            continue;
        }
        free(pem);
        il = index_line(it->cert);
        rl = record_line(ca, it->cert, it->token_text ? it->token_text : "-", it->purpose,
                         ca->operator_id);
        if (il && rl) {
            char *t1 = realloc(idx, idxlen + strlen(il) + 1), *t2;
            if (t1) {
                idx = t1;
                memcpy(idx + idxlen, il, strlen(il) + 1);
                idxlen += strlen(il);
            }
            t2 = realloc(recs, recslen + strlen(rl) + 1);
            if (t2) {
                recs = t2;
                memcpy(recs + recslen, rl, strlen(rl) + 1);
                recslen += strlen(rl);
            }
        }
        free(il);
        free(rl);
        fresh[i] = 1;
        issued++;
    }
    /* One directory fsync and one append per file for the whole batch. */
    if (recslen) {
        /* One syncfs for every certificate file of the batch (an fsync per
         * file costs milliseconds each); only then the records. */
        int dfd = open(ca->newcerts, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || syncfs(dfd) != 0) {
            for (i = 0; i < n; i++)
                if (fresh[i]) {
                    X509_free(items[i].cert);
                    items[i].cert = NULL;
                    snprintf(items[i].error, sizeof items[i].error,
                             "cannot sync the new certificate files: %s", strerror(errno));
                    issued--;
                    fresh[i] = 0;
                }
            recslen = 0;
        }
        if (dfd >= 0)
            close(dfd);
    }
    if (recslen) {
        snprintf(path, sizeof path, "%s/issued.txt", ca->dir);
        if (!append_sync(path, recs, recslen) || !append_sync(ca->index, idx, idxlen)) {
            /* The files are in newcerts/: recover_orphans completes them next time. */
            for (i = 0; i < n; i++)
                if (fresh[i]) {
                    snprintf(items[i].error, sizeof items[i].error,
                             "cannot update the CA database: %s", strerror(errno));
                    X509_free(items[i].cert);
                    items[i].cert = NULL;
                    issued--;
                }
        }
    }
    flock(ca->lockfd, LOCK_UN);
    pthread_mutex_unlock(&ca->dbmu);
    for (i = 0; i < n; i++)
        OPENSSL_free(batch[i]);
    free(batch);
    free(fresh);
    free(idx);
    free(recs);
    free_serials(serials, nserials);
    return issued;
}

int tm_ca_token_lock(tm_ca *ca, const unsigned char *serial, size_t len)
{
    char path[PATH_MAX + 200];
    size_t i, off;
    int fd;

    off = (size_t)snprintf(path, sizeof path, "%s/locks", ca->dir);
    mkdir(path, 0755);
    off += (size_t)snprintf(path + off, sizeof path - off, "/");
    for (i = 0; i < len && off + 3 < sizeof path; i++)
        off += (size_t)snprintf(path + off, sizeof path - off, "%02x", serial[i]);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    /* Never waits: a batch holds its tokens' locks until it ends, so two
     * waiting batches could hold each other's tokens for ever. */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        close(fd);
        return busy ? -2 : -1;
    }
    return fd;
}

void tm_ca_token_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

void tm_ca_submit(tm_ca *ca, tm_ca_item *item)
{
    tm_return_if_fail(ca != NULL && item != NULL && item->req != NULL);
    pthread_mutex_lock(&ca->mu);
    if (ca->npending == ca->cap) {
        size_t nc = ca->cap ? ca->cap * 2 : 16;
        tm_ca_item **t = realloc(ca->pending, nc * sizeof *t);
        if (!t) {
            pthread_mutex_unlock(&ca->mu);
            snprintf(item->error, sizeof item->error, "out of memory");
            return;
        }
        ca->pending = t;
        ca->cap = nc;
    }
    ca->pending[ca->npending++] = item;
    while (!item->done) {
        if (!ca->busy) {
            /* Leader: takes every request waiting now into one batch. */
            size_t n = ca->npending, i;
            tm_ca_item *batch = calloc(n, sizeof *batch);
            tm_ca_item **who = malloc(n * sizeof *who);
            ca->busy = 1;
            if (!batch || !who) {
                for (i = 0; i < n; i++) {
                    snprintf(ca->pending[i]->error, sizeof ca->pending[i]->error, "out of memory");
                    ca->pending[i]->done = 1;
                }
                ca->npending = 0;
                ca->busy = 0;
                free(batch);
                free(who);
                pthread_cond_broadcast(&ca->cv);
                continue;
            }
            memcpy(who, ca->pending, n * sizeof *who);
            for (i = 0; i < n; i++)
                batch[i] = *who[i];
            ca->npending = 0;
            pthread_mutex_unlock(&ca->mu);
            tm_ca_issue_batch(ca, batch, n);
            pthread_mutex_lock(&ca->mu);
            for (i = 0; i < n; i++) {
                who[i]->cert = batch[i].cert;
                memcpy(who[i]->error, batch[i].error, sizeof batch[i].error);
                who[i]->done = 1;
            }
            free(batch);
            free(who);
            ca->busy = 0;
            pthread_cond_broadcast(&ca->cv);
        } else {
            pthread_cond_wait(&ca->cv, &ca->mu);
        }
    }
    pthread_mutex_unlock(&ca->mu);
}
