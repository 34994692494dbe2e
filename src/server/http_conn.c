/*
 * http_conn.c - connections: whether a request's client is still there (http_conn_gone and
 * friends, declared in response.h for the handlers), the server's clock, and the connection
 * guard: every open connection in a registry with the phase its current request is in, so that
 * slow or idle clients cannot hold the pool.
 *
 *  - a client address (other than those in server.per_ip_exempt) may hold at most
 *    server.max_connections_per_ip connections; more are closed at accept;
 *  - a connection waiting for a request's headers (a new one, or an idle keep-alive one) has
 *    server.header_timeout_seconds to send them; once they are in, the body has
 *    server.body_timeout_seconds; past either deadline the guard shuts the socket down, however
 *    steadily the client trickles bytes (libmicrohttpd's own timeout only measures silence);
 *  - when server.max_connections are open and another client connects, the connection that has
 *    waited longest for its request (headers or body) is closed to make room; when every
 *    connection is busy with a request, up to HTTP_RESERVED_CONNECTIONS more are admitted that
 *    may only ask for /health (anything else: 503), so that probes still get through.
 *
 * Locking: conn_lock guards the registry. libmicrohttpd calls the accept policy and both
 * notifications on its listening thread (thread-per-connection mode) and notifies CLOSED before
 * it closes the socket, so a connection still in the registry owns its descriptor: the guard
 * may shutdown() it under the lock without hitting a reused descriptor.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "inferno/log.h"
#include "server/http_internal.h"

#define HTTP_RESERVED_CONNECTIONS 4  /* beyond max_connections, for /health only */
#define HTTP_CLOSING_SLACK        64 /* connections being closed still count for libmicrohttpd */
#define GUARD_TICK_US             (100 * 1000)
#define HTTP_HALF_CLOSE_GRACE_S   1.0 /* a close this soon after the request is a half-close */

struct http_conn {
    struct http_conn *prev, *next;
    int fd;
    char addr[INET6_ADDRSTRLEN];
    bool reserve;     /* admitted beyond max_connections: /health only */
    bool closing;     /* shut down by the guard; no longer counted */
    bool half_closed; /* the client shut its side just after its request (see http_conn_gone) */
    enum http_phase phase;
    double since; /* when the phase began */
};

/* ---- the clock and the client-gone checks (response.h) --------------------------------------- */

double http_now(void)
{
    return inf__now_ms() * 1e-3;
}

int http_conn_fd(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

bool http_fd_gone(struct http_server *s, int fd)
{
    if (fd < 0)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return false;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
        return true;
    return (p.revents & POLLRDHUP) && !http_guard_half_close(s, fd);
}

bool http_conn_gone(struct http_req *r)
{
    if (!r->conn) /* a detached request (WebSocket): its sink knows */
        return r->sink && r->sink->gone && r->sink->gone(r->sink_ctx);
    return http_fd_gone(r->srv, http_conn_fd(r->conn));
}

/* ---- the guard ------------------------------------------------------------------------------- */

/* The numeric form of an address, IPv4-mapped IPv6 written as IPv4. false if not IP. */
static bool addr_text(const struct sockaddr *sa, char out[INET6_ADDRSTRLEN])
{
    if (!sa)
        return false;
    /* copies, not casts: a struct sockaddr carries no alignment promise */
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in4;
        memcpy(&in4, sa, sizeof(in4));
        return inet_ntop(AF_INET, &in4.sin_addr, out, INET6_ADDRSTRLEN) != NULL;
    }
    if (sa->sa_family != AF_INET6)
        return false;
    struct sockaddr_in6 in6;
    memcpy(&in6, sa, sizeof(in6));
    const struct in6_addr *a6 = &in6.sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6))
        return inet_ntop(AF_INET, &a6->s6_addr[12], out, INET6_ADDRSTRLEN) != NULL;
    return inet_ntop(AF_INET6, a6, out, INET6_ADDRSTRLEN) != NULL;
}

/* The canonical text of a numeric address given in the configuration; false if it is not one. */
static bool canonical_addr(const char *s, char out[INET6_ADDRSTRLEN])
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, s, &a4) == 1)
        return inet_ntop(AF_INET, &a4, out, INET6_ADDRSTRLEN) != NULL;
    if (inet_pton(AF_INET6, s, &a6) != 1)
        return false;
    if (IN6_IS_ADDR_V4MAPPED(&a6))
        return inet_ntop(AF_INET, &a6.s6_addr[12], out, INET6_ADDRSTRLEN) != NULL;
    return inet_ntop(AF_INET6, &a6, out, INET6_ADDRSTRLEN) != NULL;
}

static bool exempt(const struct http_server *s, const char *addr)
{
    for (size_t i = 0; i < s->n_exempt; i++)
        if (strcmp(s->exempt[i], addr) == 0)
            return true;
    return false;
}

/* Under conn_lock. */
static void conn_close(struct http_server *s, struct http_conn *c, const char *why)
{
    c->closing = true;
    if (c->reserve)
        s->n_reserve--;
    else
        s->n_conns--;
    INF_LOG_INFO("http", "closing the connection from %s: %s", c->addr, why);
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR); /* its thread sees the end of the stream and closes it */
}

unsigned int http_guard_mhd_limit(const struct http_server_params *p)
{
    return (unsigned int)p->max_connections + HTTP_RESERVED_CONNECTIONS + HTTP_CLOSING_SLACK;
}

enum MHD_Result http_guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    struct http_server *s = cls;
    char text[INET6_ADDRSTRLEN] = "?";
    (void)addrlen;
    addr_text(addr, text);
    enum MHD_Result ok = MHD_YES;
    pthread_mutex_lock(&s->conn_lock);
    int limit = s->p.max_connections_per_ip;
    if (limit > 0 && !exempt(s, text)) {
        int n = 0;
        for (struct http_conn *c = s->conns; c; c = c->next)
            n += !c->closing && strcmp(c->addr, text) == 0;
        if (n >= limit) {
            INF_LOG_DEBUG("http",
                          "refusing a connection from %s: it has %d open "
                          "(server.max_connections_per_ip)",
                          text, n);
            ok = MHD_NO;
            goto out;
        }
    }
    s->pending_reserve = false;
    if (s->n_conns < s->p.max_connections)
        goto out;
    /* the pool is full: make room by closing the connection waiting longest for its request */
    struct http_conn *victim = NULL;
    for (struct http_conn *c = s->conns; c; c = c->next)
        if (!c->closing && !c->reserve && c->phase != HTTP_PHASE_BUSY &&
            (!victim || c->since < victim->since))
            victim = c;
    if (victim) {
        conn_close(s, victim,
                   "the connection pool is full (server.max_connections) and it has "
                   "waited longest for its request");
    } else if (s->n_reserve < HTTP_RESERVED_CONNECTIONS) {
        s->pending_reserve = true;
    } else {
        INF_LOG_DEBUG("http", "refusing a connection from %s: every connection is busy", text);
        ok = MHD_NO;
    }
out:
    pthread_mutex_unlock(&s->conn_lock);
    return ok;
}

void http_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode code)
{
    struct http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct http_conn *c = calloc(1, sizeof(*c));
        *socket_context = c;
        if (!c)
            return; /* unguarded, but served */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!ci || !addr_text(ci->client_addr, c->addr))
            strcpy(c->addr, "?");
        c->fd = http_conn_fd(conn);
        c->phase = HTTP_PHASE_HEADERS;
        c->since = http_now();
        pthread_mutex_lock(&s->conn_lock);
        c->reserve = s->pending_reserve;
        s->pending_reserve = false;
        if (c->reserve)
            s->n_reserve++;
        else
            s->n_conns++;
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        pthread_mutex_unlock(&s->conn_lock);
        return;
    }
    struct http_conn *c = *socket_context;
    *socket_context = NULL;
    if (!c)
        return;
    pthread_mutex_lock(&s->conn_lock);
    if (!c->closing) {
        if (c->reserve)
            s->n_reserve--;
        else
            s->n_conns--;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&s->conn_lock);
    free(c);
}

struct http_conn *http_guard_conn(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void http_guard_phase(struct http_server *s, struct http_conn *c, enum http_phase phase)
{
    if (!c)
        return;
    pthread_mutex_lock(&s->conn_lock);
    if (c->phase != phase) {
        c->phase = phase;
        c->since = http_now();
        if (phase == HTTP_PHASE_HEADERS)
            c->half_closed = false;
    }
    pthread_mutex_unlock(&s->conn_lock);
}

bool http_guard_half_close(struct http_server *s, int fd)
{
    bool half = false;
    double now = http_now();
    pthread_mutex_lock(&s->conn_lock);
    for (struct http_conn *c = s->conns; c; c = c->next) {
        if (c->fd != fd || c->closing)
            continue;
        if (!c->half_closed && c->phase == HTTP_PHASE_BUSY &&
            now - c->since <= HTTP_HALF_CLOSE_GRACE_S)
            c->half_closed = true;
        half = c->half_closed;
        break;
    }
    pthread_mutex_unlock(&s->conn_lock);
    return half;
}

bool http_guard_reserve(const struct http_conn *c)
{
    return c && c->reserve; /* set before the connection's thread starts; never changes */
}

static void *guard_main(void *arg)
{
    struct http_server *s = arg;
    unsigned tick = 0;
    while (!atomic_load(&s->guard_stop)) {
        usleep(GUARD_TICK_US);
        if (++tick % 10 == 0 && s->p.models) /* Ollama's keep_alive: about once a second */
            srv_models_expire(s->p.models);
        double now = http_now();
        pthread_mutex_lock(&s->conn_lock);
        for (struct http_conn *c = s->conns; c; c = c->next) {
            if (c->closing || c->phase == HTTP_PHASE_BUSY)
                continue;
            bool headers = c->phase == HTTP_PHASE_HEADERS;
            int limit = headers ? s->p.header_timeout_seconds : s->p.body_timeout_seconds;
            if (now - c->since < limit)
                continue;
            conn_close(s, c,
                       headers ? "no complete request headers within the deadline "
                                 "(server.header_timeout_seconds)"
                               : "the request body did not arrive within the deadline "
                                 "(server.body_timeout_seconds)");
        }
        pthread_mutex_unlock(&s->conn_lock);
    }
    return NULL;
}

inf_status http_guard_start(struct http_server *s, struct inf_error *err)
{
    const struct http_server_params *p = &s->p;
    s->exempt = calloc(p->n_per_ip_exempt + 1, sizeof(*s->exempt));
    if (!s->exempt)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    for (size_t i = 0; i < p->n_per_ip_exempt; i++) {
        if (!canonical_addr(p->per_ip_exempt[i], s->exempt[i]))
            return inf_error_set(err, INF_EINVAL,
                                 "server.per_ip_exempt: '%s' is not a numeric IP address",
                                 p->per_ip_exempt[i]);
        s->n_exempt++;
    }
    if (p->header_timeout_seconds < 1 || p->body_timeout_seconds < 1)
        return inf_error_set(err, INF_EINVAL,
                             "server.header_timeout_seconds and server.body_timeout_seconds "
                             "must be at least 1");
    if (pthread_create(&s->guard, NULL, guard_main, s) != 0)
        return inf_error_set(err, INF_EIO, "cannot start the connection guard thread");
    s->guard_started = true;
    return INF_OK;
}

void http_guard_stop(struct http_server *s)
{
    if (!s->guard_started)
        return;
    atomic_store(&s->guard_stop, true);
    pthread_join(s->guard, NULL);
    s->guard_started = false;
}
