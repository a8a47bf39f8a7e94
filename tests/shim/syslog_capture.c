/*
 * tm-syslog-capture.so: TEST-ONLY. Preloaded (LD_PRELOAD) into a stock client
 * such as pkcs11-tool, it takes the process's syslog(3) calls and appends
 * each message as one line to the file named by TM_SYSLOG_FILE, so a test can
 * check what the module logged without a syslog daemon or /dev/log. The
 * fortified entry points (__syslog_chk) are what -D_FORTIFY_SOURCE builds
 * call, so both are taken.
 */
/* not <syslog.h>: its fortify wrappers would clash with these definitions */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TM_EXPORT __attribute__((visibility("default")))

static void capture(int prio, const char *fmt, va_list ap)
{
    const char *path = getenv("TM_SYSLOG_FILE");
    char line[2048];
    int n, fd;

    if (path == NULL || path[0] == '\0')
        return;
    n = snprintf(line, sizeof(line), "<%d> ", prio);
    if (n < 0)
        return;
    vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    n = (int)strlen(line);
    line[n++] = '\n';
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (write(fd, line, (size_t)n) < 0) {
        /* a test tool: nothing better to do */
    }
    close(fd);
}

TM_EXPORT void vsyslog(int prio, const char *fmt, va_list ap)
{
    capture(prio, fmt, ap);
}

TM_EXPORT void syslog(int prio, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    capture(prio, fmt, ap);
    va_end(ap);
}

void vsyslog(int prio, const char *fmt, va_list ap);
void syslog(int prio, const char *fmt, ...);
void __vsyslog_chk(int prio, int flag, const char *fmt, va_list ap);
TM_EXPORT void __vsyslog_chk(int prio, int flag, const char *fmt, va_list ap)
{
    (void)flag;
    capture(prio, fmt, ap);
}

void __syslog_chk(int prio, int flag, const char *fmt, ...);
TM_EXPORT void __syslog_chk(int prio, int flag, const char *fmt, ...)
{
    va_list ap;
    (void)flag;
    va_start(ap, fmt);
    capture(prio, fmt, ap);
    va_end(ap);
}
