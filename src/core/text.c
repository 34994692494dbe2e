/* text.c - small text algorithms (see core/text.h). */
#include "core/text.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>

size_t inf__edit_distance(const char *a, const char *b, bool fold_case)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[121]; /* one row of the table: distances from a[0..i) to b[0..j) */
    if (la > 120 || lb > 120)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            unsigned char x = (unsigned char)a[i - 1], y = (unsigned char)b[j - 1];
            bool same = fold_case ? tolower(x) == tolower(y) : x == y;
            size_t best = prev + !same;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}
