/*
 * fuzz_audit_record.c - libFuzzer target for the audit log's record reader
 * (inf_audit_parse_line: the exact line layout, the hash, the envelope, AES-256-GCM).
 *
 * The input is one line, read without a key and with a fixed key, as it is and with its "h"
 * recomputed (so that mutated bodies get past the hash to the JSON, envelope and AES-GCM
 * checks). A line accepted must be consistent: a decrypted record is a NUL-terminated JSON
 * object of plain_len bytes; an encrypted one read without a key has no plain text. A refusal
 * carries a message.
 */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "inferno/audit.h"

#define FUZZ_MAX_INPUT (1u << 20)

static void check_line(const char *line, size_t size, const struct inf_audit_key *key)
{
    for (int with_key = 0; with_key < 2; with_key++) {
        struct inf_audit_line l;
        struct inf_error err = {0};
        inf_status st =
            inf_audit_parse_line(line, size, with_key ? key : NULL, with_key ? 1 : 0, &l, &err);
        if (st != INF_OK) {
            CHECK(err.msg[0] != '\0');
            CHECK(l.plain == NULL);
            continue;
        }
        CHECK(l.seq >= 1);
        if (l.decrypted) {
            CHECK(l.plain != NULL && l.plain[l.plain_len] == '\0');
            CHECK(l.plain_len >= 2 && l.plain[0] == '{');
        } else {
            CHECK(l.encrypted && !with_key && l.plain == NULL);
        }
        inf_audit_line_release(&l);
    }
}

/* The line with its h replaced by the hash of what it holds (per inferno/audit.h), or NULL when
   it does not have the layout's frame. */
static char *fix_hash(const uint8_t *raw, size_t size)
{
    /* a NUL-terminated copy: strtoull and sscanf below read C strings */
    char *d = malloc(size + 1);
    if (!d)
        return NULL;
    memcpy(d, raw, size);
    d[size] = '\0';
    char *out = NULL;
    static const char pre[] = "{\"seq\":", mid[] = "\",\"rec\":", tail[] = ",\"h\":\"";
    const size_t tl = (sizeof(tail) - 1) + 64 + 2;
    if (size < 80 + tl || memcmp(d, pre, sizeof(pre) - 1) != 0)
        goto out;
    const char *m = memmem(d, size, mid, sizeof(mid) - 1);
    if (!m || m - d < 64 + 9)
        goto out;
    const char *body = m + sizeof(mid) - 1, *t = d + size - tl;
    if (body > t)
        goto out;
    uint64_t seq = strtoull(d + sizeof(pre) - 1, NULL, 10);
    uint8_t prev[32], s8[8], h[32];
    const char *ph = m - 64;
    for (int i = 0; i < 32; i++) {
        unsigned v = 0;
        char two[3] = {ph[2 * i], ph[2 * i + 1], '\0'};
        if (sscanf(two, "%2x", &v) != 1)
            goto out;
        prev[i] = (uint8_t)v;
    }
    for (int i = 0; i < 8; i++)
        s8[i] = (uint8_t)(seq >> (56 - 8 * i));
    unsigned int dl = 32;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, "inferno-audit-v1\n", 17);
    EVP_DigestUpdate(md, s8, 8);
    EVP_DigestUpdate(md, prev, 32);
    EVP_DigestUpdate(md, body, (size_t)(t - body));
    EVP_DigestFinal_ex(md, h, &dl);
    EVP_MD_CTX_free(md);
    out = malloc(size);
    if (!out)
        goto out;
    memcpy(out, d, size);
    char *hp = out + (t - d) + sizeof(tail) - 1;
    for (int i = 0; i < 32; i++) {
        static const char hexd[] = "0123456789abcdef";
        hp[2 * i] = hexd[h[i] >> 4];
        hp[2 * i + 1] = hexd[h[i] & 15];
    }
    memcpy(out + size - 2, "\"}", 2);
out:
    free(d);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return 0;
    static struct inf_audit_key key;
    static int ready;
    if (!ready) {
        static const char hex[] =
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        CHECK(inf_audit_key_from_text(hex, 64, &key, NULL) == INF_OK);
        ready = 1;
    }
    check_line((const char *)data, size, &key);
    char *fixed = fix_hash(data, size);
    if (fixed) {
        check_line(fixed, size, &key);
        free(fixed);
    }
    return 0;
}
