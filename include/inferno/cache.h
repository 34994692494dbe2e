/*
 * inferno/cache.h - the response cache: opaque answers stored under a 32-byte key that the
 * caller makes (the server hashes the model's identity and every field that can change the
 * output, see src/server/cache_hook.c), in two tiers:
 *
 *   - memory: the most recently used decoded entries, at most memory_bytes, LRU;
 *   - disk:   one file per entry under dir/entries/XX/, zstd-compressed behind a header that
 *             carries the key, the sizes and the SHA-256 of the decoded bytes, indexed by a
 *             SQLite database (dir/index.db, WAL) holding each entry's model, sizes, creation
 *             and last use. The index is bounded by max_bytes (least recently used entries go
 *             first) and ttl_seconds.
 *
 * Crash safety: an entry's file is written under a temporary name, renamed, and only then
 * indexed, so an index row always names a complete file; a kill -9 at any point leaves at most
 * a temporary file or an unindexed file, which the next open removes (when no other process
 * has the store open) and inf_cache_verify reports. A file whose header, checksum or zstd frame
 * does not check out is a miss (logged, dropped), never a wrong or partial answer. A full disk
 * (ENOSPC, EDQUOT) turns writes off with one warning; reads go on.
 *
 * Threads: every function may be called from any thread; one mutex guards the handle.
 */
#ifndef INFERNO_CACHE_H
#define INFERNO_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define INF_CACHE_KEY_BYTES 32
#define INF_CACHE_MODEL_MAX 256 /* model names are cut to this many bytes (NUL included) */

struct inf_cache_params {
    const char *dir;          /* created when missing */
    uint64_t max_bytes;       /* disk bound: compressed bytes of all entries; 0 = none */
    uint64_t max_entry_bytes; /* larger answers (decoded) are not stored; 0 = none */
    int64_t ttl_seconds;      /* entries older than this are misses and pruned; 0 = forever */
    uint64_t memory_bytes;    /* memory tier: decoded bytes kept; 0 = no memory tier */
    bool read_only;           /* no writes, no recovery (inspection while a server runs) */
};

struct inf_cache;

/* Open (or create) the store at p->dir. The caller frees the handle with inf_cache_free. */
inf_status inf_cache_open(const struct inf_cache_params *p, struct inf_cache **out,
                          struct inf_error *err);
void inf_cache_free(struct inf_cache *c);

/*
 * Look key up: the memory tier, then the disk. On a hit *data (malloc'd, the caller frees it)
 * holds the bytes stored and *len their length. INF_ENOTFOUND on a miss, which includes an
 * expired entry and one that failed its checks (then dropped and counted as corrupt).
 */
inf_status inf_cache_get(struct inf_cache *c, const uint8_t key[INF_CACHE_KEY_BYTES], void **data,
                         size_t *len, struct inf_error *err);

/*
 * Store data[0..len) under key for model (a name for listing and clearing; cut to
 * INF_CACHE_MODEL_MAX). Replaces an entry of the same key; evicts least recently used entries
 * past max_bytes. INF_ELIMIT when len is over max_entry_bytes (nothing stored); INF_EIO when
 * writing failed or writes are off (full disk).
 */
inf_status inf_cache_put(struct inf_cache *c, const uint8_t key[INF_CACHE_KEY_BYTES],
                         const char *model, const void *data, size_t len, struct inf_error *err);

/*
 * The identity of a model file: SHA-256 over its size and every byte (metadata and tensor
 * data), remembered in the index by path, size and modification time so that a file is read
 * once and a replaced or re-quantized file gets a new digest.
 */
inf_status inf_cache_model_digest(struct inf_cache *c, const char *path,
                                  uint8_t out[INF_CACHE_KEY_BYTES], struct inf_error *err);

struct inf_cache_stats {
    uint64_t entries, bytes, raw_bytes; /* on disk (index): count, compressed, decoded */
    uint64_t mem_entries, mem_bytes;    /* the memory tier */
    int64_t oldest_ms, newest_ms;       /* creation times (Unix ms); 0 when empty */
    /* this handle's counters since open */
    uint64_t hits, mem_hits, misses, puts, put_bytes, evictions, expired, corrupt, write_errors;
    bool writes_disabled;
};
/* Counters and the index's totals (the totals read the index: other processes' writes count). */
inf_status inf_cache_stats(struct inf_cache *c, struct inf_cache_stats *out, struct inf_error *err);

struct inf_cache_entry_info {
    uint8_t key[INF_CACHE_KEY_BYTES];
    char model[INF_CACHE_MODEL_MAX];
    uint64_t bytes, raw_bytes;
    int64_t created_ms, last_used_ms;
    uint64_t hits;
};
/* Call fn for every entry (of model, when not NULL), most recently used first; fn returning
   non-zero stops the walk. */
inf_status inf_cache_list(struct inf_cache *c, const char *model,
                          int (*fn)(const struct inf_cache_entry_info *e, void *user), void *user,
                          struct inf_error *err);
/* Remove every entry (of model, when not NULL); *n_removed counts them (may be NULL). */
inf_status inf_cache_clear(struct inf_cache *c, const char *model, uint64_t *n_removed,
                           struct inf_error *err);
/* Apply the TTL and the size bound now. */
inf_status inf_cache_prune(struct inf_cache *c, uint64_t *n_removed, struct inf_error *err);

struct inf_cache_verify_report {
    uint64_t checked; /* index rows read */
    uint64_t ok;      /* rows whose file decodes and matches its checksum */
    uint64_t bad;     /* rows whose file is missing, truncated or corrupt (dropped) */
    uint64_t orphans; /* complete files without a row (a write killed before indexing) */
    uint64_t partial; /* temporary files (a write killed midway) */
    bool index_ok;    /* SQLite's integrity_check */
};
/*
 * Check the whole store: SQLite's integrity check, then every indexed entry is read and
 * decoded in full. Bad rows are dropped; orphans and partial files are removed when no other
 * process has the store open (else only counted). problem (may be NULL) gets one line per
 * finding. The store is consistent when index_ok and bad == 0 (orphans and partial files are
 * what an interrupted write leaves and do not count against it).
 */
inf_status inf_cache_verify(struct inf_cache *c, struct inf_cache_verify_report *rep,
                            void (*problem)(const char *line, void *user), void *user,
                            struct inf_error *err);

/* ---- the entry file format (exposed for tests and the fuzz target) ----------------------- */

/*
 * One entry file: a fixed header then one zstd frame.
 *   offset  size  field
 *   0       8     magic "INFCACH1"
 *   8       32    key
 *   40      8     decoded length (little-endian)
 *   48      8     compressed length (little-endian) = file size - 88
 *   56      32    SHA-256 of the decoded bytes
 *   88      ...   zstd frame
 */
#define INF_CACHE_ENTRY_HEADER 88

inf_status inf_cache_entry_encode(const uint8_t key[INF_CACHE_KEY_BYTES], const void *data,
                                  size_t len, void **out, size_t *out_len, struct inf_error *err);
/* Decode and check a file's bytes: key (when not NULL) must match; at most max_len decoded
   bytes. *data (malloc'd) and *len on success; INF_EFORMAT naming what failed otherwise. */
inf_status inf_cache_entry_decode(const void *buf, size_t n, const uint8_t *key, size_t max_len,
                                  void **data, size_t *len, struct inf_error *err);

#ifdef __cplusplus
}
#endif

#endif
