/* The per-process scratch directory of the file-reading fuzz targets. */
#include "fuzz_temp.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

/* Only files this process wrote are in it (names without '/'). */
void fuzz_temp_done(void)
{
    if (dir[0] == '\0')
        return;

    DIR *d = opendir(dir);
    struct dirent *e;

    while (d != NULL && (e = readdir(d)) != NULL) {
        char path[PATH_MAX];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
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
