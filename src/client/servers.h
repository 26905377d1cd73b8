/*
 * servers.h - the servers a client talks to (cl_servers_): the URL list,
 * weighted selection, health state and the background health probe.
 *
 * List syntax: "URL[@WEIGHT][,URL[@WEIGHT]...]". A URL is http:// or
 * https:// with a host; a trailing '/' is dropped. WEIGHT is a positive
 * number (default 1) after the last '@', which must be all number, so
 * that a URL's own user part ("http://user@host") is left alone.
 *
 * Data structure: an array of servers, each with its URL, its configured
 * weight, a smooth weighted round-robin credit, its health (a flag and the
 * last status word), the latency of its last probe or request, and counts.
 * One mutex guards every field that changes.
 *
 * Selection: smooth weighted round-robin (nginx's): every candidate's
 * credit grows by its effective weight, the largest credit wins and pays
 * back the sum of the candidates' weights. Over time each server gets its
 * share of picks, spread out rather than in runs. The effective weight is
 * the weight, or weight/1000 while the server is unhealthy, so a server
 * that went down still gets a rare pick and comes back on its own when it
 * answers. Failover picks exclude the servers a batch already tried, and
 * prefer healthy ones; when every server was tried, all are candidates.
 *
 * Health: a server becomes unhealthy on a connection error or a 503, and
 * healthy again on a successful probe or request; each change is logged. A background thread
 * probes every server's /health each interval_s, and stops at once
 * (its condition variable is signalled and a running probe aborted) on
 * cl_servers_free.
 *
 * Invariants: n >= 1; every weight > 0; status is an index into a static
 * table, so the strings handed out live forever.
 */
#ifndef CL_SERVERS_H
#define CL_SERVERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bgeicl.h"
#include "http.h"

#define CL_MAX_SERVERS 64
#define CL_MAX_WEIGHT 1e6
#define CL_UNHEALTHY_DIVISOR 1000.0

typedef enum cl_status {
    CL_ST_UNKNOWN = 0, /* not probed or used yet */
    CL_ST_HEALTHY,
    CL_ST_LOADING,
    CL_ST_DRAINING,
    CL_ST_UNHEALTHY,   /* /health said so, or answered another non-200 */
    CL_ST_UNREACHABLE,
    CL_ST_TIMEOUT,
    CL_ST_OVERLOADED,  /* 429 */
    CL_ST_ERROR,       /* a 5xx other than 503, or a malformed reply */
    CL_ST_COUNT
} cl_status;

const char *cl_status_name(cl_status s);

typedef struct cl_server {
    char *url;
    double weight;
    double credit;
    int healthy;
    cl_status status;
    double last_latency_ms;
    uint64_t requests, errors;
} cl_server;

typedef struct cl_servers {
    pthread_mutex_t lock;
    cl_server *s;
    size_t n;
    int log;          /* log.h level: health changes are logged */
    /* background probe */
    pthread_t thread;
    int running;
    pthread_cond_t wake;
    atomic_int stop;
    double interval_s, probe_timeout_s;
    cl_http *probe;
} cl_servers;

/* Parses `list` into s[] (bg_malloc'd, each url too). Errors name the entry. */
bgeicl_code cl_servers_parse(const char *list, cl_server **out, size_t *n, bgeicl_error *err);
void cl_server_array_free(cl_server *s, size_t n);

bgeicl_code cl_servers_init(cl_servers *v, const char *list, bgeicl_error *err);
/* Starts the probe thread (interval_s > 0) with its own connection. */
bgeicl_code cl_servers_start_probe(cl_servers *v, double interval_s, const cl_http_cfg *hc,
                                   bgeicl_error *err);
void cl_servers_free(cl_servers *v);

/* The next server. `tried` (n flags, may be NULL) lists servers to avoid. */
size_t cl_servers_pick(cl_servers *v, const unsigned char *tried);
/* Whether a healthy server is left that `tried` does not list. */
int cl_servers_untried_healthy(cl_servers *v, const unsigned char *tried);
/* The effective weight of server i; the caller holds the lock. */
double cl_servers_effective(const cl_server *s);

/* Records the outcome of a request or probe on server i: ok makes it
 * healthy; !ok with down set makes it unhealthy. st is the new status. */
void cl_servers_note(cl_servers *v, size_t i, int ok, int down, cl_status st, double ms);
/* Counts an embedding request sent to server i, and whether it failed. */
void cl_servers_count(cl_servers *v, size_t i, int failed);

/* Probes server i's /health now with connection h; returns 1 if healthy. */
int cl_servers_probe(cl_servers *v, size_t i, cl_http *h, const cl_abort *ab);

void cl_servers_state(cl_servers *v, size_t i, bgeicl_server_state *out);

#endif
