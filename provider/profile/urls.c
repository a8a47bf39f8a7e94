/*
 * Where relying parties find revocation (issue 12): the profile's
 * crl_distribution_point and ocsp_url. When set, every certificate the CA
 * issues carries them (cRLDistributionPoints, authorityInfoAccess with an
 * OCSP access method), and the certificate check wants exactly them there.
 * A URL that is not a plain http:// URL is refused when the profile loads.
 */
#include "profile_int.h"

#include <string.h>
#include <openssl/err.h>
#include <openssl/http.h>

int tm_url_check(const char *url, char *why, size_t whylen)
{
    char *host = NULL, *path = NULL;
    int ssl = 0, ok = 0;
    size_t i, n = strlen(url);

    if (n == 0 || n > TM_URL_MAX) {
        snprintf(why, whylen, "is %s (at most %d characters)", n ? "too long" : "empty",
                 TM_URL_MAX);
        return 0;
    }
    for (i = 0; i < n; i++)
        if (url[i] <= 0x20 || url[i] >= 0x7f) {
            snprintf(why, whylen, "has a space or a non-ASCII/control byte at offset %zu", i);
            return 0;
        }
    /* RFC 5280 4.2.1.13 / RFC 6960: fetched over plain HTTP (a CRL or an
     * OCSP answer is signed; https would need revocation data to check itself) */
    if (strncmp(url, "http://", 7) != 0) {
        snprintf(why, whylen, "is not an http:// URL");
        return 0;
    }
    ERR_set_mark();
    if (OSSL_HTTP_parse_url(url, &ssl, NULL, &host, NULL, NULL, &path, NULL, NULL) != 1 ||
        host == NULL || host[0] == '\0')
        snprintf(why, whylen, "does not parse as http://HOST[:PORT]/PATH");
    else
        ok = 1;
    ERR_pop_to_mark();
    OPENSSL_free(host);
    OPENSSL_free(path);
    return ok;
}

static GENERAL_NAME *uri_name(const char *url)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();

    if (gn == NULL || s == NULL || !ASN1_STRING_set(s, url, (int)strlen(url))) {
        GENERAL_NAME_free(gn);
        ASN1_IA5STRING_free(s);
        return NULL;
    }
    GENERAL_NAME_set0_value(gn, GEN_URI, s);
    return gn;
}

static int add_crldp(X509 *cert, const char *url)
{
    CRL_DIST_POINTS *dps = sk_DIST_POINT_new_null();
    DIST_POINT *dp = DIST_POINT_new();
    GENERAL_NAME *gn = uri_name(url);
    int ok = 0;

    if (dps == NULL || dp == NULL || gn == NULL || (dp->distpoint = DIST_POINT_NAME_new()) == NULL)
        goto out;
    dp->distpoint->type = 0; /* fullName */
    dp->distpoint->name.fullname = GENERAL_NAMES_new();
    if (dp->distpoint->name.fullname == NULL ||
        !sk_GENERAL_NAME_push(dp->distpoint->name.fullname, gn))
        goto out;
    gn = NULL;
    if (!sk_DIST_POINT_push(dps, dp))
        goto out;
    dp = NULL;
    ok = X509_add1_ext_i2d(cert, NID_crl_distribution_points, dps, 0, X509V3_ADD_APPEND) == 1;
out:
    GENERAL_NAME_free(gn);
    DIST_POINT_free(dp);
    sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
    return ok;
}

static int add_aia(X509 *cert, const char *url)
{
    AUTHORITY_INFO_ACCESS *aia = sk_ACCESS_DESCRIPTION_new_null();
    ACCESS_DESCRIPTION *ad = ACCESS_DESCRIPTION_new();
    int ok = 0;

    if (aia == NULL || ad == NULL)
        goto out;
    ASN1_OBJECT_free(ad->method);
    ad->method = OBJ_nid2obj(NID_ad_OCSP);
    GENERAL_NAME_free(ad->location);
    ad->location = uri_name(url);
    if (ad->location == NULL || !sk_ACCESS_DESCRIPTION_push(aia, ad))
        goto out;
    ad = NULL;
    ok = X509_add1_ext_i2d(cert, NID_info_access, aia, 0, X509V3_ADD_APPEND) == 1;
out:
    ACCESS_DESCRIPTION_free(ad);
    sk_ACCESS_DESCRIPTION_pop_free(aia, ACCESS_DESCRIPTION_free);
    return ok;
}

int tm_urls_add_exts(const tm_profile *p, X509 *cert, tm_violations *errors)
{
    if (p->crl_url[0] && !add_crldp(cert, p->crl_url)) {
        tm_violations_add(errors, "cannot add the cRLDistributionPoints extension: out of memory");
        return 0;
    }
    if (p->ocsp_url[0] && !add_aia(cert, p->ocsp_url)) {
        tm_violations_add(errors, "cannot add the authorityInfoAccess extension: out of memory");
        return 0;
    }
    return 1;
}

static int uri_is(const GENERAL_NAME *gn, const char *url)
{
    const ASN1_IA5STRING *s;
    if (gn == NULL || gn->type != GEN_URI)
        return 0;
    s = gn->d.uniformResourceIdentifier;
    return (size_t)ASN1_STRING_length(s) == strlen(url) &&
           memcmp(ASN1_STRING_get0_data(s), url, strlen(url)) == 0;
}

size_t tm_urls_check_cert(const tm_profile *p, X509 *cert, tm_violations *errors)
{
    size_t n = 0;
    int i, j, found, crit = -1;

    if (p->crl_url[0]) {
        CRL_DIST_POINTS *dps = X509_get_ext_d2i(cert, NID_crl_distribution_points, &crit, NULL);
        found = 0;
        for (i = 0; dps != NULL && i < sk_DIST_POINT_num(dps) && !found; i++) {
            DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
            if (dp->distpoint == NULL || dp->distpoint->type != 0)
                continue;
            for (j = 0; j < sk_GENERAL_NAME_num(dp->distpoint->name.fullname) && !found; j++)
                found = uri_is(sk_GENERAL_NAME_value(dp->distpoint->name.fullname, j), p->crl_url);
        }
        sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
        if (!found) {
            tm_violations_add(errors,
                              "cRLDistributionPoints lacks the profile's crl_distribution_point %s",
                              p->crl_url);
            n++;
        }
    }
    if (p->ocsp_url[0]) {
        AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(cert, NID_info_access, &crit, NULL);
        found = 0;
        for (i = 0; aia != NULL && i < sk_ACCESS_DESCRIPTION_num(aia) && !found; i++) {
            ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);
            found = OBJ_obj2nid(ad->method) == NID_ad_OCSP && uri_is(ad->location, p->ocsp_url);
        }
        sk_ACCESS_DESCRIPTION_pop_free(aia, ACCESS_DESCRIPTION_free);
        if (!found) {
            tm_violations_add(errors, "authorityInfoAccess lacks the profile's ocsp_url %s",
                              p->ocsp_url);
            n++;
        }
    }
    return n;
}
