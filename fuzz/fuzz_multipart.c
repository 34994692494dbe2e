/*
 * fuzz_multipart.c - libFuzzer target for multipart/form-data bodies (POST /v1/files).
 *
 * The first line of the input is the Content-Type, the rest the body. Every part returned must
 * lie inside the body, with its name (and filename) inside it too, in order.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "server/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *d = (const char *)data;
    const char *nl = memchr(d, '\n', size);
    if (!nl || nl - d > 200)
        return 0;
    char ct[201];
    memcpy(ct, d, (size_t)(nl - d));
    ct[nl - d] = '\0';
    char boundary[80];
    if (!multipart_boundary(ct, boundary, sizeof(boundary)))
        return 0;
    CHECK(strlen(boundary) >= 1 && strlen(boundary) <= 70);
    const char *body = nl + 1, *end = d + size;
    struct multipart_part parts[8];
    size_t n = 0;
    char err[128];
    if (!multipart_parse(boundary, body, (size_t)(end - body), parts, 8, &n, err, sizeof(err))) {
        CHECK(err[0] != '\0');
        return 0;
    }
    CHECK(n <= 8);
    const char *prev = body;
    for (size_t i = 0; i < n; i++) {
        CHECK(parts[i].data >= prev && parts[i].data + parts[i].len <= end);
        CHECK(parts[i].name >= body && parts[i].name + parts[i].name_len <= parts[i].data);
        if (parts[i].has_filename)
            CHECK(parts[i].filename >= body &&
                  parts[i].filename + parts[i].filename_len <= parts[i].data);
        prev = parts[i].data + parts[i].len;
    }
    return 0;
}
