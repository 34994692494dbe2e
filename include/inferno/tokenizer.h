/*
 * inferno/tokenizer.h - text to token ids and back, for the vocabularies found in GGUF files.
 *
 * The algorithm is chosen by tokenizer.ggml.model; each reproduces llama.cpp's output token for
 * token:
 *   "llama"  SPM: SentencePiece-style merging of adjacent pieces by score, byte fallback to
 *            <0xNN> tokens, spaces written as U+2581 and (add_space_prefix) a leading space.
 *   "gpt2"   BPE: the pre-tokenizer regexes named by tokenizer.ggml.pre split the text (PCRE2,
 *            JIT), each piece is mapped byte-wise to GPT-2's printable code points and merged
 *            by merge rank. An unknown pre value falls back to "default" with a warning.
 *   "bert"   WPM: BERT's normaliser (lower-casing, accent stripping, punctuation and CJK
 *            splitting), then greedy longest-match WordPiece.
 *   "gemma4" BPE on raw UTF-8 with spaces written as U+2581 and <0xNN> byte fallback.
 *   "t5"     UGM: SentencePiece's Unigram model (T5, XLM-RoBERTa): the text normalized by the
 *            precompiled charsmap, spaces written as U+2581, then the segmentation with the
 *            highest sum of token scores (Viterbi); unknown text becomes the unknown token.
 *
 * Special tokens (control, user-defined and unknown types) are split out of the text before
 * the algorithm runs: user-defined tokens always, control and unknown tokens only with
 * INF_TOK_PARSE_SPECIAL. Never set that flag for untrusted user content: it would let the
 * text forge turn markers such as <|im_end|>.
 *
 * A tokenizer is immutable once built; every function taking a const tokenizer may be called
 * from several threads at once.
 */
#ifndef INFERNO_TOKENIZER_H
#define INFERNO_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t inf_token;
#define INF_TOKEN_NULL (-1)

enum inf_vocab_type {
    INF_VOCAB_SPM = 1, /* tokenizer.ggml.model = "llama" */
    INF_VOCAB_BPE = 2, /* "gpt2", "gemma4" */
    INF_VOCAB_WPM = 3, /* "bert" */
    INF_VOCAB_UGM = 4, /* "t5" */
};

/* tokenizer.ggml.token_type values. */
enum inf_token_type {
    INF_TOKEN_TYPE_UNDEFINED = 0,
    INF_TOKEN_TYPE_NORMAL = 1,
    INF_TOKEN_TYPE_UNKNOWN = 2,
    INF_TOKEN_TYPE_CONTROL = 3,
    INF_TOKEN_TYPE_USER_DEFINED = 4,
    INF_TOKEN_TYPE_UNUSED = 5,
    INF_TOKEN_TYPE_BYTE = 6,
};

/* Values for the id and flag fields of struct inf_vocab_desc. */
#define INF_VOCAB_ID_DEFAULT   (-1) /* the model's default id (SPM: bos 1, eos 2, unk 0...) */
#define INF_VOCAB_ID_NONE      (-2) /* the vocabulary has no such token */
#define INF_VOCAB_FLAG_DEFAULT (-1) /* the model's (and pre-tokenizer's) default */

#define INF_VOCAB_MAX_TOKENS    (1u << 24) /* more tokens than this are refused */
#define INF_VOCAB_MAX_MERGES    (1u << 25)
#define INF_VOCAB_MAX_TOKEN_LEN (1u << 16) /* bytes in one token text or merge */

/*
 * A vocabulary as plain arrays: what the tokenizer.ggml.* keys of a GGUF file hold. Fill it
 * after inf_vocab_desc_init(), which sets every id to INF_VOCAB_ID_DEFAULT and every flag to
 * INF_VOCAB_FLAG_DEFAULT. inf_tokenizer_new() copies what it needs; the arrays may be freed
 * (or unmapped) afterwards.
 */
struct inf_vocab_desc {
    const char *model; /* tokenizer.ggml.model: "llama", "gpt2", "bert", "gemma4" or "t5" */
    const char *pre;   /* tokenizer.ggml.pre; NULL or "" for "default" */
    const char *name;  /* general.name, for per-model token attribute rules; may be NULL */

    size_t n_tokens;
    const char *const *tokens;  /* [n_tokens] token texts */
    const size_t *token_lens;   /* [n_tokens] byte lengths, or NULL: the texts end with NUL */
    const float *scores;        /* [n_tokens] or NULL (all 0) */
    const int32_t *token_types; /* [n_tokens] enum inf_token_type, or NULL (all normal) */

    size_t n_merges;
    const char *const *merges; /* [n_merges] "left right"; a merge's rank is its index */
    const size_t *merge_lens;  /* [n_merges] or NULL: NUL-terminated */

    /* Special token ids (an id, INF_VOCAB_ID_DEFAULT or INF_VOCAB_ID_NONE). An id outside
     * the vocabulary is ignored with a warning, as llama.cpp does. eot and eom default to
     * tokens found by their text (<|eot_id|>, <|im_end|>, <|eom_id|>...). cls: BERT's BOS when bos
     * is not given and the default (101) does not exist. */
    int32_t bos, eos, eot, eom, unk, sep, pad, cls, mask;

    /* Booleans: 0, 1 or INF_VOCAB_FLAG_DEFAULT. */
    int add_bos, add_eos, add_sep;
    int add_space_prefix;         /* SPM: a space before the text and after each special token */
    int remove_extra_whitespaces; /* UGM only (as in llama.cpp): no leading, trailing or
                                     repeated spaces */
    int lowercase, strip_accents; /* WPM normaliser; default on */

    /* UGM: tokenizer.ggml.precompiled_charsmap, SentencePiece's normalization rules (a Darts
     * double array and replacement strings); NULL/0 for none. Copied. A blob whose header
     * does not fit is refused (INF_EFORMAT); an index inside it that points outside fails the
     * encode that reaches it with INF_EFORMAT. */
    const void *precompiled_charsmap;
    size_t precompiled_charsmap_len;
};

void inf_vocab_desc_init(struct inf_vocab_desc *desc);

struct inf_tokenizer;

/*
 * Build a tokenizer from a vocabulary description. Fails with INF_EUNSUPPORTED for an
 * unknown model ("rwkv"...), INF_EFORMAT for inconsistent arrays (a BPE vocabulary
 * without merges, counts past the INF_VOCAB_MAX_* limits, a token longer than
 * INF_VOCAB_MAX_TOKEN_LEN), INF_ENOMEM. Warnings (unknown pre-tokenizer, out-of-range special
 * ids) go to the log, module "tokenizer". Free the result with inf_tokenizer_free().
 */
inf_status inf_tokenizer_new(const struct inf_vocab_desc *desc, struct inf_tokenizer **out,
                             struct inf_error *err);

struct inf_gguf; /* inferno/gguf.h */

/*
 * Build a tokenizer from the tokenizer.ggml.* metadata of an open GGUF file (vocab-only files
 * work). The file may be freed afterwards. INF_EFORMAT for a file without a tokenizer or
 * with inconsistent tokenizer arrays; otherwise as inf_tokenizer_new.
 */
inf_status inf_tokenizer_from_gguf(const struct inf_gguf *gguf, struct inf_tokenizer **out,
                                   struct inf_error *err);

/* inf_tokenizer_from_gguf on the file at path (opened and closed here); errors name the file. */
inf_status inf_tokenizer_load_gguf(const char *path, struct inf_tokenizer **out,
                                   struct inf_error *err);

void inf_tokenizer_free(struct inf_tokenizer *tok);

/* What a tokenizer was built with, after defaults. Borrowed; valid until the tokenizer is freed. */
struct inf_tok_info {
    enum inf_vocab_type type;
    const char *model; /* "llama", "gpt2", "bert", "gemma4", "t5" */
    const char *pre;   /* the pre-tokenizer in use ("default" after a fallback) */
    size_t n_tokens;   /* ids run 0 .. n_tokens-1 */
    size_t n_merges;   /* merges kept (BPE) */
    inf_token bos, eos, eot, eom, unk, sep, pad, mask, nl; /* INF_TOKEN_NULL when absent */
    bool add_bos, add_eos, add_sep, add_space_prefix;
    bool clean_spaces; /* decoding tidies " ,", " 's"... as llama.cpp's clean_up_tokenization */
};
const struct inf_tok_info *inf_tok_info(const struct inf_tokenizer *tok);

/* The vocabulary text of a token (raw: U+2581 and byte-level forms as stored). NULL when the
 * id is out of range. *len may be NULL. */
const char *inf_tok_text(const struct inf_tokenizer *tok, inf_token id, size_t *len);
enum inf_token_type inf_tok_type(const struct inf_tokenizer *tok, inf_token id);
float inf_tok_score(const struct inf_tokenizer *tok, inf_token id);
/* The token whose vocabulary text is exactly text[0..len), or INF_TOKEN_NULL. */
inf_token inf_tok_find(const struct inf_tokenizer *tok, const char *text, size_t len);
/* End of generation: EOS, EOT, EOM and the other end markers llama.cpp recognises. */
bool inf_tok_is_eog(const struct inf_tokenizer *tok, inf_token id);
/* Control or unknown token (rendered only when INF_TOK_DECODE_SPECIAL is given). */
bool inf_tok_is_control(const struct inf_tokenizer *tok, inf_token id);

/* A growable array of token ids. Zero-initialised storage is a valid empty array. */
struct inf_tokens {
    inf_token *ids;
    size_t n, cap;
};
void inf_tokens_init(struct inf_tokens *t);
void inf_tokens_release(struct inf_tokens *t);
inf_status inf_tokens_push(struct inf_tokens *t, inf_token id);

enum inf_tok_encode_flags {
    /* Add the tokens the vocabulary asks for: BOS (add_bos), EOS (add_eos); for WPM, CLS and
     * SEP. Without it nothing is added (the test vectors are tokenized that way). */
    INF_TOK_ADD_SPECIAL = 1u << 0,
    /* Control and unknown tokens written in the text become single tokens. Trusted text only
     * (templates, never user content). User-defined tokens are matched either way. */
    INF_TOK_PARSE_SPECIAL = 1u << 1,
};

#define INF_TOK_MAX_INPUT ((size_t)1 << 30) /* bytes one encode call accepts */

/* A byte range of a text: [off, off + len). */
struct inf_text_span {
    size_t off, len;
};

/*
 * Tokenize text[0..len) (any bytes; invalid UTF-8 is handled as llama.cpp does) and append
 * the ids to out. Time is O(len log len). INF_ELIMIT when len exceeds INF_TOK_MAX_INPUT (UGM:
 * or when normalization makes it more than 32 times longer); INF_EFORMAT when a UGM
 * vocabulary's precompiled charsmap points outside itself; INF_ENOMEM. On failure out keeps
 * the ids it had before the call.
 */
inf_status inf_tok_encode(const struct inf_tokenizer *tok, const char *text, size_t len,
                          unsigned flags, struct inf_tokens *out, struct inf_error *err);

/*
 * inf_tok_encode for text that mixes trusted and untrusted bytes (a rendered chat template:
 * inf_chat_render gives the ranges). untrusted[0..n_untrusted) are the untrusted byte ranges,
 * sorted and disjoint, inside the text (INF_EINVAL otherwise). With INF_TOK_PARSE_SPECIAL a
 * control or unknown token is matched only where it lies wholly in trusted bytes; untrusted
 * bytes are tokenized as with flags 0 (user-defined tokens still match). The text between
 * special tokens is tokenized as by inf_tok_encode, so text without forged markers gets the
 * same ids.
 */
inf_status inf_tok_encode_untrusted(const struct inf_tokenizer *tok, const char *text, size_t len,
                                    unsigned flags, const struct inf_text_span *untrusted,
                                    size_t n_untrusted, struct inf_tokens *out,
                                    struct inf_error *err);

enum inf_tok_decode_flags {
    INF_TOK_DECODE_SPECIAL = 1u << 0,        /* render control/unknown tokens as their text */
    INF_TOK_DECODE_REMOVE_SPECIAL = 1u << 1, /* drop a leading BOS / trailing EOS the vocab adds */
    INF_TOK_DECODE_NO_CLEANUP = 1u << 2,     /* skip clean_spaces even where the vocab asks */
};

/*
 * The bytes one token decodes to, without the first-token space stripping and clean-up that
 * inf_tok_decode applies. Control and unknown tokens give "" unless special. Borrowed; valid
 * until the tokenizer is freed. NULL (with *len 0) when id is out of range.
 */
const char *inf_tok_piece(const struct inf_tokenizer *tok, inf_token id, bool special, size_t *len);

/*
 * Detokenize ids[0..n) as llama.cpp's llama_detokenize does: with add_space_prefix the space
 * that encoding put before the first word is removed; clean_spaces vocabularies tidy spaces
 * before punctuation unless INF_TOK_DECODE_NO_CLEANUP. *out is malloc'd, NUL-terminated (it
 * may also contain NUL bytes: see *len); free it with free(). INF_EINVAL for an id outside
 * the vocabulary.
 */
inf_status inf_tok_decode(const struct inf_tokenizer *tok, const inf_token *ids, size_t n,
                          unsigned flags, char **out, size_t *len, struct inf_error *err);

/*
 * Streaming detokenizer: feed tokens one at a time as they are generated, get back only
 * complete UTF-8 characters. Bytes that may still become a character are held back;
 * bytes that can no longer be part of a valid character are emitted at once, as they are or,
 * with INF_TOK_STREAM_REPLACE_INVALID, as U+FFFD (one per byte). Nothing is lost: flush()
 * emits what is still held. No clean-up of spaces is done.
 */
enum inf_tok_stream_flags {
    INF_TOK_STREAM_SPECIAL = 1u << 0,           /* render control tokens */
    INF_TOK_STREAM_REPLACE_INVALID = 1u << 1,   /* output is always valid UTF-8 */
    INF_TOK_STREAM_STRIP_FIRST_SPACE = 1u << 2, /* drop a leading space of the first text */
};

struct inf_tok_stream {
    const struct inf_tokenizer *tok;
    unsigned flags;
    bool started;          /* a non-empty piece has been seen */
    unsigned char held[4]; /* an incomplete character, held back */
    size_t n_held;
    char *buf; /* output of the last push/flush */
    size_t cap;
};

void inf_tok_stream_init(struct inf_tok_stream *s, const struct inf_tokenizer *tok, unsigned flags);
/*
 * Feed one token. *text and *len receive the bytes ready to show (possibly none); they stay valid
 * until the next call on s. INF_EINVAL for an out-of-range id (nothing changes), INF_ENOMEM.
 */
inf_status inf_tok_stream_push(struct inf_tok_stream *s, inf_token id, const char **text,
                               size_t *len, struct inf_error *err);
/* Emit whatever is held (an incomplete character at the end of generation). */
inf_status inf_tok_stream_flush(struct inf_tok_stream *s, const char **text, size_t *len,
                                struct inf_error *err);
void inf_tok_stream_release(struct inf_tok_stream *s);

#ifdef __cplusplus
}
#endif
#endif
