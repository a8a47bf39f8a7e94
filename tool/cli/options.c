/*
 * The one table of command-line options and commands. The parser, every
 * command's --help, `tokenmint help [COMMAND]` and the bash completion are
 * all made from it, so what the help lists is what the parser takes.
 *
 * A new option: one line in tool_options (a code in cli/cli.h), then its
 * code in the opts list of each command that takes it. A new command: one
 * entry in tool_commands (cli/commands.c).
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define TOOL_CONF_DEFAULT_TEXT "/etc/tokenmint/tool.conf"

const tool_option tool_options[] = {
    /* the station, shared by the commands that touch tokens */
    {O_MODULE, "module", "PATH",
     "PKCS#11 module (default: TOKENMINT_MODULE, else tokenmint-pkcs11.so)"},
    {O_CONFIG, "config", "FILE",
     "tool config (default: TOKENMINT_TOOL_CONF, else " TOOL_CONF_DEFAULT_TEXT " if present)"},
    {O_PROFILE, "profile", "FILE", "certificate profile (default: config, else built in)"},
    {O_ALL, "all", NULL, "every token at the station"},
    {O_TOKEN, "token", "URI", "a pkcs11: token URI (repeatable), e.g. pkcs11:serial=1a2b3c"},
    {O_PIN, "pin-source", "SRC",
     "user PIN: first line of the file SRC (PATH, file:PATH or\n"
     "file://PATH; a \"%s\" in it is each token's serial: one file\n"
     "per token, e.g. file:/etc/tokenmint/pins/%s.pin). The file must\n"
     "be yours (or root's) and mode 0600 or 0400. Without it: the\n"
     "module's derived PIN for tokens that report a protected path,\n"
     "else ONE prompt on the terminal"},
    {O_FINALTRY, "allow-final-try", NULL,
     "send the PIN even to a token whose next wrong PIN locks it"},
    {O_OPEN_SECRETS, "allow-open-secrets", NULL,
     "accept PIN/passphrase/secret files that group or others may\n"
     "read or write, or that another user owns (refused by default)"},
    {O_OPPASS, "operator-pass-source", "FILE",
     "operator passphrase (checked against the config's hash)"},
    {O_OPTOKEN, "operator-token", "URI",
     "operator token: log in, sign a challenge, chain to [operator] ca"},
    {O_OPPIN, "operator-pin-source", "FILE", "the operator token's PIN"},
    {O_PURPOSE, "purpose", "P", "a profile purpose (default: the profile's default)"},
    {O_KEYTYPE, "key-type", "T", "ec:P-256 (default), ec:P-384, rsa:2048, rsa:3072, ed25519"},
    {O_CA, "ca", "DIR", "a CA made by `tokenmint ca init`"},
    {O_ROOT, "root", "FILE", "the CA root certificate (PEM) to verify against"},
    {O_JOBS, "jobs", "N", "workers (default: one per token, at most 64)"},
    {O_JSON, "json", NULL, "one JSON object per token on stdout"},
    {O_COUNT, "count", "N", "stop after N tokens"},
    /* ca init */
    {O_KEY, "key", "URI", "the root key: a token key by pkcs11: URI (through the provider)"},
    {O_KEYFILE, "key-file", "FILE", "the root key: an existing PEM private key"},
    {O_SUBJECT, "subject", "CN", "the root's common name (default \"tokenmint CA\")"},
    {O_DB, "db", "CONNINFO",
     "PostgreSQL connection string (no password in it:\n"
     "use ~/.pgpass or PGPASSFILE)"},
    /* the station's CMP CA (issue, watch) */
    {O_CMP, "cmp", "URL",
     "http://HOST:PORT/PATH of `tokenmint ca serve`, `tokenmint relay`\n"
     "or any CMP CA that takes p10cr (instead of --ca DIR)"},
    {O_CMP_ROOT, "cmp-root", "FILE",
     "the CA root certificate the station verifies against (step 11)"},
    {O_CMP_SECRET, "cmp-secret-source", "FILE", "PBMAC shared secret (first line of FILE)"},
    {O_CMP_REF, "cmp-ref", "REF", "our reference (senderKID) with the secret"},
    {O_CMP_CERT, "cmp-cert", "FILE", "signature protection with this certificate..."},
    {O_CMP_KEY, "cmp-key", "FILE", "...and this PEM private key"},
    {O_CMP_SRVCERT, "cmp-srvcert", "FILE", "pin the server's CMP signer certificate"},
    {O_CMP_TRUSTED, "cmp-trusted", "FILE", "trust anchors for the server's signer certificate"},
    {O_CMP_JOBS, "cmp-jobs", "N", "requests in flight at once (default 8, at most 64)"},
    {O_CMP_TIMEOUT, "cmp-timeout", "S", "seconds per transaction, polling included (default 120)"},
    {O_CMP_LOCKDIR, "cmp-lock-dir", "DIR",
     "per-token lock files, shared by every issue --cmp on this\n"
     "station (default $XDG_RUNTIME_DIR/tokenmint/locks, else\n"
     "/run/tokenmint/locks)"},
    /* the CMP servers: ca serve, relay */
    {TOOL_FRONT_LISTEN, "listen", "ADDR:PORT",
     "where to listen, e.g. 127.0.0.1:8080 (port 0: any free port)"},
    {TOOL_FRONT_PORTFILE, "port-file", "FILE", "write the port we listen on to FILE (for scripts)"},
    {TOOL_FRONT_SECRET, "secret-source", "FILE",
     "accept PBMAC protection with the shared secret in FILE\n"
     "(first line); responses are PBMAC-protected with it"},
    {TOOL_FRONT_REF, "ref", "REF", "our senderKID in PBMAC-protected responses"},
    {TOOL_FRONT_TRUSTED, "trusted", "FILE",
     "accept signature protection by certificates chaining to\n"
     "the PEM certificates in FILE"},
    {TOOL_FRONT_SRVCERT, "srv-cert", "FILE", "our CMP signer certificate (signed responses)"},
    {TOOL_FRONT_SRVKEY, "srv-key", "FILE", "its PEM private key"},
    {TOOL_FRONT_MAXBODY, "max-body", "BYTES",
     "largest request body (default 65536; larger: HTTP 413)"},
    {TOOL_FRONT_MAXCONNS, "max-connections", "N",
     "connections open at once, all clients (default 1024)"},
    {TOOL_FRONT_PERCLIENT, "max-per-client", "N",
     "connections open at once from one address (default 32)"},
    {TOOL_FRONT_HDRTIMEOUT, "header-timeout", "S",
     "seconds for a request's headers to arrive (default 5)"},
    {TOOL_FRONT_BODYTIMEOUT, "body-timeout", "S",
     "seconds for its body after the headers (default 10)"},
    {TOOL_FRONT_IDLETIMEOUT, "idle-timeout", "S",
     "seconds a kept-alive connection may idle (default 15)\n"
     "(refused and timed-out connections are logged on stderr)"},
    {O_OCSPCERT, "ocsp-cert", "FILE",
     "a delegated OCSP signer (issued by this CA, EKU OCSPSigning);\n"
     "default: OCSP responses signed by the CA key"},
    {O_OCSPKEY, "ocsp-key", "FILE", "the delegated OCSP signer's PEM private key"},
    {O_DEFERRED, "deferred", NULL,
     "answer \"waiting\"; the certificate is issued after approval\n"
     "and handed out on the client's next pollReq"},
    {O_DEFERMS, "defer-ms", "MS", "approval delay in deferred mode (default 500)"},
    {O_UPSTREAM, "upstream", "URL", "http://HOST:PORT/PATH of the CA (`tokenmint ca serve`)"},
    {O_RANGE, "serial-range", "LO-HI", "the token serials this relay forwards"},
    {O_UP_SECRET, "upstream-secret-source", "FILE", "PBMAC towards the CA: the shared secret"},
    {O_UP_REF, "upstream-ref", "REF", "PBMAC towards the CA: our reference (senderKID)"},
    {O_UP_CERT, "upstream-cert", "FILE", "or signature towards the CA: our certificate"},
    {O_UP_KEY, "upstream-key", "FILE", "and its PEM private key"},
    {O_UP_SRVCERT, "upstream-srvcert", "FILE", "pin the CA's CMP signer certificate"},
    {O_UP_TRUSTED, "upstream-trusted", "FILE", "trust anchors for the CA's signatures"},
    /* ca list, ca show */
    /* clean */
    {O_REMOVE, "remove", NULL, "destroy the leftovers listed"},
    {O_SERIAL, "serial", "S", "one certificate serial (hex)"},
    {O_STATUS, "status", "S", "valid, revoked, expired or superseded"},
    /* revoke, ca crl */
    {O_REASON, "reason", "REASON",
     "unspecified, keyCompromise, CACompromise, affiliationChanged,\n"
     "superseded, cessationOfOperation, certificateHold"},
    {O_OUT, "out", "FILE", "also write the CRL to FILE (PEM)"},
    /* renew, verify */
    {O_WITHIN, "within", "DAYS",
     "renew certificates that expire within DAYS days (default 30;\n"
     "0: only expired, revoked or superseded ones)"},
    {O_REKEY, "rekey", NULL,
     "a new key pair for every renewed certificate (default: the same\n"
     "key pair, except for a revoked certificate)"},
    {O_RETIRE_OLD, "retire-old", NULL,
     "after the new certificate is verified and written, remove the\n"
     "certificates it replaces and their key pairs from the token (audited)"},
    {O_OCSP, "ocsp", "URL",
     "check revocation with this OCSP responder (http://HOST:PORT/PATH,\n"
     "e.g. `tokenmint ca serve`'s .../ocsp) instead of the CA's CRL"},
    {O_HELP, "help", NULL, "this help"},
    {0, NULL, NULL, NULL},
};

const tool_option *tool_option_find(int code)
{
    const tool_option *o;
    for (o = tool_options; o->name; o++)
        if (o->code == code)
            return o;
    return NULL;
}

const tool_command *tool_command_find(const char *name)
{
    const tool_command *c;
    for (c = tool_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static const tool_cmd_opt *cmd_opt(const tool_command *cmd, int code)
{
    const tool_cmd_opt *o;
    for (o = cmd->opts; o->code; o++)
        if (o->code == code)
            return o;
    return NULL;
}

/* ---- help ------------------------------------------------------------------------- */

#define HELP_COL 26

static void print_wrapped(FILE *out, const char *help, int col)
{
    const char *p = help, *nl;
    for (;;) {
        nl = strchr(p, '\n');
        if (!nl) {
            fprintf(out, "%s\n", p);
            return;
        }
        fprintf(out, "%.*s\n%*s", (int)(nl - p), p, col, "");
        p = nl + 1;
    }
}

static void print_option(FILE *out, const tool_option *o, const char *help)
{
    int n = fprintf(out, "  --%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    if (n >= HELP_COL)
        fprintf(out, "\n%*s", HELP_COL, "");
    else
        fprintf(out, "%*s", HELP_COL - n, "");
    print_wrapped(out, help, HELP_COL);
}

void tool_command_help(FILE *out, const tool_command *cmd)
{
    const tool_cmd_opt *co;
    const char *p, *nl;

    /* usage lines: the first after "usage: tokenmint ", the rest continue it,
     * under its first option */
    for (p = cmd->usage;; p = nl + 1) {
        nl = strchr(p, '\n');
        if (p == cmd->usage)
            fputs("usage: tokenmint ", out);
        else
            fprintf(out, "%*s", (int)(sizeof "usage: tokenmint " + strlen(cmd->name)), "");
        fprintf(out, "%.*s\n", nl ? (int)(nl - p) : (int)strlen(p), p);
        if (!nl)
            break;
    }
    if (cmd->about)
        fprintf(out, "\n%s", cmd->about);
    fputc('\n', out);
    for (co = cmd->opts; co->code; co++) {
        const tool_option *o = tool_option_find(co->code);
        if (o)
            print_option(out, o, co->help ? co->help : o->help);
    }
    print_option(out, tool_option_find(O_HELP), tool_option_find(O_HELP)->help);
    if (cmd->footer)
        fprintf(out, "\n%s", cmd->footer);
}

void tool_usage(FILE *out)
{
    const tool_command *c;

    fputs("usage: tokenmint COMMAND [OPTIONS]\n\n", out);
    for (c = tool_commands; c->name; c++)
        fprintf(out, "  %-16s%s\n", c->name, c->summary);
    fputs("\n`tokenmint help COMMAND` or `tokenmint COMMAND --help` for each; `tokenmint\n"
          "completion bash` for shell completion. Exit: 0 all done, 1 some tokens failed,\n"
          "2 usage or config error. TOKENMINT_DEBUG=1 for debug output on stderr.\n",
          out);
}

/* ---- bash completion ------------------------------------------------------------- */

int tool_completion_bash(FILE *out)
{
    const tool_command *c;
    const tool_cmd_opt *co;
    const tool_option *o;
    char first[64];

    fputs("# bash completion for tokenmint (made by `tokenmint completion bash`)\n"
          "_tokenmint() {\n"
          "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
          "    local cmd=${COMP_WORDS[1]} opts= i\n"
          "    COMPREPLY=()\n"
          "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
          "        COMPREPLY=($(compgen -W \"",
          out);
    /* first words, each once */
    for (c = tool_commands; c->name; c++) {
        const tool_command *d;
        size_t n = strcspn(c->name, " ");
        int seen = 0;
        for (d = tool_commands; d != c; d++)
            seen |= strncmp(d->name, c->name, n) == 0 && strcspn(d->name, " ") == n;
        if (!seen)
            fprintf(out, "%.*s ", (int)n, c->name);
    }
    fputs("\" -- \"$cur\"))\n"
          "        return\n"
          "    fi\n"
          "    case $cmd in\n",
          out);
    first[0] = 0;
    for (c = tool_commands; c->name; c++) {
        const char *sp = strchr(c->name, ' ');
        size_t n = sp ? (size_t)(sp - c->name) : 0;
        if (!sp || (strlen(first) == n && strncmp(first, c->name, n) == 0))
            continue;
        snprintf(first, sizeof first, "%.*s", (int)n, c->name);
        fprintf(out,
                "    %s)\n        if [ \"$COMP_CWORD\" -eq 2 ]; then\n"
                "            COMPREPLY=($(compgen -W \"",
                first);
        {
            const tool_command *d;
            for (d = c; d->name; d++)
                if (strncmp(d->name, first, n) == 0 && d->name[n] == ' ')
                    fprintf(out, "%s ", d->name + n + 1);
        }
        fputs("\" -- \"$cur\"))\n            return\n        fi\n"
              "        cmd=\"$cmd ${COMP_WORDS[2]}\" ;;\n",
              out);
    }
    fputs("    esac\n    case $cmd in\n", out);
    for (c = tool_commands; c->name; c++) {
        fprintf(out, "    \"%s\") opts=\"", c->name);
        for (co = c->opts; co->code; co++)
            if ((o = tool_option_find(co->code)) != NULL)
                fprintf(out, "--%s ", o->name);
        fputs("--help\" ;;\n", out);
    }
    fputs("    esac\n"
          "    # an option's value: files for FILE, DIR, PATH; nothing to offer otherwise\n"
          "    case $prev in\n",
          out);
    for (o = tool_options; o->name; o++) {
        if (!o->arg)
            continue;
        fprintf(out, "    --%s) %s ;;\n", o->name,
                !strcmp(o->arg, "FILE") || !strcmp(o->arg, "PATH")
                    ? "COMPREPLY=($(compgen -f -- \"$cur\")); return"
                : !strcmp(o->arg, "DIR") ? "COMPREPLY=($(compgen -d -- \"$cur\")); return"
                                         : "return");
    }
    fputs("    esac\n"
          "    if [[ $cur == -* ]]; then\n"
          "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
          "    else\n"
          "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
          "    fi\n"
          "}\n"
          "complete -F _tokenmint tokenmint\n",
          out);
    return ferror(out) ? TOOL_EXIT_USAGE : TOOL_EXIT_OK;
}

/* ---- parsing ------------------------------------------------------------------------- */

/* Options that only keep their text: where each goes. */
static const struct {
    int code;
    size_t at;
} text_opts[] = {
    {O_MODULE, offsetof(tool_parsed, c.module)},
    {O_CONFIG, offsetof(tool_parsed, c.config)},
    {O_PROFILE, offsetof(tool_parsed, c.profile)},
    {O_PIN, offsetof(tool_parsed, c.pin_source)},
    {O_PURPOSE, offsetof(tool_parsed, c.purpose)},
    {O_KEYTYPE, offsetof(tool_parsed, c.keytype)},
    {O_CA, offsetof(tool_parsed, c.ca_dir)},
    {O_OPPASS, offsetof(tool_parsed, c.operator_pass)},
    {O_OPTOKEN, offsetof(tool_parsed, c.operator_token)},
    {O_OPPIN, offsetof(tool_parsed, c.operator_pin)},
    {O_KEY, offsetof(tool_parsed, key)},
    {O_KEYFILE, offsetof(tool_parsed, key_file)},
    {O_SUBJECT, offsetof(tool_parsed, subject)},
    {O_ROOT, offsetof(tool_parsed, root)},
    {O_DB, offsetof(tool_parsed, db)},
    {O_OCSP, offsetof(tool_parsed, ocsp)},
};
#define TEXT_OPTS (sizeof text_opts / sizeof *text_opts)
#define NOPTIONS (sizeof tool_options / sizeof *tool_options)

/* getopt's view of the table (the table ends with an all-zero entry too). */
static const struct option *long_options(void)
{
    static struct option lo[NOPTIONS];
    size_t i;
    if (!lo[0].name)
        for (i = 0; tool_options[i].name; i++) {
            lo[i].name = tool_options[i].name;
            lo[i].has_arg = tool_options[i].arg ? required_argument : no_argument;
            lo[i].val = tool_options[i].code;
        }
    return lo;
}

/* --help anywhere (before --) makes it a question: the options are checked by
 * name only, their values neither read nor judged. */
static int asks_help(int argc, char **argv)
{
    int i;
    for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

static int number(const char *v, long lo, long hi, long *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi)
        return 0;
    *out = n;
    return 1;
}

static int parse(int argc, char **argv, const char *command, tool_parsed *p)
{
    const tool_command *cmd = tool_command_find(command);
    const struct option *lo = long_options();
    int o, li, help;
    size_t i;
    long n;
    char err[600];

    memset(p, 0, sizeof *p);
    p->within = -1;
    tool_return_val_if_fail(cmd != NULL, 0);
    p->c.uris = calloc((size_t)argc + 1, sizeof *p->c.uris);
    p->given = calloc((size_t)argc + 1, sizeof *p->given);
    if (!p->c.uris || !p->given) {
        tool_err("out of memory");
        return 0;
    }
    help = asks_help(argc, argv);
    /* Before the loop: some options read their secret file as they are parsed
     * (--cmp-secret-source), and the order on the command line must not
     * matter. The loop still refuses it for a command that does not take it. */
    tool_secret_flags = 0;
    for (i = 1; i < (size_t)argc && strcmp(argv[i], "--") != 0; i++)
        if (strlen(argv[i]) > strlen("--allow-") && /* getopt takes unique abbreviations */
            !strncmp(argv[i], "--allow-open-secrets", strlen(argv[i])))
            tool_secret_flags |= P11C_SECRET_ALLOW_OPEN;
    optind = 1;
    opterr = 0;
    while ((li = -1, o = getopt_long(argc, argv, ":h", lo, &li)) != -1) {
        const tool_option *opt;
        if (o == 'h')
            o = O_HELP;
        if (o == ':') {
            tool_err("%s: %s needs a value (see tokenmint help %s)", cmd->name, argv[optind - 1],
                     cmd->name);
            return 0;
        }
        if (o == '?') {
            tool_err("%s: unknown option %s (see tokenmint help %s)", cmd->name, argv[optind - 1],
                     cmd->name);
            return 0;
        }
        opt = tool_option_find(o);
        if (o != O_HELP && !cmd_opt(cmd, o)) {
            tool_err("%s: --%s does not apply here (see tokenmint help %s)", cmd->name,
                     opt ? opt->name : "?", cmd->name);
            return 0;
        }
        p->given[p->ngiven].code = o;
        p->given[p->ngiven++].value = optarg;
        if (help)
            continue;
        for (i = 0; i < TEXT_OPTS; i++)
            if (text_opts[i].code == o)
                *(const char **)((char *)p + text_opts[i].at) = optarg;
        if (o >= O_CMP && o <= O_CMP_LOCKDIR) {
            if (!tool_cmp_station_opt(&p->c.cmp, opt->name, optarg, err, sizeof err)) {
                tool_err("%s: %s", cmd->name, err);
                return 0;
            }
            continue;
        }
        switch (o) {
        case O_JOBS:
            if (!number(optarg, 1, 1024, &n)) {
                tool_err("--jobs %s: a number of workers from 1 to 1024", optarg);
                return 0;
            }
            p->c.jobs = (int)n;
            break;
        case O_JSON:
            p->c.json = 1;
            break;
        case O_REMOVE:
            p->remove = 1;
            break;
        case O_FINALTRY:
            p->c.allow_final_try = 1;
            break;
        case O_ALL:
            p->c.all = 1;
            break;
        case O_TOKEN:
            p->c.uris[p->c.nuris++] = optarg;
            break;
        case O_COUNT:
            if (!number(optarg, 1, 1L << 30, &n)) {
                tool_err("--count %s: a positive number of tokens", optarg);
                return 0;
            }
            p->count = n;
            break;
        case O_WITHIN:
            if (!number(optarg, 0, 36500, &n)) {
                tool_err("--within %s: a number of days from 0 to 36500", optarg);
                return 0;
            }
            p->within = n;
            break;
        case O_RETIRE_OLD:
            p->retire_old = 1;
            break;
        case O_REKEY:
            p->rekey = 1;
            break;
        }
    }
    p->args = argv + optind;
    p->nargs = argc - optind;
    if (help) {
        tool_command_help(stdout, cmd);
        p->help = 1;
    }
    return 1;
}

int tool_parse(int argc, char **argv, const char *command, tool_parsed *p)
{
    if (parse(argc, argv, command, p))
        return 1;
    tool_parsed_free(p);
    return 0;
}

int tool_parse_command(int argc, char **argv, const char *command, tool_parsed *p, int *rc)
{
    tool_return_val_if_fail(rc != NULL, 0);
    if (!tool_parse(argc, argv, command, p)) {
        *rc = TOOL_EXIT_USAGE;
        return 0;
    }
    if (p->help) {
        tool_parsed_free(p);
        *rc = TOOL_EXIT_OK;
        return 0;
    }
    return 1;
}

void tool_parsed_free(tool_parsed *p)
{
    free(p->c.uris);
    free(p->given);
    p->c.uris = NULL;
    p->given = NULL;
    tool_cmp_station_clear(&p->c.cmp);
}
