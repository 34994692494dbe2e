/* grammar/json_schema.c - placeholder until the JSON Schema compiler lands: says so plainly. */
#include "grammar/grammar_internal.h"

inf_status inf__json_schema_to_gbnf(const char *json, size_t len,
                                    const struct inf_json_schema_opts *opts, struct inf__gstr *out,
                                    struct inf_error *err)
{
    (void)json, (void)len, (void)opts, (void)out;
    return inf_error_set(err, INF_ENOTIMPL, "json schema: the compiler is not built yet");
}

inf_status inf__regex_to_gbnf(const char *re, size_t len, const char *rule_name, bool anchored,
                              struct inf__gstr *out, struct inf_error *err)
{
    (void)re, (void)len, (void)rule_name, (void)anchored, (void)out;
    return inf_error_set(err, INF_ENOTIMPL, "regex: the compiler is not built yet");
}
