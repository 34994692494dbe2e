/*
 * scratch.c - one 64-byte aligned scratch buffer per thread for the batched (panel) kernels:
 * grown when a chunk needs more, reused for every later chunk (a thread runs one product at a
 * time), freed when the thread ends.
 */
#include <pthread.h>
#include <stdlib.h>

#include "kernels/internal.h"

struct thread_scratch {
    void *buf;
    size_t size;
};
static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    struct thread_scratch *sc = p;
    free(sc->buf);
    free(sc);
}

static void key_init(void)
{
    if (pthread_key_create(&key, scratch_free) != 0)
        abort();
}

void *inf__thread_scratch(size_t bytes)
{
    bytes = (bytes + 63) / 64 * 64;
    pthread_once(&once, key_init);
    struct thread_scratch *sc = pthread_getspecific(key);
    if (!sc) {
        sc = calloc(1, sizeof(*sc));
        if (!sc || pthread_setspecific(key, sc) != 0) {
            free(sc);
            return NULL;
        }
    }
    if (sc->size < bytes) {
        void *b = aligned_alloc(64, bytes);
        if (!b)
            return NULL;
        free(sc->buf);
        sc->buf = b;
        sc->size = bytes;
    }
    return sc->buf;
}
