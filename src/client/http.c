/*
 * http.c - one connection slot over a libcurl easy handle (see http.h).
 */
#include "http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "../util/util.h"

struct cl_http {
    CURL *easy;
    struct curl_slist *hdr_json, *hdr_gzip, *hdr_get;
    double timeout_s;
    char *buf;         /* the response body, NUL-terminated */
    size_t len, cap;
    int overflow;      /* the write callback refused data */
    unsigned char *gz; /* the gzip'd request body */
    size_t gz_cap;
    double retry_after_s;
    cl_abort abort;
    char errbuf[CURL_ERROR_SIZE];
};

/* curl_global_init is not thread-safe in every libcurl; run it once. */
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;
static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- callbacks ---------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    cl_http *h = arg;
    size_t n = size * nmemb;
    if (h->len + n + 1 > h->cap) {
        size_t cap = h->cap ? h->cap : 64 * 1024;
        while (cap < h->len + n + 1)
            cap *= 2;
        char *nb = cap <= CL_HTTP_MAX_BODY + 1 ? bg_realloc(h->buf, cap) : NULL;
        if (!nb) {
            h->overflow = 1;
            return 0;
        }
        h->buf = nb;
        h->cap = cap;
    }
    memcpy(h->buf + h->len, data, n);
    h->len += n;
    h->buf[h->len] = '\0';
    return n;
}

/* Keeps Retry-After when it is a number of seconds. (The HTTP-date form
 * is ignored: servers that throttle send seconds, and the backoff still
 * applies.) */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    cl_http *h = arg;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && !strncasecmp(data, name, sizeof name - 1)) {
        char v[32];
        size_t k = n - (sizeof name - 1);
        if (k >= sizeof v)
            k = sizeof v - 1;
        memcpy(v, data + sizeof name - 1, k);
        v[k] = '\0';
        char *end;
        double s = strtod(v, &end);
        while (*end == ' ' || *end == '\r' || *end == '\n' || *end == '\t')
            end++;
        if (end != v && *end == '\0' && s >= 0 && s < 86400)
            h->retry_after_s = s;
    }
    return n;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    const cl_abort *ab = &((cl_http *)arg)->abort;
    return (ab->a && atomic_load(ab->a)) || (ab->b && atomic_load(ab->b));
}

/* ---- handle ------------------------------------------------------------------------ */

static struct curl_slist *headers(const char *auth, const char *const *more, size_t n)
{
    struct curl_slist *l = NULL, *t;
    for (size_t i = 0; i < n; i++) {
        if (!(t = curl_slist_append(l, more[i])))
            goto fail;
        l = t;
    }
    if (auth) {
        if (!(t = curl_slist_append(l, auth)))
            goto fail;
        l = t;
    }
    return l;
fail:
    curl_slist_free_all(l);
    return NULL;
}

static bgeicl_code build_headers(cl_http *h, const char *api_key, bgeicl_error *err)
{
    char *auth = NULL;
    if (api_key) {
        size_t n = strlen(api_key) + 32;
        if (!(auth = bg_malloc(n)))
            return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for the request headers");
        snprintf(auth, n, "Authorization: Bearer %s", api_key);
    }
    /* "Expect:" turns off curl's 100-continue round trip for large bodies. */
    const char *json[] = {"Content-Type: application/json", "Expect:"};
    const char *gz[] = {"Content-Type: application/json", "Content-Encoding: gzip", "Expect:"};
    h->hdr_json = headers(auth, json, 2);
    h->hdr_gzip = headers(auth, gz, 3);
    h->hdr_get = auth ? headers(auth, NULL, 0) : NULL;
    int ok = h->hdr_json && h->hdr_gzip && (!auth || h->hdr_get);
    bg_free(auth);
    return ok ? BGEICL_OK
              : bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for the request headers");
}

static void set_options(cl_http *h, const cl_http_cfg *cfg)
{
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for timeouts */
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(cfg->connect_timeout_s * 1000));
    curl_easy_setopt(e, CURLOPT_MAXCONNECTS, cfg->max_connections > 0 ? cfg->max_connections : 5L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, h);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "bgeicl-client/" BGEICL_VERSION);
}

bgeicl_code cl_http_new(const cl_http_cfg *cfg, cl_http **out, bgeicl_error *err)
{
    *out = NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return bg_fail(err, BGEICL_ERR_NOMEM, "libcurl failed to initialise: %s",
                       curl_easy_strerror(global_rc));
    cl_http *h = bg_calloc(1, sizeof *h);
    if (!h)
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for an HTTP connection");
    h->timeout_s = cfg->timeout_s;
    if (!(h->easy = curl_easy_init())) {
        bg_free(h);
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for a libcurl handle");
    }
    bgeicl_code rc = build_headers(h, cfg->api_key, err);
    if (rc != BGEICL_OK) {
        cl_http_free(h);
        return rc;
    }
    set_options(h, cfg);
    *out = h;
    return BGEICL_OK;
}

void cl_http_free(cl_http *h)
{
    if (!h)
        return;
    curl_easy_cleanup(h->easy);
    curl_slist_free_all(h->hdr_json);
    curl_slist_free_all(h->hdr_gzip);
    curl_slist_free_all(h->hdr_get);
    bg_free(h->buf);
    bg_free(h->gz);
    bg_free(h);
}

/* ---- requests ------------------------------------------------------------------------ */

/* gzip's body into h->gz; returns its length, or 0 on failure (then the
 * body goes uncompressed). */
static size_t gzip_body(cl_http *h, const char *body, size_t len)
{
    size_t need = len + len / 1000 + 64; /* deflateBound for gzip, with room */
    if (need > h->gz_cap) {
        unsigned char *n = bg_realloc(h->gz, need);
        if (!n)
            return 0;
        h->gz = n;
        h->gz_cap = need;
    }
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return 0;
    z.next_in = (unsigned char *)body;
    z.avail_in = (uInt)len;
    z.next_out = h->gz;
    z.avail_out = (uInt)h->gz_cap;
    int zr = deflate(&z, Z_FINISH);
    size_t out = z.total_out;
    deflateEnd(&z);
    return zr == Z_STREAM_END ? out : 0;
}

static void perform(cl_http *h, const cl_abort *ab, cl_http_reply *r)
{
    memset(r, 0, sizeof *r);
    h->len = 0;
    h->overflow = 0;
    h->retry_after_s = -1;
    h->errbuf[0] = '\0';
    h->abort = ab ? *ab : (cl_abort){0};
    if (h->buf)
        h->buf[0] = '\0';
    double t0 = bg_now_ms();
    CURLcode c = curl_easy_perform(h->easy);
    r->ms = bg_now_ms() - t0;
    r->retry_after_s = h->retry_after_s;
    r->body = h->buf ? h->buf : "";
    r->len = h->len;
    if (c == CURLE_OK) {
        curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &r->status);
        return;
    }
    r->net = c == CURLE_OPERATION_TIMEDOUT      ? CL_NET_TIMEOUT
             : c == CURLE_ABORTED_BY_CALLBACK   ? CL_NET_ABORTED
             : h->overflow || c == CURLE_OUT_OF_MEMORY ? CL_NET_NOMEM
                                                : CL_NET_CONNECT;
    snprintf(r->error, sizeof r->error, "%s", h->errbuf[0] ? h->errbuf : curl_easy_strerror(c));
    if (h->overflow)
        snprintf(r->error, sizeof r->error, "the reply is too large or memory ran out");
}

static void set_timeout(cl_http *h, double s)
{
    curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, (long)((s > 0 ? s : h->timeout_s) * 1000));
}

void cl_http_post_json(cl_http *h, const char *url, const char *body, size_t len,
                       const cl_abort *ab, cl_http_reply *r)
{
    size_t gz = len > CL_HTTP_GZIP_MIN ? gzip_body(h, body, len) : 0;
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 0L);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, gz ? (const char *)h->gz : body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(gz ? gz : len));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, gz ? h->hdr_gzip : h->hdr_json);
    set_timeout(h, 0);
    perform(h, ab, r);
}

void cl_http_get(cl_http *h, const char *url, double timeout_s, const cl_abort *ab,
                 cl_http_reply *r)
{
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->hdr_get);
    set_timeout(h, timeout_s);
    perform(h, ab, r);
}
