/*
 * grammar/grammar.c - the public entry points that compile JSON Schema and regular expressions:
 * each is translated to GBNF text (json_schema.c, regex.c), which gbnf.c compiles.
 */
#include <stdlib.h>

#include "grammar/grammar_internal.h"

static inf_status from_gbnf_text(struct inf__gstr *s, struct inf_grammar **out,
                                 struct inf_error *err)
{
    inf_status rc = inf_grammar_from_gbnf(s->p ? s->p : "", s->len, "root", out, err);
    free(s->p);
    return rc;
}

inf_status inf_grammar_from_json_schema(const char *json, size_t len,
                                        const struct inf_json_schema_opts *opts,
                                        struct inf_grammar **out, struct inf_error *err)
{
    static const struct inf_json_schema_opts defaults = {0};
    struct inf__gstr s = {0};
    *out = NULL;
    inf_status rc = inf__json_schema_to_gbnf(json, len, opts ? opts : &defaults, &s, err);
    if (rc != INF_OK) {
        free(s.p);
        return rc;
    }
    return from_gbnf_text(&s, out, err);
}

inf_status inf_grammar_from_regex(const char *re, size_t len, struct inf_grammar **out,
                                  struct inf_error *err)
{
    struct inf__gstr s = {0};
    *out = NULL;
    inf_status rc = inf__regex_to_gbnf(re, len, "root", true, &s, err);
    if (rc != INF_OK) {
        free(s.p);
        return rc;
    }
    return from_gbnf_text(&s, out, err);
}
