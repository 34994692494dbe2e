/*
 * cmd_models.c - `inferno models list` (models under models_dir, with a SQLite metadata cache,
 * and registered names), `inferno models info MODEL` (what a user wants to know before loading a
 * GGUF file), `models rm NAME` and `models tag MODEL NAME` (the registry, src/store/registry.c).
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_engine.h"
#include "inferno/gguf.h"
#include "inferno/model_file.h"
#include "inferno/models.h"

const struct inf_cli_opt inf_cmd_models_opts[] = {
    {"json", 0, INF_OPT_FLAG, NULL, "print JSON", NULL},
    {"tensors", 0, INF_OPT_FLAG, NULL, "info: list every tensor", NULL},
    {"metadata", 0, INF_OPT_FLAG, NULL, "info: list every metadata key", NULL},
    {"ctx", 'c', INF_OPT_VALUE, "N", "info: context size for the KV-cache estimate",
     "backend.context_size"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static void human(uint64_t b, char *buf, size_t size)
{
    if (b >= (1ull << 30))
        snprintf(buf, size, "%.2f GiB", (double)b / (1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(buf, size, "%.1f MiB", (double)b / (1ull << 20));
    else
        snprintf(buf, size, "%.1f KiB", (double)b / 1024.0);
}

static int models_list(struct inf_cli *cli, bool json)
{
    struct inf_model_list list;
    struct inf_error err = {0};
    struct timespec t0, t1;
    const char *dir = inf_config_get_str(cli->config, "models_dir");

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (inf_models_scan(dir, inf_config_get_str(cli->config, "cache.models_db"), &list, &err)) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        return INF_EXIT_FAIL;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < list.n; i++) {
            const struct inf_model_summary *m = &list.items[i];
            json_array_append_new(
                arr,
                json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:i, s:s, s:s, s:s}", "name",
                          m->name, "format", m->format, "architecture", m->architecture, "n_params",
                          (json_int_t)m->n_params, "quantization", m->dominant_type, "file_type",
                          m->file_type, "size_bytes", (json_int_t)m->size_bytes, "context_length",
                          (json_int_t)m->context_length, "n_shards", m->n_shards, "path", m->path,
                          "source", m->source, "digest", m->digest));
        }
        char *s = json_dumps(arr, JSON_INDENT(2));
        printf("%s\n", s ? s : "[]");
        free(s);
        json_decref(arr);
    } else {
        printf("%-36s %10s %-8s %-10s %9s %7s %-14s  %s\n", "NAME", "SIZE", "QUANT", "ARCH",
               "PARAMS", "CTX", "DIGEST", "SOURCE");
        for (size_t i = 0; i < list.n; i++) {
            const struct inf_model_summary *m = &list.items[i];
            char size[32], params[32], dg[16] = "-";
            human(m->size_bytes, size, sizeof(size));
            if (m->n_params >= 1000000000ull)
                snprintf(params, sizeof(params), "%.2fB", (double)m->n_params / 1e9);
            else if (m->n_params)
                snprintf(params, sizeof(params), "%.2fM", (double)m->n_params / 1e6);
            else
                snprintf(params, sizeof(params), "-");
            const char *colon = strchr(m->digest, ':');
            if (colon)
                snprintf(dg, sizeof(dg), "%.12s", colon + 1);
            /* the quantization as the file names it (MOSTLY_Q4_K_M: Q4_K_M), else the tensor
               type holding most bytes */
            const char *q = m->file_type[0] ? m->file_type : m->dominant_type;
            if (strncmp(q, "MOSTLY_", 7) == 0)
                q += 7;
            else if (strncmp(q, "ALL_", 4) == 0)
                q += 4;
            printf("%-36s %10s %-8s %-10s %9s %7llu %-14s  %s\n", m->name, size, q[0] ? q : "-",
                   m->architecture[0] ? m->architecture : "-", params,
                   (unsigned long long)m->context_length, dg, m->source[0] ? m->source : m->path);
        }
        fprintf(stderr, "%zu models in %s (%zu files read, %zu from the cache) in %.1f ms\n",
                list.n, dir, list.n_probed, list.n_cached,
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    }
    inf_model_list_release(&list);
    return INF_EXIT_OK;
}

/* A metadata value as JSON; long arrays are summarised (type, length, first items). */
static json_t *value_json(const struct inf_gguf_value *v, bool full)
{
    switch (v->type) {
    case INF_GGUF_TYPE_STRING:
        return json_stringn_nocheck(v->str.data, (size_t)v->str.len);
    case INF_GGUF_TYPE_ARRAY: {
        uint64_t show = full || v->arr.n <= 8 ? v->arr.n : 4;
        json_t *items = json_array();
        for (uint64_t i = 0; i < show; i++) {
            struct inf_gguf_value e;
            inf_gguf_array_elem(&v->arr, i, &e);
            json_array_append_new(items, value_json(&e, full));
        }
        if (show == v->arr.n)
            return items;
        return json_pack("{s:s, s:I, s:o}", "array_of", inf_gguf_type_name(v->arr.type), "length",
                         (json_int_t)v->arr.n, "first", items);
    }
    case INF_GGUF_TYPE_FLOAT32:
        return json_real(v->f32);
    case INF_GGUF_TYPE_FLOAT64:
        return json_real(v->f64);
    case INF_GGUF_TYPE_BOOL:
        return json_boolean(v->b);
    default: {
        int64_t i;
        uint64_t u;
        if (inf_gguf_value_as_i64(v, &i) == INF_OK)
            return json_integer(i);
        if (inf_gguf_value_as_u64(v, &u) == INF_OK)
            return json_real((double)u);
        return json_null();
    }
    }
}

static uint64_t meta_u(const struct inf_gguf *g, const char *arch, const char *suffix)
{
    char k[128];
    uint64_t v = 0;
    snprintf(k, sizeof(k), "%s.%s", arch, suffix);
    if (inf_gguf_get_u64(g, k, &v, NULL) != INF_OK)
        v = 0;
    return v;
}

static int models_info(struct inf_cli *cli, struct inf_cli_args *args, const char *arg)
{
    char path[4096];
    struct inf_error err = {0};
    struct inf_gguf *g = NULL;
    bool json = inf_cli_has(args, "json");

    if (inf_models_resolve_cli(cli, arg, path, sizeof(path)) != 0)
        return INF_EXIT_FAIL;
    struct inf_model_format_info fi;
    if (inf_model_detect_file(path, &fi, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        return INF_EXIT_FAIL;
    }
    if (fi.format != INF_MODEL_FORMAT_GGUF) {
        json_t *o = json_pack("{s:s, s:s, s:s}", "path", path, "format",
                              inf_model_format_name(fi.format), "detail", fi.detail);
        char *s = json_dumps(o, JSON_INDENT(2));
        if (json)
            printf("%s\n", s);
        else
            printf("%s: %s (%s)\n", path, inf_model_format_name(fi.format), fi.detail);
        free(s);
        json_decref(o);
        return INF_EXIT_OK;
    }
    if (inf_gguf_open_file(path, &g, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        return INF_EXIT_FAIL;
    }
    const char *arch = "";
    inf_gguf_get_str(g, "general.architecture", &arch, NULL, NULL);
    json_t *o = json_object();
    json_object_set_new(o, "path", json_string(path));
    json_object_set_new(o, "format", json_string("gguf"));
    json_object_set_new(o, "gguf_version", json_integer(inf_gguf_version(g)));
    json_object_set_new(o, "architecture", json_string(arch));
    uint32_t ft;
    if (inf_gguf_get_u32(g, "general.file_type", &ft, NULL) == INF_OK && inf_llama_ftype_name(ft))
        json_object_set_new(o, "file_type", json_string(inf_llama_ftype_name(ft)));

    /* hyper-parameters */
    static const char *const hp_keys[] = {"context_length",       "embedding_length",
                                          "block_count",          "feed_forward_length",
                                          "attention.head_count", "attention.head_count_kv",
                                          "attention.key_length", "rope.dimension_count"};
    json_t *hp = json_object();
    for (size_t i = 0; i < sizeof(hp_keys) / sizeof(hp_keys[0]); i++) {
        uint64_t v = meta_u(g, arch, hp_keys[i]);
        if (v)
            json_object_set_new(hp, hp_keys[i], json_integer((json_int_t)v));
    }
    char k[128];
    float f;
    snprintf(k, sizeof(k), "%s.rope.freq_base", arch);
    if (inf_gguf_get_f32(g, k, &f, NULL) == INF_OK)
        json_object_set_new(hp, "rope.freq_base", json_real(f));
    snprintf(k, sizeof(k), "%s.attention.layer_norm_rms_epsilon", arch);
    if (inf_gguf_get_f32(g, k, &f, NULL) == INF_OK)
        json_object_set_new(hp, "attention.layer_norm_rms_epsilon", json_real(f));
    json_object_set_new(o, "hyperparameters", hp);

    /* tokenizer */
    json_t *tk = json_object();
    const char *tm = NULL, *pre = NULL;
    const struct inf_gguf_array *toks = NULL;
    if (inf_gguf_get_str(g, "tokenizer.ggml.model", &tm, NULL, NULL) == INF_OK)
        json_object_set_new(tk, "model", json_string(tm));
    if (inf_gguf_get_str(g, "tokenizer.ggml.pre", &pre, NULL, NULL) == INF_OK)
        json_object_set_new(tk, "pre", json_string(pre));
    if (inf_gguf_get_arr(g, "tokenizer.ggml.tokens", INF_GGUF_TYPE_STRING, &toks, NULL) == INF_OK)
        json_object_set_new(tk, "vocab_size", json_integer((json_int_t)toks->n));
    static const char *const special[] = {"bos", "eos", "eot", "unknown", "padding", "seperator"};
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
        uint32_t id;
        snprintf(k, sizeof(k), "tokenizer.ggml.%s_token_id", special[i]);
        if (inf_gguf_get_u32(g, k, &id, NULL) == INF_OK && toks && id < toks->n) {
            struct inf_gguf_value e;
            inf_gguf_array_elem(toks, id, &e);
            json_object_set_new(
                tk, special[i],
                json_pack("{s:i, s:s%}", "id", (int)id, "text", e.str.data, (size_t)e.str.len));
        }
    }
    json_object_set_new(tk, "chat_template",
                        json_boolean(inf_gguf_find_kv(g, "tokenizer.chat_template") != NULL));
    json_object_set_new(o, "tokenizer", tk);

    /* tensors by type, parameters, memory */
    uint64_t count[64] = {0}, bytes[64] = {0}, n_params = 0, weights = 0;
    json_t *tensors = inf_cli_has(args, "tensors") ? json_array() : NULL;
    for (size_t i = 0; i < inf_gguf_n_tensors(g); i++) {
        const struct inf_gguf_tensor *t = inf_gguf_tensor_at(g, i);
        uint32_t ty = t->type < 64 ? t->type : 63;
        count[ty]++;
        bytes[ty] += t->n_bytes;
        n_params += t->n_elements;
        weights += t->n_bytes;
        if (tensors) {
            json_t *shape = json_array();
            for (uint32_t d = 0; d < t->n_dims; d++)
                json_array_append_new(shape, json_integer(t->ne[d]));
            json_array_append_new(tensors, json_pack("{s:s%, s:o, s:s, s:I}", "name", t->name.data,
                                                     (size_t)t->name.len, "shape", shape, "type",
                                                     inf_ggml_type_name(t->type), "bytes",
                                                     (json_int_t)t->n_bytes));
        }
    }
    json_t *bytype = json_object();
    for (int t = 0; t < 64; t++)
        if (count[t])
            json_object_set_new(bytype, inf_ggml_type_name((uint32_t)t),
                                json_pack("{s:I, s:I}", "tensors", (json_int_t)count[t], "bytes",
                                          (json_int_t)bytes[t]));
    json_object_set_new(o, "tensor_types", bytype);
    json_object_set_new(o, "n_tensors", json_integer((json_int_t)inf_gguf_n_tensors(g)));
    json_object_set_new(o, "n_params", json_integer((json_int_t)n_params));
    uint64_t n_ctx = (uint64_t)inf_config_get_int(cli->config, "backend.context_size");
    uint64_t n_layer = meta_u(g, arch, "block_count"),
             n_head = meta_u(g, arch, "attention.head_count");
    uint64_t n_kv = meta_u(g, arch, "attention.head_count_kv");
    uint64_t hd = meta_u(g, arch, "attention.key_length");
    uint64_t E = meta_u(g, arch, "embedding_length");
    if (!n_kv)
        n_kv = n_head;
    if (!hd && n_head)
        hd = E / n_head;
    const char *kvt = inf_config_get_str(cli->config, "backend.kv_type");
    double per = strcmp(kvt, "f32") == 0 ? 4.0 : strcmp(kvt, "q8_0") == 0 ? 34.0 / 32 : 2.0;
    /* the factors come from the file: a product that overflows saturates at INT64_MAX */
    uint64_t kv_elems = 2, kv_bytes;
    bool kv_over = __builtin_mul_overflow(kv_elems, n_layer, &kv_elems) ||
                   __builtin_mul_overflow(kv_elems, n_kv, &kv_elems) ||
                   __builtin_mul_overflow(kv_elems, hd, &kv_elems) ||
                   __builtin_mul_overflow(kv_elems, n_ctx, &kv_elems) ||
                   (double)kv_elems * per >= (double)INT64_MAX;
    kv_bytes = kv_over ? (uint64_t)INT64_MAX : (uint64_t)((double)kv_elems * per);
    if (weights > (uint64_t)INT64_MAX - kv_bytes)
        kv_bytes = (uint64_t)INT64_MAX - weights; /* weights <= file size, so this is large */
    json_object_set_new(o, "memory",
                        json_pack("{s:I, s:I, s:I, s:s, s:I}", "weights_bytes", (json_int_t)weights,
                                  "kv_cache_bytes", (json_int_t)kv_bytes, "context",
                                  (json_int_t)n_ctx, "kv_type", kvt, "total_bytes",
                                  (json_int_t)weights + (json_int_t)kv_bytes));
    if (tensors)
        json_object_set_new(o, "tensors", tensors);
    if (inf_cli_has(args, "metadata")) {
        json_t *md = json_object();
        for (size_t i = 0; i < inf_gguf_n_kv(g); i++) {
            const struct inf_gguf_kv *kv = inf_gguf_kv_at(g, i);
            char *key = strndup(kv->key.data, (size_t)kv->key.len);
            if (key)
                json_object_set_new(md, key,
                                    json_pack("{s:s, s:o}", "type",
                                              inf_gguf_type_name(kv->value.type), "value",
                                              value_json(&kv->value, json)));
            free(key);
        }
        json_object_set_new(o, "metadata", md);
    }
    char *s = json_dumps(o, JSON_INDENT(2) | (json ? 0 : JSON_PRESERVE_ORDER));
    if (json) {
        printf("%s\n", s ? s : "{}");
    } else {
        char w[32], kvb[32];
        human(weights, w, sizeof(w));
        human(kv_bytes, kvb, sizeof(kvb));
        printf("%s\n  format: GGUF v%u, architecture %s, %s\n  parameters: %.6f B in %zu "
               "tensors\n",
               path, inf_gguf_version(g), arch,
               json_string_value(json_object_get(o, "file_type"))
                   ? json_string_value(json_object_get(o, "file_type"))
                   : "(no file type)",
               (double)n_params / 1e9, inf_gguf_n_tensors(g));
        const char *key;
        json_t *val;
        printf("  hyper-parameters:");
        json_object_foreach(hp, key, val)
        {
            char *vs = json_dumps(val, JSON_ENCODE_ANY);
            printf(" %s=%s", key, vs ? vs : "?");
            free(vs);
        }
        printf("\n  tokenizer: %s%s%s, vocab %lld, chat template: %s\n", tm ? tm : "none",
               pre ? " / " : "", pre ? pre : "",
               (long long)json_integer_value(json_object_get(tk, "vocab_size")),
               json_is_true(json_object_get(tk, "chat_template")) ? "yes" : "no");
        printf("  tensor types:");
        json_object_foreach(bytype, key, val) printf(
            " %s x%lld", key, (long long)json_integer_value(json_object_get(val, "tensors")));
        printf("\n  memory at context %llu (%s KV): weights %s + KV cache %s\n",
               (unsigned long long)n_ctx, kvt, w, kvb);
        if (tensors || inf_cli_has(args, "metadata"))
            printf("%s\n", s ? s : "");
    }
    free(s);
    json_decref(o);
    inf_gguf_free(g);
    return INF_EXIT_OK;
}

/* Whether path lies inside directory dir (both resolved). */
static bool inside(const char *path, const char *dir)
{
    char rp[PATH_MAX], rd[PATH_MAX];
    if (!dir || !*dir || !realpath(path, rp) || !realpath(dir, rd))
        return false;
    size_t n = strlen(rd);
    return strncmp(rp, rd, n) == 0 && rp[n] == '/';
}

/* Delete a model's files: the file (every shard of NAME-00001-of-0000N.gguf), what a pull kept
   beside it (TAG.template, TAG.params.json), and the directories left empty up to dir. */
static int delete_model_files(struct inf_cli *cli, const char *path, const char *dir)
{
    char p[PATH_MAX + 64];
    size_t n = strlen(path);
    int rc = INF_EXIT_OK;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t bl = strlen(base);
    int count = 0;
    if (bl > 20 && strcmp(base + bl - 5, ".gguf") == 0 && strncmp(base + bl - 14, "-of-", 4) == 0 &&
        strncmp(base + bl - 20, "-00001", 6) == 0)
        count = (int)strtol(base + bl - 10, NULL, 10);
    if (count > 1) {
        for (int k = 1; k <= count; k++) {
            snprintf(p, sizeof(p), "%.*s%05d-of-%05d.gguf", (int)(n - 19), path, k, count);
            if (unlink(p) != 0 && errno != ENOENT) {
                inf_cli_errorf(cli, "cannot delete '%s': %s", p, strerror(errno));
                rc = INF_EXIT_FAIL;
            }
        }
    } else if (unlink(path) != 0) {
        inf_cli_errorf(cli, "cannot delete '%s': %s", path, strerror(errno));
        return INF_EXIT_FAIL;
    }
    if (n > 5 && strcmp(path + n - 5, ".gguf") == 0) {
        static const char *const sides[] = {".template", ".params.json", ".gguf.partial"};
        for (size_t i = 0; i < sizeof(sides) / sizeof(sides[0]); i++) {
            snprintf(p, sizeof(p), "%.*s%s", (int)(n - 5), path, sides[i]);
            unlink(p);
        }
    }
    /* empty directories up to models_dir */
    char rd[PATH_MAX], cur[PATH_MAX];
    if (!realpath(dir, rd))
        return rc;
    snprintf(cur, sizeof(cur), "%s", path);
    for (char *s; (s = strrchr(cur, '/')) != NULL;) {
        *s = '\0';
        char rc2[PATH_MAX];
        if (!realpath(cur, rc2) || strcmp(rc2, rd) == 0 || strncmp(rc2, rd, strlen(rd)) != 0 ||
            rmdir(cur) != 0)
            break;
    }
    return rc;
}

static int models_rm(struct inf_cli *cli, struct inf_cli_args *args)
{
    const char *db = inf_config_get_str(cli->config, "cache.models_db");
    const char *dir = inf_config_get_str(cli->config, "models_dir");
    int rc = INF_EXIT_OK;
    for (int i = 1; i < args->n_positional; i++) {
        const char *arg = args->positional[i];
        struct inf_model_reg reg;
        struct inf_error err = {0};
        char path[4096];
        inf_status st = inf_models_lookup(db, arg, &reg, &err);
        if (st == INF_EINVAL) {
            inf_cli_errorf(cli, "%s", inf_error_message(&err));
            rc = INF_EXIT_FAIL;
            continue;
        }
        if (st == INF_OK) {
            if (inf_models_unregister(db, reg.name, &err) != INF_OK) {
                inf_cli_errorf(cli, "%s", inf_error_message(&err));
                rc = INF_EXIT_FAIL;
                continue;
            }
            /* the files go when no other name uses them and they are ours (in models_dir) */
            struct inf_model_reg *all = NULL;
            size_t n = 0;
            bool used = false;
            struct stat a, b;
            if (inf_models_registered(db, &all, &n, &err) == INF_OK && stat(reg.path, &a) == 0)
                for (size_t k = 0; k < n && !used; k++)
                    used =
                        stat(all[k].path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
            free(all);
            if (!used && inside(reg.path, dir)) {
                if (delete_model_files(cli, reg.path, dir) != INF_EXIT_OK)
                    rc = INF_EXIT_FAIL;
                else
                    fprintf(stderr, "deleted '%s'\n", reg.path);
            }
            printf("removed %s\n", reg.name);
            continue;
        }
        /* not registered: a model of models_dir by its listed name */
        if (inf_models_resolve(arg, dir, db, path, sizeof(path), &err) != INF_OK ||
            strcmp(path, arg) == 0) {
            inf_cli_errorf(cli, "no model named '%s' (see inferno models list)", arg);
            rc = INF_EXIT_FAIL;
            continue;
        }
        if (!inside(path, dir)) {
            inf_cli_errorf(cli, "'%s' is not in models_dir; not deleting it", path);
            rc = INF_EXIT_FAIL;
            continue;
        }
        if (delete_model_files(cli, path, dir) != INF_EXIT_OK) {
            rc = INF_EXIT_FAIL;
            continue;
        }
        printf("removed %s (%s)\n", arg, path);
    }
    return rc;
}

static int models_tag(struct inf_cli *cli, const char *src, const char *dst)
{
    const char *db = inf_config_get_str(cli->config, "cache.models_db");
    struct inf_model_reg reg = {0}, from;
    struct inf_error err = {0};
    char path[4096], name[256];
    inf_models_name_normalize(dst, name, sizeof(name));
    if (!inf_models_name_valid(name)) {
        inf_cli_errorf(cli,
                       "invalid model name '%s' ([NAMESPACE/]NAME[:TAG] of letters, digits, "
                       "'.', '_', '-')",
                       dst);
        return INF_EXIT_USAGE;
    }
    if (inf_models_resolve_cli(cli, src, path, sizeof(path)) != 0)
        return INF_EXIT_FAIL;
    char real[PATH_MAX];
    snprintf(reg.path, sizeof(reg.path), "%s", realpath(path, real) ? real : path);
    snprintf(reg.name, sizeof(reg.name), "%s", name);
    if (inf_models_lookup(db, src, &from, &err) == INF_OK) {
        snprintf(reg.source, sizeof(reg.source), "%s", from.source);
        snprintf(reg.digest, sizeof(reg.digest), "%s", from.digest);
    } else {
        snprintf(reg.source, sizeof(reg.source), "local");
    }
    if (inf_models_register(db, &reg, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        return INF_EXIT_FAIL;
    }
    printf("%s -> %s\n", name, reg.path);
    return INF_EXIT_OK;
}

int inf_cmd_models(struct inf_cli *cli, struct inf_cli_args *args)
{
    const char *sub = args->n_positional ? args->positional[0] : "list";
    if (strcmp(sub, "list") == 0 && args->n_positional <= 1)
        return models_list(cli, inf_cli_has(args, "json"));
    if (strcmp(sub, "info") == 0 && args->n_positional == 2)
        return models_info(cli, args, args->positional[1]);
    if (strcmp(sub, "rm") == 0 && args->n_positional >= 2)
        return models_rm(cli, args);
    if (strcmp(sub, "tag") == 0 && args->n_positional == 3)
        return models_tag(cli, args->positional[1], args->positional[2]);
    inf_cli_errorf(cli, "usage: inferno models list [--json] | info MODEL [--json] [--tensors] "
                        "[--metadata] | rm NAME... | tag MODEL NAME");
    return INF_EXIT_USAGE;
}
