/*
 * metrics.c - the client's counters (see metrics.h).
 */
#include "metrics.h"

#include <string.h>

void cl_metrics_init(cl_metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
}

void cl_metrics_destroy(cl_metrics *m) { pthread_mutex_destroy(&m->lock); }

void cl_metrics_batch(cl_metrics *m, int texts, double seconds)
{
    pthread_mutex_lock(&m->lock);
    m->requests++;
    m->texts += (uint64_t)texts;
    m->response_time_s += seconds;
    if (m->n < BGEICL_RECENT_BATCHES) {
        m->sizes[(m->head + m->n) % BGEICL_RECENT_BATCHES] = texts;
        m->n++;
    } else {
        m->sizes[m->head] = texts;
        m->head = (m->head + 1) % BGEICL_RECENT_BATCHES;
    }
    pthread_mutex_unlock(&m->lock);
}

void cl_metrics_call(cl_metrics *m, double seconds)
{
    pthread_mutex_lock(&m->lock);
    m->total_time_s += seconds;
    pthread_mutex_unlock(&m->lock);
}

void cl_metrics_retry(cl_metrics *m, int failover)
{
    pthread_mutex_lock(&m->lock);
    m->retries++;
    m->failovers += failover != 0;
    pthread_mutex_unlock(&m->lock);
}

void cl_metrics_error(cl_metrics *m)
{
    pthread_mutex_lock(&m->lock);
    m->errors++;
    pthread_mutex_unlock(&m->lock);
}

void cl_metrics_get(cl_metrics *m, bgeicl_client_metrics *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&m->lock);
    out->total_requests = m->requests;
    out->total_texts = m->texts;
    out->total_time = m->total_time_s;
    out->avg_texts_per_second = m->total_time_s > 0 ? (double)m->texts / m->total_time_s : 0;
    out->avg_response_time = m->requests ? m->response_time_s / (double)m->requests : 0;
    for (int i = 0; i < m->n; i++)
        out->recent_batch_sizes[i] = m->sizes[(m->head + i) % BGEICL_RECENT_BATCHES];
    out->n_recent = (size_t)m->n;
    out->retries = m->retries;
    out->failovers = m->failovers;
    out->errors = m->errors;
    pthread_mutex_unlock(&m->lock);
}
