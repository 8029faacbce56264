/* srv_version.h - the version visiond reports: "0.1.0 (commit 1a2b3c4d5e6f, Release build)", written at
 * build time by cmake/version.cmake (the commit gets "-dirty" when the tree had uncommitted changes). */
#ifndef SRV_VERSION_H
#define SRV_VERSION_H

extern const char srv_version[]; /* static, NUL-terminated */

#endif
