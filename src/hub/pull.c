/*
 * pull.c - the HTTP half of `inferno pull`: a libcurl handle with the pull's settings, GETs
 * into memory with retries, and the download of one file - resumed from FILE.partial with a
 * Range request, hashed as it arrives, verified, synced and renamed into place. inf_hub_pull
 * dispatches to the Hugging Face (pull_hf.c) or Ollama (pull_ollama.c) protocol.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "build_info.h"
#include "core/files.h"
#include "hub/pull_internal.h"
#include "inferno/log.h"

#define BACKOFF_MAX_S   30.0
#define MAX_CONNECT_TRY 2 /* retries of a refused connection: a server that is down stays down */
#define WRITEBEHIND     (16u << 20)

struct inf__hub_http {
    CURL *curl;
    struct inf_hub_params p;
    char ua[64];
    bool canceled;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void inf_hub_params_init(struct inf_hub_params *p)
{
    memset(p, 0, sizeof(*p));
    p->hf_endpoint = "https://huggingface.co";
    p->ollama_endpoint = "https://registry.ollama.ai";
    p->max_retries = 5;
    p->stall_seconds = 30;
    p->connect_seconds = 15;
    p->backoff_seconds = 1.0;
}

inf_status inf__hub_http_new(const struct inf_hub_params *p, struct inf__hub_http **out,
                             struct inf_error *err)
{
    *out = NULL;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return inf_error_set(err, INF_EIO, "libcurl: %s", curl_easy_strerror(curl_init_rc));
    struct inf__hub_http *h = calloc(1, sizeof(*h));
    if (!h)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    h->curl = curl_easy_init();
    if (!h->curl) {
        free(h);
        return inf_error_set(err, INF_ENOMEM, "libcurl: cannot create a handle");
    }
    h->p = *p;
    snprintf(h->ua, sizeof(h->ua), "inferno/%s", INFERNO_VERSION);
    *out = h;
    return INF_OK;
}

void inf__hub_http_free(struct inf__hub_http *h)
{
    if (!h)
        return;
    curl_easy_cleanup(h->curl);
    free(h);
}

bool inf__hub_emit(struct inf__hub_http *h, const struct inf_hub_event *ev)
{
    if (h->canceled)
        return false;
    if (h->p.progress && !h->p.progress(ev, h->p.user))
        h->canceled = true;
    return !h->canceled;
}

const struct inf_hub_params *inf__hub_params(const struct inf__hub_http *h)
{
    return &h->p;
}

void inf__hub_url_escape(const char *s, bool keep_slash, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s && o + 4 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The host of a URL, for messages ("huggingface.co"); never the user info or the path. */
static void url_host(const char *url, char *out, size_t size)
{
    const char *s = strstr(url, "://");
    s = s ? s + 3 : url;
    const char *at = strchr(s, '@'), *slash = strchr(s, '/');
    if (at && (!slash || at < slash))
        s = at + 1;
    size_t n = strcspn(s, "/?#");
    snprintf(out, size, "%.*s", (int)n, s);
}

/* The settings every request shares. */
static void setup(struct inf__hub_http *h, const char *url, bool auth)
{
    CURL *c = h->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_USERAGENT, h->ua);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
                     (long)(h->p.connect_seconds > 0 ? h->p.connect_seconds : 15));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
                     (long)(h->p.stall_seconds > 0 ? h->p.stall_seconds : 30));
    /* a bearer token goes to the first host only: libcurl drops it on a redirect elsewhere
       (CURLOPT_UNRESTRICTED_AUTH stays off), so the CDN a hub redirects to never sees it */
    if (auth && h->p.token && *h->p.token) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
        curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, h->p.token);
    }
}

static bool retryable_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

static bool retryable_status(long status)
{
    return status >= 500 || status == 429 || status == 408;
}

/* The error for a final HTTP status: 404 not found, 401/403 gated, others I/O. body: the
   hub's answer (its "error" field when JSON), shown shortened. */
static inf_status status_error(long status, const char *what, const char *body, size_t len,
                               struct inf_error *err)
{
    char detail[200] = "";
    if (body && len) {
        json_error_t je;
        json_t *j = json_loadb(body, len < 65536 ? len : 65536, 0, &je);
        const char *e = json_string_value(json_object_get(j, "error"));
        if (!e && json_is_array(json_object_get(j, "errors")))
            e = json_string_value(
                json_object_get(json_array_get(json_object_get(j, "errors"), 0), "message"));
        size_t k = 0;
        const char *src = e ? e : body;
        size_t n = e ? strlen(e) : len;
        for (size_t i = 0; i < n && k + 1 < sizeof(detail); i++)
            detail[k++] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : ' ';
        detail[k] = '\0';
        json_decref(j);
    }
    const char *sep = detail[0] ? ": " : "";
    if (status == 404)
        return inf_error_set(err, INF_ENOTFOUND, "%s: not found (HTTP 404)%s%s", what, sep, detail);
    if (status == 401 || status == 403)
        return inf_error_set(err, INF_EUNSUPPORTED,
                             "%s: access denied (HTTP %ld): a gated or private repository needs a "
                             "token (HF_TOKEN or --token) that has been granted access%s%s",
                             what, status, sep, detail);
    return inf_error_set(err, INF_EIO, "%s: HTTP %ld%s%s", what, status, sep, detail);
}

static inf_status curl_error(CURLcode rc, const char *url, const char *what, const char *msg,
                             struct inf_error *err)
{
    char host[256];
    url_host(url, host, sizeof(host));
    if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
        rc == CURLE_COULDNT_CONNECT)
        return inf_error_set(err, INF_EIO, "%s: cannot reach %s (offline, or the hub is down?): %s",
                             what, host, msg[0] ? msg : curl_easy_strerror(rc));
    return inf_error_set(err, INF_EIO, "%s: %s: %s", what, host,
                         msg[0] ? msg : curl_easy_strerror(rc));
}

/* Wait before attempt+1 (1, 2, 4... times the base, at most 30 s); false when canceled. */
static bool backoff(struct inf__hub_http *h, int attempt, const char *file, const char *why,
                    int index, int count)
{
    double d = h->p.backoff_seconds > 0 ? h->p.backoff_seconds : 0;
    for (int i = 1; i < attempt && d < BACKOFF_MAX_S; i++)
        d *= 2;
    if (d > BACKOFF_MAX_S)
        d = BACKOFF_MAX_S;
    struct inf_hub_event ev = {.kind = INF_HUB_EV_RETRY,
                               .msg = why,
                               .file = file,
                               .digest = "",
                               .attempt = attempt,
                               .index = index,
                               .count = count};
    INF_LOG_WARN("hub", "%s: %s; retrying in %.1f s (attempt %d)", file ? file : "request", why, d,
                 attempt + 1);
    if (!inf__hub_emit(h, &ev))
        return false;
    sleep_s(d);
    return !h->canceled;
}

/* ---- GET into memory ------------------------------------------------------------------------- */

struct membuf {
    char *d;
    size_t n, cap;
    bool too_big;
    char *next; /* Link: <...>; rel="next" */
};

static size_t mem_write(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct membuf *b = user;
    size_t n = size * nmemb;
    if (b->n + n > INF__HUB_MAX_JSON) {
        b->too_big = true;
        return 0;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *d = realloc(b->d, cap);
        if (!d)
            return 0;
        b->d = d;
        b->cap = cap;
    }
    memcpy(b->d + b->n, ptr, n);
    b->n += n;
    b->d[b->n] = '\0';
    return n;
}

/* Link: <https://...>; rel="next" (the tree API's pagination). */
static size_t mem_header(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct membuf *b = user;
    size_t n = size * nmemb;
    if (n > 5 && strncasecmp(ptr, "link:", 5) == 0 && n < 8192) {
        char line[8192];
        memcpy(line, ptr, n);
        line[n] = '\0';
        char *lt = strchr(line, '<'), *gt = lt ? strchr(lt, '>') : NULL;
        if (lt && gt && strstr(gt, "rel=\"next\"")) {
            free(b->next);
            b->next = strndup(lt + 1, (size_t)(gt - lt - 1));
        }
    }
    return n;
}

inf_status inf__hub_get(struct inf__hub_http *h, const char *url, const char *accept, bool auth,
                        const char *what, char **body, size_t *len, char **next_url,
                        struct inf_error *err)
{
    *body = NULL;
    *len = 0;
    if (next_url)
        *next_url = NULL;
    for (int attempt = 1;; attempt++) {
        struct membuf b = {0};
        char ebuf[CURL_ERROR_SIZE] = "";
        struct curl_slist *hdr = NULL;
        setup(h, url, auth);
        if (accept) {
            char a[256];
            snprintf(a, sizeof(a), "Accept: %s", accept);
            hdr = curl_slist_append(hdr, a);
            curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdr);
        }
        curl_easy_setopt(h->curl, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, mem_write);
        curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, mem_header);
        curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, &b);
        curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, ebuf);
        INF_LOG_DEBUG("hub", "GET %s", url);
        CURLcode rc = curl_easy_perform(h->curl);
        long status = 0;
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(hdr);
        inf_status st;
        bool retry = false;
        if (b.too_big)
            st = inf_error_set(err, INF_ELIMIT, "%s: answer larger than %u bytes", what,
                               INF__HUB_MAX_JSON);
        else if (rc != CURLE_OK) {
            st = curl_error(rc, url, what, ebuf, err);
            retry =
                retryable_curl(rc) && (rc != CURLE_COULDNT_CONNECT || attempt <= MAX_CONNECT_TRY);
        } else if (status < 200 || status >= 300) {
            st = status_error(status, what, b.d, b.n, err);
            retry = retryable_status(status);
        } else {
            *body = b.d ? b.d : strdup("");
            *len = b.n;
            if (next_url)
                *next_url = b.next;
            else
                free(b.next);
            return *body ? INF_OK : inf_error_set(err, INF_ENOMEM, "out of memory");
        }
        free(b.d);
        free(b.next);
        if (!retry || attempt > h->p.max_retries)
            return st;
        if (!backoff(h, attempt, NULL, inf_error_message(err), 0, 0))
            return inf_error_set(err, INF_ECANCELED, "%s: canceled", what);
    }
}

/* ---- one file -------------------------------------------------------------------------------- */

/*
 * The digest is computed on a thread of its own that reads back (from the page cache) the bytes
 * the transfer has written, so hashing overlaps receiving instead of adding to it, and a resumed
 * download re-hashes its .partial while the rest arrives. The same thread starts the disk
 * writes behind it. The transfer's callback only writes to the page cache, as curl -o does.
 */
struct hasher {
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t avail;  /* bytes written (to hash) */
    uint64_t hashed; /* bytes hashed */
    bool stop, failed;
    bool abort; /* read and written with __atomic: stop without hashing the rest */
    int fd;
    EVP_MD_CTX *md;
    char *buf; /* HASH_CHUNK */
};

#define HASH_CHUNK (4u << 20)

/* Hash [from, from + want) of the file through a read-only mapping of the page cache (no copy);
   pread when it cannot be mapped. The range is written (the file is at least that long, and
   only restart() truncates it, after this thread has ended). */
static bool hash_range(struct hasher *hs, uint64_t from, size_t want)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t base = from - from % page;
    size_t len = want + (size_t)(from - base);
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, hs->fd, (off_t)base);
    if (m != MAP_FAILED) {
        bool ok = EVP_DigestUpdate(hs->md, (const char *)m + (from - base), want) != 0;
        munmap(m, len);
        return ok;
    }
    while (want > 0) {
        ssize_t r = pread(hs->fd, hs->buf, want < HASH_CHUNK ? want : HASH_CHUNK, (off_t)from);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || !EVP_DigestUpdate(hs->md, hs->buf, (size_t)r))
            return false;
        from += (uint64_t)r;
        want -= (size_t)r;
    }
    return true;
}

static void *hasher_main(void *arg)
{
    struct hasher *hs = arg;
    uint64_t flushed = 0; /* bytes whose write-back has been started */
    pthread_mutex_lock(&hs->mu);
    for (;;) {
        while (hs->hashed == hs->avail && !hs->stop)
            pthread_cond_wait(&hs->cv, &hs->mu);
        if (hs->hashed == hs->avail)
            break; /* stopped, and everything is hashed */
        uint64_t from = hs->hashed, to = hs->avail;
        pthread_mutex_unlock(&hs->mu);
        bool ok = true;
        while (from < to && ok && !__atomic_load_n(&hs->abort, __ATOMIC_RELAXED)) {
            size_t want = to - from < HASH_CHUNK ? (size_t)(to - from) : HASH_CHUNK;
            ok = hash_range(hs, from, want);
            if (ok)
                from += want;
        }
        /* write-behind: start the disk writes of what is hashed every WRITEBEHIND bytes, so
           the fsync before the rename has little left to do and dirty pages do not pile up;
           here, not in the transfer's callback, where a busy disk would stall receiving */
        if (from - flushed >= WRITEBEHIND) {
            sync_file_range(hs->fd, (off_t)flushed, (off_t)(from - flushed), SYNC_FILE_RANGE_WRITE);
            flushed = from;
        }
        pthread_mutex_lock(&hs->mu);
        hs->hashed = from;
        if (!ok || __atomic_load_n(&hs->abort, __ATOMIC_RELAXED)) {
            hs->failed = true;
            break;
        }
    }
    pthread_mutex_unlock(&hs->mu);
    return NULL;
}

/* Start hashing from byte 0 of fd, avail bytes being there already. */
static bool hasher_start(struct hasher *hs, uint64_t avail)
{
    hs->avail = avail;
    hs->hashed = 0;
    hs->stop = hs->failed = false;
    __atomic_store_n(&hs->abort, false, __ATOMIC_RELAXED);
    hs->running = pthread_create(&hs->thread, NULL, hasher_main, hs) == 0;
    return hs->running;
}

static void hasher_publish(struct hasher *hs, uint64_t avail)
{
    pthread_mutex_lock(&hs->mu);
    hs->avail = avail;
    pthread_cond_signal(&hs->cv);
    pthread_mutex_unlock(&hs->mu);
}

/* Wait until everything published is hashed and end the thread; false when a read failed. */
static bool hasher_finish(struct hasher *hs)
{
    if (!hs->running)
        return false;
    pthread_mutex_lock(&hs->mu);
    hs->stop = true;
    pthread_cond_signal(&hs->cv);
    pthread_mutex_unlock(&hs->mu);
    pthread_join(hs->thread, NULL);
    hs->running = false;
    return !hs->failed && hs->hashed == hs->avail;
}

struct dl {
    struct inf__hub_http *h;
    const struct inf__hub_fetch *f;
    int fd;
    EVP_MD_CTX *md;
    struct hasher hs;    /* owns md while running */
    uint64_t have;       /* bytes in the partial file (all hashed) */
    uint64_t start;      /* have when this transfer began */
    uint64_t got;        /* bytes received in this pull (all transfers) */
    bool checked;        /* the response status has been looked at */
    bool writing;        /* the response is the file's bytes */
    bool too_long;       /* more bytes than the expected size */
    bool bad_range;      /* a 206 for other bytes than those asked for */
    int64_t range_start; /* the 206's Content-Range start, -1 none */
    bool io_error;
    int io_errno;
    char errbody[512]; /* an error response's first bytes */
    size_t n_errbody;
    double t0, last_emit;
    const char *digest;
};

static bool md_reset(struct dl *d)
{
    const EVP_MD *md = d->f->sha256 && d->f->sha256[0] ? EVP_sha256() : EVP_sha1();
    if (!EVP_DigestInit_ex(d->md, md, NULL))
        return false;
    if (!(d->f->sha256 && d->f->sha256[0])) {
        /* a git blob id: sha1 over "blob SIZE\0" and the bytes */
        char hdr[48];
        int n = snprintf(hdr, sizeof(hdr), "blob %llu", (unsigned long long)d->f->size);
        return EVP_DigestUpdate(d->md, hdr, (size_t)n + 1) != 0;
    }
    return true;
}

static bool restart(struct dl *d)
{
    __atomic_store_n(&d->hs.abort, true, __ATOMIC_RELAXED);
    hasher_finish(&d->hs);
    if (ftruncate(d->fd, 0) != 0 || lseek(d->fd, 0, SEEK_SET) != 0) {
        d->io_error = true;
        d->io_errno = errno;
        return false;
    }
    d->have = 0;
    if (!md_reset(d) || !hasher_start(&d->hs, 0)) {
        d->io_error = true;
        d->io_errno = ENOMEM;
        return false;
    }
    return true;
}

static void emit_progress(struct dl *d, bool force)
{
    double now = mono_now();
    if (!force && now - d->last_emit < 0.1)
        return;
    d->last_emit = now;
    double dt = now - d->t0;
    struct inf_hub_event ev = {.kind = INF_HUB_EV_PROGRESS,
                               .file = d->f->rel,
                               .digest = d->digest,
                               .done = d->have,
                               .total = d->f->size,
                               .rate = dt > 0 ? (double)d->got / dt : 0,
                               .index = d->f->index,
                               .count = d->f->count};
    inf__hub_emit(d->h, &ev);
}

/* Content-Range: bytes START-END/SIZE of a 206 (the last response's, after redirects). */
static size_t dl_header(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct dl *d = user;
    size_t n = size * nmemb;
    if (n > 20 && strncasecmp(ptr, "content-range:", 14) == 0) {
        char line[128];
        snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) - 1 ? n : sizeof(line) - 1),
                 ptr);
        unsigned long long start;
        d->range_start = sscanf(line + 14, " bytes %llu-", &start) == 1 ? (int64_t)start : -1;
    }
    return n;
}

static size_t dl_write(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct dl *d = user;
    size_t n = size * nmemb;
    if (!d->checked) {
        long status = 0;
        curl_easy_getinfo(d->h->curl, CURLINFO_RESPONSE_CODE, &status);
        d->checked = true;
        if (status == 206) {
            if (d->range_start != (int64_t)d->have) {
                /* not the bytes asked for: start over (the digest would catch it anyway) */
                d->bad_range = true;
                restart(d);
                return 0;
            }
            d->writing = true;
        } else if (status == 200) {
            /* the whole file (the server ignored the range, or none was asked) */
            d->writing = true;
            if (d->have > 0 && !restart(d))
                return 0;
        }
    }
    if (!d->writing) {
        size_t k =
            n < sizeof(d->errbody) - 1 - d->n_errbody ? n : sizeof(d->errbody) - 1 - d->n_errbody;
        memcpy(d->errbody + d->n_errbody, ptr, k);
        d->n_errbody += k;
        d->errbody[d->n_errbody] = '\0';
        return n;
    }
    if (d->have + n > d->f->size) {
        d->too_long = true;
        return 0;
    }
    for (size_t off = 0; off < n;) {
        ssize_t w = write(d->fd, ptr + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            d->io_error = true;
            d->io_errno = errno;
            return 0;
        }
        off += (size_t)w;
    }
    d->have += n;
    d->got += n;
    hasher_publish(&d->hs, d->have);
    emit_progress(d, false);
    return d->h->canceled ? 0 : n;
}

/* The digest a finished file must have, lowercase hex. */
static const char *expected_hex(const struct inf__hub_fetch *f)
{
    return f->sha256 && f->sha256[0] ? f->sha256 : f->git_oid ? f->git_oid : "";
}

/* Hash a whole file into hex (for a target that is already there). */
static bool file_digest(const char *path, const struct inf__hub_fetch *f, char *hex)
{
    struct dl d = {.f = f};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    d.md = EVP_MD_CTX_new();
    bool ok = d.md && md_reset(&d);
    char *buf = ok ? malloc(1 << 20) : NULL;
    ssize_t r = 0;
    while (buf && (r = read(fd, buf, 1 << 20)) > 0)
        EVP_DigestUpdate(d.md, buf, (size_t)r);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ok = buf && r == 0 && EVP_DigestFinal_ex(d.md, md, &mdlen);
    for (unsigned int i = 0; ok && i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    free(buf);
    EVP_MD_CTX_free(d.md);
    close(fd);
    return ok;
}

static void fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *s = strrchr(dir, '/');
    if (!s)
        return;
    *s = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* One transfer of the rest of the file. Returns OK when it ended (complete or not: the caller
   looks at have), else the error; *retry says whether trying again may help. */
static inf_status transfer(struct dl *d, bool *retry, struct inf_error *err)
{
    struct inf__hub_http *h = d->h;
    char ebuf[CURL_ERROR_SIZE] = "", range[64];
    *retry = false;
    setup(h, d->f->url, d->f->auth);
    d->checked = d->writing = d->too_long = d->bad_range = false;
    d->range_start = -1;
    d->n_errbody = 0;
    d->errbody[0] = '\0';
    d->start = d->have;
    if (d->have > 0) {
        snprintf(range, sizeof(range), "%llu-", (unsigned long long)d->have);
        curl_easy_setopt(h->curl, CURLOPT_RANGE, range);
    }
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, dl_write);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, dl_header);
    curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, d);
    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(h->curl, CURLOPT_BUFFERSIZE, 512L * 1024);
    INF_LOG_DEBUG("hub", "GET %s (from byte %llu)", d->f->url, (unsigned long long)d->have);
    CURLcode rc = curl_easy_perform(h->curl);
    long status = 0;
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    if (h->canceled)
        return inf_error_set(err, INF_ECANCELED, "'%s': canceled", d->f->rel);
    if (d->io_error)
        return inf_error_set(err, INF_EIO, "writing '%s.partial': %s", d->f->rel,
                             strerror(d->io_errno));
    if (d->bad_range) {
        *retry = !d->io_error;
        return inf_error_set(err, INF_EIO,
                             "'%s': the server answered other bytes than those "
                             "asked for; starting over",
                             d->f->rel);
    }
    if (d->too_long)
        return inf_error_set(err, INF_EIO,
                             "'%s': the server sent more than the %llu bytes the "
                             "hub listed",
                             d->f->rel, (unsigned long long)d->f->size);
    if (status == 416 && d->have > 0) {
        /* the server's file is shorter than the bytes we have: not the file listed */
        *retry = restart(d);
        return inf_error_set(err, INF_EIO,
                             "'%s': the server has fewer bytes than the %llu "
                             "already downloaded; starting over",
                             d->f->rel, (unsigned long long)d->start);
    }
    if (rc == CURLE_OK && (status == 200 || status == 206))
        return INF_OK; /* a short body is seen by the caller (have < size) */
    if (status >= 300 && !(rc != CURLE_OK && d->writing)) {
        *retry = retryable_status(status);
        return status_error(status, d->f->rel, d->errbody, d->n_errbody, err);
    }
    *retry = retryable_curl(rc);
    return curl_error(rc, d->f->url, d->f->rel, ebuf, err);
}

inf_status inf__hub_fetch_file(struct inf__hub_http *h, const struct inf__hub_fetch *f,
                               uint64_t *downloaded, struct inf_error *err)
{
    const struct inf_hub_params *p = &h->p;
    char target[PATH_MAX], partial[PATH_MAX + 16], digest[80], hex[130];
    inf_status st = INF_OK;
    struct dl d = {.h = h, .f = f, .fd = -1};

    *downloaded = 0;
    if ((size_t)snprintf(target, sizeof(target), "%s/%s", p->models_dir, f->rel) >= sizeof(target))
        return inf_error_set(err, INF_EINVAL, "path too long for '%s'", f->rel);
    snprintf(partial, sizeof(partial), "%s.partial", target);
    snprintf(digest, sizeof(digest), "%s%s",
             f->sha256 && f->sha256[0] ? "sha256:" : "git-sha1:", expected_hex(f));
    d.digest = digest;
    if (!expected_hex(f)[0])
        return inf_error_set(err, INF_EFORMAT, "'%s': the hub gives no digest to verify", f->rel);
    if (inf__mkdir_parents(target) != 0)
        return inf_error_set(err, INF_EIO, "cannot create the directory of '%s': %s", target,
                             strerror(errno));

    /* already there and intact: nothing to fetch */
    struct stat sb;
    struct inf_hub_event ev = {
        .file = f->rel, .digest = digest, .total = f->size, .index = f->index, .count = f->count};
    if (stat(target, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == f->size) {
        ev.kind = INF_HUB_EV_VERIFY;
        ev.done = f->size;
        if (!inf__hub_emit(h, &ev))
            return inf_error_set(err, INF_ECANCELED, "canceled");
        if (file_digest(target, f, hex) && strcmp(hex, expected_hex(f)) == 0) {
            ev.kind = INF_HUB_EV_FILE_DONE;
            inf__hub_emit(h, &ev);
            unlink(partial);
            return INF_OK;
        }
        INF_LOG_WARN("hub", "'%s' differs from the hub's; downloading it again", target);
    }

    d.fd = open(partial, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (d.fd < 0)
        return inf_error_set(err, INF_EIO, "cannot open '%s': %s", partial, strerror(errno));
    if (flock(d.fd, LOCK_EX | LOCK_NB) != 0) {
        st = errno == EWOULDBLOCK
                 ? inf_error_set(err, INF_ELIMIT, "another pull is downloading '%s'", target)
                 : inf_error_set(err, INF_EIO, "cannot lock '%s': %s", partial, strerror(errno));
        close(d.fd);
        return st;
    }
    d.md = EVP_MD_CTX_new();
    d.hs.buf = malloc(HASH_CHUNK);
    pthread_mutex_init(&d.hs.mu, NULL);
    pthread_cond_init(&d.hs.cv, NULL);
    d.hs.fd = d.fd;
    d.hs.md = d.md;
    if (!d.md || !d.hs.buf || !md_reset(&d)) {
        st = inf_error_set(err, INF_ENOMEM, "out of memory");
        goto out;
    }
    if (fstat(d.fd, &sb) != 0) {
        st = inf_error_set(err, INF_EIO, "'%s': %s", partial, strerror(errno));
        goto out;
    }
    d.have = (uint64_t)sb.st_size;
    if (d.have > f->size) {
        d.have = 0;
        if (ftruncate(d.fd, 0) != 0) {
            st = inf_error_set(err, INF_EIO, "'%s': %s", partial, strerror(errno));
            goto out;
        }
    }
    /* the bytes already there are hashed while the rest arrives; writes go after them */
    if (lseek(d.fd, (off_t)d.have, SEEK_SET) < 0 || !hasher_start(&d.hs, d.have)) {
        st = inf_error_set(err, INF_EIO, "'%s': %s", partial, strerror(errno));
        goto out;
    }
    bool resumed = d.have > 0, started_over = false;
    if (resumed)
        INF_LOG_INFO("hub", "resuming '%s' at byte %llu of %llu", f->rel,
                     (unsigned long long)d.have, (unsigned long long)f->size);
    ev.kind = INF_HUB_EV_FILE;
    ev.done = d.have;
    if (!inf__hub_emit(h, &ev)) {
        st = inf_error_set(err, INF_ECANCELED, "canceled");
        goto out;
    }
    d.t0 = d.last_emit = mono_now();

    for (int attempt = 1;;) {
        bool retry = false;
        uint64_t before = d.have;
        if (d.have < f->size || (d.have == 0 && f->size == 0)) {
            st = transfer(&d, &retry, err);
            if (st == INF_OK && d.have < f->size) {
                st = inf_error_set(err, INF_EIO,
                                   "'%s': the connection ended after %llu of %llu "
                                   "bytes",
                                   f->rel, (unsigned long long)d.have, (unsigned long long)f->size);
                retry = true;
            }
        }
        if (st == INF_OK) {
            /* complete: verify */
            emit_progress(&d, true);
            ev.kind = INF_HUB_EV_VERIFY;
            ev.done = d.have;
            inf__hub_emit(h, &ev);
            unsigned char md[EVP_MAX_MD_SIZE];
            unsigned int mdlen = 0;
            if (!hasher_finish(&d.hs)) {
                st = inf_error_set(err, INF_EIO, "reading back '%s': %s", partial, strerror(errno));
                goto out;
            }
            EVP_DigestFinal_ex(d.md, md, &mdlen);
            for (unsigned int i = 0; i < mdlen; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
            if (d.have == f->size && strcmp(hex, expected_hex(f)) == 0)
                break;
            if (resumed && !started_over) {
                /* the partial file may be of an older version of the file: once from zero */
                INF_LOG_WARN("hub", "'%s': the resumed file's digest is wrong; starting over",
                             f->rel);
                started_over = true;
                if (!restart(&d)) {
                    st = inf_error_set(err, INF_EIO, "'%s': %s", partial, strerror(d.io_errno));
                    goto out;
                }
                continue;
            }
            st = inf_error_set(err, INF_EIO,
                               "'%s': checksum mismatch: the hub says %s, the download is %s:%s; "
                               "the file was not kept",
                               f->rel, digest, f->sha256 && f->sha256[0] ? "sha256" : "git-sha1",
                               hex);
            close(d.fd);
            d.fd = -1;
            unlink(partial);
            goto out;
        }
        if (d.have > before)
            attempt = 1; /* progress was made: a fresh count of retries */
        if (!retry || attempt > p->max_retries)
            goto out;
        if (!backoff(h, attempt, f->rel, inf_error_message(err), f->index, f->count)) {
            st = inf_error_set(err, INF_ECANCELED, "canceled");
            goto out;
        }
        attempt++;
    }
    if (fsync(d.fd) != 0) {
        st = inf_error_set(err, INF_EIO, "'%s': fsync: %s", partial, strerror(errno));
        goto out;
    }
    if (rename(partial, target) != 0) {
        st = inf_error_set(err, INF_EIO, "cannot rename '%s' to '%s': %s", partial, target,
                           strerror(errno));
        goto out;
    }
    fsync_dir_of(target);
    ev.kind = INF_HUB_EV_FILE_DONE;
    ev.done = f->size;
    inf__hub_emit(h, &ev);
out:
    *downloaded = d.got;
    if (d.fd >= 0) {
        /* nothing received and nothing there before: leave no empty .partial behind */
        struct stat psb;
        if (st != INF_OK && fstat(d.fd, &psb) == 0 && psb.st_size == 0)
            unlink(partial);
    }
    if (st != INF_OK)
        __atomic_store_n(&d.hs.abort, true, __ATOMIC_RELAXED); /* the digest is not needed */
    hasher_finish(&d.hs); /* before the descriptor it reads goes */
    if (d.fd >= 0)
        close(d.fd);
    pthread_mutex_destroy(&d.hs.mu);
    pthread_cond_destroy(&d.hs.cv);
    free(d.hs.buf);
    EVP_MD_CTX_free(d.md);
    return st;
}

/* One event as Ollama's /api/pull progress object ("status", "digest", "total", "completed"),
   plus what Inferno knows besides ("file", "rate", "attempt"). */
char *inf_hub_event_json(const struct inf_hub_event *ev)
{
    json_t *o = json_object();
    char status[600];
    switch (ev->kind) {
    case INF_HUB_EV_STATUS:
        snprintf(status, sizeof(status), "%s", ev->msg ? ev->msg : "");
        break;
    case INF_HUB_EV_FILE:
    case INF_HUB_EV_PROGRESS:
    case INF_HUB_EV_FILE_DONE:
        snprintf(status, sizeof(status), "pulling %s", ev->file ? ev->file : "");
        break;
    case INF_HUB_EV_VERIFY:
        snprintf(status, sizeof(status), "verifying %s digest", ev->file ? ev->file : "");
        break;
    case INF_HUB_EV_RETRY:
        snprintf(status, sizeof(status), "retrying: %s", ev->msg ? ev->msg : "");
        break;
    }
    json_object_set_new(o, "status", json_string(status));
    if (ev->kind != INF_HUB_EV_STATUS) {
        json_object_set_new(o, "file", json_string(ev->file ? ev->file : ""));
        json_object_set_new(o, "digest", json_string(ev->digest ? ev->digest : ""));
        json_object_set_new(o, "total", json_integer((json_int_t)ev->total));
        json_object_set_new(o, "completed", json_integer((json_int_t)ev->done));
    }
    if (ev->kind == INF_HUB_EV_PROGRESS)
        json_object_set_new(o, "rate", json_real(ev->rate));
    if (ev->kind == INF_HUB_EV_RETRY)
        json_object_set_new(o, "attempt", json_integer(ev->attempt));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

/* ---- the entry point ------------------------------------------------------------------------- */

inf_status inf_hub_pull(const char *text, const struct inf_hub_params *p,
                        struct inf_hub_result *out, struct inf_error *err)
{
    struct inf_hub_ref ref;
    struct inf__hub_http *h = NULL;
    memset(out, 0, sizeof(*out));
    inf_status st = inf_hub_ref_parse(text, &ref, err);
    if (st)
        return st;
    if (!p->models_dir || !*p->models_dir)
        return inf_error_set(err, INF_EINVAL, "no models directory configured (models_dir)");
    if (ref.kind == INF_HUB_HF && p->revision && *p->revision) {
        /* a branch, tag or commit; '/' allowed between parts (refs/pr/1), escaped in URLs */
        if (strlen(p->revision) >= sizeof(ref.revision) || !inf__hub_path_valid(p->revision) ||
            strchr(p->revision, '+'))
            return inf_error_set(err, INF_EINVAL, "invalid revision '%.200s'", p->revision);
        snprintf(ref.revision, sizeof(ref.revision), "%s", p->revision);
    }
    if ((st = inf__hub_http_new(p, &h, err)) != INF_OK)
        return st;
    st = ref.kind == INF_HUB_HF ? inf__hub_pull_hf(h, &ref, out, err)
                                : inf__hub_pull_ollama(h, &ref, out, err);
    inf__hub_http_free(h);
    return st;
}
