/* Untrusted values rendered for messages: printable, bounded, never raw bytes. */
#include "profile_int.h"

#include <string.h>
#include <openssl/bio.h>
#include <openssl/objects.h>

/* Copies what a memory BIO holds into buf, escaping anything not printable
 * ASCII and marking truncation with "...". */
static void bio_to_text(BIO *bio, char *buf, size_t len)
{
    const unsigned char *data = NULL;
    long n = bio ? BIO_get_mem_data(bio, (char **)&data) : 0;
    size_t i, used = 0;

    if (len == 0)
        return;
    for (i = 0; data != NULL && i < (size_t)n; i++) {
        unsigned char c = data[i];
        char piece[8];
        size_t plen;
        if (c >= 0x20 && c < 0x7f)
            piece[0] = (char)c, piece[1] = '\0';
        else
            snprintf(piece, sizeof(piece), "\\x%02X", c);
        plen = strlen(piece);
        if (used + plen + 4 >= len && i + 1 < (size_t)n) {
            if (used + 4 <= len - 1) {
                memcpy(buf + used, "...", 3);
                used += 3;
            }
            break;
        }
        if (used + plen >= len)
            break;
        memcpy(buf + used, piece, plen);
        used += plen;
    }
    buf[used] = '\0';
}

void tm_asn1_string_text(const ASN1_STRING *s, char *buf, size_t len)
{
    BIO *bio = BIO_new(BIO_s_mem());

    if (bio != NULL && s != NULL)
        ASN1_STRING_print_ex(bio, s, ASN1_STRFLGS_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    bio_to_text(bio, buf, len);
    BIO_free(bio);
}

void tm_gn_text(const GENERAL_NAME *gn, char *buf, size_t len)
{
    BIO *bio = BIO_new(BIO_s_mem());

    if (bio != NULL && gn != NULL)
        GENERAL_NAME_print(bio, (GENERAL_NAME *)gn);
    bio_to_text(bio, buf, len);
    BIO_free(bio);
}

void tm_obj_text(const ASN1_OBJECT *o, char *buf, size_t len)
{
    int nid = OBJ_obj2nid(o);

    if (len == 0)
        return;
    if (nid != NID_undef && OBJ_nid2sn(nid) != NULL)
        snprintf(buf, len, "%s", OBJ_nid2sn(nid));
    else if (o == NULL || OBJ_obj2txt(buf, (int)len, o, 1) <= 0)
        snprintf(buf, len, "(unreadable OID)");
}
