/*
 * inferno/hub.h - models from hubs: the Hugging Face Hub and the Ollama registry (`inferno
 * pull`, the Ollama API's /api/pull).
 *
 * A reference names what to pull (inf_hub_ref_parse):
 *   hf.co/OWNER/REPO[@REVISION][:QUANT]     the repository's GGUF of that quantization (default
 *                                           Q4_K_M, or the repository's only GGUF)
 *   hf.co/OWNER/REPO[@REVISION]/FILE.gguf   one file (sharded files: any shard names them all)
 *   https://huggingface.co/OWNER/REPO/(resolve|blob)/REVISION/FILE.gguf
 *   ollama.com/[NAMESPACE/]NAME[:TAG]       an Ollama model (namespace "library", tag "latest")
 *   OWNER/REPO[...]                         without a host: Hugging Face
 *   NAME[:TAG]                              without a host or a slash: the Ollama library
 * (huggingface.co/ and registry.ollama.ai/ are accepted for the hosts; a leading https:// is
 * ignored.)
 *
 * inf_hub_pull downloads over HTTP(S) with libcurl: each file into FILE.partial beside its
 * target, resumed with a Range request when a .partial is there, its SHA-256 (Hugging Face's
 * LFS oid, the Ollama blob digest) checked before the file is renamed into place; retries with
 * backoff on 5xx, 429, timeouts and dropped connections. Proxies follow libcurl's environment
 * (http_proxy, https_proxy, no_proxy). The token is sent only to the hub's own host (never
 * after a redirect to another host) and never logged.
 */
#ifndef INFERNO_HUB_H
#define INFERNO_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

enum inf_hub_kind { INF_HUB_HF = 1, INF_HUB_OLLAMA = 2 };

#define INF_HUB_NAME_MAX 96  /* an owner, repository, namespace or model name, with its NUL */
#define INF_HUB_TAG_MAX  64  /* a quantization or tag */
#define INF_HUB_FILE_MAX 256 /* a file's path in a repository */
#define INF_HUB_REV_MAX  128 /* a branch, tag or commit */

struct inf_hub_ref {
    enum inf_hub_kind kind;
    char owner[INF_HUB_NAME_MAX];   /* HF owner; Ollama namespace ("library") */
    char repo[INF_HUB_NAME_MAX];    /* HF repository; Ollama model name */
    char tag[INF_HUB_TAG_MAX];      /* HF quantization ("" = choose); Ollama tag ("latest") */
    char file[INF_HUB_FILE_MAX];    /* HF: one file of the repository ("" = choose by tag) */
    char revision[INF_HUB_REV_MAX]; /* HF: branch, tag or commit ("main") */
};

/*
 * Parse a reference (the forms above). Every part is checked: letters, digits, '.', '_', '-'
 * (and '/' between a file's directories), no '..' component, lengths within the fields.
 * INF_EINVAL with a message naming the part otherwise.
 */
inf_status inf_hub_ref_parse(const char *text, struct inf_hub_ref *out, struct inf_error *err);

/* What a pull reports as it goes (to the progress callback). */
enum inf_hub_event_kind {
    INF_HUB_EV_STATUS,    /* msg: a step ("pulling manifest") */
    INF_HUB_EV_FILE,      /* a file begins: file, digest, total; done = bytes already there */
    INF_HUB_EV_PROGRESS,  /* done of total bytes of file, rate in bytes/s (at most 10 a second) */
    INF_HUB_EV_VERIFY,    /* the digest of file is being checked */
    INF_HUB_EV_FILE_DONE, /* file is complete and in place */
    INF_HUB_EV_RETRY,     /* msg: why the transfer of file is tried again; attempt */
};

struct inf_hub_event {
    enum inf_hub_event_kind kind;
    const char *msg;    /* STATUS, RETRY; else NULL */
    const char *file;   /* the file's name in models_dir (relative); NULL for STATUS */
    const char *digest; /* "sha256:HEX" ("" when the hub gives none) */
    uint64_t done, total;
    double rate;      /* PROGRESS: bytes/s over the transfer so far */
    int index, count; /* this file's number (from 1) and the files of the pull */
    int attempt;      /* RETRY: the attempt that failed (from 1) */
};

/*
 * An event as one line of JSON (no newline; malloc'd, NULL when out of memory): the shape of
 * Ollama's /api/pull progress - "status" ("pulling FILE", "verifying FILE digest", a step),
 * "digest", "total", "completed" - plus "file", "rate" (bytes/s) and "attempt" (retries).
 */
char *inf_hub_event_json(const struct inf_hub_event *ev);

/* Return false to cancel the pull (it ends with INF_ECANCELED; the .partial stays to resume). */
typedef bool (*inf_hub_progress_fn)(const struct inf_hub_event *ev, void *user);

struct inf_hub_params {
    const char *models_dir;      /* files go to models_dir/hf.co/OWNER/REPO/... and
                                    models_dir/ollama.com/NAMESPACE/NAME/... */
    const char *hf_endpoint;     /* "https://huggingface.co" (a mirror: hub.endpoint) */
    const char *ollama_endpoint; /* "https://registry.ollama.ai" */
    const char *token;           /* Hugging Face bearer token, or NULL */
    const char *revision;        /* overrides the reference's revision, or NULL */
    int max_retries;             /* attempts after the first per file; 0 = none */
    int stall_seconds;           /* a transfer that gets no byte for this long is retried */
    int connect_seconds;         /* connection timeout */
    double backoff_seconds;      /* the first retry's delay, doubled each time (max 30 s) */
    inf_hub_progress_fn progress;
    void *user;
};

/* Defaults for everything but models_dir (5 retries, 30 s stall, 15 s connect, 1 s backoff). */
void inf_hub_params_init(struct inf_hub_params *p);

struct inf_hub_result {
    char name[256];   /* the registry name: OWNER/REPO:QUANT, NAME:TAG, NAMESPACE/NAME:TAG */
    char path[4096];  /* the model file (the first shard) */
    char source[640]; /* hf.co/OWNER/REPO@REVISION/FILE or ollama.com/NAMESPACE/NAME:TAG */
    char digest[80];  /* "sha256:HEX" of the model file (the first shard) */
    char quant[INF_HUB_TAG_MAX]; /* HF: the quantization chosen ("" when unknown) */
    char template_path[4096];    /* Ollama: the Go template kept beside the model ("" none) */
    char params_path[4096];      /* Ollama: the params blob (JSON) kept beside it ("" none) */
    uint64_t size;               /* bytes of every file of the model */
    uint64_t downloaded;         /* bytes transferred by this pull */
    int n_files;
};

/*
 * Pull ref into p->models_dir. Files already complete (same size and digest) are not fetched
 * again. INF_ENOTFOUND for a repository, file, quantization or tag the hub does not have (the
 * message lists the quantizations there are when the choice is ambiguous or missing: then
 * INF_EINVAL); INF_EUNSUPPORTED for 401/403 (a gated or private repository: "set HF_TOKEN or
 * --token"); INF_EIO for a network failure after the retries ("cannot reach HOST"), a digest
 * mismatch or a disk error; INF_ECANCELED when the progress callback said stop. Whatever the
 * failure, no target file is left half-written: only FILE.partial, which the next pull resumes.
 */
inf_status inf_hub_pull(const char *ref, const struct inf_hub_params *p, struct inf_hub_result *out,
                        struct inf_error *err);

#ifdef __cplusplus
}
#endif
#endif
