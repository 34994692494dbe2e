/*
 * server/multipart.h - multipart/form-data bodies (file uploads, POST /v1/files): the boundary
 * from Content-Type, then the parts as views into the body (nothing copied). Internal to
 * src/server (and its fuzz target).
 */
#ifndef INFERNO_SERVER_MULTIPART_H
#define INFERNO_SERVER_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

struct multipart_part {
    const char *name; /* the form field's name [name_len] */
    size_t name_len;
    bool has_filename;
    const char *filename; /* [filename_len] */
    size_t filename_len;
    const char *data; /* [len] */
    size_t len;
};

/* The boundary of a "multipart/form-data; boundary=..." Content-Type (1 to 70 bytes). */
bool multipart_boundary(const char *content_type, char *out, size_t size);
/* Split body into at most max_parts parts; false with a message in err. */
bool multipart_parse(const char *boundary, const char *body, size_t len,
                     struct multipart_part *parts, size_t max_parts, size_t *n_parts, char *err,
                     size_t err_size);

#endif
