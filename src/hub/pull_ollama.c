/*
 * pull_ollama.c - the Ollama registry (a Docker registry v2): GET
 * /v2/NAMESPACE/NAME/manifests/TAG, then each layer we use from /v2/NAMESPACE/NAME/blobs/DIGEST
 * (redirected to a CDN), checked against its digest: the model (GGUF) as
 * models_dir/ollama.com/NAMESPACE/NAME/TAG.gguf, the Go chat template as TAG.template and the
 * default parameters as TAG.params.json beside it.
 *
 * The Go template is kept, not converted: the GGUF blobs of the Ollama library carry the
 * model's own Jinja template (tokenizer.chat_template, written by llama.cpp's converter), which
 * is what Inferno renders. docs/models.md says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/pull_internal.h"

#define MANIFEST_ACCEPT "application/vnd.docker.distribution.manifest.v2+json"

inf_status inf__hub_pull_ollama(struct inf__hub_http *h, const struct inf_hub_ref *ref,
                                struct inf_hub_result *out, struct inf_error *err)
{
    const struct inf_hub_params *p = inf__hub_params(h);
    char ep[1024], what[400], *url = NULL, *body = NULL;
    size_t len = 0;
    struct inf__hub_manifest m;
    inf_status st;

    snprintf(ep, sizeof(ep), "%s",
             p->ollama_endpoint && *p->ollama_endpoint ? p->ollama_endpoint
                                                       : "https://registry.ollama.ai");
    for (size_t n = strlen(ep); n > 0 && ep[n - 1] == '/';)
        ep[--n] = '\0';
    snprintf(what, sizeof(what), "ollama.com/%s/%s:%s", ref->owner, ref->repo, ref->tag);
    struct inf_hub_event ev = {.kind = INF_HUB_EV_STATUS, .msg = "pulling manifest"};
    if (!inf__hub_emit(h, &ev))
        return inf_error_set(err, INF_ECANCELED, "canceled");
    if (asprintf(&url, "%s/v2/%s/%s/manifests/%s", ep, ref->owner, ref->repo, ref->tag) < 0)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    st = inf__hub_get(h, url, MANIFEST_ACCEPT, false, what, &body, &len, NULL, err);
    free(url);
    if (st == INF_ENOTFOUND)
        return inf_error_set(err, INF_ENOTFOUND, "Ollama model '%s' not found", what);
    if (st != INF_OK)
        return st;
    st = inf__hub_manifest_parse(body, len, &m, err);
    free(body);
    if (st != INF_OK) {
        inf_error_prefix(err, "%s", what);
        return st;
    }

    const int wanted[3] = {m.model, m.tmpl, m.params};
    static const char *const ext[3] = {"gguf", "template", "params.json"};
    int count = 0;
    for (int k = 0; k < 3; k++)
        count += wanted[k] >= 0;
    for (int k = 0, index = 0; k < 3 && st == INF_OK; k++) {
        if (wanted[k] < 0)
            continue;
        const struct inf__hub_layer *ly = &m.layers[wanted[k]];
        char rel[512];
        snprintf(rel, sizeof(rel), "ollama.com/%s/%s/%s.%s", ref->owner, ref->repo, ref->tag,
                 ext[k]);
        if (asprintf(&url, "%s/v2/%s/%s/blobs/%s", ep, ref->owner, ref->repo, ly->digest) < 0)
            return inf_error_set(err, INF_ENOMEM, "out of memory");
        index++;
        struct inf__hub_fetch fe = {.url = url,
                                    .rel = rel,
                                    .size = ly->size,
                                    .sha256 = ly->digest + 7,
                                    .auth = false,
                                    .index = index,
                                    .count = count};
        uint64_t got = 0;
        st = inf__hub_fetch_file(h, &fe, &got, err);
        free(url);
        out->downloaded += got;
        out->size += ly->size;
        char *dst = k == 0 ? out->path : k == 1 ? out->template_path : out->params_path;
        snprintf(dst, sizeof(out->path), "%s/%s", p->models_dir, rel);
    }
    if (st != INF_OK)
        return st;
    out->n_files = count;
    snprintf(out->digest, sizeof(out->digest), "%s", m.layers[m.model].digest);
    snprintf(out->source, sizeof(out->source), "%s", what);
    if (strcmp(ref->owner, "library") == 0)
        snprintf(out->name, sizeof(out->name), "%s:%s", ref->repo, ref->tag);
    else
        snprintf(out->name, sizeof(out->name), "%s/%s:%s", ref->owner, ref->repo, ref->tag);
    return INF_OK;
}
