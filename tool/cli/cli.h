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

int tool_cmd_tokens(int argc, char **argv);
int tool_cmd_ca_init(int argc, char **argv);
int tool_cmd_issue(int argc, char **argv);
int tool_cmd_csr(int argc, char **argv);
int tool_cmd_write(int argc, char **argv);
int tool_cmd_operator_hash(int argc, char **argv);
int tool_cmd_help(int argc, char **argv);
int tool_cmd_completion(int argc, char **argv);
int tool_cmd_show(int argc, char **argv);
int tool_cmd_verify(int argc, char **argv);
int tool_cmd_watch(int argc, char **argv);
int tool_cmd_clean(int argc, char **argv);
int tool_cmd_pin(int argc, char **argv);
int tool_cmd_renew(int argc, char **argv);

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

/* Option codes: one per entry of the option table (cli/options.c). The CMP
 * servers' shared options keep their TOOL_FRONT_* codes (cmp/cmp.h). */
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
    O_OPEN_SECRETS,
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
    /* ca serve, relay */
    O_DEFERRED,
    O_DEFERMS,
    O_UPSTREAM,
    O_RANGE,
    O_UP_SECRET,
    O_UP_REF,
    O_UP_CERT,
    O_UP_KEY,
    O_UP_SRVCERT,
    O_UP_TRUSTED,
    O_OCSPCERT,
    O_OCSPKEY,
    /* ca list, ca show */
    O_SERIAL,
    O_STATUS,
    /* revoke, ca crl */
    O_REASON,
    O_OUT,
    /* renew, verify (issue 12) */
    O_WITHIN,
    O_RETIRE_OLD,
    O_REKEY,
    O_OCSP,
};

/* ---- the option and command tables (cli/options.c, cli/commands.c) ---------- */

typedef struct tool_option {
    int code;
    const char *name; /* the long name, without -- */
    const char *arg;  /* what the value is ("FILE"); NULL: a flag */
    const char *help; /* a '\n' continues at the help column */
} tool_option;

typedef struct tool_cmd_opt {
    int code;
    const char *help; /* this command's own wording; NULL: the option's */
} tool_cmd_opt;

typedef struct tool_command {
    const char *name;         /* "issue", "ca init" */
    const char *summary;      /* one line in `tokenmint help` */
    const char *usage;        /* after "usage: tokenmint "; more lines after a '\n' */
    const char *about;        /* paragraphs before the options; NULL: none */
    const tool_cmd_opt *opts; /* the options it takes, in help order; {0} ends */
    const char *footer;       /* after the options; NULL: none */
    /* argv[0] is the command's first word ("ca" for "ca init"), argv[1] its
     * second for two-word commands */
    int (*run)(int argc, char **argv);
} tool_command;

extern const tool_option tool_options[];   /* ends with a NULL name */
extern const tool_command tool_commands[]; /* ends with a NULL name */
const tool_option *tool_option_find(int code);
const tool_command *tool_command_find(const char *name);
void tool_command_help(FILE *out, const tool_command *cmd);
void tool_usage(FILE *out);
int tool_completion_bash(FILE *out);

typedef struct tool_parsed {
    tool_common c;
    const char *key, *key_file, *subject, *root;
    const char *db; /* --db: the CA's PostgreSQL connection string */
    long count;
    int remove;       /* clean --remove */
    long within;      /* renew --within DAYS; -1 not given */
    int retire_old;   /* renew --retire-old */
    int rekey;        /* renew --rekey */
    const char *ocsp; /* verify --ocsp URL */
    int help;         /* --help was given and answered: the command does nothing else */
    char **args;      /* positional */
    int nargs;
    /* every option in the order given, for commands with options of their own */
    struct {
        int code;
        const char *value;
    } * given;
    size_t ngiven;
} tool_parsed;

/* Parses argv (argv[0]: the command's last word) against the options the
 * table gives COMMAND ("issue", "ca init"). --help prints that command's help
 * and sets p->help. Returns 0 after saying what is wrong (unknown option,
 * one the command does not take, a bad value), with nothing to free; after
 * 1, free with tool_parsed_free. */
int tool_parse(int argc, char **argv, const char *command, tool_parsed *p);
/* The start of every command: tool_parse, and --help answered. 1: go on
 * (free p with tool_parsed_free); 0: return *rc (0 after the help, 2 after
 * a usage error, already said), p freed. *rc is left as it was when the
 * command goes on. */
int tool_parse_command(int argc, char **argv, const char *command, tool_parsed *p, int *rc);
void tool_parsed_free(tool_parsed *p);

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
/* Both, as every per-token command starts: TOOL_EXIT_OK, or the exit code
 * (the reason already said). tool_session_close and free(*out) either way. */
int tool_session_open_tokens(tool_session *s, tool_common *c, int flags, int default_all,
                             tool_token ***out, size_t *n);
/* Usage checks for a command that logs in to the tokens, before the first
 * one is touched: the profile can certify the key type for the purpose
 * (when keys may be made), the PIN is there (file readable, or a terminal
 * when some token needs a PIN). Returns TOOL_EXIT_OK or TOOL_EXIT_USAGE
 * after saying why. Also puts count-low tokens last (see tool_pin_expect). */
int tool_session_precheck(tool_session *s, tool_token **tokens, size_t n, int makes_keys);

int tool_cmd_ca_serve(int argc, char **argv);
int tool_cmd_ca_list(int argc, char **argv);
int tool_cmd_relay(int argc, char **argv);
/* revoke and ca crl: ca/cmd_revoke.c (declared in ca/ca.h) */

#endif
