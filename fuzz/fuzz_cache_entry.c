/*
 * fuzz_cache_entry.c - libFuzzer target for the response cache's readers: the entry file
 * (inf_cache_entry_decode: header, zstd frame, checksum) and the answer it holds
 * (cache_blob_decode: the recorded events of a request's tasks).
 *
 * The first byte picks the reader. Entry: decoded output must be what a re-encode of it decodes
 * to again; and the input with its header fixed up (lengths and checksum of what its frame
 * decompresses to, computed here with zstd and EVP) must decode, to those bytes. Blob: every
 * decoded event array must end with DONE, and encoding it again must give the input back byte for
 * byte (the format has one spelling per answer).
 */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "fuzz.h"
#include "inferno/cache.h"
#include "server/cache_hook.h"

#define FUZZ_MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_MAX_INPUT)
        return 0;
    const uint8_t sel = data[0];
    data++;
    size--;
    if (sel & 1) {
        /* the key is the header's own, so that inputs reach the zstd frame and the checksum */
        const uint8_t *key = size >= 40 ? data + 8 : NULL;
        void *out = NULL;
        size_t len = 0;
        struct inf_error err = {0};
        inf_status st = inf_cache_entry_decode(data, size, key, 1u << 22, &out, &len, &err);
        if (st == INF_OK) {
            CHECK(out != NULL && len <= (1u << 22));
            void *enc = NULL, *again = NULL;
            size_t enc_len = 0, again_len = 0;
            CHECK(inf_cache_entry_encode(data + 8, out, len, &enc, &enc_len, NULL) == INF_OK);
            CHECK(inf_cache_entry_decode(enc, enc_len, data + 8, 1u << 22, &again, &again_len,
                                         NULL) == INF_OK);
            CHECK(again_len == len && memcmp(again, out, len) == 0);
            free(enc);
            free(again);
        } else {
            CHECK(out == NULL);
            CHECK(err.msg[0] != '\0');
        }
        free(out);
        /* the fix-up: a header that tells the truth about the frame after it */
        if (size >= INF_CACHE_ENTRY_HEADER && size <= (1u << 16)) {
            const uint8_t *frame = data + INF_CACHE_ENTRY_HEADER;
            size_t fl = size - INF_CACHE_ENTRY_HEADER;
            unsigned long long fcs = ZSTD_getFrameContentSize(frame, fl);
            if (fcs == ZSTD_CONTENTSIZE_ERROR || fcs == ZSTD_CONTENTSIZE_UNKNOWN ||
                fcs > (1u << 20))
                return 0;
            uint8_t *raw = malloc(fcs ? (size_t)fcs : 1);
            size_t got = ZSTD_decompress(raw, (size_t)fcs, frame, fl);
            if (ZSTD_isError(got) || got != fcs) {
                free(raw);
                return 0;
            }
            uint8_t *fix = malloc(size);
            memcpy(fix, data, size);
            memcpy(fix, "INFCACH1", 8);
            for (int i = 0; i < 8; i++) {
                fix[40 + i] = (uint8_t)((uint64_t)got >> (8 * i));
                fix[48 + i] = (uint8_t)((uint64_t)fl >> (8 * i));
            }
            unsigned int dl = 32;
            EVP_Digest(raw, got, fix + 56, &dl, EVP_sha256(), NULL);
            void *dec = NULL;
            size_t dec_len = 0;
            inf_status st2 =
                inf_cache_entry_decode(fix, size, fix + 8, 1u << 22, &dec, &dec_len, &err);
            CHECK(st2 == INF_OK);
            CHECK(dec_len == got && memcmp(dec, raw, got) == 0);
            free(dec);
            free(fix);
            free(raw);
        }
        return 0;
    }
    size_t tasks = (size_t)(sel >> 1) % 4 + 1;
    struct srv_event **evs = NULL;
    size_t *n_evs = NULL;
    if (!cache_blob_decode(data, size, tasks, &evs, &n_evs))
        return 0;
    for (size_t t = 0; t < tasks; t++) {
        CHECK(n_evs[t] >= 1);
        CHECK(evs[t][n_evs[t] - 1].type == SRV_EV_DONE);
        for (size_t i = 0; i < n_evs[t]; i++)
            if (evs[t][i].type == SRV_EV_TEXT)
                CHECK(evs[t][i].text && evs[t][i].text[evs[t][i].text_len] == '\0');
    }
    uint8_t *re = NULL;
    size_t re_len = 0;
    CHECK(cache_blob_encode(evs, n_evs, tasks, &re, &re_len));
    CHECK(re_len == size && memcmp(re, data, size) == 0);
    free(re);
    cache_blob_free(evs, n_evs, tasks);
    return 0;
}
