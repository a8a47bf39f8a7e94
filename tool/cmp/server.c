/*
 * The CMP request handler shared by `ca serve` and `relay`.
 *
 * OpenSSL's OSSL_CMP_SRV_CTX keeps one transaction's state (transactionID,
 * nonces, certReqId), so we keep one per open transaction in a table keyed by
 * transactionID: concurrent requests of different transactions never share a
 * context, and the messages of one transaction (ir -> certConf, p10cr ->
 * pollReq -> certConf) find theirs. A request that opens a transaction with
 * an ID we have seen before is a replay and is refused.
 */
#include "cmp/cmp.h"
#include "p11c.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crmf.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#define TID_MAX 64

void tool_cmp_debug(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    p11c_debug_prefixed("tokenmint cmp", fmt, ap);
    va_end(ap);
}

/* OpenSSL's CMP server prints why it refused a message (bad protection,
 * wrong sender, ...) through the log callback and leaves nothing on the
 * error queue: the handling thread keeps those lines for its log line. */
static __thread char *g_reasons;
static __thread size_t g_reasons_len;

int tool_cmp_log_cb(const char *func, const char *file, int line, OSSL_CMP_severity level,
                    const char *msg)
{
    if (g_reasons && level <= OSSL_CMP_LOG_WARNING && msg && *msg) {
        size_t used = strlen(g_reasons);
        if (used + 3 < g_reasons_len)
            snprintf(g_reasons + used, g_reasons_len - used, "%s%s", used ? "; " : "", msg);
    }
    (void)file;
    (void)line;
    tool_cmp_debug("[%d] %s: %s", (int)level, func ? func : "", msg);
    return 1;
}

/* ---- transactionIDs seen (replay refusal) ------------------------------------- */

typedef struct seen_node {
    unsigned char h[16];
    int next; /* bucket chain, -1 ends */
    int used;
} seen_node;

#define SEEN_BUCKETS 65536

typedef struct seen_set {
    seen_node *nodes; /* ring of TOOL_CMP_SEEN_TIDS, oldest overwritten */
    int *bucket;
    size_t head;
} seen_set;

static void tid_hash(const unsigned char *tid, size_t len, unsigned char h[16])
{
    unsigned int n = 0;
    /* a digest, so that any TID length fits the fixed node and chains stay short */
    if (!EVP_Digest(tid, len, h, &n, EVP_md5(), NULL) || n != 16)
        memset(h, 0, 16);
}

static unsigned bucket_of(const unsigned char h[16])
{
    return ((unsigned)h[0] << 8 | h[1]) % SEEN_BUCKETS;
}

static int seen_init(seen_set *s)
{
    size_t i;
    s->nodes = calloc(TOOL_CMP_SEEN_TIDS, sizeof *s->nodes);
    s->bucket = malloc(SEEN_BUCKETS * sizeof *s->bucket);
    if (!s->nodes || !s->bucket)
        return 0;
    for (i = 0; i < SEEN_BUCKETS; i++)
        s->bucket[i] = -1;
    s->head = 0;
    return 1;
}

static void seen_free(seen_set *s)
{
    free(s->nodes);
    free(s->bucket);
}

/* Returns 1 when h was already there, else remembers it and returns 0. */
static int seen_check_add(seen_set *s, const unsigned char h[16])
{
    unsigned b = bucket_of(h);
    int i, *pp;
    seen_node *n;

    for (i = s->bucket[b]; i >= 0; i = s->nodes[i].next)
        if (memcmp(s->nodes[i].h, h, 16) == 0)
            return 1;
    n = &s->nodes[s->head];
    if (n->used) {
        /* forget the oldest: unlink it from its chain */
        for (pp = &s->bucket[bucket_of(n->h)]; *pp >= 0; pp = &s->nodes[*pp].next)
            if (*pp == (int)s->head) {
                *pp = n->next;
                break;
            }
    }
    memcpy(n->h, h, 16);
    n->used = 1;
    n->next = s->bucket[b];
    s->bucket[b] = (int)s->head;
    s->head = (s->head + 1) % TOOL_CMP_SEEN_TIDS;
    return 0;
}

/* ---- transactions ------------------------------------------------------------------- */

typedef struct txn {
    struct txn *next;
    tool_cmp_srv *srv;
    unsigned char tid[TID_MAX];
    size_t tidlen;
    int in_table;
    int refs; /* table + message in progress + deferred worker; under srv->mu */
    time_t last;
    int done;
    OSSL_CMP_SRV_CTX *ctx;
    pthread_mutex_t mu; /* one message of a transaction at a time */
    const char *refuse; /* set before processing: refuse every request with this */
    int refuse_info;
    int rejected;  /* our last answer was a rejection: the transaction ends */
    int cb_calls;  /* cert requests that reached our callback */
    int logged;    /* this message's refusal is in the log already */
    char addr[64]; /* the client's address for the current message, for the log */
    /* deferred issuance */
    int state; /* 0 none, 1 waiting for the backend, 2 answer ready */
    OSSL_CMP_MSG *orig;
    tool_cmp_answer ans;
    tool_cmp_req req;
    X509_REQ *p10copy, *tmplcopy;
    X509 *oldcert; /* kur: the certificate it updates */
    int forward;   /* this message goes upstream as it is (the relay's kur) */
    int passing;   /* a passed-through kur's transaction: later messages too */
} txn;

struct tool_cmp_srv {
    tool_cmp_srv_opts o;
    unsigned char *secret;
    tool_cmp_backend be;
    pthread_mutex_t mu;
    pthread_cond_t idle; /* deferred workers: 0 left */
    int workers;
    txn *txns;
    size_t ntxns;
    seen_set seen;
};

static void txn_free(txn *t)
{
    if (!t)
        return;
    OSSL_CMP_SRV_CTX_free(t->ctx);
    OSSL_CMP_MSG_free(t->orig);
    X509_free(t->ans.cert);
    X509_REQ_free(t->p10copy);
    X509_REQ_free(t->tmplcopy);
    X509_free(t->oldcert);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* Drops n references at once (srv->mu held by the caller): one decrement and
 * one test, so no path reads t after a free of an earlier drop. */
static void txn_drop_locked(tool_cmp_srv *s, txn *t, int n)
{
    (void)s;
    t->refs -= n;
    if (t->refs == 0)
        txn_free(t);
}

static void txn_unref_locked(tool_cmp_srv *s, txn *t)
{
    txn_drop_locked(s, t, 1);
}

/* Takes t out of the table. Returns 1 when it was there: the table's reference
 * is then the caller's to drop. */
static int txn_take_out_locked(tool_cmp_srv *s, txn *t)
{
    txn **pp;
    if (!t->in_table)
        return 0;
    for (pp = &s->txns; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    t->in_table = 0;
    s->ntxns--;
    return 1;
}

static void txn_unlink_locked(tool_cmp_srv *s, txn *t)
{
    if (txn_take_out_locked(s, t))
        txn_unref_locked(s, t);
}

static void expire_locked(tool_cmp_srv *s, time_t now)
{
    txn *t = s->txns, *next;
    for (; t; t = next) {
        next = t->next;
        if (now - t->last > TOOL_CMP_TXN_IDLE_SECONDS && t->state != 1)
            txn_unlink_locked(s, t);
    }
}

static txn *find_locked(tool_cmp_srv *s, const ASN1_OCTET_STRING *tid)
{
    txn *t;
    if (!tid)
        return NULL;
    for (t = s->txns; t; t = t->next)
        if ((size_t)ASN1_STRING_length(tid) == t->tidlen &&
            memcmp(ASN1_STRING_get0_data(tid), t->tid, t->tidlen) == 0)
            return t;
    return NULL;
}

/* ---- callbacks --------------------------------------------------------------------- */

/* Every refusal goes to the log with its reason and where it came from
 * (issue 10 item 11); the texts name no secret. */
static void log_refusal(const tool_cmp_srv *s, const char *addr, const char *text)
{
    if (s->o.log_name) /* refusals are rare and an operator wants to see them */
        fprintf(stderr, "%s: refused a request: %s (from %s)\n", s->o.log_name, text,
                addr && addr[0] ? addr : "?");
    else
        tool_cmp_debug("refused: %s", text);
}

static OSSL_CMP_PKISI *refusal(txn *t, int failinfo, const char *text)
{
    log_refusal(t->srv, t->addr, text);
    t->logged = 1;
    return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_rejection, failinfo >= 0 ? 1 << failinfo : 0,
                                   text);
}

/* Where the public key sits in a DER CertTemplate: [6] IMPLICIT SubjectPublicKeyInfo.
 * OpenSSL 3.0 has no getter for it. */
static EVP_PKEY *template_pubkey(const OSSL_CRMF_CERTTEMPLATE *tmpl, OSSL_LIB_CTX *libctx)
{
    unsigned char *der = NULL;
    const unsigned char *p, *end;
    EVP_PKEY *pk = NULL;
    int len = i2d_OSSL_CRMF_CERTTEMPLATE((OSSL_CRMF_CERTTEMPLATE *)tmpl, &der);
    long l;
    int tag, cls, inf;

    if (len <= 0)
        return NULL;
    p = der;
    end = der + len;
    inf = ASN1_get_object(&p, &l, &tag, &cls, len);
    if (inf & 0x80 || tag != V_ASN1_SEQUENCE)
        goto out;
    while (p < end) {
        const unsigned char *start = p;
        inf = ASN1_get_object(&p, &l, &tag, &cls, end - p);
        if (inf & 0x80)
            break;
        if (cls == V_ASN1_CONTEXT_SPECIFIC && tag == 6) {
            /* re-tag as a SEQUENCE and parse */
            size_t n = (size_t)(p - start) + (size_t)l;
            unsigned char *copy = OPENSSL_memdup(start, n);
            const unsigned char *q = copy;
            if (copy) {
                copy[0] = 0x30;
                pk = d2i_PUBKEY_ex(NULL, &q, (long)n, libctx, NULL);
                OPENSSL_free(copy);
            }
            break;
        }
        p += l;
    }
out:
    OPENSSL_free(der);
    return pk;
}

/* The CRMF template as an unsigned X509_REQ, so the profile reads it like a p10cr. */
static X509_REQ *template_as_req(const OSSL_CRMF_MSG *crm, OSSL_LIB_CTX *libctx, const char **why)
{
    OSSL_CRMF_CERTTEMPLATE *tmpl = OSSL_CRMF_MSG_get0_tmpl(crm);
    const X509_NAME *subj = tmpl ? OSSL_CRMF_CERTTEMPLATE_get0_subject(tmpl) : NULL;
    X509_EXTENSIONS *exts = tmpl ? OSSL_CRMF_CERTTEMPLATE_get0_extensions(tmpl) : NULL;
    EVP_PKEY *pk = tmpl ? template_pubkey(tmpl, libctx) : NULL;
    X509_REQ *r = NULL;

    if (!subj || !pk) {
        *why = !subj ? "the certificate template has no subject"
                     : "the certificate template has no usable public key";
        goto out;
    }
    r = X509_REQ_new_ex(libctx, NULL);
    if (!r || !X509_REQ_set_version(r, 0) || !X509_REQ_set_subject_name(r, subj) ||
        !X509_REQ_set_pubkey(r, pk) || (exts && !X509_REQ_add_extensions(r, exts))) {
        *why = "out of memory";
        X509_REQ_free(r);
        r = NULL;
    }
out:
    EVP_PKEY_free(pk);
    return r;
}

static void *deferred_worker(void *arg)
{
    txn *t = arg;
    tool_cmp_srv *s = t->srv;
    tool_cmp_answer ans;

    memset(&ans, 0, sizeof ans);
    ans.failinfo = -1;
    if (s->o.defer_ms > 0)
        usleep((useconds_t)s->o.defer_ms * 1000);
    if (t->req.old_cert)
        s->be.kur(s->be.ctx, &t->req, &ans);
    else
        s->be.issue(s->be.ctx, &t->req, &ans);
    pthread_mutex_lock(&s->mu);
    t->ans = ans;
    t->state = 2;
    t->last = time(NULL);
    txn_unref_locked(s, t);
    if (--s->workers == 0)
        pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* One line per issued certificate (issue 10 item 11): what, for which
 * token, to whom. Public facts only. */
static void log_issued(const txn *t, const tool_cmp_answer *ans)
{
    const ASN1_INTEGER *sn = X509_get0_serialNumber(ans->cert);
    BIGNUM *bn = sn ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
    char *hex = bn ? BN_bn2hex(bn) : NULL, subj[256];
    static const char *const names[] = {[TOOL_CMP_BODY_IR] = "ir",
                                        [TOOL_CMP_BODY_CR] = "cr",
                                        [TOOL_CMP_BODY_P10CR] = "p10cr",
                                        [TOOL_CMP_BODY_KUR] = "kur"};
    int bt = t->req.bodytype;
    const char *bname = bt >= 0 && bt <= TOOL_CMP_BODY_KUR && names[bt] ? names[bt] : "?";

    X509_NAME_oneline(X509_get_subject_name(ans->cert), subj, sizeof subj);
    if (t->srv->o.log_name)
        fprintf(stderr, "%s: issued serial %s token %s purpose %s subject %s to %s (%s)\n",
                t->srv->o.log_name, hex ? hex : "?", ans->token[0] ? ans->token : "?",
                ans->purpose[0] ? ans->purpose : "?", subj, t->addr[0] ? t->addr : "?", bname);
    else
        tool_cmp_debug("issued serial %s token %s", hex ? hex : "?", ans->token);
    OPENSSL_free(hex);
    BN_free(bn);
}

static OSSL_CMP_PKISI *answer_to_si(txn *t, tool_cmp_answer *ans, X509 **certOut)
{
    if (ans->cert) {
        log_issued(t, ans);
        *certOut = ans->cert;
        ans->cert = NULL;
        return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_accepted, 0, NULL);
    }
    t->rejected = 1;
    return refusal(t, ans->failinfo >= 0 ? ans->failinfo : OSSL_CMP_PKIFAILUREINFO_badRequest,
                   ans->text[0] ? ans->text : "refused");
}

/* kur (RFC 9483 4.1.3): signed with the certificate it updates, which
 * oldCertID names and which chains to --trusted. NULL with *old set, or the
 * reason it is refused. */
static const char *kur_check(txn *t, const OSSL_CMP_MSG *req, const OSSL_CRMF_MSG *crm, X509 **old)
{
    tool_cmp_srv *s = t->srv;
    const OSSL_CRMF_CERTID *cid = crm ? OSSL_CRMF_MSG_get0_regCtrl_oldCertID(crm) : NULL;
    const X509_NAME *iss = cid ? OSSL_CRMF_CERTID_get0_issuer(cid) : NULL;
    const ASN1_INTEGER *sn = cid ? OSSL_CRMF_CERTID_get0_serialNumber(cid) : NULL;
    X509 *signer = NULL;
    int prot;

    *old = NULL;
    if (!iss || !sn)
        return "the kur names no certificate to update (oldCertID with the issuer's name)";
    prot = tool_cmp_msg_protector(req, NULL, 0, s->o.libctx, &signer);
    if (prot != TOOL_CMP_PROT_SIGNATURE || !tool_cmp_cert_trusted(signer, s->o.trusted)) {
        X509_free(signer);
        return "a kur must be signed with the certificate it updates (its key, its certificate "
               "first in extraCerts, chaining to the CA)";
    }
    if (!tool_cmp_cert_is(signer, iss, sn)) {
        X509_free(signer);
        return "the kur is signed with another certificate than the one its oldCertID names";
    }
    *old = signer;
    return NULL;
}

static OSSL_CMP_PKISI *cb_cert_request(OSSL_CMP_SRV_CTX *srv_ctx, const OSSL_CMP_MSG *req,
                                       int certReqId, const OSSL_CRMF_MSG *crm,
                                       const X509_REQ *p10cr, X509 **certOut,
                                       STACK_OF(X509) * *chainOut, STACK_OF(X509) * *caPubs)
{
    txn *t = OSSL_CMP_SRV_CTX_get0_custom_ctx(srv_ctx);
    tool_cmp_srv *s = t->srv;
    tool_cmp_answer ans;
    const char *why = NULL;
    int body = OSSL_CMP_MSG_get_bodytype(req), ready;
    pthread_t th;

    (void)certReqId;
    (void)chainOut;
    (void)caPubs;
    t->cb_calls++;
    if (t->refuse) {
        t->rejected = 1;
        return refusal(t, t->refuse_info, t->refuse);
    }
    pthread_mutex_lock(&s->mu);
    ready = t->state == 2;
    if (ready)
        t->state = 0;
    pthread_mutex_unlock(&s->mu);
    if (ready) /* a pollReq found the deferred answer ready */
        return answer_to_si(t, &t->ans, certOut);
    if (body != TOOL_CMP_BODY_P10CR && body != TOOL_CMP_BODY_IR && body != TOOL_CMP_BODY_CR &&
        (body != TOOL_CMP_BODY_KUR || (!s->be.kur && !s->be.kur_check))) {
        t->rejected = 1;
        return refusal(t, OSSL_CMP_PKIFAILUREINFO_badRequest,
                       "only p10cr, ir and cr are served here (no key update)");
    }
    X509_free(t->oldcert);
    t->oldcert = NULL;
    if (body == TOOL_CMP_BODY_KUR && (why = kur_check(t, req, crm, &t->oldcert)) != NULL) {
        t->rejected = 1;
        return refusal(t, OSSL_CMP_PKIFAILUREINFO_notAuthorized, why);
    }
    memset(&t->req, 0, sizeof t->req);
    t->req.bodytype = body;
    t->req.addr = t->addr;
    t->req.old_cert = t->oldcert;
    if (p10cr) {
        /* a copy only when the request outlives this call (deferred): a dup
         * re-decodes the key, which costs more than the rest of the check */
        t->p10copy = s->o.deferred ? X509_REQ_dup(p10cr) : NULL;
        t->req.p10 = s->o.deferred ? t->p10copy : p10cr;
        t->req.pub = t->req.p10 ? X509_REQ_get0_pubkey((X509_REQ *)t->req.p10) : NULL;
        /* Step 9 / claim 18, the signature: OpenSSL verified it before this
         * callback (badPOP otherwise, with precheck_p10's reason). */
        if (!t->req.pub) {
            t->rejected = 1;
            return refusal(t, OSSL_CMP_PKIFAILUREINFO_badCertTemplate,
                           "the request carries no usable public key");
        }
    } else if (crm) {
        t->tmplcopy = template_as_req(crm, s->o.libctx, &why);
        if (!t->tmplcopy) {
            t->rejected = 1;
            return refusal(t, OSSL_CMP_PKIFAILUREINFO_badCertTemplate, why);
        }
        t->req.tmpl = t->tmplcopy;
        t->req.pub = X509_REQ_get0_pubkey(t->tmplcopy);
        if (body == TOOL_CMP_BODY_KUR && !s->be.kur) {
            /* the relay: checked here, then the request itself goes upstream
             * (this answer is never sent) */
            memset(&ans, 0, sizeof ans);
            ans.failinfo = -1;
            if (!s->be.kur_check(s->be.ctx, &t->req, &ans)) {
                t->rejected = 1;
                return refusal(
                    t, ans.failinfo >= 0 ? ans.failinfo : OSSL_CMP_PKIFAILUREINFO_badRequest,
                    ans.text[0] ? ans.text : "refused");
            }
            t->forward = 1;
            return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_waiting, 0, NULL);
        }
    } else {
        t->rejected = 1;
        return refusal(t, OSSL_CMP_PKIFAILUREINFO_badRequest, "no request in the message");
    }
    if (s->o.deferred) {
        /* The patent's certificate server: accept now, hand out on a poll. */
        t->orig = OSSL_CMP_MSG_dup(req);
        if (!t->orig)
            return refusal(t, OSSL_CMP_PKIFAILUREINFO_systemFailure, "out of memory");
        pthread_mutex_lock(&s->mu);
        t->refs++;
        t->state = 1;
        s->workers++;
        pthread_mutex_unlock(&s->mu);
        if (pthread_create(&th, NULL, deferred_worker, t) != 0) {
            pthread_mutex_lock(&s->mu);
            t->refs--;
            t->state = 0;
            s->workers--;
            pthread_mutex_unlock(&s->mu);
            t->rejected = 1;
            return refusal(t, OSSL_CMP_PKIFAILUREINFO_systemUnavail, "cannot queue the request");
        }
        pthread_detach(th);
        return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_waiting, 0, NULL);
    }
    memset(&ans, 0, sizeof ans);
    ans.failinfo = -1;
    if (t->req.old_cert)
        s->be.kur(s->be.ctx, &t->req, &ans);
    else
        s->be.issue(s->be.ctx, &t->req, &ans);
    return answer_to_si(t, &ans, certOut);
}

static OSSL_CMP_PKISI *cb_rr(OSSL_CMP_SRV_CTX *srv_ctx, const OSSL_CMP_MSG *req,
                             const X509_NAME *issuer, const ASN1_INTEGER *serial)
{
    txn *t = OSSL_CMP_SRV_CTX_get0_custom_ctx(srv_ctx);
    tool_cmp_answer ans;
    int ok;

    if (t->refuse || !t->srv->be.revoke || !issuer || !serial) {
        t->rejected = 1;
        return refusal(t, OSSL_CMP_PKIFAILUREINFO_badRequest,
                       t->refuse            ? t->refuse
                       : !t->srv->be.revoke ? "revocation is not offered by this server"
                                            : "the revocation request names no certificate");
    }
    /* OpenSSL checked the protection; whose it is decides what it may
     * revoke (the backend's rule): a PBMAC with our secret, or a signature
     * by a certificate chaining to --trusted. */
    {
        tool_cmp_srv *s = t->srv;
        X509 *signer = NULL;
        int prot = tool_cmp_msg_protector(req, s->secret, s->o.secret_len, s->o.libctx, &signer);
        int trusted =
            prot == TOOL_CMP_PROT_SIGNATURE && tool_cmp_cert_trusted(signer, s->o.trusted);
        if (prot != TOOL_CMP_PROT_PBMAC && !trusted) {
            X509_free(signer);
            t->rejected = 1;
            return refusal(t, OSSL_CMP_PKIFAILUREINFO_notAuthorized,
                           "cannot tell who protected this rr (PBMAC with our secret, or the "
                           "signature of a certificate first in extraCerts)");
        }
        memset(&ans, 0, sizeof ans);
        ans.failinfo = -1;
        ok = s->be.revoke(s->be.ctx, issuer, serial, trusted ? signer : NULL, &ans);
        X509_free(signer);
    }
    if (!ok) {
        t->rejected = 1;
        return refusal(t, ans.failinfo >= 0 ? ans.failinfo : OSSL_CMP_PKIFAILUREINFO_badRequest,
                       ans.text[0] ? ans.text : "not revoked");
    }
    if (t->srv->o.log_name)
        fprintf(stderr, "%s: revoked serial %s to %s (rr)\n", t->srv->o.log_name, ans.token,
                t->addr[0] ? t->addr : "?");
    return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_accepted, 0, NULL);
}

/* id-it-caCerts (RFC 9483 4.3.1; OpenSSL 3.0 has no name for it) */
#define OID_IT_CACERTS "1.3.6.1.5.5.7.4.17"

/* The caCerts answer: SEQUENCE SIZE (1..MAX) OF CMPCertificate, our CA's. */
static OSSL_CMP_ITAV *ca_certs_itav(X509 *ca)
{
    unsigned char *der = NULL, *seq = NULL, *p;
    int n = i2d_X509(ca, &der), hl;
    ASN1_OBJECT *type = OBJ_txt2obj(OID_IT_CACERTS, 1);
    ASN1_STRING *str = ASN1_STRING_new();
    ASN1_TYPE *val = ASN1_TYPE_new();
    OSSL_CMP_ITAV *itav = NULL;

    if (n <= 0 || !type || !str || !val)
        goto out;
    hl = ASN1_object_size(1, n, V_ASN1_SEQUENCE);
    seq = OPENSSL_malloc(hl > 0 ? (size_t)hl : 1);
    if (hl <= 0 || !seq)
        goto out;
    p = seq;
    ASN1_put_object(&p, 1, n, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    memcpy(p, der, (size_t)n);
    if (!ASN1_STRING_set(str, seq, hl))
        goto out;
    ASN1_TYPE_set(val, V_ASN1_SEQUENCE, str);
    str = NULL;
    itav = OSSL_CMP_ITAV_create(type, val);
    if (itav) {
        type = NULL;
        val = NULL;
    }
out:
    OPENSSL_free(der);
    OPENSSL_free(seq);
    ASN1_OBJECT_free(type);
    ASN1_STRING_free(str);
    ASN1_TYPE_free(val);
    return itav;
}

static int cb_genm(OSSL_CMP_SRV_CTX *srv_ctx, const OSSL_CMP_MSG *req,
                   const STACK_OF(OSSL_CMP_ITAV) * in, STACK_OF(OSSL_CMP_ITAV) * *out)
{
    txn *t = OSSL_CMP_SRV_CTX_get0_custom_ctx(srv_ctx);
    ASN1_OBJECT *want = OBJ_txt2obj(OID_IT_CACERTS, 1);
    int i, asks = sk_OSSL_CMP_ITAV_num(in) <= 0;

    (void)req;
    if (t->refuse || !want) {
        ASN1_OBJECT_free(want);
        return 0;
    }
    for (i = 0; i < sk_OSSL_CMP_ITAV_num(in); i++)
        if (OBJ_cmp(OSSL_CMP_ITAV_get0_type(sk_OSSL_CMP_ITAV_value(in, i)), want) == 0)
            asks = 1;
    ASN1_OBJECT_free(want);
    *out = sk_OSSL_CMP_ITAV_new_null();
    if (!*out)
        return 0;
    /* caCerts when asked (or for an empty genm); nothing else to tell */
    if (asks && t->srv->o.ca_cert) {
        OSSL_CMP_ITAV *itav = ca_certs_itav(t->srv->o.ca_cert);
        if (!itav || !sk_OSSL_CMP_ITAV_push(*out, itav)) {
            OSSL_CMP_ITAV_free(itav);
            sk_OSSL_CMP_ITAV_free(*out);
            *out = NULL;
            return 0;
        }
    }
    return 1;
}

static void cb_error(OSSL_CMP_SRV_CTX *srv_ctx, const OSSL_CMP_MSG *req,
                     const OSSL_CMP_PKISI *statusInfo, const ASN1_INTEGER *errorCode,
                     const OSSL_CMP_PKIFREETEXT *errorDetails)
{
    char buf[256];
    (void)srv_ctx;
    (void)req;
    (void)errorCode;
    (void)errorDetails;
    tool_cmp_debug("client reported an error: %s",
                   statusInfo ? OSSL_CMP_snprint_PKIStatusInfo(statusInfo, buf, sizeof buf) : "-");
}

static int cb_certconf(OSSL_CMP_SRV_CTX *srv_ctx, const OSSL_CMP_MSG *req, int certReqId,
                       const ASN1_OCTET_STRING *certHash, const OSSL_CMP_PKISI *si)
{
    (void)srv_ctx;
    (void)req;
    (void)certReqId;
    (void)certHash;
    /* The certificate is already durably recorded: a client that rejects it
     * leaves it in the CA (and `issue` finds it by key next time). */
    if (si) {
        char buf[256];
        tool_cmp_debug("certConf: %s", OSSL_CMP_snprint_PKIStatusInfo(si, buf, sizeof buf));
    }
    return 1;
}

static int cb_pollreq(OSSL_CMP_SRV_CTX *srv_ctx, const OSSL_CMP_MSG *req, int certReqId,
                      OSSL_CMP_MSG **certReq, int64_t *check_after)
{
    txn *t = OSSL_CMP_SRV_CTX_get0_custom_ctx(srv_ctx);
    tool_cmp_srv *s = t->srv;
    int state;

    (void)req;
    (void)certReqId;
    *certReq = NULL;
    pthread_mutex_lock(&s->mu);
    state = t->state;
    pthread_mutex_unlock(&s->mu);
    if (state == 1) {
        *check_after = s->o.check_after > 0 ? s->o.check_after : 1;
        return 1;
    }
    if (state == 2 && t->orig) {
        *certReq = OSSL_CMP_MSG_dup(t->orig);
        return *certReq != NULL;
    }
    ERR_raise_data(ERR_LIB_CMP, CMP_R_UNEXPECTED_PKIBODY, "nothing is waiting in this transaction");
    return 0;
}

/* ---- a proof-of-possession failure that says so ----------------------------------- */

/*
 * OpenSSL's server checks a p10cr's signature before any callback runs and
 * puts the reason of the first queued error into the statusString ("EVP lib"
 * on its own). We check first and queue a reason of ours, so the station
 * reads what went wrong.
 */
#define TM_R_BAD_P10_SIGNATURE 1
static int err_lib;
static ERR_STRING_DATA err_strings[] = {
    {0, "the PKCS#10 request's signature does not verify with the public key it carries "
        "(proof of possession failed)"},
    {0, NULL},
};
static pthread_once_t err_once = PTHREAD_ONCE_INIT;

static void err_init(void)
{
    err_lib = ERR_get_next_error_library();
    err_strings[0].error = ERR_PACK(err_lib, 0, TM_R_BAD_P10_SIGNATURE);
    ERR_load_strings(err_lib, err_strings);
}

/* The CertificationRequest in a p10cr PKIMessage: SEQUENCE { header, [4] body }. */
static X509_REQ *p10_of(const unsigned char *der, size_t len, OSSL_LIB_CTX *libctx)
{
    const unsigned char *p = der, *end, *q;
    long l;
    int tag, cls;

    if (ASN1_get_object(&p, &l, &tag, &cls, (long)len) & 0x80 || tag != V_ASN1_SEQUENCE)
        return NULL;
    end = p + l;
    if (ASN1_get_object(&p, &l, &tag, &cls, end - p) & 0x80) /* the header */
        return NULL;
    p += l;
    if (p >= end || ASN1_get_object(&p, &l, &tag, &cls, end - p) & 0x80 ||
        cls != V_ASN1_CONTEXT_SPECIFIC || tag != TOOL_CMP_BODY_P10CR)
        return NULL;
    q = p;
    (void)libctx;
    return d2i_X509_REQ(NULL, &q, l);
}

/* Is this p10cr's signature bad? Then our reason is queued (see above). */
static int precheck_p10(const unsigned char *der, size_t len, OSSL_LIB_CTX *libctx)
{
    X509_REQ *r = p10_of(der, len, libctx);
    EVP_PKEY *pub = r ? X509_REQ_get0_pubkey(r) : NULL;
    int bad = r && (!pub || X509_REQ_verify_ex(r, pub, libctx, NULL) != 1);

    ERR_clear_error();
    if (bad) {
        pthread_once(&err_once, err_init);
        ERR_raise(err_lib, TM_R_BAD_P10_SIGNATURE);
    }
    X509_REQ_free(r);
    return bad;
}

/* ---- contexts --------------------------------------------------------------------- */

static txn *txn_new(tool_cmp_srv *s)
{
    txn *t = calloc(1, sizeof *t);
    OSSL_CMP_CTX *c;
    const tool_cmp_srv_opts *o = &s->o;

    if (!t)
        return NULL;
    t->srv = s;
    t->refs = 1;
    t->last = time(NULL);
    pthread_mutex_init(&t->mu, NULL);
    t->ctx = OSSL_CMP_SRV_CTX_new(o->libctx, NULL);
    c = t->ctx ? OSSL_CMP_SRV_CTX_get0_cmp_ctx(t->ctx) : NULL;
    if (!c)
        goto fail;
    OSSL_CMP_CTX_set_log_cb(c, tool_cmp_log_cb);
    if (s->secret && !OSSL_CMP_CTX_set1_secretValue(c, s->secret, (int)o->secret_len))
        goto fail;
    if (o->ref &&
        !OSSL_CMP_CTX_set1_referenceValue(c, (const unsigned char *)o->ref, (int)strlen(o->ref)))
        goto fail;
    if (o->cert && o->key &&
        (!OSSL_CMP_CTX_set1_cert(c, o->cert) || !OSSL_CMP_CTX_set1_pkey(c, o->key)))
        goto fail;
    if (o->extra && !OSSL_CMP_CTX_set1_untrusted(c, o->extra))
        goto fail;
    if (o->trusted) {
        if (!X509_STORE_up_ref(o->trusted))
            goto fail;
        if (!OSSL_CMP_CTX_set0_trustedStore(c, o->trusted)) {
            X509_STORE_free(o->trusted);
            goto fail;
        }
    }
    if (o->name && !OSSL_CMP_CTX_set1_subjectName(c, o->name))
        goto fail;
    if (!OSSL_CMP_SRV_CTX_init(t->ctx, t, cb_cert_request, cb_rr, cb_genm, cb_error, cb_certconf,
                               cb_pollreq) ||
        !OSSL_CMP_SRV_CTX_set_grant_implicit_confirm(t->ctx, 1) ||
        !OSSL_CMP_SRV_CTX_set_accept_unprotected(t->ctx, 0) ||
        !OSSL_CMP_SRV_CTX_set_send_unprotected_errors(t->ctx, 0) ||
        !OSSL_CMP_SRV_CTX_set_accept_raverified(t->ctx, o->accept_raverified))
        goto fail;
    return t;
fail:
    txn_free(t);
    return NULL;
}

tool_cmp_srv *tool_cmp_srv_new(const tool_cmp_srv_opts *o, const tool_cmp_backend *be, char *err,
                               size_t errlen)
{
    tool_cmp_srv *s;

    if (!o || !be || !be->issue) {
        snprintf(err, errlen, "internal error: no backend");
        return NULL;
    }
    if (!o->secret_len && !(o->trusted)) {
        snprintf(err, errlen,
                 "no way to authenticate clients: give a shared secret (PBMAC) and/or trusted "
                 "certificates for signature protection");
        return NULL;
    }
    if (!o->secret_len && !(o->cert && o->key)) {
        snprintf(err, errlen,
                 "signature protection needs our own certificate and key to sign "
                 "responses");
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (!s || !seen_init(&s->seen)) {
        snprintf(err, errlen, "out of memory");
        if (s)
            seen_free(&s->seen);
        free(s);
        return NULL;
    }
    s->o = *o;
    s->be = *be;
    if (o->secret_len) {
        s->secret = OPENSSL_secure_malloc(o->secret_len);
        if (!s->secret)
            s->secret = OPENSSL_malloc(o->secret_len);
        if (!s->secret) {
            snprintf(err, errlen, "out of memory");
            seen_free(&s->seen);
            free(s);
            return NULL;
        }
        memcpy(s->secret, o->secret, o->secret_len);
    }
    s->o.secret = NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    return s;
}

void tool_cmp_srv_free(tool_cmp_srv *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    while (s->workers > 0) /* deferred issuance in progress finishes first */
        pthread_cond_wait(&s->idle, &s->mu);
    while (s->txns)
        txn_unlink_locked(s, s->txns);
    pthread_mutex_unlock(&s->mu);
    if (s->secret) {
        OPENSSL_cleanse(s->secret, s->o.secret_len);
        if (CRYPTO_secure_allocated(s->secret))
            OPENSSL_secure_free(s->secret);
        else
            OPENSSL_free(s->secret);
    }
    seen_free(&s->seen);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->idle);
    free(s);
}

static int text_out(const char *msg, unsigned char **out, size_t *outlen, int status)
{
    size_t n = strlen(msg);
    *out = malloc(n + 1);
    if (!*out)
        return 500;
    memcpy(*out, msg, n + 1);
    *outlen = n;
    return status;
}

/* The header's senderNonce ([5] EXPLICIT OCTET STRING); OpenSSL 3.0 has no
 * getter for it. Returns its length (0: none), *nonce pointing into der. */
static size_t sender_nonce_of(const unsigned char *der, size_t len, const unsigned char **nonce)
{
    const unsigned char *p = der, *end, *hend, *q;
    long l;
    int tag, cls;

    if (ASN1_get_object(&p, &l, &tag, &cls, (long)len) & 0x80)
        return 0;
    end = p + l;
    if (ASN1_get_object(&p, &l, &tag, &cls, end - p) & 0x80 || tag != V_ASN1_SEQUENCE)
        return 0;
    hend = p + l;
    while (p < hend) {
        if (ASN1_get_object(&p, &l, &tag, &cls, hend - p) & 0x80)
            return 0;
        if (cls == V_ASN1_CONTEXT_SPECIFIC && tag == 5) {
            q = p;
            if (ASN1_get_object(&q, &l, &tag, &cls, hend - q) & 0x80 ||
                tag != V_ASN1_OCTET_STRING || l <= 0 || l > TID_MAX)
                return 0;
            *nonce = q;
            return (size_t)l;
        }
        p += l;
    }
    return 0;
}

/* Has this nonce been seen? Remembers it (in the same set as transactionIDs,
 * hashed with a prefix so that the two never collide). */
static int nonce_seen_locked(tool_cmp_srv *s, const unsigned char *nonce, size_t n)
{
    unsigned char buf[TID_MAX + 1], h[16];
    buf[0] = 'N';
    memcpy(buf + 1, nonce, n);
    tid_hash(buf, n + 1, h);
    return seen_check_add(&s->seen, h);
}

static int starts_transaction(int body)
{
    switch (body) {
    case TOOL_CMP_BODY_IR:
    case TOOL_CMP_BODY_CR:
    case TOOL_CMP_BODY_P10CR:
    case TOOL_CMP_BODY_KUR:
    case TOOL_CMP_BODY_RR:
    case TOOL_CMP_BODY_GENM:
    case TOOL_CMP_BODY_ERROR:
        return 1;
    default:
        return 0;
    }
}

/* Does the transaction end with this response? */
static int ends_with(txn *t, const OSSL_CMP_MSG *rsp)
{
    switch (OSSL_CMP_MSG_get_bodytype(rsp)) {
    case TOOL_CMP_BODY_POLLREP:
        return 0;
    case TOOL_CMP_BODY_IP:
    case TOOL_CMP_BODY_CP:
    case TOOL_CMP_BODY_KUP:
        if (t->state == 1 || t->rejected)
            return t->rejected;
        /* granted implicit confirmation: no certConf follows */
        return OSSL_CMP_CTX_get_option(OSSL_CMP_SRV_CTX_get0_cmp_ctx(t->ctx),
                                       OSSL_CMP_OPT_IMPLICIT_CONFIRM) == 1;
    default: /* pkiconf, error, rp, genp */
        return 1;
    }
}

/* Why OpenSSL answered with an error message: the reasons on its error
 * queue ("error validating protection", "missing protection", ...). */
static void queue_reasons(char *buf, size_t len)
{
    unsigned long e;
    const char *data;
    int flags;
    size_t off = 0;

    buf[0] = 0;
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0 && off + 1 < len) {
        const char *r = ERR_reason_error_string(e);
        int n = snprintf(buf + off, len - off, "%s%s%s%s", off ? "; " : "", r ? r : "error",
                         (flags & ERR_TXT_STRING) && data && *data ? ": " : "",
                         (flags & ERR_TXT_STRING) && data ? data : "");
        if (n < 0)
            break;
        off += (size_t)n < len - off ? (size_t)n : len - off - 1;
    }
}

/* ---- the relay's kur, passed through ------------------------------------------- */

/* Posts the request upstream as it is; the answer's bytes go back as they
 * are. Returns the HTTP status. */
static int pass_upstream(txn *t, const unsigned char *body, size_t len, unsigned char **out,
                         size_t *outlen)
{
    tool_cmp_srv *s = t->srv;
    char err[400] = "";

    if (s->be.forward(s->be.ctx, body, len, out, outlen, err, sizeof err))
        return 200;
    log_refusal(s, t->addr, err[0] ? err : "the upstream CA did not answer");
    return text_out("the upstream CA did not answer; retry later\n", out, outlen, 502);
}

/* A later message of a passed-through kur: a certConf, pollReq or error
 * signed by the certificate that signed the kur goes upstream too. 1 when
 * answered (*status set), 0 to let OpenSSL answer (and refuse) it. */
static int pass_follow_up(txn *t, const OSSL_CMP_MSG *req, const unsigned char *body, size_t len,
                          unsigned char **out, size_t *outlen, int *status)
{
    tool_cmp_srv *s = t->srv;
    int bt = OSSL_CMP_MSG_get_bodytype(req);
    X509 *signer = NULL;
    int prot, same;

    if (bt != TOOL_CMP_BODY_CERTCONF && bt != TOOL_CMP_BODY_POLLREQ && bt != TOOL_CMP_BODY_ERROR) {
        log_refusal(s, t->addr, "relay: only certConf, pollReq or error continue a forwarded kur");
        t->logged = 1;
        return 0;
    }
    prot = tool_cmp_msg_protector(req, NULL, 0, s->o.libctx, &signer);
    same = prot == TOOL_CMP_PROT_SIGNATURE && t->oldcert && X509_cmp(signer, t->oldcert) == 0;
    X509_free(signer);
    if (!same) {
        log_refusal(s, t->addr,
                    "relay: a message continuing a forwarded kur must be signed with the "
                    "certificate that signed the kur");
        t->logged = 1;
        return 0;
    }
    *status = pass_upstream(t, body, len, out, outlen);
    /* certConf gets pkiConf, error ends it: the transaction is over */
    if (bt != TOOL_CMP_BODY_POLLREQ || *status != 200)
        t->done = 1;
    return 1;
}

int tool_cmp_srv_handle(tool_cmp_srv *s, const unsigned char *body, size_t len, unsigned char **out,
                        size_t *outlen)
{
    return tool_cmp_srv_handle_from(s, NULL, body, len, out, outlen);
}

int tool_cmp_srv_handle_from(tool_cmp_srv *s, const char *addr, const unsigned char *body,
                             size_t len, unsigned char **out, size_t *outlen)
{
    const unsigned char *p = body;
    OSSL_CMP_MSG *req = NULL, *rsp = NULL;
    const ASN1_OCTET_STRING *tid;
    unsigned char h[16];
    txn *t = NULL;
    int bt, status = 500, n, calls;
    time_t now = time(NULL);
    char why[400];

    *out = NULL;
    *outlen = 0;
    if (!s || !body || !len)
        return text_out("empty body: POST one DER PKIMessage\n", out, outlen, 400);
    if (len > 0x7fffffff)
        return text_out("body too large\n", out, outlen, 413);
    req = d2i_OSSL_CMP_MSG(NULL, &p, (long)len);
    if (!req || p != body + len) {
        ERR_clear_error();
        status = text_out(req ? "trailing bytes after the PKIMessage\n"
                              : "not a DER PKIMessage (malformed or truncated)\n",
                          out, outlen, 400);
        goto out;
    }
    bt = OSSL_CMP_MSG_get_bodytype(req);
    tid = OSSL_CMP_HDR_get0_transactionID(OSSL_CMP_MSG_get0_header(req));

    pthread_mutex_lock(&s->mu);
    expire_locked(s, now);
    if (starts_transaction(bt)) {
        t = txn_new(s);
        if (!t) {
            pthread_mutex_unlock(&s->mu);
            status = text_out("out of memory\n", out, outlen, 503);
            goto out;
        }
        if (tid && ASN1_STRING_length(tid) > 0 && ASN1_STRING_length(tid) <= TID_MAX) {
            const unsigned char *nonce = NULL;
            size_t nlen = sender_nonce_of(body, len, &nonce);
            tid_hash(ASN1_STRING_get0_data(tid), (size_t)ASN1_STRING_length(tid), h);
            if (seen_check_add(&s->seen, h)) {
                t->refuse = "transactionID already used: a replayed or reused request is "
                            "refused";
                t->refuse_info = OSSL_CMP_PKIFAILUREINFO_badRequest;
            } else if (nlen && nonce_seen_locked(s, nonce, nlen)) {
                t->refuse = "senderNonce already used: a replayed or reused request is "
                            "refused";
                t->refuse_info = OSSL_CMP_PKIFAILUREINFO_badRequest;
            } else if (s->ntxns >= TOOL_CMP_MAX_TXNS) {
                t->refuse = "too many open transactions; retry later";
                t->refuse_info = OSSL_CMP_PKIFAILUREINFO_systemUnavail;
            } else {
                memcpy(t->tid, ASN1_STRING_get0_data(tid), (size_t)ASN1_STRING_length(tid));
                t->tidlen = (size_t)ASN1_STRING_length(tid);
                t->in_table = 1;
                t->refs++;
                t->next = s->txns;
                s->txns = t;
                s->ntxns++;
            }
        }
        /* without a usable transactionID OpenSSL's checks answer with an error */
    } else {
        t = find_locked(s, tid);
        if (t) {
            t->refs++;
        } else {
            /* a fresh context has no transaction: OpenSSL answers "unexpected" */
            t = txn_new(s);
            if (!t) {
                pthread_mutex_unlock(&s->mu);
                status = text_out("out of memory\n", out, outlen, 503);
                goto out;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);

    pthread_mutex_lock(&t->mu);
    ERR_clear_error();
    calls = t->cb_calls;
    t->logged = 0;
    snprintf(t->addr, sizeof t->addr, "%s", addr ? addr : "");
    why[0] = 0;
    g_reasons = why;
    g_reasons_len = sizeof why;
    if (t->passing && pass_follow_up(t, req, body, len, out, outlen, &status)) {
        t->last = time(NULL);
        pthread_mutex_unlock(&t->mu);
        goto drop;
    }
    t->forward = 0;
    rsp = OSSL_CMP_SRV_process_request(t->ctx, req);
    g_reasons = NULL;
    if (rsp && t->forward) {
        /* the relay's kur, checked: the CA answers the request itself */
        OSSL_CMP_MSG_free(rsp);
        rsp = NULL;
        t->forward = 0;
        status = pass_upstream(t, body, len, out, outlen);
        t->passing = status == 200;
        t->done = !t->passing;
        t->last = time(NULL);
        pthread_mutex_unlock(&t->mu);
        goto drop;
    }
    if (rsp && OSSL_CMP_MSG_get_bodytype(rsp) == TOOL_CMP_BODY_ERROR && !t->logged) {
        /* refused by OpenSSL's checks (protection, header, sequence) before
         * any of our callbacks: still a refusal the operator must see */
        if (!why[0])
            queue_reasons(why, sizeof why);
        log_refusal(s, t->addr, why[0] ? why : "the message failed OpenSSL's CMP checks");
        t->logged = 1;
    }
    if (rsp && bt == TOOL_CMP_BODY_P10CR && t->cb_calls == calls &&
        OSSL_CMP_MSG_get_bodytype(rsp) == TOOL_CMP_BODY_CP) {
        /* OpenSSL refused the p10cr before our callback: a bad signature
         * gets an answer with our reason instead of "EVP lib". Decoding the
         * request again costs, so only on this path. */
        txn *again = precheck_p10(body, len, s->o.libctx) ? txn_new(s) : NULL;
        OSSL_CMP_MSG *rsp2 = again ? OSSL_CMP_SRV_process_request(again->ctx, req) : NULL;
        if (rsp2) {
            OSSL_CMP_MSG_free(rsp);
            rsp = rsp2;
        }
        txn_free(again);
        t->done = 1;
    }
    if (!rsp || ends_with(t, rsp))
        t->done = 1;
    t->last = time(NULL);
    pthread_mutex_unlock(&t->mu);

    if (!rsp) {
        char e[256];
        ERR_error_string_n(ERR_peek_last_error(), e, sizeof e);
        ERR_clear_error();
        tool_cmp_debug("no response: %s", e);
        status = text_out("the CMP server could not answer this message\n", out, outlen, 500);
    } else {
        unsigned char *der = NULL;
        ERR_clear_error();
        n = i2d_OSSL_CMP_MSG(rsp, &der);
        if (n <= 0) {
            status = text_out("cannot encode the response\n", out, outlen, 500);
        } else {
            *out = malloc((size_t)n);
            if (*out) {
                memcpy(*out, der, (size_t)n);
                *outlen = (size_t)n;
                status = 200;
            }
            OPENSSL_free(der);
        }
    }
drop:
    pthread_mutex_lock(&s->mu);
    /* Our reference, and the table's when the transaction is over. */
    txn_drop_locked(s, t, 1 + (t->done ? txn_take_out_locked(s, t) : 0));
    pthread_mutex_unlock(&s->mu);
out:
    OSSL_CMP_MSG_free(req);
    OSSL_CMP_MSG_free(rsp);
    return status;
}
