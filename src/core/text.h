/* core/text.h - small text algorithms shared by the CLI and the configuration. Internal. */
#ifndef INFERNO_CORE_TEXT_H
#define INFERNO_CORE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Levenshtein distance between a and b (insertions, deletions, substitutions of bytes; ASCII
 * case ignored when fold_case), for "did you mean" suggestions. Strings longer than 120 bytes
 * give SIZE_MAX.
 */
size_t inf__edit_distance(const char *a, const char *b, bool fold_case);

#endif
