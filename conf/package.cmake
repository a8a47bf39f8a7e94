# Debian packages (cpack -G DEB in a build configured with
# -DCMAKE_INSTALL_PREFIX=/usr): one per component (conf/install.cmake), each
# with its library dependencies found by dpkg-shlibdeps. .ci/packages builds,
# installs and checks them (lintian, the demo from the installed paths).
set(CPACK_PACKAGE_NAME tokenmint)
set(CPACK_PACKAGE_VENDOR "The tokenmint authors")
set(CPACK_PACKAGE_CONTACT "tokenmint authors <tokenmint@example.org>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# No CPACK_PACKAGE_DESCRIPTION_SUMMARY: each package's description below
# starts with its own summary line.
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL tool pkcs11 p11kit-module provider)
# The p11-kit registration file travels with the module.
set(CPACK_COMPONENT_PKCS11_GROUP pkcs11)
set(CPACK_COMPONENT_P11KIT-MODULE_GROUP pkcs11)
set(CPACK_COMPONENTS_GROUPING ONE_PER_GROUP)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/tokenmint/tokenmint")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_RELEASE "")

set(CPACK_DEBIAN_TOOL_PACKAGE_NAME tokenmint)
set(CPACK_DEBIAN_TOOL_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_TOOL_PACKAGE_DEPENDS "adduser, tokenmint-pkcs11 (= ${PROJECT_VERSION}), tokenmint-provider (= ${PROJECT_VERSION})")
set(CPACK_DEBIAN_TOOL_PACKAGE_RECOMMENDS "opensc")
set(CPACK_DEBIAN_TOOL_DESCRIPTION "issuing station for hardware tokens
tokenmint gives every PKCS#11 token plugged into a station a key pair made
on the token and an X.509 certificate whose subject and hardwareModuleName
carry the token's own hardware serial number, then writes the certificate
back and checks it. It runs a local CA (SQLite or PostgreSQL records, also a
stock openssl ca directory) or talks CMP to a remote one, and can serve a CA
or a checking relay over CMP (HTTP).")
set(CPACK_DEBIAN_TOOL_PACKAGE_CONTROL_EXTRA
    "${PROJECT_BINARY_DIR}/debian/tool/conffiles;${PROJECT_SOURCE_DIR}/conf/debian/tool/postinst;${PROJECT_SOURCE_DIR}/conf/debian/tool/postrm")
set(CPACK_DEBIAN_TOOL_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_PKCS11_PACKAGE_NAME tokenmint-pkcs11)
set(CPACK_DEBIAN_PKCS11_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PKCS11_DESCRIPTION "PKCS#11 module enforcing serial-bound certificates
tokenmint-pkcs11.so fronts one or more PKCS#11 modules (smart cards, HSMs,
SoftHSM2) and passes every call through, except that a certificate is
written to a token only when it names that token's hardware serial, matches
a key on it and fits the certificate profile. It can derive user PINs from
a station secret and writes an append-only JSON audit log.")
set(CPACK_DEBIAN_PKCS11_PACKAGE_CONTROL_EXTRA "${PROJECT_BINARY_DIR}/debian/pkcs11/conffiles")
set(CPACK_DEBIAN_PKCS11_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_PROVIDER_PACKAGE_NAME tokenmint-provider)
set(CPACK_DEBIAN_PROVIDER_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PROVIDER_PACKAGE_RECOMMENDS "tokenmint-pkcs11")
set(CPACK_DEBIAN_PROVIDER_DESCRIPTION "OpenSSL 3 provider for keys on PKCS#11 tokens
tokenmint.so lets stock openssl commands and OpenSSL 3 programs sign with,
decrypt with and generate keys on PKCS#11 tokens named by RFC 7512 pkcs11:
URIs, through the tokenmint PKCS#11 module or any other. It checks requests
against the serial-bound certificate profile before a token signs them.")
set(CPACK_DEBIAN_PROVIDER_PACKAGE_CONTROL_EXTRA "${PROJECT_BINARY_DIR}/debian/provider/conffiles")
set(CPACK_DEBIAN_PROVIDER_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# Every file a package puts under /etc is a conffile: dpkg keeps the admin's
# edits on upgrade.
function(tm_conffiles component)
  string(REPLACE ";" "\n" lines "${ARGN}")
  file(WRITE ${PROJECT_BINARY_DIR}/debian/${component}/conffiles "${lines}\n")
endfunction()
set(etc /etc/tokenmint)
tm_conffiles(tool ${etc}/profile.cnf ${etc}/ca.cnf /etc/default/tokenmint-ca
             /etc/default/tokenmint-relay)
tm_conffiles(pkcs11 ${etc}/tokenmint.conf.example)
tm_conffiles(provider ${etc}/openssl-tokenmint.cnf)

include(CPack)
