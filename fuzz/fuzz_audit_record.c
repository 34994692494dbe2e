/*
 * fuzz_audit_record.c - libFuzzer target for the audit log's record reader
 * (inf_audit_parse_line: the exact line layout, the hash, the envelope, AES-256-GCM).
 *
 * The input is one line, read without a key and with a fixed key. A line accepted must be
 * consistent: a decrypted record is a NUL-terminated JSON object of plain_len bytes; an
 * encrypted one read without a key has no plain text. A refusal carries a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "inferno/audit.h"

#define FUZZ_MAX_INPUT (1u << 20)

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
    for (int with_key = 0; with_key < 2; with_key++) {
        struct inf_audit_line l;
        struct inf_error err = {0};
        inf_status st = inf_audit_parse_line((const char *)data, size, with_key ? &key : NULL,
                                             with_key ? 1 : 0, &l, &err);
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
    return 0;
}
