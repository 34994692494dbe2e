/*
 * grammar/grammar_internal.h - what the grammar folder's files share. The JSON Schema and regex
 * compilers translate into GBNF text; grammar.c parses GBNF into rules and runs the matcher.
 */
#ifndef INFERNO_GRAMMAR_INTERNAL_H
#define INFERNO_GRAMMAR_INTERNAL_H

#include <stddef.h>

#include "inferno/grammar.h"

/* A growable NUL-terminated string (core/buf.h inf__append underneath). */
struct inf__gstr {
    char *p;
    size_t len, cap;
};

/*
 * Translate a JSON Schema into GBNF rules appended to out; the start rule is named "root".
 * Unsupported keywords: INF_EUNSUPPORTED naming the keyword and its JSON pointer. Bad JSON:
 * INF_EPARSE with line/column. Limits (source size, $ref depth, rule count): INF_ELIMIT.
 */
inf_status inf__json_schema_to_gbnf(const char *json, size_t len,
                                    const struct inf_json_schema_opts *opts, struct inf__gstr *out,
                                    struct inf_error *err);

/*
 * Translate a regular expression (ECMA-262 subset, see inf_grammar_from_regex) into GBNF rules
 * appended to out; the rule accepting exactly the regex's language is named rule_name, and
 * helper rules are prefixed with it ("<rule_name>-<n>"). When anchored is false (JSON Schema's
 * `pattern`, which matches anywhere), unanchored ends accept any characters before / after.
 */
inf_status inf__regex_to_gbnf(const char *re, size_t len, const char *rule_name, bool anchored,
                              struct inf__gstr *out, struct inf_error *err);

#endif
