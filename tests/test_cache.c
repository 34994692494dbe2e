/*
 * test_cache.c - the response cache store (inferno/cache.h): the entry format against its
 * documented layout, get/put through both tiers, corrupt and truncated entries as misses, TTL,
 * the size bound under 10,000 inserts, clear/list, model digests against an independent
 * SHA-256, and kill -9 during writes (repeated at random moments) leaving a store that verify
 * accepts. INFERNO_CACHE_KILL_REPS sets the repetitions (default 10; the slow label runs 50).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "inferno/cache.h"
#include "t.h"

static char root[256];

static void make_root(void)
{
    snprintf(root, sizeof(root), "/tmp/inferno-test-cache-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        exit(1);
    }
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "rm -rf %s failed\n", path);
}

static void key_of(uint32_t i, uint8_t key[32])
{
    /* independent of the code under test: SHA-256 of the counter */
    unsigned int len = 32;
    EVP_Digest(&i, sizeof(i), key, &len, EVP_sha256(), NULL);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)next_rand();
}

static struct inf_cache *open_dir(const char *dir, uint64_t max_bytes, int64_t ttl, uint64_t mem)
{
    struct inf_cache_params p = {.dir = dir,
                                 .max_bytes = max_bytes,
                                 .max_entry_bytes = 1 << 20,
                                 .ttl_seconds = ttl,
                                 .memory_bytes = mem};
    struct inf_cache *c = NULL;
    struct inf_error err = {0};
    if (inf_cache_open(&p, &c, &err))
        fprintf(stderr, "open: %s\n", inf_error_message(&err));
    return c;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void test_entry_format(void)
{
    uint8_t key[32], other[32];
    key_of(1, key);
    key_of(2, other);
    const char text[] = "the same answer, the same answer, the same answer, again and again";
    void *enc = NULL, *dec = NULL;
    size_t enc_len = 0, dec_len = 0;
    struct inf_error err = {0};
    T_EQ_INT(inf_cache_entry_encode(key, text, sizeof(text), &enc, &enc_len, &err), INF_OK);
    const uint8_t *b = enc;
    /* the documented layout */
    T_OK(memcmp(b, "INFCACH1", 8) == 0);
    T_OK(memcmp(b + 8, key, 32) == 0);
    T_EQ_U64(le64(b + 40), sizeof(text));
    T_EQ_U64(le64(b + 48), enc_len - 88);
    uint8_t d[32];
    unsigned int dl = 32;
    EVP_Digest(text, sizeof(text), d, &dl, EVP_sha256(), NULL);
    T_OK(memcmp(b + 56, d, 32) == 0);
    T_EQ_INT(b[88], 0x28); /* zstd frame magic 28 B5 2F FD */
    T_EQ_INT(b[91], 0xFD);

    T_EQ_INT(inf_cache_entry_decode(enc, enc_len, key, 1 << 20, &dec, &dec_len, &err), INF_OK);
    T_EQ_U64(dec_len, sizeof(text));
    T_OK(dec && memcmp(dec, text, sizeof(text)) == 0);
    free(dec);
    /* refusals */
    T_EQ_INT(inf_cache_entry_decode(enc, enc_len, other, 1 << 20, &dec, &dec_len, &err),
             INF_EFORMAT);
    T_CONTAINS(inf_error_message(&err), "another key");
    T_EQ_INT(inf_cache_entry_decode(enc, enc_len - 1, key, 1 << 20, &dec, &dec_len, &err),
             INF_EFORMAT);
    T_CONTAINS(inf_error_message(&err), "truncated");
    T_EQ_INT(inf_cache_entry_decode(enc, 40, key, 1 << 20, &dec, &dec_len, &err), INF_EFORMAT);
    T_EQ_INT(inf_cache_entry_decode(enc, enc_len, key, 10, &dec, &dec_len, &err), INF_EFORMAT);
    uint8_t *copy = malloc(enc_len);
    for (size_t at = 0; at < enc_len; at += 7) { /* any flipped byte: refused, never wrong */
        memcpy(copy, enc, enc_len);
        copy[at] ^= 0x41;
        void *out = NULL;
        size_t out_len = 0;
        inf_status st = inf_cache_entry_decode(copy, enc_len, key, 1 << 20, &out, &out_len, &err);
        T_OK(st == INF_EFORMAT ||
             (st == INF_OK && out_len == sizeof(text) && memcmp(out, text, out_len) == 0));
        free(out);
    }
    free(copy);
    free(enc);
}

static void test_put_get(void)
{
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/pg", root);
    struct inf_cache *c = open_dir(dir, 0, 0, 1 << 20);
    T_OK(c != NULL);
    if (!c)
        return;
    uint8_t k1[32], k2[32];
    key_of(10, k1);
    key_of(11, k2);
    struct inf_error err = {0};
    void *data = NULL;
    size_t len = 0;
    T_EQ_INT(inf_cache_get(c, k1, &data, &len, &err), INF_ENOTFOUND);
    T_EQ_INT(inf_cache_put(c, k1, "m1", "hello", 5, &err), INF_OK);
    T_EQ_INT(inf_cache_get(c, k1, &data, &len, &err), INF_OK);
    T_OK(len == 5 && memcmp(data, "hello", 5) == 0);
    free(data);
    T_EQ_INT(inf_cache_get(c, k2, &data, &len, &err), INF_ENOTFOUND);
    /* replace */
    T_EQ_INT(inf_cache_put(c, k1, "m1", "bye", 3, &err), INF_OK);
    T_EQ_INT(inf_cache_get(c, k1, &data, &len, &err), INF_OK);
    T_OK(len == 3 && memcmp(data, "bye", 3) == 0);
    free(data);
    /* over max_entry_bytes: refused, nothing stored */
    uint8_t *big = calloc(1, (1 << 20) + 1);
    T_EQ_INT(inf_cache_put(c, k2, "m1", big, (1 << 20) + 1, &err), INF_ELIMIT);
    free(big);
    struct inf_cache_stats st;
    T_EQ_INT(inf_cache_stats(c, &st, &err), INF_OK);
    T_EQ_U64(st.entries, 1);
    T_OK(st.mem_hits >= 1);
    inf_cache_free(c);

    /* a second handle without a memory tier reads the disk */
    c = open_dir(dir, 0, 0, 0);
    T_EQ_INT(inf_cache_get(c, k1, &data, &len, &err), INF_OK);
    T_OK(len == 3 && memcmp(data, "bye", 3) == 0);
    free(data);
    inf_cache_free(c);
}

static void entry_file(const char *dir, const uint8_t key[32], char *out, size_t n)
{
    char h[65];
    for (int i = 0; i < 32; i++)
        snprintf(h + 2 * i, 3, "%02x", key[i]);
    snprintf(out, n, "%s/entries/%.2s/%s.zst", dir, h, h);
}

static void test_corrupt_is_miss(void)
{
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/corrupt", root);
    struct inf_cache *c = open_dir(dir, 0, 0, 0);
    T_OK(c != NULL);
    if (!c)
        return;
    struct inf_error err = {0};
    uint8_t k[32], k2[32];
    key_of(20, k);
    key_of(21, k2);
    uint8_t payload[4096];
    fill_random(payload, sizeof(payload));
    T_EQ_INT(inf_cache_put(c, k, "m", payload, sizeof(payload), &err), INF_OK);
    T_EQ_INT(inf_cache_put(c, k2, "m", payload, sizeof(payload), &err), INF_OK);
    char path[600];
    entry_file(dir, k, path, sizeof(path));
    FILE *f = fopen(path, "r+b");
    T_OK(f != NULL);
    if (f) {
        fseek(f, 200, SEEK_SET);
        int ch = fgetc(f);
        fseek(f, 200, SEEK_SET);
        fputc(ch ^ 0xff, f);
        fclose(f);
    }
    void *data = NULL;
    size_t len = 0;
    T_EQ_INT(inf_cache_get(c, k, &data, &len, &err), INF_ENOTFOUND);
    T_OK(data == NULL);
    struct inf_cache_stats st;
    inf_cache_stats(c, &st, &err);
    T_EQ_U64(st.corrupt, 1);
    T_EQ_U64(st.entries, 1); /* the bad one was dropped */
    /* truncated */
    entry_file(dir, k2, path, sizeof(path));
    T_EQ_INT(truncate(path, 100), 0);
    T_EQ_INT(inf_cache_get(c, k2, &data, &len, &err), INF_ENOTFOUND);
    /* deleted by hand */
    T_EQ_INT(inf_cache_put(c, k2, "m", payload, sizeof(payload), &err), INF_OK);
    unlink(path);
    T_EQ_INT(inf_cache_get(c, k2, &data, &len, &err), INF_ENOTFOUND);
    struct inf_cache_verify_report rep;
    T_EQ_INT(inf_cache_verify(c, &rep, NULL, NULL, &err), INF_OK);
    T_OK(rep.index_ok);
    T_EQ_U64(rep.bad, 0);
    inf_cache_free(c);
}

static void test_ttl(void)
{
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/ttl", root);
    struct inf_cache *c = open_dir(dir, 0, 1, 1 << 20);
    if (!c) {
        T_OK(0);
        return;
    }
    uint8_t k[32];
    key_of(30, k);
    struct inf_error err = {0};
    void *data = NULL;
    size_t len = 0;
    T_EQ_INT(inf_cache_put(c, k, "m", "x", 1, &err), INF_OK);
    T_EQ_INT(inf_cache_get(c, k, &data, &len, &err), INF_OK);
    free(data);
    usleep(1100 * 1000);
    T_EQ_INT(inf_cache_get(c, k, &data, &len, &err), INF_ENOTFOUND);
    inf_cache_free(c);
}

static void test_size_bound(void)
{
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/bound", root);
    const uint64_t bound = 256 * 1024;
    struct inf_cache *c = open_dir(dir, bound, 0, 64 * 1024);
    if (!c) {
        T_OK(0);
        return;
    }
    struct inf_error err = {0};
    uint8_t payload[1500];
    bool within = true;
    int failed = 0;
    for (uint32_t i = 0; i < 10000; i++) {
        uint8_t k[32];
        key_of(1000 + i, k);
        fill_random(payload, sizeof(payload)); /* incompressible: ~1.5 KB on disk each */
        if (inf_cache_put(c, k, i % 2 ? "odd" : "even", payload, sizeof(payload), &err))
            failed++;
        if (i % 500 == 499) {
            struct inf_cache_stats st;
            inf_cache_stats(c, &st, &err);
            within = within && st.bytes <= bound && st.mem_bytes <= 64 * 1024;
        }
    }
    T_EQ_INT(failed, 0);
    T_OK(within);
    struct inf_cache_stats st;
    inf_cache_stats(c, &st, &err);
    T_OK(st.bytes <= bound);
    T_OK(st.entries > 100 && st.entries < 200);
    T_OK(st.evictions >= 10000 - st.entries);
    /* the newest entries are the ones kept (LRU) */
    uint8_t k[32];
    void *data = NULL;
    size_t len = 0;
    key_of(1000 + 9999, k);
    T_EQ_INT(inf_cache_get(c, k, &data, &len, &err), INF_OK);
    free(data);
    key_of(1000, k);
    T_EQ_INT(inf_cache_get(c, k, &data, &len, &err), INF_ENOTFOUND);
    /* files on disk match the index */
    struct inf_cache_verify_report rep;
    T_EQ_INT(inf_cache_verify(c, &rep, NULL, NULL, &err), INF_OK);
    T_OK(rep.index_ok && rep.bad == 0 && rep.orphans == 0 && rep.partial == 0);
    T_EQ_U64(rep.checked, st.entries);
    /* clear by model, then all */
    uint64_t n = 0;
    T_EQ_INT(inf_cache_clear(c, "odd", &n, &err), INF_OK);
    struct inf_cache_stats st2;
    inf_cache_stats(c, &st2, &err);
    T_EQ_U64(st2.entries + n, st.entries);
    T_EQ_INT(inf_cache_clear(c, NULL, &n, &err), INF_OK);
    inf_cache_stats(c, &st2, &err);
    T_EQ_U64(st2.entries, 0);
    inf_cache_free(c);
}

static void test_model_digest(void)
{
    char dir[400], model[400];
    snprintf(dir, sizeof(dir), "%s/digest", root);
    snprintf(model, sizeof(model), "%s/model.bin", root);
    FILE *f = fopen(model, "wb");
    uint8_t bytes[3000];
    fill_random(bytes, sizeof(bytes));
    fwrite(bytes, 1, sizeof(bytes), f);
    fclose(f);
    struct inf_cache *c = open_dir(dir, 0, 0, 0);
    if (!c) {
        T_OK(0);
        return;
    }
    uint8_t d1[32], d2[32], ref[32];
    struct inf_error err = {0};
    T_EQ_INT(inf_cache_model_digest(c, model, d1, &err), INF_OK);
    /* independent: SHA-256("inferno-model-v1" + size (8 bytes LE) + the bytes) */
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t sz[8] = {0};
    for (int i = 0; i < 8; i++)
        sz[i] = (uint8_t)((uint64_t)sizeof(bytes) >> (8 * i));
    unsigned int dl = 32;
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, "inferno-model-v1", 16);
    EVP_DigestUpdate(md, sz, 8);
    EVP_DigestUpdate(md, bytes, sizeof(bytes));
    EVP_DigestFinal_ex(md, ref, &dl);
    EVP_MD_CTX_free(md);
    T_OK(memcmp(d1, ref, 32) == 0);
    inf_cache_free(c);
    /* remembered across handles (same path, size, mtime) */
    c = open_dir(dir, 0, 0, 0);
    T_EQ_INT(inf_cache_model_digest(c, model, d2, &err), INF_OK);
    T_OK(memcmp(d1, d2, 32) == 0);
    /* replaced: another digest */
    usleep(20 * 1000);
    f = fopen(model, "wb");
    bytes[5] ^= 1;
    fwrite(bytes, 1, sizeof(bytes), f);
    fclose(f);
    T_EQ_INT(inf_cache_model_digest(c, model, d2, &err), INF_OK);
    T_OK(memcmp(d1, d2, 32) != 0);
    T_EQ_INT(inf_cache_model_digest(c, "/nonexistent/model.gguf", d2, &err), INF_EIO);
    inf_cache_free(c);
}

/* kill -9 of a process writing entries, at random moments: the store stays consistent */
static void test_kill9(void)
{
    const char *e = getenv("INFERNO_CACHE_KILL_REPS");
    int reps = e ? atoi(e) : 10;
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/kill", root);
    int consistent = 0;
    uint64_t partial_seen = 0;
    for (int rep = 0; rep < reps; rep++) {
        pid_t pid = fork();
        if (pid == 0) {
            struct inf_cache *c = open_dir(dir, 2 << 20, 0, 0);
            if (!c)
                _exit(2);
            rng ^= (uint64_t)getpid() * 0x9E3779B97F4A7C15ull;
            static uint8_t payload[20000];
            for (uint32_t i = 0;; i++) {
                uint8_t k[32];
                uint32_t id = (uint32_t)(next_rand() % 400);
                key_of(id, k);
                size_t n = 100 + next_rand() % (sizeof(payload) - 100);
                fill_random(payload, n);
                inf_cache_put(c, k, "kill", payload, n, NULL);
                if (i % 7 == 0) {
                    uint64_t r = 0;
                    inf_cache_prune(c, &r, NULL);
                }
            }
        }
        usleep((useconds_t)(5000 + next_rand() % 60000));
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        /* the next open recovers; verify then reads every entry in full */
        struct inf_cache *c = open_dir(dir, 2 << 20, 0, 0);
        if (!c)
            continue;
        struct inf_cache_verify_report r;
        struct inf_error err = {0};
        if (inf_cache_verify(c, &r, NULL, NULL, &err) == INF_OK && r.index_ok && r.bad == 0 &&
            r.checked == r.ok)
            consistent++;
        partial_seen += r.partial + r.orphans;
        /* every indexed entry answers */
        inf_cache_free(c);
    }
    T_EQ_INT(consistent, reps);
    printf("kill -9: %d runs, all consistent: %s\n", reps, consistent == reps ? "yes" : "no");
}

int main(void)
{
    make_root();
    T_RUN(test_entry_format);
    T_RUN(test_put_get);
    T_RUN(test_corrupt_is_miss);
    T_RUN(test_ttl);
    T_RUN(test_size_bound);
    T_RUN(test_model_digest);
    T_RUN(test_kill9);
    rm_rf(root);
    T_DONE();
}
