# `cmake --install`: the public headers, libkeel.a and libkeel.so, the CMake
# package (keel::keel, keel::keel_static, keel::keel_shared, keel::sim) with
# its version file, and keel.pc / keel-sim.pc for pkg-config.
#
# Components: `keel` (the library, headers and package files) and `sim`
# (the simulator: libkeel_sim.a, its headers under include/keel-sim and
# its targets). `cmake --install build` installs both;
# `cmake --install build --component keel` the library alone.
include(CMakePackageConfigHelpers)

set(KEEL_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/keel")

install(TARGETS keel_static keel_shared
        EXPORT keelTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT keel
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT keel
                NAMELINK_COMPONENT keel
        INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/keel"
                  "${KEEL_GENERATED_DIR}/include/keel"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT keel
        FILES_MATCHING PATTERN "*.h")
install(EXPORT keelTargets NAMESPACE keel:: DESTINATION "${KEEL_CMAKE_DIR}" COMPONENT keel)

# While the major version is 0, a minor version may break the API
# (CHANGELOG.md), so find_package(keel 0.1) accepts 0.1.x only.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(KEEL_COMPATIBILITY SameMinorVersion)
else()
  set(KEEL_COMPATIBILITY SameMajorVersion)
endif()
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/keelConfig.cmake.in"
                              "${PROJECT_BINARY_DIR}/package/keelConfig.cmake"
                              INSTALL_DESTINATION "${KEEL_CMAKE_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/package/keelConfigVersion.cmake"
                                  VERSION "${PROJECT_VERSION}"
                                  COMPATIBILITY ${KEEL_COMPATIBILITY})
install(FILES "${PROJECT_BINARY_DIR}/package/keelConfig.cmake"
              "${PROJECT_BINARY_DIR}/package/keelConfigVersion.cmake"
        DESTINATION "${KEEL_CMAKE_DIR}" COMPONENT keel)

# pkg-config files find the prefix relative to themselves, so an installed
# tree can move (cmake --install --prefix elsewhere works too).
file(RELATIVE_PATH KEEL_PC_PREFIX_FROM_PCDIR "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" KEEL_PC_PREFIX_FROM_PCDIR "${KEEL_PC_PREFIX_FROM_PCDIR}")
configure_file("${PROJECT_SOURCE_DIR}/cmake/keel.pc.in" "${PROJECT_BINARY_DIR}/package/keel.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/package/keel.pc"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig" COMPONENT keel)

install(FILES "${PROJECT_SOURCE_DIR}/LICENSE" "${PROJECT_SOURCE_DIR}/README.md"
              "${PROJECT_SOURCE_DIR}/CHANGELOG.md"
        DESTINATION "${CMAKE_INSTALL_DOCDIR}" COMPONENT keel)

if(TARGET keel_sim)
  install(TARGETS keel_sim EXPORT keelSimTargets
          ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT sim)
  # The simulator's headers include the core's ("core/message.h"), so both
  # go under include/keel-sim, which only keel::sim puts on the path.
  install(DIRECTORY "${PROJECT_SOURCE_DIR}/src/sim" "${PROJECT_SOURCE_DIR}/src/core"
          DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/keel-sim" COMPONENT sim
          FILES_MATCHING PATTERN "*.h")
  install(EXPORT keelSimTargets NAMESPACE keel:: DESTINATION "${KEEL_CMAKE_DIR}" COMPONENT sim)
  configure_file("${PROJECT_SOURCE_DIR}/cmake/keel-sim.pc.in"
                 "${PROJECT_BINARY_DIR}/package/keel-sim.pc" @ONLY)
  install(FILES "${PROJECT_BINARY_DIR}/package/keel-sim.pc"
          DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig" COMPONENT sim)
endif()
