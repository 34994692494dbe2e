/*
 * pull_hf.c - the Hugging Face Hub: list the repository's files at a revision
 * (GET /api/models/OWNER/REPO/tree/REV?recursive=true, paginated by Link headers), choose the
 * GGUF file(s) (pull_ref.c), download each from /OWNER/REPO/resolve/REV/PATH (which redirects
 * to a CDN) checked against its LFS sha256 into models_dir/hf.co/OWNER/REPO/PATH.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/pull_internal.h"
#include "inferno/log.h"

#define MAX_PAGES 1000

/* The endpoint without a trailing '/'. */
static void endpoint(const char *ep, const char *fallback, char *out, size_t size)
{
    snprintf(out, size, "%s", ep && *ep ? ep : fallback);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
}

static inf_status list_repo(struct inf__hub_http *h, const char *ep, const struct inf_hub_ref *ref,
                            struct inf__hub_listing *l, struct inf_error *err)
{
    char rev[3 * INF_HUB_REV_MAX], what[400];
    char *url = NULL;
    inf__hub_url_escape(ref->revision, false, rev, sizeof(rev));
    snprintf(what, sizeof(what), "%s/%s@%s", ref->owner, ref->repo, ref->revision);
    if (asprintf(&url, "%s/api/models/%s/%s/tree/%s?recursive=true", ep, ref->owner, ref->repo,
                 rev) < 0)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    inf_status st = INF_OK;
    for (int page = 0; url && st == INF_OK; page++) {
        char *body = NULL, *next = NULL;
        size_t len = 0;
        if (page >= MAX_PAGES) {
            st = inf_error_set(err, INF_ELIMIT, "%s: more than %d pages of files", what, MAX_PAGES);
            break;
        }
        st = inf__hub_get(h, url, "application/json", true, what, &body, &len, &next, err);
        if (st == INF_OK)
            st = inf__hub_listing_parse(body, len, l, err);
        free(body);
        free(url);
        url = next;
        /* the next page must be on the same hub: the token goes with it */
        if (url && (strncmp(url, ep, strlen(ep)) != 0 || url[strlen(ep)] != '/')) {
            st = inf_error_set(err, INF_EFORMAT,
                               "%s: the listing's next page is on another "
                               "host; not following it",
                               what);
        }
    }
    free(url);
    if (st == INF_ENOTFOUND)
        inf_error_set(err, INF_ENOTFOUND,
                      "Hugging Face repository '%s/%s' or revision '%s' not found (or private: "
                      "set HF_TOKEN)",
                      ref->owner, ref->repo, ref->revision);
    return st;
}

inf_status inf__hub_pull_hf(struct inf__hub_http *h, const struct inf_hub_ref *ref,
                            struct inf_hub_result *out, struct inf_error *err)
{
    const struct inf_hub_params *p = inf__hub_params(h);
    char ep[1024], msg[512];
    struct inf__hub_listing l = {0};
    struct inf__hub_choice ch;
    inf_status st;

    endpoint(p->hf_endpoint, "https://huggingface.co", ep, sizeof(ep));
    snprintf(msg, sizeof(msg), "listing hf.co/%s/%s@%s", ref->owner, ref->repo, ref->revision);
    struct inf_hub_event ev = {.kind = INF_HUB_EV_STATUS, .msg = msg};
    if (!inf__hub_emit(h, &ev))
        return inf_error_set(err, INF_ECANCELED, "canceled");
    if ((st = list_repo(h, ep, ref, &l, err)) != INF_OK)
        goto out;
    if ((st = inf__hub_choose(&l, ref, &ch, err)) != INF_OK)
        goto out;
    if (ch.n < 1 || !l.files) {
        st = inf_error_set(err, INF_EINTERNAL, "no file chosen");
        goto out;
    }

    char rev[3 * INF_HUB_REV_MAX];
    inf__hub_url_escape(ref->revision, false, rev, sizeof(rev));
    for (int i = 0; i < ch.n && st == INF_OK; i++) {
        const struct inf__hub_file *f = &l.files[ch.idx[i]];
        char path[3 * INF_HUB_FILE_MAX], rel[512], *url = NULL;
        inf__hub_url_escape(f->path, true, path, sizeof(path));
        snprintf(rel, sizeof(rel), "hf.co/%s/%s/%s", ref->owner, ref->repo, f->path);
        if (asprintf(&url, "%s/%s/%s/resolve/%s/%s", ep, ref->owner, ref->repo, rev, path) < 0) {
            st = inf_error_set(err, INF_ENOMEM, "out of memory");
            break;
        }
        struct inf__hub_fetch fe = {.url = url,
                                    .rel = rel,
                                    .size = f->size,
                                    .sha256 = f->sha256,
                                    .git_oid = f->git_oid,
                                    .auth = true,
                                    .index = i + 1,
                                    .count = ch.n};
        uint64_t got = 0;
        st = inf__hub_fetch_file(h, &fe, &got, err);
        free(url);
        out->downloaded += got;
        out->size += f->size;
        if (i == 0 && st == INF_OK) {
            snprintf(out->path, sizeof(out->path), "%s/%s", p->models_dir, rel);
            snprintf(out->digest, sizeof(out->digest), "%s%s",
                     f->sha256[0] ? "sha256:" : "git-sha1:", f->sha256[0] ? f->sha256 : f->git_oid);
            snprintf(out->source, sizeof(out->source), "hf.co/%s/%s@%s/%s", ref->owner, ref->repo,
                     ref->revision, f->path);
        }
    }
    if (st != INF_OK)
        goto out;
    out->n_files = ch.n;
    snprintf(out->quant, sizeof(out->quant), "%s", ch.quant);
    if (ch.quant[0]) {
        snprintf(out->name, sizeof(out->name), "%s/%s:%s", ref->owner, ref->repo, ch.quant);
    } else {
        /* no quantization in the name: the file's stem stands for it */
        const char *fp = l.files[ch.idx[0]].path;
        const char *base = strrchr(fp, '/') ? strrchr(fp, '/') + 1 : fp;
        int a, b;
        size_t stem = strlen(base) - 5;
        inf__hub_shard_of(base, &a, &b, &stem);
        snprintf(out->name, sizeof(out->name), "%s/%s:%.*s", ref->owner, ref->repo, (int)stem,
                 base);
    }
out:
    inf__hub_listing_release(&l);
    return st;
}
