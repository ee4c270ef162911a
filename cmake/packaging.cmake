# What `eco` installs, and the Debian package CPack makes of it (`make deb`).
#
#   /usr/bin/eco
#   /usr/share/man/man1/eco{,-serve,-send,-ping,-bench}.1.gz, man5/eco.toml.5.gz
#   /usr/share/bash-completion/completions/eco, /usr/share/zsh/vendor-completions/_eco
#   /lib/systemd/system/eco.socket, eco.service   (deploy/systemd, with /usr/bin/eco and
#                                                 the settings in /etc/eco/eco.toml)
#   /etc/eco/eco.toml                             (deploy/eco.toml, a conffile)
#   /usr/share/eco/grafana/, /usr/share/eco/prometheus/   dashboard and alert rules
#   /usr/share/doc/eco/   copyright, changelog.gz (Debian), CHANGELOG.md.gz
#
# The man pages and completions are written by the eco just built (`eco __man`,
# `eco __completion`) from its CLI11 definitions, so they say what its --help says.

set(ECO_GEN ${PROJECT_BINARY_DIR}/generated)
file(MAKE_DIRECTORY ${ECO_GEN}/man ${ECO_GEN}/completion ${ECO_GEN}/systemd)

# ---- the build's version (cmake/version.cmake), refreshed at every build ----
find_package(Git QUIET)
add_custom_target(eco_version
  COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -DPROJECT_VERSION=${PROJECT_VERSION}
          -DGIT=${GIT_EXECUTABLE} -DOUT_CPP=${ECO_GEN}/build_version.cpp
          -DOUT_DEB_VERSION=${ECO_GEN}/deb_version -DOUT_CHANGES=${ECO_GEN}/changelog
          -P ${PROJECT_SOURCE_DIR}/cmake/version.cmake
  BYPRODUCTS ${ECO_GEN}/build_version.cpp ${ECO_GEN}/deb_version ${ECO_GEN}/changelog
  COMMENT "Reading the version from git" VERBATIM)
target_sources(eco_core PRIVATE ${ECO_GEN}/build_version.cpp)
add_dependencies(eco_core eco_version)

# ---- man pages and completions, from the eco binary ----
set(ECO_MAN_PAGES eco eco-serve eco-send eco-ping eco-bench eco.toml)
set(doc_files)
foreach(page ${ECO_MAN_PAGES})
  set(section 1)
  if(page STREQUAL "eco.toml")
    set(section 5)
  endif()
  set(out ${ECO_GEN}/man/${page}.${section})
  add_custom_command(OUTPUT ${out} ${out}.gz
    COMMAND eco __man ${page} -o ${out}
    COMMAND gzip -9nkf ${out}
    DEPENDS eco VERBATIM)
  list(APPEND doc_files ${out} ${out}.gz)
  install(FILES ${out}.gz DESTINATION share/man/man${section})
endforeach()
foreach(shell bash zsh)
  set(out ${ECO_GEN}/completion/eco.${shell})
  add_custom_command(OUTPUT ${out} COMMAND eco __completion ${shell} -o ${out} DEPENDS eco VERBATIM)
  list(APPEND doc_files ${out})
endforeach()
add_custom_command(OUTPUT ${ECO_GEN}/changelog.gz ${ECO_GEN}/CHANGELOG.md.gz
  COMMAND gzip -9nkf ${ECO_GEN}/changelog
  COMMAND gzip -9n -c ${PROJECT_SOURCE_DIR}/CHANGELOG.md > ${ECO_GEN}/CHANGELOG.md.gz
  DEPENDS ${ECO_GEN}/changelog ${PROJECT_SOURCE_DIR}/CHANGELOG.md eco_version)
list(APPEND doc_files ${ECO_GEN}/changelog.gz ${ECO_GEN}/CHANGELOG.md.gz)
add_custom_target(eco_docs ALL DEPENDS ${doc_files})

# ---- the packaged systemd units: deploy/systemd's, with the package's paths ----
file(READ ${PROJECT_SOURCE_DIR}/deploy/systemd/eco.service unit)
string(REGEX REPLACE "\nExecStart=[^\n]*" "\nExecStart=/usr/bin/eco serve --config /etc/eco/eco.toml" unit "${unit}")
file(WRITE ${ECO_GEN}/systemd/eco.service.new "${unit}")
configure_file(${ECO_GEN}/systemd/eco.service.new ${ECO_GEN}/systemd/eco.service COPYONLY)
configure_file(${PROJECT_SOURCE_DIR}/deploy/systemd/eco.socket ${ECO_GEN}/systemd/eco.socket COPYONLY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/deploy/systemd/eco.service)

# ---- install rules ----
install(TARGETS eco RUNTIME DESTINATION bin)
install(FILES ${ECO_GEN}/completion/eco.bash DESTINATION share/bash-completion/completions RENAME eco)
install(FILES ${ECO_GEN}/completion/eco.zsh DESTINATION share/zsh/vendor-completions RENAME _eco)
install(FILES ${ECO_GEN}/systemd/eco.socket ${ECO_GEN}/systemd/eco.service DESTINATION /lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/eco.toml DESTINATION /etc/eco)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/deploy/grafana/ DESTINATION share/eco/grafana FILES_MATCHING PATTERN "*.json")
install(FILES ${PROJECT_SOURCE_DIR}/deploy/prometheus/eco-alerts.yml DESTINATION share/eco/prometheus)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/debian/copyright ${ECO_GEN}/changelog.gz ${ECO_GEN}/CHANGELOG.md.gz
        DESTINATION share/doc/eco)

# ---- CPack: the .deb ----
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME eco)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES TRUE)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
set(CPACK_PACKAGE_CONTACT "eco developers <eco-developers@example.org>")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "TCP and UDP echo server, verifying client, latency probe and load generator")
# The extended description (CPack puts the summary above it, and a space before each line).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "eco serve is an RFC 862 echo server for TCP and UDP over IPv4 and IPv6, with
io_uring, epoll and in-kernel (eBPF sockmap) engines, limits, access lists,
PROXY protocol, Prometheus metrics and systemd socket activation.
eco send verifies every echoed byte, eco ping measures round trips and
eco bench is a load generator with latency percentiles.")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends: from dpkg-shlibdeps, not by hand
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles
    ${PROJECT_SOURCE_DIR}/deploy/debian/postinst ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
    ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
# The version is the build's (generated/deb_version), read when cpack runs.
set(CPACK_ECO_DEB_VERSION_FILE ${ECO_GEN}/deb_version)
set(CPACK_PROJECT_CONFIG_FILE ${PROJECT_SOURCE_DIR}/cmake/cpack_version.cmake)
include(CPack)
