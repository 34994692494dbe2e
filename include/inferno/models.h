/*
 * inferno/models.h - model discovery under models_dir with a SQLite metadata cache.
 *
 * Discovery walks models_dir recursively, following symbolic links without looping (each
 * directory is entered once, by device and inode). Split GGUF files (NAME-00001-of-00003.gguf)
 * are one model; a directory with model.safetensors.index.json is one model. Each candidate
 * file is summarised by inf_model_probe(); summaries are cached in SQLite keyed by path, size
 * and mtime, so a second listing re-reads only files that changed. A cache that is corrupt,
 * of another schema version, or cannot be opened is rebuilt or bypassed, never fatal.
 */
#ifndef INFERNO_MODELS_H
#define INFERNO_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct inf_model_summary {
    char name[512];          /* path relative to models_dir without extension/shard suffix */
    char path[4096];         /* the file (first shard) or the sharded directory */
    char format[16];         /* gguf, safetensors, onnx, pytorch, llama2c */
    char architecture[64];   /* general.architecture or config-derived; "" when unknown */
    uint64_t n_params;       /* elements of all weight tensors; 0 when unknown */
    char dominant_type[16];  /* tensor type holding most bytes ("Q4_K"); "" when unknown */
    char file_type[32];      /* GGUF general.file_type name ("MOSTLY_Q4_K_M"); "" when absent */
    uint64_t size_bytes;     /* on disk, all shards */
    uint64_t context_length; /* <arch>.context_length; 0 when unknown */
    int n_shards;            /* 1 for single files */
    char source[640];        /* registered models: where it was pulled from ("" otherwise) */
    char digest[80];         /* registered models: "sha256:HEX" of the (first) file, or "" */
};

/*
 * Summarise one model file (format detection by content, then the format's reader).
 * INF_EFORMAT when the file is not a model Inferno recognises.
 */
inf_status inf_model_probe(const char *path, struct inf_model_summary *out, struct inf_error *err);

struct inf_model_list {
    struct inf_model_summary *items;
    size_t n;
    size_t n_probed;  /* files read this time (cache misses) */
    size_t n_cached;  /* files answered from the cache */
    size_t n_skipped; /* files that are not models, or unreadable */
};

/*
 * List the models under dir. cache_db is the SQLite path ("" or NULL: no cache). Items are
 * sorted by name. The caller frees the list with inf_model_list_release.
 */
inf_status inf_models_scan(const char *dir, const char *cache_db, struct inf_model_list *out,
                           struct inf_error *err);
void inf_model_list_release(struct inf_model_list *list);

/*
 * Resolve a MODEL argument: an existing path is used as is; then a registered name (see
 * inf_models_lookup; cache_db holds the registry); otherwise a model in dir whose name (or, when
 * unique, basename) equals arg. Writes the path into out.
 */
inf_status inf_models_resolve(const char *arg, const char *dir, const char *cache_db, char *out,
                              size_t size, struct inf_error *err);

/*
 * The registry: names for pulled (or tagged) models, kept in the cache database (cache_db, table
 * `registry`) beside the files' summaries. A name is [NAMESPACE/]NAME[:TAG] (letters, digits,
 * '.', '_', '-'; at most one '/'): "owner/repo:Q4_K_M" for Hugging Face, "llama3.2:1b" for the
 * Ollama library. Listing shows a registered file under its name(s) instead of its path, and
 * inf_models_resolve finds models by it.
 */
struct inf_model_reg {
    char name[256];
    char path[4096];
    char source[640]; /* "hf.co/OWNER/REPO@REV/FILE", "ollama.com/NS/NAME:TAG", "tag of X" */
    char digest[80];  /* "sha256:HEX" or "" */
    int64_t added;    /* Unix seconds */
};

/* Whether name is a valid registry name (see above; at most 255 bytes). */
bool inf_models_name_valid(const char *name);

/*
 * The registry name an argument means: hosts dropped (hf.co/, huggingface.co/, ollama.com/,
 * ollama.com/library/, registry.ollama.ai/[library/], a leading https://).
 */
void inf_models_name_normalize(const char *arg, char *out, size_t size);

/* Add or replace name -> r->path (r->added is set to now when 0). INF_EINVAL for a bad name. */
inf_status inf_models_register(const char *cache_db, const struct inf_model_reg *r,
                               struct inf_error *err);

/*
 * The entry of a name (normalized; case-insensitive; NAME also finds NAME:latest, and OWNER/REPO
 * the single OWNER/REPO:QUANT registered). INF_ENOTFOUND when none (INF_EINVAL when OWNER/REPO
 * has several).
 */
inf_status inf_models_lookup(const char *cache_db, const char *name, struct inf_model_reg *out,
                             struct inf_error *err);

/* Remove a name (exactly as registered). INF_ENOTFOUND when it is not there. */
inf_status inf_models_unregister(const char *cache_db, const char *name, struct inf_error *err);

/* Every registered entry, sorted by name (the caller frees *out). */
inf_status inf_models_registered(const char *cache_db, struct inf_model_reg **out, size_t *n,
                                 struct inf_error *err);

#ifdef __cplusplus
}
#endif
#endif
