# cqConfig.cmake - find_package(cq) for a program or a plugin that uses libcq:
#
#   find_package(cq 0.2 REQUIRED)          # -DCMAKE_PREFIX_PATH=DIR for another prefix
#   target_link_libraries(app PRIVATE cq::cq)
#
# cq::cq is the shared libcq with <cq/cq.h>'s directory; the programs linked to it find it
# by RUNPATH when it is not in a system directory (CMake sets it in the build tree; set
# INSTALL_RPATH for an installed program). The static libcq.a is linked through pkg-config
# (docs/EXTENDING.md), which names the libraries it needs.
include("${CMAKE_CURRENT_LIST_DIR}/cqTargets.cmake")
