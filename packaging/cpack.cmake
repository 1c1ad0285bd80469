# packaging/cpack.cmake - CPACK_PROJECT_CONFIG_FILE: checks made when cpack runs.
if(CPACK_GENERATOR STREQUAL "DEB" AND NOT CPACK_PACKAGING_INSTALL_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR "cq: a .deb installs to /usr, its unit names /usr/bin/cworker and "
          "/etc/cq/cworker.env: configure with -DCMAKE_INSTALL_PREFIX=/usr (this build has "
          "'${CPACK_PACKAGING_INSTALL_PREFIX}')")
endif()
