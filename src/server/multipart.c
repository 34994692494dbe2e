/*
 * multipart.c - multipart/form-data bodies (RFC 7578) as file uploads send them (multipart.h).
 * The body is untrusted: every search is bounded by the bytes left; nothing is copied.
 */
#include "server/multipart.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *find(const char *h, size_t n, const char *needle, size_t nn)
{
    if (nn == 0 || n < nn)
        return NULL;
    for (size_t i = 0; i + nn <= n; i++) {
        const char *p = memchr(h + i, needle[0], n - nn + 1 - i);
        if (!p)
            return NULL;
        if (memcmp(p, needle, nn) == 0)
            return p;
        i = (size_t)(p - h);
    }
    return NULL;
}

/* The value of parameter name in a header value ("form-data; name=\"file\""), quoted or not. */
static bool param(const char *v, size_t n, const char *name, const char **out, size_t *out_len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && v[i - 1] != ';' && v[i - 1] != ' ' && v[i - 1] != '\t')
            continue;
        if (n - i <= nl || strncasecmp(v + i, name, nl) != 0 || v[i + nl] != '=')
            continue;
        const char *s = v + i + nl + 1, *end = v + n;
        if (s < end && *s == '"') {
            s++;
            const char *q = memchr(s, '"', (size_t)(end - s));
            if (!q)
                return false;
            *out = s;
            *out_len = (size_t)(q - s);
        } else {
            const char *e = s;
            while (e < end && *e != ';' && *e != ' ' && *e != '\t')
                e++;
            *out = s;
            *out_len = (size_t)(e - s);
        }
        return true;
    }
    return false;
}

bool multipart_boundary(const char *content_type, char *out, size_t size)
{
    if (!content_type)
        return false;
    while (*content_type == ' ')
        content_type++;
    static const char mt[] = "multipart/form-data";
    if (strncasecmp(content_type, mt, sizeof(mt) - 1) != 0)
        return false;
    const char *b;
    size_t n;
    if (!param(content_type, strlen(content_type), "boundary", &b, &n) || n == 0 || n > 70 ||
        n + 1 > size)
        return false;
    memcpy(out, b, n);
    out[n] = '\0';
    return true;
}

bool multipart_parse(const char *boundary, const char *body, size_t len,
                     struct multipart_part *parts, size_t max_parts, size_t *n_parts, char *err,
                     size_t err_size)
{
    char delim[80];
    int dl = snprintf(delim, sizeof(delim), "--%s", boundary);
    *n_parts = 0;
    if (dl <= 2 || (size_t)dl >= sizeof(delim)) {
        snprintf(err, err_size, "bad multipart boundary");
        return false;
    }
    const char *p = find(body, len, delim, (size_t)dl), *end = body + len;
    if (!p) {
        snprintf(err, err_size, "the body has no multipart boundary");
        return false;
    }
    p += dl;
    for (;;) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return true; /* the closing delimiter */
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            snprintf(err, err_size, "malformed multipart delimiter line");
            return false;
        }
        p += 2;
        /* headers, up to a blank line */
        const char *hend = find(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hend) {
            snprintf(err, err_size, "a multipart part has no end of headers");
            return false;
        }
        struct multipart_part part = {0};
        bool disposition = false;
        for (const char *h = p; h < hend + 2;) {
            const char *le = find(h, (size_t)(hend + 2 - h), "\r\n", 2);
            if (!le)
                break;
            size_t hl = (size_t)(le - h);
            static const char cd[] = "content-disposition:";
            if (hl > sizeof(cd) - 1 && strncasecmp(h, cd, sizeof(cd) - 1) == 0) {
                const char *v = h + sizeof(cd) - 1;
                size_t vn = hl - (sizeof(cd) - 1);
                disposition = true;
                if (!param(v, vn, "name", &part.name, &part.name_len)) {
                    snprintf(err, err_size, "a multipart part has no name");
                    return false;
                }
                part.has_filename = param(v, vn, "filename", &part.filename, &part.filename_len);
            }
            h = le + 2;
        }
        if (!disposition) {
            snprintf(err, err_size, "a multipart part has no Content-Disposition");
            return false;
        }
        const char *data = hend + 4;
        /* the data ends at CRLF + delimiter */
        char nd[84];
        int ndl = snprintf(nd, sizeof(nd), "\r\n%s", delim);
        const char *next = find(data, (size_t)(end - data), nd, (size_t)ndl);
        if (!next) {
            snprintf(err, err_size, "a multipart part is not terminated");
            return false;
        }
        part.data = data;
        part.len = (size_t)(next - data);
        if (*n_parts >= max_parts) {
            snprintf(err, err_size, "too many multipart parts (at most %zu)", max_parts);
            return false;
        }
        parts[(*n_parts)++] = part;
        p = next + ndl;
    }
}
