/*
 * fuzz_safetensors.c - libFuzzer target for the safetensors reader and format detection.
 *
 * Opens the input (capped at 1 MiB) from memory. On success walks every tensor and metadata
 * entry, checking that each tensor's data lies inside the image, that the tensors tile the data
 * section in order, and that lookups find their entries. On failure the error must be a format
 * (or limit) error with a message and no handle. A broken invariant aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "inferno/model_file.h"
#include "inferno/safetensors.h"

#define FUZZ_MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct inf_safetensors *st = NULL;
    struct inf_error err = {0};
    static volatile uint64_t sink;
    uint64_t sum = 0, expect = 0;
    inf_status rc;

    if (size > FUZZ_MAX_INPUT)
        size = FUZZ_MAX_INPUT;
    rc = inf_safetensors_open_memory(data, size, &st, &err);
    if (rc == INF_OK) {
        CHECK(st != NULL && inf_safetensors_n_shards(st) == 1);
        for (size_t i = 0; i < inf_safetensors_n_tensors(st); i++) {
            const struct inf_st_tensor *t = inf_safetensors_tensor_at(st, i);
            const uint8_t *d = t->data;
            CHECK(t->name != NULL && inf_safetensors_find_tensor(st, t->name) == t);
            CHECK(inf_st_dtype_info(t->dtype) != NULL && t->n_dims <= INF_ST_MAX_DIMS);
            CHECK(t->begin == expect && t->end - t->begin == t->n_bytes);
            CHECK(d >= data && d + t->n_bytes <= data + size);
            expect = t->end;
            if (t->n_bytes)
                sum += d[0] + d[t->n_bytes - 1];
        }
        /* the last tensor ends the file */
        size_t n = inf_safetensors_n_tensors(st);
        if (n) {
            const struct inf_st_tensor *last = inf_safetensors_tensor_at(st, n - 1);
            CHECK((const uint8_t *)last->data + last->n_bytes == data + size);
        }
        for (size_t i = 0; i < inf_safetensors_n_metadata(st); i++) {
            const char *k, *v;
            CHECK(inf_safetensors_metadata_at(st, i, &k, &v));
            CHECK(inf_safetensors_metadata(st, k) == v);
            sum += strlen(k) + strlen(v);
        }
        rc = inf_safetensors_check_supported(st, &err);
        CHECK(rc == INF_OK || (rc == INF_EUNSUPPORTED && err.msg[0]));
        inf_safetensors_free(st);
    } else {
        CHECK(st == NULL);
        CHECK(rc == INF_EFORMAT || rc == INF_ELIMIT);
        CHECK(err.code == rc && err.msg[0] != '\0');
    }
    fuzz_check_detect(data, size);
    sink = sum;
    (void)sink;
    return 0;
}
