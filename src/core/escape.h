/*
 * core/escape.h - escaping text for JSON strings (the same escapes are valid in TOML basic
 * strings): one table for the log's JSON lines, `config show --json`, the TOML writer of
 * `config`, and tools/toml-decode. Internal to the library and its tools.
 */
#ifndef INFERNO_CORE_ESCAPE_H
#define INFERNO_CORE_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

/*
 * The escape of byte c inside a JSON (or TOML basic) string: \" \\ \b \f \n \r \t, \u00XX for
 * the other control bytes and DEL; NULL when c stands for itself (bytes >= 0x80 included, so
 * UTF-8 passes through). tmp (7 bytes at least) holds the \u00XX form when that is returned.
 */
const char *inf__escape_json_byte(unsigned char c, char tmp[8]);

/* Write s[0..n) escaped, without the surrounding quotes. */
void inf__escape_json_write(FILE *f, const char *s, size_t n);

#endif
