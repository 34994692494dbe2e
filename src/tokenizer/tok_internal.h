/*
 * tokenizer/tok_internal.h - the tokenizer's private structures, shared by tok_*.c, vocab.c
 * and pretok.c.
 */
#ifndef INFERNO_TOKENIZER_TOK_INTERNAL_H
#define INFERNO_TOKENIZER_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/status.h"
#include "inferno/tokenizer.h"

#define INF__LOG_MODULE "tokenizer"

/* Token attributes, as llama.cpp derives them from token types and model rules. */
enum {
    INF__ATTR_UNDEFINED = 1u << 0,
    INF__ATTR_UNKNOWN = 1u << 1,
    INF__ATTR_UNUSED = 1u << 2,
    INF__ATTR_NORMAL = 1u << 3,
    INF__ATTR_CONTROL = 1u << 4,
    INF__ATTR_USER_DEFINED = 1u << 5,
    INF__ATTR_BYTE = 1u << 6,
    INF__ATTR_LSTRIP = 1u << 7, /* a special match eats the whitespace before it */
    INF__ATTR_RSTRIP = 1u << 8, /* ... and after it */
    INF__ATTR_EOG = 1u << 9,
};

/* ---- hashing ---------------------------------------------------------------------------- */

uint64_t inf__hash_bytes(const void *p, size_t n);
static inline uint64_t inf__hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/*
 * Interned byte strings: entry i is blob[off[i] .. off[i]+len[i]). Lookup by content through
 * an open-addressing table of (index + 1). Adding a string that is already present makes the
 * new index the one found (llama.cpp's token_to_id keeps the last duplicate).
 */
struct inf__strtab {
    char *blob;
    size_t blob_len, blob_cap;
    uint32_t *off, *len;
    size_t n, cap;
    uint32_t *slots;
    size_t n_slots; /* a power of two, at least twice n */
};

void inf__strtab_release(struct inf__strtab *t);
/* Append s[0..n) as a new entry (index returned in *idx); replace=true makes lookups of an
 * existing equal string return the new entry. */
inf_status inf__strtab_add(struct inf__strtab *t, const char *s, size_t n, bool replace,
                           int32_t *idx);
/* Make room for n entries in all without rehashing. */
inf_status inf__strtab_reserve(struct inf__strtab *t, size_t n);
/* The index of the entry equal to s[0..n), or -1. */
int32_t inf__strtab_find(const struct inf__strtab *t, const char *s, size_t n);
/* Find, or append when absent. */
inf_status inf__strtab_intern(struct inf__strtab *t, const char *s, size_t n, int32_t *idx);
static inline const char *inf__strtab_str(const struct inf__strtab *t, int32_t i)
{
    return t->blob + t->off[i];
}

/* uint64 -> int64 map with open addressing; keys must not be UINT64_MAX (the empty mark). */
struct inf__u64map {
    uint64_t *keys;
    int64_t *vals;
    size_t n, n_slots;
};
void inf__u64map_release(struct inf__u64map *m);
inf_status inf__u64map_reserve(struct inf__u64map *m, size_t n);
/* Insert key unless present (the first value stays, as std::map::emplace keeps it). */
inf_status inf__u64map_put_first(struct inf__u64map *m, uint64_t key, int64_t val);
bool inf__u64map_get(const struct inf__u64map *m, uint64_t key, int64_t *val);

/* ---- pre-tokenizers --------------------------------------------------------------------- */

struct inf__pretok {
    const char *const *regex; /* PCRE2 patterns, applied in order, NULL-terminated */
    int clean_spaces;         /* 0/1 */
    int ignore_merges;        /* a word that is a whole token skips merging */
    int add_bos;              /* -1: model default; 2: on even if the GGUF says off */
    bool byte_encode;         /* GPT-2 byte-level mapping before merges */
    bool escape_whitespace;   /* spaces become U+2581 first (Gemma 4's SentencePiece-style BPE) */
    bool no_bos_token;        /* the pre-tokenizer's models have no BOS (chatglm) */
};

/* The pre-tokenizer named name (NULL when unknown). */
const struct inf__pretok *inf__pretok_find(const char *name);
const struct inf__pretok *inf__pretok_default(void);

/* Compiled regexes of a pre-tokenizer. */
struct inf__regex_set {
    void **code; /* pcre2_code_8 * */
    size_t n;
};
inf_status inf__regex_set_compile(struct inf__regex_set *rs, const char *const *patterns,
                                  struct inf_error *err);
void inf__regex_set_release(struct inf__regex_set *rs);

/* A span of a text: off/len in bytes. */
struct inf__span {
    uint32_t off, len;
};
struct inf__spans {
    struct inf__span *v;
    size_t n, cap;
};
void inf__spans_release(struct inf__spans *s);
inf_status inf__spans_push(struct inf__spans *s, size_t off, size_t len);

/*
 * Split valid UTF-8 text[0..len) into words by the regexes in order: each regex splits every
 * piece the previous ones produced, matches and the gaps between them both becoming pieces
 * (llama.cpp's unicode_regex_split). Appends to out (reset first). INF_ELIMIT when PCRE2
 * gives up (match or depth limit).
 */
inf_status inf__regex_split(const struct inf__regex_set *rs, const char *text, size_t len,
                            struct inf__spans *out, struct inf_error *err);

/* ---- Unigram (tok_ugm.c) ---------------------------------------------------------------- */

struct inf__ugm {
    uint32_t *xcda; /* [n_xcda] the precompiled charsmap's double array, host order */
    size_t n_xcda;
    char *repl; /* [n_repl] its NUL-terminated replacement strings */
    size_t n_repl;
    struct inf__u64map trie; /* (node << 8 | byte) -> child over the matchable tokens */
    int32_t *node_token;     /* [n_nodes] the token ending at a node, or -1; node 0: root */
    size_t n_nodes, cap_nodes;
    struct inf__u64map ud_trie; /* the same over user-defined tokens (paths only) */
    float unk_score;            /* the unknown token's score: lowest normal score - 10 */
};

/* Read a precompiled charsmap (n == 0: none) into u, replacing what it had. INF_EFORMAT names
   what does not fit; the indices inside are checked when used. */
inf_status inf__ugm_charsmap_parse(struct inf__ugm *u, const void *data, size_t n,
                                   struct inf_error *err);
void inf__ugm_release(struct inf__ugm *u);

/* ---- the tokenizer ---------------------------------------------------------------------- */

struct inf_tokenizer {
    struct inf_tok_info info;
    char model[16];
    char *pre_name;
    const struct inf__pretok *pretok;
    struct inf__regex_set regex;

    size_t n_tokens;
    struct inf__strtab strs; /* entries 0..n_tokens-1 are the vocabulary; then merge strings */
    float *scores;           /* [n_tokens] */
    uint16_t *attr;          /* [n_tokens] INF__ATTR_* */
    size_t max_token_len;

    /* BPE: (left string index << 32 | right string index) -> (rank << 32 | result index) */
    struct inf__u64map merges;
    bool ignore_merges, byte_encode, escape_whitespace;
    bool newline_words; /* a word of newlines that is a token is taken whole (Gemma 4) */

    /* Byte fallback: the token for each byte (<0xNN> or the byte-level char); -1 when none. */
    int32_t byte_token[256];
    /* BPE byte-level: the string index of each byte's mapped code point; its UTF-8 form. */
    int32_t byte_sym[256];
    char byte_enc[256][2];
    uint8_t byte_enc_len[256];

    bool lowercase, strip_accents, remove_extra_ws;
    bool spm_split_words; /* SPM: no token has U+2581 after another character */

    /* Special tokens split out of the text, longest text first (ties: lower id first). */
    int32_t *special;
    size_t n_special;
    /* A trie over their texts to find which occur in a text in one pass. */
    struct inf__u64map trie;   /* (node << 8 | byte) -> child node */
    int32_t *special_node;     /* [n_special] trie node where each text ends */
    uint8_t special_first[32]; /* bitmap of first bytes */
    size_t n_trie_nodes;

    struct inf__ugm ugm; /* UGM only */

    /* Decoded pieces (special = true form), for inf_tok_piece. */
    char *piece_blob;
    uint32_t *piece_off, *piece_len;
};

/* Encoders for one span of raw text (no special tokens inside). Append to out. */
inf_status inf__spm_encode(const struct inf_tokenizer *tok, const char *text, size_t len,
                           bool space_prefix, struct inf_tokens *out, struct inf_error *err);
inf_status inf__bpe_encode(const struct inf_tokenizer *tok, const char *text, size_t len,
                           struct inf_tokens *out, struct inf_error *err);
inf_status inf__wpm_encode(const struct inf_tokenizer *tok, const char *text, size_t len,
                           struct inf_tokens *out, struct inf_error *err);
inf_status inf__ugm_encode(const struct inf_tokenizer *tok, const char *text, size_t len,
                           struct inf_tokens *out, struct inf_error *err);
/* Build the Unigram tries and read the charsmap (after the tokens and their attributes). */
inf_status inf__ugm_setup(struct inf_tokenizer *tok, const struct inf_vocab_desc *d,
                          struct inf_error *err);
/* The encoders' error when memory runs out on len bytes of text: INF_ENOMEM. */
inf_status inf__tok_oom(struct inf_error *err, size_t len);

/* Build the piece cache (tok_decode.c). */
inf_status inf__build_pieces(struct inf_tokenizer *tok, struct inf_error *err);

#endif
