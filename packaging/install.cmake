# packaging/install.cmake - the install step of cworker@.service and cworker.env, run by
# `cmake --install` (install(CODE) in the top CMakeLists.txt sets CQ_SOURCE_DIR,
# CQ_BINARY_DIR, CQ_INSTALL_BINDIR, CQ_INSTALL_SYSCONFDIR and CQ_SYSTEMD_UNITDIR). It runs at
# install time because the paths written into the unit depend on the prefix installed to,
# which `cmake --install --prefix DIR` may change after configuring:
#   prefix /usr (a package):   /usr/bin/cworker, /etc/cq/cworker.env, /usr/lib/systemd/system
#   prefix DIR (anything else): DIR/bin/cworker, DIR/etc/cq/cworker.env, DIR/lib/systemd/system
# The configuration directory follows GNUInstallDirs' rule for CMAKE_INSTALL_FULL_SYSCONFDIR
# (/usr and / -> /etc, /opt/X -> /etc/opt/X); an absolute CMAKE_INSTALL_SYSCONFDIR or
# CQ_SYSTEMD_UNITDIR is used as it is. DESTDIR is honoured (file(INSTALL) adds it).

set(_prefix "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/+$" "" _prefix "${_prefix}")   # "/usr/" -> "/usr", "/" -> ""

function(cq_under_prefix rel out)
  if(IS_ABSOLUTE "${rel}")
    set(${out} "${rel}" PARENT_SCOPE)
  else()
    set(${out} "${_prefix}/${rel}" PARENT_SCOPE)
  endif()
endfunction()

cq_under_prefix("${CQ_INSTALL_BINDIR}" CQ_BINDIR)
cq_under_prefix("${CQ_SYSTEMD_UNITDIR}" _unitdir)
if(IS_ABSOLUTE "${CQ_INSTALL_SYSCONFDIR}")
  set(_etc "${CQ_INSTALL_SYSCONFDIR}")
elseif(_prefix STREQUAL "" OR _prefix STREQUAL "/usr")
  set(_etc "/${CQ_INSTALL_SYSCONFDIR}")
elseif(_prefix MATCHES "^/opt/")
  set(_etc "/${CQ_INSTALL_SYSCONFDIR}${_prefix}")
else()
  set(_etc "${_prefix}/${CQ_INSTALL_SYSCONFDIR}")
endif()
set(CQ_ENV_FILE "${_etc}/cq/cworker.env")

# The unit, with this prefix's paths; made in a directory of its own for each prefix and
# DESTDIR, so that two installs from one build at once cannot swap their units.
string(MD5 _dir "$ENV{DESTDIR}|${_prefix}|${_unitdir}|${CQ_ENV_FILE}")
set(_unit "${CQ_BINARY_DIR}/packaging/install/${_dir}/cworker@.service")
configure_file("${CQ_SOURCE_DIR}/packaging/cworker@.service.in" "${_unit}" @ONLY)
file(INSTALL "${_unit}" DESTINATION "${_unitdir}"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# The environment file is configuration: once it is there and edited, an install leaves it
# alone (a package's upgrades are dpkg's conffile handling). Root alone reads it: it may hold
# a Redis password, and systemd reads it as root.
set(_env "$ENV{DESTDIR}${CQ_ENV_FILE}")
if(EXISTS "${_env}")
  file(SHA256 "${_env}" _have)
  file(SHA256 "${CQ_SOURCE_DIR}/packaging/cworker.env" _new)
  if(NOT _have STREQUAL _new)
    message(STATUS "Keeping: ${_env} (edited; the default is ${CQ_SOURCE_DIR}/packaging/cworker.env)")
    list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${_env}")
    return()
  endif()
endif()
file(INSTALL "${CQ_SOURCE_DIR}/packaging/cworker.env" DESTINATION "${_etc}/cq"
     PERMISSIONS OWNER_READ OWNER_WRITE)
