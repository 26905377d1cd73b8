/*
 * http.c - the libmicrohttpd glue: one access-handler call sequence per
 * request, from the headers to the response.
 *
 * libmicrohttpd calls `answer` several times per request:
 *   1. headers only: we resolve the route and decide everything the
 *      headers can decide (404, 405, 401, 503, 413 by Content-Length, 415);
 *      an error is queued at once, so the client need not send its body;
 *   2. zero or more times with body bytes: we keep them, up to the payload
 *      limit, within the read timeout (past it the connection is dropped);
 *   3. once more with no bytes: the body is complete; we inflate it if it
 *      is gzip, run the route and queue its response (gzip-encoded if the
 *      client accepts it and it is large).
 * The per-request state (exch_state) lives in *con_cls and is freed by the
 * completion callback, which also logs the request and updates metrics.
 *
 * Threading: one thread per connection (MHD_USE_THREAD_PER_CONNECTION).
 * Route handlers block in the scheduler while their batch runs; a blocked
 * handler holds only its own connection's thread, and the read and idle
 * timeouts bound what a slow client can hold.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../util/util.h"
#include "gzip.h"
#include "log.h"
#include "srv_internal.h"

#define GZIP_MIN_BYTES 1024
#define THREAD_STACK (512 * 1024)

enum {
    R_WORK = 1,        /* POST work: counted in flight, refused while draining */
    R_PUBLIC = 2,      /* no API key needed */
    R_METRICS = 4,     /* public with --metrics-public */
    R_NEEDS_MODEL = 8, /* 503 while loading */
    R_EMBED = 16       /* counted in the request metrics, early errors included */
};

typedef struct route {
    const char *path;
    const char *method;
    void (*handler)(srv_exchange *x);
    int flags;
} route;

static const route routes[] = {
    {"/v1/embeddings", "POST", route_embeddings, R_WORK | R_NEEDS_MODEL | R_EMBED},
    {"/embeddings", "POST", route_embeddings, R_WORK | R_NEEDS_MODEL | R_EMBED},
    {"/embed", "POST", route_embed, R_WORK | R_NEEDS_MODEL | R_EMBED},
    {"/tokenize", "POST", route_tokenize, R_WORK | R_NEEDS_MODEL},
    {"/health", "GET", route_health, R_PUBLIC},
    {"/v1/models", "GET", route_models, R_NEEDS_MODEL},
    {"/models", "GET", route_models, R_NEEDS_MODEL},
    {"/info", "GET", route_info, R_NEEDS_MODEL},
    {"/metrics", "GET", route_metrics, R_METRICS},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

typedef struct exch_state {
    srv_exchange x;
    srv_response res;
    const route *rt;
    char *body;
    size_t len, cap;
    int decided;       /* res holds the answer (an early error) */
    int counted;       /* admitted into s->inflight */
    int too_large;
    int sent;          /* a response is queued */
    const char *method;
    char path[128];
} exch_state;

/* ---- responses ------------------------------------------------------------------ */

void srv_header(srv_response *r, const char *name, const char *fmt, ...)
{
    if (r->n_headers >= SRV_MAX_HEADERS)
        return;
    va_list ap;
    va_start(ap, fmt);
    r->headers[r->n_headers].name = name;
    vsnprintf(r->headers[r->n_headers].value, sizeof r->headers[0].value, fmt, ap);
    va_end(ap);
    r->n_headers++;
}

void srv_error(srv_response *r, const req_error *e)
{
    size_t len = 0;
    char *json = req_error_json(e, &len);
    met_buf_free(&r->body);
    met_buf_init(&r->body);
    r->status = e->status;
    if (json)
        met_buf_append(&r->body, json, len);
    bg_free(json);
    if (e->status == 401)
        srv_header(r, "WWW-Authenticate", "Bearer");
    if (e->status == 429 || e->status == 503)
        srv_header(r, "Retry-After", "1");
}

void srv_fail(srv_response *r, int status, const char *type, const char *param,
              const char *code, const char *fmt, ...)
{
    req_error e;
    char msg[sizeof e.message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    req_error_set(&e, status, type, param, code, "%s", msg);
    srv_error(r, &e);
}

void srv_json_str(met_buf *b, const char *s)
{
    met_buf_append(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        met_buf_append(b, run, (size_t)(s - run));
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            met_buf_append(b, esc, 2);
        } else {
            met_buf_printf(b, "\\u%04x", c);
        }
        run = s + 1;
    }
    met_buf_append(b, run, (size_t)(s - run));
    met_buf_append(b, "\"", 1);
}

const char *srv_header_in(const srv_exchange *x, const char *name)
{
    return MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND, name);
}

const char *srv_query_arg(const srv_exchange *x, const char *name)
{
    return MHD_lookup_connection_value(x->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- admission (headers only) ------------------------------------------------ */

static const route *find_route(const char *path, const char *method, int *path_known)
{
    *path_known = 0;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (strcmp(routes[i].path, path) != 0)
            continue;
        *path_known = 1;
        if (!strcmp(routes[i].method, method) ||
            (!strcmp(method, "HEAD") && !strcmp(routes[i].method, "GET")))
            return &routes[i];
    }
    return NULL;
}

/* Constant-time in the key's content: every byte of the longer string is
 * visited whatever matches, so timing reveals at most the lengths. */
static int key_equal(const char *given, const char *key)
{
    size_t gl = strlen(given), kl = strlen(key), n = gl > kl ? gl : kl;
    volatile unsigned char diff = (unsigned char)(gl != kl);
    for (size_t i = 0; i < n; i++) {
        unsigned char a = i < gl ? (unsigned char)given[i] : 0;
        unsigned char b = i < kl ? (unsigned char)key[i] : 0;
        diff |= a ^ b;
    }
    return diff == 0;
}

static int authorized(const srv_exchange *x, const route *rt)
{
    const srv_config *c = x->s->cfg;
    if (!c->api_key || (rt->flags & R_PUBLIC) || ((rt->flags & R_METRICS) && c->metrics_public))
        return 1;
    const char *h = srv_header_in(x, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    while (*h == ' ')
        h++;
    return key_equal(h, c->api_key);
}

static void allow_header(srv_response *r, const char *path)
{
    char allow[64] = "";
    for (size_t i = 0; i < N_ROUTES; i++)
        if (!strcmp(routes[i].path, path)) {
            const char *m = !strcmp(routes[i].method, "GET") ? "GET, HEAD" : routes[i].method;
            snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
                     allow[0] ? ", " : "", m);
        }
    srv_header(r, "Allow", "%s", allow);
}

/* Counts a work request in flight unless the server drains. */
static int enter_flight(srv *s)
{
    pthread_mutex_lock(&s->inflight_lock);
    int ok = atomic_load(&s->state) != SRV_DRAINING;
    if (ok)
        s->inflight++;
    pthread_mutex_unlock(&s->inflight_lock);
    return ok;
}

static void leave_flight(srv *s)
{
    pthread_mutex_lock(&s->inflight_lock);
    if (--s->inflight == 0)
        pthread_cond_broadcast(&s->inflight_zero);
    pthread_mutex_unlock(&s->inflight_lock);
}

static int content_encoding_ok(const char *ce)
{
    return !ce || !*ce || !strcasecmp(ce, "identity") || !strcasecmp(ce, "gzip") ||
           !strcasecmp(ce, "x-gzip");
}

/* Decides what the headers alone decide. Returns 1 if st->res is final. */
static int admit(exch_state *st, const char *method)
{
    srv_exchange *x = &st->x;
    srv *s = x->s;
    srv_response *r = &st->res;
    int path_known;
    st->rt = find_route(x->path, method, &path_known);
    if (!st->rt && path_known) {
        srv_fail(r, 405, NULL, NULL, "method_not_allowed", "method %s is not allowed on %s",
                 method, x->path);
        allow_header(r, x->path);
        return 1;
    }
    if (!st->rt) {
        srv_fail(r, 404, "not_found_error", NULL, "not_found", "no route %s %s", method,
                 x->path);
        return 1;
    }
    if (st->rt->flags & R_EMBED)
        x->language = "generic"; /* the handler refines it */
    if (!authorized(x, st->rt)) {
        srv_fail(r, 401, "authentication_error", NULL, "invalid_api_key",
                 srv_header_in(x, "Authorization")
                     ? "incorrect API key provided"
                     : "missing API key: send the header 'Authorization: Bearer KEY'");
        return 1;
    }
    int state = atomic_load(&s->state);
    if ((st->rt->flags & R_NEEDS_MODEL) && state == SRV_LOADING) {
        srv_fail(r, 503, "server_error", NULL, "loading", "the model is still loading");
        return 1;
    }
    if (st->rt->flags & R_WORK) {
        if (!enter_flight(s)) {
            srv_fail(r, 503, "server_error", NULL, "draining",
                     "the server is shutting down and takes no new requests");
            return 1;
        }
        st->counted = 1;
    }
    const char *ce = srv_header_in(x, "Content-Encoding");
    if (!content_encoding_ok(ce)) {
        srv_fail(r, 415, NULL, NULL, "unsupported_encoding",
                 "Content-Encoding '%.40s' is not supported; use gzip or none", ce);
        return 1;
    }
    const char *cl = srv_header_in(x, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > s->cfg->payload_limit) {
        srv_fail(r, 413, NULL, NULL, "payload_too_large",
                 "the body has %.20s bytes; the limit is %zu", cl, s->cfg->payload_limit);
        return 1;
    }
    return 0;
}

/* ---- body ------------------------------------------------------------------------ */

static void keep_body(exch_state *st, const char *data, size_t n, size_t limit)
{
    if (st->too_large || st->decided)
        return;
    if (st->len + n > limit) {
        st->too_large = 1;
        return;
    }
    if (st->len + n + 1 > st->cap) {
        size_t cap = st->cap ? st->cap : 16384;
        while (cap < st->len + n + 1)
            cap *= 2;
        char *p = bg_realloc(st->body, cap);
        if (!p) {
            srv_fail(&st->res, 500, NULL, NULL, "out_of_memory", "out of memory for the body");
            st->decided = 1;
            return;
        }
        st->body = p;
        st->cap = cap;
    }
    memcpy(st->body + st->len, data, n);
    st->len += n;
    st->body[st->len] = '\0';
}

/* Inflates a gzip body in place of the raw one. Returns 0, or 1 with an
 * error response set. */
static int decode_body(exch_state *st)
{
    const char *ce = srv_header_in(&st->x, "Content-Encoding");
    if (!ce || (strcasecmp(ce, "gzip") && strcasecmp(ce, "x-gzip")))
        return 0;
    char *out = NULL;
    size_t n = 0, limit = st->x.s->cfg->payload_limit;
    int rc = gz_inflate(st->body ? st->body : "", st->len, limit, &out, &n);
    if (rc == GZ_BAD_DATA)
        srv_fail(&st->res, 400, NULL, NULL, "invalid_gzip", "the gzip body is corrupt or truncated");
    else if (rc == GZ_TOO_LARGE)
        srv_fail(&st->res, 413, NULL, NULL, "payload_too_large",
                 "the inflated body is over the limit of %zu bytes", limit);
    else if (rc == GZ_NOMEM)
        srv_fail(&st->res, 500, NULL, NULL, "out_of_memory", "out of memory inflating the body");
    if (rc != GZ_OK)
        return 1;
    bg_free(st->body);
    st->body = out;
    st->len = st->cap = n;
    return 0;
}

static void run_route(exch_state *st)
{
    srv_exchange *x = &st->x;
    if (st->too_large) {
        srv_fail(&st->res, 413, NULL, NULL, "payload_too_large",
                 "the body is over the limit of %zu bytes", x->s->cfg->payload_limit);
        return;
    }
    if (decode_body(st))
        return;
    x->body = st->body ? st->body : "";
    x->body_len = st->len;
    st->rt->handler(x);
}

/* ---- sending ------------------------------------------------------------------------ */

static int accepts_gzip(struct MHD_Connection *c)
{
    const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
    return ae && strcasestr(ae, "gzip") != NULL;
}

static enum MHD_Result send_response(exch_state *st, struct MHD_Connection *c)
{
    srv_response *r = &st->res;
    st->sent = 1;
    if (met_buf_status(&r->body) != BGEICL_OK) {
        met_buf_free(&r->body);
        met_buf_init(&r->body);
        srv_fail(r, 500, NULL, NULL, "out_of_memory", "out of memory building the response");
    }
    char *data = r->body.data;
    size_t len = r->body.len;
    int gz = 0;
    if (len >= GZIP_MIN_BYTES && accepts_gzip(c)) {
        char *z = NULL;
        size_t zl = 0;
        if (gz_deflate(data, len, &z, &zl) == GZ_OK) {
            met_buf_free(&r->body);
            data = z;
            len = zl;
            gz = 1;
        }
    }
    if (!gz)
        met_buf_init(&r->body); /* ownership moves to the response */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, data ? data : (char *)"",
                                                           data ? free : NULL);
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type",
                            r->content_type ? r->content_type : "application/json");
    if (gz)
        MHD_add_response_header(resp, "Content-Encoding", "gzip");
    MHD_add_response_header(resp, "Vary", "Accept-Encoding");
    for (int i = 0; i < r->n_headers; i++)
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

/* ---- libmicrohttpd callbacks ---------------------------------------------------------- */

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    srv *s = cls;
    exch_state *st = *con_cls;
    if (!st) {
        st = bg_calloc(1, sizeof *st);
        if (!st)
            return MHD_NO;
        *con_cls = st;
        snprintf(st->path, sizeof st->path, "%s", url);
        st->method = method;
        st->x = (srv_exchange){.s = s, .conn = c, .path = st->path, .t_start = bg_now_ms(),
                               .res = &st->res};
        met_buf_init(&st->res.body);
        st->res.status = 200;
        st->decided = admit(st, method);
        /* An early answer goes out now: the client need not send the body. */
        return st->decided ? send_response(st, c) : MHD_YES;
    }
    if (st->sent) {
        *upload_size = 0; /* an early answer went out: discard the body */
        return MHD_YES;
    }
    if (*upload_size) {
        if (bg_now_ms() - st->x.t_start > s->cfg->read_timeout_s * 1000.0) {
            log_event(LOG_WARN, "read timeout",
                      (log_field[]){LOG_S("path", st->path),
                                    LOG_N("seconds", s->cfg->read_timeout_s)},
                      2);
            return MHD_NO; /* drops the connection */
        }
        keep_body(st, upload, *upload_size, s->cfg->payload_limit);
        *upload_size = 0;
        return MHD_YES;
    }
    if (!st->decided)
        run_route(st);
    return send_response(st, c);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode why)
{
    (void)c;
    srv *s = cls;
    exch_state *st = *con_cls;
    if (!st)
        return;
    double ms = bg_now_ms() - st->x.t_start;
    if (st->x.language)
        srv_metrics_request(s, &st->x, st->res.status, ms / 1000.0);
    int status = st->res.status;
    log_level lvl = status >= 500 && status != 503 ? LOG_ERROR : status >= 400 ? LOG_WARN : LOG_INFO;
    if (why != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        lvl = LOG_WARN;
    if (log_enabled(lvl)) {
        log_field f[] = {LOG_S("method", st->method), LOG_S("path", st->path),
                         LOG_I("status", st->res.status), LOG_N("ms", ms),
                         LOG_I("inputs", st->x.n_inputs), LOG_I("tokens", st->x.n_tokens),
                         LOG_S("end", why == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "ok"
                                                                                   : "aborted")};
        log_event(lvl, "request", f, sizeof f / sizeof f[0]);
    }
    if (st->counted)
        leave_flight(s);
    met_buf_free(&st->res.body);
    bg_free(st->body);
    bg_free(st);
    *con_cls = NULL;
}

static void connection_event(void *cls, struct MHD_Connection *c, void **socket_ctx,
                             enum MHD_ConnectionNotificationCode code)
{
    (void)c;
    (void)socket_ctx;
    srv *s = cls;
    long n = code == MHD_CONNECTION_NOTIFY_STARTED ? atomic_fetch_add(&s->connections, 1) + 1
                                                   : atomic_fetch_sub(&s->connections, 1) - 1;
    if (s->met.connections)
        met_set(s->met.connections, (double)n);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_event(LOG_WARN, "http", (log_field[]){LOG_S("detail", msg)}, 1);
}

/* ---- start / stop ---------------------------------------------------------------------- */

void *srv_http_start(srv *s, int *port, bgeicl_error *err)
{
    const srv_config *c = s->cfg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", c->port);
    int gai = getaddrinfo(c->host, portstr, &hints, &ai);
    if (gai != 0) {
        bg_fail(err, BGEICL_ERR_ARG, "cannot resolve --host '%s': %s", c->host, gai_strerror(gai));
        return NULL;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)c->port, NULL, NULL, answer, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, /* first, so it sees every message */
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, c->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, c->idle_timeout_s,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK,
        MHD_OPTION_NOTIFY_COMPLETED, completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, connection_event, s,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!d) {
        bg_fail(err, BGEICL_ERR_IO, "cannot listen on %s:%d (address in use, or not local?)",
                c->host, c->port);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? info->port : c->port;
    return d;
}

void srv_http_stop(void *daemon)
{
    if (daemon)
        MHD_stop_daemon(daemon);
}
