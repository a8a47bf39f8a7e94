# The PKCS#11 client layer (pkcs11/client/, issue 9): one unit test per part.
tm_add_unit(test_p11c_secret SOURCES unit/test_p11c_secret.c LIBS tokenmint-p11client)
tm_add_unit(test_p11c_audit SOURCES unit/test_p11c_audit.c
  LIBS tokenmint-p11client-audit PkgConfig::JSONC Threads::Threads)
tm_add_unit(test_p11c_text SOURCES unit/test_p11c_text.c LIBS tokenmint-p11client Threads::Threads)
tm_add_unit(test_p11c_objects SOURCES unit/test_p11c_objects.c LIBS tokenmint-p11client)
tm_add_unit(test_p11c_ecpoint SOURCES unit/test_p11c_ecpoint.c LIBS tokenmint-p11client OpenSSL::Crypto)
