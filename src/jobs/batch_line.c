/*
 * batch_line.c - the batch file format (OpenAI's): input lines and output lines
 * (inferno/jobs.h). Input is untrusted: every line is bounded and checked before use.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/jobs.h"

static const char *const endpoint_paths[] = {
    [INF_BATCH_CHAT] = "/v1/chat/completions",
    [INF_BATCH_COMPLETIONS] = "/v1/completions",
    [INF_BATCH_EMBEDDINGS] = "/v1/embeddings",
};

const char *inf_batch_endpoint_path(enum inf_batch_endpoint ep)
{
    return (unsigned)ep < 3 ? endpoint_paths[ep] : "";
}

bool inf_batch_endpoint_parse(const char *path, enum inf_batch_endpoint *out)
{
    for (int i = 0; i < 3; i++)
        if (path && strcmp(path, endpoint_paths[i]) == 0) {
            *out = (enum inf_batch_endpoint)i;
            return true;
        }
    return false;
}

static bool utf8_ok(const char *s, size_t n)
{
    /* jansson checks the encoding of the text it parses; strings with NUL are refused below */
    return memchr(s, 0, n) == NULL;
}

inf_status inf_batch_line_parse(const char *line, size_t len, struct inf_batch_line *out,
                                struct inf_error *err)
{
    memset(out, 0, sizeof(*out));
    if (len && line[len - 1] == '\r')
        len--;
    if (len > INF_BATCH_MAX_LINE)
        return inf_error_set(err, INF_EPARSE, "the line is longer than %u bytes",
                             INF_BATCH_MAX_LINE);
    if (!utf8_ok(line, len))
        return inf_error_set(err, INF_EPARSE, "the line contains a NUL byte");
    json_error_t je;
    json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return inf_error_set(err, INF_EPARSE, "not valid JSON: %s (column %d)", je.text, je.column);
    inf_status st = INF_EPARSE;
    if (!json_is_object(j)) {
        inf_error_set(err, st, "the line is not a JSON object");
        goto out;
    }
    json_t *cid = json_object_get(j, "custom_id"), *m = json_object_get(j, "method");
    json_t *url = json_object_get(j, "url"), *body = json_object_get(j, "body");
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        if (strcmp(k, "custom_id") != 0 && strcmp(k, "method") != 0 && strcmp(k, "url") != 0 &&
            strcmp(k, "body") != 0) {
            inf_error_set(err, st,
                          "unknown field '%.64s' (a line has custom_id, method, url, body)", k);
            goto out;
        }
    }
    if (!json_is_string(cid)) {
        inf_error_set(err, st, "'custom_id' is required (a string)");
        goto out;
    }
    size_t n_cid = json_string_length(cid);
    if (n_cid == 0 || n_cid > INF_BATCH_MAX_CUSTOM_ID || memchr(json_string_value(cid), 0, n_cid)) {
        inf_error_set(err, st, "'custom_id' must be 1 to %d bytes without NUL",
                      INF_BATCH_MAX_CUSTOM_ID);
        goto out;
    }
    if (!json_is_string(m) || strcmp(json_string_value(m), "POST") != 0) {
        inf_error_set(err, st, "'method' must be \"POST\"");
        goto out;
    }
    if (!json_is_string(url)) {
        inf_error_set(err, st, "'url' is required (a string)");
        goto out;
    }
    if (!inf_batch_endpoint_parse(json_string_value(url), &out->endpoint)) {
        inf_error_set(err, st,
                      "unknown url '%.100s': one of /v1/chat/completions, /v1/completions, "
                      "/v1/embeddings",
                      json_string_value(url));
        goto out;
    }
    if (!json_is_object(body)) {
        inf_error_set(err, st, "'body' is required (a JSON object)");
        goto out;
    }
    json_t *model = json_object_get(body, "model");
    out->custom_id = strndup(json_string_value(cid), n_cid);
    out->body = json_dumps(body, JSON_COMPACT);
    out->model = strdup(json_is_string(model) ? json_string_value(model) : "");
    if (!out->custom_id || !out->body || !out->model) {
        inf_batch_line_release(out);
        st = inf_error_set(err, INF_ENOMEM, "out of memory");
        goto out;
    }
    out->body_len = strlen(out->body);
    st = INF_OK;
out:
    json_decref(j);
    return st;
}

void inf_batch_line_release(struct inf_batch_line *l)
{
    if (!l)
        return;
    free(l->custom_id);
    free(l->body);
    free(l->model);
    memset(l, 0, sizeof(*l));
}

/* "batch_req_" + 24 hex digits of SHA-256(batch_id NUL custom_id). */
static void line_id(const char *batch_id, const char *custom_id, char out[40])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[32];
    unsigned int n = 32;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(md, batch_id, strlen(batch_id) + 1) == 1 &&
              EVP_DigestUpdate(md, custom_id, strlen(custom_id)) == 1 &&
              EVP_DigestFinal_ex(md, d, &n) == 1;
    EVP_MD_CTX_free(md);
    memcpy(out, "batch_req_", 10);
    for (int i = 0; i < 12; i++) {
        out[10 + 2 * i] = ok ? hex[d[i] >> 4] : '0';
        out[11 + 2 * i] = ok ? hex[d[i] & 15] : '0';
    }
    out[34] = '\0';
}

char *inf_batch_output_line(const char *batch_id, const char *custom_id, int status_code,
                            const char *request_id, const char *body, const char *error_code,
                            const char *error_message)
{
    char id[40];
    line_id(batch_id, custom_id, id);
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "custom_id", json_string(custom_id));
    if (body) {
        json_t *b = json_loads(body, 0, NULL);
        json_t *resp = json_object();
        json_object_set_new(resp, "status_code", json_integer(status_code));
        json_object_set_new(resp, "request_id", json_string(request_id ? request_id : ""));
        json_object_set_new(resp, "body", b ? b : json_string(body));
        json_object_set_new(o, "response", resp);
        json_object_set_new(o, "error", json_null());
    } else {
        json_t *e = json_object();
        json_object_set_new(e, "code", json_string(error_code ? error_code : "error"));
        json_object_set_new(e, "message", json_string(error_message ? error_message : ""));
        json_object_set_new(o, "response", json_null());
        json_object_set_new(o, "error", e);
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

char *inf_batch_output_custom_id(const char *line, size_t len)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    json_t *c = json_object_get(j, "custom_id");
    char *s = json_is_string(c) ? strdup(json_string_value(c)) : NULL;
    json_decref(j);
    return s;
}
