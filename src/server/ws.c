#include "server/handlers.h"
void ws_upgrade(struct http_req *r)
{
    http_reply_errorf(r, 501, NULL, NULL, "not yet");
}
