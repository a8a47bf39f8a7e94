/*
 * A local CA in a directory that stock `openssl ca -config DIR/ca.cnf` also
 * works with:
 *
 *   DIR/ca.cnf          openssl ca config (the tool reads it too: one truth);
 *                       [ tokenmint ] database = a PostgreSQL connection
 *                       string, when the records live there
 *   DIR/ca.pem          root certificate
 *   DIR/private/ca.key  root key (0600), unless ca.cnf names a pkcs11: URI
 *   DIR/ca.db           the CA's records (SQLite, WAL), unless PostgreSQL:
 *                       the truth about every certificate (castore.h)
 *   DIR/index.txt       openssl ca database, DIR/serial, DIR/newcerts/:
 *                       written from the records (ca_view.c); what stock
 *                       openssl ca adds there is taken in on the next open
 *                       (ca_import.c)
 *   DIR/db.lock         flock(2)ed by the tool around the view files
 *
 * A certificate is acknowledged only after the batch holding its record
 * (with the certificate's DER) is committed: durable in the database. Its
 * newcerts/ file follows (ca serve: from the view's writer thread, right
 * after the answer), then the index.txt view (ca serve: at most about a
 * quarter of a second later; also when the CA is closed or next opened).
 */
#include "ca/ca.h"
#include "ca/crl.h"

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

#include "ca_files.h"
#include "castore.h"

/* How often a busy `ca serve` (tool_ca_set_lazy_view) rewrites index.txt: at
 * most every CA_VIEW_MIN_MS, and no more often than 20 times what the last
 * rewrite took (a large CA rewrites less often), so the view costs a server
 * at most about 5% of its time. Other callers rewrite after every batch.
 * The lazy view is written by a thread of its own, on a database connection
 * of its own: neither the rewrite nor the certificate files (newcerts/ is
 * written there too) hold up a batch or an answer. */
#define CA_VIEW_MIN_MS 250.0

/* A committed certificate whose newcerts/ file is still to be written. */
typedef struct pending_file {
    char serial[TOOL_CS_SERIAL_MAX];
    unsigned char *der;
    size_t len;
} pending_file;

typedef struct local_ca {
    tool_ca base; /* first: the interface (ca/ca.h) */
    char dir[PATH_MAX];
    char newcerts[PATH_MAX];
    char index[PATH_MAX];
    char serial[PATH_MAX];
    X509 *root;
    EVP_PKEY *key;
    const tm_profile *prof;
    tool_crypto *crypto;
    char operator_id[256];
    int lockfd;
    long crl_days; /* ca.cnf default_crl_days */
    tool_castore *db;
    char conninfo[2048]; /* what db was opened with: the view thread opens its own */
    /* dbmu: one thread at a time uses db (a connection is not shared) */
    pthread_mutex_t dbmu;
    /* signmu: a token CA key signs one request at a time (see ca_sign) */
    pthread_mutex_t signmu;
    int sign_serial;
    /* the index.txt view. vwmu: one writer of the view files in this process
     * (flock on db.lock keeps other processes out), guards view_sb. Lock
     * order: dbmu, vwmu, vsmu. */
    pthread_mutex_t vwmu;
    struct stat view_sb;
    tool_ca_known *known; /* certificate files known to be in newcerts/ */
    int view_lazy;
    /* vsmu guards the rest: view_gen counts committed changes, view_done the
     * last one the view has; the lazy writer waits on view_cv. */
    pthread_mutex_t vsmu;
    pthread_cond_t view_cv;
    unsigned long view_gen, view_done;
    double view_at, view_cost;
    pending_file *files; /* lazy view: certificate files to write */
    size_t nfiles, capfiles;
    /* lazy view: the writer thread and its own connection */
    tool_castore *viewdb;
    pthread_t view_thread;
    int view_thread_on, view_stop;
} local_ca;

static const tool_ca_ops local_ops;
static void local_close(tool_ca *base);

/* The local CA behind a tool_ca, or NULL when ca is another backend. */
static local_ca *local_of(tool_ca *ca)
{
    return ca && ca->ops == &local_ops ? (local_ca *)ca : NULL;
}

int tool_spki_hash(EVP_PKEY *pub, char hex[65])
{
    X509_PUBKEY *xp = NULL;
    int ok;

    hex[0] = 0;
    if (!X509_PUBKEY_set(&xp, pub))
        return 0;
    ok = tool_cs_spki_hash(xp, hex);
    X509_PUBKEY_free(xp);
    return ok;
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

static int write_file_sync(const char *path, const char *text, size_t len, mode_t mode, int excl)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (excl ? O_EXCL : O_TRUNC), mode), ok;
    if (fd < 0)
        return 0;
    ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
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

/* The database names the CA whose records it holds (SHA-256 of the root),
 * so that a wrong connection string never mixes two CAs' records. Sets it
 * when the database has none yet. 1 ok, 0 with err. */
static int db_owner_check(tool_castore *db, X509 *root, char *err, size_t errlen)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    char hex[65], have[80];
    int code;

    if (!X509_digest(root, EVP_sha256(), md, &mdlen) || mdlen != 32) {
        snprintf(err, errlen, "cannot hash the root certificate");
        return 0;
    }
    p11c_hex_encode(md, 32, hex, sizeof hex);
    code = tool_castore_meta_get(db, "ca_root_sha256", have, sizeof have);
    if (code == TOOL_CS_OK && strcmp(have, hex) != 0) {
        snprintf(err, errlen,
                 "the CA database holds the records of another CA (root SHA-256 %.16s..., this "
                 "CA's is %.16s...): refusing to mix them",
                 have, hex);
        return 0;
    }
    if (code == TOOL_CS_NOTFOUND && tool_castore_meta_set(db, "ca_root_sha256", hex) != TOOL_CS_OK)
        code = TOOL_CS_ERROR;
    else if (code == TOOL_CS_NOTFOUND)
        code = TOOL_CS_OK;
    if (code != TOOL_CS_OK) {
        snprintf(err, errlen, "CA database: %s", tool_castore_error(db));
        return 0;
    }
    return 1;
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
                                  "crlnumber = $dir/crlnumber\n"
                                  "default_crl_days = 7\n"
                                  "crl_extensions = crl_ext\n"
                                  "\n"
                                  "[ crl_ext ]\n"
                                  "authorityKeyIdentifier = keyid:always\n"
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
static int write_cnf(const char *dir, const char *keyref, const char *conninfo, char *err,
                     size_t errlen)
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
            "# The tool keeps its records in a database (ca.db, or [ tokenmint ] database\n"
            "# below) and writes index.txt, serial and newcerts/ from it; what stock\n"
            "# openssl ca adds here is taken in the next time tokenmint opens the CA.\n"
            "# Stock openssl ca does no locking: never run it while tokenmint uses this\n"
            "# directory.\n\n",
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
    if (conninfo && *conninfo)
        fprintf(out,
                "\n# tokenmint's own keys (stock openssl ca skips this section)\n"
                "[ tokenmint ]\n"
                "# the CA's records: this PostgreSQL database, not DIR/ca.db\n"
                "database = %s\n",
                conninfo);
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
    {"serial", "1000\n"}, {"crlnumber", "01\n"}, /* stock openssl ca -gencrl needs it to exist */
    {"db.lock", ""},
};

int tool_ca_init(const char *dir_in, const char *key_uri, const char *key_file, const char *subject,
                 tool_crypto *crypto, char *err, size_t errlen)
{
    return tool_ca_init_db(dir_in, NULL, key_uri, key_file, subject, crypto, err, errlen);
}

int tool_ca_init_db(const char *dir_in, const char *conninfo, const char *key_uri,
                    const char *key_file, const char *subject, tool_crypto *crypto, char *err,
                    size_t errlen)
{
    tool_castore *db = NULL;
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
    /* the records first: a database that cannot be reached (or a connection
     * string with a password) is refused before any file is made */
    db = tool_castore_open(dir, conninfo, e, sizeof e);
    if (!db) {
        snprintf(err, errlen, "CA database: %s", e);
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
    if (!db_owner_check(db, cert, err, errlen))
        goto out;
    for (i = 0; i < sizeof db_files / sizeof *db_files; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, db_files[i].name);
        if (!write_file_sync(path, db_files[i].text, strlen(db_files[i].text), 0644, 1))
            goto ioerr;
    }
    /* ca.cnf last: its presence marks a complete CA directory. */
    if (!write_cnf(dir, keyref, conninfo, err, errlen))
        goto out;
    fsync_path(dir, 1);
    ok = 1;
    goto out;
ioerr:
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
out:
    tool_castore_close(db);
    free(pem);
    ASN1_INTEGER_free(sn);
    X509_NAME_free(name);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ok;
}

/* ---- open --------------------------------------------------------------------------- */

static void import_say(const char *line, void *user)
{
    local_ca *ca = user;
    /* an operator must see what was taken in or refused, not only with debug */
    tool_err("CA %s: %s", ca->dir, line);
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static tool_ca_paths paths_of(local_ca *ca)
{
    tool_ca_paths p = {ca->dir, ca->index, ca->serial[0] ? ca->serial : NULL, ca->newcerts};
    return p;
}

/* A committed change the view does not show yet. */
static void view_mark_dirty(local_ca *ca)
{
    pthread_mutex_lock(&ca->vsmu);
    ca->view_gen++;
    if (ca->view_thread_on)
        pthread_cond_signal(&ca->view_cv);
    pthread_mutex_unlock(&ca->vsmu);
}

static int view_is_dirty(local_ca *ca, unsigned long *gen)
{
    int dirty;
    pthread_mutex_lock(&ca->vsmu);
    *gen = ca->view_gen;
    dirty = ca->view_gen != ca->view_done;
    pthread_mutex_unlock(&ca->vsmu);
    return dirty;
}

/* A view written (ok) from a database read after change gen; or not. */
static void view_written(local_ca *ca, int ok, unsigned long gen, double t0)
{
    pthread_mutex_lock(&ca->vsmu);
    if (ok && (long)(gen - ca->view_done) > 0)
        ca->view_done = gen;
    ca->view_at = mono_ms(); /* failed: the lazy writer tries again a gap later */
    if (ok)
        ca->view_cost = ca->view_at - t0;
    pthread_mutex_unlock(&ca->vsmu);
}

/* Under vwmu and the flock: takes in what others wrote, rewrites the view
 * from db (the caller's connection: ca->db under dbmu, or the writer's). */
static int view_sync_locked(local_ca *ca, tool_castore *db, int import, char *err, size_t errlen)
{
    tool_ca_paths p = paths_of(ca);
    tool_ca_import_report rep;

    if (import &&
        tool_ca_import(db, &p, ca->root, ca->prof, import_say, ca, &rep, err, errlen) != TOOL_CS_OK)
        return 0;
    return tool_ca_view_write(db, &p, ca->known, &ca->view_sb, err, errlen);
}

/* Brings the view up to date from db when it is behind (force: always, and
 * takes in index.txt whatever it looks like). */
static int view_sync(local_ca *ca, tool_castore *db, int force, char *err, size_t errlen)
{
    tool_ca_paths p = paths_of(ca);
    unsigned long gen;
    double t0;
    int ok;

    if (!view_is_dirty(ca, &gen) && !force)
        return 1;
    t0 = mono_ms();
    pthread_mutex_lock(&ca->vwmu);
    flock(ca->lockfd, LOCK_EX);
    /* stock openssl ca (or a tokenmint of another directory layout) wrote
     * index.txt since our last view: take that in before replacing it */
    ok = view_sync_locked(ca, db, force || tool_ca_view_changed(&p, &ca->view_sb), err, errlen);
    flock(ca->lockfd, LOCK_UN);
    pthread_mutex_unlock(&ca->vwmu);
    view_written(ca, ok, gen, t0);
    return ok;
}

/* newcerts/ files of committed certificates, one by one (vwmu held only per
 * file: a revocation does not wait for a whole burst). A file that cannot
 * be written now is left to the next index rewrite, which looks for it. */
static void files_write(local_ca *ca, pending_file *f, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        pthread_mutex_lock(&ca->vwmu);
        if (!tool_ca_known_has(ca->known, f[i].serial)) {
            if (tool_ca_view_cert_file(ca->newcerts, f[i].serial, f[i].der, f[i].len))
                tool_ca_known_add(ca->known, f[i].serial);
            else
                tool_debug("CA: newcerts/%s.pem not written now (the next view writes it)",
                           f[i].serial);
        }
        pthread_mutex_unlock(&ca->vwmu);
        free(f[i].der);
    }
    free(f);
}

/* Hands files to the lazy view's writer (takes f; NULL is out of memory). */
static void files_queue(local_ca *ca, pending_file *f, size_t n)
{
    size_t i = 0;

    if (n == 0) { /* nothing fresh (a known key answered again): ca->files may be NULL */
        free(f);
        return;
    }
    pthread_mutex_lock(&ca->vsmu);
    if (f && ca->nfiles + n > ca->capfiles) {
        size_t nc = (ca->nfiles + n) * 2;
        pending_file *t = realloc(ca->files, nc * sizeof *t);
        if (t) {
            ca->files = t;
            ca->capfiles = nc;
        }
    }
    if (f && ca->nfiles + n <= ca->capfiles) {
        memcpy(ca->files + ca->nfiles, f, n * sizeof *f);
        ca->nfiles += n;
        i = n;
    }
    pthread_mutex_unlock(&ca->vsmu);
    for (; f && i < n; i++) /* no room: the next index rewrite writes them */
        free(f[i].der);
    free(f);
}

/* The fresh certificates of a committed batch, as files still to write. */
static pending_file *files_of(tool_ca_item *items, const int *fresh, size_t n, size_t *count)
{
    pending_file *f = calloc(n ? n : 1, sizeof *f);
    size_t i;
    int len;

    *count = 0;
    for (i = 0; f && i < n; i++) {
        char *sn;
        unsigned char *p;
        if (fresh[i] != 1)
            continue;
        sn = tool_cs_serial_hex(X509_get0_serialNumber(items[i].cert));
        len = i2d_X509(items[i].cert, NULL);
        if (sn && strlen(sn) < TOOL_CS_SERIAL_MAX && len > 0 &&
            (f[*count].der = malloc((size_t)len))) {
            /* out of memory: the index rewrite finds the file missing */
            strcpy(f[*count].serial, sn);
            p = f[*count].der;
            f[*count].len = (size_t)i2d_X509(items[i].cert, &p);
            (*count)++;
        }
        OPENSSL_free(sn);
    }
    return f;
}

static char *cnf_get(CONF *conf, const char *sect, const char *key)
{
    char *v = NCONF_get_string(conf, sect, key);
    ERR_clear_error();
    return v;
}

/* [ tokenmint ] of ca.cnf: the tool's own keys; stock openssl ca skips the
 * section. Unknown keys are refused: a misspelt database key must not fall
 * back to another database. */
static int cnf_tokenmint(CONF *conf, const char *path, char *db, size_t dblen, char *err,
                         size_t errlen)
{
    STACK_OF(CONF_VALUE) *sk = NCONF_get_section(conf, "tokenmint");
    int i;

    ERR_clear_error();
    db[0] = 0;
    for (i = 0; sk && i < sk_CONF_VALUE_num(sk); i++) {
        CONF_VALUE *v = sk_CONF_VALUE_value(sk, i);
        if (strcmp(v->name, "database") == 0) {
            snprintf(db, dblen, "%s", v->value);
        } else {
            snprintf(err, errlen, "%s: [ tokenmint ] has no key '%s' (known: database)", path,
                     v->name);
            return 0;
        }
    }
    return 1;
}

static tool_ca *ca_open(const char *dir, const char *conninfo, const tm_profile *prof,
                        tool_crypto *crypto, const char *operator_id, int need_key, char *err,
                        size_t errlen)
{
    local_ca *ca = calloc(1, sizeof *ca);
    char path[PATH_MAX + 32], e[300], cnfdb[2048];
    CONF *conf = NULL;
    long line = -1;
    const char *sect, *keyref, *certp, *db, *nc, *sn;

    if (!ca)
        return NULL;
    tool_ca_base_init(&ca->base, &local_ops);
    ca->lockfd = -1;
    pthread_mutex_init(&ca->dbmu, NULL);
    pthread_mutex_init(&ca->signmu, NULL);
    pthread_mutex_init(&ca->vwmu, NULL);
    pthread_mutex_init(&ca->vsmu, NULL);
    ca->prof = prof;
    ca->crypto = crypto;
    snprintf(ca->operator_id, sizeof ca->operator_id, "%s", operator_id ? operator_id : "-");
    if (!realpath(dir, ca->dir)) {
        snprintf(err, errlen, "--ca %s: %s", dir, strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof path, "%s/ca.cnf", ca->dir);
    conf = NCONF_new(NULL);
    errno = 0;
    if (!conf || NCONF_load(conf, path, &line) <= 0) {
        /* fopen's reason: ext4 refuses even a read-only open (EROFS) when
         * it went read-only before its first open after the mount */
        int why = errno;
        if (line > 0)
            snprintf(err, errlen, "%s line %ld: %s", path, line, tool_ossl_err(e, sizeof e));
        else if (why != 0 && why != ENOENT)
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(why));
        else
            snprintf(err, errlen, "%s: cannot read (is %s a CA made with `tokenmint ca init`?)",
                     path, dir);
        goto fail;
    }
    if (!cnf_tokenmint(conf, path, cnfdb, sizeof cnfdb, err, errlen))
        goto fail;
    sect = cnf_get(conf, "ca", "default_ca");
    keyref = sect ? cnf_get(conf, sect, "private_key") : NULL;
    certp = sect ? cnf_get(conf, sect, "certificate") : NULL;
    db = sect ? cnf_get(conf, sect, "database") : NULL;
    nc = sect ? cnf_get(conf, sect, "new_certs_dir") : NULL;
    sn = sect ? cnf_get(conf, sect, "serial") : NULL;
    if (!keyref || !certp || !db || !nc) {
        snprintf(err, errlen,
                 "%s: [ca] default_ca section must set private_key, certificate, database and "
                 "new_certs_dir",
                 path);
        goto fail;
    }
    {
        /* the CRL settings stock openssl ca -gencrl reads (issue 12) */
        const char *cd = cnf_get(conf, sect, "default_crl_days");
        char *end = NULL;
        ca->crl_days = cd ? strtol(cd, &end, 10) : 7;
        if (cd && (*end || ca->crl_days < 1 || ca->crl_days > 3650)) {
            snprintf(err, errlen, "%s: default_crl_days %s: a number of days, 1 to 3650", path, cd);
            goto fail;
        }
    }
    snprintf(ca->index, sizeof ca->index, "%s", db);
    snprintf(ca->newcerts, sizeof ca->newcerts, "%s", nc);
    snprintf(ca->serial, sizeof ca->serial, "%s", sn ? sn : "");
    ca->root = read_cert(certp);
    if (!ca->root) {
        snprintf(err, errlen, "%s: not a PEM certificate", certp);
        goto fail;
    }
    if (!need_key) {
        /* records only (ca list, show) */
    } else if (strncmp(keyref, "pkcs11:", 7) == 0) {
        ca->key = tool_crypto_load_key(crypto, keyref, NULL, e, sizeof e);
        ca->sign_serial = 1;
    } else {
        FILE *f = fopen(keyref, "r");
        if (f) {
            ca->key = PEM_read_PrivateKey_ex(f, NULL, NULL, NULL, crypto->libctx, NULL);
            fclose(f);
        }
        snprintf(e, sizeof e, "not a readable unencrypted PEM private key");
    }
    if (need_key && !ca->key) {
        snprintf(err, errlen, "CA key %s: %s", keyref, e);
        goto fail;
    }
    if (need_key && X509_check_private_key(ca->root, ca->key) != 1) {
        snprintf(err, errlen, "CA key %s does not match %s", keyref, certp);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/db.lock", ca->dir);
    ca->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (ca->lockfd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    snprintf(ca->conninfo, sizeof ca->conninfo, "%s", conninfo && *conninfo ? conninfo : cnfdb);
    ca->known = tool_ca_known_new(); /* NULL: every rewrite looks at every file */
    ca->db = tool_castore_open(ca->dir, ca->conninfo, e, sizeof e);
    if (!ca->db) {
        snprintf(err, errlen, "CA database: %s", e);
        goto fail;
    }
    if (!db_owner_check(ca->db, ca->root, err, errlen))
        goto fail;
    if (!view_sync(ca, ca->db, 1, e, sizeof e)) {
        snprintf(err, errlen, "%s", e);
        goto fail;
    }
    NCONF_free(conf);
    return &ca->base;
fail:
    NCONF_free(conf);
    local_close(&ca->base);
    return NULL;
}

tool_ca *tool_ca_open_db(const char *dir, const char *conninfo, const tm_profile *prof,
                         tool_crypto *crypto, const char *operator_id, char *err, size_t errlen)
{
    return ca_open(dir, conninfo, prof, crypto, operator_id, 1, err, errlen);
}

tool_ca *tool_ca_open_records(const char *dir, const char *conninfo, const tm_profile *prof,
                              tool_crypto *crypto, char *err, size_t errlen)
{
    return ca_open(dir, conninfo, prof, crypto, "-", 0, err, errlen);
}

tool_ca *tool_ca_open(const char *dir, const tm_profile *prof, tool_crypto *crypto,
                      const char *operator_id, char *err, size_t errlen)
{
    return ca_open(dir, NULL, prof, crypto, operator_id, 1, err, errlen);
}

static void local_close(tool_ca *base)
{
    local_ca *ca = (local_ca *)base;
    char e[600];

    if (!ca)
        return;
    if (ca->view_thread_on) {
        pthread_mutex_lock(&ca->vsmu);
        ca->view_stop = 1;
        pthread_cond_signal(&ca->view_cv);
        pthread_mutex_unlock(&ca->vsmu);
        pthread_join(ca->view_thread, NULL);
        pthread_cond_destroy(&ca->view_cv);
    }
    if (ca->nfiles)
        files_write(ca, ca->files, ca->nfiles);
    else
        free(ca->files);
    ca->files = NULL;
    ca->nfiles = 0;
    tool_castore_close(ca->viewdb);
    if (ca->db && ca->lockfd >= 0) {
        ca->view_lazy = 0;
        if (!view_sync(ca, ca->db, 0, e, sizeof e))
            tool_err("CA %s: index.txt not brought up to date: %s", ca->dir, e);
    }
    tool_castore_close(ca->db);
    tool_ca_known_free(ca->known);
    if (ca->lockfd >= 0)
        close(ca->lockfd);
    X509_free(ca->root);
    EVP_PKEY_free(ca->key);
    pthread_mutex_destroy(&ca->dbmu);
    pthread_mutex_destroy(&ca->signmu);
    pthread_mutex_destroy(&ca->vwmu);
    pthread_mutex_destroy(&ca->vsmu);
    tool_ca_base_clear(&ca->base);
    free(ca);
}

static X509 *local_root(tool_ca *base)
{
    return ((local_ca *)base)->root;
}

/* The lazy view's writer: at most one gap after the batch that made the
 * view dirty, index.txt (and newcerts/) is written even when no batch
 * follows. Its own connection, so batches never wait for it. */
static void *view_writer(void *arg)
{
    local_ca *ca = arg;
    char e[600];

    pthread_mutex_lock(&ca->vsmu);
    while (!ca->view_stop) {
        double gap = ca->view_cost * 20 > CA_VIEW_MIN_MS ? ca->view_cost * 20 : CA_VIEW_MIN_MS;
        double wait = ca->view_at + gap - mono_ms();
        struct timespec ts;

        if (ca->nfiles) { /* the files first, at once: their index lines wait */
            pending_file *f = ca->files;
            size_t n = ca->nfiles;
            ca->files = NULL;
            ca->nfiles = ca->capfiles = 0;
            pthread_mutex_unlock(&ca->vsmu);
            files_write(ca, f, n);
            pthread_mutex_lock(&ca->vsmu);
            continue;
        }
        if (ca->view_gen == ca->view_done) {
            pthread_cond_wait(&ca->view_cv, &ca->vsmu);
            continue;
        }
        if (wait <= 0) {
            pthread_mutex_unlock(&ca->vsmu);
            if (!view_sync(ca, ca->viewdb, 0, e, sizeof e))
                tool_err("CA %s: index.txt view: %s", ca->dir, e);
            pthread_mutex_lock(&ca->vsmu);
            continue;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(wait / 1000);
        ts.tv_nsec += (long)((wait - (double)(long)(wait / 1000) * 1000) * 1e6);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&ca->view_cv, &ca->vsmu, &ts);
    }
    pthread_mutex_unlock(&ca->vsmu);
    return NULL;
}

void tool_ca_set_lazy_view(tool_ca *base, int lazy)
{
    local_ca *ca = local_of(base);
    char e[600];

    if (!ca || !lazy || ca->view_thread_on)
        return;
    /* no connection or no thread for the writer: every batch writes the
     * view, as without lazy */
    ca->viewdb = tool_castore_open(ca->dir, ca->conninfo, e, sizeof e);
    if (!ca->viewdb) {
        tool_err("CA %s: index.txt is written after every batch (no second database "
                 "connection for its writer: %s)",
                 ca->dir, e);
        return;
    }
    pthread_cond_init(&ca->view_cv, NULL);
    pthread_mutex_lock(&ca->vsmu);
    if (pthread_create(&ca->view_thread, NULL, view_writer, ca) == 0) {
        ca->view_thread_on = 1;
        ca->view_lazy = 1;
    }
    pthread_mutex_unlock(&ca->vsmu);
    if (!ca->view_thread_on) {
        pthread_cond_destroy(&ca->view_cv);
        tool_castore_close(ca->viewdb);
        ca->viewdb = NULL;
    }
}

struct tool_castore *tool_ca_store(tool_ca *base)
{
    local_ca *ca = local_of(base);
    return ca ? ca->db : NULL;
}

static X509 *local_find_by_key(tool_ca *base, EVP_PKEY *pub, const char *purpose)
{
    local_ca *ca = (local_ca *)base;
    char spki[65];
    tool_cs_record r;
    X509 *x = NULL;
    tool_return_val_if_fail(ca != NULL && pub != NULL && purpose != NULL, NULL);

    if (!tool_spki_hash(pub, spki))
        return NULL;
    memset(&r, 0, sizeof r);
    pthread_mutex_lock(&ca->dbmu);
    if (tool_castore_find_valid(ca->db, spki, purpose, &r) == TOOL_CS_OK)
        x = tool_cs_record_cert(&r);
    pthread_mutex_unlock(&ca->dbmu);
    tool_cs_record_clear(&r);
    return x;
}

/* The CA key signs cert. A file key signs in every thread at once; a token
 * key through the provider one request at a time, as a token session does. */
static int ca_sign(local_ca *ca, X509 *cert)
{
    int ok;
    if (ca->sign_serial)
        pthread_mutex_lock(&ca->signmu);
    ok = sign_cert(cert, ca->key, ca->crypto);
    if (ca->sign_serial)
        pthread_mutex_unlock(&ca->signmu);
    return ok;
}

/* Steps 9 and 10 for one request, outside the database lock: the
 * certificate is signed (with a random serial, checked for uniqueness later
 * by the database) but not yet stored. */
static X509 *issue_one(local_ca *ca, tool_ca_item *it)
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
    if (!ca_sign(ca, cert)) {
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

/*
 * A key and purpose certified before comes back: the earlier certificate is
 * the answer only when the new request binds the key the same way (same
 * token serial, same subject). Anything else is a key moved to another
 * binding and is refused. 1 same, 0 refused (it->error says why).
 */
static int same_binding(local_ca *ca, tool_ca_item *it, X509 *fresh, X509 *before,
                        const char *before_serial, const char *before_token)
{
    tm_binding a, b;
    tm_violations *v = tm_violations_new();
    int same;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    same = v && tm_binding_from_cert(ca->prof, fresh, &a, v) &&
           tm_binding_from_cert(ca->prof, before, &b, v) && a.serial_len == b.serial_len &&
           memcmp(a.serial, b.serial, a.serial_len) == 0 &&
           X509_NAME_cmp(X509_get_subject_name(fresh), X509_get_subject_name(before)) == 0;
    tm_violations_free(v);
    if (!same)
        snprintf(it->error, sizeof it->error,
                 "this public key is already certified for %s by certificate %s (token %s); "
                 "the request binds it to token %s with another subject or serial: a key "
                 "is never bound twice",
                 it->purpose, before_serial, before_token, a.serial_text[0] ? a.serial_text : "?");
    return same;
}

static void fail_item(tool_ca_item *it, int unavailable, const char *fmt, const char *what)
{
    X509_free(it->cert);
    it->cert = NULL;
    it->unavailable = unavailable;
    snprintf(it->error, sizeof it->error, fmt, what);
}

/* Draws a new serial and signs again (the database had the serial). */
static int reserial(local_ca *ca, tool_ca_item *it)
{
    ASN1_INTEGER *r = tm_profile_random_serial();
    char e[300];
    int ok = r && X509_set_serialNumber(it->cert, r) && ca_sign(ca, it->cert);

    ASN1_INTEGER_free(r);
    if (!ok)
        fail_item(it, 0, "the CA key did not sign: %s", tool_ossl_err(e, sizeof e));
    return ok;
}

/* Inside the batch's transaction: the certificate old_serial, which the
 * item's renews, is superseded by it. */
static int supersede_for(local_ca *ca, tool_ca_item *it, const char *old_serial)
{
    char *by = tool_cs_serial_hex(X509_get0_serialNumber(it->cert));
    int code;

    if (!by) {
        fail_item(it, 0, "%s", "out of memory");
        return TOOL_CS_ERROR;
    }
    code = tool_castore_supersede(ca->db, old_serial, by);
    OPENSSL_free(by);
    return code;
}

/* Under dbmu inside a batch: stores item i or finds its earlier certificate.
 * Returns 1 (item has its answer), 0 (item refused), -1 (the batch failed:
 * code in *code). */
static int store_one(local_ca *ca, tool_ca_item *items, size_t i, char (*spki)[65], int *fresh,
                     int *code)
{
    tool_ca_item *it = &items[i];
    tool_cs_record rec, before;
    int tries, ret = -1;
    size_t j;

    memset(&rec, 0, sizeof rec);
    memset(&before, 0, sizeof before);
    /* never twice in one batch (two requests for one key at once) */
    for (j = 0; j < i; j++)
        if (fresh[j] == 1 && strcmp(spki[j], spki[i]) == 0 &&
            strcmp(items[j].purpose, it->purpose) == 0) {
            char sn[TOOL_CS_SERIAL_MAX];
            char *h = tool_cs_serial_hex(X509_get0_serialNumber(items[j].cert));
            snprintf(sn, sizeof sn, "%s", h ? h : "?");
            OPENSSL_free(h);
            if (!same_binding(ca, it, it->cert, items[j].cert, sn,
                              items[j].token_text ? items[j].token_text : "-")) {
                X509_free(it->cert);
                it->cert = NULL;
                return 0;
            }
            X509_free(it->cert);
            it->cert = items[j].cert;
            X509_up_ref(it->cert);
            fresh[i] = 2; /* stands or falls with item j */
            return 1;
        }
    for (tries = 0; tries < 8; tries++) {
        /* Never twice: the insert is refused when this key and purpose has a
         * valid certificate already (another process, an earlier run: the
         * unique index decides races between servers), and only then is the
         * earlier one looked up. A new key, the usual case, is one statement. */
        tool_cs_record_clear(&rec);
        if (!tool_cs_record_from_cert(&rec, it->cert, it->token_text, it->purpose, ca->operator_id,
                                      "tokenmint")) {
            fail_item(it, 0, "%s", "out of memory");
            ret = 0;
            goto out;
        }
        *code = it->known_only ? TOOL_CS_CONFLICT : tool_castore_insert(ca->db, &rec);
        if (*code == TOOL_CS_OK) {
            fresh[i] = 1;
            ret = 1;
            goto out;
        }
        if (*code != TOOL_CS_CONFLICT)
            goto out;
        tool_cs_record_clear(&before);
        *code = tool_castore_find_valid(ca->db, spki[i], it->purpose, &before);
        if (*code == TOOL_CS_OK) {
            X509 *x = tool_cs_record_cert(&before);
            if (!x) {
                fail_item(it, 0, "the CA database's certificate %s does not decode", before.serial);
                ret = 0;
            } else if (!same_binding(ca, it, it->cert, x, before.serial, before.token)) {
                X509_free(it->cert);
                it->cert = NULL;
                X509_free(x);
                ret = 0;
            } else if (it->replaces && !it->known_only &&
                       tool_cs_serial_eq(before.serial, it->replaces)) {
                /* the renewal: the one it renews steps down in this
                 * transaction, and the insert is tried again */
                X509_free(x);
                *code = supersede_for(ca, it, before.serial);
                if (*code != TOOL_CS_OK)
                    goto out;
                continue;
            } else {
                X509_free(it->cert);
                it->cert = x;
                ret = 1;
            }
            goto out;
        }
        if (*code == TOOL_CS_NOTFOUND && it->known_only) {
            fail_item(it, 0, "%s",
                      "this CA holds no valid certificate for the key: a certificate it "
                      "superseded is not updated again");
            ret = 0;
            goto out;
        }
        if (*code != TOOL_CS_NOTFOUND)
            goto out;
        /* no valid certificate for the key: the serial was taken, draw again */
        if (!reserial(ca, it)) {
            ret = 0;
            goto out;
        }
    }
    fail_item(it, 0, "%s", "no unique certificate serial");
    ret = 0;
out:
    tool_cs_record_clear(&rec);
    tool_cs_record_clear(&before);
    return ret;
}

/* tool_ca_submit's first step, in the requester's thread: checks and signs
 * (not stored yet), so that requests are signed in parallel while the batch
 * before them commits. */
static void local_prepare(tool_ca *base, tool_ca_item *it)
{
    local_ca *ca = (local_ca *)base;
    tool_return_if_fail(ca != NULL && it != NULL);

    it->error[0] = 0;
    it->unavailable = 0;
    it->cert = issue_one(ca, it);
}

/*
 * Signing, the slow part, happens before the database (here, or already in
 * local_prepare); one transaction holds the never-twice lookups and the
 * inserts of the whole batch, and its commit makes them durable before
 * anyone is answered.
 */
static size_t local_issue_batch(tool_ca *base, tool_ca_item *items, size_t n)
{
    local_ca *ca = (local_ca *)base;
    size_t i, issued = 0;
    char(*spki)[65] = calloc(n ? n : 1, sizeof *spki);
    int *fresh = calloc(n ? n : 1, sizeof *fresh);
    int code = TOOL_CS_OK, failed = 0;
    char e[600];
    tool_return_val_if_fail(ca != NULL && (items != NULL || n == 0), 0);

    if (!fresh || !spki) {
        for (i = 0; i < n; i++)
            snprintf(items[i].error, sizeof items[i].error, "out of memory");
        free(fresh);
        free(spki);
        return 0;
    }
    for (i = 0; i < n; i++) {
        tool_ca_item *it = &items[i];
        /* The profile first: a request that breaks it is refused even when
         * its key was certified before. */
        if (!it->prepared)
            local_prepare(base, it);
        it->prepared = 0; /* the caller may hand the item in again */
        if (it->cert)
            tool_cs_spki_hash(X509_get_X509_PUBKEY(it->cert), spki[i]);
    }
    pthread_mutex_lock(&ca->dbmu);
    code = tool_castore_begin(ca->db);
    if (code != TOOL_CS_OK)
        failed = 1;
    for (i = 0; i < n && !failed; i++) {
        if (!items[i].cert)
            continue;
        if (store_one(ca, items, i, spki, fresh, &code) < 0)
            failed = 1;
    }
    if (!failed) {
        code = tool_castore_commit(ca->db);
        failed = code != TOOL_CS_OK;
    } else {
        tool_castore_rollback(ca->db);
    }
    snprintf(e, sizeof e, "%s", tool_castore_error(ca->db));
    pthread_mutex_unlock(&ca->dbmu);
    for (i = 0; i < n; i++) {
        tool_ca_item *it = &items[i];
        if (failed && it->cert)
            fail_item(it, code == TOOL_CS_UNAVAIL,
                      code == TOOL_CS_UNAVAIL ? "the CA database is unavailable, try again: %s"
                                              : "cannot store in the CA database: %s",
                      e);
        if (it->cert)
            issued++;
    }
    if (!failed) {
        /* the copies for stock openssl ca: lazy, the view's writer makes
         * them after the answers; else now */
        size_t nf = 0;
        pending_file *f = files_of(items, fresh, n, &nf);
        if (ca->view_lazy) {
            files_queue(ca, f, nf);
            view_mark_dirty(ca);
            goto out;
        }
        if (f)
            files_write(ca, f, nf);
        view_mark_dirty(ca);
        pthread_mutex_lock(&ca->dbmu);
        if (!view_sync(ca, ca->db, 0, e, sizeof e))
            tool_err("CA %s: index.txt view: %s", ca->dir, e);
        pthread_mutex_unlock(&ca->dbmu);
    }
out:
    free(fresh);
    free(spki);
    return issued;
}

static int local_token_lock(tool_ca *base, const unsigned char *serial, size_t len, char *err,
                            size_t errlen)
{
    local_ca *ca = (local_ca *)base;
    char dir[PATH_MAX + 16];
    int fd = -1;

    errno = ENAMETOOLONG;
    if ((size_t)snprintf(dir, sizeof dir, "%s/locks", ca->dir) < sizeof dir)
        fd = tool_token_lock(dir, serial, len);
    /* the reason too: on a full or read-only CA disk it is the one to fix */
    if (fd == -1)
        snprintf(err, errlen, "cannot take the token's lock in %s: %s", dir, strerror(errno));
    return fd;
}

/* ca_open checked the directory, its key and root, and its database. */
static int local_check(tool_ca *base, char *err, size_t errlen)
{
    (void)base;
    (void)err;
    (void)errlen;
    return 1;
}

/* ---- revocation (issue 12) ----------------------------------------------------------- */

typedef struct revoke_pick {
    char (*serials)[TOOL_CS_SERIAL_MAX];
    size_t n, cap, already;
    int oom;
} revoke_pick;

static int pick_one(const tool_cs_record *r, void *user)
{
    revoke_pick *p = user;
    if (r->status == TOOL_CS_REVOKED) {
        p->already++;
        return 1;
    }
    if (r->status != TOOL_CS_VALID && r->status != TOOL_CS_SUPERSEDED)
        return 1; /* expired: nothing to revoke */
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 8;
        void *ns = realloc(p->serials, nc * sizeof *p->serials);
        if (!ns) {
            p->oom = 1;
            return 0;
        }
        p->serials = ns;
        p->cap = nc;
    }
    snprintf(p->serials[p->n++], TOOL_CS_SERIAL_MAX, "%s", r->serial);
    return 1;
}

static int local_revoke(tool_ca *base, const char *token, const char *cert_serial, int reason,
                        size_t *revoked, size_t *already, char *err, size_t errlen)
{
    local_ca *ca = (local_ca *)base;
    tool_cs_filter f;
    revoke_pick pick;
    size_t i, found;
    int ok = 0, code;
    int64_t now = (int64_t)time(NULL);
    char e[300];

    memset(&f, 0, sizeof f);
    memset(&pick, 0, sizeof pick);
    f.token = token;
    f.serial = cert_serial;
    *revoked = *already = 0;
    pthread_mutex_lock(&ca->dbmu);
    /* stock openssl ca -revoke may have been run since: take it in first */
    if (!view_sync(ca, ca->db, 1, e, sizeof e)) {
        snprintf(err, errlen, "%s", e);
        goto out;
    }
    if (tool_castore_list(ca->db, &f, pick_one, &pick) != TOOL_CS_OK || pick.oom) {
        snprintf(err, errlen, "CA database: %s",
                 pick.oom ? "out of memory" : tool_castore_error(ca->db));
        goto out;
    }
    found = pick.n + pick.already;
    if (found == 0) {
        if (cert_serial)
            snprintf(err, errlen, "no certificate with serial %s in this CA", cert_serial);
        else
            snprintf(err, errlen, "this CA has issued no certificate to token %s", token);
        goto out;
    }
    if (tool_castore_begin(ca->db) != TOOL_CS_OK)
        goto dberr;
    for (i = 0; i < pick.n; i++) {
        code = tool_castore_revoke(ca->db, pick.serials[i], now, reason);
        if (code == TOOL_CS_CONFLICT) {
            pick.already++; /* revoked by someone else meanwhile */
            continue;
        }
        if (code != TOOL_CS_OK) {
            tool_castore_rollback(ca->db);
            goto dberr;
        }
        (*revoked)++;
    }
    if (tool_castore_commit(ca->db) != TOOL_CS_OK) {
        tool_castore_rollback(ca->db);
        goto dberr;
    }
    *already = pick.already;
    view_mark_dirty(ca);
    if (!view_sync(ca, ca->db, 1, e, sizeof e))
        tool_err("CA %s: index.txt view: %s", ca->dir, e);
    ok = 1;
    goto out;
dberr:
    *revoked = 0;
    snprintf(err, errlen, "CA database: %s", tool_castore_error(ca->db));
out:
    pthread_mutex_unlock(&ca->dbmu);
    free(pick.serials);
    return ok;
}

static int local_status(tool_ca *base, const X509_NAME *issuer, const ASN1_INTEGER *serial,
                        char *status, int64_t *revoked_at, int *reason, char *err, size_t errlen)
{
    local_ca *ca = (local_ca *)base;
    tool_cs_record r;
    char *sn;
    int code, rc = -1;

    if (X509_NAME_cmp(issuer, X509_get_subject_name(ca->root)) != 0)
        return 0; /* not ours */
    sn = tool_cs_serial_hex(serial);
    if (!sn) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memset(&r, 0, sizeof r);
    pthread_mutex_lock(&ca->dbmu);
    code = tool_castore_find_serial(ca->db, sn, &r);
    pthread_mutex_unlock(&ca->dbmu);
    if (code == TOOL_CS_NOTFOUND) {
        rc = 0;
    } else if (code != TOOL_CS_OK) {
        snprintf(err, errlen, "CA database: %s", tool_castore_error(ca->db));
    } else {
        *status = r.status;
        *revoked_at = r.revoked_at;
        *reason = r.reason;
        rc = 1;
    }
    tool_cs_record_clear(&r);
    OPENSSL_free(sn);
    return rc;
}

int tool_ca_local_signer(tool_ca *base, X509 **root, EVP_PKEY **key)
{
    local_ca *ca = local_of(base);
    if (!ca || !ca->key)
        return 0;
    *root = ca->root;
    *key = ca->key;
    return 1;
}

static X509_CRL *local_crl(tool_ca *base, size_t *entries, char *err, size_t errlen)
{
    local_ca *ca = (local_ca *)base;
    char num[PATH_MAX + 16], e[300];
    tool_crl_params p;
    X509_CRL *crl = NULL;

    if (!ca->key) {
        snprintf(err, errlen, "the CA was opened without its key");
        return NULL;
    }
    snprintf(num, sizeof num, "%s/crlnumber", ca->dir);
    memset(&p, 0, sizeof p);
    p.db = ca->db;
    p.root = ca->root;
    p.key = ca->key;
    p.libctx = ca->crypto ? ca->crypto->libctx : NULL;
    p.days = ca->crl_days;
    p.number_path = num;
    p.count = entries;
    pthread_mutex_lock(&ca->dbmu);
    /* under the directory lock: the number and what stock openssl ca did */
    pthread_mutex_lock(&ca->vwmu);
    flock(ca->lockfd, LOCK_EX);
    if (!view_sync_locked(ca, ca->db, 1, e, sizeof e))
        snprintf(err, errlen, "%s", e);
    else
        crl = tool_crl_build(&p, err, errlen);
    if (crl) {
        char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
        FILE *f;
        snprintf(path, sizeof path, "%s/crl.pem", ca->dir);
        snprintf(tmp, sizeof tmp, "%s/crl.pem.new", ca->dir);
        int wrote;
        f = fopen(tmp, "w");
        wrote = f && PEM_write_X509_CRL(f, crl) && fflush(f) == 0 && fsync(fileno(f)) == 0;
        if (f && fclose(f) != 0)
            wrote = 0;
        if (!wrote || rename(tmp, path) != 0) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            X509_CRL_free(crl);
            crl = NULL;
        }
    }
    flock(ca->lockfd, LOCK_UN);
    pthread_mutex_unlock(&ca->vwmu);
    pthread_mutex_unlock(&ca->dbmu);
    return crl;
}

static int local_supersede(tool_ca *base, const char *old_serial, const char *new_serial, char *err,
                           size_t errlen)
{
    local_ca *ca = (local_ca *)base;
    int code;

    pthread_mutex_lock(&ca->dbmu);
    code = tool_castore_supersede(ca->db, old_serial, new_serial);
    if (code == TOOL_CS_OK || code == TOOL_CS_NOTFOUND) {
        /* NOTFOUND: no longer valid (revoked, or superseded by an earlier run) */
        view_mark_dirty(ca);
    } else {
        snprintf(err, errlen, "CA database: %s", tool_castore_error(ca->db));
    }
    pthread_mutex_unlock(&ca->dbmu);
    return code == TOOL_CS_OK || code == TOOL_CS_NOTFOUND ? 1 : -1;
}

static const tool_ca_ops local_ops = {
    .name = "local CA",
    .supersede = local_supersede,
    .revoke = local_revoke,
    .status = local_status,
    .crl = local_crl,
    .check = local_check,
    .issue_batch = local_issue_batch,
    .prepare = local_prepare,
    .root = local_root,
    .find_by_key = local_find_by_key,
    .token_lock = local_token_lock,
    .close = local_close,
};
