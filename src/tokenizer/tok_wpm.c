/*
 * tok_wpm.c - WordPiece for BERT-style models (tokenizer.ggml.model = "bert").
 *
 * BERT's basic tokenizer: accents stripped (each code point replaced by the first code point
 * of its canonical decomposition, combining marks dropped), control characters and U+FFFD
 * dropped, lower-cased, words split at whitespace, and every punctuation mark, ASCII symbol
 * and CJK ideograph made a word of its own. Then each word, with U+2581 in front (the GGUF
 * form of BERT's word-start convention), is covered greedily by the longest vocabulary
 * entries; a word that cannot be covered becomes [UNK].
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

static bool is_chinese(uint32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* Cover word[0..n) (U+2581 already in front) greedily; false when some position fails. */
static inf_status cover_word(const struct inf_tokenizer *tok, const char *word, size_t n,
                             struct inf_tokens *out)
{
    size_t n0 = out->n;
    for (size_t i = 0; i < n;) {
        size_t j = n - i > tok->max_token_len ? i + tok->max_token_len : n;
        inf_token id = INF_TOKEN_NULL;
        for (; j > i; j--)
            if ((id = inf_tok_find(tok, word + i, j - i)) != INF_TOKEN_NULL)
                break;
        if (id == INF_TOKEN_NULL) {
            out->n = n0;
            break;
        }
        if (inf_tokens_push(out, id) != INF_OK)
            return INF_ENOMEM;
        i = j;
    }
    if (out->n == n0 && tok->info.unk != INF_TOKEN_NULL)
        return inf_tokens_push(out, tok->info.unk);
    return INF_OK;
}

inf_status inf__wpm_encode(const struct inf_tokenizer *tok, const char *text, size_t len,
                           struct inf_tokens *out, struct inf_error *err)
{
    /* a word: U+2581 + at most 4 bytes per input byte's code point */
    char *word = malloc(3 + 4 * len + 4);
    size_t wl = 3, pos = 0;
    inf_status st = INF_OK;

    if (!word)
        return inf__tok_oom(err, len);
    memcpy(word, "\xe2\x96\x81", 3);
    while (pos < len && st == INF_OK) {
        uint32_t cp = inf__utf8_decode(text, len, &pos);
        if (tok->strip_accents)
            cp = inf__ucd_nfd_base(cp);
        uint8_t fl = inf__ucd_flags(cp);
        if (inf__ucd_is_whitespace(cp)) {
            if (wl > 3)
                st = cover_word(tok, word, wl, out);
            wl = 3;
            continue;
        }
        if (cp == 0 || cp == INF__UTF8_REPLACEMENT || (fl & INF__UCD_CONTROL))
            continue;
        if (tok->strip_accents && (fl & INF__UCD_MARK))
            continue;
        uint32_t lc = tok->lowercase ? inf__ucd_tolower(cp) : cp;
        if ((fl & INF__UCD_PUNCT) || (cp < 0x7F && (fl & INF__UCD_SYMBOL)) || is_chinese(cp)) {
            if (wl > 3)
                st = cover_word(tok, word, wl, out);
            wl = 3 + inf__utf8_encode(lc, word + 3);
            if (st == INF_OK)
                st = cover_word(tok, word, wl, out);
            wl = 3;
            continue;
        }
        wl += inf__utf8_encode(lc, word + wl);
    }
    if (st == INF_OK && wl > 3)
        st = cover_word(tok, word, wl, out);
    free(word);
    if (st != INF_OK)
        return inf__tok_oom(err, len);
    return INF_OK;
}
