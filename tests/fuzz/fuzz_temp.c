/* The per-process scratch directory of the file-reading fuzz targets. */
#include "fuzz_temp.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

/* Only what this process made is in it: files and, for targets with
 * fixtures, a few levels of directories (lstat: a link is removed, never
 * followed). */
static void remove_tree(const char *path, int depth)
{
    struct stat sb;
    DIR *d;
    struct dirent *e;

    if (lstat(path, &sb) != 0)
        return;
    if (!S_ISDIR(sb.st_mode) || depth > 4) {
        unlink(path);
        return;
    }
    d = opendir(path);
    while (d != NULL && (e = readdir(d)) != NULL) {
        char sub[PATH_MAX];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        /* A path too long to name is left: it was never made by us. */
        if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub))
            continue;
        remove_tree(sub, depth + 1);
    }
    if (d != NULL)
        closedir(d);
    rmdir(path);
}

void fuzz_temp_done(void)
{
    if (dir[0] == '\0')
        return;
    remove_tree(dir, 0);
    dir[0] = '\0';
}

const char *fuzz_temp_dir(void)
{
    if (dir[0] == '\0') {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/tm-fuzz-XXXXXX",
                 t != NULL && t[0] != '\0' && strlen(t) < 40 ? t : "/tmp");
        if (mkdtemp(dir) == NULL)
            abort();
    }
    return dir;
}

const char *fuzz_temp_write(const char *name, const uint8_t *data, size_t size)
{
    static char path[PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", fuzz_temp_dir(), name);
    f = fopen(path, "wb");
    if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        abort();
    return path;
}

const char *fuzz_temp_mkdir(const char *name)
{
    static char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", fuzz_temp_dir(), name);
    if (mkdir(path, 0700) != 0)
        abort();
    return path;
}
