/*
 * The command line: options shared by the subcommands, their parser and
 * help texts, the session a token-touching command opens (station, crypto,
 * profile, config, operator), and every command's entry point.
 */
#ifndef TOKENMINT_TOOL_CLI_H
#define TOKENMINT_TOOL_CLI_H

#include "cmp/cmp.h"
#include "station/station.h"
#include "tm_profile.h"

/* ---- subcommands ------------------------------------------------------------------ */

int tool_cmd_show(int argc, char **argv);
int tool_cmd_verify(int argc, char **argv);
int tool_cmd_watch(int argc, char **argv);
int tool_cmd_clean(int argc, char **argv);
int tool_cmd_pin(int argc, char **argv);

/* Shared option handling for the subcommands. */
typedef struct tool_common {
    const char *module;
    const char *config;
    const char *profile;
    const char *pin_source;
    const char *purpose;
    const char *keytype;
    const char *ca_dir;
    const char *operator_pass;
    const char *operator_token;
    const char *operator_pin;
    int json;
    int all;
    int jobs;
    int allow_final_try; /* --allow-final-try: may spend a token's last PIN try */
    char **uris;
    size_t nuris;
    tool_cmp_station cmp; /* --cmp*: owned until the session's CA takes it */
} tool_common;

/* Command-line options, shared by the subcommands (cli/main.c). */
enum {
    O_MODULE = 1000,
    O_CONFIG,
    O_PROFILE,
    O_PIN,
    O_PURPOSE,
    O_KEYTYPE,
    O_CA,
    O_JOBS,
    O_JSON,
    O_ALL,
    O_TOKEN,
    O_OPPASS,
    O_OPTOKEN,
    O_OPPIN,
    O_KEY,
    O_KEYFILE,
    O_SUBJECT,
    O_ROOT,
    O_COUNT,
    O_DB,
    O_REMOVE,
    O_FINALTRY,
    O_HELP,
    /* the CMP CA (cmp/station.c) */
    O_CMP,
    O_CMP_ROOT,
    O_CMP_SECRET,
    O_CMP_REF,
    O_CMP_CERT,
    O_CMP_KEY,
    O_CMP_SRVCERT,
    O_CMP_TRUSTED,
    O_CMP_JOBS,
    O_CMP_TIMEOUT,
    O_CMP_LOCKDIR,
};

typedef struct tool_parsed {
    tool_common c;
    const char *key, *key_file, *subject, *root;
    const char *db; /* --db: the CA's PostgreSQL connection string */
    long count;
    int remove; /* clean --remove */
    int help;
    char **args; /* positional */
    int nargs;
} tool_parsed;

int tool_parse(int argc, char **argv, const int *allowed, tool_parsed *p);
void tool_parsed_free(tool_parsed *p);
extern const char *tool_common_help;
extern const char *tool_token_help;

/* Sets up profile, config, station, crypto, the operator (flags:
 * TOOL_SESSION_OPERATOR) and the CA (TOOL_SESSION_CA: --ca DIR or --cmp URL,
 * into s->run.ca) for a command that touches tokens; every check that needs
 * no token comes first. Returns TOOL_EXIT_OK or an exit code. */
typedef struct tool_session {
    tool_station st;
    tool_crypto crypto;
    tm_profile *prof;
    tool_config cfg;
    tool_pin pin;
    char operator_id[256];
    tool_run run;
} tool_session;
#define TOOL_SESSION_OPERATOR 1
#define TOOL_SESSION_CA 2
int tool_session_open(tool_session *s, tool_common *c, int flags);
void tool_session_close(tool_session *s);
/* Tokens selected by --all / --token, as pointers into s->st.tokens (caller frees array). */
int tool_session_tokens(tool_session *s, const tool_common *c, int default_all, tool_token ***out,
                        size_t *n);
/* Usage checks for a command that logs in to the tokens, before the first
 * one is touched: the profile can certify the key type for the purpose
 * (when keys may be made), the PIN is there (file readable, or a terminal
 * when some token needs a PIN). Returns TOOL_EXIT_OK or TOOL_EXIT_USAGE
 * after saying why. Also puts count-low tokens last (see tool_pin_expect). */
int tool_session_precheck(tool_session *s, tool_token **tokens, size_t n, int makes_keys);

int tool_cmd_ca_serve(int argc, char **argv);
int tool_cmd_relay(int argc, char **argv);

#endif
