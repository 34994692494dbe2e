/*
 * fuzz_onnx.c - libFuzzer target for the ONNX loader, planner and executor, and the
 * TensorProto / .npy decoders.
 *
 * The input (capped at 256 KiB) is loaded as a ModelProto with tensors capped at 16 MiB; when
 * it loads, it runs once on zero inputs of the declared shapes (symbolic dims 1). Whatever the
 * bytes, a failure must come with a message and no model; a run either succeeds with every
 * output allocated or fails with a message. The same bytes are decoded as a TensorProto and as
 * a .npy file. A broken invariant aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "inferno/onnx.h"

#define FUZZ_MAX_INPUT (256u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct inf_onnx_model *m = NULL;
    struct inf_error err = {0};
    struct inf_onnx_params p = {.max_tensor_bytes = 16u << 20};
    struct inf_onnx_tensor t;

    if (size > FUZZ_MAX_INPUT)
        size = FUZZ_MAX_INPUT;
    if (inf_onnx_tensor_decode(data, size, &t, &err) == INF_OK) {
        CHECK(t.n == 0 || t.data != NULL);
        inf_onnx_tensor_release(&t);
    } else {
        CHECK(err.msg[0] != 0);
    }
    if (inf_onnx_npy_decode(data, size, &t, &err) == INF_OK)
        inf_onnx_tensor_release(&t);
    err.msg[0] = 0;
    inf_status rc = inf_onnx_load_memory(data, size, NULL, &p, &m, &err);
    if (rc != INF_OK) {
        CHECK(m == NULL && err.msg[0] != 0);
        return 0;
    }
    CHECK(m != NULL);
    int ni = inf_onnx_n_inputs(m), no = inf_onnx_n_outputs(m);
    struct inf_onnx_tensor *ins = calloc((size_t)ni + 1, sizeof(*ins)),
                           *outs = calloc((size_t)no + 1, sizeof(*outs));
    bool ok = ins && outs;
    for (int i = 0; ok && i < ni; i++) {
        const struct inf_onnx_value_info *v = inf_onnx_input(m, i);
        int64_t dims[INF_ONNX_MAX_DIMS];
        int nd = v->ndim < 0 ? 0 : v->ndim;
        for (int d = 0; d < nd; d++)
            dims[d] = v->dims[d] < 0 || v->dim_param[d] ? 1 : v->dims[d];
        ok = inf_onnx_tensor_alloc(&ins[i], v->dtype, nd, dims, 1u << 20, &err) == INF_OK;
    }
    if (ok && inf_onnx_run(m, NULL, ins, outs, &err) == INF_OK) {
        for (int j = 0; j < no; j++) {
            CHECK(outs[j].n == 0 || outs[j].data != NULL);
            inf_onnx_tensor_release(&outs[j]);
        }
    }
    for (int i = 0; ins && i < ni; i++)
        inf_onnx_tensor_release(&ins[i]);
    free(ins);
    free(outs);
    inf_onnx_free(m);
    return 0;
}
