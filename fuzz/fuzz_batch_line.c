/*
 * fuzz_batch_line.c - libFuzzer target for the batch-line parser (inf_batch_line_parse) and
 * the output line built from what it returns.
 *
 * On success: custom_id is 1..INF_BATCH_MAX_CUSTOM_ID bytes without NUL, the endpoint is one
 * of the three, the body is a JSON object text, and the output line made for the request reads
 * back the same custom_id. On failure: INF_EPARSE (or INF_ENOMEM) with a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "inferno/jobs.h"

#define FUZZ_MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        size = FUZZ_MAX_INPUT;
    struct inf_batch_line l;
    struct inf_error err = {0};
    inf_status rc = inf_batch_line_parse((const char *)data, size, &l, &err);
    if (rc != INF_OK) {
        CHECK(rc == INF_EPARSE || rc == INF_ENOMEM);
        CHECK(err.code == rc && err.msg[0] != '\0');
        CHECK(l.custom_id == NULL && l.body == NULL);
        return 0;
    }
    size_t n = strlen(l.custom_id);
    CHECK(n >= 1 && n <= INF_BATCH_MAX_CUSTOM_ID);
    CHECK((unsigned)l.endpoint <= INF_BATCH_EMBEDDINGS);
    enum inf_batch_endpoint ep;
    CHECK(inf_batch_endpoint_parse(inf_batch_endpoint_path(l.endpoint), &ep) && ep == l.endpoint);
    CHECK(l.body && l.body[0] == '{' && strlen(l.body) == l.body_len);
    CHECK(l.model != NULL);
    char *out = inf_batch_output_line("batch_fuzz", l.custom_id, 200, "r", l.body, NULL, NULL);
    CHECK(out != NULL);
    char *cid = inf_batch_output_custom_id(out, strlen(out));
    CHECK(cid && strcmp(cid, l.custom_id) == 0);
    free(cid);
    free(out);
    inf_batch_line_release(&l);
    return 0;
}
