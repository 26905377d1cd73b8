/*
 * metrics.h - a thread-safe Prometheus metrics registry (counters, gauges,
 * histograms, with labels) and its exposition as Prometheus text format
 * 0.0.4 or as one JSON object.
 *
 * Data structure: a registry holds a singly linked list of families in
 * registration order; each family holds a singly linked list of series in
 * creation order. Both lists only grow, and nodes are freed only by
 * met_registry_destroy, so a met_series * stays valid for the registry's
 * lifetime: callers look a series up once and keep the handle.
 *
 * Locking: one mutex per registry guards the lists. Registering, looking up
 * or creating a series, and rendering walk the lists under it. Updates
 * (met_add, met_set, met_observe) take no lock: counter and gauge values and
 * histogram sums are doubles kept as atomic uint64 bit patterns (add is a
 * CAS loop), and histogram buckets are atomic per-bucket counts (not
 * cumulative; rendering accumulates). A scrape racing an observation may see
 * it in a bucket but not yet in _sum; _count is derived from the buckets, so
 * _count always equals the +Inf bucket as Prometheus requires.
 *
 * Lookup is a linear scan of a family's series (O(series)); fine for the
 * low-cardinality labels of CONTRACT.md, and hot paths keep handles anyway.
 */
#ifndef MET_METRICS_H
#define MET_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "../util/util.h"

#define MET_MAX_LABELS 4
#define MET_MAX_BUCKETS 64

typedef enum met_kind { MET_COUNTER, MET_GAUGE, MET_HISTOGRAM } met_kind;

typedef struct met_registry met_registry;
typedef struct met_family met_family;
typedef struct met_series met_series;

/* ---- growable output string --------------------------------------------- */

/* data is NUL-terminated whenever len > 0. An append that cannot allocate
 * leaves the buffer as it was and sets oom; later appends are no-ops, so a
 * renderer checks once at the end (met_buf_status). */
typedef struct met_buf {
    char *data;
    size_t len, cap;
    int oom;
} met_buf;

void met_buf_init(met_buf *b);
void met_buf_free(met_buf *b);
void met_buf_append(met_buf *b, const char *s, size_t n);
void met_buf_puts(met_buf *b, const char *s);
void met_buf_printf(met_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* BGEICL_ERR_NOMEM if any append failed since init, else BGEICL_OK. */
bgeicl_code met_buf_status(const met_buf *b);

/* Formats v for exposition: integers as integers ("3", "-0"), others in the
 * shortest %.15g..%.17g form that round-trips, "+Inf", "-Inf", "NaN".
 * out needs 32 bytes. Returns out. */
char *met_fmt_double(char *out, double v);

/* ---- registry ------------------------------------------------------------ */

bgeicl_code met_registry_create(met_registry **out);
void met_registry_destroy(met_registry *r);

/* Registers a family. name: [a-zA-Z_:][a-zA-Z0-9_:]*; labels: up to
 * MET_MAX_LABELS names [a-zA-Z_][a-zA-Z0-9_]*, distinct, not starting with
 * "__" (reserved), and not "le" for histograms. bounds: histogram bucket
 * upper bounds, finite and strictly increasing, 1..MET_MAX_BUCKETS (+Inf is
 * implied); NULL/0 for other kinds. help may be NULL (no # HELP line). A bad argument or a
 * duplicate name is BGEICL_ERR_ARG. A family without labels gets its one
 * series at once, so it is exposed as 0 before the first update. */
bgeicl_code met_register(met_registry *r, met_kind kind, const char *name, const char *help,
                         const char *const *labels, int nlabels, const double *bounds,
                         int nbounds, met_family **out, bg_err *err);

/* Finds or creates the series with these label values (one per label name,
 * in order, valid UTF-8). A wrong count is BGEICL_ERR_ARG. */
bgeicl_code met_series_get(met_family *f, const char *const *values, int nvalues,
                           met_series **out, bg_err *err);
/* Convenience: label values as NULL-terminated varargs, e.g.
 * met_get(f, "bge-in-icl", "python", "success", NULL). NULL on any error. */
met_series *met_get(met_family *f, ...);

/* ---- updates: lock-free ------------------------------------------------- */

/* Counter or gauge. A counter ignores negative and NaN increments. */
void met_add(met_series *s, double v);
/* Gauge only (ignored for other kinds). */
void met_set(met_series *s, double v);
/* Histogram only; NaN is ignored. Bucket i counts v <= bounds[i]. */
void met_observe(met_series *s, double v);

/* ---- reads ---------------------------------------------------------------- */

/* Counter/gauge value; for a histogram, its sum. */
double met_value(const met_series *s);
uint64_t met_histogram_count(const met_series *s);
/* Estimates the q-quantile the way Prometheus' histogram_quantile does:
 * rank = q * count; find the first bucket whose cumulative count reaches
 * rank, and interpolate linearly between that bucket's lower bound (the
 * previous bound, or 0 for the first bucket) and its upper bound, by how far
 * rank lies into the bucket's own count. If the rank falls in the +Inf
 * bucket, returns the highest finite bound; if the first bound is <= 0 and
 * the rank falls there, returns that bound. NaN for no observations, a
 * non-histogram, or q NaN; -Inf for q < 0; +Inf for q > 1. */
double met_histogram_quantile(const met_series *s, double q);

/* ---- process metrics ------------------------------------------------------ */

typedef struct met_process {
    double cpu_seconds;    /* utime+stime of /proc/self/stat over CLK_TCK */
    double resident_bytes; /* rss pages * page size */
    double open_fds;       /* entries of /proc/self/fd */
    double start_time;     /* /proc/stat btime + starttime / CLK_TCK, Unix seconds */
} met_process;

/* Reads /proc; BGEICL_ERR_IO if it cannot. */
bgeicl_code met_process_read(met_process *p, bg_err *err);
/* Registers process_cpu_seconds_total, process_resident_memory_bytes,
 * process_open_fds and process_start_time_seconds; each render refreshes
 * them from /proc (keeping the last values if /proc cannot be read). */
bgeicl_code met_register_process(met_registry *r, bg_err *err);

/* ---- exposition ------------------------------------------------------------ */

/* Appends Prometheus text format 0.0.4 (Content-Type
 * "text/plain; version=0.0.4"): # HELP and # TYPE once per family, families
 * in registration order, series in creation order. BGEICL_ERR_NOMEM on
 * allocation failure (out then holds a truncated text; free it as usual). */
bgeicl_code met_render_text(met_registry *r, met_buf *out);
/* Appends one JSON object: {"name":{"type":"counter","help":"...","series":
 * [{"labels":{"k":"v"},"value":1}]}, ...}; histogram series have "buckets":
 * [{"le":"0.1","count":1},...,{"le":"+Inf","count":3}] (cumulative), "sum"
 * and "count". Non-finite values are null. To add members, drop the final
 * '}' (out->len - 1) and append ",\"key\":...}". */
bgeicl_code met_render_json(met_registry *r, met_buf *out);

#endif
