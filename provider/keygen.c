/*
 * Key pairs made on a token through stock openssl:
 *
 *   openssl genpkey -provider tokenmint -provider default -algorithm EC \
 *       -pkeyopt group:P-256 \
 *       -pkeyopt 'pkcs11_uri:pkcs11:serial=8bcb10f34ab57aae;object=tokenmint:auth'
 *
 * The URI names exactly one token and, optionally, the key's CKA_LABEL
 * (object) and CKA_ID (id; 8 random bytes when absent). The pair has the
 * attributes the tool gives its own key pairs (token object, private,
 * sensitive, not extractable, CKA_SIGN), so with the label
 * "tokenmint:PURPOSE" `tokenmint issue` takes it as the token's free key
 * pair. pkcs11_key_usage adds decrypt and derive (for the encrypt purpose).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rand.h>

#include "key.h"
#include "keygen.h"
#include "session.h"
#include "uri.h"

#define TM_KEYGEN_ID_LEN 8

/* "sign decrypt derive" (commas or spaces); 0 for an unknown word. */
static int parse_usage(const char *s, int *sign, int *decrypt, int *derive, char *bad,
                       size_t badlen)
{
    char word[32];

    *sign = *decrypt = *derive = 0;
    while (s != NULL && *s != '\0') {
        size_t n = strcspn(s, ", \t");
        if (n > 0) {
            snprintf(word, sizeof(word), "%.*s", (int)n, s);
            if (strcasecmp(word, "sign") == 0)
                *sign = 1;
            else if (strcasecmp(word, "decrypt") == 0)
                *decrypt = 1;
            else if (strcasecmp(word, "derive") == 0)
                *derive = 1;
            else {
                snprintf(bad, badlen, "%s", word);
                return 0;
            }
        }
        s += n;
        s += strspn(s, ", \t");
    }
    return 1;
}

/* DER of the named curve's OID (RFC 5480); 0 when it is none we make. */
static size_t curve_der(prov_key_type type, const char *group, unsigned char *out, size_t max)
{
    int nid = NID_undef;
    ASN1_OBJECT *oid;
    unsigned char *p = out;
    int len;

    if (type == TM_KEY_ED25519)
        nid = NID_ED25519;
    else if (group != NULL && group[0] != '\0') {
        ERR_set_mark(); /* "P-256" is no OBJ name: that miss is no error */
        if ((nid = OBJ_txt2nid(group)) == NID_undef)
            nid = EC_curve_nist2nid(group);
        ERR_pop_to_mark();
    }
    if (type == TM_KEY_EC && nid != NID_X9_62_prime256v1 && nid != NID_secp384r1 &&
        nid != NID_secp521r1)
        return 0;
    if ((oid = OBJ_nid2obj(nid)) == NULL || (len = i2d_ASN1_OBJECT(oid, NULL)) <= 0 ||
        (size_t)len > max)
        return 0;
    return (size_t)i2d_ASN1_OBJECT(oid, &p);
}

/* Is there an object with this CKA_ID on the token already? */
static int id_taken(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, const unsigned char *id,
                    size_t id_len)
{
    CK_ATTRIBUTE tmpl[] = {{CKA_ID, (void *)id, id_len}};
    CK_OBJECT_HANDLE h;
    CK_ULONG n = 0;

    if (f->C_FindObjectsInit(s, tmpl, 1) != CKR_OK)
        return 1; /* cannot tell: do not risk a second key under one ID */
    if (f->C_FindObjects(s, &h, 1, &n) != CKR_OK)
        n = 1;
    f->C_FindObjectsFinal(s);
    return n > 0;
}

static prov_token *the_token(prov_ctx *prov, const prov_uri *u, const char *safe_uri)
{
    prov_module *m = prov_module_of(prov);
    prov_token **toks, *found = NULL;
    size_t n = 0, matched = 0;

    if (m == NULL)
        return NULL;
    toks = prov_module_tokens(m, 1, &n);
    for (size_t i = 0; i < n; i++) {
        if (prov_uri_match_token(u, prov_token_info(toks[i]))) {
            found = toks[i];
            matched++;
        }
    }
    free(toks);
    if (matched == 0)
        TM_RAISE(prov, TM_R_TOKEN_NOT_FOUND, "key generation: no token matches %s", safe_uri);
    else if (matched > 1)
        TM_RAISE(prov, TM_R_KEYGEN, "key generation: %s matches %zu tokens; name one (serial=...)",
                 safe_uri, matched);
    return matched == 1 ? found : NULL;
}

prov_key *prov_keygen_on_token(prov_ctx *prov, const prov_keygen_req *req)
{
    static const unsigned char e65537[] = {0x01, 0x00, 0x01};
    char err[512], bad[32] = "", safe[300];
    prov_uri *u = NULL;
    prov_token *t = NULL;
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = req->bits != 0 ? req->bits : 2048;
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pub[12], priv[12];
    CK_ULONG np = 0, nv = 0;
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    unsigned char id[64], params[16], e[8];
    size_t id_len = 0, params_len = 0, e_len = sizeof(e65537);
    int sign = 1, decrypt = 0, derive = 0;
    const char *what;
    prov_key *k = NULL;
    CK_RV rv = CKR_OK;

    /* for messages: the URI up to its query, so no pin-value shows */
    snprintf(safe, sizeof(safe), "%.*s", (int)strcspn(req->uri, "?"), req->uri);
    if (strstr(safe, "pin-value") != NULL)
        snprintf(safe, sizeof(safe), "%.*s", (int)(strstr(safe, "pin-value") - safe), req->uri);
    while (safe[0] != '\0' && strchr(";&", safe[strlen(safe) - 1]) != NULL)
        safe[strlen(safe) - 1] = '\0';
    if ((u = prov_uri_parse_ex(req->uri, prov->secret_flags, err, sizeof(err))) == NULL) {
        TM_RAISE(prov, TM_R_BAD_URI, "key generation: pkcs11_uri: %s", err);
        return NULL;
    }
    if (u->has_class && u->klass != CKO_PRIVATE_KEY) {
        TM_RAISE(prov, TM_R_BAD_URI, "key generation: pkcs11_uri names type other than private");
        goto out;
    }
    if (req->usage != NULL &&
        !parse_usage(req->usage, &sign, &decrypt, &derive, bad, sizeof(bad))) {
        TM_RAISE(prov, TM_R_CONFIG,
                 "key generation: pkcs11_key_usage '%s' (use sign, decrypt, derive)", bad);
        goto out;
    }
    if (req->type == TM_KEY_RSA && derive) {
        TM_RAISE(prov, TM_R_CONFIG, "key generation: an RSA key does not derive");
        goto out;
    }
    if (req->type != TM_KEY_RSA && decrypt) {
        TM_RAISE(prov, TM_R_CONFIG, "key generation: only RSA keys decrypt (EC keys derive)");
        goto out;
    }
    if (req->type == TM_KEY_RSA) {
        mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
        what = "RSA";
        if (req->e != NULL) {
            int n = BN_num_bytes(req->e);
            if (n <= 0 || (size_t)n > sizeof(e) || BN_bn2bin(req->e, e) != n) {
                TM_RAISE(prov, TM_R_KEYGEN, "key generation: RSA public exponent too large");
                goto out;
            }
            e_len = (size_t)n;
        } else {
            memcpy(e, e65537, sizeof(e65537));
        }
    } else {
        if (req->type == TM_KEY_ED25519)
            mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
        what = req->type == TM_KEY_ED25519 ? "Ed25519" : "EC";
        if ((params_len = curve_der(req->type, req->group, params, sizeof(params))) == 0) {
            TM_RAISE(prov, TM_R_UNSUPPORTED,
                     "key generation: curve '%s' (P-256, P-384 and P-521 are made on tokens; "
                     "-pkeyopt group:P-256)",
                     req->group[0] != '\0' ? req->group : "(none given)");
            goto out;
        }
    }
    if ((t = the_token(prov, u, safe)) == NULL)
        goto out;
    f = prov_module_fn(prov_token_module(t));
    if (!prov_token_has_mech(t, mech.mechanism)) {
        TM_RAISE(prov, TM_R_UNSUPPORTED,
                 "token %s cannot make %s keys: it has no mechanism 0x%lx (%s)",
                 prov_token_serial_text(t), what, (unsigned long)mech.mechanism,
                 mech.mechanism == CKM_EC_EDWARDS_KEY_PAIR_GEN ? "CKM_EC_EDWARDS_KEY_PAIR_GEN"
                 : mech.mechanism == CKM_RSA_PKCS_KEY_PAIR_GEN ? "CKM_RSA_PKCS_KEY_PAIR_GEN"
                                                               : "CKM_EC_KEY_PAIR_GEN");
        goto out;
    }
    if (!prov_uri_login(prov, u, t))
        goto out;
    if ((s = prov_session_get_rw(prov, t)) == CK_INVALID_HANDLE)
        goto out;
    if (u->id != NULL) {
        if (u->id_len > sizeof(id)) {
            TM_RAISE(prov, TM_R_BAD_URI, "key generation: id longer than %zu bytes", sizeof(id));
            goto out;
        }
        memcpy(id, u->id, u->id_len);
        id_len = u->id_len;
        if (id_taken(f, s, id, id_len)) {
            TM_RAISE(prov, TM_R_KEYGEN,
                     "token %s already has an object with this id; refusing a second key under "
                     "it (%s)",
                     prov_token_serial_text(t), safe);
            goto out;
        }
    } else {
        /* a fresh ID that nothing on the token has */
        int tries = 0;
        do {
            id_len = TM_KEYGEN_ID_LEN;
            if (RAND_bytes_ex(prov_libctx(prov), id, id_len, 0) <= 0) {
                TM_RAISE(prov, TM_R_KEYGEN, "key generation: no random bytes for the key ID");
                goto out;
            }
        } while (id_taken(f, s, id, id_len) && ++tries < 4);
        if (tries == 4) {
            TM_RAISE(prov, TM_R_KEYGEN, "token %s: no free key ID", prov_token_serial_text(t));
            goto out;
        }
    }

#define A(arr, n, ty, p, l)                                                                        \
    (arr[n].type = (ty), arr[n].pValue = (void *)(p), arr[n++].ulValueLen = (l))
    A(pub, np, CKA_TOKEN, &yes, sizeof(yes));
    A(pub, np, CKA_ID, id, id_len);
    A(pub, np, CKA_VERIFY, sign ? &yes : &no, sizeof(yes));
    A(priv, nv, CKA_TOKEN, &yes, sizeof(yes));
    A(priv, nv, CKA_PRIVATE, &yes, sizeof(yes));
    A(priv, nv, CKA_SENSITIVE, &yes, sizeof(yes));
    A(priv, nv, CKA_EXTRACTABLE, &no, sizeof(no));
    A(priv, nv, CKA_ID, id, id_len);
    A(priv, nv, CKA_SIGN, sign ? &yes : &no, sizeof(yes));
    if (u->label_ptr != NULL) {
        A(pub, np, CKA_LABEL, u->label_ptr, u->label_len);
        A(priv, nv, CKA_LABEL, u->label_ptr, u->label_len);
    }
    if (req->type == TM_KEY_RSA) {
        A(pub, np, CKA_MODULUS_BITS, &bits, sizeof(bits));
        A(pub, np, CKA_PUBLIC_EXPONENT, e, e_len);
        A(pub, np, CKA_ENCRYPT, decrypt ? &yes : &no, sizeof(yes));
        A(priv, nv, CKA_DECRYPT, decrypt ? &yes : &no, sizeof(yes));
    } else {
        A(pub, np, CKA_EC_PARAMS, params, params_len);
        A(priv, nv, CKA_DERIVE, derive ? &yes : &no, sizeof(yes));
    }
#undef A
    ERR_set_mark();
    rv = f->C_GenerateKeyPair(s, &mech, pub, np, priv, nv, &hpub, &hpriv);
    ERR_pop_to_mark();
    TM_DBG("C_GenerateKeyPair %s on token %s -> %s", what, prov_token_serial_text(t),
           prov_ckr_str(rv));
    if (rv != CKR_OK) {
        TM_RAISE(prov, TM_R_KEYGEN, "token %s could not make an %s key pair (%s): %s",
                 prov_token_serial_text(t), what, safe, prov_ckr_str(rv));
        goto out;
    }
    k = prov_key_from_object(prov, t, s, hpriv, CKO_PRIVATE_KEY);
    if (k != NULL)
        k->pss_only = req->pss;
out:
    if (s != CK_INVALID_HANDLE)
        prov_session_put(t, s, rv);
    prov_uri_free(u);
    return k;
}
