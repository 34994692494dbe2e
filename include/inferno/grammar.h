/*
 * inferno/grammar.h - constrained decoding: a grammar turned into the set of tokens allowed at
 * each generation step.
 *
 * A grammar is compiled once (from GBNF, JSON Schema or a regular expression) into an immutable
 * struct inf_grammar that any number of threads may share. A struct inf_grammar_vocab holds what
 * the matcher needs to know of a tokenizer (every token's bytes in a trie); build it once per
 * tokenizer and share it. A struct inf_matcher is the per-sequence state: ask it for the mask of
 * allowed tokens, sample, then commit the sampled token.
 *
 * The grammar works on bytes: a token is allowed when all of its bytes (as the tokenizer decodes
 * them: SPM's leading space, byte-fallback tokens and BPE's byte-level alphabet undone) can be
 * consumed, so a token may span grammar elements and a multi-byte character may be split across
 * tokens. End-of-generation tokens are allowed only where the grammar may end; control tokens
 * are never allowed otherwise.
 */
#ifndef INFERNO_GRAMMAR_H
#define INFERNO_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/sampling.h"
#include "inferno/status.h"
#include "inferno/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

struct inf_grammar;
struct inf_grammar_vocab;
struct inf_matcher;

/* Limits on what a grammar may be (checked at compile time; exceeding one is INF_ELIMIT). */
#define INF_GRAMMAR_MAX_SOURCE (8u << 20) /* bytes of GBNF, schema or regex text */
#define INF_GRAMMAR_MAX_RULES  200000     /* rules after expansion of repetitions */
#define INF_GRAMMAR_MAX_REPEAT 10000      /* the m/n of {m,n} */

/*
 * Compile llama.cpp's GBNF: `name ::= alternatives` rules, "literals" with \n \t \r \\ \" \xHH
 * \uHHHH \UHHHHHHHH escapes, [character classes] with ranges and ^, ".", ( groups ), * + ?
 * {m} {m,} {m,n}, # comments. root names the start rule ("root" when NULL). Errors
 * (INF_EPARSE with line and column; undefined rules; left recursion; limits) go to err.
 */
inf_status inf_grammar_from_gbnf(const char *text, size_t len, const char *root,
                                 struct inf_grammar **out, struct inf_error *err);

/* Options of the JSON Schema compiler (zero-initialise, then set what differs). */
struct inf_json_schema_opts {
    /* Free whitespace where JSON allows it: 0 = the default small bound (nothing, one space, or
       a newline and at most 20 spaces/tabs of indentation, so a model cannot loop on spaces),
       -1 = none (compact JSON), n > 0 = at most n bytes of any JSON whitespace. */
    int32_t whitespace;
    /* OpenAI's strict mode: every property in `properties` is required and
       additionalProperties is false unless the schema says otherwise. */
    bool strict;
    /* Property order: false keeps the order of `properties` (required and optional properties
       in schema order; optional ones may be left out). */
    bool any_order;
    /* Resolves a $ref to another document (an absolute URI without the fragment): put its JSON
       text (malloc'd) in *json / *len and return INF_OK, or INF_ENOTFOUND. NULL: such refs are
       refused with INF_EUNSUPPORTED naming the URI. */
    inf_status (*load_document)(void *ctx, const char *uri, char **json, size_t *len);
    void *load_ctx;
};

/*
 * Compile a JSON Schema (draft 2020-12 as used in practice) into a grammar of the JSON texts it
 * accepts. A keyword that cannot be enforced token by token is refused with INF_EUNSUPPORTED and
 * a message naming it (never silently ignored). json is the schema's JSON text; `true` and `{}`
 * accept any JSON value.
 */
inf_status inf_grammar_from_json_schema(const char *json, size_t len,
                                        const struct inf_json_schema_opts *opts,
                                        struct inf_grammar **out, struct inf_error *err);

/*
 * Compile a regular expression (the ECMA-262 subset JSON Schema `pattern` uses: literals,
 * escapes, classes including \d \w \s, ., groups, alternation, * + ? {m,n}; anchors ^ $ at the
 * ends only). The grammar accepts exactly the strings the whole regex matches.
 */
inf_status inf_grammar_from_regex(const char *re, size_t len, struct inf_grammar **out,
                                  struct inf_error *err);

void inf_grammar_free(struct inf_grammar *g);

/* The grammar as GBNF text (what a JSON Schema or regex compiled to). Borrowed; valid until the
   grammar is freed. */
const char *inf_grammar_gbnf(const struct inf_grammar *g);

/* The token bytes of tok arranged for mask computation. tok must outlive the vocab. */
inf_status inf_grammar_vocab_new(const struct inf_tokenizer *tok, struct inf_grammar_vocab **out,
                                 struct inf_error *err);
void inf_grammar_vocab_free(struct inf_grammar_vocab *v);
int32_t inf_grammar_vocab_size(const struct inf_grammar_vocab *v);

/* A matcher at the start of g. g and v must outlive it. v may be NULL for a matcher that is
   only fed bytes (inf_matcher_accept_bytes, inf_matcher_can_end). */
inf_status inf_matcher_new(const struct inf_grammar *g, const struct inf_grammar_vocab *v,
                           struct inf_matcher **out, struct inf_error *err);
void inf_matcher_free(struct inf_matcher *m);

/* Back to the start of the grammar. */
void inf_matcher_reset(struct inf_matcher *m);

/*
 * The allowed tokens for the next step: bit i of mask[i / 32] (1u << (i % 32)) is set when token
 * i may come next. mask has room for inf_grammar_vocab_size() bits rounded up to 32. When no
 * token at all is allowed (the grammar is complete and no end token exists) the mask is empty.
 */
void inf_matcher_mask(struct inf_matcher *m, uint32_t *mask);

/* Set logits[i] = -INFINITY for every token the grammar does not allow now. */
void inf_matcher_apply(struct inf_matcher *m, float *logits);

/*
 * Commit a token: false (state unchanged) when the grammar does not allow it. An end token is
 * accepted where the grammar may end and leaves the matcher done.
 */
bool inf_matcher_accept_token(struct inf_matcher *m, inf_token tok);

/* Commit raw bytes (tests, and text forced into the output): false, state unchanged, when the
   grammar does not allow all of them. */
bool inf_matcher_accept_bytes(struct inf_matcher *m, const char *bytes, size_t len);

/* Why the matcher stopped accepting anything ("" while it works): out of memory, or a grammar
   so ambiguous that one step reaches more than 65536 positions. A failed matcher allows no
   token. */
const char *inf_matcher_errmsg(const struct inf_matcher *m);

/* True when the text so far is a complete sentence of the grammar (an end token may come). */
bool inf_matcher_can_end(const struct inf_matcher *m);

/* True when nothing more may follow: an end token was committed, or the grammar allows no
   further byte. */
bool inf_matcher_is_done(const struct inf_matcher *m);

#ifdef __cplusplus
}
#endif

#endif /* INFERNO_GRAMMAR_H */
