# Read by cpack (CPACK_PROJECT_CONFIG_FILE): the package takes the version of the build
# it packs, which cmake/version.cmake wrote at build time, not the one of configure time.
if(NOT EXISTS "${CPACK_ECO_DEB_VERSION_FILE}")
  message(FATAL_ERROR "${CPACK_ECO_DEB_VERSION_FILE} is missing: build eco before packaging it")
endif()
file(READ "${CPACK_ECO_DEB_VERSION_FILE}" version)
string(STRIP "${version}" version)
set(CPACK_PACKAGE_VERSION "${version}")
set(CPACK_DEBIAN_PACKAGE_VERSION "${version}")
