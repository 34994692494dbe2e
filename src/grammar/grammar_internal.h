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

/*
 * One character of JSON string content, as GBNF: a raw code point other than `"`, `\` and the
 * controls, or an escape; a \uXXXX escape is one code point (a surrogate pair counts once, lone
 * surrogates are refused), so a repetition of it counts characters as JSON Schema does.
 */
#define INF__JSON_CHAR                                                                             \
    "[^\\x22\\x5C\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" ([0-9a-cA-C] [0-9a-fA-F]{3} | "   \
    "[dD] "                                                                                        \
    "[0-7] [0-9a-fA-F]{2} | [eEfF] [0-9a-fA-F]{3}) | \"u\" [dD] [89abAB] [0-9a-fA-F]{2} "          \
    "\"\\\\u\" "                                                                                   \
    "[dD] [c-fC-F] [0-9a-fA-F]{2})"

/*
 * inf__regex_to_gbnf with json_string true writes the language as the content of a JSON string
 * (json_schema.c's `pattern`): characters JSON must escape appear as their escape sequences.
 */
inf_status inf__regex_to_gbnf_json(const char *re, size_t len, const char *rule_name, bool anchored,
                                   bool json_string, struct inf__gstr *out, struct inf_error *err);

/* ---- the compiled grammar (gbnf.c) ---------------------------------------------------------
 * Byte level: every character class of the GBNF text became byte sets (UTF-8 sequences split
 * into per-byte ranges), every repetition and group a rule. An alternative is a run of elements
 * in elems[] closed by an END element; a rule is a list of alternative start positions. */
#include <stdint.h>

enum inf__gel_kind { INF__GEL_END = 0, INF__GEL_BYTES = 1, INF__GEL_REF = 2 };

struct inf__gel {
    uint32_t kind; /* enum inf__gel_kind */
    uint32_t arg;  /* BYTES: index into sets[]; REF: rule index */
};

struct inf__byteset {
    uint64_t w[4];
};

static inline bool inf__byteset_has(const struct inf__byteset *s, unsigned b)
{
    return (s->w[b >> 6] >> (b & 63)) & 1u;
}

struct inf_grammar {
    struct inf__gel *elems;
    uint32_t n_elems;
    struct inf__byteset *sets;
    uint32_t n_sets;
    uint32_t *alts; /* start positions in elems, rule r's are alts[rule_alt[r] .. rule_alt[r+1]) */
    uint32_t *rule_alt;
    uint32_t n_rules;
    uint32_t root;
    char *source; /* the GBNF text */
    /* Structure, for sharing work between grammars: a rule's hash covers its alternatives'
       elements (byte sets by content, references by the target's hash), 0 when the rule can
       reach itself (no such hash). Per element: its rule and its offset from the rule's first
       element. */
    uint64_t *rule_hash;
    uint32_t *el_rule, *el_off;
    /* Counted repetitions: X{0,n} is a chain of rules R_i ::= X R_(i-1) | "" (R_1 ::= X | ""),
       made one after another. chain_i[r] is i for such a link whose X consumes at least one
       byte (0 otherwise); R_j of the same chain is rule r - (i - j). Two links i, j >= D
       accept the same strings of up to D bytes, which the matcher uses to share the masks of
       long bounds (D: the longest token; see chain_len). NULL when the grammar has no chain. */
    uint32_t *chain_i;
    /* Per link: the fewest bytes its X matches (at least 1): the links from
       (D - 1) / chain_len + 2 on accept the same strings of up to D bytes (matcher.c
       canon_pos). */
    uint32_t *chain_len;
    /* Per link: bytes every string of its X holds (an array item's comma, its braces), so
       that a token holds each at least i - 1 times to tell link i from a longer one
       (matcher.c chain_links). */
    struct inf__byteset *chain_must;
};

/* The hash mixer of the structure hashes (gbnf.c rule hashes, matcher.c cut signatures). */
static inline uint64_t inf__mix64(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xFF51AFD7ED558CCDull;
    return h ^ (h >> 33);
}

/* Tests: the table sizes past which a matcher rebuilds its tables from the current state
   (defaults 4M nodes, 1M states, 64M pool entries) and the cached cut-state masks (2..256,
   default 256). Not thread-safe; call before matching. */
void inf__matcher_set_limits(size_t nodes, size_t states, size_t pool, size_t parts);

#endif
