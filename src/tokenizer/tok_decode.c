/*
 * tok_decode.c - token ids back to text: the per-token piece cache, whole-sequence
 * detokenization (llama.cpp's llama_detokenize) and the streaming decoder that never splits a
 * UTF-8 character.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

struct buf {
    char *p;
    size_t n, cap;
};

static inf_status buf_put(struct buf *b, const void *s, size_t n)
{
    return inf__append(&b->p, &b->n, &b->cap, s, n, 256) ? INF_OK : INF_ENOMEM;
}

/* The byte of a "<0xNN>" token; llama.cpp reads the two characters after "<0x". */
static unsigned char byte_of(const char *s, size_t n)
{
    int hi = n >= 5 ? inf__hex_digit(s[3]) : -1, lo = n >= 5 ? inf__hex_digit(s[4]) : -1;
    if (hi < 0)
        return 0;
    return (unsigned char)(lo < 0 ? hi : hi * 16 + lo);
}

/* U+2581 -> ' ' */
static inf_status put_unescaped(struct buf *b, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (i + 3 <= n && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
            if (buf_put(b, " ", 1) != INF_OK)
                return INF_ENOMEM;
            i += 3;
            continue;
        }
        if (buf_put(b, s + i, 1) != INF_OK)
            return INF_ENOMEM;
        i++;
    }
    return INF_OK;
}

/* GPT-2 byte-level text -> bytes; a code point outside the map is written as llama.cpp does. */
static inf_status put_byte_decoded(struct buf *b, const char *s, size_t n)
{
    size_t pos = 0;
    while (pos < n) {
        uint32_t cp = inf__utf8_decode(s, n, &pos);
        int byte = inf__cp_to_byte(cp);
        if (byte >= 0) {
            unsigned char c = (unsigned char)byte;
            if (buf_put(b, &c, 1) != INF_OK)
                return INF_ENOMEM;
            continue;
        }
        char u8[4], hx[8];
        size_t ul = inf__utf8_encode(cp, u8);
        if (buf_put(b, "[UNK_BYTE_0x", 12) != INF_OK)
            return INF_ENOMEM;
        for (size_t k = 0; k < ul; k++) {
            snprintf(hx, sizeof(hx), "%02x", (unsigned char)u8[k]);
            if (buf_put(b, hx, 2) != INF_OK)
                return INF_ENOMEM;
        }
        if (buf_put(b, s, n) != INF_OK || buf_put(b, "]", 1) != INF_OK)
            return INF_ENOMEM;
    }
    return INF_OK;
}

static inf_status piece_of(const struct inf_tokenizer *tok, inf_token id, struct buf *b)
{
    uint16_t a = tok->attr[id];
    const char *s = inf__strtab_str(&tok->strs, id);
    size_t n = tok->strs.len[id];

    if (a & (INF__ATTR_CONTROL | INF__ATTR_UNKNOWN | INF__ATTR_USER_DEFINED))
        return buf_put(b, s, n);
    if (a & INF__ATTR_NORMAL) {
        if (tok->info.type == INF_VOCAB_BPE && !tok->escape_whitespace)
            return put_byte_decoded(b, s, n);
        return put_unescaped(b, s, n);
    }
    if (a & INF__ATTR_BYTE) {
        unsigned char c = byte_of(s, n);
        return buf_put(b, &c, 1);
    }
    return INF_OK; /* unused and undefined tokens decode to nothing */
}

inf_status inf__build_pieces(struct inf_tokenizer *tok, struct inf_error *err)
{
    struct buf b = {0};
    tok->piece_off = malloc(tok->n_tokens * sizeof(*tok->piece_off));
    tok->piece_len = malloc(tok->n_tokens * sizeof(*tok->piece_len));
    if (!tok->piece_off || !tok->piece_len)
        goto oom;
    for (size_t i = 0; i < tok->n_tokens; i++) {
        size_t at = b.n;
        if (piece_of(tok, (inf_token)i, &b) != INF_OK)
            goto oom;
        if (b.n > UINT32_MAX)
            goto oom;
        tok->piece_off[i] = (uint32_t)at;
        tok->piece_len[i] = (uint32_t)(b.n - at);
    }
    if (buf_put(&b, "", 0) != INF_OK)
        goto oom;
    tok->piece_blob = b.p;
    return INF_OK;
oom:
    free(b.p);
    return inf_error_set(err, INF_ENOMEM, "out of memory building token pieces");
}

const char *inf_tok_piece(const struct inf_tokenizer *tok, inf_token id, bool special, size_t *len)
{
    if (id < 0 || (size_t)id >= tok->n_tokens) {
        *len = 0;
        return NULL;
    }
    if (!special && (tok->attr[id] & (INF__ATTR_CONTROL | INF__ATTR_UNKNOWN))) {
        *len = 0;
        return tok->piece_blob + tok->piece_off[id];
    }
    *len = tok->piece_len[id];
    return tok->piece_blob + tok->piece_off[id];
}

/* llama.cpp's clean_up_tokenization: " ?" " !" " ." " ," lose the space, a lone "'" between
 * spaces loses both, " 's" " 'm" " 're" " 've" lose the space. In place; returns the length. */
static size_t clean_spaces(char *t, size_t total)
{
    size_t n, i;
    if (total < 2)
        return total;
    n = 1;
    for (i = 1; i < total; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            n--;
        t[n++] = x;
    }
    total = n;
    n = total ? 1 : 0;
    for (i = 1; i < total; i++) {
        char x = t[i];
        if (x == '\'' && i + 1 < total && t[i - 1] == ' ' && t[i + 1] == ' ') {
            n--;
            t[++i] = '\0';
        }
        t[n++] = x;
    }
    total = n;
    n = total ? 1 : 0;
    for (i = 1; i < total; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && x == '\'' && i + 1 < total) {
            char x1 = t[i + 1];
            if (x1 == 's' || x1 == 'm')
                n--;
            else if (i + 2 < total &&
                     ((x1 == 'r' && t[i + 2] == 'e') || (x1 == 'v' && t[i + 2] == 'e')))
                n--;
        }
        t[n++] = x;
    }
    return n;
}

inf_status inf_tok_decode(const struct inf_tokenizer *tok, const inf_token *ids, size_t n,
                          unsigned flags, char **out, size_t *len, struct inf_error *err)
{
    const struct inf_tok_info *in = &tok->info;
    bool special = (flags & INF_TOK_DECODE_SPECIAL) != 0;
    bool remove_space = in->add_space_prefix;
    struct buf b = {0};

    *out = NULL;
    *len = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= tok->n_tokens)
            return inf_error_set(err, INF_EINVAL, "token id %d is out of range (vocabulary of %zu)",
                                 ids[i], tok->n_tokens);
    if (flags & INF_TOK_DECODE_REMOVE_SPECIAL) {
        if (in->add_bos && n > 0 && ids[0] == in->bos) {
            remove_space = false;
            ids++;
            n--;
        }
        if (in->add_eos && n > 0 && ids[n - 1] == in->eos)
            n--;
    }
    if (buf_put(&b, "", 0) != INF_OK)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        size_t pl;
        const char *p = inf_tok_piece(tok, ids[i], special, &pl);
        if (remove_space && pl > 0 && p[0] == ' ') {
            p++;
            pl--;
        }
        remove_space = false;
        if (buf_put(&b, p, pl) != INF_OK)
            goto oom;
    }
    if (in->clean_spaces && !(flags & INF_TOK_DECODE_NO_CLEANUP)) {
        b.n = clean_spaces(b.p, b.n);
        b.p[b.n] = '\0';
    }
    *out = b.p;
    *len = b.n;
    return INF_OK;
oom:
    free(b.p);
    return inf_error_set(err, INF_ENOMEM, "out of memory detokenizing %zu tokens", n);
}

/* ---- streaming -------------------------------------------------------------------------- */

void inf_tok_stream_init(struct inf_tok_stream *s, const struct inf_tokenizer *tok, unsigned flags)
{
    memset(s, 0, sizeof(*s));
    s->tok = tok;
    s->flags = flags;
}

void inf_tok_stream_release(struct inf_tok_stream *s)
{
    free(s->buf);
    memset(s, 0, sizeof(*s));
}

static inf_status out_reserve(struct inf_tok_stream *s, size_t need)
{
    return inf__grow(&s->buf, &s->cap, need, 1, 64) ? INF_OK : INF_ENOMEM;
}

/* Append one invalid byte (raw or U+FFFD) at s->buf[*o]. */
static void put_invalid(struct inf_tok_stream *s, unsigned char c, size_t *o)
{
    if (s->flags & INF_TOK_STREAM_REPLACE_INVALID) {
        memcpy(s->buf + *o, "\xef\xbf\xbd", 3);
        *o += 3;
    } else {
        s->buf[(*o)++] = (char)c;
    }
}

/*
 * Move held bytes followed by p[0..n) to the output, keeping back a valid but incomplete
 * character at the end (unless final). The held bytes are always a valid incomplete prefix.
 */
static inf_status stream_feed(struct inf_tok_stream *s, const char *p, size_t n, bool final,
                              size_t *out_len)
{
    unsigned char tmp[8];
    size_t o = 0, i = 0;

    /* worst case every byte becomes U+FFFD */
    if (out_reserve(s, 3 * (s->n_held + n) + 1) != INF_OK)
        return INF_ENOMEM;
    /* First complete (or give up on) the held character, using the first bytes of p. */
    while (s->n_held > 0) {
        size_t k = s->n_held, take = 0;
        memcpy(tmp, s->held, k);
        while (k < 4 && take < n)
            tmp[k++] = (unsigned char)p[take++];
        int st = inf__utf8_char_status(tmp, k);
        if (st > 0) {
            /* a complete character: held bytes plus the first st - n_held of p */
            memcpy(s->buf + o, tmp, (size_t)st);
            o += (size_t)st;
            i = (size_t)st - s->n_held;
            s->n_held = 0;
        } else if (st == 0) {
            /* still incomplete: all of p went into the held prefix */
            if (final) {
                for (size_t j = 0; j < k; j++)
                    put_invalid(s, tmp[j], &o);
                s->n_held = 0;
                i = n;
            } else {
                memcpy(s->held, tmp, k);
                s->n_held = k;
                *out_len = o;
                return INF_OK;
            }
        } else {
            /* the held lead byte cannot start a character after all: emit it alone, retry
             * with the rest of the held bytes */
            put_invalid(s, s->held[0], &o);
            memmove(s->held, s->held + 1, s->n_held - 1);
            s->n_held--;
            continue;
        }
        break;
    }
    while (i < n) {
        const unsigned char *q = (const unsigned char *)p + i;
        if (q[0] < 0x80) {
            s->buf[o++] = (char)q[0];
            i++;
            continue;
        }
        int st = inf__utf8_char_status(q, n - i);
        if (st > 0) {
            memcpy(s->buf + o, q, (size_t)st);
            o += (size_t)st;
            i += (size_t)st;
        } else if (st == 0 && !final) {
            memcpy(s->held, q, n - i);
            s->n_held = n - i;
            break;
        } else {
            put_invalid(s, q[0], &o);
            i++;
        }
    }
    s->buf[o] = '\0';
    *out_len = o;
    return INF_OK;
}

inf_status inf_tok_stream_push(struct inf_tok_stream *s, inf_token id, const char **text,
                               size_t *len, struct inf_error *err)
{
    size_t pl;
    const char *p;

    *text = "";
    *len = 0;
    if (id < 0 || (size_t)id >= s->tok->n_tokens)
        return inf_error_set(err, INF_EINVAL, "token id %d is out of range (vocabulary of %zu)", id,
                             s->tok->n_tokens);
    p = inf_tok_piece(s->tok, id, (s->flags & INF_TOK_STREAM_SPECIAL) != 0, &pl);
    if (!s->started && pl > 0) {
        if ((s->flags & INF_TOK_STREAM_STRIP_FIRST_SPACE) && p[0] == ' ') {
            p++;
            pl--;
        }
        s->started = true;
    }
    if (stream_feed(s, p, pl, false, len) != INF_OK)
        return inf_error_set(err, INF_ENOMEM, "out of memory decoding a token");
    *text = s->buf ? s->buf : "";
    return INF_OK;
}

inf_status inf_tok_stream_flush(struct inf_tok_stream *s, const char **text, size_t *len,
                                struct inf_error *err)
{
    *text = "";
    *len = 0;
    if (stream_feed(s, NULL, 0, true, len) != INF_OK)
        return inf_error_set(err, INF_ENOMEM, "out of memory decoding a token");
    *text = s->buf ? s->buf : "";
    return INF_OK;
}
