/*
 * check.c - inf_gguf_check_values: every tensor the kernels can read, dequantized row by row
 * and checked finite (what `inferno validate --deep` reports).
 *
 * The sizes come from inf_ggml_size (checked arithmetic) and the reader has already checked
 * each tensor's data range against the file, so no row read here can leave the mapping; rows
 * longer than INF_GGUF_CHECK_MAX_ROW values are not read (their buffer would be absurd).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gguf/internal.h"
#include "inferno/gguf.h"
#include "inferno/kernels.h"

inf_status inf_gguf_check_values(const struct inf_gguf *g, inf_gguf_value_report report, void *arg,
                                 size_t *n_bad, size_t *n_skipped, struct inf_error *err)
{
    float *row = NULL;
    uint64_t cap = 0;
    inf_status rc = INF_OK;

    *n_bad = 0;
    *n_skipped = 0;
    for (size_t i = 0; i < inf_gguf_n_tensors(g); i++) {
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, i);
        const struct inf_type_traits *tr = inf_type_get((enum inf_type)t->type);
        struct inf_ggml_size sz;

        if (inf_ggml_size(t->type, t->n_dims, t->ne, NULL, &sz, NULL) != INF_OK || !tr ||
            !tr->is_weight || !tr->to_float || inf_gguf_is_big_endian(g) ||
            (uint64_t)t->ne[0] > INF_GGUF_CHECK_MAX_ROW) {
            (*n_skipped)++;
            continue;
        }
        if (sz.n_elements == 0)
            continue; /* nothing to read */
        if ((uint64_t)t->ne[0] > cap) {
            float *nr = realloc(row, (size_t)t->ne[0] * sizeof(float));
            if (!nr) {
                rc = inf_error_set(err, INF_ENOMEM, "out of memory for a row of %" PRId64 " values",
                                   t->ne[0]);
                goto out;
            }
            row = nr;
            cap = (uint64_t)t->ne[0];
        }
        for (uint64_t r = 0; r < sz.n_rows; r++) {
            inf_dequantize_row((enum inf_type)t->type, (const char *)t->data + r * sz.row_bytes,
                               row, t->ne[0], NULL);
            int64_t j;
            for (j = 0; j < t->ne[0] && isfinite(row[j]); j++)
                ;
            if (j < t->ne[0]) {
                if (report)
                    report(arg, t, r, (uint64_t)j, row[j]);
                (*n_bad)++;
                break;
            }
        }
    }
out:
    free(row);
    return rc;
}
