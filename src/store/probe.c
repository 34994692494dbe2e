/*
 * probe.c - inf_model_probe: recognise a model file by its content and summarise it for
 * `models list`. GGUF files are read through the engine's reader (metadata and tensor
 * table only; no tensor data is touched).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/gguf_adapter.h"
#include "inferno/gguf.h"
#include "inferno/model_file.h"
#include "inferno/models.h"

static inf_status probe_gguf(const char *path, struct inf_model_summary *s, struct inf_error *err)
{
    struct inf_gguf *g;
    struct inf_model_params mp = inf_model_default_params();
    uint64_t bytes[64], bytes_total;
    char key[96];
    uint32_t v;

    inf_status st = inf__g_open(path, &mp, &g, err);
    if (st)
        return st;
    snprintf(s->format, sizeof(s->format), "gguf");
    if (!inf__g_str(g, "general.architecture", s->architecture, sizeof(s->architecture)))
        s->architecture[0] = '\0';
    inf__g_weight_totals(g, &s->n_params, &bytes_total);
    inf__g_type_bytes(g, bytes);
    int best = -1;
    for (int t = 0; t < 64; t++)
        if (bytes[t] && (best < 0 || bytes[t] > bytes[best]))
            best = t;
    snprintf(s->dominant_type, sizeof(s->dominant_type), "%s",
             best >= 0 ? inf__g_type_name(best) : "");
    const char *ft = inf__g_u32(g, "general.file_type", &v) ? inf_llama_ftype_name(v) : NULL;
    snprintf(s->file_type, sizeof(s->file_type), "%s", ft ? ft : "");
    snprintf(key, sizeof(key), "%s.context_length", s->architecture);
    s->context_length = inf__g_u32(g, key, &v) ? v : 0;
    inf__g_close(g);
    return INF_OK;
}

inf_status inf_model_probe(const char *path, struct inf_model_summary *out, struct inf_error *err)
{
    struct stat sb;

    memset(out, 0, sizeof(*out));
    out->n_shards = 1;
    if (stat(path, &sb) != 0)
        return inf_error_set(err, INF_ENOTFOUND, "'%s': %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        char index[4200];
        snprintf(index, sizeof(index), "%s/model.safetensors.index.json", path);
        if (access(index, R_OK) != 0)
            return inf_error_set(err, INF_EFORMAT, "'%s' is a directory without a model", path);
        snprintf(out->format, sizeof(out->format), "safetensors");
        return INF_OK;
    }
    out->size_bytes = (uint64_t)sb.st_size;
    struct inf_model_format_info fi;
    inf_status st = inf_model_detect_file(path, &fi, err);
    if (st)
        return st;
    if (fi.format == INF_MODEL_FORMAT_GGUF)
        return probe_gguf(path, out, err);
    const char *fmt = inf_model_format_name(fi.format);
    snprintf(out->format, sizeof(out->format), "%s", fmt);
    return INF_OK;
}
