/*
 * test_hub.c - the parsing half of `inferno pull` (src/hub/pull_ref.c) and the model registry
 * (src/store/registry.c): references as users write them (the forms of docs/models.md), the
 * quantization in file names as the Hub's big publishers spell them (bartowski's
 * "Model-Q4_K_M.gguf", TheBloke's "model.Q4_K_M.gguf", llama.cpp's "ggml-model-q8_0.gguf",
 * lower-case shards), the tree listing and the Ollama manifest with their refusals, the choice
 * of files, and registry names. The downloads are tested end to end by tests/pull_test.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/pull_internal.h"
#include "inferno/hub.h"
#include "inferno/models.h"
#include "t.h"

static void test_refs(void)
{
    static const struct {
        const char *in;
        int kind; /* 0: refused */
        const char *owner, *repo, *tag, *file, *rev;
    } cases[] = {
        {"hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", INF_HUB_HF, "bartowski",
         "Llama-3.2-1B-Instruct-GGUF", "Q4_K_M", "", "main"},
        {"hf.co/unsloth/gpt-oss-20b-GGUF", INF_HUB_HF, "unsloth", "gpt-oss-20b-GGUF", "", "",
         "main"},
        {"https://huggingface.co/Qwen/Qwen3-8B-GGUF/resolve/main/Qwen3-8B-Q8_0.gguf", INF_HUB_HF,
         "Qwen", "Qwen3-8B-GGUF", "", "Qwen3-8B-Q8_0.gguf", "main"},
        {"huggingface.co/TheBloke/Mistral-7B-v0.1-GGUF/blob/v1.0/mistral.Q5_K_M.gguf", INF_HUB_HF,
         "TheBloke", "Mistral-7B-v0.1-GGUF", "", "mistral.Q5_K_M.gguf", "v1.0"},
        {"hf.co/o/r@abc123:iq4_xs", INF_HUB_HF, "o", "r", "iq4_xs", "", "abc123"},
        {"hf.co/o/r@dev/sub/dir/m-F16-00001-of-00002.gguf", INF_HUB_HF, "o", "r", "",
         "sub/dir/m-F16-00001-of-00002.gguf", "dev"},
        {"owner/repo:Q8_0", INF_HUB_HF, "owner", "repo", "Q8_0", "", "main"},
        {"llama3.2", INF_HUB_OLLAMA, "library", "llama3.2", "latest", "", ""},
        {"ollama.com/library/qwen3:0.6b", INF_HUB_OLLAMA, "library", "qwen3", "0.6b", "", ""},
        {"ollama.com/someone/model:v2", INF_HUB_OLLAMA, "someone", "model", "v2", "", ""},
        {"registry.ollama.ai/library/gemma3", INF_HUB_OLLAMA, "library", "gemma3", "latest", "",
         ""},
        {"ollama.com/gemma3:1b", INF_HUB_OLLAMA, "library", "gemma3", "1b", "", ""},
        {"", 0, NULL, NULL, NULL, NULL, NULL},
        {"hf.co/owner", 0, NULL, NULL, NULL, NULL, NULL},
        {"hf.co/../repo", 0, NULL, NULL, NULL, NULL, NULL},
        {"hf.co/o/r/../../x.gguf", 0, NULL, NULL, NULL, NULL, NULL},
        {"hf.co/o/r/a//b.gguf", 0, NULL, NULL, NULL, NULL, NULL},
        {"hf.co/o/r/README.md", 0, NULL, NULL, NULL, NULL, NULL},
        {"hf.co/o/r:Q4 K", 0, NULL, NULL, NULL, NULL, NULL},
        {"hf.co/o/r:", 0, NULL, NULL, NULL, NULL, NULL},
        {"hf.co/o/r?x=1", 0, NULL, NULL, NULL, NULL, NULL},
        {"hf.co/-o/r", 0, NULL, NULL, NULL, NULL, NULL},
        {"example.com/o/r", 0, NULL, NULL, NULL, NULL, NULL},
        {"https://evil.example/o/r", 0, NULL, NULL, NULL, NULL, NULL},
        {"ollama.com/a/b/c", 0, NULL, NULL, NULL, NULL, NULL},
        {"name:tag:more", 0, NULL, NULL, NULL, NULL, NULL},
        {"caf\xc3\xa9", 0, NULL, NULL, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct inf_hub_ref r;
        struct inf_error err = {0};
        inf_status st = inf_hub_ref_parse(cases[i].in, &r, &err);
        if (!cases[i].kind) {
            T_EQ_INT(st, INF_EINVAL);
            T_OK(err.msg[0] != '\0');
            continue;
        }
        T_EQ_INT(st, INF_OK);
        if (st != INF_OK) {
            printf("  '%s': %s\n", cases[i].in, err.msg);
            continue;
        }
        T_EQ_INT(r.kind, cases[i].kind);
        T_EQ_STR(r.owner, cases[i].owner);
        T_EQ_STR(r.repo, cases[i].repo);
        T_EQ_STR(r.tag, cases[i].tag);
        T_EQ_STR(r.file, cases[i].file);
        T_EQ_STR(r.revision, cases[i].rev);
    }
    /* a 96-byte part does not fit the 96-byte field (with its NUL) */
    char longname[200];
    snprintf(longname, sizeof(longname), "hf.co/o/%0*d", INF_HUB_NAME_MAX, 7);
    struct inf_hub_ref r;
    T_EQ_INT(inf_hub_ref_parse(longname, &r, NULL), INF_EINVAL);
}

static void test_quant_names(void)
{
    static const struct {
        const char *file, *quant; /* quant NULL: none */
    } cases[] = {
        {"Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"},
        {"Meta-Llama-3.1-8B-Instruct-IQ4_XS.gguf", "IQ4_XS"},
        {"tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf", "Q4_K_M"},
        {"ggml-model-q8_0.gguf", "Q8_0"},
        {"qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf", "Q4_K_M"},
        {"gpt-oss-20b-MXFP4.gguf", "MXFP4"},
        {"Phi-3-mini-4k-instruct-fp16.gguf", "F16"},
        {"gemma-3-1b-it-BF16.gguf", "BF16"},
        {"Q4_K_M/Model-Q4_K_M-00002-of-00003.gguf", "Q4_K_M"},
        {"model-Q4_0.gguf", "Q4_0"},
        {"model-Q4_0_4_4.gguf", "Q4_0_4_4"},
        {"model-Q2_K.gguf", "Q2_K"},
        {"model-UD-Q4_K_XL.gguf", "Q4_K_XL"},
        {"f16-but-now-Q6_K.gguf", "Q6_K"},
        {"model.gguf", NULL},
        {"modelQ4_K_M.gguf", NULL},   /* not delimited */
        {"model-Q4_K_Mx.gguf", NULL}, /* not delimited */
        {"bf16x.gguf", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char q[INF_HUB_TAG_MAX] = "";
        bool ok = inf__hub_quant_of(cases[i].file, q, sizeof(q));
        T_EQ_INT(ok, cases[i].quant != NULL);
        if (cases[i].quant)
            T_EQ_STR(q, cases[i].quant);
    }
    int a, b;
    size_t stem;
    T_OK(inf__hub_shard_of("x-00002-of-00010.gguf", &a, &b, &stem));
    T_EQ_INT(a, 2);
    T_EQ_INT(b, 10);
    T_EQ_U64(stem, 1);
    T_OK(!inf__hub_shard_of("x-00011-of-00010.gguf", &a, &b, &stem));
    T_OK(!inf__hub_shard_of("x-00000-of-00010.gguf", &a, &b, &stem));
    T_OK(!inf__hub_shard_of("x-0001-of-00010.gguf", &a, &b, &stem));
    T_OK(!inf__hub_shard_of("-00001-of-00001.bin", &a, &b, &stem));
}

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define OID_A "1111111111111111111111111111111111111111"

/* A listing entry for a GGUF in LFS. */
static void entry(char *out, size_t size, const char *path, int n)
{
    snprintf(out, size,
             "{\"type\":\"file\",\"path\":\"%s\",\"size\":%d,\"oid\":\"" OID_A "\","
             "\"lfs\":{\"oid\":\"" SHA_A "\",\"size\":%d,\"pointerSize\":134}}",
             path, n, n);
}

static inf_status parse_files(const char *const *paths, size_t n, struct inf__hub_listing *l)
{
    char json[8192] = "[{\"type\":\"directory\",\"path\":\"sub\",\"size\":0}";
    for (size_t i = 0; i < n; i++) {
        char e[512];
        entry(e, sizeof(e), paths[i], 100 + (int)i);
        strcat(json, ",");
        strcat(json, e);
    }
    strcat(json, "]");
    memset(l, 0, sizeof(*l));
    return inf__hub_listing_parse(json, strlen(json), l, NULL);
}

static void test_listing(void)
{
    struct inf__hub_listing l = {0};
    static const char good[] =
        "[{\"type\":\"file\",\"path\":\"README.md\",\"size\":7,\"oid\":"
        "\"ABCDEF0123456789ABCDEF0123456789ABCDEF01\"},"
        "{\"type\":\"directory\",\"path\":\"q\",\"size\":0,\"oid\":\"" OID_A "\"},"
        "{\"type\":\"file\",\"path\":\"q/m-Q8_0.gguf\",\"size\":5,\"oid\":\"" OID_A "\","
        "\"lfs\":{\"oid\":\"" SHA_A "\",\"size\":5,\"pointerSize\":134}}]";
    T_EQ_INT(inf__hub_listing_parse(good, strlen(good), &l, NULL), INF_OK);
    T_EQ_U64(l.n, 2);
    if (l.n == 2) {
        T_EQ_STR(l.files[0].git_oid, "abcdef0123456789abcdef0123456789abcdef01");
        T_EQ_STR(l.files[0].sha256, "");
        T_EQ_STR(l.files[1].path, "q/m-Q8_0.gguf");
        T_EQ_STR(l.files[1].sha256, SHA_A);
        T_EQ_U64(l.files[1].size, 5);
    }
    inf__hub_listing_release(&l);
    static const char *const bad[] = {
        "{}",
        "[1]",
        "[{\"type\":\"file\"}]",
        "[{\"type\":\"file\",\"path\":\"../x\",\"size\":1}]",
        "[{\"type\":\"file\",\"path\":\"/abs\",\"size\":1}]",
        "[{\"type\":\"file\",\"path\":\"x\",\"size\":-1}]",
        "[{\"type\":\"file\",\"path\":\"x\",\"size\":1e3}]",
        "[{\"type\":\"file\",\"path\":\"x\",\"size\":99999999999999999}]",
        "[{\"type\":\"file\",\"path\":\"x\",\"size\":1,\"oid\":\"xyz\"}]",
        "[{\"type\":\"file\",\"path\":\"x\",\"size\":5,\"lfs\":{\"oid\":\"" SHA_A
        "\",\"size\":6}}]",
        "[{\"type\":\"file\",\"path\":\"x\",\"size\":5,\"lfs\":{\"oid\":\"abc\",\"size\":5}}]",
        "[{\"type\":\"file\",\"path\":\"x\",\"size\":5,\"path\":\"y\"}]",
        "[",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct inf_error err = {0};
        memset(&l, 0, sizeof(l));
        inf_status st = inf__hub_listing_parse(bad[i], strlen(bad[i]), &l, &err);
        T_EQ_INT(st, INF_EFORMAT);
        T_OK(err.msg[0] != '\0');
        inf__hub_listing_release(&l);
    }
}

static void test_choose(void)
{
    static const char *const files[] = {
        "m-Q8_0.gguf",
        "m-Q4_K_M.gguf",
        "mmproj-m-f16.gguf",
        "big/m-F16-00002-of-00002.gguf",
        "big/m-F16-00001-of-00002.gguf",
        "README.md",
        "half/m-BF16-00001-of-00003.gguf",
        "half/m-BF16-00003-of-00003.gguf",
    };
    struct inf__hub_listing l;
    struct inf__hub_choice ch;
    struct inf_hub_ref ref;
    struct inf_error err = {0};
    T_EQ_INT(parse_files(files, sizeof(files) / sizeof(files[0]), &l), INF_OK);

    inf_hub_ref_parse("hf.co/o/r", &ref, NULL);
    T_EQ_INT(inf__hub_choose(&l, &ref, &ch, &err), INF_OK); /* several: Q4_K_M */
    T_EQ_INT(ch.n, 1);
    T_EQ_STR(l.files[ch.idx[0]].path, "m-Q4_K_M.gguf");
    T_EQ_STR(ch.quant, "Q4_K_M");

    inf_hub_ref_parse("hf.co/o/r:f16", &ref, NULL);
    T_EQ_INT(inf__hub_choose(&l, &ref, &ch, &err), INF_OK);
    T_EQ_INT(ch.n, 2); /* both shards, in order */
    T_EQ_STR(l.files[ch.idx[0]].path, "big/m-F16-00001-of-00002.gguf");
    T_EQ_STR(l.files[ch.idx[1]].path, "big/m-F16-00002-of-00002.gguf");
    T_EQ_STR(ch.quant, "F16"); /* the projector (also f16) is not a candidate */

    inf_hub_ref_parse("hf.co/o/r/big/m-F16-00002-of-00002.gguf", &ref, NULL);
    T_EQ_INT(inf__hub_choose(&l, &ref, &ch, &err), INF_OK); /* any shard names the set */
    T_EQ_INT(ch.n, 2);

    inf_hub_ref_parse("hf.co/o/r/mmproj-m-f16.gguf", &ref, NULL);
    T_EQ_INT(inf__hub_choose(&l, &ref, &ch, &err), INF_OK); /* named: allowed */
    T_EQ_INT(ch.n, 1);

    inf_hub_ref_parse("hf.co/o/r:BF16", &ref, NULL);
    T_EQ_INT(inf__hub_choose(&l, &ref, &ch, &err), INF_ENOTFOUND); /* shard 2 is missing */
    T_CONTAINS(err.msg, "shard 2 of 3");

    inf_hub_ref_parse("hf.co/o/r:Q5_K_M", &ref, NULL);
    T_EQ_INT(inf__hub_choose(&l, &ref, &ch, &err), INF_ENOTFOUND);
    T_CONTAINS(err.msg, "Q8_0, Q4_K_M, F16, BF16");

    inf_hub_ref_parse("hf.co/o/r/nope.gguf", &ref, NULL);
    T_EQ_INT(inf__hub_choose(&l, &ref, &ch, &err), INF_ENOTFOUND);
    inf__hub_listing_release(&l);

    /* no Q4_K_M among several: the choices, no guess */
    static const char *const two[] = {"a-Q8_0.gguf", "a-Q6_K.gguf"};
    T_EQ_INT(parse_files(two, 2, &l), INF_OK);
    inf_hub_ref_parse("hf.co/o/r", &ref, NULL);
    T_EQ_INT(inf__hub_choose(&l, &ref, &ch, &err), INF_EINVAL);
    T_CONTAINS(err.msg, "Q8_0, Q6_K");
    inf__hub_listing_release(&l);

    /* the only GGUF, whatever its name; none at all */
    static const char *const one[] = {"weights.gguf", "tokenizer.json"};
    T_EQ_INT(parse_files(one, 2, &l), INF_OK);
    T_EQ_INT(inf__hub_choose(&l, &ref, &ch, &err), INF_OK);
    T_EQ_STR(l.files[ch.idx[0]].path, "weights.gguf");
    T_EQ_STR(ch.quant, "");
    inf__hub_listing_release(&l);
    T_EQ_INT(parse_files(one + 1, 1, &l), INF_OK);
    T_EQ_INT(inf__hub_choose(&l, &ref, &ch, &err), INF_ENOTFOUND);
    T_CONTAINS(err.msg, "no GGUF");
    inf__hub_listing_release(&l);
    static const char *const st[] = {"model.safetensors", "config.json"};
    T_EQ_INT(parse_files(st, 2, &l), INF_OK);
    T_EQ_INT(inf__hub_choose(&l, &ref, &ch, &err), INF_ENOTFOUND);
    T_CONTAINS(err.msg, "inferno convert");
    inf__hub_listing_release(&l);

    /* two models of one quantization: name the file */
    static const char *const dup[] = {"a-Q8_0.gguf", "b-Q8_0.gguf"};
    T_EQ_INT(parse_files(dup, 2, &l), INF_OK);
    inf_hub_ref_parse("hf.co/o/r:Q8_0", &ref, NULL);
    T_EQ_INT(inf__hub_choose(&l, &ref, &ch, &err), INF_EINVAL);
    T_CONTAINS(err.msg, "FILE.gguf");
    inf__hub_listing_release(&l);
}

#define D1 "sha256:" SHA_A
#define D2 "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void test_manifest(void)
{
    struct inf__hub_manifest m;
    static const char good[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/"
        "vnd.docker.distribution.manifest.v2+json\","
        "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
        "\"digest\":\"" D1 "\",\"size\":485},\"layers\":["
        "{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"" D1
        "\",\"size\":1321082688},"
        "{\"mediaType\":\"application/vnd.ollama.image.license\",\"digest\":\"" D2 "\",\"size\":7},"
        "{\"mediaType\":\"application/vnd.ollama.image.template\",\"digest\":\"" D2
        "\",\"size\":1429},"
        "{\"mediaType\":\"application/vnd.ollama.image.params\",\"digest\":\"" D2
        "\",\"size\":96}]}";
    T_EQ_INT(inf__hub_manifest_parse(good, strlen(good), &m, NULL), INF_OK);
    T_EQ_INT(m.n, 4);
    T_EQ_INT(m.model, 0);
    T_EQ_INT(m.tmpl, 2);
    T_EQ_INT(m.params, 3);
    T_EQ_U64(m.layers[0].size, 1321082688ull);
    T_EQ_STR(m.layers[0].digest, D1);
    static const char *const bad[] = {
        "[]",
        "{\"schemaVersion\":1,\"layers\":[]}",
        "{\"schemaVersion\":2}",
        "{\"schemaVersion\":2,\"layers\":[]}", /* no model layer */
        "{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\","
        "\"digest\":\"md5:00\",\"size\":1}]}",
        "{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\","
        "\"digest\":\"" D1 "\",\"size\":-5}]}",
        "{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\","
        "\"digest\":\"" D1 "\",\"size\":1},{\"mediaType\":\"application/vnd.ollama.image.model\","
        "\"digest\":\"" D2 "\",\"size\":1}]}",
        "{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\","
        "\"digest\":\"" D1
        "\",\"size\":1},{\"mediaType\":\"application/vnd.ollama.image.template\","
        "\"digest\":\"" D2 "\",\"size\":99999999}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct inf_error err = {0};
        inf_status st = inf__hub_manifest_parse(bad[i], strlen(bad[i]), &m, &err);
        T_OK(st == INF_EFORMAT || st == INF_ELIMIT);
        T_OK(err.msg[0] != '\0');
    }
}

static void test_registry(void)
{
    char dir[] = "/tmp/inferno-test-hub-XXXXXX";
    T_OK(mkdtemp(dir) != NULL);
    char db[300], file[300], out[4096];
    snprintf(db, sizeof(db), "%s/sub/models.db", dir);
    snprintf(file, sizeof(file), "%s/m.gguf", dir);
    FILE *f = fopen(file, "wb");
    T_OK(f != NULL);
    if (f)
        fclose(f);

    T_OK(inf_models_name_valid("owner/repo:Q4_K_M"));
    T_OK(inf_models_name_valid("llama3.2:1b"));
    T_OK(inf_models_name_valid("plain"));
    T_OK(!inf_models_name_valid("a/b/c"));
    T_OK(!inf_models_name_valid("a:b:c"));
    T_OK(!inf_models_name_valid("../x"));
    T_OK(!inf_models_name_valid("a b"));
    T_OK(!inf_models_name_valid(""));
    T_OK(!inf_models_name_valid("x:"));
    inf_models_name_normalize("https://hf.co/o/r:Q8_0", out, sizeof(out));
    T_EQ_STR(out, "o/r:Q8_0");
    inf_models_name_normalize("ollama.com/library/qwen3:1b", out, sizeof(out));
    T_EQ_STR(out, "qwen3:1b");
    inf_models_name_normalize("registry.ollama.ai/ns/m:t", out, sizeof(out));
    T_EQ_STR(out, "ns/m:t");

    struct inf_model_reg r = {0}, got;
    struct inf_error err = {0};
    snprintf(r.path, sizeof(r.path), "%s", file);
    snprintf(r.name, sizeof(r.name), "o/r:Q4_K_M");
    snprintf(r.source, sizeof(r.source), "hf.co/o/r@main/m.gguf");
    snprintf(r.digest, sizeof(r.digest), D1);
    T_EQ_INT(inf_models_register(db, &r, &err), INF_OK);
    snprintf(r.name, sizeof(r.name), "tiny:latest");
    T_EQ_INT(inf_models_register(db, &r, &err), INF_OK);
    snprintf(r.name, sizeof(r.name), "no good");
    T_EQ_INT(inf_models_register(db, &r, &err), INF_EINVAL);

    T_EQ_INT(inf_models_lookup(db, "o/r:q4_k_m", &got, NULL), INF_OK);
    T_EQ_STR(got.name, "o/r:Q4_K_M");
    T_EQ_STR(got.digest, D1);
    T_OK(got.added > 0);
    T_EQ_INT(inf_models_lookup(db, "hf.co/o/r", &got, NULL), INF_OK); /* the only quant */
    T_EQ_INT(inf_models_lookup(db, "tiny", &got, NULL), INF_OK);      /* :latest */
    T_EQ_INT(inf_models_lookup(db, "ollama.com/library/tiny:latest", &got, NULL), INF_OK);
    T_EQ_INT(inf_models_lookup(db, "o/other", &got, NULL), INF_ENOTFOUND);
    snprintf(r.name, sizeof(r.name), "o/r:Q8_0");
    T_EQ_INT(inf_models_register(db, &r, &err), INF_OK);
    T_EQ_INT(inf_models_lookup(db, "o/r", &got, &err), INF_EINVAL); /* now two */
    T_CONTAINS(err.msg, "names 2");

    T_EQ_INT(inf_models_resolve("tiny", dir, db, out, sizeof(out), &err), INF_OK);
    T_EQ_STR(out, file);

    struct inf_model_list list;
    T_EQ_INT(inf_models_scan(dir, db, &list, &err), INF_OK);
    /* the empty m.gguf is no model: the names are listed only for files that are models */
    T_EQ_U64(list.n, 0);
    inf_model_list_release(&list);

    struct inf_model_reg *all = NULL;
    size_t n = 0;
    T_EQ_INT(inf_models_registered(db, &all, &n, &err), INF_OK);
    T_EQ_U64(n, 3);
    if (n == 3) {
        T_EQ_STR(all[0].name, "o/r:Q4_K_M");
        T_EQ_STR(all[2].name, "tiny:latest");
    }
    free(all);
    T_EQ_INT(inf_models_unregister(db, "tiny:latest", &err), INF_OK);
    T_EQ_INT(inf_models_unregister(db, "tiny:latest", &err), INF_ENOTFOUND);
    T_EQ_INT(inf_models_lookup(db, "tiny", &got, NULL), INF_ENOTFOUND);
    T_EQ_INT(inf_models_register("", &r, &err), INF_EINVAL);

    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    T_OK(system(cmd) == 0);
}

int main(void)
{
    T_RUN(test_refs);
    T_RUN(test_quant_names);
    T_RUN(test_listing);
    T_RUN(test_choose);
    T_RUN(test_manifest);
    T_RUN(test_registry);
    T_DONE();
}
