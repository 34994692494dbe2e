/*
 * audit.c - the hash-chained, optionally encrypted audit log (inferno/audit.h): the writer with
 * its group commit, the line reader, and the verifier. Cryptography only through OpenSSL EVP.
 */
#include "inferno/audit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/files.h"
#include "inferno/log.h"

#define DOMAIN    "inferno-audit-v1"
#define MAX_FILES 1000000
#define HEAD_NAME "HEAD"
#define IV_BYTES  12
#define TAG_BYTES 16

/* ---- helpers -----------------------------------------------------------------------------------
 */

static void hexs(const uint8_t *k, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[k[i] >> 4];
        out[2 * i + 1] = digits[k[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Lower-case hex only (the layout is exact). */
static bool unhex(const char *s, size_t n_bytes, uint8_t *out)
{
    for (size_t i = 0; i < n_bytes; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0 || (s[2 * i] >= 'A' && s[2 * i] <= 'F') ||
            (s[2 * i + 1] >= 'A' && s[2 * i + 1] <= 'F'))
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static void be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static bool record_hash(uint64_t seq, const uint8_t prev[32], const char *body, size_t n,
                        uint8_t out[32])
{
    uint8_t s[8];
    be64(s, seq);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int len = 32;
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(md, DOMAIN "\n", sizeof(DOMAIN)) == 1 &&
              EVP_DigestUpdate(md, s, 8) == 1 && EVP_DigestUpdate(md, prev, 32) == 1 &&
              EVP_DigestUpdate(md, body, n) == 1 && EVP_DigestFinal_ex(md, out, &len) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

static void aad_of(uint64_t seq, const uint8_t prev[32], uint8_t aad[16 + 8 + 32])
{
    memcpy(aad, DOMAIN, 16);
    be64(aad + 16, seq);
    memcpy(aad + 24, prev, 32);
}

/* AES-256-GCM: out = ciphertext || tag (len + 16 bytes). */
static bool gcm_seal(const uint8_t key[32], const uint8_t iv[IV_BYTES], const uint8_t *aad,
                     size_t aad_len, const void *pt, size_t len, uint8_t *out)
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int n = 0, m = 0;
    bool ok = x && EVP_EncryptInit_ex(x, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
              EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_IVLEN, IV_BYTES, NULL) == 1 &&
              EVP_EncryptInit_ex(x, NULL, NULL, key, iv) == 1 &&
              EVP_EncryptUpdate(x, NULL, &n, aad, (int)aad_len) == 1 &&
              EVP_EncryptUpdate(x, out, &n, pt, (int)len) == 1 &&
              EVP_EncryptFinal_ex(x, out + n, &m) == 1 &&
              EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, out + len) == 1;
    EVP_CIPHER_CTX_free(x);
    return ok;
}

static bool gcm_open(const uint8_t key[32], const uint8_t iv[IV_BYTES], const uint8_t *aad,
                     size_t aad_len, const uint8_t *ct, size_t len, uint8_t *out)
{
    if (len < TAG_BYTES)
        return false;
    size_t n_ct = len - TAG_BYTES;
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int n = 0, m = 0;
    bool ok = x && EVP_DecryptInit_ex(x, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
              EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_IVLEN, IV_BYTES, NULL) == 1 &&
              EVP_DecryptInit_ex(x, NULL, NULL, key, iv) == 1 &&
              EVP_DecryptUpdate(x, NULL, &n, aad, (int)aad_len) == 1 &&
              EVP_DecryptUpdate(x, out, &n, ct, (int)n_ct) == 1 &&
              EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, (void *)(ct + n_ct)) == 1 &&
              EVP_DecryptFinal_ex(x, out + n, &m) == 1;
    EVP_CIPHER_CTX_free(x);
    return ok;
}

static char *b64_encode(const uint8_t *d, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, d, (int)n);
    return out;
}

/* Strict base64 (standard alphabet, '=' padding, no whitespace). NULL when malformed. */
static uint8_t *b64_decode(const char *s, size_t n, size_t *out_len)
{
    if (n == 0 || n % 4 != 0 || n > INF_AUDIT_MAX_LINE)
        return NULL;
    size_t pad = (s[n - 1] == '=') + (n > 1 && s[n - 2] == '=');
    for (size_t i = 0; i < n - pad; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return NULL;
    }
    uint8_t *out = malloc(3 * (n / 4) + 1);
    if (!out)
        return NULL;
    int r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (r < 0 || (size_t)r < pad) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)r - pad;
    return out;
}

static void key_id(const uint8_t key[32], char out[17])
{
    uint8_t d[32];
    unsigned int len = 32;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(md, "inferno-audit-kid", 17) == 1 && EVP_DigestUpdate(md, key, 32) == 1 &&
        EVP_DigestFinal_ex(md, d, &len) == 1)
        hexs(d, 8, out);
    else
        memset(out, '0', 16), out[16] = '\0';
    EVP_MD_CTX_free(md);
}

inf_status inf_audit_key_from_text(const char *text, size_t len, struct inf_audit_key *out,
                                   struct inf_error *err)
{
    memset(out, 0, sizeof(*out));
    size_t a = 0, b = len;
    while (a < b && (text[a] == ' ' || text[a] == '\n' || text[a] == '\r' || text[a] == '\t'))
        a++;
    while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\n' || text[b - 1] == '\r' ||
                     text[b - 1] == '\t'))
        b--;
    if (b - a != 64)
        return inf_error_set(err, INF_EINVAL,
                             "an audit key is 64 hex digits (32 bytes); got %zu characters", b - a);
    for (size_t i = 0; i < 32; i++) {
        int hi = hexval(text[a + 2 * i]), lo = hexval(text[a + 2 * i + 1]);
        if (hi < 0 || lo < 0)
            return inf_error_set(err, INF_EINVAL, "an audit key is 64 hex digits: bad digit");
        out->key[i] = (uint8_t)(hi << 4 | lo);
    }
    key_id(out->key, out->id);
    return INF_OK;
}

inf_status inf_audit_key_from_file(const char *path, struct inf_audit_key *out,
                                   struct inf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return inf_error_set(err, INF_EIO, "cannot open the audit key '%s': %s", path,
                             strerror(errno));
    char buf[4097];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (n > 4096)
        return inf_error_set(err, INF_EINVAL, "the audit key '%s' is too large", path);
    if (n == 32) {
        memset(out, 0, sizeof(*out));
        memcpy(out->key, buf, 32);
        key_id(out->key, out->id);
        OPENSSL_cleanse(buf, sizeof(buf));
        return INF_OK;
    }
    inf_status st = inf_audit_key_from_text(buf, n, out, err);
    OPENSSL_cleanse(buf, sizeof(buf));
    if (st)
        inf_error_prefix(err, "%s", path);
    return st;
}

/* ---- files ------------------------------------------------------------------------------------
 */

static bool is_log_name(const char *n)
{
    /* audit-NNNNNN-YYYYMMDD.jsonl */
    if (strlen(n) != 27 || strncmp(n, "audit-", 6) != 0 || n[12] != '-' ||
        strcmp(n + 21, ".jsonl") != 0)
        return false;
    for (int i = 6; i < 21; i++)
        if (i != 12 && (n[i] < '0' || n[i] > '9'))
            return false;
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

inf_status inf_audit_list_files(const char *dir, char ***names, size_t *n, struct inf_error *err)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return INF_OK;
        return inf_error_set(err, INF_EIO, "cannot read the audit directory '%s': %s", dir,
                             strerror(errno));
    }
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *e;
    inf_status st = INF_OK;
    while ((e = readdir(d))) {
        if (!is_log_name(e->d_name))
            continue;
        if (cnt >= MAX_FILES) {
            st = inf_error_set(err, INF_ELIMIT, "more than %d audit files", MAX_FILES);
            break;
        }
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **p = realloc(v, nc * sizeof(*v));
            if (!p) {
                st = inf_error_set(err, INF_ENOMEM, "out of memory");
                break;
            }
            v = p;
            cap = nc;
        }
        if (!(v[cnt] = strdup(e->d_name))) {
            st = inf_error_set(err, INF_ENOMEM, "out of memory");
            break;
        }
        cnt++;
    }
    closedir(d);
    if (st) {
        for (size_t i = 0; i < cnt; i++)
            free(v[i]);
        free(v);
        return st;
    }
    if (cnt)
        qsort(v, cnt, sizeof(*v), cmp_str);
    *names = v;
    *n = cnt;
    return INF_OK;
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- the line reader
 * ----------------------------------------------------------------------------- */

void inf_audit_line_release(struct inf_audit_line *l)
{
    if (!l)
        return;
    free(l->plain);
    memset(l, 0, sizeof(*l));
}

static const struct inf_audit_key *find_key(const struct inf_audit_key *keys, size_t n,
                                            const char *kid)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].id, kid) == 0)
            return &keys[i];
    return NULL;
}

/* body (an envelope) -> kid, iv, ciphertext. */
static bool parse_envelope(const char *body, size_t n, char kid[17], uint8_t iv[IV_BYTES],
                           uint8_t **ct, size_t *ct_len)
{
    /* {"kid":"<16>","iv":"<24>","ct":"<b64>"} */
    static const char p1[] = "{\"kid\":\"", p2[] = "\",\"iv\":\"", p3[] = "\",\"ct\":\"";
    size_t need = (sizeof(p1) - 1) + 16 + (sizeof(p2) - 1) + 24 + (sizeof(p3) - 1) + 2;
    if (n < need || memcmp(body, p1, sizeof(p1) - 1) != 0)
        return false;
    const char *k = body + sizeof(p1) - 1;
    uint8_t tmp[8];
    if (!unhex(k, 8, tmp))
        return false;
    memcpy(kid, k, 16);
    kid[16] = '\0';
    const char *q = k + 16;
    if (memcmp(q, p2, sizeof(p2) - 1) != 0)
        return false;
    q += sizeof(p2) - 1;
    if (!unhex(q, IV_BYTES, iv))
        return false;
    q += 24;
    if (memcmp(q, p3, sizeof(p3) - 1) != 0)
        return false;
    q += sizeof(p3) - 1;
    const char *end = body + n;
    if (end - q < 2 || end[-1] != '}' || end[-2] != '"')
        return false;
    *ct = b64_decode(q, (size_t)(end - 2 - q), ct_len);
    return *ct != NULL;
}

inf_status inf_audit_parse_line(const char *line, size_t len, const struct inf_audit_key *keys,
                                size_t n_keys, struct inf_audit_line *out, struct inf_error *err)
{
    memset(out, 0, sizeof(*out));
    static const char p_seq[] = "{\"seq\":", p_prev[] = ",\"prev\":\"",
                      p_rec[] = "\",\"rec\":", p_h[] = ",\"h\":\"";
    if (len > INF_AUDIT_MAX_LINE)
        return inf_error_set(err, INF_EFORMAT, "record longer than %u bytes", INF_AUDIT_MAX_LINE);
    if (len < sizeof(p_seq) - 1 || memcmp(line, p_seq, sizeof(p_seq) - 1) != 0)
        return inf_error_set(err, INF_EFORMAT, "not an audit record (no seq)");
    size_t i = sizeof(p_seq) - 1;
    uint64_t seq = 0;
    size_t digits = 0;
    while (i < len && line[i] >= '0' && line[i] <= '9') {
        if (digits == 0 && line[i] == '0' && i + 1 < len && line[i + 1] >= '0' &&
            line[i + 1] <= '9')
            return inf_error_set(err, INF_EFORMAT, "malformed seq");
        if (seq > (UINT64_MAX - 9) / 10)
            return inf_error_set(err, INF_EFORMAT, "seq out of range");
        seq = seq * 10 + (uint64_t)(line[i] - '0');
        i++;
        digits++;
    }
    if (!digits || seq == 0)
        return inf_error_set(err, INF_EFORMAT, "malformed seq");
    if (len - i < (sizeof(p_prev) - 1) + 64 + (sizeof(p_rec) - 1) ||
        memcmp(line + i, p_prev, sizeof(p_prev) - 1) != 0)
        return inf_error_set(err, INF_EFORMAT, "malformed record: no prev after seq");
    i += sizeof(p_prev) - 1;
    if (!unhex(line + i, 32, out->prev))
        return inf_error_set(err, INF_EFORMAT, "malformed prev hash");
    i += 64;
    if (memcmp(line + i, p_rec, sizeof(p_rec) - 1) != 0)
        return inf_error_set(err, INF_EFORMAT, "malformed record: no rec after prev");
    i += sizeof(p_rec) - 1;
    /* the tail: ,"h":"<64>"} */
    size_t tail = (sizeof(p_h) - 1) + 64 + 2;
    if (len - i < tail + 2)
        return inf_error_set(err, INF_EFORMAT, "malformed record: too short");
    const char *t = line + len - tail;
    if (memcmp(t, p_h, sizeof(p_h) - 1) != 0 || t[tail - 2] != '"' || t[tail - 1] != '}')
        return inf_error_set(err, INF_EFORMAT, "malformed record: no h at its end");
    if (!unhex(t + sizeof(p_h) - 1, 32, out->h))
        return inf_error_set(err, INF_EFORMAT, "malformed h");
    const char *body = line + i;
    size_t body_len = (size_t)(t - body);
    uint8_t h[32];
    if (!record_hash(seq, out->prev, body, body_len, h))
        return inf_error_set(err, INF_EINTERNAL, "SHA-256 failed");
    if (CRYPTO_memcmp(h, out->h, 32) != 0)
        return inf_error_set(err, INF_EFORMAT, "record hash does not match its content (modified)");
    out->seq = seq;
    /* the body must be one JSON object either way, written compact: '{' first, '}' last */
    if (body_len < 2 || body[0] != '{' || body[body_len - 1] != '}')
        return inf_error_set(err, INF_EFORMAT, "record body is not a JSON object");
    json_error_t je;
    json_t *j = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &je);
    bool obj = j && json_is_object(j);
    json_decref(j);
    if (!obj)
        return inf_error_set(err, INF_EFORMAT, "record body is not a JSON object");
    if (body_len > 8 && memcmp(body, "{\"kid\":\"", 8) == 0) {
        uint8_t iv[IV_BYTES], *ct = NULL;
        size_t ct_len = 0;
        if (!parse_envelope(body, body_len, out->kid, iv, &ct, &ct_len))
            return inf_error_set(err, INF_EFORMAT, "malformed encrypted record");
        out->encrypted = true;
        const struct inf_audit_key *k = find_key(keys, n_keys, out->kid);
        if (!k) {
            free(ct);
            if (n_keys)
                return inf_error_set(
                    err, INF_EINVAL,
                    "record encrypted under key id %s, which is not among the keys "
                    "given (wrong key)",
                    out->kid);
            return INF_OK; /* no key: chain checked, content not */
        }
        if (ct_len < TAG_BYTES) {
            free(ct);
            return inf_error_set(err, INF_EFORMAT, "encrypted record too short");
        }
        uint8_t aad[56];
        aad_of(seq, out->prev, aad);
        char *pt = malloc(ct_len - TAG_BYTES + 1);
        if (!pt) {
            free(ct);
            return inf_error_set(err, INF_ENOMEM, "out of memory");
        }
        bool ok = gcm_open(k->key, iv, aad, sizeof(aad), ct, ct_len, (uint8_t *)pt);
        free(ct);
        if (!ok) {
            free(pt);
            return inf_error_set(
                err, INF_EINVAL,
                "cannot decrypt the record (wrong key, or the record was modified)");
        }
        size_t pl = ct_len - TAG_BYTES;
        pt[pl] = '\0';
        j = pl >= 2 && pt[0] == '{' && pt[pl - 1] == '}' ? json_loadb(pt, pl, 0, &je) : NULL;
        obj = j && json_is_object(j);
        json_decref(j);
        if (!obj) {
            free(pt);
            return inf_error_set(err, INF_EFORMAT, "decrypted record is not a JSON object");
        }
        out->plain = pt;
        out->plain_len = pl;
        out->decrypted = true;
        return INF_OK;
    }
    out->plain = malloc(body_len + 1);
    if (!out->plain)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    memcpy(out->plain, body, body_len);
    out->plain[body_len] = '\0';
    out->plain_len = body_len;
    out->decrypted = true;
    return INF_OK;
}

/* ---- HEAD
 * ---------------------------------------------------------------------------------------- */

struct head {
    uint64_t seq;
    uint8_t h[32];
    char file[64];
    uint64_t line;
    char kid[17];
    bool signed_;
    uint8_t mac[32];
};

static bool head_mac(const uint8_t key[32], const struct head *hd, uint8_t out[32])
{
    char h[65], msg[256];
    hexs(hd->h, 32, h);
    int n = snprintf(msg, sizeof(msg), "inferno-audit-head-v1|%" PRIu64 "|%s|%s|%" PRIu64, hd->seq,
                     h, hd->file, hd->line);
    unsigned int len = 32;
    return HMAC(EVP_sha256(), key, 32, (const unsigned char *)msg, (size_t)n, out, &len) != NULL;
}

static bool read_head(const char *dir, struct head *hd, char *why, size_t why_n)
{
    memset(hd, 0, sizeof(*hd));
    char path[4200];
    snprintf(path, sizeof(path), "%s/" HEAD_NAME, dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        snprintf(why, why_n, "%s",
                 errno == ENOENT && access(path, F_OK) != 0 ? "missing" : "not valid JSON");
        return false;
    }
    json_t *seq = json_object_get(j, "seq"), *h = json_object_get(j, "h"),
           *file = json_object_get(j, "file"), *line = json_object_get(j, "line"),
           *kid = json_object_get(j, "kid"), *mac = json_object_get(j, "mac");
    bool ok = json_is_integer(seq) && json_integer_value(seq) >= 0 && json_is_string(h) &&
              json_string_length(h) == 64 && unhex(json_string_value(h), 32, hd->h) &&
              json_is_string(file) && json_string_length(file) < sizeof(hd->file) &&
              json_is_integer(line) && json_integer_value(line) >= 0;
    if (ok) {
        hd->seq = (uint64_t)json_integer_value(seq);
        snprintf(hd->file, sizeof(hd->file), "%s", json_string_value(file));
        hd->line = (uint64_t)json_integer_value(line);
        if (json_is_string(kid) && json_is_string(mac)) {
            ok = json_string_length(kid) == 16 && json_string_length(mac) == 64 &&
                 unhex(json_string_value(mac), 32, hd->mac);
            snprintf(hd->kid, sizeof(hd->kid), "%s", json_string_value(kid));
            hd->signed_ = ok;
        }
    }
    json_decref(j);
    if (!ok)
        snprintf(why, why_n, "malformed");
    return ok;
}

/* Write HEAD atomically (temporary file, fsync, rename, fsync of the directory). */
static bool write_head(const char *dir, const struct inf_audit_key *key, const struct head *hd0)
{
    struct head hd = *hd0;
    char h[65], mac[65] = "";
    hexs(hd.h, 32, h);
    if (key) {
        snprintf(hd.kid, sizeof(hd.kid), "%s", key->id);
        if (!head_mac(key->key, &hd, hd.mac))
            return false;
        hexs(hd.mac, 32, mac);
    }
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    char text[600];
    int n;
    if (key)
        n = snprintf(text, sizeof(text),
                     "{\"seq\":%" PRIu64 ",\"h\":\"%s\",\"file\":\"%s\",\"line\":%" PRIu64
                     ",\"time\":\"%s\",\"kid\":\"%s\",\"mac\":\"%s\"}\n",
                     hd.seq, h, hd.file, hd.line, ts, hd.kid, mac);
    else
        n = snprintf(text, sizeof(text),
                     "{\"seq\":%" PRIu64 ",\"h\":\"%s\",\"file\":\"%s\",\"line\":%" PRIu64
                     ",\"time\":\"%s\"}\n",
                     hd.seq, h, hd.file, hd.line, ts);
    char tmp[4200], path[4200];
    snprintf(tmp, sizeof(tmp), "%s/" HEAD_NAME ".tmp", dir);
    snprintf(path, sizeof(path), "%s/" HEAD_NAME, dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    bool ok = write(fd, text, (size_t)n) == n && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return false;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return true;
}

/* ---- the writer
 * ------------------------------------------------------------------------------------ */

struct inf_audit {
    struct inf_audit_params p;
    char *dir;
    struct inf_audit_key key;
    bool has_key;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd;
    char file[64];
    unsigned file_index;
    int day; /* yyyymmdd of the current file */
    uint64_t file_bytes, file_lines;
    uint64_t seq; /* last written */
    uint8_t last_h[32];
    uint64_t synced; /* last seq known durable */
    bool failed;     /* a write failed: nothing more is acknowledged */
    pthread_t flusher;
    bool flusher_started, stop;
    int lock_fd;           /* flock(LOCK): one writer at a time across processes */
    struct stat head_seen; /* HEAD as this handle last left it */
};

static int utc_day(void)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

static inf_status open_file(struct inf_audit *a, unsigned index, struct inf_error *err)
{
    a->day = utc_day();
    snprintf(a->file, sizeof(a->file), "audit-%06u-%08d.jsonl", index, a->day);
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", a->dir, a->file);
    a->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (a->fd < 0)
        return inf_error_set(err, INF_EIO, "cannot open the audit file '%s': %s", path,
                             strerror(errno));
    a->file_index = index;
    a->file_bytes = 0;
    a->file_lines = 0;
    int dfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return INF_OK;
}

static void seal(struct inf_audit *a)
{
    struct head hd = {0};
    hd.seq = a->seq;
    memcpy(hd.h, a->last_h, 32);
    snprintf(hd.file, sizeof(hd.file), "%s", a->file);
    hd.line = a->file_lines;
    if (!write_head(a->dir, a->has_key ? &a->key : NULL, &hd))
        INF_LOG_WARN("audit", "cannot write %s/" HEAD_NAME ": %s", a->dir, strerror(errno));
    char path[4200];
    snprintf(path, sizeof(path), "%s/" HEAD_NAME, a->dir);
    if (stat(path, &a->head_seen) != 0)
        memset(&a->head_seen, 0, sizeof(a->head_seen));
}

static void *flusher_main(void *arg)
{
    struct inf_audit *a = arg;
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_nsec += (long)a->p.batch_ms * 1000000L;
        dl.tv_sec += dl.tv_nsec / 1000000000L;
        dl.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&a->cv, &a->mu, &dl);
        if (a->seq > a->synced && a->fd >= 0) {
            uint64_t target = a->seq;
            int fd = dup(a->fd);
            pthread_mutex_unlock(&a->mu);
            bool ok = fd >= 0 && fdatasync(fd) == 0;
            if (fd >= 0)
                close(fd);
            pthread_mutex_lock(&a->mu);
            if (ok) {
                if (target > a->synced)
                    a->synced = target;
            } else {
                a->failed = true;
                INF_LOG_ERROR("audit", "fdatasync of the audit log failed: %s", strerror(errno));
            }
            pthread_cond_broadcast(&a->cv);
        }
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* Read the last line of a file: the chain state to continue from. Removes a last line cut
   short by a crash. */
static inf_status resume(struct inf_audit *a, const char *name, struct inf_error *err)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", a->dir, name);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return inf_error_set(err, INF_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return inf_error_set(err, INF_EIO, "cannot stat '%s'", path);
    }
    size_t size = (size_t)sb.st_size;
    char *buf = malloc(size + 1);
    size_t got = 0;
    while (buf && got < size) {
        ssize_t r = pread(fd, buf + got, size - got, (off_t)got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (!buf || got != size) {
        free(buf);
        close(fd);
        return inf_error_set(err, INF_EIO, "cannot read '%s'", path);
    }
    size_t end = size;
    if (end && buf[end - 1] != '\n') { /* a partial last line: never acknowledged */
        while (end && buf[end - 1] != '\n')
            end--;
        INF_LOG_WARN("audit", "%s: removing an incomplete last record (%zu bytes) left by a crash",
                     path, size - end);
        if (ftruncate(fd, (off_t)end) != 0) {
            free(buf);
            close(fd);
            return inf_error_set(err, INF_EIO, "cannot repair '%s': %s", path, strerror(errno));
        }
        fsync(fd);
    }
    close(fd);
    uint64_t lines = 0;
    for (size_t i = 0; i < end; i++)
        lines += buf[i] == '\n';
    inf_status st = INF_OK;
    if (end) {
        size_t s = end - 1;
        while (s && buf[s - 1] != '\n')
            s--;
        struct inf_audit_line l;
        st = inf_audit_parse_line(buf + s, end - 1 - s, NULL, 0, &l, err);
        if (st == INF_OK) {
            a->seq = l.seq;
            memcpy(a->last_h, l.h, 32);
            inf_audit_line_release(&l);
        } else {
            inf_error_prefix(err,
                             "%s:%" PRIu64 ": the last audit record cannot be read (run "
                             "`inferno audit verify`)",
                             name, lines);
            st = INF_EFORMAT;
        }
    }
    a->file_bytes = end;
    a->file_lines = lines;
    free(buf);
    return st;
}

static int open_lock(const char *dir, struct inf_error *err)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/LOCK", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        inf_error_set(err, INF_EIO, "cannot open '%s': %s", path, strerror(errno));
    return fd;
}

/*
 * Find the end of the chain on disk and open the file to append to (under the LOCK): the last
 * file's last record, a new file when that one is full or of another day. Refuses a log that
 * ends before its sealed HEAD (re-sealing would hide the truncation).
 */
static inf_status position(struct inf_audit *a, struct inf_error *err)
{
    char **names = NULL;
    size_t n = 0;
    const struct inf_audit_params *p = &a->p;
    if (a->fd >= 0) {
        close(a->fd);
        a->fd = -1;
    }
    a->seq = 0;
    memset(a->last_h, 0, 32);
    inf_status st = inf_audit_list_files(a->dir, &names, &n, err);
    if (st)
        return st;
    if (n) {
        st = resume(a, names[n - 1], err);
        if (st)
            goto out;
        unsigned idx = (unsigned)strtoul(names[n - 1] + 6, NULL, 10);
        int day = atoi(names[n - 1] + 13);
        uint64_t bytes = a->file_bytes, lines = a->file_lines;
        if (day == utc_day() && (!p->max_file_bytes || bytes < p->max_file_bytes)) {
            st = open_file(a, idx, err);
            a->file_bytes = bytes;
            a->file_lines = lines;
            snprintf(a->file, sizeof(a->file), "%s", names[n - 1]);
        } else {
            st = open_file(a, idx + 1, err);
        }
    } else {
        st = open_file(a, 1, err);
    }
    if (st)
        goto out;
    {
        /* never re-seal over a log that lost its tail: that would hide the truncation */
        struct head hd;
        char why[64];
        if (read_head(a->dir, &hd, why, sizeof(why)) && hd.seq > a->seq) {
            st = inf_error_set(err, INF_EFORMAT,
                               "the audit log in '%s' ends at seq %" PRIu64
                               " but its HEAD sealed seq %" PRIu64
                               ": records were removed (run `inferno audit verify`)",
                               a->dir, a->seq, hd.seq);
            goto out;
        }
    }
out:
    free_names(names, n);
    return st;
}

/* The lock, the synchronisation, the directory name and the key of a writer, then the writer
 * (its log file is closed by the caller, which may seal it first). */
static void release(struct inf_audit *a)
{
    if (a->lock_fd >= 0)
        close(a->lock_fd);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a->dir);
    OPENSSL_cleanse(&a->key, sizeof(a->key));
    free(a);
}

/* Another process appended or rotated since this handle last wrote: position again. */
static inf_status resync(struct inf_audit *a, struct inf_error *err)
{
    struct stat sb, hs;
    char path[4200];
    snprintf(path, sizeof(path), "%s/" HEAD_NAME, a->dir);
    bool head_same = stat(path, &hs) == 0 && hs.st_ino == a->head_seen.st_ino &&
                     hs.st_mtim.tv_sec == a->head_seen.st_mtim.tv_sec &&
                     hs.st_mtim.tv_nsec == a->head_seen.st_mtim.tv_nsec;
    if (head_same && a->fd >= 0 && fstat(a->fd, &sb) == 0 && (uint64_t)sb.st_size == a->file_bytes)
        return INF_OK;
    INF_LOG_DEBUG("audit", "another writer appended to %s: continuing after its records", a->dir);
    inf_status st = position(a, err);
    if (st == INF_OK)
        a->head_seen = hs;
    return st;
}

inf_status inf_audit_open(const struct inf_audit_params *p, struct inf_audit **out,
                          struct inf_error *err)
{
    *out = NULL;
    if (!p->dir || !p->dir[0])
        return inf_error_set(err, INF_EINVAL, "no audit directory given (audit.dir)");
    struct inf_audit *a = calloc(1, sizeof(*a));
    if (!a)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    a->p = *p;
    a->fd = -1;
    a->lock_fd = -1;
    if (a->p.batch_ms < 1)
        a->p.batch_ms = 1;
    if (a->p.batch_ms > 1000)
        a->p.batch_ms = 1000;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->dir = strdup(p->dir);
    char **names = NULL;
    size_t n = 0;
    inf_status st = INF_OK;
    if (!a->dir) {
        st = inf_error_set(err, INF_ENOMEM, "out of memory");
        goto fail;
    }
    a->p.dir = a->dir;
    if (p->key) {
        a->key = *p->key;
        a->has_key = true;
        a->p.key = &a->key;
    }
    char probe[4200];
    snprintf(probe, sizeof(probe), "%s/x", a->dir);
    if (inf__mkdir_parents(probe) != 0) {
        st = inf_error_set(err, INF_EIO, "cannot create the audit directory '%s': %s", a->dir,
                           strerror(errno));
        goto fail;
    }
    a->lock_fd = open_lock(a->dir, err);
    if (a->lock_fd < 0) {
        st = INF_EIO;
        goto fail;
    }
    flock(a->lock_fd, LOCK_EX);
    st = position(a, err);
    if (st) {
        flock(a->lock_fd, LOCK_UN);
        goto fail;
    }
    a->synced = a->seq;
    seal(a);
    flock(a->lock_fd, LOCK_UN);
    if (a->p.fsync == INF_AUDIT_FSYNC_BATCH) {
        if (pthread_create(&a->flusher, NULL, flusher_main, a) != 0) {
            st = inf_error_set(err, INF_EINTERNAL, "cannot start the audit flusher thread");
            goto fail;
        }
        a->flusher_started = true;
    }
    free_names(names, n);
    *out = a;
    return INF_OK;
fail:
    free_names(names, n);
    if (a->fd >= 0)
        close(a->fd);
    release(a);
    return st;
}

/* Build the line for record seq after prev. */
static char *make_line(struct inf_audit *a, uint64_t seq, const uint8_t prev[32], const char *body,
                       size_t body_len, uint8_t h_out[32], size_t *out_len)
{
    char *env = NULL;
    if (a->has_key) {
        uint8_t iv[IV_BYTES], aad[56];
        if (RAND_bytes(iv, IV_BYTES) != 1)
            return NULL;
        aad_of(seq, prev, aad);
        uint8_t *ct = malloc(body_len + TAG_BYTES);
        if (!ct)
            return NULL;
        if (!gcm_seal(a->key.key, iv, aad, sizeof(aad), body, body_len, ct)) {
            free(ct);
            return NULL;
        }
        char *b64 = b64_encode(ct, body_len + TAG_BYTES);
        free(ct);
        if (!b64)
            return NULL;
        char ivh[25];
        hexs(iv, IV_BYTES, ivh);
        size_t el = strlen(b64) + 96;
        env = malloc(el);
        if (!env) {
            free(b64);
            return NULL;
        }
        snprintf(env, el, "{\"kid\":\"%s\",\"iv\":\"%s\",\"ct\":\"%s\"}", a->key.id, ivh, b64);
        free(b64);
        body = env;
        body_len = strlen(env);
    }
    if (!record_hash(seq, prev, body, body_len, h_out)) {
        free(env);
        return NULL;
    }
    char ph[65], hh[65];
    hexs(prev, 32, ph);
    hexs(h_out, 32, hh);
    size_t cap = body_len + 200;
    char *line = malloc(cap);
    if (line) {
        int k = snprintf(line, cap, "{\"seq\":%" PRIu64 ",\"prev\":\"%s\",\"rec\":", seq, ph);
        memcpy(line + k, body, body_len);
        k += (int)body_len;
        k += snprintf(line + k, cap - (size_t)k, ",\"h\":\"%s\"}\n", hh);
        *out_len = (size_t)k;
    }
    free(env);
    return line;
}

inf_status inf_audit_append(struct inf_audit *a, const char *json, size_t len,
                            struct inf_error *err)
{
    /* normalise to one compact line (and refuse anything that is not one object) */
    json_error_t je;
    json_t *j = json_loadb(json, len, 0, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return inf_error_set(err, INF_EINVAL, "an audit record must be a JSON object");
    }
    char *body = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(j);
    if (!body)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    size_t body_len = strlen(body);
    pthread_mutex_lock(&a->mu);
    if (a->failed) {
        pthread_mutex_unlock(&a->mu);
        free(body);
        return inf_error_set(err, INF_EIO, "the audit log failed earlier; records are not written");
    }
    /* one writer at a time across processes (a CLI command while the server runs) */
    flock(a->lock_fd, LOCK_EX);
    struct inf_error e0 = {0};
    if (resync(a, &e0) != INF_OK) {
        flock(a->lock_fd, LOCK_UN);
        pthread_mutex_unlock(&a->mu);
        free(body);
        return inf_error_set(err, INF_EIO, "%s", inf_error_message(&e0));
    }
    /* rotation: by size and by UTC day */
    int day = utc_day();
    if (a->file_lines && (day != a->day || (a->p.max_file_bytes &&
                                            a->file_bytes + body_len > a->p.max_file_bytes))) {
        fdatasync(a->fd);
        a->synced = a->seq;
        close(a->fd);
        a->fd = -1;
        struct inf_error e2 = {0};
        if (open_file(a, a->file_index + 1, &e2)) {
            a->failed = true;
            pthread_cond_broadcast(&a->cv);
            flock(a->lock_fd, LOCK_UN);
            pthread_mutex_unlock(&a->mu);
            free(body);
            return inf_error_set(err, INF_EIO, "%s", inf_error_message(&e2));
        }
        seal(a);
    }
    uint8_t h[32];
    size_t line_len = 0;
    uint64_t seq = a->seq + 1;
    char *line = make_line(a, seq, a->last_h, body, body_len, h, &line_len);
    free(body);
    if (!line) {
        flock(a->lock_fd, LOCK_UN);
        pthread_mutex_unlock(&a->mu);
        return inf_error_set(err, INF_EINTERNAL, "cannot build the audit record");
    }
    size_t off = 0;
    while (off < line_len) {
        ssize_t w = write(a->fd, line + off, line_len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            if (off > 0) /* a torn line: cut it off so the chain stays readable */
                if (ftruncate(a->fd, (off_t)a->file_bytes) != 0)
                    a->failed = true;
            flock(a->lock_fd, LOCK_UN);
            pthread_mutex_unlock(&a->mu);
            free(line);
            return inf_error_set(err, INF_EIO, "cannot write the audit log: %s", strerror(e));
        }
        off += (size_t)w;
    }
    free(line);
    a->seq = seq;
    memcpy(a->last_h, h, 32);
    a->file_bytes += line_len;
    a->file_lines++;
    inf_status st = INF_OK;
    if (a->p.fsync == INF_AUDIT_FSYNC_ALWAYS) {
        if (fdatasync(a->fd) != 0)
            st = inf_error_set(err, INF_EIO, "fdatasync of the audit log failed: %s",
                               strerror(errno));
        else
            a->synced = seq;
    }
    flock(a->lock_fd, LOCK_UN);
    if (a->p.fsync == INF_AUDIT_FSYNC_BATCH && a->failed) /* the last background sync failed */
        st = inf_error_set(err, INF_EIO, "the audit log could not be synced");
    pthread_mutex_unlock(&a->mu);
    return st;
}

void inf_audit_close(struct inf_audit *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    if (a->flusher_started)
        pthread_join(a->flusher, NULL);
    if (a->fd >= 0) {
        fdatasync(a->fd);
        flock(a->lock_fd, LOCK_EX);
        struct inf_error e2 = {0};
        if (resync(a, &e2) == INF_OK)
            seal(a);
        flock(a->lock_fd, LOCK_UN);
        close(a->fd);
    }
    release(a);
}

/* ---- verification
 * ----------------------------------------------------------------------------------- */

static void fail_at(struct inf_audit_verify_report *r, const char *file, uint64_t line,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void fail_at(struct inf_audit_verify_report *r, const char *file, uint64_t line,
                    const char *fmt, ...)
{
    if (!r->ok)
        return;
    r->ok = false;
    snprintf(r->file, sizeof(r->file), "%s", file);
    r->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof(r->message), fmt, ap);
    va_end(ap);
}

inf_status inf_audit_verify(const char *dir, const struct inf_audit_key *keys, size_t n_keys,
                            struct inf_audit_verify_report *rep, struct inf_error *err)
{
    memset(rep, 0, sizeof(*rep));
    rep->ok = true;
    char **names = NULL;
    size_t n = 0;
    inf_status st = inf_audit_list_files(dir, &names, &n, err);
    if (st)
        return st;
    struct head hd;
    char why[64];
    bool have_head = read_head(dir, &hd, why, sizeof(why));
    uint64_t expect = 1;
    uint8_t prev[32] = {0};
    char *line = NULL;
    size_t cap = 0;
    bool head_found = hd.seq == 0, seen_encrypted = false;
    for (size_t f = 0; f < n && rep->ok; f++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", dir, names[f]);
        FILE *fp = fopen(path, "rb");
        if (!fp) {
            fail_at(rep, names[f], 0, "cannot open: %s", strerror(errno));
            break;
        }
        rep->files++;
        uint64_t ln = 0;
        ssize_t got;
        while (rep->ok && (got = getline(&line, &cap, fp)) >= 0) {
            ln++;
            size_t l = (size_t)got;
            if (l == 0 || line[l - 1] != '\n') {
                fail_at(rep, names[f], ln, "incomplete last record (cut short)");
                break;
            }
            l--;
            struct inf_audit_line al;
            struct inf_error e2 = {0};
            if (inf_audit_parse_line(line, l, keys, n_keys, &al, &e2) != INF_OK) {
                fail_at(rep, names[f], ln, "%s", inf_error_message(&e2));
                break;
            }
            if (al.seq != expect) {
                if (al.seq > expect)
                    fail_at(rep, names[f], ln,
                            "seq %" PRIu64 " where %" PRIu64 " was expected: %" PRIu64
                            " record(s) before this one are missing (deleted)",
                            al.seq, expect, al.seq - expect);
                else
                    fail_at(rep, names[f], ln,
                            "seq %" PRIu64 " where %" PRIu64
                            " was expected: records are out of order, repeated or inserted",
                            al.seq, expect);
            } else if (CRYPTO_memcmp(al.prev, prev, 32) != 0) {
                fail_at(rep, names[f], ln,
                        "its prev hash does not match the record before it: that record was "
                        "replaced, or this one was inserted or moved");
            } else if (seen_encrypted && !al.encrypted) {
                /* the writer never goes back to plain records once it has a key */
                fail_at(rep, names[f], ln,
                        "a plain record after encrypted ones: written without the key (forged "
                        "or inserted)");
            }
            seen_encrypted = seen_encrypted || al.encrypted;
            if (al.encrypted && !al.decrypted)
                rep->undecrypted++;
            if (rep->ok) {
                rep->records++;
                memcpy(prev, al.h, 32);
                if (have_head && al.seq == hd.seq) {
                    head_found = true;
                    if (CRYPTO_memcmp(al.h, hd.h, 32) != 0)
                        fail_at(rep, names[f], ln,
                                "record seq %" PRIu64 " is not the one sealed in HEAD (replaced)",
                                al.seq);
                }
                expect++;
            }
            inf_audit_line_release(&al);
        }
        fclose(fp);
    }
    free(line);
    if (rep->ok) {
        if (!have_head) {
            if (rep->records > 0)
                fail_at(rep, HEAD_NAME, 0,
                        "the sealed head is %s: truncation of the log cannot be ruled out", why);
        } else {
            rep->head_seq = hd.seq;
            rep->head_signed = hd.signed_;
            if (hd.signed_ && n_keys) {
                const struct inf_audit_key *k = find_key(keys, n_keys, hd.kid);
                uint8_t mac[32];
                if (!k)
                    fail_at(rep, HEAD_NAME, 0,
                            "HEAD is signed with key id %s, which is not among the keys given "
                            "(wrong key)",
                            hd.kid);
                else if (!head_mac(k->key, &hd, mac) || CRYPTO_memcmp(mac, hd.mac, 32) != 0)
                    fail_at(rep, HEAD_NAME, 0,
                            "HEAD's signature does not match (forged or modified head)");
                else
                    rep->head_checked = true;
            } else if (!hd.signed_ && n_keys) {
                fail_at(rep, HEAD_NAME, 0, "HEAD is not signed although a key was given");
            }
            if (rep->ok && !head_found) {
                char last[300];
                if (n)
                    snprintf(last, sizeof(last), "%s", names[n - 1]);
                else
                    snprintf(last, sizeof(last), "(no files)");
                fail_at(rep, hd.file, hd.line,
                        "the log ends at seq %" PRIu64 " but HEAD sealed seq %" PRIu64
                        " at %s:%" PRIu64 ": records were removed from the tail",
                        expect - 1, hd.seq, hd.file, hd.line);
            }
        }
    }
    free_names(names, n);
    return INF_OK;
}
