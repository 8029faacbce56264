# `make install` / `cmake --install`: the binary, the systemd units, the default configuration (every
# setting commented out with its default) and the man page. Honours DESTDIR and --prefix; packages
# configure with -DCMAKE_INSTALL_PREFIX=/usr. The configuration goes to /etc/visiond whatever the
# prefix, since that is where `visiond serve` looks (SRV_CONFIG_DEFAULT_PATH).
include(GNUInstallDirs)
set(VISIOND_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "systemd unit directory, relative to the prefix (or absolute)")

install(TARGETS visiond RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The unit's ExecStart names the installed binary, so it is written at install time, when the prefix
# (which --prefix may change) is known.
install(CODE "
  set(VISIOND_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  configure_file(\"${CMAKE_SOURCE_DIR}/systemd/visiond.service.in\"
                 \"${CMAKE_BINARY_DIR}/systemd/visiond.service\" @ONLY)
")
install(FILES ${CMAKE_BINARY_DIR}/systemd/visiond.service ${CMAKE_SOURCE_DIR}/systemd/visiond.socket
        DESTINATION ${VISIOND_SYSTEMD_UNITDIR})
install(FILES ${CMAKE_SOURCE_DIR}/docs/visiond.conf.example DESTINATION /etc/visiond
        RENAME visiond.conf PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${CMAKE_SOURCE_DIR}/docs/visiond.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
