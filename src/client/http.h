/*
 * http.h - one HTTP connection slot of the client (cl_http_), over a libcurl
 * easy handle.
 *
 * Concurrency model: one thread per in-flight slot, each owning one
 * cl_http, rather than the curl multi interface. A slot's work is "send,
 * wait, maybe back off and send again elsewhere"; as a thread that is
 * straight-line code with a sleep, where a multi loop would need a timer
 * wheel for the backoffs and a state machine per batch. The slots are few
 * (max_concurrency, 4 by default), so threads cost nothing that matters.
 *
 * Data structure: the easy handle (whose connection cache keeps one
 * keep-alive connection per server it has talked to, so consecutive
 * requests of a slot reuse their TCP connection), prebuilt header lists,
 * and two growable buffers reused across requests: the response body and
 * the gzip'd request body. A reply's body points into the handle and stays
 * valid until the next request on it.
 *
 * Requests send `Accept-Encoding` with every encoding libcurl decodes
 * (gzip among them), `Authorization: Bearer KEY` when a key is set, and
 * gzip the request body when it is larger than CL_HTTP_GZIP_MIN bytes:
 * below that, compressing costs more CPU than the bytes it saves on a LAN.
 *
 * Thread-safety: a cl_http is used by one thread at a time.
 */
#ifndef CL_HTTP_H
#define CL_HTTP_H

#include <stdatomic.h>
#include <stddef.h>

#include "bgeicl.h"

#define CL_HTTP_GZIP_MIN (64 * 1024)
#define CL_HTTP_MAX_BODY ((size_t)512 << 20) /* a reply larger than this is refused */

typedef struct cl_http cl_http;

typedef struct cl_http_cfg {
    const char *api_key;      /* NULL = no Authorization header */
    double connect_timeout_s;
    double timeout_s;         /* one request, connect to last byte */
    long max_connections;     /* kept alive per slot: the number of servers */
} cl_http_cfg;

/* What went wrong below HTTP, if anything. */
typedef enum cl_net {
    CL_NET_OK = 0,   /* an HTTP answer arrived (any status) */
    CL_NET_CONNECT,  /* no connection, or it broke before the answer was complete */
    CL_NET_TIMEOUT,  /* timeout_s passed */
    CL_NET_ABORTED,  /* an abort flag was raised */
    CL_NET_NOMEM     /* out of memory, or the answer exceeded CL_HTTP_MAX_BODY */
} cl_net;

typedef struct cl_http_reply {
    cl_net net;
    long status;            /* HTTP status when net == CL_NET_OK */
    double retry_after_s;   /* Retry-After in seconds, -1 if absent */
    const char *body;       /* NUL-terminated, inside the handle */
    size_t len;
    double ms;              /* the request's wall time */
    char error[256];        /* libcurl's description when net != CL_NET_OK */
} cl_http_reply;

/* The request stops early (CL_NET_ABORTED) when any non-NULL flag is set. */
typedef struct cl_abort {
    const atomic_int *a, *b;
} cl_abort;

bgeicl_code cl_http_new(const cl_http_cfg *cfg, cl_http **out, bgeicl_error *err);
void cl_http_free(cl_http *h);

/* POST a JSON body. */
void cl_http_post_json(cl_http *h, const char *url, const char *body, size_t len,
                       const cl_abort *ab, cl_http_reply *r);
/* GET; timeout_s > 0 replaces the configured total timeout for this request. */
void cl_http_get(cl_http *h, const char *url, double timeout_s, const cl_abort *ab,
                 cl_http_reply *r);

#endif
