/*
 * fuzz_ws_frames.c - libFuzzer target for the WebSocket layer (server/ws.h): the bytes a client
 * sends after the handshake go to a server-side libwslay context, read in pieces of varying
 * size, and every complete text message through the same checks as on a live connection (text
 * only, UTF-8, then ws_msg_parse); nothing runs. A crash, a leak or a sanitizer report fails.
 * Besides, the message parser alone on the raw input.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "server/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 20))
        return 0;
    ws_fuzz_feed(data, size);
    struct ws_msg m;
    char err[200];
    if (!ws_msg_parse((const char *)data, size, &m, err, sizeof(err)) && !err[0])
        abort();
    json_decref(m.root);
    return 0;
}
