/*
 * test_sched.c - the server's engine side (src/server/sched.c, models.c) against references the
 * test computes itself with the public engine API: greedy generation, logprobs (log-softmax of
 * inf_get_logits_ith), prompt logprobs, embeddings; plus batching equality, prefix reuse, stop
 * strings, lengths, overflow, cancellation, admission and the model set's LRU.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "inferno/engine.h"
#include "inferno/log.h"
#include "inferno/tokenizer.h"
#include "server/sched.h"
#include "t.h"

static char model_path[1200];
static struct inf_model *g_model;
static const struct inf_tokenizer *g_tok;
static int32_t g_vocab, g_embd;

/* ---- references -------------------------------------------------------------------------- */

static struct inf_context *ref_ctx(bool embd)
{
    struct inf_context_params cp = inf_context_default_params();
    cp.n_ctx = 512;
    cp.n_batch = 512;
    cp.n_seq_max = 1;
    cp.kv_type = INF_KV_F32; /* as the engines under test */
    cp.embeddings = embd;
    cp.pooling = INF_POOL_MEAN;
    struct inf_context *c = NULL;
    struct inf_error err = {0};
    if (inf_context_new(g_model, &cp, &c, &err) != INF_OK)
        fprintf(stderr, "context: %s\n", err.msg);
    return c;
}

static int decode_one(struct inf_context *c, const inf_token *toks, int n, int pos0, bool all)
{
    int32_t pos[512];
    int8_t lg[512];
    for (int i = 0; i < n; i++) {
        pos[i] = pos0 + i;
        lg[i] = (int8_t)(all || i == n - 1);
    }
    struct inf_batch b = {.n_tokens = n, .token = toks, .pos = pos, .logits = lg};
    return inf_decode(c, &b, NULL);
}

static double ref_logprob(const float *l, inf_token id)
{
    double mx = l[0];
    for (int i = 1; i < g_vocab; i++)
        if (l[i] > mx)
            mx = l[i];
    double s = 0;
    for (int i = 0; i < g_vocab; i++)
        s += exp((double)l[i] - mx);
    return (double)l[id] - mx - log(s);
}

/* Greedy generation: up to n tokens (stops after an EOG token unless ignore_eos). */
static int ref_greedy(const inf_token *prompt, int n_prompt, int n, bool ignore_eos, inf_token *out,
                      double *lp)
{
    struct inf_context *c = ref_ctx(false);
    int k = 0;
    if (decode_one(c, prompt, n_prompt, 0, false) == INF_OK) {
        const float *l = inf_get_logits_ith(c, n_prompt - 1);
        for (; k < n;) {
            inf_token t = inf_argmax(l, g_vocab);
            if (lp)
                lp[k] = ref_logprob(l, t);
            out[k++] = t;
            if (!ignore_eos && inf_tok_is_eog(g_tok, t))
                break;
            if (k == n || decode_one(c, &t, 1, n_prompt + k - 1, false) != INF_OK)
                break;
            l = inf_get_logits_ith(c, 0);
        }
    }
    inf_context_free(c);
    return k;
}

static int encode(const char *text, inf_token *out, int cap)
{
    struct inf_tokens t = {0};
    inf_tok_encode(g_tok, text, strlen(text), INF_TOK_ADD_SPECIAL, &t, NULL);
    int n = (int)t.n < cap ? (int)t.n : cap;
    memcpy(out, t.ids, (size_t)n * sizeof(inf_token));
    inf_tokens_release(&t);
    return n;
}

/* ---- running tasks ------------------------------------------------------------------------ */

struct result {
    inf_token toks[1024];
    float lps[1024];
    struct srv_token_info first_info;
    int n;
    char text[8192];
    size_t text_len;
    int n_events;
    bool done, error;
    int http_status;
    char message[INF_ERROR_MSG_MAX];
    enum srv_finish finish;
    struct srv_usage usage;
    struct srv_token_info *plp;
    int n_plp;
    float *embd;
};

static void result_free(struct result *r)
{
    free(r->plp);
    free(r->embd);
}

static void collect(struct srv_task *t, struct result *r)
{
    memset(r, 0, sizeof(*r));
    struct srv_event ev;
    while (srv_task_next(t, &ev, 10000)) {
        switch (ev.type) {
        case SRV_EV_TEXT:
            if (r->text_len + ev.text_len < sizeof(r->text)) {
                memcpy(r->text + r->text_len, ev.text, ev.text_len);
                r->text_len += ev.text_len;
            }
            for (int i = 0; i < ev.n_tokens && r->n < 1024; i++) {
                if (r->n == 0)
                    r->first_info = ev.tokens[i];
                r->lps[r->n] = ev.tokens[i].logprob;
                r->toks[r->n++] = ev.tokens[i].id;
            }
            r->n_events++;
            break;
        case SRV_EV_PROMPT_LOGPROBS:
            r->plp = ev.tokens;
            r->n_plp = ev.n_tokens;
            ev.tokens = NULL;
            break;
        case SRV_EV_EMBEDDING:
            r->embd = ev.embedding;
            ev.embedding = NULL;
            break;
        case SRV_EV_DONE:
            r->done = true;
            r->finish = ev.finish;
            r->usage = ev.usage;
            break;
        case SRV_EV_ERROR:
            r->error = true;
            r->http_status = ev.http_status;
            snprintf(r->message, sizeof(r->message), "%s", ev.message);
            break;
        }
        srv_event_clear(&ev);
        if (r->done || r->error)
            break;
    }
    r->text[r->text_len] = 0;
}

static struct srv_task_params greedy_params(const inf_token *p, int n, int max_tokens)
{
    struct srv_task_params tp = {0};
    tp.kind = SRV_TASK_COMPLETION;
    tp.prompt = p;
    tp.n_prompt = n;
    tp.max_tokens = max_tokens;
    tp.sampling = inf_sampler_default_params();
    tp.sampling.temperature = 0;
    return tp;
}

static int g_batch_wait_ms; /* engines started by start() wait this long for a burst */

static struct srv_engine *start(uint32_t n_ctx, int n_parallel, uint32_t n_batch, int queue)
{
    struct srv_engine_params ep = {0};
    ep.batch_wait_ms = g_batch_wait_ms;
    ep.model_path = model_path;
    ep.model_id = "stories260K";
    ep.n_ctx = n_ctx;
    ep.n_parallel = n_parallel;
    ep.n_batch = n_batch;
    ep.n_threads = 1;
    ep.kv_type = INF_KV_F32;
    ep.queue_size = queue;
    ep.use_mmap = true;
    struct srv_engine *e = NULL;
    struct inf_error err = {0};
    if (srv_engine_start(&ep, &e, &err) != INF_OK)
        fprintf(stderr, "engine: %s\n", err.msg);
    return e;
}

static int run(struct srv_engine *e, const struct srv_task_params *tp, struct result *r)
{
    struct srv_task *t = NULL;
    struct inf_error err = {0};
    inf_status rc = srv_task_submit(e, tp, &t, &err);
    if (rc != INF_OK)
        return rc;
    collect(t, r);
    srv_task_release(t);
    return INF_OK;
}

static void pieces_text(const inf_token *t, int n, char *out, size_t cap)
{
    struct inf_tok_stream s;
    inf_tok_stream_init(&s, g_tok, INF_TOK_STREAM_REPLACE_INVALID);
    size_t o = 0;
    const char *txt;
    size_t len;
    for (int i = 0; i <= n; i++) {
        if (i < n ? inf_tok_stream_push(&s, t[i], &txt, &len, NULL)
                  : inf_tok_stream_flush(&s, &txt, &len, NULL))
            break;
        if (o + len < cap) {
            memcpy(out + o, txt, len);
            o += len;
        }
    }
    out[o] = 0;
    inf_tok_stream_release(&s);
}

static const char *story =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
    "sunshine. One day, she saw a big tree in the garden.";

/* ---- tests --------------------------------------------------------------------------------- */

static void test_greedy_matches_reference(void)
{
    inf_token p[256], ref[64];
    int np = encode("Once upon a time", p, 256);
    int nr = ref_greedy(p, np, 40, false, ref, NULL);
    struct srv_engine *e = start(1024, 4, 64, 8);
    T_OK(e != NULL);
    if (!e)
        return;
    struct srv_task_params tp = greedy_params(p, np, 40);
    struct result r;
    T_EQ_INT(run(e, &tp, &r), INF_OK);
    T_OK(r.done);
    T_EQ_INT(r.n, nr);
    T_OK(memcmp(r.toks, ref, (size_t)nr * sizeof(inf_token)) == 0);
    char want[8192];
    pieces_text(ref, nr, want, sizeof(want));
    if (nr > 0 && inf_tok_is_eog(g_tok, ref[nr - 1])) {
        T_EQ_INT(r.finish, SRV_FINISH_STOP);
    } else {
        T_EQ_INT(r.finish, SRV_FINISH_LENGTH);
        T_EQ_STR(r.text, want);
    }
    T_EQ_INT(r.usage.prompt_tokens, np);
    T_EQ_INT(r.usage.completion_tokens, nr);
    struct srv_engine_stats st;
    srv_engine_stats(e, &st);
    T_EQ_INT(st.slots_total, 4);
    T_EQ_INT(st.slots_busy, 0);
    T_EQ_U64(st.generated_tokens_total, (uint64_t)nr);
    T_EQ_U64(st.ttft.n, 1);
    T_EQ_INT(st.kv_cells_used, np + nr - 1);
    /* idle: the engine thread sleeps (process CPU time stays near zero) */
    struct timespec c0, c1, nap = {0, 200 * 1000000L};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu_ms = (double)(c1.tv_sec - c0.tv_sec) * 1e3 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e6;
    T_OK(cpu_ms < 50);
    struct srv_event ev;
    struct srv_task *t = NULL;
    T_EQ_INT(srv_task_submit(e, &tp, &t, NULL), INF_OK);
    struct result r2;
    collect(t, &r2);
    T_OK(!srv_task_next(t, &ev, 0)); /* nothing after DONE: a poll times out at once */
    srv_task_release(t);
    T_EQ_INT(r2.usage.cached_tokens, np - 1);
    T_OK(memcmp(r2.toks, ref, (size_t)nr * sizeof(inf_token)) == 0);
    result_free(&r2);
    result_free(&r);
    srv_engine_stop(e, 0);
}

static void test_concurrent_equals_sequential(void)
{
    static const char *prompts[8] = {"Once upon a time",   "The cat sat", "Lily was happy",
                                     "One day, Tom",       "The sun",     "She loved to play",
                                     "A big red ball was", "They went to"};
    inf_token p[8][64];
    int np[8];
    for (int i = 0; i < 8; i++)
        np[i] = encode(prompts[i], p[i], 64);
    /* one at a time, each on a fresh engine (no reuse between them) */
    static struct result seq[8], par[8];
    struct srv_engine *e = start(2048, 8, 16, 16);
    if (!e) {
        T_OK(0);
        return;
    }
    for (int i = 0; i < 8; i++) {
        struct srv_task_params tp = greedy_params(p[i], np[i], 24 + i);
        tp.ignore_eos = true;
        if (i % 2) { /* seeded sampling is independent of the batch too */
            tp.sampling.temperature = 0.9f;
            tp.sampling.seed = 1234u + (unsigned)i;
        }
        run(e, &tp, &seq[i]);
    }
    srv_engine_stop(e, 0);
    e = start(2048, 8, 16, 16); /* n_batch 16: prompts are chunked while others generate */
    struct srv_task *t[8];
    for (int i = 0; i < 8; i++) {
        struct srv_task_params tp = greedy_params(p[i], np[i], 24 + i);
        tp.ignore_eos = true;
        if (i % 2) { /* seeded sampling is independent of the batch too */
            tp.sampling.temperature = 0.9f;
            tp.sampling.seed = 1234u + (unsigned)i;
        }
        T_EQ_INT(srv_task_submit(e, &tp, &t[i], NULL), INF_OK);
    }
    for (int i = 0; i < 8; i++) {
        collect(t[i], &par[i]);
        srv_task_release(t[i]);
    }
    for (int i = 0; i < 8; i++) {
        T_EQ_INT(par[i].n, 24 + i);
        T_EQ_INT(par[i].n, seq[i].n);
        T_OK(memcmp(par[i].toks, seq[i].toks, (size_t)seq[i].n * sizeof(inf_token)) == 0);
        T_EQ_STR(par[i].text, seq[i].text);
        T_EQ_INT(par[i].finish, SRV_FINISH_LENGTH);
    }
    srv_engine_stop(e, 0);
}

static void test_prefix_reuse(void)
{
    inf_token a[256], b[256], ref[64];
    int na = encode(story, a, 256);
    int nb = encode(story, b, 256);
    /* b shares a's first 20 tokens, then differs */
    int shared = 20;
    int tail = encode("The dog barked at the moon and", b + shared, 256 - shared);
    /* the tail was encoded with BOS: drop it */
    memmove(b + shared, b + shared + 1, (size_t)(tail - 1) * sizeof(inf_token));
    nb = shared + tail - 1;
    int nr = ref_greedy(b, nb, 16, true, ref, NULL);
    struct srv_engine *e = start(1024, 2, 64, 8);
    struct result r1, r2;
    struct srv_task_params tp = greedy_params(a, na, 8);
    run(e, &tp, &r1);
    T_EQ_INT(r1.usage.cached_tokens, 0);
    /* the slot holds a's prompt plus its generated tokens but the last */
    inf_token held[300];
    memcpy(held, a, (size_t)na * sizeof(inf_token));
    memcpy(held + na, r1.toks, (size_t)(r1.n - 1) * sizeof(inf_token));
    int nh = na + r1.n - 1, lcp = 0;
    while (lcp < nh && lcp < nb && held[lcp] == b[lcp])
        lcp++;
    if (lcp > nb - 1)
        lcp = nb - 1;
    T_OK(lcp >= shared);
    tp = greedy_params(b, nb, 16);
    tp.ignore_eos = true;
    run(e, &tp, &r2);
    T_EQ_INT(r2.usage.cached_tokens, lcp);
    T_EQ_INT(r2.n, nr);
    T_OK(memcmp(r2.toks, ref, (size_t)nr * sizeof(inf_token)) == 0);
    struct srv_engine_stats st;
    srv_engine_stats(e, &st);
    T_EQ_U64(st.cached_tokens_total, (uint64_t)lcp);
    T_EQ_U64(st.prompt_tokens_total, (uint64_t)(na + nb - lcp));
    /* the same prompt again: everything but the last prompt token is reused */
    struct result r3;
    run(e, &tp, &r3);
    T_EQ_INT(r3.usage.cached_tokens, nb - 1);
    T_OK(memcmp(r3.toks, ref, (size_t)nr * sizeof(inf_token)) == 0);
    /* prompt_logprobs tasks never reuse */
    tp.prompt_logprobs = true;
    tp.max_tokens = 1;
    struct result r4;
    run(e, &tp, &r4);
    T_EQ_INT(r4.usage.cached_tokens, 0);
    T_EQ_INT(r4.toks[0], ref[0]);
    result_free(&r1);
    result_free(&r2);
    result_free(&r3);
    result_free(&r4);
    srv_engine_stop(e, 0);
}

static void test_stop_strings(void)
{
    inf_token p[64], ref[64];
    int np = encode("Once upon a time", p, 64);
    int nr = ref_greedy(p, np, 40, true, ref, NULL);
    /* a stop string spanning the boundary between two ASCII pieces of length >= 2 */
    size_t off = 0;
    int k = -1;
    size_t lk = 0;
    for (int i = 5; i + 1 < nr && k < 0; i++) {
        size_t l1, l2;
        const char *s1 = inf_tok_piece(g_tok, ref[i], false, &l1);
        const char *s2 = inf_tok_piece(g_tok, ref[i + 1], false, &l2);
        bool ascii = l1 >= 2 && l2 >= 2;
        for (size_t j = 0; ascii && j < l1; j++)
            ascii = (unsigned char)s1[j] < 0x80;
        for (size_t j = 0; ascii && j < l2; j++)
            ascii = (unsigned char)s2[j] < 0x80;
        if (ascii) {
            k = i;
            lk = l1;
        }
    }
    char full[8192];
    pieces_text(ref, nr, full, sizeof(full));
    if (k < 0) {
        T_SKIP_ALL("no two adjacent ASCII pieces in the greedy output");
    }
    char prefix[8192];
    pieces_text(ref, k + 1, prefix, sizeof(prefix));
    off = strlen(prefix); /* end of piece k */
    char stop[8];
    memcpy(stop, full + off - 2, 4);
    stop[4] = 0;
    const char *first = strstr(full, stop);
    size_t want_len = (size_t)(first - full);

    struct srv_engine *e = start(1024, 2, 64, 8);
    struct srv_task_params tp = greedy_params(p, np, 40);
    tp.ignore_eos = true;
    const char *stops[2] = {"\x01never", stop};
    tp.stop = stops;
    tp.n_stop = 2;
    struct result r;
    run(e, &tp, &r);
    T_EQ_INT(r.finish, SRV_FINISH_STOP);
    T_EQ_INT(r.text_len, want_len);
    T_OK(strncmp(r.text, full, want_len) == 0);
    T_OK(strstr(r.text, stop) == NULL);
    T_OK(r.n <= nr);
    T_OK(memcmp(r.toks, ref, (size_t)r.n * sizeof(inf_token)) == 0);

    /* a stop string that only starts matching at the very end: held back, then released */
    char tailstop[16];
    size_t fl = strlen(full);
    snprintf(tailstop, sizeof(tailstop), "%c#zz", full[fl - 1]);
    const char *stops2[1] = {tailstop};
    tp.stop = stops2;
    tp.n_stop = 1;
    struct result r2;
    run(e, &tp, &r2);
    T_EQ_INT(r2.finish, SRV_FINISH_LENGTH);
    T_EQ_STR(r2.text, full);
    T_EQ_INT(r2.n, 40);
    (void)lk;
    result_free(&r);
    result_free(&r2);
    srv_engine_stop(e, 0);
}

static void test_lengths_and_overflow(void)
{
    inf_token p[128], ref[128];
    int np = encode("Once upon a time", p, 128);
    struct srv_engine *e = start(128, 2, 32, 8); /* 64 cells per slot */
    T_EQ_INT(srv_engine_slot_ctx(e), 64);
    int nr = ref_greedy(p, np, 64 - np + 1, true, ref, NULL);
    struct srv_task_params tp = greedy_params(p, np, -1);
    tp.ignore_eos = true;
    struct result r;
    run(e, &tp, &r);
    T_EQ_INT(r.finish, SRV_FINISH_LENGTH);
    T_EQ_INT(r.n, 64 - np + 1); /* the slot holds 64 cells; the last token is never decoded */
    T_EQ_INT(r.n, nr);
    T_OK(memcmp(r.toks, ref, (size_t)nr * sizeof(inf_token)) == 0);
    /* max_tokens 0: the prompt only */
    tp.max_tokens = 0;
    struct result r0;
    run(e, &tp, &r0);
    T_EQ_INT(r0.finish, SRV_FINISH_LENGTH);
    T_EQ_INT(r0.n, 0);
    /* overflow: 65 tokens in a 64-cell slot */
    inf_token big[65];
    for (int i = 0; i < 65; i++)
        big[i] = p[i % np];
    tp = greedy_params(big, 65, 4);
    struct result ro;
    T_EQ_INT(run(e, &tp, &ro), INF_OK);
    T_OK(ro.error);
    T_EQ_INT(ro.http_status, 400);
    T_CONTAINS(ro.message, "65");
    T_CONTAINS(ro.message, "64");
    /* exactly 64: accepted, one token (LENGTH at the slot end) */
    tp = greedy_params(big, 64, 4);
    struct result r64;
    run(e, &tp, &r64);
    T_OK(r64.done);
    T_EQ_INT(r64.n, 1);
    T_EQ_INT(r64.finish, SRV_FINISH_LENGTH);
    result_free(&r);
    result_free(&r0);
    result_free(&ro);
    result_free(&r64);
    srv_engine_stop(e, 0);
}

static void wait_first_text(struct srv_task *t)
{
    struct srv_event ev;
    while (srv_task_next(t, &ev, 10000)) {
        enum srv_event_type ty = ev.type;
        srv_event_clear(&ev);
        if (ty == SRV_EV_TEXT)
            return;
    }
}

static void test_cancel_and_queue(void)
{
    inf_token p[64];
    int np = encode("Once upon a time", p, 64);
    struct srv_engine *e = start(4096, 1, 64, 1);
    struct srv_task_params tp = greedy_params(p, np, -1);
    tp.ignore_eos = true;
    struct srv_task *a = NULL, *b = NULL, *c = NULL;
    T_EQ_INT(srv_task_submit(e, &tp, &a, NULL), INF_OK);
    wait_first_text(a);
    struct srv_engine_stats st;
    srv_engine_stats(e, &st);
    T_EQ_INT(st.slots_busy, 1);
    T_OK(!srv_engine_idle(e));
    struct srv_task_params tb = greedy_params(p, np, 3);
    T_EQ_INT(srv_task_submit(e, &tb, &b, NULL), INF_OK); /* waits */
    struct inf_error err = {0};
    T_EQ_INT(srv_task_submit(e, &tb, &c, &err), INF_ELIMIT);
    T_OK(c == NULL);
    srv_engine_stats(e, &st);
    T_EQ_INT(st.queue_depth, 1);
    srv_task_cancel(a);
    srv_task_cancel(a); /* idempotent */
    struct result ra, rb;
    collect(a, &ra);
    T_OK(ra.done);
    T_EQ_INT(ra.finish, SRV_FINISH_CANCELLED);
    T_OK(ra.n < 4000);
    collect(b, &rb); /* b got the slot */
    T_OK(rb.done);
    T_EQ_INT(rb.finish, SRV_FINISH_LENGTH);
    T_EQ_INT(rb.n, 3);
    srv_engine_stats(e, &st);
    T_EQ_INT(st.slots_busy, 0);
    T_EQ_U64(st.tasks_cancelled, 1);
    T_OK(srv_engine_idle(e));
    srv_task_release(a);
    srv_task_release(b);
    /* release before completion cancels; stop with a running task cancels it */
    T_EQ_INT(srv_task_submit(e, &tp, &a, NULL), INF_OK);
    wait_first_text(a);
    srv_task_release(a);
    T_EQ_INT(srv_task_submit(e, &tp, &b, NULL), INF_OK);
    wait_first_text(b);
    srv_engine_stop(e, 20);
    struct result rs;
    collect(b, &rs);
    T_EQ_INT(rs.finish, SRV_FINISH_CANCELLED);
    srv_task_release(b); /* the engine is freed here */
    result_free(&ra);
    result_free(&rb);
    result_free(&rs);
}

/*
 * Background (batch) tasks: they wait while a live task waits; a live task that finds every
 * slot busy with background work takes the slot of the background task that started last,
 * which ends with a 503 ERROR (its submitter runs it again); background tasks do not count
 * against queue_size. The live task's answer equals the reference.
 */
static void test_background_priority(void)
{
    inf_token p[64];
    int np = encode("Once upon a time", p, 64);
    struct srv_engine *e = start(4096, 2, 64, 1);
    struct srv_task_params bg = greedy_params(p, np, -1);
    bg.ignore_eos = true;
    bg.background = true;
    struct srv_task *b[4] = {0}, *live = NULL;
    /* four background tasks: two run, two wait; none is refused by queue_size 1 */
    for (int i = 0; i < 4; i++)
        T_EQ_INT(srv_task_submit(e, &bg, &b[i], NULL), INF_OK);
    wait_first_text(b[0]);
    wait_first_text(b[1]);
    struct srv_engine_stats st;
    srv_engine_stats(e, &st);
    T_EQ_INT(st.slots_busy, 2);
    T_EQ_INT(st.queue_depth, 2);
    struct srv_task_params lp = greedy_params(p, np, 5);
    T_EQ_INT(srv_task_submit(e, &lp, &live, NULL), INF_OK); /* queue_size 1 still has room */
    struct result rl, rb;
    collect(live, &rl);
    T_OK(rl.done);
    inf_token want[8];
    int k = ref_greedy(p, np, 5, false, want, NULL);
    T_EQ_INT(rl.n, k);
    T_OK(k > 0 && memcmp(rl.toks, want, (size_t)k * sizeof(inf_token)) == 0);
    /* the later of the two running background tasks was preempted */
    collect(b[1], &rb);
    T_OK(rb.error);
    T_EQ_INT(rb.http_status, 503);
    T_CONTAINS(rb.message, "preempted");
    srv_engine_stats(e, &st);
    T_EQ_U64(st.tasks_preempted, 1);
    for (int i = 0; i < 4; i++)
        srv_task_release(b[i]); /* cancels the others */
    srv_task_release(live);
    srv_engine_stop(e, 0);
    result_free(&rl);
    result_free(&rb);
}

/*
 * Prompts are scheduled oldest first, each taking what it needs of n_batch: two requests that
 * arrive together at an idle engine (the batch wait puts both in its first step; it ends as soon
 * as both slots are taken) with 40-token prompts and n_batch 16: the older one's prompt takes
 * steps 1-3 (16 + 16 + 8), so its first token comes from step 3, not from step 5 as when the
 * steps were shared evenly; the younger one's prompt gets the rest of step 3 and then what the
 * older one's generation leaves (15 a step): first token from step 6. Results equal the
 * references.
 */
static void test_oldest_prompt_first(void)
{
    inf_token all[512], pa[40], pb[40], ra[6], rb[6];
    char text[1024];
    snprintf(text, sizeof(text),
             "%s The tree was tall and green, and a small bird lived in it. Lily wanted to "
             "climb the tree, but her mom said no.",
             story);
    int n_all = encode(text, all, 512);
    T_OK(n_all >= 80);
    if (n_all < 80)
        return;
    memcpy(pa, all, sizeof(pa));
    pb[0] = all[0]; /* BOS, then a different 39-token stretch of the story */
    memcpy(pb + 1, all + 41, 39 * sizeof(inf_token));
    T_EQ_INT(ref_greedy(pa, 40, 6, true, ra, NULL), 6);
    T_EQ_INT(ref_greedy(pb, 40, 6, true, rb, NULL), 6);
    g_batch_wait_ms = 60000;
    struct srv_engine *e = start(1024, 2, 16, 4);
    g_batch_wait_ms = 0;
    T_OK(e != NULL);
    if (!e)
        return;
    struct srv_task_params ta = greedy_params(pa, 40, 6), tb = greedy_params(pb, 40, 6);
    ta.ignore_eos = tb.ignore_eos = true;
    struct srv_task *a = NULL, *b = NULL;
    T_EQ_INT(srv_task_submit(e, &ta, &a, NULL), INF_OK);
    T_EQ_INT(srv_task_submit(e, &tb, &b, NULL), INF_OK);
    struct result r_a, r_b;
    collect(a, &r_a);
    collect(b, &r_b);
    T_OK(r_a.done && r_b.done);
    T_EQ_INT(r_a.usage.ttft_steps, 3);
    T_EQ_INT(r_b.usage.ttft_steps, 6);
    T_EQ_INT(r_a.n, 6);
    T_EQ_INT(r_b.n, 6);
    T_OK(memcmp(r_a.toks, ra, sizeof(ra)) == 0);
    T_OK(memcmp(r_b.toks, rb, sizeof(rb)) == 0);
    struct srv_engine_stats st;
    srv_engine_stats(e, &st);
    /* the 80 prompt tokens plus each task's tokens fed back (all but the last of 6) */
    T_EQ_U64(st.batch_tokens_total, 80 + 5 + 5);
    T_EQ_U64(st.prompt_tokens_total, 80);
    srv_task_release(a);
    srv_task_release(b);
    result_free(&r_a);
    result_free(&r_b);
    /* a lone request cancelled during the batch wait ends it (no wait for the deadline) */
    T_EQ_INT(srv_task_submit(e, &ta, &a, NULL), INF_OK);
    srv_task_cancel(a);
    collect(a, &r_a);
    T_OK(r_a.done);
    T_EQ_INT(r_a.finish, SRV_FINISH_CANCELLED);
    srv_task_release(a);
    result_free(&r_a);
    srv_engine_stop(e, 0);
}

/*
 * A request that arrives while another generates gets its prompt into the next step (beside
 * the generating slot's token) and its first token from it: at most the step in flight when it
 * arrived and its own. Both results equal the references.
 */
static void test_late_request_joins_next_step(void)
{
    inf_token pa[64], pb[64], ra[48], rb[8];
    int na = encode("Once upon a time", pa, 64);
    int nb = encode("The cat sat on the mat", pb, 64);
    T_OK(nb <= 15);
    T_EQ_INT(ref_greedy(pa, na, 48, true, ra, NULL), 48);
    T_EQ_INT(ref_greedy(pb, nb, 8, true, rb, NULL), 8);
    struct srv_engine *e = start(1024, 4, 16, 4);
    T_OK(e != NULL);
    if (!e)
        return;
    struct srv_task_params ta = greedy_params(pa, na, 48), tb = greedy_params(pb, nb, 8);
    ta.ignore_eos = tb.ignore_eos = true;
    struct srv_task *a = NULL, *b = NULL;
    T_EQ_INT(srv_task_submit(e, &ta, &a, NULL), INF_OK);
    struct srv_event ev;
    inf_token first = -1;
    while (first < 0 && srv_task_next(a, &ev, 10000)) { /* a is generating */
        if (ev.type == SRV_EV_TEXT && ev.n_tokens > 0)
            first = ev.tokens[0].id;
        bool end = ev.type == SRV_EV_DONE || ev.type == SRV_EV_ERROR;
        srv_event_clear(&ev);
        if (end)
            break;
    }
    T_EQ_INT(first, ra[0]);
    T_EQ_INT(srv_task_submit(e, &tb, &b, NULL), INF_OK);
    struct result r_a, r_b;
    collect(b, &r_b);
    collect(a, &r_a);
    T_OK(r_b.done);
    T_OK(r_b.usage.ttft_steps >= 1 && r_b.usage.ttft_steps <= 2);
    T_EQ_INT(r_b.n, 8);
    T_OK(memcmp(r_b.toks, rb, sizeof(rb)) == 0);
    T_OK(r_a.done);
    T_EQ_INT(r_a.usage.completion_tokens, 48);
    T_EQ_INT(r_a.usage.ttft_steps, 1);
    T_EQ_INT(r_a.n, 47); /* the tokens after the first */
    T_OK(memcmp(r_a.toks, ra + 1, 47 * sizeof(inf_token)) == 0);
    srv_task_release(a);
    srv_task_release(b);
    result_free(&r_a);
    result_free(&r_b);
    srv_engine_stop(e, 0);
}

static void test_logprobs(void)
{
    inf_token p[64], ref[16];
    double lp[16];
    int np = encode("Once upon a time", p, 64);
    int nr = ref_greedy(p, np, 8, true, ref, lp);
    struct srv_engine *e = start(1024, 2, 64, 8);
    struct srv_task_params tp = greedy_params(p, np, 8);
    tp.ignore_eos = true;
    tp.logprobs = true;
    tp.top_logprobs = 5;
    struct result r;
    run(e, &tp, &r);
    T_EQ_INT(r.n, nr);
    for (int i = 0; i < nr && i < r.n; i++) {
        T_EQ_INT(r.toks[i], ref[i]);
        T_NEAR(r.lps[i], lp[i], 1e-4);
    }
    /* the first token's alternatives against the reference's full log-softmax */
    struct inf_context *c = ref_ctx(false);
    decode_one(c, p, np, 0, false);
    const float *l = inf_get_logits_ith(c, np - 1);
    T_EQ_INT(r.first_info.n_top, 5);
    T_EQ_INT(r.first_info.top[0].id, ref[0]);
    for (int k = 0; k < r.first_info.n_top; k++) {
        T_NEAR(r.first_info.top[k].logprob, ref_logprob(l, r.first_info.top[k].id), 1e-4);
        if (k > 0)
            T_OK(r.first_info.top[k].logprob <= r.first_info.top[k - 1].logprob);
    }
    /* nothing outside the top 5 is more likely than the fifth */
    int better = 0;
    for (int v = 0; v < g_vocab; v++)
        if (l[v] > l[r.first_info.top[4].id])
            better++;
    T_EQ_INT(better, 4);
    inf_context_free(c);

    /* prompt logprobs (echo): every prompt token given the ones before it */
    inf_token s[256];
    int ns = encode(story, s, 256);
    struct srv_task_params tq = greedy_params(s, ns, 0);
    tq.prompt_logprobs = true;
    tq.top_logprobs = 3;
    struct result rp;
    run(e, &tq, &rp);
    T_EQ_INT(rp.n_plp, ns);
    T_EQ_INT(rp.n, 0);
    c = ref_ctx(false);
    decode_one(c, s, ns, 0, true);
    if (rp.n_plp == ns) {
        T_OK(isnan(rp.plp[0].logprob));
        T_EQ_INT(rp.plp[0].id, s[0]);
        int bad = 0;
        for (int i = 1; i < ns; i++) {
            const float *row = inf_get_logits_ith(c, i - 1);
            if (rp.plp[i].id != s[i] || fabs(rp.plp[i].logprob - ref_logprob(row, s[i])) > 1e-4 ||
                rp.plp[i].n_top != 3 || rp.plp[i].top[0].id != inf_argmax(row, g_vocab))
                bad++;
        }
        T_EQ_INT(bad, 0);
    }
    inf_context_free(c);
    result_free(&r);
    result_free(&rp);
    srv_engine_stop(e, 0);
}

static void test_embeddings(void)
{
    inf_token p[256];
    int np = encode(story, p, 256);
    struct srv_engine *e = start(1024, 2, 64, 8);
    struct srv_task_params tp = {0};
    tp.kind = SRV_TASK_EMBEDDING;
    tp.prompt = p;
    tp.n_prompt = np;
    struct result r;
    run(e, &tp, &r);
    T_OK(r.done);
    T_OK(r.embd != NULL);
    T_EQ_INT(r.usage.prompt_tokens, np);
    struct inf_context *c = ref_ctx(true);
    int32_t pos[256];
    for (int i = 0; i < np; i++)
        pos[i] = i;
    struct inf_batch b = {.n_tokens = np, .token = p, .pos = pos};
    T_EQ_INT(inf_decode(c, &b, NULL), INF_OK);
    const float *v = inf_get_embeddings_seq(c, 0);
    double ss = 0, norm = 0, maxd = 0;
    for (int j = 0; j < g_embd; j++)
        ss += (double)v[j] * v[j];
    for (int j = 0; r.embd && j < g_embd; j++) {
        norm += (double)r.embd[j] * r.embd[j];
        double d = fabs(r.embd[j] - v[j] / sqrt(ss));
        if (d > maxd)
            maxd = d;
    }
    T_NEAR(norm, 1.0, 1e-5);
    T_NEAR(maxd, 0, 1e-5);
    inf_context_free(c);
    result_free(&r);
    srv_engine_stop(e, 0);
}

/*
 * Issue #14 item 8: an embedding is decoded in chunks between the slots' steps. A task generates
 * while a 200-token embedding is submitted with n_batch 16: the slots' context makes a step (one
 * generated token) between every chunk of 15 embedding tokens, so at least 12 steps end while
 * the embedding runs (ttft_steps of its DONE); the old inline embedding let none happen. The
 * vector equals the single-pass reference.
 */
static void test_embedding_interleaved(void)
{
    char text[4096] = "";
    while (strlen(text) + strlen(story) + 2 < sizeof(text))
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s ", story);
    inf_token p[512];
    int np = encode(text, p, 200);
    T_EQ_INT(np, 200);
    struct srv_engine *e = start(2048, 2, 16, 8);
    inf_token q[64];
    int nq = encode("Once upon a time", q, 64);
    struct srv_task_params tg = greedy_params(q, nq, -1);
    tg.ignore_eos = true;
    struct srv_task *gen = NULL;
    T_EQ_INT(srv_task_submit(e, &tg, &gen, NULL), INF_OK);
    wait_first_text(gen);
    struct srv_task_params tp = {0};
    tp.kind = SRV_TASK_EMBEDDING;
    tp.prompt = p;
    tp.n_prompt = np;
    struct result r;
    run(e, &tp, &r);
    T_OK(r.done);
    T_EQ_INT(r.usage.prompt_tokens, np);
    T_OK(r.usage.ttft_steps >= 12);
    if (r.usage.ttft_steps < 12)
        fprintf(stderr, "  steps during the embedding: %d\n", (int)r.usage.ttft_steps);
    srv_task_release(gen);
    struct inf_context *c = ref_ctx(true);
    int32_t pos[512];
    for (int i = 0; i < np; i++)
        pos[i] = i;
    struct inf_batch b = {.n_tokens = np, .token = p, .pos = pos};
    T_EQ_INT(inf_decode(c, &b, NULL), INF_OK);
    const float *v = inf_get_embeddings_seq(c, 0);
    double ss = 0, maxd = 0;
    for (int j = 0; j < g_embd; j++)
        ss += (double)v[j] * v[j];
    for (int j = 0; r.embd && j < g_embd; j++) {
        double d = fabs(r.embd[j] - v[j] / sqrt(ss));
        maxd = d > maxd ? d : maxd;
    }
    T_OK(r.embd != NULL);
    T_NEAR(maxd, 0, 1e-5);
    inf_context_free(c);
    result_free(&r);
    srv_engine_stop(e, 0);
}

/*
 * Issue #14 item 10: a request's tasks are admitted together and the queue counts requests.
 * Without a queue (queue_size 0) and two slots, a request of 3 tasks can never be held
 * (INF_EINVAL naming the limit, on an idle engine) while 2 are fine. One slot, queue_size 2: on
 * an idle engine a request of 4 tasks waits as one request; with the slot busy, a request of 3
 * waits as one request, so one more single request still fits (the second place), and the next
 * one is refused.
 */
static void test_submit_group(void)
{
    inf_token p[64];
    int np = encode("Once upon a time", p, 64);
    struct srv_task_params tp[4];
    for (int i = 0; i < 4; i++)
        tp[i] = greedy_params(p, np, 2);
    struct srv_task *t[4] = {0}, *u = NULL, *w = NULL, *x = NULL;
    struct inf_error err = {0};
    struct result r;
    struct srv_engine *e0 = start(1024, 2, 64, 0);
    T_EQ_INT(srv_task_submit_n(e0, tp, 3, t, &err), INF_EINVAL);
    T_CONTAINS(err.msg, "at most 2");
    T_CONTAINS(err.msg, "queue_size");
    T_OK(t[0] == NULL);
    T_EQ_INT(srv_task_submit_n(e0, tp, 2, t, &err), INF_OK);
    for (int i = 0; i < 2; i++) {
        collect(t[i], &r);
        T_OK(r.done && r.n == 2);
        srv_task_release(t[i]);
        t[i] = NULL;
    }
    srv_engine_stop(e0, 0);

    struct srv_engine *e = start(1024, 1, 64, 2);
    T_EQ_INT(srv_task_submit_n(e, tp, 4, t, &err), INF_OK);
    for (int i = 0; i < 4; i++) {
        collect(t[i], &r);
        T_OK(r.done && r.n == 2);
        srv_task_release(t[i]);
        t[i] = NULL;
    }
    struct srv_task_params tl = greedy_params(p, np, -1);
    tl.ignore_eos = true;
    struct srv_task *busy = NULL;
    T_EQ_INT(srv_task_submit(e, &tl, &busy, NULL), INF_OK);
    wait_first_text(busy);
    T_EQ_INT(srv_task_submit_n(e, tp, 3, t, &err), INF_OK);
    T_EQ_INT(srv_task_submit(e, &tp[0], &u, &err), INF_OK);
    T_EQ_INT(srv_task_submit(e, &tp[0], &w, &err), INF_ELIMIT);
    T_OK(w == NULL);
    srv_task_release(busy);
    for (int i = 0; i < 3; i++) {
        collect(t[i], &r);
        T_OK(r.done && r.n == 2);
        srv_task_release(t[i]);
    }
    collect(u, &r);
    T_OK(r.done && r.n == 2);
    srv_task_release(u);
    T_EQ_INT(srv_task_submit(e, &tp[0], &x, &err), INF_OK);
    collect(x, &r);
    T_OK(r.done);
    srv_task_release(x);
    srv_engine_stop(e, 0);
}

static bool copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    bool ok = a && b;
    char buf[65536];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof(buf), a)) > 0)
        ok = fwrite(buf, 1, n, b) == n;
    if (a)
        fclose(a);
    if (b)
        fclose(b);
    return ok;
}

static void test_models_lru(void)
{
    char dir[] = "/tmp/test_sched_XXXXXX";
    if (!mkdtemp(dir)) {
        T_OK(0);
        return;
    }
    char pa[256], pb[256];
    snprintf(pa, sizeof(pa), "%s/alpha.gguf", dir);
    snprintf(pb, sizeof(pb), "%s/beta.gguf", dir);
    T_OK(copy_file(model_path, pa));
    T_OK(copy_file(model_path, pb));
    char pbad[256];
    snprintf(pbad, sizeof(pbad), "%s/broken.bin", dir);
    FILE *fb = fopen(pbad, "wb");
    if (fb) {
        fputs("GGUF but not really", fb);
        fclose(fb);
    }
    const char *paths[2] = {pa, pbad};
    struct srv_models_params mp = {0};
    mp.model_paths = paths;
    mp.n_model_paths = 2;
    mp.models_dir = dir; /* finds alpha again (kept once) and beta */
    mp.max_loaded = 1;
    mp.engine.n_ctx = 256;
    mp.engine.n_parallel = 1;
    mp.engine.n_batch = 64;
    mp.engine.n_threads = 1;
    mp.engine.kv_type = INF_KV_F32;
    mp.engine.queue_size = 4;
    mp.engine.use_mmap = true;
    struct srv_models *m = NULL;
    struct inf_error err = {0};
    T_EQ_INT(srv_models_new(&mp, &m, &err), INF_OK);
    if (!m)
        return;
    struct srv_model_entry *list = NULL;
    size_t n = 0;
    T_EQ_INT(srv_models_list(m, &list, &n, &err), INF_OK);
    T_EQ_INT(n, 3);
    if (n == 3) {
        T_EQ_STR(list[0].id, "alpha");
        T_EQ_STR(list[1].id, "broken.bin");
        T_EQ_STR(list[2].id, "beta");
        T_OK(!list[0].loaded && !list[2].loaded);
        T_OK(list[0].created > 0);
    }
    free(list);
    struct srv_engine *ea = NULL, *eb = NULL;
    T_EQ_INT(srv_models_acquire(m, NULL, &ea, &err), INF_OK); /* the default: alpha */
    T_OK(ea && strcmp(srv_engine_model_id(ea), "alpha") == 0);
    T_EQ_INT(srv_models_health(m), SRV_HEALTH_OK);
    /* alpha is pinned: no room for beta */
    T_EQ_INT(srv_models_acquire(m, "beta", &eb, &err), INF_ELIMIT);
    T_CONTAINS(err.msg, "busy");
    /* run a task on alpha, unpin: beta replaces it */
    inf_token p[64];
    int np = encode("Once upon a time", p, 64);
    struct srv_task_params tp = greedy_params(p, np, 4);
    struct result r;
    run(ea, &tp, &r);
    T_EQ_INT(r.n, 4);
    srv_models_unpin(m, ea);
    T_EQ_INT(srv_models_acquire(m, "beta", &eb, &err), INF_OK);
    T_OK(eb && strcmp(srv_engine_model_id(eb), "beta") == 0);
    struct result r2;
    run(eb, &tp, &r2);
    T_OK(memcmp(r.toks, r2.toks, 4 * sizeof(inf_token)) == 0);
    T_EQ_INT(srv_models_list(m, &list, &n, &err), INF_OK);
    T_OK(n == 3 && !list[0].loaded && list[2].loaded);
    free(list);
    T_EQ_INT(srv_models_acquire(m, "nope", &ea, &err), INF_ENOTFOUND);
    srv_models_unpin(m, eb);
    /* a model that fails to load changes nothing: beta stays loaded, health stays OK */
    T_OK(srv_models_acquire(m, "broken.bin", &ea, &err) != INF_OK);
    T_OK(err.msg[0] != 0);
    T_EQ_INT(srv_models_health(m), SRV_HEALTH_OK);
    T_EQ_INT(srv_models_list(m, &list, &n, &err), INF_OK);
    T_OK(n == 3 && !list[0].loaded && !list[1].loaded && list[2].loaded);
    free(list);
    struct srv_engine *eb2 = NULL;
    T_EQ_INT(srv_models_acquire(m, "beta", &eb2, &err), INF_OK);
    T_OK(eb2 == eb); /* not reloaded */
    srv_models_unpin(m, eb2);
    /* the model busy: a swap is INF_ELIMIT (HTTP 503), beta still loaded */
    struct srv_task_params tl = greedy_params(p, np, -1);
    tl.ignore_eos = true;
    struct srv_task *busy = NULL;
    T_EQ_INT(srv_task_submit(eb, &tl, &busy, NULL), INF_OK);
    wait_first_text(busy);
    T_EQ_INT(srv_models_acquire(m, "alpha", &ea, &err), INF_ELIMIT);
    T_CONTAINS(err.msg, "busy");
    srv_task_release(busy);
    int loaded = 0, max_loaded = 0;
    srv_models_counts(m, &loaded, &max_loaded);
    T_EQ_INT(loaded, 1);
    T_EQ_INT(max_loaded, 1);
    for (int i = 0; i < 200 && !srv_engine_idle(eb); i++)
        usleep(5000);
    T_EQ_INT(srv_models_acquire(m, "alpha", &ea, &err), INF_OK);
    T_EQ_INT(srv_models_health(m), SRV_HEALTH_OK);
    srv_models_unpin(m, ea);
    srv_models_counts(m, &loaded, &max_loaded);
    T_EQ_INT(loaded, 1);
    srv_models_free(m, 0);
    /* max_loaded 2: two models used in turn both stay loaded (no reload) */
    mp.max_loaded = 2;
    T_EQ_INT(srv_models_new(&mp, &m, &err), INF_OK);
    struct srv_engine *first_a = NULL, *first_b = NULL;
    for (int i = 0; m && i < 3; i++) {
        T_EQ_INT(srv_models_acquire(m, "alpha", &ea, &err), INF_OK);
        srv_models_unpin(m, ea);
        T_EQ_INT(srv_models_acquire(m, "beta", &eb, &err), INF_OK);
        srv_models_unpin(m, eb);
        if (i == 0) {
            first_a = ea;
            first_b = eb;
        }
        T_OK(ea == first_a && eb == first_b);
    }
    srv_models_counts(m, &loaded, &max_loaded);
    T_EQ_INT(loaded, 2);
    T_EQ_INT(max_loaded, 2);
    srv_models_free(m, 0);
    unlink(pa);
    unlink(pb);
    unlink(pbad);
    rmdir(dir);
    result_free(&r);
    result_free(&r2);
}

int main(void)
{
    t_shared_file(model_path, sizeof(model_path), "models/stories260K.gguf");
    inf_log_set_level(INF_LOG_ERROR);
    struct inf_model_params mp = inf_model_default_params();
    if (inf_model_load(model_path, &mp, &g_model, NULL) != INF_OK)
        T_SKIP_ALL("cannot load %s", model_path);
    g_tok = inf_model_tokenizer(g_model);
    struct inf_model_info info;
    inf_model_get_info(g_model, &info);
    g_vocab = info.n_vocab;
    g_embd = info.n_embd;
    T_RUN(test_greedy_matches_reference);
    T_RUN(test_concurrent_equals_sequential);
    T_RUN(test_prefix_reuse);
    T_RUN(test_stop_strings);
    T_RUN(test_lengths_and_overflow);
    T_RUN(test_cancel_and_queue);
    T_RUN(test_background_priority);
    T_RUN(test_oldest_prompt_first);
    T_RUN(test_late_request_joins_next_step);
    T_RUN(test_logprobs);
    T_RUN(test_embeddings);
    T_RUN(test_embedding_interleaved);
    T_RUN(test_submit_group);
    T_RUN(test_models_lru);
    inf_model_free(g_model);
    T_DONE();
}
