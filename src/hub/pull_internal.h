/*
 * hub/pull_internal.h - what the pull files share: the hubs' listings and manifests as checked
 * structs (pull_ref.c: from memory, so the fuzz target reaches them), the quantization of a
 * file name, the choice of files, and the download of one verified file (pull.c). Internal to
 * src/hub/ (and tests, fuzz targets).
 */
#ifndef INFERNO_HUB_PULL_INTERNAL_H
#define INFERNO_HUB_PULL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/hub.h"

#define INF__HUB_MAX_FILES    100000 /* entries of a repository listing */
#define INF__HUB_MAX_SHARDS   256
#define INF__HUB_MAX_LAYERS   64
#define INF__HUB_MAX_JSON     (64u << 20)  /* a listing or manifest body */
#define INF__HUB_MAX_FILESIZE (1ull << 42) /* 4 TiB: larger sizes are refused as nonsense */

/* One file of a Hugging Face repository (the tree API's entry). */
struct inf__hub_file {
    char path[INF_HUB_FILE_MAX];
    uint64_t size;
    char sha256[65];  /* the LFS oid (lowercase hex), "" when the file is not in LFS */
    char git_oid[41]; /* the git blob id (sha1 of "blob SIZE\0" + bytes), "" when absent */
};

struct inf__hub_listing {
    struct inf__hub_file *files;
    size_t n, cap;
};

/*
 * Append the entries of one page of GET /api/models/OWNER/REPO/tree/REV?recursive=true (a JSON
 * array of {"type": "file"|"directory", "path", "size", "oid", "lfs": {"oid", "size"}}).
 * Directories are skipped; a file entry must have a valid path (inf__hub_path_valid), a size
 * within INF__HUB_MAX_FILESIZE, hex oids of the right length, and an LFS size equal to its size.
 * INF_EFORMAT naming the entry otherwise.
 */
inf_status inf__hub_listing_parse(const char *json, size_t len, struct inf__hub_listing *l,
                                  struct inf_error *err);
void inf__hub_listing_release(struct inf__hub_listing *l);

/* A relative path of letters, digits, '.', '_', '-', '+' and '/' between non-empty components,
   none of them '.' or '..', at most INF_HUB_FILE_MAX - 1 bytes. */
bool inf__hub_path_valid(const char *p);

/*
 * The quantization a GGUF file name carries ("Q4_K_M", "IQ4_XS", "F16", "BF16", "MXFP4"...),
 * upper-case, as the rightmost known name preceded by '-', '.', '_', '/' or the start of the
 * stem and followed by '-', '.', '/' or its end; false when none.
 */
bool inf__hub_quant_of(const char *file, char *out, size_t size);

/* "NAME-00002-of-00005.gguf": shard 2 of 5, stem_len = the length of "NAME". */
bool inf__hub_shard_of(const char *file, int *index, int *count, size_t *stem_len);

/* The files to download from a listing: one GGUF, or every shard of one (in order). */
struct inf__hub_choice {
    size_t idx[INF__HUB_MAX_SHARDS];
    int n;
    char quant[INF_HUB_TAG_MAX]; /* the chosen files' quantization ("" unknown) */
};

/*
 * Choose as the reference says: its file (any shard names the set); else the GGUF files of its
 * quantization (case-insensitive); else the only GGUF model of the repository, or its Q4_K_M.
 * mmproj-* files (vision projectors) are never chosen by quantization. A shard set must be
 * complete. INF_ENOTFOUND / INF_EINVAL with the quantizations available in the message.
 */
inf_status inf__hub_choose(const struct inf__hub_listing *l, const struct inf_hub_ref *ref,
                           struct inf__hub_choice *out, struct inf_error *err);

/* One layer of an Ollama manifest. */
struct inf__hub_layer {
    char media_type[128];
    char digest[72]; /* "sha256:" + 64 lowercase hex */
    uint64_t size;
};

struct inf__hub_manifest {
    struct inf__hub_layer layers[INF__HUB_MAX_LAYERS];
    int n;
    int model, tmpl, params; /* indices of those layers, -1 when absent */
};

/*
 * Check an Ollama (Docker v2) manifest: schemaVersion 2, layers with a media type, a
 * "sha256:HEX" digest and a size; exactly one application/vnd.ollama.image.model layer, at most
 * one template and one params layer. INF_EFORMAT naming what is wrong.
 */
inf_status inf__hub_manifest_parse(const char *json, size_t len, struct inf__hub_manifest *out,
                                   struct inf_error *err);

/* ---- pull.c: HTTP ------------------------------------------------------------------------- */

struct inf__hub_http; /* a libcurl handle and the pull's parameters */

inf_status inf__hub_http_new(const struct inf_hub_params *p, struct inf__hub_http **out,
                             struct inf_error *err);
void inf__hub_http_free(struct inf__hub_http *h);

/*
 * GET url into memory (at most INF__HUB_MAX_JSON bytes), with retries. accept: an Accept header
 * or NULL; auth: send the token. *next_url (when not NULL) gets the Link rel="next" URL of a
 * paginated answer (malloc'd) or NULL. The HTTP status is checked: 2xx is OK, 404 is
 * INF_ENOTFOUND, 401/403 INF_EUNSUPPORTED, anything else INF_EIO; what names the request.
 */
inf_status inf__hub_get(struct inf__hub_http *h, const char *url, const char *accept, bool auth,
                        const char *what, char **body, size_t *len, char **next_url,
                        struct inf_error *err);

/* A file to download: from url into models_dir/rel, checked against sha256 (or git_oid). */
struct inf__hub_fetch {
    const char *url;
    const char *rel; /* the target below models_dir */
    uint64_t size;   /* expected */
    const char *sha256;
    const char *git_oid;
    bool auth;
    int index, count;
};

/*
 * Download f: skip it when the target is there with the expected size and digest; resume
 * rel.partial with a Range request; verify; fsync; rename into place. *downloaded gets the bytes
 * transferred. A digest mismatch after a resume starts once more from zero (the partial file
 * may have come from an older version of the file).
 */
inf_status inf__hub_fetch_file(struct inf__hub_http *h, const struct inf__hub_fetch *f,
                               uint64_t *downloaded, struct inf_error *err);

/* Report an event to the caller's callback (false: cancel). */
bool inf__hub_emit(struct inf__hub_http *h, const struct inf_hub_event *ev);
const struct inf_hub_params *inf__hub_params(const struct inf__hub_http *h);

/* Percent-encode s for a URL path segment ('/' too unless keep_slash). */
void inf__hub_url_escape(const char *s, bool keep_slash, char *out, size_t size);

/* pull_hf.c, pull_ollama.c */
inf_status inf__hub_pull_hf(struct inf__hub_http *h, const struct inf_hub_ref *ref,
                            struct inf_hub_result *out, struct inf_error *err);
inf_status inf__hub_pull_ollama(struct inf__hub_http *h, const struct inf_hub_ref *ref,
                                struct inf_hub_result *out, struct inf_error *err);

#endif
