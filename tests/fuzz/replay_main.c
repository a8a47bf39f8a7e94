/*
 * Without libFuzzer: replays every file of the seed corpus through the fuzz
 * target, plus every truncation and a byte flip at every offset of each, so
 * the decoders meet malformed input on every build.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL, *copy = NULL;
    long len;
    size_t i;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        fprintf(stderr, "%s: cannot read\n", path);
        if (f)
            fclose(f);
        return 0;
    }
    buf = malloc((size_t)len + 1);
    copy = malloc((size_t)len + 1);
    if (buf == NULL || copy == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "%s: cannot read\n", path);
        fclose(f);
        free(buf);
        free(copy);
        return 0;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)len);
    for (i = 0; i < (size_t)len; i++) {
        LLVMFuzzerTestOneInput(buf, i);
        memcpy(copy, buf, (size_t)len);
        copy[i] ^= 0xff;
        LLVMFuzzerTestOneInput(copy, (size_t)len);
    }
    free(buf);
    free(copy);
    return 1;
}

int main(int argc, char **argv)
{
    int i, files = 0;

    for (i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d != NULL && (e = readdir(d)) != NULL) {
                char path[4096];
                if (e->d_name[0] == '.')
                    continue;
                snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
                files += replay_file(path);
            }
            if (d)
                closedir(d);
        } else {
            files += replay_file(argv[i]);
        }
    }
    printf("replayed %d seed files with every truncation and byte flip\n", files);
    return files > 0 ? 0 : 1; /* an empty corpus would test nothing */
}
