/* proto_openapi.h - the API's OpenAPI 3.1 document (proto/openapi.json), built into the binary. */
#ifndef PROTO_OPENAPI_H
#define PROTO_OPENAPI_H

#include <stddef.h>

/* The JSON text of proto/openapi.json as it was when CMake configured the build, NUL-terminated.
 * Borrowed, static, immutable: serve it as is. Thread-safe. */
const char *proto_openapi_json(void);

/* Its length in bytes (without the NUL). */
size_t proto_openapi_json_len(void);

#endif
