/*
 * fuzz_hub.c - libFuzzer target for what `inferno pull` parses from outside: model references
 * (inf_hub_ref_parse), the Hugging Face tree listing and the choice of files
 * (inf__hub_listing_parse, inf__hub_choose), the Ollama manifest (inf__hub_manifest_parse),
 * quantization and shard names, and registry names (inf_models_name_valid/_normalize).
 *
 * The first byte selects: 0 a reference, 1 a listing (then chosen with a few references),
 * 2 a manifest, 3 a file name / registry name; the rest is the input. What is accepted must
 * hold the parsers' promises: references whose parts are valid names and whose file is a valid
 * path ending in .gguf; listings of valid paths with hex digests; choices of complete shard
 * sets inside the listing; manifests with one model layer and sha256 digests. A refusal
 * carries a message.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "hub/pull_internal.h"
#include "inferno/models.h"

#define FUZZ_MAX_INPUT (1u << 20)

static bool hex_only(const char *s)
{
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s) || isupper((unsigned char)*s))
            return false;
    return true;
}

static void check_ref(const char *text)
{
    struct inf_hub_ref r;
    struct inf_error err = {0};
    if (inf_hub_ref_parse(text, &r, &err) != INF_OK) {
        CHECK(err.msg[0] != '\0');
        return;
    }
    CHECK(r.kind == INF_HUB_HF || r.kind == INF_HUB_OLLAMA);
    CHECK(r.owner[0] && r.repo[0] && strcmp(r.repo, "..") != 0 && r.repo[0] != '.');
    CHECK(!strchr(r.owner, '/') && !strchr(r.repo, '/') && !strchr(r.tag, '/'));
    if (r.kind == INF_HUB_OLLAMA)
        CHECK(r.tag[0] && !r.file[0]);
    if (r.file[0]) {
        size_t n = strlen(r.file);
        CHECK(inf__hub_path_valid(r.file) && n > 5 && strcasecmp(r.file + n - 5, ".gguf") == 0);
    }
    if (r.kind == INF_HUB_HF)
        CHECK(r.revision[0] && !strchr(r.revision, '/'));
}

static void check_listing(const char *json, size_t len)
{
    struct inf__hub_listing l = {0};
    struct inf_error err = {0};
    if (inf__hub_listing_parse(json, len, &l, &err) != INF_OK) {
        CHECK(err.msg[0] != '\0');
        inf__hub_listing_release(&l);
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        CHECK(inf__hub_path_valid(l.files[i].path));
        CHECK(l.files[i].size <= INF__HUB_MAX_FILESIZE);
        CHECK(hex_only(l.files[i].sha256) && hex_only(l.files[i].git_oid));
        CHECK(l.files[i].sha256[0] == '\0' || strlen(l.files[i].sha256) == 64);
    }
    static const char *const refs[] = {"o/r", "o/r:Q4_K_M", "o/r:F16", "o/r/m.gguf",
                                       "o/r/a-00001-of-00002.gguf"};
    for (size_t k = 0; k < sizeof(refs) / sizeof(refs[0]); k++) {
        struct inf_hub_ref ref;
        struct inf__hub_choice ch;
        CHECK(inf_hub_ref_parse(refs[k], &ref, NULL) == INF_OK);
        inf_status st = inf__hub_choose(&l, &ref, &ch, &err);
        if (st != INF_OK) {
            CHECK(err.msg[0] != '\0');
            continue;
        }
        CHECK(ch.n >= 1 && ch.n <= INF__HUB_MAX_SHARDS);
        for (int i = 0; i < ch.n; i++)
            CHECK(ch.idx[i] < l.n);
        int a, b;
        size_t stem;
        if (ch.n > 1)
            for (int i = 0; i < ch.n; i++) {
                const char *p = l.files[ch.idx[i]].path;
                const char *base = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
                CHECK(inf__hub_shard_of(base, &a, &b, &stem) && a == i + 1 && b == ch.n);
            }
    }
    inf__hub_listing_release(&l);
}

static void check_manifest(const char *json, size_t len)
{
    struct inf__hub_manifest m;
    struct inf_error err = {0};
    if (inf__hub_manifest_parse(json, len, &m, &err) != INF_OK) {
        CHECK(err.msg[0] != '\0');
        return;
    }
    CHECK(m.n >= 1 && m.n <= INF__HUB_MAX_LAYERS);
    CHECK(m.model >= 0 && m.model < m.n);
    CHECK(m.tmpl < m.n && m.params < m.n);
    for (int i = 0; i < m.n; i++) {
        CHECK(strncmp(m.layers[i].digest, "sha256:", 7) == 0);
        CHECK(strlen(m.layers[i].digest) == 71 && hex_only(m.layers[i].digest + 7));
    }
}

static void check_names(const char *s)
{
    char q[INF_HUB_TAG_MAX], norm[300];
    if (inf__hub_quant_of(s, q, sizeof(q)))
        CHECK(q[0] != '\0');
    int a, b;
    size_t stem;
    if (inf__hub_shard_of(s, &a, &b, &stem))
        CHECK(a >= 1 && a <= b && stem + 20 == strlen(s));
    bool valid = inf_models_name_valid(s);
    if (valid) {
        const char *slash = strchr(s, '/'), *colon = strchr(s, ':');
        CHECK(strlen(s) <= 255 && s[0] != '/' && s[0] != '.' && s[0] != ':');
        CHECK(!slash || !strchr(slash + 1, '/'));
        CHECK(!colon || (!strchr(colon + 1, ':') && !strchr(colon + 1, '/')));
    }
    inf_models_name_normalize(s, norm, sizeof(norm));
    CHECK(strlen(norm) < sizeof(norm));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_MAX_INPUT)
        return 0;
    char *s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    switch (data[0] % 4) {
    case 0:
        check_ref(s);
        break;
    case 1:
        check_listing(s, size - 1);
        break;
    case 2:
        check_manifest(s, size - 1);
        break;
    default:
        check_names(s);
        break;
    }
    free(s);
    return 0;
}
