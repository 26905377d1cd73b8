/*
 * metrics.h - the client's counters (cl_metrics_), the performance-tuning
 * guide's get_performance_metrics() and the retry counts.
 *
 * Data structure: plain counters and sums, and a ring of the last
 * BGEICL_RECENT_BATCHES batch sizes (sizes[(head + i) % R], i < n, oldest
 * first), all guarded by one mutex; every update is a few additions.
 */
#ifndef CL_METRICS_H
#define CL_METRICS_H

#include <pthread.h>
#include <stdint.h>

#include "bgeicl.h"

typedef struct cl_metrics {
    pthread_mutex_t lock;
    uint64_t requests, texts, retries, failovers, errors;
    double total_time_s, response_time_s;
    int sizes[BGEICL_RECENT_BATCHES];
    int head, n;
} cl_metrics;

void cl_metrics_init(cl_metrics *m);
void cl_metrics_destroy(cl_metrics *m);
/* A successful request of `texts` texts that took `seconds`. */
void cl_metrics_batch(cl_metrics *m, int texts, double seconds);
void cl_metrics_call(cl_metrics *m, double seconds);
void cl_metrics_retry(cl_metrics *m, int failover);
void cl_metrics_error(cl_metrics *m);
/* Fills every field but cache_hit_rate, current_batch_size and
 * adaptive_batching_enabled, which the client knows. */
void cl_metrics_get(cl_metrics *m, bgeicl_client_metrics *out);

#endif
