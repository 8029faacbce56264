/* proto_openapi.c - access to the OpenAPI document that proto/openapi.cmake embeds at configure time. */
#include "proto_openapi.h"

/* Defined in the generated <build>/generated/proto_openapi_data.c. */
extern const char proto_openapi_json_data[];
extern const size_t proto_openapi_json_size;

const char *proto_openapi_json(void)
{
    return proto_openapi_json_data;
}

size_t proto_openapi_json_len(void)
{
    return proto_openapi_json_size;
}
