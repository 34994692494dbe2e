/*
 * inferno/audit.h - the audit log: append-only JSON-lines files in one directory, one record per
 * line, chained by SHA-256 across files, optionally encrypted record by record.
 *
 * A line is written in exactly this layout (the reader checks it byte for byte):
 *
 *   {"seq":N,"prev":"<64 hex>","rec":BODY,"h":"<64 hex>"}\n
 *
 *   seq   1, 2, 3 ... without gaps across every file of the directory
 *   prev  the h of the record before (64 zeros before the first)
 *   rec   the record: a JSON object (plain), or with a key the envelope
 *         {"kid":"<16 hex>","iv":"<24 hex>","ct":"<base64>"}: AES-256-GCM of the record's JSON
 *         under the key kid names, a fresh 96-bit nonce per record, the 16-byte tag after the
 *         ciphertext, and "inferno-audit-v1" + seq (8 bytes big-endian) + prev (32 bytes) as
 *         associated data
 *   h     SHA-256 of "inferno-audit-v1\n" + seq (8 bytes big-endian) + prev (32 bytes) + the
 *         bytes of BODY exactly as written
 *
 * Files are audit-NNNNNN-YYYYMMDD.jsonl (NNNNNN counts files; a new file starts at
 * max_file_bytes or when the UTC day changes). HEAD beside them holds the sealed chain head
 * {"seq","h","file","line","time","kid","mac"}: written when the log opens, at each rotation and
 * at close, with mac = HMAC-SHA256 under the key when there is one, so that a log cut short
 * before its last sealed record is detected. OpenSSL EVP does every cryptographic operation.
 *
 * Threads: inf_audit_append may be called from any thread.
 */
#ifndef INFERNO_AUDIT_H
#define INFERNO_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inferno/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define INF_AUDIT_KEY_BYTES 32
#define INF_AUDIT_MAX_LINE  (1u << 24) /* longest line the reader accepts (16 MiB) */

enum inf_audit_fsync {
    INF_AUDIT_FSYNC_ALWAYS, /* fdatasync after every record, before append returns */
    INF_AUDIT_FSYNC_BATCH,  /* group commit: a background fdatasync every batch_ms covers every
                               record written since; append returns once its record is written
                               (a killed process loses nothing; a power cut at most batch_ms) */
    INF_AUDIT_FSYNC_NEVER,  /* written to the kernel only (survives a killed process, not a
                               power cut) */
};

struct inf_audit_key {
    char id[17]; /* 16 hex: the first 8 bytes of SHA-256("inferno-audit-kid" + key) */
    uint8_t key[INF_AUDIT_KEY_BYTES];
};

/*
 * A key from text: 64 hex digits (surrounding whitespace ignored) or, for a file, also exactly
 * 32 raw bytes. inf_audit_key_from_file reads at most 4 KiB.
 */
inf_status inf_audit_key_from_text(const char *text, size_t len, struct inf_audit_key *out,
                                   struct inf_error *err);
inf_status inf_audit_key_from_file(const char *path, struct inf_audit_key *out,
                                   struct inf_error *err);

struct inf_audit_params {
    const char *dir;                 /* created when missing */
    const struct inf_audit_key *key; /* NULL: plain records */
    enum inf_audit_fsync fsync;
    int batch_ms;            /* BATCH: the group-commit interval (1..1000) */
    uint64_t max_file_bytes; /* rotate past this size; 0 = only by day */
};

struct inf_audit;

/*
 * Open the log for appending: the chain continues from the last record of the last file (a
 * last line cut short by a crash is removed first: it was never acknowledged). INF_EFORMAT when
 * the last record cannot be read (the message says to run `inferno audit verify`). Seals HEAD.
 */
inf_status inf_audit_open(const struct inf_audit_params *p, struct inf_audit **out,
                          struct inf_error *err);
/*
 * Append one record: json[0..len) must be one JSON object (no newline needed; it is written
 * compact). Returns once the record is written to the file (ALWAYS: and synced). On failure
 * nothing is acknowledged; the message says why (BATCH: also when the last background sync
 * failed).
 */
inf_status inf_audit_append(struct inf_audit *a, const char *json, size_t len,
                            struct inf_error *err);
/* Seal HEAD, sync, close. */
void inf_audit_close(struct inf_audit *a);

/* ---- reading ------------------------------------------------------------------------------ */

struct inf_audit_line {
    uint64_t seq;
    uint8_t prev[32], h[32];
    bool encrypted;
    char kid[17];   /* encrypted: the key id */
    bool decrypted; /* plain holds the record (always for plain records) */
    char *plain;    /* malloc'd, NUL-terminated JSON object, or NULL */
    size_t plain_len;
};

/*
 * Parse one line (without its newline), check its layout and its hash, and decrypt it with the
 * key of its kid among keys[0..n_keys) when there is one. INF_EFORMAT for a malformed line or a
 * hash that does not match; INF_EINVAL when a key is given for its kid and decryption fails
 * (wrong key or modified). Release with inf_audit_line_release.
 */
inf_status inf_audit_parse_line(const char *line, size_t len, const struct inf_audit_key *keys,
                                size_t n_keys, struct inf_audit_line *out, struct inf_error *err);
void inf_audit_line_release(struct inf_audit_line *l);

/* The log's files, oldest first (names only; free each and the array). */
inf_status inf_audit_list_files(const char *dir, char ***names, size_t *n, struct inf_error *err);

struct inf_audit_verify_report {
    bool ok;
    uint64_t records, files;
    uint64_t undecrypted; /* encrypted records not checked for want of their key */
    uint64_t head_seq;    /* the sealed head's seq (0: no HEAD) */
    bool head_signed, head_checked;
    char file[256]; /* first bad record: file name ("HEAD" for the head) and line (1-based) */
    uint64_t line;
    char message[512];
};
/*
 * Walk every file in order and check the chain: layout, hashes, seq continuity, prev links,
 * decryption of every record whose key is given (a record under another key when keys are given
 * is a failure), and the sealed HEAD (its MAC when signed and a key is given; that the log
 * reaches its seq with its hash). The report names the first failure. Returns INF_OK whether
 * or not the log is intact (see rep->ok); an error only when the directory cannot be read.
 */
inf_status inf_audit_verify(const char *dir, const struct inf_audit_key *keys, size_t n_keys,
                            struct inf_audit_verify_report *rep, struct inf_error *err);

#ifdef __cplusplus
}
#endif

#endif
