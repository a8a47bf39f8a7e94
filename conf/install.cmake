# Installation pieces that belong to no single part: man pages (built from
# scdoc sources at build time), systemd units, the Debian copyright and
# changelog files the packages carry. Included from the top CMakeLists.txt
# before the parts, so each part can call tm_add_man().
#
# Components (one Debian package each, conf/package.cmake):
#   tool     tokenmint             the command line, CA and CMP services
#   pkcs11   tokenmint-pkcs11      the station's PKCS#11 module
#            (+ p11kit-module, its p11-kit registration)
#   provider tokenmint-provider    the OpenSSL 3 provider
set(CMAKE_INSTALL_DEFAULT_COMPONENT_NAME tool)

# Man pages: scdoc is small and in Debian. Without it (a developer build) the
# pages are simply not built; CI and the packages need them.
find_program(SCDOC scdoc)
option(TOKENMINT_MAN "Build and install the man pages (needs scdoc)" ON)
if(TOKENMINT_MAN AND NOT SCDOC)
  message(WARNING "scdoc not found: man pages are not built (apt install scdoc)")
endif()
add_custom_target(man ALL)

# tm_add_man(SOURCE COMPONENT [DEPENDS ...]): SOURCE is NAME.SECTION.scd,
# next to the caller or an absolute path (a generated source).
function(tm_add_man src component)
  cmake_parse_arguments(M "" "" "DEPENDS" ${ARGN})
  if(NOT TOKENMINT_MAN OR NOT SCDOC)
    return()
  endif()
  if(NOT IS_ABSOLUTE ${src})
    set(src ${CMAKE_CURRENT_SOURCE_DIR}/${src})
  endif()
  get_filename_component(page ${src} NAME_WLE)
  string(REGEX MATCH "[0-9]$" section ${page})
  set(out ${PROJECT_BINARY_DIR}/man/${page})
  add_custom_command(OUTPUT ${out} ${out}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
    COMMAND ${SCDOC} < ${src} | awk -f ${PROJECT_SOURCE_DIR}/conf/man-tidy.awk > ${out}
    # scdoc's errors end the pipe with an empty page: fail the build instead.
    COMMAND test -s ${out} && grep -q "^[.]SH NAME" ${out}
    # Installed compressed, without a time stamp (Debian policy 12.1).
    COMMAND gzip -9n -c ${out} > ${out}.gz
    DEPENDS ${src} ${PROJECT_SOURCE_DIR}/conf/man-tidy.awk ${M_DEPENDS}
    COMMENT "man page ${page}" VERBATIM)
  add_custom_target(man-${page} DEPENDS ${out})
  add_dependencies(man man-${page})
  install(FILES ${out}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section} COMPONENT ${component})
endfunction()

# Debian wants a copyright file and a (native package) changelog in every
# package's doc directory, the changelog compressed without a timestamp.
function(tm_add_debian_doc package component)
  set(doc ${CMAKE_INSTALL_DATADIR}/doc/${package})
  install(FILES ${PROJECT_SOURCE_DIR}/conf/debian/copyright DESTINATION ${doc}
          COMPONENT ${component})
  set(gz ${PROJECT_BINARY_DIR}/debian/${package}/changelog.gz)
  add_custom_command(OUTPUT ${gz}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/debian/${package}
    COMMAND sed "s/@PACKAGE@/${package}/" ${PROJECT_SOURCE_DIR}/conf/debian/changelog
            | gzip -9n > ${gz}
    DEPENDS ${PROJECT_SOURCE_DIR}/conf/debian/changelog VERBATIM)
  add_custom_target(changelog-${package} ALL DEPENDS ${gz})
  install(FILES ${gz} DESTINATION ${doc} COMPONENT ${component})
endfunction()
tm_add_debian_doc(tokenmint tool)
tm_add_debian_doc(tokenmint-pkcs11 pkcs11)
tm_add_debian_doc(tokenmint-provider provider)
