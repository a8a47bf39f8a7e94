/*
 * The serials whose newcerts/ file the view writer knows to be there, so
 * that rewriting index.txt does not stat one file per certificate (a cost
 * that grows with the CA). A set of strings, open addressing, grown at half
 * full; owned by the view writer (local.c holds it under its view lock).
 */
#include "ca_files.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct tool_ca_known {
    char **slot;
    size_t cap, n; /* cap: a power of two */
};

static uint64_t hash_of(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

tool_ca_known *tool_ca_known_new(void)
{
    tool_ca_known *k = calloc(1, sizeof *k);
    if (k && !(k->slot = calloc(k->cap = 1024, sizeof *k->slot))) {
        free(k);
        k = NULL;
    }
    return k;
}

void tool_ca_known_free(tool_ca_known *k)
{
    size_t i;
    if (!k)
        return;
    for (i = 0; i < k->cap; i++)
        free(k->slot[i]);
    free(k->slot);
    free(k);
}

static size_t find(char **slot, size_t cap, const char *serial)
{
    size_t i = (size_t)hash_of(serial) & (cap - 1);
    while (slot[i] && strcmp(slot[i], serial) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

int tool_ca_known_has(const tool_ca_known *k, const char *serial)
{
    return k && serial && k->slot[find(k->slot, k->cap, serial)] != NULL;
}

int tool_ca_known_add(tool_ca_known *k, const char *serial)
{
    size_t i;
    if (!k || !serial)
        return 0;
    if (2 * (k->n + 1) > k->cap) {
        size_t nc = k->cap * 2, j;
        char **ns = calloc(nc, sizeof *ns);
        if (!ns)
            return 0;
        for (j = 0; j < k->cap; j++)
            if (k->slot[j])
                ns[find(ns, nc, k->slot[j])] = k->slot[j];
        free(k->slot);
        k->slot = ns;
        k->cap = nc;
    }
    i = find(k->slot, k->cap, serial);
    if (k->slot[i])
        return 1;
    if (!(k->slot[i] = strdup(serial)))
        return 0;
    k->n++;
    return 1;
}
