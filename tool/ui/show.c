/*
 * tokenmint show CERT|URI: a certificate file, or a token and what it holds,
 * in words, with the serial binding decoded.
 */
#include "cli/cli.h"
#include "ui/ui.h"

#include <string.h>

#include <openssl/pem.h>

static int show_token(tool_parsed *p, const char *uri)
{
    tool_session s;
    tool_token **tokens = NULL;
    size_t n = 0, i, c;
    int rc;

    p->c.uris[p->c.nuris++] = (char *)uri;
    rc = tool_session_open(&s, &p->c, 0);
    if (rc != TOOL_EXIT_OK)
        goto out;
    if (!tool_session_tokens(&s, &p->c, 0, &tokens, &n)) {
        rc = TOOL_EXIT_USAGE;
        goto out;
    }
    for (i = 0; i < n; i++) {
        tool_token *t = tokens[i];
        tool_token_state ts;
        tool_token_cert *certs = NULL;
        size_t ncerts = 0;
        CK_SESSION_HANDLE h;
        char man[33];

        memcpy(man, t->info.manufacturerID, 32);
        man[32] = 0;
        for (c = 32; c > 0 && man[c - 1] == ' '; c--)
            man[c - 1] = 0;
        tool_token_state_read(&s.run, t, &ts);
        printf("token %s\n", t->uri);
        printf("  %-18s%s\n", "serial", t->serial_text);
        printf("  %-18s%s\n", "label", t->label);
        printf("  %-18s%s\n", "model", t->model);
        printf("  %-18s%s\n", "manufacturer", man);
        printf("  %-18s%s\n", "state", ts.state);
        printf("  %-18s%s\n", "PIN",
               t->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH ? "derived by the module"
                                                                 : "entered by the operator");
        printf("  %-18s%d (%d without certificate)\n", "key pairs", ts.nkeys, ts.nfree);
        printf("  %-18s%d\n", "certificates", ts.ncerts);
        if (s.st.f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &h) == CKR_OK) {
            if (tool_token_list_certs(&s.st, h, &certs, &ncerts))
                for (c = 0; c < ncerts; c++)
                    tool_describe_cert(stdout, s.prof, certs[c].cert);
            tool_token_certs_free(certs, ncerts);
            s.st.f->C_CloseSession(h);
        }
    }
out:
    free(tokens);
    tool_session_close(&s);
    return rc;
}

static int show_file(tool_parsed *p, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    tm_violations *v = tm_violations_new();
    tm_profile *prof;
    X509 *x = NULL;
    char why[600];
    int n = 0, rc = TOOL_EXIT_USAGE;

    if (!f) {
        tool_err("show %s: cannot open (not a file, and not a pkcs11: URI)", path);
        goto out;
    }
    prof = tm_profile_load(p->c.profile, v);
    if (!prof) {
        tm_violations_join(v, why, sizeof why);
        tool_err("profile: %s", why);
        goto out;
    }
    tm_profile_register_oids(prof);
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        tool_describe_cert(stdout, prof, x);
        X509_free(x);
        n++;
    }
    if (n == 0) {
        rewind(f);
        x = d2i_X509_fp(f, NULL);
        if (x) {
            tool_describe_cert(stdout, prof, x);
            X509_free(x);
            n++;
        }
    }
    if (n == 0)
        tool_err("show %s: no certificate in it (PEM or DER)", path);
    else
        rc = TOOL_EXIT_OK;
    tm_profile_free(prof);
out:
    if (f && f != stdin)
        fclose(f);
    tm_violations_free(v);
    return rc;
}

int tool_cmd_show(int argc, char **argv)
{
    static const int allowed[] = {O_MODULE, O_CONFIG, O_PROFILE, 0};
    tool_parsed p;
    int rc;

    if (!tool_parse(argc, argv, allowed, &p))
        return TOOL_EXIT_USAGE;
    if (p.help || p.nargs != 1) {
        printf("usage: tokenmint show CERT|pkcs11:URI\n\nA certificate file (PEM or DER, - for "
               "stdin) or a token in words, the\nhardwareModuleName binding decoded.\n\n%s",
               tool_common_help);
        tool_parsed_free(&p);
        return p.help ? 0 : TOOL_EXIT_USAGE;
    }
    if (strncmp(p.args[0], "pkcs11:", 7) == 0)
        rc = show_token(&p, p.args[0]);
    else
        rc = show_file(&p, p.args[0]);
    tool_parsed_free(&p);
    return rc;
}
