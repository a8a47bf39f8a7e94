/*
 * Fuzz target: arbitrary bytes as the module's config file (pkcs11/config.c),
 * as TOKENMINT_BACKEND's module list, and a loaded config's issuing_keys as
 * the issuing-key URI list. The input is written to a file in a directory of
 * this process's own; an .include in it is the loader's to judge (the
 * include checker refuses devices and FIFOs; included files are only read).
 *
 * Besides crashes, leaks and sanitizer reports, it fails when a load that
 * succeeded has a backend without exactly one module, a name the syntax
 * does not allow or a URI p11-kit refuses; when a refusal says nothing or
 * overruns the message buffer; when the same input loads differently with a
 * short message buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <p11-kit/uri.h>

#include "config.h"
#include "fuzz_temp.h"
#include "issuing.h"
#include "tm_profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CANARY 0x5a

static void said(const char *err, size_t errlen)
{
    if (err[errlen] != CANARY)
        abort(); /* written past the size it was given */
    if (err[0] == '\0' || memchr(err, '\0', errlen) == NULL)
        abort();
}

static int name_ok(const char *n)
{
    if (n == NULL || *n == '\0')
        return 0;
    for (; *n; n++)
        if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || (*n >= '0' && *n <= '9') ||
              *n == '_' || *n == '-'))
            return 0;
    return 1;
}

static void check_loaded(const mod_config *c, const char *path)
{
    size_t i, j;

    if (c == NULL || c->path == NULL || strcmp(c->path, path) != 0 || c->n_backends == 0)
        abort();
    for (i = 0; i < c->n_backends; i++) {
        const mod_backend_conf *b = &c->backends[i];
        if (!name_ok(b->name) || (b->module == NULL) == (b->p11kit_module == NULL))
            abort();
        if ((b->module != NULL && b->module[0] == '\0') ||
            (b->p11kit_module != NULL && b->p11kit_module[0] == '\0') ||
            (b->uri != NULL && b->uri[0] == '\0') ||
            (b->init_args != NULL && b->init_args[0] == '\0'))
            abort(); /* an empty value is refused, never kept */
        for (j = 0; j < i; j++)
            if (strcmp(c->backends[j].name, b->name) == 0)
                abort();
        /* token_serials: each entry can name one token (issue 13) */
        for (j = 0; j < b->n_token_serials; j++) {
            const mod_token_serial *t = &b->token_serials[j];
            char text[TM_SERIAL_TEXT_MAX + 1];
            size_t sl = strlen(t->serial), k, m;
            if (strlen(t->label) == 0 || strlen(t->label) > 32 || sl == 0 || sl > 16 ||
                tm_serial_unusable((const unsigned char *)t->serial, sl) != NULL ||
                tm_serial_encode((const unsigned char *)t->serial, sl, text, sizeof(text)) != sl ||
                strcmp(text, t->serial) != 0)
                abort();
            for (k = 0; k < j; k++)
                if (strcmp(b->token_serials[k].label, t->label) == 0)
                    abort();
            for (k = 0; k <= i; k++)
                for (m = 0; m < (k < i ? c->backends[k].n_token_serials : j); m++)
                    if (strcmp(c->backends[k].token_serials[m].serial, t->serial) == 0)
                        abort();
        }
        if (b->uri != NULL) {
            P11KitUri *u = p11_kit_uri_new();
            if (u == NULL || p11_kit_uri_parse(b->uri, P11_KIT_URI_FOR_ANY, u) != P11_KIT_URI_OK)
                abort();
            p11_kit_uri_free(u);
        }
    }
    if (c->outside_profile_allow != 0 && c->outside_profile_allow != 1)
        abort();
    if (c->issuing_keys != NULL) {
        char err[256];
        mod_issuing *is;
        memset(err, CANARY, sizeof(err));
        err[0] = '\0';
        is = mod_issuing_new(c->issuing_keys, err, sizeof(err) - 1);
        if (is == NULL)
            said(err, sizeof(err) - 1);
        mod_issuing_free(is);
    }
}

static void backend_list(const uint8_t *data, size_t size)
{
    char *list = malloc(size + 1), err[256];
    mod_config *c = NULL;
    size_t i, tokens = 0;
    int in = 0;

    if (list == NULL)
        return;
    memcpy(list, data, size);
    list[size] = '\0';
    for (i = 0; list[i] != '\0'; i++) {
        if (list[i] == ':')
            in = 0;
        else if (!in)
            in = 1, tokens++;
    }
    memset(err, CANARY, sizeof(err));
    if (mod_config_from_backend_list(list, &c, err, sizeof(err) - 1)) {
        if (c == NULL || c->n_backends != tokens)
            abort();
        for (i = 0; i < c->n_backends; i++)
            if (c->backends[i].module == NULL || c->backends[i].module[0] == '\0' ||
                strchr(c->backends[i].module, ':') != NULL || !name_ok(c->backends[i].name))
                abort();
    } else {
        if (tokens != 0)
            abort(); /* only an empty list is refused */
        said(err, sizeof(err) - 1);
    }
    mod_config_free(c);
    free(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path;
    char err[512], shortmsg[9];
    mod_config *c = NULL;
    int ok, again;

    if (size > 64 * 1024)
        return 0;
    path = fuzz_temp_write("tokenmint.conf", data, size);
    memset(err, CANARY, sizeof(err));
    ok = mod_config_load_file(path, &c, err, sizeof(err) - 1);
    if (ok)
        check_loaded(c, path);
    else
        said(err, sizeof(err) - 1);
    mod_config_free(c);

    /* a message cut short changes nothing else */
    c = NULL;
    memset(shortmsg, CANARY, sizeof(shortmsg));
    again = mod_config_load_file(path, &c, shortmsg, sizeof(shortmsg) - 1);
    if (again != ok)
        abort();
    if (!again)
        said(shortmsg, sizeof(shortmsg) - 1);
    mod_config_free(c);
    fuzz_temp_done();

    if (size < 4096)
        backend_list(data, size);
    ERR_clear_error();
    return 0;
}
