/*
 * CMP over HTTP (RFC 6712): POST, Content-Type application/pkixcmp, one
 * PKIMessage per request and response. libmicrohttpd does the HTTP; a
 * thread per connection, because the handler blocks on the CA's group
 * commit (and a relay on its upstream) and must not hold up other clients.
 */
#include "cmp/cmp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>

#define CONNECTION_LIMIT 256

struct tool_cmp_http {
    struct MHD_Daemon *d;
    tool_cmp_srv *srv;
    size_t max_body;
    int port;
};

typedef struct upload {
    unsigned char *buf;
    size_t len, cap;
    int status; /* nonzero: refuse with this once the body is consumed */
    const char *why;
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

    (void)url;
    (void)version;
    if (!u) {
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        u = calloc(1, sizeof *u);
        if (!u)
            return MHD_NO;
        *con_cls = u;
        if (strcmp(method, "POST") != 0) {
            u->status = 405;
            u->why = "CMP over HTTP takes POST only\n";
        } else if (!ct || strncasecmp(ct, "application/pkixcmp", 19) != 0) {
            u->status = 415;
            u->why = "Content-Type must be application/pkixcmp\n";
        } else if (cl && strtoull(cl, NULL, 10) > h->max_body) {
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
            if (u->len + *data_size > h->max_body) {
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
    status = tool_cmp_srv_handle(h->srv, u->buf, u->len, &out, &outlen);
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
    upload *u = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
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

tool_cmp_http *tool_cmp_http_start(const char *listen, size_t max_body, tool_cmp_srv *srv,
                                   char *err, size_t errlen)
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
    h->max_body = max_body ? max_body : TOOL_CMP_MAX_BODY_DEFAULT;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                            MHD_OPTION_NOTIFY_COMPLETED, on_done, h, MHD_OPTION_EXTERNAL_LOGGER,
                            mhd_log, h, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(errno));
        free(h);
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
