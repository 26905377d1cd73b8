/*
 * sched.h - the inference scheduler: one queue, fed by every connection,
 * drained by one thread that runs dynamic batches through the model.
 *
 * A request is a job: n tokenized sequences and an output matrix. The
 * connection thread submits the job and blocks in sched_wait; the scheduler
 * thread packs sequences from all queued jobs into batches and writes each
 * row straight into its job's output. A job never blocks a batch: a big job
 * is split over as many batches as its tokens need.
 *
 * Batch formation (sched_thread -> fill_batch):
 *   - budget: at most max_batch_tokens tokens and max_batch_seqs sequences;
 *     a single sequence over the token budget still runs, alone;
 *   - the 64 oldest jobs with sequences left are visited in order of fewest
 *     remaining tokens (older jobs beyond those wait their turn), so a short query
 *     that arrives during a long indexing request rides in the next batch
 *     instead of waiting for the whole request (shortest-remaining-first;
 *     a big job still gets whatever budget the small ones leave);
 *   - within a job, sequences go longest first (length-aware grouping): the
 *     batches of one request hold similar lengths, and the short tail
 *     sequences are the ones left to top up a batch's remaining budget.
 *
 * Admission: at most max_jobs jobs are queued or running; sched_submit
 * refuses more (SCHED_FULL -> HTTP 429) and refuses everything once
 * sched_close has been called (SCHED_CLOSED -> HTTP 503).
 *
 * Invariants (under the scheduler lock): every job in the queue has
 * handed < n sequences to batches (next < n) or still has rows in flight
 * (done < n); a job leaves the queue exactly when done == n, and its waiter
 * is woken then, once. Rows are written only by the scheduler thread,
 * outside the lock, into rows that no other batch owns.
 */
#ifndef SRV_SCHED_H
#define SRV_SCHED_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "bgeicl.h"
#include "metrics.h"

typedef struct sched sched;

typedef struct sched_config {
    size_t max_batch_tokens; /* tokens per forward pass */
    size_t max_batch_seqs;   /* sequences per forward pass */
    size_t max_jobs;         /* jobs queued or running */
    int debug_delay_ms;      /* sleep before each forward pass (tests) */
} sched_config;

/* Metric handles the scheduler updates; any may be NULL. */
typedef struct sched_metrics {
    met_series *batch_size;   /* histogram: sequences per batch */
    met_series *batch_tokens; /* histogram: tokens per batch */
    met_series *inference;    /* histogram: seconds per forward pass */
    met_series *current_batch;/* gauge: sequences in the last batch */
    met_series *queue_depth;  /* gauge: jobs queued or running */
} sched_metrics;

typedef struct sched_job {
    /* in: set by the submitter (n >= 1); the arrays must outlive sched_wait */
    const int32_t *const *ids;
    const size_t *lens;
    size_t n;
    float *out; /* n x dim, pooled vectors, not normalised */
    /* out: valid after sched_wait */
    bgeicl_code rc;
    bgeicl_error err;
    double queue_ms;     /* submit -> first sequence in a batch */
    double inference_ms; /* sum of the forward passes it took part in */
    /* private */
    size_t *order_; /* sequence indices, longest first */
    size_t next_, done_, remaining_tokens_;
    double submit_ms_;
    int started_, finished_;
    pthread_cond_t cv_;
    struct sched_job *link_;
} sched_job;

enum { SCHED_OK = 0, SCHED_FULL = 1, SCHED_CLOSED = 2, SCHED_NOMEM = 3 };

bgeicl_code sched_create(bgeicl_model *model, const sched_config *cfg, const sched_metrics *met,
                         sched **out, bgeicl_error *err);
/* Refuses new jobs; finishes the queued ones, then stops the thread. */
void sched_destroy(sched *s);

/* Queues a job. Returns SCHED_OK, SCHED_FULL, SCHED_CLOSED or SCHED_NOMEM;
 * only after SCHED_OK must the caller sched_wait. */
int sched_submit(sched *s, sched_job *job);
/* Blocks until every row of the job is written (or the job failed). */
void sched_wait(sched *s, sched_job *job);

/* Refuse new jobs from now on (draining); queued jobs still run. */
void sched_close(sched *s);
/* Jobs queued or running now. */
size_t sched_depth(sched *s);

#endif
