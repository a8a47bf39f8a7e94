/*
 * Every command of the tool: its help (usage, what it does, the options it
 * takes, in order) and where it runs. The parser refuses any option a
 * command's list does not name, so the help and the parser cannot disagree.
 */
#include "ca/ca.h"
#include "cli/cli.h"

/* clang-format off */
#define STATION_OPTS {O_MODULE, NULL}, {O_CONFIG, NULL}, {O_PROFILE, NULL}
#define SECRET_OPTS {O_OPEN_SECRETS, NULL}
#define PIN_OPTS {O_PIN, NULL}, {O_FINALTRY, NULL}, SECRET_OPTS
#define TOKEN_OPTS {O_ALL, NULL}, {O_TOKEN, NULL}, PIN_OPTS
#define OPERATOR_OPTS {O_OPPASS, NULL}, {O_OPTOKEN, NULL}, {O_OPPIN, NULL}
#define CMP_OPTS \
    {O_CMP, NULL}, {O_CMP_ROOT, NULL}, {O_CMP_SECRET, NULL}, {O_CMP_REF, NULL}, \
    {O_CMP_CERT, NULL}, {O_CMP_KEY, NULL}, {O_CMP_SRVCERT, NULL}, {O_CMP_TRUSTED, NULL}, \
    {O_CMP_JOBS, NULL}, {O_CMP_TIMEOUT, NULL}, {O_CMP_LOCKDIR, NULL}
#define SERVER_OPTS \
    {TOOL_FRONT_LISTEN, NULL}, {TOOL_FRONT_PORTFILE, NULL}, {TOOL_FRONT_SECRET, NULL}, \
    {TOOL_FRONT_REF, NULL}, {TOOL_FRONT_TRUSTED, NULL}, {TOOL_FRONT_SRVCERT, NULL}, \
    {TOOL_FRONT_SRVKEY, NULL}, {TOOL_FRONT_MAXBODY, NULL}, {TOOL_FRONT_MAXCONNS, NULL}, \
    {TOOL_FRONT_PERCLIENT, NULL}, {TOOL_FRONT_HDRTIMEOUT, NULL}, {TOOL_FRONT_BODYTIMEOUT, NULL}, \
    {TOOL_FRONT_IDLETIMEOUT, NULL}, SECRET_OPTS
/* clang-format on */

static const tool_cmd_opt tokens_opts[] = {
    {O_JSON, "one JSON object per token"}, STATION_OPTS, {0, NULL}};

static const tool_cmd_opt ca_init_opts[] = {{O_KEY, NULL},
                                            {O_KEYFILE, NULL},
                                            {O_SUBJECT, NULL},
                                            {O_DB, NULL},
                                            {O_MODULE, "PKCS#11 module for --key"},
                                            {0, NULL}};

static const tool_cmd_opt ca_serve_opts[] = {
    SERVER_OPTS,
    {O_DEFERRED, NULL},
    {O_DEFERMS, NULL},
    {O_PROFILE, "certificate profile (default: built in)"},
    {O_OCSPCERT, NULL},
    {O_OCSPKEY, NULL},
    {O_MODULE, "PKCS#11 module, when the CA key is a token key"},
    {O_DB, "the CA's records in this PostgreSQL database (else the one\n"
           "DIR/ca.cnf names, else DIR/ca.db). A certificate is answered\n"
           "only once its record is committed; a database that cannot\n"
           "be reached is answered with CMP systemUnavail (retry)"},
    {0, NULL}};

static const tool_cmd_opt ca_list_opts[] = {
    {O_TOKEN, "certificates of one token (pkcs11:serial=...)"},
    {O_SERIAL, NULL},
    {O_STATUS, NULL},
    {O_JSON, "one JSON object per line"},
    {O_DB, "a PostgreSQL connection string instead of the directory's"},
    {0, NULL}};

static const tool_cmd_opt ca_show_opts[] = {
    {O_SERIAL, "the certificate serial (hex), in place of SERIAL"},
    {O_JSON, "one JSON object"},
    {O_DB, "a PostgreSQL connection string instead of the directory's"},
    {0, NULL}};

static const tool_cmd_opt ca_crl_opts[] = {
    {O_OUT, NULL},
    {O_DB, "a PostgreSQL connection string instead of the directory's"},
    {O_MODULE, "PKCS#11 module, when the CA key is a token key"},
    {0, NULL}};

static const tool_cmd_opt revoke_opts[] = {
    {O_TOKEN, "a token by pkcs11: URI with serial= (repeatable)"},
    {O_SERIAL, "a token by its serial (repeatable; the token need not be here)"},
    {O_CA, NULL},
    {O_REASON, NULL},
    {O_DB, "a PostgreSQL connection string instead of the directory's"},
    {O_CONFIG, "tool config (its audit log records each revocation)"},
    {O_MODULE, "PKCS#11 module, when the CA key is a token key"},
    {0, NULL}};

static const tool_cmd_opt relay_opts[] = {
    SERVER_OPTS,
    {O_UPSTREAM, NULL},
    {O_RANGE, NULL},
    {O_UP_SECRET, NULL},
    {O_UP_REF, NULL},
    {O_UP_CERT, NULL},
    {O_UP_KEY, NULL},
    {O_UP_SRVCERT, NULL},
    {O_UP_TRUSTED, NULL},
    {O_PROFILE, "certificate profile (to read the serial; default: built in)"},
    {0, NULL}};

static const tool_cmd_opt issue_opts[] = {
    {O_CA, NULL}, {O_PURPOSE, NULL}, {O_KEYTYPE, NULL}, {O_JOBS, NULL}, {O_JSON, NULL},
    TOKEN_OPTS,   OPERATOR_OPTS,     STATION_OPTS,      CMP_OPTS,       {0, NULL}};

static const tool_cmd_opt renew_opts[] = {
    {O_WITHIN, NULL},  {O_RETIRE_OLD, NULL},
    {O_REKEY, NULL},   {O_CA, NULL},
    {O_PURPOSE, NULL}, {O_KEYTYPE, "type of the new key pairs (default ec:P-256)"},
    {O_JOBS, NULL},    {O_JSON, NULL},
    TOKEN_OPTS,        OPERATOR_OPTS,
    STATION_OPTS,      CMP_OPTS,
    {0, NULL}};

static const tool_cmd_opt csr_opts[] = {{O_PURPOSE, NULL}, {O_KEYTYPE, NULL}, {O_JOBS, NULL},
                                        TOKEN_OPTS,        OPERATOR_OPTS,     STATION_OPTS,
                                        {0, NULL}};

static const tool_cmd_opt write_opts[] = {
    {O_CA, "verify each certificate against DIR/ca.pem first (step 11)"},
    {O_ROOT, "verify each certificate against this root first (step 11)"},
    {O_JSON, NULL},
    PIN_OPTS,
    OPERATOR_OPTS,
    STATION_OPTS,
    {0, NULL}};

static const tool_cmd_opt verify_opts[] = {
    {O_ALL, NULL},  {O_TOKEN, NULL}, {O_CA, "the CA whose root (DIR/ca.pem) to check against"},
    {O_ROOT, NULL}, {O_OCSP, NULL},  {O_JSON, NULL},
    STATION_OPTS,   {0, NULL}};

static const tool_cmd_opt watch_opts[] = {
    {O_CA, NULL}, {O_PURPOSE, NULL}, {O_KEYTYPE, NULL}, {O_COUNT, NULL}, {O_JSON, NULL},
    PIN_OPTS,     OPERATOR_OPTS,     STATION_OPTS,      CMP_OPTS,        {0, NULL}};

static const tool_cmd_opt show_opts[] = {STATION_OPTS, {0, NULL}};

static const tool_cmd_opt operator_hash_opts[] = {
    {O_OPPASS, "the new passphrase (first line of FILE; else a prompt)"}, SECRET_OPTS, {0, NULL}};

static const tool_cmd_opt clean_opts[] = {{O_REMOVE, NULL},
                                          {O_CA, "keep key pairs this CA issued a certificate for"},
                                          {O_JSON, "one JSON object per leftover"},
                                          TOKEN_OPTS,
                                          OPERATOR_OPTS,
                                          STATION_OPTS,
                                          {0, NULL}};

static const tool_cmd_opt pin_derive_opts[] = {{O_JSON, "one JSON object per token"},
                                               {O_JOBS, NULL},
                                               TOKEN_OPTS,
                                               OPERATOR_OPTS,
                                               STATION_OPTS,
                                               {0, NULL}};

static const tool_cmd_opt no_opts[] = {{0, NULL}};

const tool_command tool_commands[] = {
    {"tokens", "list the tokens at this station and their state", "tokens [--json]",
     "Every token at the station: serial, label, model, the PIN it takes (user:\n"
     "entered; derived: by the module from the station secret, see `pin derive`),\n"
     "state (not initialised, PIN locked, no key, free key pair, issued: N\n"
     "certificates). No PIN needed: only public objects are read.\n",
     tokens_opts, NULL, tool_cmd_tokens},
    {"ca init", "make a local CA directory (also a stock `openssl ca` directory)",
     "ca init DIR [--key pkcs11:URI | --key-file F] [--subject CN] [--db CONNINFO]",
     "Makes DIR a local CA that both `tokenmint issue --ca DIR` and stock\n"
     "`openssl ca -config DIR/ca.cnf` issue from: ca.cnf, ca.pem (root), index.txt,\n"
     "index.txt.attr, serial, newcerts/, db.lock, and the records: ca.db (SQLite)\n"
     "or, with --db, a PostgreSQL database (named in ca.cnf from then on). The\n"
     "root key is new (P-256, DIR/private/ca.key, mode 0600) unless --key names a\n"
     "token key by pkcs11: URI (through the tokenmint provider) or --key-file an\n"
     "existing PEM key.\n",
     ca_init_opts, NULL, tool_cmd_ca_init},
    {"ca serve", "serve a CA directory over CMP (HTTP)",
     "ca serve DIR --listen ADDR:PORT [--secret-source FILE [--ref REF]]\n"
     "[--trusted FILE --srv-cert FILE --srv-key FILE]\n"
     "[--deferred [--defer-ms MS]] [--max-body BYTES] [--port-file F]",
     "Serves the CA directory DIR (made by `tokenmint ca init`) over CMP (RFC 4210/9483)\n"
     "on HTTP POST, Content-Type application/pkixcmp, any path. Accepts p10cr (the\n"
     "token's PKCS#10 request), ir and cr; issues per the serial-bound profile with the\n"
     "same database and locking as `tokenmint issue --ca DIR`. Every certificate is on\n"
     "disk (synced) before its response is sent. Also an OCSP responder (RFC 6960: POST\n"
     "application/ocsp-request, or GET .../ocsp/BASE64) answering from the CA's records,\n"
     "and GET .../crl serves the CRL `tokenmint ca crl DIR` made last (DER).\n"
     "Also rr (PBMAC: any certificate; signed with a token's certificate: that one\n"
     "only), kur (signed with the valid certificate it updates, which the new one\n"
     "supersedes: same token, new key) and genm (id-it-caCerts: the CA certificate).\n",
     ca_serve_opts,
     "Runs until SIGINT or SIGTERM. Exit: 0 stopped cleanly, 2 usage or setup error.\n",
     tool_cmd_ca_serve},
    {"ca list", "the CA's certificates from its database",
     "ca list DIR [--token URI] [--serial S] [--status S] [--json] [--db C]",
     "The CA's records from its database (DIR/ca.db, or the PostgreSQL database of\n"
     "DIR/ca.cnf [ tokenmint ] database, or --db). What stock `openssl ca` issued or\n"
     "revoked in DIR is taken in first. One line per certificate: serial, status\n"
     "(valid, revoked, expired, superseded), token serial, purpose, operator, origin,\n"
     "notAfter, subject, tab-separated.\n",
     ca_list_opts, NULL, tool_cmd_ca_list},
    {"ca show", "one certificate of the CA, from its database",
     "ca show DIR (SERIAL | --serial S) [--json] [--db C]",
     "One certificate's record from the CA's database (see `tokenmint help ca list`).\n"
     "--serial S is SERIAL by the name `ca list` uses for it. There is no --status:\n"
     "the record is shown whatever its status, and says it; to pick certificates by\n"
     "status use `ca list --status`.\n",
     ca_show_opts, NULL, tool_cmd_ca_list},
    {"ca crl", "make the CA's CRL (full, numbered)",
     "ca crl DIR [--out FILE] [--db CONNINFO] [--module PATH]",
     "A full CRL of every certificate DIR revoked (tokenmint revoke or stock openssl ca\n"
     "-revoke), numbered in DIR/crlnumber like `openssl ca -gencrl`, nextUpdate\n"
     "default_crl_days (ca.cnf) from now, signed by the CA key. Written to DIR/crl.pem\n"
     "(what `ca serve` serves) and, with --out, to FILE (PEM).\n",
     ca_crl_opts, NULL, tool_cmd_ca_crl},
    {"revoke", "revoke a token's certificates (or given ones) at the CA",
     "revoke (--token URI... | --serial TOKENSERIAL... | CERT...) --ca DIR\n"
     "--reason REASON [--db CONNINFO] [--config FILE] [--module PATH]",
     "Revokes every certificate the CA DIR issued to a token (named by a pkcs11: URI\n"
     "with serial=, or by its serial: the token need not be here), or the certificates\n"
     "given as PEM files. Idempotent: already revoked certificates are reported as such.\n"
     "Then make a CRL with `tokenmint ca crl DIR`; `ca serve` answers OCSP at once.\n",
     revoke_opts, "Exit: 0 done, 1 something named is unknown to the CA, 2 usage or setup error.\n",
     tool_cmd_revoke},
    {"relay", "CMP relay: check requests (signature, serial range), forward to the CA",
     "relay --listen ADDR:PORT --upstream URL --serial-range LO-HI\n"
     "[--secret-source FILE [--ref REF]] [--trusted FILE --srv-cert F --srv-key F]\n"
     "[--upstream-secret-source FILE --upstream-ref REF |\n"
     " --upstream-cert F --upstream-key F] [--upstream-srvcert F]\n"
     "[--upstream-trusted F] [--max-body BYTES] [--port-file F]",
     "The patent's relay as a CMP registration authority. Stations send p10cr here\n"
     "(`tokenmint issue --cmp URL`); the relay verifies each request's signature with\n"
     "the public key inside it and that the token serial it names lies in LO-HI,\n"
     "refuses the rest with a CMP error (rejection, failInfo badPOP or badRequest, a\n"
     "statusString saying why), and forwards the rest to the upstream CA as its own\n"
     "CMP transaction, protected with the relay's own credentials.\n"
     "\n"
     "An rr is forwarded the same way when signed with the certificate it revokes\n"
     "(chaining to --trusted) and that certificate's token is in LO-HI. A kur gets\n"
     "the same checks on the certificate that signed it (the one it updates), and its\n"
     "new certificate must name the same token; it is then forwarded unchanged (the\n"
     "relay has no token key to sign its own), and the CA's answers pass through.\n"
     "\n"
     "Serials compare as unsigned hex numbers when both are hex digit strings,\n"
     "else as text. Downstream protection options as for `tokenmint ca serve`.\n",
     relay_opts, NULL, tool_cmd_relay},
    {"issue", "give tokens a key pair and a certificate bound to their serial",
     "issue (--all | --token URI...) (--ca DIR | --cmp URL ...) [--purpose P]\n"
     "[--key-type T] [--jobs N] [--json] [--pin-source SRC]",
     "Per token, in this order: (1) check the token is present, (2) log in, (3) find a\n"
     "free key pair of the type (or generate one), (4) read the token's serial,\n"
     "(5) build the request naming that serial and have the token sign it, (6) the CA\n"
     "verifies it and issues (requests ready together go as one batch), (7) verify\n"
     "the certificate against the root, (8) write it onto the token whose serial it\n"
     "names, next to its key pair.\n"
     "Safe to re-run: done tokens are skipped, free key pairs reused, certificates\n"
     "issued but never written are taken from the CA and written, never re-issued.\n"
     "The CA is a local directory (--ca DIR) or a CMP server or relay (--cmp URL\n"
     "with --cmp-root and its protection); a CMP configuration is checked whole\n"
     "before any token is touched.\n"
     "A token whose certificate for the purpose has expired, or was revoked or\n"
     "superseded at the CA, is not done: it is listed as \"needs renewal\" (see\n"
     "`tokenmint renew`) and the exit status is 1.\n",
     issue_opts, NULL, tool_cmd_issue},
    {"renew", "give tokens whose certificates run out a new key pair and certificate",
     "renew (--all | --token URI...) (--ca DIR | --cmp URL ...) [--within DAYS]\n"
     "[--rekey] [--retire-old]\n"
     "[--purpose P] [--key-type T] [--jobs N] [--json] [--pin-source SRC]",
     "Per token, the certificate for the purpose is renewed when it expires within\n"
     "DAYS days, has expired, or was revoked or superseded at the CA (a local CA\n"
     "keeps that status; through CMP only the dates count). The new certificate is\n"
     "for the same key pair, and the CA records the old one superseded as it issues\n"
     "the new one, unless --rekey is given or the old certificate was revoked (or,\n"
     "over CMP, has expired): then a new key pair is made on the same token.\n"
     "Over CMP a renewal is a kur signed with the old certificate and its key on\n"
     "the token, so the server has to trust the CA and sign its answers (`ca serve\n"
     "--trusted --srv-cert --srv-key`); the station checks them against --cmp-root\n"
     "unless --cmp-trusted or --cmp-srvcert is given. An expired or revoked one goes\n"
     "as a p10cr. The write policy takes a same-key renewal only from the same CA,\n"
     "for the same token and purpose, lasting longer; never a certificate for\n"
     "another token. The old certificate and key pair stay on the token unless\n"
     "--retire-old is given: then, once the new certificate is verified and\n"
     "written, the token's other certificates for the purpose are removed\n"
     "(audited), each with its key pair when no certificate left uses it (the\n"
     "module's destroy_bound_certificates = refuse makes that fail, and the token\n"
     "is reported failed). Resumable like `issue`: a re-run after an interruption\n"
     "reuses the new key pair, takes a certificate the CA already issued for it\n"
     "(a repeated kur included), and completes the CA's record.\n",
     renew_opts, "Exit: 0 every token done, 1 some token failed, 2 usage or setup error.\n",
     tool_cmd_renew},
    {"csr", "print signed requests for tokens (PEM), for stock `openssl ca`",
     "csr [--token URI... | --all] [--purpose P] [--key-type T]",
     "Steps 1-5 of `issue` alone: for each token (default: all), a free key pair (or a\n"
     "new one)\n"
     "and a request signed on the token, PEM on stdout. With `write`, the first and\n"
     "last steps around stock `openssl ca`:\n"
     "  tokenmint csr --token URI | openssl ca -batch -config DIR/ca.cnf -in /dev/stdin \\\n"
     "      -out /dev/stdout | tokenmint write -\n",
     csr_opts, NULL, tool_cmd_csr},
    {"write", "put certificates onto the tokens whose serials they name",
     "write [--ca DIR | --root CA.pem] CERT... (- for stdin)",
     "Step 8 of `issue` alone: each certificate goes onto the token whose serial it\n"
     "names, onto the key pair it certifies (which must have no certificate yet). With\n"
     "--ca or --root, each is first verified against that root (step 7).\n",
     write_opts, NULL, tool_cmd_write},
    {"verify", "check every certificate on every token",
     "verify [--all | --token URI...] (--ca DIR | --root CA.pem) [--json]",
     "Every certificate on every token (default: all): names its token's serial,\n"
     "matches a key pair there, chains to the root, is inside its validity period,\n"
     "and is not revoked: by the CA's records with --ca DIR, or by the OCSP\n"
     "responder --ocsp URL names (a signed answer with our nonce).\n"
     "Exit 1 when any certificate fails a check.\n",
     verify_opts, NULL, tool_cmd_verify},
    {"watch", "station mode: issue each token as it is plugged in",
     "watch (--ca DIR | --cmp URL ...) [--purpose P] [--key-type T] [--count N]",
     "Station mode: issues every token present, then each token as it is plugged in\n"
     "(through the module's slot events). An OK or FAIL line and the terminal bell\n"
     "per token. Ctrl-C stops cleanly between tokens. --count N stops after N tokens.\n",
     watch_opts, NULL, tool_cmd_watch},
    {"show", "a certificate or token in words", "show CERT|pkcs11:URI",
     "A certificate file (PEM or DER, - for stdin) or a token in words, the\n"
     "hardwareModuleName binding decoded.\n",
     show_opts, NULL, tool_cmd_show},
    {"clean", "list (and with --remove destroy) what interrupted runs left on tokens",
     "clean (--all | --token URI...) [--remove] [--ca DIR] [--json]",
     "Lists what an interrupted run left among tokenmint's own objects (label\n"
     "tokenmint:PURPOSE): private keys that are not whole, halves of key pairs\n"
     "without the other half, certificate objects that hold no certificate, and\n"
     "key pairs no run can certify (purpose not in the profile, key type the\n"
     "profile does not allow for it). A key pair the next `issue` reuses is no\n"
     "leftover; with --ca, neither is one the CA issued a certificate for.\n"
     "A dry run unless --remove is given. Every leftover goes to the audit log.\n",
     clean_opts, NULL, tool_cmd_clean},
    {"pin derive", "move tokens from their factory PIN to the module's derived PIN",
     "pin derive (--all | --token URI...) --pin-source FACTORY",
     "Moves each token from its factory user PIN (in FACTORY) to the PIN the module\n"
     "derives from the station secret (station_secret in the module config) and the\n"
     "token's serial; from then on no PIN is entered for it. Tokens already on their\n"
     "derived PIN are left alone. The factory PIN is tried like a login PIN: one\n"
     "token first, never again on a token that refused it, never the final try\n"
     "unless --allow-final-try.\n",
     pin_derive_opts, NULL, tool_cmd_pin},
    {"operator hash", "make the scrypt hash line for the config file",
     "operator hash [--operator-pass-source FILE]",
     "Prints the `passphrase = scrypt:...` line for the [ operator ] section.\n",
     operator_hash_opts, NULL, tool_cmd_operator_hash},
    {"help", "this list, or one command's help", "help [COMMAND]", NULL, no_opts, NULL,
     tool_cmd_help},
    {"completion", "bash completion for tokenmint", "completion bash",
     "Prints a bash completion script: source it, or install it as\n"
     "/usr/share/bash-completion/completions/tokenmint.\n",
     no_opts, NULL, tool_cmd_completion},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
