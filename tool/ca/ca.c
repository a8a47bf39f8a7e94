/*
 * The CA interface's side that every backend shares: the wrappers callers
 * use, and the group-commit queue that turns single requests (watch) into
 * batches for whichever backend is behind it.
 */
#include "ca/ca.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tool_ca_base_init(tool_ca *ca, const tool_ca_ops *ops)
{
    memset(ca, 0, sizeof *ca);
    ca->ops = ops;
    pthread_mutex_init(&ca->mu, NULL);
    pthread_cond_init(&ca->cv, NULL);
}

void tool_ca_base_clear(tool_ca *ca)
{
    free(ca->pending);
    ca->pending = NULL;
    pthread_mutex_destroy(&ca->mu);
    pthread_cond_destroy(&ca->cv);
}

const char *tool_ca_name(const tool_ca *ca)
{
    tool_return_val_if_fail(ca != NULL, "CA");
    return ca->ops->name;
}

int tool_ca_check(tool_ca *ca, char *err, size_t errlen)
{
    tool_return_val_if_fail(ca != NULL, 0);
    return !ca->ops->check || ca->ops->check(ca, err, errlen);
}

size_t tool_ca_issue_batch(tool_ca *ca, tool_ca_item *items, size_t n)
{
    tool_return_val_if_fail(ca != NULL && (items != NULL || n == 0), 0);
    return n ? ca->ops->issue_batch(ca, items, n) : 0;
}

X509 *tool_ca_root(tool_ca *ca)
{
    tool_return_val_if_fail(ca != NULL, NULL);
    return ca->ops->root(ca);
}

X509 *tool_ca_find_by_key(tool_ca *ca, EVP_PKEY *pub, const char *purpose)
{
    tool_return_val_if_fail(ca != NULL && pub != NULL && purpose != NULL, NULL);
    return ca->ops->find_by_key ? ca->ops->find_by_key(ca, pub, purpose) : NULL;
}

int tool_ca_token_lock(tool_ca *ca, const unsigned char *serial, size_t len, char *err,
                       size_t errlen)
{
    tool_return_val_if_fail(ca != NULL && serial != NULL && len > 0, -1);
    return ca->ops->token_lock(ca, serial, len, err, errlen);
}

void tool_ca_token_unlock(int fd)
{
    tool_token_unlock(fd);
}

int tool_ca_revoke(tool_ca *ca, const char *token, const char *cert_serial, int reason,
                   size_t *revoked, size_t *already, char *err, size_t errlen)
{
    tool_return_val_if_fail(ca != NULL && (token != NULL || cert_serial != NULL), 0);
    if (!ca->ops->revoke) {
        snprintf(err, errlen, "the %s cannot revoke certificates", ca->ops->name);
        return 0;
    }
    return ca->ops->revoke(ca, token, cert_serial, reason, revoked, already, err, errlen);
}

int tool_ca_status(tool_ca *ca, const X509_NAME *issuer, const ASN1_INTEGER *serial, char *status,
                   int64_t *revoked_at, int *reason, char *err, size_t errlen)
{
    tool_return_val_if_fail(ca != NULL && issuer != NULL && serial != NULL, -1);
    if (!ca->ops->status) {
        snprintf(err, errlen, "the %s cannot tell revocation status", ca->ops->name);
        return -1;
    }
    return ca->ops->status(ca, issuer, serial, status, revoked_at, reason, err, errlen);
}

X509_CRL *tool_ca_crl(tool_ca *ca, size_t *entries, char *err, size_t errlen)
{
    tool_return_val_if_fail(ca != NULL, NULL);
    if (!ca->ops->crl) {
        snprintf(err, errlen, "the %s cannot make CRLs", ca->ops->name);
        return NULL;
    }
    return ca->ops->crl(ca, entries, err, errlen);
}

int tool_ca_supersede(tool_ca *ca, const char *old_serial, const char *new_serial, char *err,
                      size_t errlen)
{
    tool_return_val_if_fail(ca != NULL && old_serial != NULL && new_serial != NULL, -1);
    if (!ca->ops->supersede)
        return 0;
    return ca->ops->supersede(ca, old_serial, new_serial, err, errlen);
}

int tool_ca_renews_by_signature(const tool_ca *ca)
{
    return ca && ca->ops->renews_by_signature;
}

int tool_ca_has_status(const tool_ca *ca)
{
    return ca && ca->ops->status != NULL;
}

void tool_ca_close(tool_ca *ca)
{
    if (ca)
        ca->ops->close(ca);
}

/* A prepared item that will not reach the database: its certificate was
 * never stored, so it must not be handed out. */
static void unprepare(tool_ca_item *item)
{
    if (item->prepared) {
        X509_free(item->cert);
        item->cert = NULL;
        item->prepared = 0;
    }
}

void tool_ca_submit(tool_ca *ca, tool_ca_item *item)
{
    tool_return_if_fail(ca != NULL && item != NULL && item->req != NULL);
    if (ca->ops->prepare) {
        ca->ops->prepare(ca, item);
        if (!item->cert) { /* refused: nothing for the database to do */
            item->done = 1;
            return;
        }
        item->prepared = 1;
    }
    pthread_mutex_lock(&ca->mu);
    if (ca->npending == ca->cap) {
        size_t nc = ca->cap ? ca->cap * 2 : 16;
        tool_ca_item **t = realloc(ca->pending, nc * sizeof *t);
        if (!t) {
            pthread_mutex_unlock(&ca->mu);
            unprepare(item);
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
                    unprepare(ca->pending[i]);
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
                who[i]->prepared = 0;
                who[i]->cert = batch[i].cert;
                who[i]->unavailable = batch[i].unavailable;
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
