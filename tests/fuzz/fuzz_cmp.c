/*
 * Fuzz target for the CMP request handler (tool/cmp/server.c): one HTTP body
 * in, one answer out. A fresh handler per input (it remembers transactionIDs,
 * and a fuzz target must not carry state between inputs), with the shared
 * secret the seed corpus was made with (cmp_corpus.c), so that mutated
 * messages get past protection checks often enough to reach the callbacks.
 * The backend issues through the profile library with a throwaway CA key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cmp/cmp.h"
#include "cmp_fuzz_common.h"
#include "tm_profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tool_cmp_srv *srv = tm_fuzz_cmp_server(0);
    unsigned char *out = NULL;
    size_t outlen = 0;
    int status;

    if (!srv)
        abort();
    status = tool_cmp_srv_handle(srv, data, size, &out, &outlen);
    /* every answer is a PKIMessage (200) or a line of text (4xx/5xx) */
    if (status == 200 && (!out || outlen == 0 || out[0] != 0x30))
        abort();
    if (status != 200 && (status < 400 || !out))
        abort();
    free(out);
    tool_cmp_srv_free(srv);
    return 0;
}
