/*
 * fuzz_json_schema.c - libFuzzer target for the JSON Schema compiler.
 *
 * The first byte picks the options (whitespace, strict, any_order); the rest (capped at 64 KiB)
 * is the schema. A schema that translates must give GBNF that gbnf.c compiles (or that exceeds
 * a limit); a refusal must carry one of the documented codes and a "json schema: " message.
 * A document loader serves two fixed documents so remote $refs are exercised. The grammar then
 * matches the schema text itself, byte by byte, to exercise the matcher on it.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "grammar/grammar_internal.h"

#define FUZZ_MAX_INPUT (64u << 10)

static inf_status loader(void *ctx, const char *uri, char **json, size_t *len)
{
    (void)ctx;
    const char *doc = NULL;
    if (!strcmp(uri, "http://x/a.json"))
        doc = "{\"$defs\":{\"i\":{\"type\":\"integer\",\"minimum\":-3}},\"type\":\"string\"}";
    else if (!strcmp(uri, "http://x/b.json"))
        doc = "{\"$id\":\"http://x/b.json\",\"items\":{\"$ref\":\"a.json#/$defs/i\"}}";
    else if (!strcmp(uri, "http://x/bad.json"))
        doc = "{\"a\":";
    if (!doc)
        return INF_ENOTFOUND;
    *json = strdup(doc);
    *len = strlen(doc);
    return *json ? INF_OK : INF_ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct inf_json_schema_opts o = {0};
    struct inf__gstr g = {0};
    struct inf_error err = {0};
    inf_status rc;

    if (size < 1)
        return 0;
    o.whitespace = (data[0] & 3) == 0 ? 0 : (data[0] & 3) == 1 ? -1 : (int32_t)(data[0] & 3);
    o.strict = (data[0] >> 2) & 1;
    o.any_order = (data[0] >> 3) & 1;
    if ((data[0] >> 4) & 1) {
        o.load_document = loader;
    }
    data++, size--;
    if (size > FUZZ_MAX_INPUT)
        size = FUZZ_MAX_INPUT;
    rc = inf__json_schema_to_gbnf((const char *)data, size, &o, &g, &err);
    if (rc == INF_OK) {
        CHECK(g.p != NULL && strncmp(g.p, "root ::= ", 9) == 0);
        fuzz_check_gbnf(g.p, g.len, "root", data, size);
    } else {
        CHECK(rc == INF_EUNSUPPORTED || rc == INF_EPARSE || rc == INF_EINVAL || rc == INF_ELIMIT ||
              rc == INF_ENOTFOUND || rc == INF_ENOMEM);
        CHECK(err.code == rc);
        CHECK(strncmp(err.msg, "json schema: ", 13) == 0);
    }
    free(g.p);
    return 0;
}
