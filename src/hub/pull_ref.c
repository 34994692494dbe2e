/*
 * pull_ref.c - the parsing half of `inferno pull`, all from memory: references
 * (hf.co/OWNER/REPO:QUANT, ollama.com/NAME:TAG), the Hugging Face tree listing, the choice of
 * GGUF files by quantization, and the Ollama manifest. src/hub/ owns getting models: these
 * parsers, the downloads (pull.c, pull_hf.c, pull_ollama.c) and conversion (convert*.c).
 */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hub/pull_internal.h"

/* ---- references ------------------------------------------------------------------------------ */

static bool name_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

/* A name part: 1..max-1 name characters, not starting with '.' or '-', not "." or "..". */
static bool part_valid(const char *s, size_t n, size_t max)
{
    if (n == 0 || n >= max || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]))
            return false;
    return true;
}

bool inf__hub_path_valid(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n >= INF_HUB_FILE_MAX || p[0] == '/' || p[n - 1] == '/')
        return false;
    const char *c = p;
    while (*c) {
        const char *e = strchr(c, '/');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        for (size_t i = 0; i < len; i++)
            if (!name_char(c[i]) && c[i] != '+')
                return false;
        c += len;
        if (*c == '/')
            c++;
    }
    return true;
}

static bool ends_with_gguf(const char *s, size_t n)
{
    return n > 5 && strncasecmp(s + n - 5, ".gguf", 5) == 0;
}

static bool copy_part(char *dst, size_t max, const char *s, size_t n)
{
    if (!part_valid(s, n, max))
        return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

static const char *skip_prefix(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncasecmp(s, prefix, n) == 0 ? s + n : NULL;
}

static inf_status parse_ollama(const char *rest, const char *text, struct inf_hub_ref *out,
                               struct inf_error *err)
{
    const char *slash = strchr(rest, '/');
    const char *name = rest;
    if (slash) {
        if (strchr(slash + 1, '/'))
            return inf_error_set(err, INF_EINVAL,
                                 "'%s': an Ollama name is [NAMESPACE/]NAME[:TAG] (one '/' at most)",
                                 text);
        if (!copy_part(out->owner, sizeof(out->owner), rest, (size_t)(slash - rest)))
            return inf_error_set(err, INF_EINVAL, "'%s': invalid namespace", text);
        name = slash + 1;
    } else {
        snprintf(out->owner, sizeof(out->owner), "library");
    }
    const char *colon = strchr(name, ':');
    size_t nlen = colon ? (size_t)(colon - name) : strlen(name);
    if (!copy_part(out->repo, sizeof(out->repo), name, nlen))
        return inf_error_set(err, INF_EINVAL,
                             "'%s': invalid model name (letters, digits, '.', '_', '-')", text);
    if (colon) {
        if (!copy_part(out->tag, sizeof(out->tag), colon + 1, strlen(colon + 1)))
            return inf_error_set(err, INF_EINVAL, "'%s': invalid tag", text);
    } else {
        snprintf(out->tag, sizeof(out->tag), "latest");
    }
    out->kind = INF_HUB_OLLAMA;
    return INF_OK;
}

static inf_status parse_hf(const char *rest, const char *text, struct inf_hub_ref *out,
                           struct inf_error *err)
{
    const char *slash = strchr(rest, '/');
    if (!slash)
        return inf_error_set(err, INF_EINVAL, "'%s': a Hugging Face name is OWNER/REPO[:QUANT]",
                             text);
    if (!copy_part(out->owner, sizeof(out->owner), rest, (size_t)(slash - rest)))
        return inf_error_set(err, INF_EINVAL, "'%s': invalid owner", text);
    const char *r = slash + 1;
    size_t rlen = strcspn(r, "/:@");
    if (!copy_part(out->repo, sizeof(out->repo), r, rlen))
        return inf_error_set(err, INF_EINVAL,
                             "'%s': invalid repository name (letters, digits, '.', '_', '-')",
                             text);
    const char *p = r + rlen;
    snprintf(out->revision, sizeof(out->revision), "main");
    if (*p == '@') {
        size_t n = strcspn(p + 1, "/:");
        if (!copy_part(out->revision, sizeof(out->revision), p + 1, n))
            return inf_error_set(err, INF_EINVAL, "'%s': invalid revision", text);
        p += 1 + n;
    }
    if (*p == ':') {
        if (!copy_part(out->tag, sizeof(out->tag), p + 1, strlen(p + 1)))
            return inf_error_set(err, INF_EINVAL,
                                 "'%s': invalid quantization (letters, digits, '.', '_', '-')",
                                 text);
    } else if (*p == '/') {
        p++;
        /* the web's form: resolve/REV/FILE or blob/REV/FILE */
        const char *after = NULL;
        if ((after = skip_prefix(p, "resolve/")) || (after = skip_prefix(p, "blob/"))) {
            size_t n = strcspn(after, "/");
            if (!after[n] || !copy_part(out->revision, sizeof(out->revision), after, n))
                return inf_error_set(err, INF_EINVAL, "'%s': invalid revision", text);
            p = after + n + 1;
        }
        size_t n = strlen(p);
        if (!inf__hub_path_valid(p))
            return inf_error_set(err, INF_EINVAL, "'%s': invalid file path in the repository",
                                 text);
        if (!ends_with_gguf(p, n))
            return inf_error_set(err, INF_EINVAL, "'%s': the file must be a .gguf", text);
        memcpy(out->file, p, n + 1);
    } else if (*p) {
        return inf_error_set(err, INF_EINVAL, "'%s': unexpected '%c'", text, *p);
    }
    out->kind = INF_HUB_HF;
    return INF_OK;
}

inf_status inf_hub_ref_parse(const char *text, struct inf_hub_ref *out, struct inf_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!text || !*text)
        return inf_error_set(err, INF_EINVAL, "empty model reference");
    if (strlen(text) > 1024)
        return inf_error_set(err, INF_EINVAL, "model reference longer than 1024 bytes");
    for (const char *c = text; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return inf_error_set(err, INF_EINVAL,
                                 "model reference '%.200s' has a space or non-ASCII character",
                                 text);
    const char *s = text, *t;
    if ((t = skip_prefix(s, "https://")) || (t = skip_prefix(s, "http://")))
        s = t;
    static const char *const hf_hosts[] = {"hf.co/", "huggingface.co/", "www.huggingface.co/"};
    static const char *const ol_hosts[] = {"ollama.com/", "www.ollama.com/", "registry.ollama.ai/"};
    for (size_t i = 0; i < sizeof(hf_hosts) / sizeof(hf_hosts[0]); i++)
        if ((t = skip_prefix(s, hf_hosts[i])))
            return parse_hf(t, text, out, err);
    for (size_t i = 0; i < sizeof(ol_hosts) / sizeof(ol_hosts[0]); i++)
        if ((t = skip_prefix(s, ol_hosts[i])))
            return parse_ollama(t, text, out, err);
    if (s != text)
        return inf_error_set(err, INF_EINVAL,
                             "'%s': unknown host (hf.co, huggingface.co, ollama.com)", text);
    return strchr(s, '/') ? parse_hf(s, text, out, err) : parse_ollama(s, text, out, err);
}

/* ---- quantizations and shards ---------------------------------------------------------------- */

/* Known quantization names, longest first within a family so that Q4_K_M wins over Q4_K (a name
   must end at '-', '.', '/' or the end of the stem, never at '_', so Q4_K never matches the
   start of Q4_K_XXL). */
static const char *const quants[] = {
    "IQ1_S",   "IQ1_M",   "IQ2_XXS", "IQ2_XS", "IQ2_S",     "IQ2_M",    "IQ3_XXS",  "IQ3_XS",
    "IQ3_S",   "IQ3_M",   "IQ4_XS",  "IQ4_NL", "Q2_K_S",    "Q2_K_L",   "Q2_K",     "Q3_K_XL",
    "Q3_K_S",  "Q3_K_M",  "Q3_K_L",  "Q3_K",   "Q4_0_4_4",  "Q4_0_4_8", "Q4_0_8_8", "Q4_0",
    "Q4_1",    "Q4_K_XL", "Q4_K_S",  "Q4_K_M", "Q4_K_L",    "Q4_K",     "Q5_0",     "Q5_1",
    "Q5_K_XL", "Q5_K_S",  "Q5_K_M",  "Q5_K_L", "Q5_K",      "Q6_K_XL",  "Q6_K_L",   "Q6_K",
    "Q8_0",    "Q8_K_XL", "TQ1_0",   "TQ2_0",  "MXFP4_MOE", "MXFP4",    "BF16",     "F16",
    "F32",     "FP16",    "FP32",
};

static bool delim(char c)
{
    return c == '-' || c == '.' || c == '_' || c == '/';
}

bool inf__hub_shard_of(const char *file, int *index, int *count, size_t *stem_len)
{
    size_t n = strlen(file);
    /* -NNNNN-of-NNNNN.gguf is 20 characters */
    if (n < 21 || strcasecmp(file + n - 5, ".gguf") != 0)
        return false;
    const char *p = file + n - 20;
    if (p[0] != '-' || strncmp(p + 6, "-of-", 4) != 0)
        return false;
    int a = 0, b = 0;
    for (int i = 1; i <= 5; i++) {
        if (!isdigit((unsigned char)p[i]) || !isdigit((unsigned char)p[i + 9]))
            return false;
        a = a * 10 + (p[i] - '0');
        b = b * 10 + (p[i + 9] - '0');
    }
    if (a < 1 || b < 1 || a > b)
        return false;
    *index = a;
    *count = b;
    *stem_len = (size_t)(p - file);
    return true;
}

bool inf__hub_quant_of(const char *file, char *out, size_t size)
{
    char up[INF_HUB_FILE_MAX];
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int si, sc;
    size_t n = strlen(base), stem;
    if (inf__hub_shard_of(base, &si, &sc, &stem))
        n = stem;
    else if (ends_with_gguf(base, n))
        n -= 5;
    if (n >= sizeof(up))
        return false;
    for (size_t i = 0; i < n; i++)
        up[i] = (char)toupper((unsigned char)base[i]);
    up[n] = '\0';
    /* the rightmost position where a known name starts and ends at delimiters */
    for (size_t pos = n; pos-- > 0;) {
        if (pos > 0 && !delim(up[pos - 1]))
            continue;
        for (size_t q = 0; q < sizeof(quants) / sizeof(quants[0]); q++) {
            size_t ql = strlen(quants[q]);
            if (pos + ql <= n && memcmp(up + pos, quants[q], ql) == 0 &&
                (pos + ql == n || (delim(up[pos + ql]) && up[pos + ql] != '_'))) {
                const char *name = quants[q];
                if (strcmp(name, "FP16") == 0)
                    name = "F16";
                else if (strcmp(name, "FP32") == 0)
                    name = "F32";
                snprintf(out, size, "%s", name);
                return true;
            }
        }
    }
    return false;
}

/* ---- the Hugging Face listing ---------------------------------------------------------------- */

static bool hex_of_len(const char *s, size_t n)
{
    if (!s || strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

static void lower_copy(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[n] = '\0';
}

static bool size_of(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) > INF__HUB_MAX_FILESIZE)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

inf_status inf__hub_listing_parse(const char *json, size_t len, struct inf__hub_listing *l,
                                  struct inf_error *err)
{
    json_error_t je;
    inf_status st = INF_OK;
    if (len > INF__HUB_MAX_JSON)
        return inf_error_set(err, INF_ELIMIT, "repository listing larger than %u bytes",
                             INF__HUB_MAX_JSON);
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return inf_error_set(err, INF_EFORMAT, "repository listing is not JSON: %s (line %d)",
                             je.text, je.line);
    if (!json_is_array(root)) {
        st = inf_error_set(err, INF_EFORMAT, "repository listing is not a JSON array");
        goto out;
    }
    size_t i;
    json_t *e;
    json_array_foreach(root, i, e)
    {
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *path = json_string_value(json_object_get(e, "path"));
        if (!json_is_object(e) || !type || !path) {
            st = inf_error_set(err, INF_EFORMAT,
                               "repository listing: entry %zu lacks \"type\" or \"path\"", i);
            goto out;
        }
        if (strcmp(type, "file") != 0)
            continue;
        if (!inf__hub_path_valid(path)) {
            st = inf_error_set(err, INF_EFORMAT, "repository listing: invalid path '%.200s'", path);
            goto out;
        }
        struct inf__hub_file f;
        memset(&f, 0, sizeof(f));
        snprintf(f.path, sizeof(f.path), "%s", path);
        if (!size_of(json_object_get(e, "size"), &f.size)) {
            st =
                inf_error_set(err, INF_EFORMAT, "repository listing: '%s' has no valid size", path);
            goto out;
        }
        const char *oid = json_string_value(json_object_get(e, "oid"));
        if (oid) {
            if (!hex_of_len(oid, 40)) {
                st =
                    inf_error_set(err, INF_EFORMAT, "repository listing: '%s' has a bad oid", path);
                goto out;
            }
            lower_copy(f.git_oid, oid, 40);
        }
        json_t *lfs = json_object_get(e, "lfs");
        if (lfs && !json_is_null(lfs)) {
            const char *loid = json_string_value(json_object_get(lfs, "oid"));
            uint64_t lsize;
            if (!hex_of_len(loid, 64) || !size_of(json_object_get(lfs, "size"), &lsize) ||
                lsize != f.size) {
                st = inf_error_set(err, INF_EFORMAT,
                                   "repository listing: '%s' has a bad LFS oid or size", path);
                goto out;
            }
            lower_copy(f.sha256, loid, 64);
        }
        if (l->n >= INF__HUB_MAX_FILES) {
            st = inf_error_set(err, INF_ELIMIT, "repository listing has more than %d files",
                               INF__HUB_MAX_FILES);
            goto out;
        }
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 64;
            struct inf__hub_file *p = realloc(l->files, cap * sizeof(*p));
            if (!p) {
                st = inf_error_set(err, INF_ENOMEM, "out of memory");
                goto out;
            }
            l->files = p;
            l->cap = cap;
        }
        l->files[l->n++] = f;
    }
out:
    json_decref(root);
    return st;
}

void inf__hub_listing_release(struct inf__hub_listing *l)
{
    free(l->files);
    memset(l, 0, sizeof(*l));
}

/* ---- choosing files -------------------------------------------------------------------------- */

static const char *base_of(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static bool is_gguf(const struct inf__hub_file *f)
{
    return ends_with_gguf(f->path, strlen(f->path));
}

static bool is_projector(const struct inf__hub_file *f)
{
    return strncasecmp(base_of(f->path), "mmproj", 6) == 0;
}

/* The model a GGUF belongs to: the path without its shard suffix (or the path). */
static size_t group_len(const char *path)
{
    int a, b;
    size_t stem;
    const char *base = base_of(path);
    if (inf__hub_shard_of(base, &a, &b, &stem))
        return (size_t)(base - path) + stem;
    return strlen(path);
}

static bool same_group(const char *a, const char *b)
{
    size_t la = group_len(a), lb = group_len(b);
    return la == lb && strncmp(a, b, la) == 0;
}

/* Fill out with every shard of the group of l->files[first], in order; checks completeness. */
static inf_status take_group(const struct inf__hub_listing *l, size_t first,
                             struct inf__hub_choice *out, struct inf_error *err)
{
    const char *path = l->files[first].path;
    int a, count;
    size_t stem;
    out->n = 0;
    if (!inf__hub_shard_of(base_of(path), &a, &count, &stem)) {
        out->idx[0] = first;
        out->n = 1;
        return INF_OK;
    }
    if (count > INF__HUB_MAX_SHARDS)
        return inf_error_set(err, INF_ELIMIT, "'%s': more than %d shards", path,
                             INF__HUB_MAX_SHARDS);
    for (int k = 1; k <= count; k++) {
        bool found = false;
        for (size_t i = 0; i < l->n && !found; i++) {
            int ki, kc;
            size_t ks;
            if (same_group(l->files[i].path, path) &&
                inf__hub_shard_of(base_of(l->files[i].path), &ki, &kc, &ks) && ki == k &&
                kc == count) {
                out->idx[out->n++] = i;
                found = true;
            }
        }
        if (!found)
            return inf_error_set(err, INF_ENOTFOUND,
                                 "'%.*s': shard %d of %d is not in the "
                                 "repository",
                                 (int)group_len(path), path, k, count);
    }
    return INF_OK;
}

/* "Q4_K_M, Q8_0 (2 files)..." : the distinct model groups' quantizations (or file names). */
static void list_choices(const struct inf__hub_listing *l, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < l->n; i++) {
        const struct inf__hub_file *f = &l->files[i];
        if (!is_gguf(f) || is_projector(f))
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            if (is_gguf(&l->files[j]) && same_group(l->files[j].path, f->path))
                seen = true;
        if (seen)
            continue;
        char q[INF_HUB_TAG_MAX];
        const char *label = inf__hub_quant_of(f->path, q, sizeof(q)) ? q : f->path;
        int n = snprintf(out + used, size - used, "%s%s", used ? ", " : "", label);
        if (n < 0 || (size_t)n >= size - used) {
            if (size > 4)
                snprintf(out + size - 4, 4, "...");
            return;
        }
        used += (size_t)n;
    }
}

inf_status inf__hub_choose(const struct inf__hub_listing *l, const struct inf_hub_ref *ref,
                           struct inf__hub_choice *out, struct inf_error *err)
{
    char choices[600];
    memset(out, 0, sizeof(*out));
    if (ref->file[0]) {
        for (size_t i = 0; i < l->n; i++)
            if (strcmp(l->files[i].path, ref->file) == 0) {
                inf_status st = take_group(l, i, out, err);
                if (st == INF_OK)
                    inf__hub_quant_of(ref->file, out->quant, sizeof(out->quant));
                return st;
            }
        return inf_error_set(err, INF_ENOTFOUND, "no file '%s' in %s/%s@%s", ref->file, ref->owner,
                             ref->repo, ref->revision);
    }
    /* candidate groups: one representative (the first file seen) each */
    size_t n_groups = 0, pick = 0, q4km = (size_t)-1, n_q4km = 0, n_match = 0;
    for (size_t i = 0; i < l->n; i++) {
        const struct inf__hub_file *f = &l->files[i];
        if (!is_gguf(f) || is_projector(f))
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            if (is_gguf(&l->files[j]) && same_group(l->files[j].path, f->path))
                seen = true;
        if (seen)
            continue;
        n_groups++;
        char q[INF_HUB_TAG_MAX];
        bool has_q = inf__hub_quant_of(f->path, q, sizeof(q));
        if (ref->tag[0]) {
            if (has_q && strcasecmp(q, ref->tag) == 0) {
                if (n_match++ == 0)
                    pick = i;
            }
        } else {
            if (n_groups == 1)
                pick = i;
            if (has_q && strcmp(q, "Q4_K_M") == 0 && n_q4km++ == 0)
                q4km = i;
        }
    }
    list_choices(l, choices, sizeof(choices));
    if (n_groups == 0) {
        bool st_files = false;
        for (size_t i = 0; i < l->n && !st_files; i++) {
            size_t n = strlen(l->files[i].path);
            st_files = n > 12 && strcasecmp(l->files[i].path + n - 12, ".safetensors") == 0;
        }
        return inf_error_set(err, INF_ENOTFOUND, "%s/%s@%s has no GGUF file%s", ref->owner,
                             ref->repo, ref->revision,
                             st_files ? " (it has safetensors: download the directory and "
                                        "use inferno convert)"
                                      : "");
    }
    if (ref->tag[0]) {
        if (n_match == 0)
            return inf_error_set(err, INF_ENOTFOUND,
                                 "%s/%s has no GGUF of quantization '%s'; there are: %s",
                                 ref->owner, ref->repo, ref->tag, choices);
        if (n_match > 1)
            return inf_error_set(err, INF_EINVAL,
                                 "%s/%s has %zu GGUF models of quantization '%s'; name the file "
                                 "(hf.co/%s/%s/FILE.gguf)",
                                 ref->owner, ref->repo, n_match, ref->tag, ref->owner, ref->repo);
    } else if (n_groups > 1) {
        if (n_q4km != 1)
            return inf_error_set(err, INF_EINVAL,
                                 "%s/%s has %zu GGUF models; choose one with :QUANT "
                                 "(hf.co/%s/%s:QUANT): %s",
                                 ref->owner, ref->repo, n_groups, ref->owner, ref->repo, choices);
        pick = q4km;
    }
    inf_status st = take_group(l, pick, out, err);
    if (st == INF_OK)
        inf__hub_quant_of(l->files[pick].path, out->quant, sizeof(out->quant));
    return st;
}

/* ---- the Ollama manifest --------------------------------------------------------------------- */

#define MT_MODEL  "application/vnd.ollama.image.model"
#define MT_TMPL   "application/vnd.ollama.image.template"
#define MT_PARAMS "application/vnd.ollama.image.params"

static bool digest_valid(const char *d)
{
    return d && strncmp(d, "sha256:", 7) == 0 && hex_of_len(d + 7, 64);
}

inf_status inf__hub_manifest_parse(const char *json, size_t len, struct inf__hub_manifest *out,
                                   struct inf_error *err)
{
    json_error_t je;
    inf_status st = INF_OK;
    memset(out, 0, sizeof(*out));
    out->model = out->tmpl = out->params = -1;
    if (len > INF__HUB_MAX_JSON)
        return inf_error_set(err, INF_ELIMIT, "manifest larger than %u bytes", INF__HUB_MAX_JSON);
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return inf_error_set(err, INF_EFORMAT, "manifest is not JSON: %s (line %d)", je.text,
                             je.line);
    json_t *layers = json_object_get(root, "layers");
    if (!json_is_object(root) || json_integer_value(json_object_get(root, "schemaVersion")) != 2 ||
        !json_is_array(layers)) {
        st = inf_error_set(err, INF_EFORMAT,
                           "manifest is not a schemaVersion 2 manifest with \"layers\"");
        goto out;
    }
    if (json_array_size(layers) > INF__HUB_MAX_LAYERS) {
        st =
            inf_error_set(err, INF_ELIMIT, "manifest has more than %d layers", INF__HUB_MAX_LAYERS);
        goto out;
    }
    size_t i;
    json_t *e;
    json_array_foreach(layers, i, e)
    {
        const char *mt = json_string_value(json_object_get(e, "mediaType"));
        const char *dg = json_string_value(json_object_get(e, "digest"));
        struct inf__hub_layer *ly = &out->layers[out->n];
        if (!mt || strlen(mt) >= sizeof(ly->media_type) || !digest_valid(dg) ||
            !size_of(json_object_get(e, "size"), &ly->size)) {
            st =
                inf_error_set(err, INF_EFORMAT,
                              "manifest layer %zu lacks a mediaType, a sha256 digest or a size", i);
            goto out;
        }
        snprintf(ly->media_type, sizeof(ly->media_type), "%s", mt);
        snprintf(ly->digest, sizeof(ly->digest), "sha256:");
        lower_copy(ly->digest + 7, dg + 7, 64);
        int *slot = strcmp(mt, MT_MODEL) == 0    ? &out->model
                    : strcmp(mt, MT_TMPL) == 0   ? &out->tmpl
                    : strcmp(mt, MT_PARAMS) == 0 ? &out->params
                                                 : NULL;
        if (slot) {
            if (*slot >= 0) {
                st = inf_error_set(err, INF_EFORMAT, "manifest has two '%s' layers", mt);
                goto out;
            }
            *slot = out->n;
        }
        out->n++;
    }
    if (out->model < 0)
        st = inf_error_set(err, INF_EFORMAT, "manifest has no model layer (%s)", MT_MODEL);
    else if (out->tmpl >= 0 && out->layers[out->tmpl].size > (1u << 20))
        st = inf_error_set(err, INF_ELIMIT, "manifest's template layer is larger than 1 MiB");
    else if (out->params >= 0 && out->layers[out->params].size > (1u << 20))
        st = inf_error_set(err, INF_ELIMIT, "manifest's params layer is larger than 1 MiB");
out:
    json_decref(root);
    return st;
}
