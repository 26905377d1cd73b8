/*
 * servers.c - server list, weighted selection and health (see servers.h).
 */
#include "servers.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../util/util.h"
#include "log.h"

static const char *const STATUS[CL_ST_COUNT] = {
    "unknown", "healthy", "loading", "draining", "unhealthy", "unreachable", "timeout",
    "overloaded", "error"};

const char *cl_status_name(cl_status s)
{
    return (int)s >= 0 && s < CL_ST_COUNT ? STATUS[s] : "unknown";
}

/* ---- parsing -------------------------------------------------------------------- */

void cl_server_array_free(cl_server *s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++)
        bg_free(s[i].url);
    bg_free(s);
}

/* Whether the text after the last '@' is meant as a weight: it starts like
 * a number and is not a host (no ':' or '/', at most one '.'). */
static int looks_like_weight(const char *p, size_t n)
{
    if (!n || !(strchr("0123456789+-.", p[0])))
        return 0;
    size_t dots = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ':' || p[i] == '/')
            return 0;
        dots += p[i] == '.';
    }
    return dots <= 1;
}

static bgeicl_code parse_weight(const char *p, size_t n, const char *entry, double *w,
                                bgeicl_error *err)
{
    char buf[64];
    if (n >= sizeof buf)
        return bg_fail(err, BGEICL_ERR_ARG, "servers: bad weight in '%.200s'", entry);
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end == buf || *end || errno || !isfinite(v))
        return bg_fail(err, BGEICL_ERR_ARG, "servers: weight '%s' in '%.200s' is not a number", buf,
                       entry);
    if (v <= 0 || v > CL_MAX_WEIGHT)
        return bg_fail(err, BGEICL_ERR_ARG,
                       "servers: weight %s in '%.200s' must be > 0 and at most %g", buf, entry,
                       CL_MAX_WEIGHT);
    *w = v;
    return BGEICL_OK;
}

static bgeicl_code check_url(const char *u, size_t n, const char *entry, bgeicl_error *err)
{
    size_t scheme = !strncasecmp(u, "http://", 7) ? 7 : !strncasecmp(u, "https://", 8) ? 8 : 0;
    if (!scheme || n < scheme)
        return bg_fail(err, BGEICL_ERR_ARG,
                       "servers: '%.200s' is not an http:// or https:// URL", entry);
    if (n == scheme || u[scheme] == '/' || u[scheme] == ':' || u[scheme] == '@')
        return bg_fail(err, BGEICL_ERR_ARG, "servers: '%.200s' has no host", entry);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= ' ' || u[i] == 0x7f || u[i] == '?' || u[i] == '#')
            return bg_fail(err, BGEICL_ERR_ARG,
                           "servers: '%.200s' contains a space, control character, '?' or '#'",
                           entry);
    return BGEICL_OK;
}

/* One entry s[0..n) (already trimmed) into *out. */
static bgeicl_code parse_entry(const char *s, size_t n, cl_server *out, bgeicl_error *err)
{
    char entry[256];
    snprintf(entry, sizeof entry, "%.*s", (int)(n < 255 ? n : 255), s);
    double w = 1;
    size_t un = n;
    const char *at = NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '@')
            at = s + i;
    if (at && looks_like_weight(at + 1, (size_t)(s + n - at - 1))) {
        bgeicl_code rc = parse_weight(at + 1, (size_t)(s + n - at - 1), entry, &w, err);
        if (rc != BGEICL_OK)
            return rc;
        un = (size_t)(at - s);
    }
    const char *sep = strstr(s, "://");
    size_t host = sep && (size_t)(sep - s) < un ? (size_t)(sep - s) + 3 : 0;
    while (un > host && s[un - 1] == '/')
        un--;
    bgeicl_code rc = check_url(s, un, entry, err);
    if (rc != BGEICL_OK)
        return rc;
    if (!(out->url = bg_malloc(un + 1)))
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for the server list");
    memcpy(out->url, s, un);
    out->url[un] = '\0';
    out->weight = w;
    out->healthy = 1;
    return BGEICL_OK;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bgeicl_code cl_servers_parse(const char *list, cl_server **out, size_t *count, bgeicl_error *err)
{
    *out = NULL;
    *count = 0;
    if (!list)
        return bg_fail(err, BGEICL_ERR_ARG, "servers: no server URL given");
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    if (cap > CL_MAX_SERVERS)
        return bg_fail(err, BGEICL_ERR_ARG, "servers: %zu entries; at most %d", cap, CL_MAX_SERVERS);
    cl_server *s = bg_calloc(cap, sizeof *s);
    if (!s)
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for the server list");
    size_t n = 0;
    bgeicl_code rc = BGEICL_OK;
    for (const char *p = list; rc == BGEICL_OK;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *a = p, *b = p + len;
        while (a < b && is_space(*a))
            a++;
        while (b > a && is_space(b[-1]))
            b--;
        if (a == b)
            rc = bg_fail(err, BGEICL_ERR_ARG, "servers: entry %zu of '%.200s' is empty", n + 1, list);
        else if ((rc = parse_entry(a, (size_t)(b - a), &s[n], err)) == BGEICL_OK)
            n++;
        if (!e)
            break;
        p = e + 1;
    }
    if (rc != BGEICL_OK) {
        cl_server_array_free(s, n);
        return rc;
    }
    *out = s;
    *count = n;
    return BGEICL_OK;
}

/* ---- state ---------------------------------------------------------------------------- */

bgeicl_code cl_servers_init(cl_servers *v, const char *list, bgeicl_error *err)
{
    memset(v, 0, sizeof *v);
    v->log = CL_LOG_OFF;
    bgeicl_code rc = cl_servers_parse(list, &v->s, &v->n, err);
    if (rc != BGEICL_OK)
        return rc;
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->wake, NULL);
    atomic_init(&v->stop, 0);
    return BGEICL_OK;
}

double cl_servers_effective(const cl_server *s)
{
    return s->healthy ? s->weight : s->weight / CL_UNHEALTHY_DIVISOR;
}

/* Smooth weighted round-robin among the servers `ok` admits. */
static size_t swrr(cl_servers *v, const unsigned char *ok)
{
    double total = 0;
    size_t best = v->n;
    for (size_t i = 0; i < v->n; i++) {
        if (!ok[i])
            continue;
        double w = cl_servers_effective(&v->s[i]);
        v->s[i].credit += w;
        total += w;
        if (best == v->n || v->s[i].credit > v->s[best].credit)
            best = i;
    }
    v->s[best].credit -= total;
    return best;
}

size_t cl_servers_pick(cl_servers *v, const unsigned char *tried)
{
    unsigned char ok[CL_MAX_SERVERS];
    pthread_mutex_lock(&v->lock);
    size_t any = 0, healthy = 0;
    for (size_t i = 0; i < v->n; i++) {
        ok[i] = !tried || !tried[i];
        any += ok[i];
    }
    if (tried && any) { /* a failover: healthy servers first */
        for (size_t i = 0; i < v->n; i++)
            healthy += ok[i] && v->s[i].healthy;
        for (size_t i = 0; i < v->n && healthy; i++)
            ok[i] = ok[i] && v->s[i].healthy;
    }
    if (!any)
        memset(ok, 1, v->n);
    size_t i = swrr(v, ok);
    pthread_mutex_unlock(&v->lock);
    return i;
}

int cl_servers_untried_healthy(cl_servers *v, const unsigned char *tried)
{
    int any = 0;
    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < v->n && !any; i++)
        any = !tried[i] && v->s[i].healthy;
    pthread_mutex_unlock(&v->lock);
    return any;
}

void cl_servers_note(cl_servers *v, size_t i, int ok, int down, cl_status st, double ms)
{
    pthread_mutex_lock(&v->lock);
    cl_server *s = &v->s[i];
    int was = s->healthy;
    if (ok)
        s->healthy = 1;
    else if (down)
        s->healthy = 0;
    s->status = st;
    if (ms >= 0)
        s->last_latency_ms = ms;
    int now = s->healthy;
    pthread_mutex_unlock(&v->lock);
    if (was && !now)
        cl_log(v->log, CL_LOG_WARN, "server_down", " server=%s status=%s", s->url,
               cl_status_name(st));
    else if (!was && now)
        cl_log(v->log, CL_LOG_INFO, "server_up", " server=%s", s->url);
}

void cl_servers_count(cl_servers *v, size_t i, int failed)
{
    pthread_mutex_lock(&v->lock);
    v->s[i].requests++;
    v->s[i].errors += failed != 0;
    pthread_mutex_unlock(&v->lock);
}

void cl_servers_state(cl_servers *v, size_t i, bgeicl_server_state *out)
{
    pthread_mutex_lock(&v->lock);
    const cl_server *s = &v->s[i];
    *out = (bgeicl_server_state){.url = s->url,
                                 .weight = s->weight,
                                 .effective_weight = cl_servers_effective(s),
                                 .healthy = s->healthy,
                                 .status = cl_status_name(s->status),
                                 .last_latency_ms = s->last_latency_ms,
                                 .requests = s->requests,
                                 .errors = s->errors};
    pthread_mutex_unlock(&v->lock);
}

/* ---- probes ---------------------------------------------------------------------------- */

/* The status word of a non-200 /health answer: its "status" field. */
static cl_status status_of(long code, const char *body, size_t len)
{
    if (code == 429)
        return CL_ST_OVERLOADED;
    cl_status st = CL_ST_UNHEALTHY;
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *f = j ? cJSON_GetObjectItemCaseSensitive(j, "status") : NULL;
    if (cJSON_IsString(f) && !strcmp(f->valuestring, "loading"))
        st = CL_ST_LOADING;
    else if (cJSON_IsString(f) && !strcmp(f->valuestring, "draining"))
        st = CL_ST_DRAINING;
    cJSON_Delete(j);
    return st;
}

int cl_servers_probe(cl_servers *v, size_t i, cl_http *h, const cl_abort *ab)
{
    char url[2048];
    snprintf(url, sizeof url, "%s/health", v->s[i].url);
    cl_http_reply r;
    cl_http_get(h, url, v->probe_timeout_s > 0 ? v->probe_timeout_s : 10, ab, &r);
    if (r.net == CL_NET_ABORTED)
        return 0;
    int ok = r.net == CL_NET_OK && r.status == 200;
    cl_status st = ok                        ? CL_ST_HEALTHY
                   : r.net == CL_NET_TIMEOUT ? CL_ST_TIMEOUT
                   : r.net != CL_NET_OK      ? CL_ST_UNREACHABLE
                                             : status_of(r.status, r.body, r.len);
    cl_servers_note(v, i, ok, !ok, st, r.ms);
    return ok;
}

static void *probe_loop(void *arg)
{
    cl_servers *v = arg;
    cl_abort ab = {.a = &v->stop};
    for (;;) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        double s = v->interval_s;
        t.tv_sec += (time_t)s;
        t.tv_nsec += (long)((s - (double)(time_t)s) * 1e9);
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&v->lock);
        while (!atomic_load(&v->stop))
            if (pthread_cond_timedwait(&v->wake, &v->lock, &t) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&v->lock);
        if (atomic_load(&v->stop))
            break;
        for (size_t i = 0; i < v->n && !atomic_load(&v->stop); i++)
            cl_servers_probe(v, i, v->probe, &ab);
    }
    return NULL;
}

bgeicl_code cl_servers_start_probe(cl_servers *v, double interval_s, const cl_http_cfg *hc,
                                   bgeicl_error *err)
{
    v->probe_timeout_s = hc->timeout_s < 10 ? hc->timeout_s : 10;
    if (interval_s <= 0)
        return BGEICL_OK;
    v->interval_s = interval_s;
    bgeicl_code rc = cl_http_new(hc, &v->probe, err);
    if (rc != BGEICL_OK)
        return rc;
    if (pthread_create(&v->thread, NULL, probe_loop, v) != 0) {
        cl_http_free(v->probe);
        v->probe = NULL;
        return bg_fail(err, BGEICL_ERR_NOMEM, "cannot start the health-check thread");
    }
    v->running = 1;
    return BGEICL_OK;
}

void cl_servers_free(cl_servers *v)
{
    if (!v->s)
        return;
    if (v->running) {
        pthread_mutex_lock(&v->lock);
        atomic_store(&v->stop, 1);
        pthread_cond_broadcast(&v->wake);
        pthread_mutex_unlock(&v->lock);
        pthread_join(v->thread, NULL);
    }
    cl_http_free(v->probe);
    pthread_cond_destroy(&v->wake);
    pthread_mutex_destroy(&v->lock);
    cl_server_array_free(v->s, v->n);
    memset(v, 0, sizeof *v);
}
