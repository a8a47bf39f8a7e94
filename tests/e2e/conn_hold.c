/*
 * conn_hold: the hostile side of the connection-starvation test. Opens TCP
 * connections to a loopback server and holds them, bounded in count and time:
 *
 *   conn_hold --to 127.0.0.1:PORT [--from 127.0.0.X[,127.0.0.Y...]]
 *             [--idle N] [--slow M] [--seconds S] [--ready FILE]
 *
 *   --idle N     N connections that send nothing at all
 *   --slow M     M connections that send an HTTP request header one byte
 *                every 200 ms and never finish it (slowloris)
 *   --from LIST  source addresses, used in turn (several: many clients)
 *   --seconds S  hold them this long (at most 120), then close and exit
 *   --ready F    written with "opened N" once every connect() has been
 *                started and given up to a second, so the test knows the
 *                load is on
 *
 * Only loopback targets are accepted. A connect the server refuses or
 * never accepts is counted and dropped; the server's side is what the test
 * checks, through a good request sent while this runs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 2000
#define MAX_FROM 64

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int open_one(const struct sockaddr_in *to, const struct in_addr *from)
{
    struct sockaddr_in src;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr = *from;
    /* non-blocking: a server with a full backlog makes connect() wait for
     * minutes; a pending connection is load all the same */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0 ||
        (connect(fd, (const struct sockaddr *)to, sizeof *to) != 0 && errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    static const char header[] =
        "POST /pkix/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/pkixcmp\r\nX-Slow: "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    struct sockaddr_in to;
    struct in_addr from[MAX_FROM];
    int nfrom = 0, idle = 0, slow = 0, fds[MAX_CONNS], nfd = 0, opened = 0, i;
    size_t pos[MAX_CONNS];
    double seconds = 10, end, next_byte;
    const char *ready = NULL, *target = NULL;
    char *list = NULL;

    signal(SIGPIPE, SIG_IGN);
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--to") && i + 1 < argc)
            target = argv[++i];
        else if (!strcmp(argv[i], "--from") && i + 1 < argc)
            list = argv[++i];
        else if (!strcmp(argv[i], "--idle") && i + 1 < argc)
            idle = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--slow") && i + 1 < argc)
            slow = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--ready") && i + 1 < argc)
            ready = argv[++i];
        else {
            fprintf(stderr, "conn_hold: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    {
        char host[64];
        const char *colon = target ? strrchr(target, ':') : NULL;
        if (!colon || (size_t)(colon - target) >= sizeof host) {
            fprintf(stderr, "conn_hold: --to 127.0.0.1:PORT is required\n");
            return 2;
        }
        memcpy(host, target, (size_t)(colon - target));
        host[colon - target] = 0;
        if (inet_pton(AF_INET, host, &to.sin_addr) != 1 ||
            (ntohl(to.sin_addr.s_addr) >> 24) != 127) {
            fprintf(stderr, "conn_hold: %s: only loopback (127.0.0.0/8) targets\n", host);
            return 2;
        }
        to.sin_port = htons((unsigned short)atoi(colon + 1));
    }
    for (char *tok = list ? strtok(list, ",") : NULL; tok && nfrom < MAX_FROM;
         tok = strtok(NULL, ","))
        if (inet_pton(AF_INET, tok, &from[nfrom]) != 1 ||
            (ntohl(from[nfrom].s_addr) >> 24) != 127) {
            fprintf(stderr, "conn_hold: --from %s: only loopback addresses\n", tok);
            return 2;
        } else
            nfrom++;
    if (!nfrom) {
        inet_pton(AF_INET, "127.0.0.1", &from[0]);
        nfrom = 1;
    }
    if (idle < 0 || slow < 0 || idle + slow > MAX_CONNS || seconds <= 0 || seconds > 120) {
        fprintf(stderr, "conn_hold: at most %d connections, held 0-120 s\n", MAX_CONNS);
        return 2;
    }
    for (i = 0; i < idle + slow; i++) {
        int fd = open_one(&to, &from[i % nfrom]);
        if (fd < 0)
            continue;
        opened++;
        /* the slow ones first in the table: they are the ones that write */
        fds[nfd] = fd;
        pos[nfd] = i < slow ? 0 : (size_t)-1;
        nfd++;
    }
    {
        /* let the handshakes finish (bounded: one second) */
        double until = now_s() + 1;
        for (i = 0; i < nfd && now_s() < until; i++) {
            struct pollfd p = {fds[i], POLLOUT, 0};
            poll(&p, 1, 100);
        }
    }
    if (ready) {
        FILE *f = fopen(ready, "w");
        if (f) {
            fprintf(f, "opened %d\n", opened);
            fclose(f);
        }
    }
    end = now_s() + seconds;
    next_byte = now_s();
    while (now_s() < end) {
        if (now_s() >= next_byte) {
            for (i = 0; i < nfd; i++)
                if (fds[i] >= 0 && pos[i] != (size_t)-1) {
                    if (pos[i] + 1 >= sizeof header)
                        pos[i] = sizeof header - 80; /* stay inside the header, never end it */
                    if (send(fds[i], header + pos[i], 1, MSG_NOSIGNAL) == 1)
                        pos[i]++;
                }
            next_byte += 0.2;
        }
        usleep(50000);
    }
    for (i = 0; i < nfd; i++)
        close(fds[i]);
    printf("conn_hold: %d of %d connections opened\n", opened, idle + slow);
    return 0;
}
