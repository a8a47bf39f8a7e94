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
#include "ca/ca.h"

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

struct tool_ca {
    char dir[PATH_MAX];
    char newcerts[PATH_MAX];
    char index[PATH_MAX];
    X509 *root;
    EVP_PKEY *key;
    const tm_profile *prof;
    tool_crypto *crypto;
    char operator_id[256];
    int lockfd;
    /* the tool's records, reloaded when issued.txt grows */
    record *recs;
    size_t nrecs, recs_cap;
    off_t recs_size; /* how far issued.txt has been read */
    ino_t recs_ino;
    /* serials of index.txt, sorted; read like recs */
    char **serials;
    size_t nserials, serials_cap;
    off_t index_size;
    ino_t index_ino;
    /* dbmu: one thread at a time holds the flock (it belongs to the open
     * file, not the thread) and touches recs */
    pthread_mutex_t dbmu;
    /* group commit */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tool_ca_item **pending;
    size_t npending, cap;
    int busy;
};

static int sha256_hex(const unsigned char *der, int len, char hex[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    int i;

    hex[0] = 0;
    if (len <= 0 || !EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL))
        return 0;
    for (i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
    return 1;
}

int tool_spki_hash(EVP_PKEY *pub, char hex[65])
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(pub, &der), ok = sha256_hex(der, len, hex);

    OPENSSL_free(der);
    return ok;
}

/* The same hash from a SubjectPublicKeyInfo already held in encoded form (a
 * request's or certificate's): no trip through the key encoders, which cost
 * more than the digest. */
static int spki_hash_of(const X509_PUBKEY *xp, char hex[65])
{
    unsigned char *der = NULL;
    int len, ok;

    hex[0] = 0;
    if (!xp)
        return 0;
    len = i2d_X509_PUBKEY(xp, &der);
    ok = sha256_hex(der, len, hex);
    OPENSSL_free(der);
    return ok;
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

static int sign_cert(X509 *cert, EVP_PKEY *key, tool_crypto *crypto)
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

/* The database files of a new CA and what they start with. */
static const struct {
    const char *name, *text;
} db_files[] = {
    {"index.txt", ""},    {"index.txt.attr", "unique_subject = no\n"},
    {"serial", "1000\n"}, {"issued.txt", ""},
    {"db.lock", ""},
};

int tool_ca_init(const char *dir_in, const char *key_uri, const char *key_file, const char *subject,
                 tool_crypto *crypto, char *err, size_t errlen)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], keyref[PATH_MAX + 600], e[300];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    X509_NAME *name = NULL;
    ASN1_INTEGER *sn = NULL;
    char *pem = NULL;
    size_t pemlen = 0, i;
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
        key = tool_crypto_load_key(crypto, key_uri, NULL, e, sizeof e);
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
        snprintf(err, errlen, "cannot build the root certificate: %s", tool_ossl_err(e, sizeof e));
        goto out;
    }
    if (!sign_cert(cert, key, crypto)) {
        snprintf(err, errlen, "the CA key cannot sign: %s", tool_ossl_err(e, sizeof e));
        goto out;
    }
    pem = pem_of_cert(cert, &pemlen);
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    if (!pem || !write_file_sync(path, pem, pemlen, 0644, 1)) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    for (i = 0; i < sizeof db_files / sizeof *db_files; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, db_files[i].name);
        if (!write_file_sync(path, db_files[i].text, strlen(db_files[i].text), 0644, 1))
            goto ioerr;
    }
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

/*
 * Both files only grow by appends under the lock, so each is read from where
 * the last read stopped; a file that shrank or was replaced (stock `openssl
 * ca` rewrites index.txt through a rename) is read again from the start.
 * Sets *restart when the caller must drop what it has. NULL when unreadable.
 */
static FILE *open_from(const char *path, off_t *pos, ino_t *ino, int *restart)
{
    struct stat sb;
    FILE *f = fopen(path, "r");

    *restart = 0;
    if (!f)
        return NULL;
    if (fstat(fileno(f), &sb) != 0) {
        fclose(f);
        return NULL;
    }
    if (sb.st_ino != *ino || sb.st_size < *pos) {
        *restart = 1;
        *pos = 0;
        *ino = sb.st_ino;
    }
    if (fseeko(f, *pos, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    return f;
}

/* Reads whole lines only; *pos ends after the last complete one. */
static int next_line(FILE *f, char *line, size_t len, off_t *pos)
{
    size_t l;

    if (!fgets(line, (int)len, f))
        return 0;
    l = strlen(line);
    if (l == 0 || line[l - 1] != '\n')
        return 0; /* partial (or overlong) line: read again next time */
    *pos += (off_t)l;
    return 1;
}

static int load_records(tool_ca *ca)
{
    char path[PATH_MAX + 16], line[1024];
    int restart;
    FILE *f;

    snprintf(path, sizeof path, "%s/issued.txt", ca->dir);
    f = open_from(path, &ca->recs_size, &ca->recs_ino, &restart);
    if (!f)
        return errno == ENOENT;
    if (restart)
        ca->nrecs = 0;
    while (next_line(f, line, sizeof line, &ca->recs_size)) {
        record r;
        char *save = NULL, *s = strtok_r(line, "\t\n", &save), *k = strtok_r(NULL, "\t\n", &save);
        char *tok = strtok_r(NULL, "\t\n", &save), *p = strtok_r(NULL, "\t\n", &save);
        (void)tok;
        if (!s || !k || !p || strlen(s) >= sizeof r.serial || strlen(k) != 64)
            continue;
        snprintf(r.serial, sizeof r.serial, "%s", s);
        snprintf(r.spki, sizeof r.spki, "%s", k);
        snprintf(r.purpose, sizeof r.purpose, "%s", p);
        if (ca->nrecs == ca->recs_cap) {
            size_t nc = ca->recs_cap ? ca->recs_cap * 2 : 64;
            record *tmp = realloc(ca->recs, nc * sizeof *tmp);
            if (!tmp)
                break;
            ca->recs = tmp;
            ca->recs_cap = nc;
        }
        ca->recs[ca->nrecs++] = r;
    }
    fclose(f);
    return 1;
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_serials(char **v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Serials in index.txt, kept sorted in ca->serials for uniqueness checks. */
static void load_index_serials(tool_ca *ca)
{
    char line[4096];
    size_t before;
    int restart;
    FILE *f = open_from(ca->index, &ca->index_size, &ca->index_ino, &restart);

    if (!f)
        return;
    if (restart) {
        free_serials(ca->serials, ca->nserials);
        ca->serials = NULL;
        ca->nserials = ca->serials_cap = 0;
    }
    before = ca->nserials;
    while (next_line(f, line, sizeof line, &ca->index_size)) {
        char *fields[4] = {0}, *p = line, *sn;
        int i;
        for (i = 0; i < 4 && p; i++) {
            fields[i] = p;
            p = strchr(p, '\t');
            if (p)
                *p++ = 0;
        }
        if (!fields[3] || !*fields[3])
            continue;
        if (ca->nserials == ca->serials_cap) {
            size_t nc = ca->serials_cap ? ca->serials_cap * 2 : 64;
            char **tmp = realloc(ca->serials, nc * sizeof *tmp);
            if (!tmp)
                break;
            ca->serials = tmp;
            ca->serials_cap = nc;
        }
        sn = strdup(fields[3]);
        if (!sn)
            break;
        ca->serials[ca->nserials++] = sn;
    }
    fclose(f);
    if (ca->nserials != before)
        qsort(ca->serials, ca->nserials, sizeof *ca->serials, cmpstr);
}

static int serial_known(tool_ca *ca, const char *s)
{
    return ca->nserials && bsearch(&s, ca->serials, ca->nserials, sizeof *ca->serials, cmpstr);
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

/* The tool's record of one certificate (see the top of this file). */
static char *record_line(const char *serial, const char *spki, const char *token,
                         const char *purpose, const char *op)
{
    char *line = NULL, ts[32];
    time_t now = time(NULL);
    struct tm tmv;

    gmtime_r(&now, &tmv);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    if (asprintf(&line, "%s\t%s\t%s\t%s\t%s\t%s\n", serial, spki, token, purpose, op, ts) < 0)
        line = NULL;
    return line;
}

/* Certificate files in newcerts/ that no index line names: written just
 * before a crash. Their records are completed here, under the lock. */
static void recover_orphans(tool_ca *ca)
{
    DIR *d = opendir(ca->newcerts);
    struct dirent *e;

    /* once: each file name is a different serial */
    load_index_serials(ca);
    while (d && (e = readdir(d))) {
        char serial[256], path[PATH_MAX + 300], *il, *rl;
        size_t l = strlen(e->d_name);
        X509 *x;
        tm_binding b;
        if (l < 5 || l - 4 >= sizeof serial || strcmp(e->d_name + l - 4, ".pem") != 0)
            continue;
        memcpy(serial, e->d_name, l - 4);
        serial[l - 4] = 0;
        if (serial_known(ca, serial))
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
            char spki[65];
            rl = have || !spki_hash_of(X509_get_X509_PUBKEY(x), spki)
                     ? NULL
                     : record_line(serial, spki, b.serial_text[0] ? b.serial_text : "-",
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
}

static char *cnf_get(CONF *conf, const char *sect, const char *key)
{
    char *v = NCONF_get_string(conf, sect, key);
    ERR_clear_error();
    return v;
}

tool_ca *tool_ca_open(const char *dir, const tm_profile *prof, tool_crypto *crypto,
                      const char *operator_id, char *err, size_t errlen)
{
    tool_ca *ca = calloc(1, sizeof *ca);
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
            snprintf(err, errlen, "%s line %ld: %s", path, line, tool_ossl_err(e, sizeof e));
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
        ca->key = tool_crypto_load_key(crypto, keyref, NULL, e, sizeof e);
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
    tool_ca_close(ca);
    return NULL;
}

void tool_ca_close(tool_ca *ca)
{
    if (!ca)
        return;
    if (ca->lockfd >= 0)
        close(ca->lockfd);
    X509_free(ca->root);
    EVP_PKEY_free(ca->key);
    free(ca->recs);
    free_serials(ca->serials, ca->nserials);
    free(ca->pending);
    pthread_mutex_destroy(&ca->mu);
    pthread_mutex_destroy(&ca->dbmu);
    pthread_cond_destroy(&ca->cv);
    free(ca);
}

X509 *tool_ca_root(tool_ca *ca)
{
    return ca->root;
}

/* Under the lock (or with a fresh read): the certificate for this key and purpose. */
static X509 *find_locked(tool_ca *ca, const char *spki, const char *purpose)
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

X509 *tool_ca_find_by_key(tool_ca *ca, EVP_PKEY *pub, const char *purpose)
{
    char spki[65];
    X509 *x;
    tool_return_val_if_fail(ca != NULL && pub != NULL && purpose != NULL, NULL);

    if (!tool_spki_hash(pub, spki))
        return NULL;
    pthread_mutex_lock(&ca->dbmu);
    flock(ca->lockfd, LOCK_SH);
    x = find_locked(ca, spki, purpose);
    flock(ca->lockfd, LOCK_UN);
    pthread_mutex_unlock(&ca->dbmu);
    return x;
}

/* Steps 9 and 10 for one request, outside the database lock: the
 * certificate is signed (with a random serial, checked for uniqueness later
 * under the lock) but not yet stored. */
static X509 *issue_one(tool_ca *ca, tool_ca_item *it)
{
    tm_violations *v = tm_violations_new();
    EVP_PKEY *pub = X509_REQ_get0_pubkey(it->req);
    X509 *cert = NULL;
    char why[400], e[300];

    if (!v) {
        snprintf(it->error, sizeof it->error, "out of memory");
        goto bad;
    }
    /* Step 9: the request is signed by the key it carries, unless the caller
     * has checked the proof of possession already (CMP). */
    if (!pub ||
        (!it->pop_verified && X509_REQ_verify_ex(it->req, pub, ca->crypto->libctx, NULL) != 1)) {
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
    cert = X509_new_ex(ca->crypto->libctx, NULL);
    if (!cert || !X509_set_version(cert, 2) || !X509_set_pubkey(cert, pub) ||
        !tm_profile_issue(ca->prof, cert, it->req, ca->root, v)) {
        tm_violations_join(v, why, sizeof why);
        snprintf(it->error, sizeof it->error, "cannot issue: %s", why);
        goto bad;
    }
    if (!sign_cert(cert, ca->key, ca->crypto)) {
        snprintf(it->error, sizeof it->error, "the CA key did not sign: %s",
                 tool_ossl_err(e, sizeof e));
        goto bad;
    }
    tm_violations_free(v);
    return cert;
bad:
    tm_violations_free(v);
    X509_free(cert);
    return NULL;
}

/* Under the lock: a serial that neither the index nor this batch knows,
 * drawing (and signing) again on the rare collision. The serial in hex, or
 * NULL with it->error. */
static char *unique_serial(tool_ca *ca, tool_ca_item *it, char **batch, size_t nbatch)
{
    char *sn = NULL, e[300];
    int tries;

    for (tries = 0; tries < 8; tries++) {
        ASN1_INTEGER *r;
        size_t i;
        int dup;

        sn = serial_hex(X509_get0_serialNumber(it->cert));
        dup = !sn || serial_known(ca, sn);
        for (i = 0; sn && i < nbatch; i++)
            if (batch[i] && strcmp(batch[i], sn) == 0)
                dup = 1;
        if (!dup)
            return sn;
        OPENSSL_free(sn);
        sn = NULL;
        r = tm_profile_random_serial();
        if (!r || !X509_set_serialNumber(it->cert, r) ||
            !sign_cert(it->cert, ca->key, ca->crypto)) {
            ASN1_INTEGER_free(r);
            snprintf(it->error, sizeof it->error, "the CA key did not sign: %s",
                     tool_ossl_err(e, sizeof e));
            return NULL;
        }
        ASN1_INTEGER_free(r);
    }
    snprintf(it->error, sizeof it->error, "no unique certificate serial");
    return NULL;
}

static int append_text(char **buf, size_t *len, const char *text)
{
    size_t l = strlen(text);
    char *t = realloc(*buf, *len + l + 1);
    if (!t)
        return 0;
    memcpy(t + *len, text, l + 1);
    *buf = t;
    *len += l;
    return 1;
}

/*
 * Signing, the slow part, happens before the lock; the lock covers what must
 * be serial: the never-twice lookup, serial allocation, the certificate
 * files, one syncfs, then the records and index lines (each fsync'd).
 */
size_t tool_ca_issue_batch(tool_ca *ca, tool_ca_item *items, size_t n)
{
    size_t i, j, issued = 0;
    char **batch = calloc(n ? n : 1, sizeof *batch);
    char(*spki)[65] = calloc(n ? n : 1, sizeof *spki);
    char *idx = NULL, *recs = NULL, path[PATH_MAX + 32];
    size_t idxlen = 0, recslen = 0;
    int *fresh = calloc(n ? n : 1, sizeof *fresh);
    tool_return_val_if_fail(ca != NULL && (items != NULL || n == 0), 0);

    if (!batch || !fresh || !spki) {
        for (i = 0; i < n; i++)
            snprintf(items[i].error, sizeof items[i].error, "out of memory");
        free(batch);
        free(fresh);
        free(spki);
        return 0;
    }
    for (i = 0; i < n; i++) {
        tool_ca_item *it = &items[i];
        it->error[0] = 0;
        it->cert = issue_one(ca, it);
        /* the certificate's key encoding is the one records are made of */
        spki_hash_of(it->cert ? X509_get_X509_PUBKEY(it->cert) : X509_REQ_get_X509_PUBKEY(it->req),
                     spki[i]);
    }
    pthread_mutex_lock(&ca->dbmu);
    flock(ca->lockfd, LOCK_EX);
    load_index_serials(ca);
    for (i = 0; i < n; i++) {
        tool_ca_item *it = &items[i];
        char *pem, *il, *rl;
        size_t pemlen = 0;
        X509 *before;
        size_t recslen0 = recslen;

        /* Never twice: another process (or an earlier run) may have issued for this key. */
        if (spki[i][0] && (before = find_locked(ca, spki[i], it->purpose))) {
            X509_free(it->cert);
            it->cert = before;
            it->error[0] = 0;
            issued++;
            continue;
        }
        /* nor twice in one batch (two requests for one key at once) */
        for (j = 0; j < i; j++)
            if (fresh[j] && strcmp(spki[j], spki[i]) == 0 &&
                strcmp(items[j].purpose, it->purpose) == 0 && X509_up_ref(items[j].cert))
                break;
        if (j < i) {
            X509_free(it->cert);
            it->cert = items[j].cert;
            it->error[0] = 0;
            fresh[i] = 2; /* stands or falls with item j's records below */
            issued++;
            continue;
        }
        if (!it->cert)
            continue;
        batch[i] = unique_serial(ca, it, batch, i);
        pem = batch[i] ? pem_of_cert(it->cert, &pemlen) : NULL;
        snprintf(path, sizeof path, "%s/%s.pem", ca->newcerts, batch[i] ? batch[i] : "?");
        if (!pem || !write_file_new(path, pem, pemlen)) {
            if (batch[i])
                snprintf(it->error, sizeof it->error, "cannot store %.300s: %s", path,
                         strerror(errno));
            X509_free(it->cert);
            it->cert = NULL;
            free(pem);
            continue;
        }
        free(pem);
        il = index_line(it->cert);
        rl = record_line(batch[i], spki[i], it->token_text ? it->token_text : "-", it->purpose,
                         ca->operator_id);
        if (!il || !rl || !append_text(&recs, &recslen, rl) || !append_text(&idx, &idxlen, il)) {
            /* the file stays in newcerts/: recover_orphans records it next time */
            recslen = recslen0;
            snprintf(it->error, sizeof it->error, "out of memory");
            X509_free(it->cert);
            it->cert = NULL;
        } else {
            fresh[i] = 1;
            issued++;
        }
        free(il);
        free(rl);
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
    free(spki);
    free(idx);
    free(recs);
    return issued;
}

int tool_ca_token_lock(tool_ca *ca, const unsigned char *serial, size_t len)
{
    char dir[PATH_MAX + 16];

    if ((size_t)snprintf(dir, sizeof dir, "%s/locks", ca->dir) >= sizeof dir)
        return -1;
    return tool_token_lock(dir, serial, len);
}

void tool_ca_token_unlock(int fd)
{
    tool_token_unlock(fd);
}

void tool_ca_submit(tool_ca *ca, tool_ca_item *item)
{
    tool_return_if_fail(ca != NULL && item != NULL && item->req != NULL);
    pthread_mutex_lock(&ca->mu);
    if (ca->npending == ca->cap) {
        size_t nc = ca->cap ? ca->cap * 2 : 16;
        tool_ca_item **t = realloc(ca->pending, nc * sizeof *t);
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
            tool_ca_item *batch = calloc(n, sizeof *batch);
            tool_ca_item **who = malloc(n * sizeof *who);
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
            tool_ca_issue_batch(ca, batch, n);
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
