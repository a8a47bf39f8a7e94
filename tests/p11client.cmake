# The PKCS#11 client layer (pkcs11/client/, issue 9): one unit test per part.
tm_add_unit(test_p11c_secret SOURCES unit/test_p11c_secret.c LIBS tokenmint-p11client)
