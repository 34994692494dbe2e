/*
 * core/utf8.h - UTF-8 encoding, shared by the tokenizers and the template engine (each keeps
 * its own decoder: the tokenizers follow llama.cpp's rules, the templates Python's str).
 * Internal to the library and its tools.
 */
#ifndef INFERNO_CORE_UTF8_H
#define INFERNO_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Bytes in the sequence that lead byte c starts (1 for continuation and invalid bytes). */
static inline size_t inf__utf8_len(unsigned char c)
{
    static const unsigned char lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

/*
 * Encode cp into out[0..4); returns the byte count (1..4). cp should be <= 0x10FFFF and not a
 * surrogate; larger values are written with a 4-byte lead byte as they come.
 */
size_t inf__utf8_encode(uint32_t cp, char *out);

#endif
