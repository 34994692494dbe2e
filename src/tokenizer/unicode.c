/* unicode.c - UTF-8 coding, category lookups and the GPT-2 byte map for the tokenizers. */
#include "tokenizer/unicode.h"

#include <string.h>

static bool is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* llama.cpp's decoder, which lets surrogates and code points past U+10FFFF through. */
static uint32_t decode_lenient(const char *str, size_t n, size_t *pos)
{
    const unsigned char *s = (const unsigned char *)str + *pos;
    size_t left = n - *pos;
    uint32_t cp;
    size_t len;

    /* llama.cpp's decoder: the lead byte fixes the length; every continuation must be there. */
    if (s[0] < 0x80) {
        *pos += 1;
        return s[0];
    }
    if ((s[0] & 0x40) == 0) {
        len = 0;
    } else if ((s[0] & 0x20) == 0) {
        len = 2;
        cp = s[0] & 0x1Fu;
    } else if ((s[0] & 0x10) == 0) {
        len = 3;
        cp = s[0] & 0x0Fu;
    } else if ((s[0] & 0x08) == 0) {
        len = 4;
        cp = s[0] & 0x07u;
    } else {
        len = 0;
    }
    if (len == 0 || len > left) {
        *pos += 1;
        return INF__UTF8_REPLACEMENT;
    }
    for (size_t i = 1; i < len; i++) {
        if (!is_cont(s[i])) {
            *pos += 1;
            return INF__UTF8_REPLACEMENT;
        }
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    *pos += len;
    return cp;
}

uint32_t inf__utf8_decode(const char *str, size_t n, size_t *pos)
{
    uint32_t cp = decode_lenient(str, n, pos);
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return INF__UTF8_REPLACEMENT;
    return cp;
}

size_t inf__utf8_sanitize(const char *s, size_t n, char *out, char *masked)
{
    size_t pos = 0, o = 0;
    while (pos < n) {
        size_t run = inf__utf8_valid_prefix((const unsigned char *)s + pos, n - pos);
        if (run) {
            memcpy(out + o, s + pos, run);
            if (masked)
                memcpy(masked + o, s + pos, run);
            o += run;
            pos += run;
            continue;
        }
        uint32_t cp = decode_lenient(s, n, &pos);
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF && !masked))
            cp = INF__UTF8_REPLACEMENT;
        size_t l = inf__utf8_encode(cp, out + o);
        if (masked) {
            /* a surrogate stays as its three bytes in out (as llama.cpp re-encodes it) and
             * becomes U+E000 (a private-use character, three bytes too) for the regexes */
            if (cp >= 0xD800 && cp <= 0xDFFF)
                inf__utf8_encode(0xE000, masked + o);
            else
                memcpy(masked + o, out + o, l);
        }
        o += l;
    }
    return o;
}

int inf__utf8_char_status(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlongs */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing past U+10FFFF */
    } else {
        return -1;
    }
    for (size_t i = 1; i < len; i++) {
        if (i >= n)
            return 0;
        unsigned char b = s[i];
        if (i == 1 ? (b < lo || b > hi) : !is_cont(b))
            return -1;
    }
    return (int)len;
}

size_t inf__utf8_valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int st = inf__utf8_char_status(s + i, n - i);
        if (st <= 0)
            break;
        i += (size_t)st;
    }
    return i;
}

uint8_t inf__ucd_flags(uint32_t cp)
{
    size_t lo = 0, hi = inf__ucd_n_ranges;
    if (cp > 0x10FFFF)
        return INF__UCD_UNDEFINED;
    /* the last range whose first <= cp */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (inf__ucd_ranges[mid].first <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return inf__ucd_ranges[lo].flags;
}

bool inf__ucd_is_whitespace(uint32_t cp)
{
    switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

/*
 * The first of the n entries of table (stride bytes apart, sorted by the uint32_t key at offset
 * key_off) whose key is not below cp; n when there is none.
 */
static size_t lower_bound(const void *table, size_t n, size_t stride, size_t key_off, uint32_t cp)
{
    const unsigned char *t = (const unsigned char *)table + key_off;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t key;
        memcpy(&key, t + mid * stride, sizeof(key));
        if (key < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint32_t inf__ucd_tolower(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    size_t lo = lower_bound(inf__ucd_lower, inf__ucd_n_lower, sizeof(inf__ucd_lower[0]),
                            offsetof(struct inf__ucd_pair, from), cp);
    if (lo < inf__ucd_n_lower && inf__ucd_lower[lo].from == cp)
        return inf__ucd_lower[lo].to;
    return cp;
}

uint32_t inf__ucd_nfd_base(uint32_t cp)
{
    if (cp < 0xC0)
        return cp;
    size_t lo = lower_bound(inf__ucd_nfd, inf__ucd_n_nfd, sizeof(inf__ucd_nfd[0]),
                            offsetof(struct inf__ucd_nfd, last), cp);
    if (lo < inf__ucd_n_nfd && inf__ucd_nfd[lo].first <= cp && cp <= inf__ucd_nfd[lo].last)
        return inf__ucd_nfd[lo].base;
    return cp;
}

/*
 * GPT-2's bytes_to_unicode(): printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC,
 * U+00AE..U+00FF) stand for themselves; the other 68 bytes map, in byte order, to U+0100 on.
 */
static bool byte_is_printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t inf__byte_to_cp(uint8_t b)
{
    /* the 68 others, in order: 0x00-0x20, 0x7F-0xA0, 0xAD */
    if (b <= 0x20)
        return 0x100u + b;
    if (b >= 0x7F && b <= 0xA0)
        return 0x100u + 33 + (b - 0x7Fu);
    if (b == 0xAD)
        return 0x100u + 67;
    return b;
}

int inf__cp_to_byte(uint32_t cp)
{
    if (cp < 0x100)
        return byte_is_printable(cp) ? (int)cp : -1;
    cp -= 0x100;
    if (cp < 33)
        return (int)cp;
    if (cp < 67)
        return (int)(0x7F + cp - 33);
    if (cp == 67)
        return 0xAD;
    return -1;
}
