/*
 * CMP over HTTP (RFC 6712): POST, Content-Type application/pkixcmp, one
 * PKIMessage per request and response. libmicrohttpd does the HTTP; a
 * thread per connection, because the handler blocks on the CA's group
 * commit (and a relay on its upstream) and must not hold up other clients.
 *
 * Hostile clients (issue 10 item 10): a thread per connection is cheap while
 * it waits, but a client that opens hundreds of connections and sends
 * nothing, or sends its headers one byte at a time, must not keep a good
 * request waiting. So: a total and a per-client (source address) connection
 * limit, decided in the accept policy so a refused connection is closed at
 * once (not left in the listen backlog); and deadlines for the headers and
 * the body of each request, kept by a watchdog thread that shuts down the
 * socket of a connection past its deadline (libmicrohttpd's own timeout is
 * an idle timeout, which a byte every few seconds resets). Every dropped
 * connection is logged with its reason.
 */
#include "cmp/cmp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <pthread.h>

#include <microhttpd.h>

/* One accepted connection, from its accept to its close. */
typedef struct conn {
    struct conn *prev, *next;
    int fd;
    time_t deadline;   /* 0: none (a request being answered) */
    const char *phase; /* what the deadline waits for, for the log */
    int cut;           /* shut down by the watchdog */
    char peer[INET6_ADDRSTRLEN];
} conn;

struct tool_cmp_http {
    struct MHD_Daemon *d;
    tool_cmp_srv *srv;
    tool_cmp_http_limits lim;
    int port;
    pthread_mutex_t mu; /* conns, nconns */
    pthread_cond_t wake;
    conn *conns;
    unsigned nconns;
    int stop;
    pthread_t watchdog;
    int have_watchdog;
};

static void peer_text(const struct sockaddr *a, char *buf, size_t len)
{
    buf[0] = 0;
    if (!a)
        snprintf(buf, len, "?");
    else if (a->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, buf, (socklen_t)len);
    else if (a->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr, buf, (socklen_t)len);
    else
        snprintf(buf, len, "?");
}

/* Every refused or dropped connection is logged (stderr is the server's log). */
static void conn_log(const tool_cmp_http *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void conn_log(const tool_cmp_http *h, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (h->lim.log_name)
        fprintf(stderr, "%s: %s\n", h->lim.log_name, line);
    else
        tool_cmp_debug("%s", line);
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    tool_cmp_http *h = cls;
    char peer[INET6_ADDRSTRLEN];
    unsigned same = 0, total;
    conn *c;

    (void)addrlen;
    peer_text(addr, peer, sizeof peer);
    pthread_mutex_lock(&h->mu);
    total = h->nconns;
    for (c = h->conns; c; c = c->next)
        if (!strcmp(c->peer, peer))
            same++;
    pthread_mutex_unlock(&h->mu);
    if (total >= h->lim.max_conns) {
        conn_log(h, "refused a connection from %s: connection limit (%u in all) reached", peer,
                 h->lim.max_conns);
        return MHD_NO;
    }
    if (same >= h->lim.per_client) {
        conn_log(h, "refused a connection from %s: per-client connection limit (%u) reached", peer,
                 h->lim.per_client);
        return MHD_NO;
    }
    return MHD_YES;
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    tool_cmp_http *h = cls;
    conn *c = *socket_context;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ad =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        c = calloc(1, sizeof *c);
        if (!c)
            return;
        c->fd = fd ? fd->connect_fd : -1;
        peer_text(ad ? ad->client_addr : NULL, c->peer, sizeof c->peer);
        c->deadline = time(NULL) + (time_t)h->lim.header_s;
        c->phase = "request headers";
        pthread_mutex_lock(&h->mu);
        c->next = h->conns;
        if (h->conns)
            h->conns->prev = c;
        h->conns = c;
        h->nconns++;
        pthread_mutex_unlock(&h->mu);
        *socket_context = c;
        return;
    }
    if (!c)
        return;
    /* libmicrohttpd closes the socket only after this: the watchdog, which
     * takes the same lock, never shuts down a number already reused */
    pthread_mutex_lock(&h->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    pthread_mutex_unlock(&h->mu);
    free(c);
    *socket_context = NULL;
}

static conn *conn_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

static void conn_deadline(tool_cmp_http *h, struct MHD_Connection *mc, unsigned seconds,
                          const char *phase)
{
    conn *c = conn_of(mc);
    if (!c)
        return;
    pthread_mutex_lock(&h->mu);
    c->deadline = seconds ? time(NULL) + (time_t)seconds : 0;
    c->phase = phase;
    pthread_mutex_unlock(&h->mu);
}

static void *watchdog_main(void *arg)
{
    tool_cmp_http *h = arg;
    struct timespec ts;
    conn *c;

    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        time_t now = time(NULL);
        for (c = h->conns; c; c = c->next)
            if (!c->cut && c->deadline && now >= c->deadline && c->fd >= 0) {
                c->cut = 1;
                shutdown(c->fd, SHUT_RDWR);
                conn_log(h, "closed a connection from %s: %s not complete in time (timed out)",
                         c->peer, c->phase);
            }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->wake, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

typedef struct upload {
    unsigned char *buf;
    size_t len, cap;
    int status; /* nonzero: refuse with this once the body is consumed */
    const char *why;
    int extra; /* for h->lim.extra (OCSP, CRL), not CMP */
} upload;

static enum MHD_Result reply(struct MHD_Connection *c, int status, const void *data, size_t len,
                             const char *type)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result text(struct MHD_Connection *c, int status, const char *msg)
{
    return reply(c, status, msg, strlen(msg), "text/plain");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    tool_cmp_http *h = cls;
    upload *u = *con_cls;
    unsigned char *out = NULL;
    size_t outlen = 0;
    int status;
    enum MHD_Result ret;

    (void)version;
    if (!u) {
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        u = calloc(1, sizeof *u);
        if (!u)
            return MHD_NO;
        *con_cls = u;
        conn_deadline(h, c, h->lim.body_s, "request body");
        if (h->lim.extra &&
            (!strcmp(method, "GET") ||
             (!strcmp(method, "POST") && ct && !strncasecmp(ct, "application/ocsp-request", 24)))) {
            u->extra = 1;
            if (cl && strtoull(cl, NULL, 10) > h->lim.max_body) {
                u->status = 413;
                u->why = "body larger than this server's limit\n";
                return text(c, u->status, u->why);
            }
            return MHD_YES;
        }
        if (strcmp(method, "POST") != 0) {
            u->status = 405;
            u->why = "CMP over HTTP takes POST only\n";
        } else if (!ct || strncasecmp(ct, "application/pkixcmp", 19) != 0) {
            u->status = 415;
            u->why = "Content-Type must be application/pkixcmp\n";
        } else if (cl && strtoull(cl, NULL, 10) > h->lim.max_body) {
            u->status = 413;
            u->why = "body larger than this server's limit\n";
        }
        /* Refused on its headers: answer now, and MHD closes the connection
         * without reading the body. */
        if (u->status)
            return text(c, u->status, u->why);
        return MHD_YES;
    }
    if (*data_size) {
        if (!u->status) {
            if (u->len + *data_size > h->lim.max_body) {
                u->status = 413;
                u->why = "body larger than this server's limit\n";
                free(u->buf);
                u->buf = NULL;
                u->len = 0;
            } else {
                if (u->len + *data_size > u->cap) {
                    size_t nc = u->cap ? u->cap : 4096;
                    unsigned char *nb;
                    while (nc < u->len + *data_size)
                        nc *= 2;
                    nb = realloc(u->buf, nc);
                    if (!nb)
                        return MHD_NO;
                    u->buf = nb;
                    u->cap = nc;
                }
                memcpy(u->buf + u->len, data, *data_size);
                u->len += *data_size;
            }
        }
        *data_size = 0; /* consumed (or dropped when refused) */
        return MHD_YES;
    }
    if (u->status)
        return text(c, u->status, u->why);
    /* the client has sent everything: the time we take is ours */
    conn_deadline(h, c, 0, NULL);
    if (u->extra) {
        const char *type = "text/plain";
        status = h->lim.extra(h->lim.extra_ctx, method, url,
                              MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"),
                              u->buf, u->len, &out, &outlen, &type);
        if (status) {
            ret = reply(c, status, out ? (const char *)out : "error\n", out ? outlen : 6, type);
            free(out);
            return ret;
        }
    }
    {
        conn *cn = conn_of(c);
        status =
            tool_cmp_srv_handle_from(h->srv, cn ? cn->peer : NULL, u->buf, u->len, &out, &outlen);
    }
    if (status == 200)
        ret = reply(c, 200, out, outlen, "application/pkixcmp");
    else
        ret = reply(c, status, out ? (const char *)out : "error\n", out ? outlen : 6, "text/plain");
    free(out);
    return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    tool_cmp_http *h = cls;
    upload *u = *con_cls;
    (void)toe;
    /* a kept-alive connection's next request: its headers are due again */
    conn_deadline(h, c, h->lim.header_s, "request headers");
    if (u) {
        free(u->buf);
        free(u);
        *con_cls = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    (void)cls;
    vsnprintf(buf, sizeof buf, fmt, ap);
    tool_cmp_debug("http: %s", buf);
}

/* "127.0.0.1:PORT", "localhost:PORT" or "[::1]:PORT". */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl, char *err,
                        size_t errlen)
{
    char host[128];
    const char *colon;
    char *end;
    long port;
    size_t hl;

    memset(ss, 0, sizeof *ss);
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            goto bad;
        hl = (size_t)(rb - s - 1);
        if (hl >= sizeof host)
            goto bad;
        memcpy(host, s + 1, hl);
        host[hl] = 0;
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            goto bad;
        hl = (size_t)(colon - s);
        if (hl >= sizeof host)
            goto bad;
        memcpy(host, s, hl);
        host[hl] = 0;
    }
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
        goto bad;
    if (!strcmp(host, "localhost"))
        strcpy(host, "127.0.0.1");
    {
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
            a4->sin_family = AF_INET;
            a4->sin_port = htons((unsigned short)port);
            *sl = sizeof *a4;
            return 1;
        }
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
            a6->sin6_family = AF_INET6;
            a6->sin6_port = htons((unsigned short)port);
            *sl = sizeof *a6;
            return 1;
        }
    }
bad:
    snprintf(err, errlen, "--listen %s: expected ADDRESS:PORT, e.g. 127.0.0.1:8080", s);
    return 0;
}

void tool_cmp_http_limits_init(tool_cmp_http_limits *l)
{
    memset(l, 0, sizeof *l);
    l->max_body = TOOL_CMP_MAX_BODY_DEFAULT;
    l->max_conns = TOOL_CMP_MAX_CONNS_DEFAULT;
    l->per_client = TOOL_CMP_PER_CLIENT_DEFAULT;
    l->header_s = TOOL_CMP_HEADER_TIMEOUT_DEFAULT;
    l->body_s = TOOL_CMP_BODY_TIMEOUT_DEFAULT;
    l->idle_s = TOOL_CMP_IDLE_TIMEOUT_DEFAULT;
}

tool_cmp_http *tool_cmp_http_start(const char *listen, const tool_cmp_http_limits *lim,
                                   tool_cmp_srv *srv, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    tool_cmp_http *h;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG | MHD_USE_POLL;

    if (!parse_listen(listen, &ss, &sl, err, errlen))
        return NULL;
    h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->srv = srv;
    if (lim)
        h->lim = *lim;
    else
        tool_cmp_http_limits_init(&h->lim);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->wake, NULL);
    if (pthread_create(&h->watchdog, NULL, watchdog_main, h) != 0) {
        snprintf(err, errlen, "cannot start the connection watchdog thread");
        tool_cmp_http_stop(h);
        return NULL;
    }
    h->have_watchdog = 1;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* libmicrohttpd's own limit a little above ours, so that ours (which
     * closes and logs) decides; its timeout is the keep-alive idle timeout.
     * Waiting threads need little stack: OpenSSL's CMP code runs in them. */
    h->d =
        MHD_start_daemon(flags, 0, on_accept, h, on_request, h, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, h->lim.max_conns + 16,
                         MHD_OPTION_CONNECTION_TIMEOUT, h->lim.idle_s, MHD_OPTION_THREAD_STACK_SIZE,
                         (size_t)(512 * 1024), MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                         MHD_OPTION_NOTIFY_COMPLETED, on_done, h, MHD_OPTION_NOTIFY_CONNECTION,
                         on_connection, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(errno));
        tool_cmp_http_stop(h);
        return NULL;
    }
    info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    return h;
}

int tool_cmp_http_port(tool_cmp_http *h)
{
    return h ? h->port : 0;
}

void tool_cmp_http_stop(tool_cmp_http *h)
{
    if (!h)
        return;
    if (h->d)
        MHD_stop_daemon(h->d);
    if (h->have_watchdog) {
        pthread_mutex_lock(&h->mu);
        h->stop = 1;
        pthread_cond_signal(&h->wake);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->watchdog, NULL);
    }
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

int tool_cmp_http_serve_until_signal(tool_cmp_http *h, const char *port_file)
{
    sigset_t set;
    int sig = 0;

    printf("listening on port %d\n", h->port);
    fflush(stdout);
    if (port_file) {
        /* written to a temporary name and renamed: a reader never sees half */
        char tmp[4096];
        FILE *f;
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d\n", h->port) < 0 || fclose(f) != 0 || rename(tmp, port_file)) {
            fprintf(stderr, "tokenmint: cannot write --port-file %s: %s\n", port_file,
                    strerror(errno));
            return 0;
        }
    }
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
    tool_cmp_debug("signal %d: stopping", sig);
    return 1;
}
