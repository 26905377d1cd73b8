/*
 * sched.c - the inference scheduler (see sched.h for the design).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../util/util.h"
#include "sched.h"

/* One slot of a batch: which job, which of its sequences. */
typedef struct slot {
    sched_job *job;
    size_t seq;
} slot;

struct sched {
    bgeicl_model *model;
    sched_config cfg;
    sched_metrics met;
    size_t dim;

    pthread_mutex_t lock;
    pthread_cond_t work;  /* signalled when a job arrives or on stop */
    sched_job *head;      /* queued or running jobs, in arrival order */
    size_t depth;         /* jobs in the list */
    int closed, stop;
    pthread_t thread;

    /* the batch being formed or run: touched by the scheduler thread only */
    slot *slots;
    const int32_t **ids;
    size_t *lens;
    float *rows;          /* max_batch_seqs x dim */
};

static void gauge(met_series *s, double v)
{
    if (s)
        met_set(s, v);
}

static void observe(met_series *s, double v)
{
    if (s)
        met_observe(s, v);
}

/* ---- batch formation ------------------------------------------------------- */

/* Jobs with sequences left to hand out, fewest remaining tokens first.
 * Insertion sort: the list is short (bounded by max_jobs, usually a few). */
static size_t pending_by_size(sched *s, sched_job **out, size_t cap)
{
    size_t n = 0;
    for (sched_job *j = s->head; j && n < cap; j = j->link_) {
        if (j->next_ == j->n)
            continue;
        size_t k = n++;
        while (k > 0 && out[k - 1]->remaining_tokens_ > j->remaining_tokens_) {
            out[k] = out[k - 1];
            k--;
        }
        out[k] = j;
    }
    return n;
}

/* Takes sequences into the batch under the budgets. Returns the count;
 * *tokens gets the batch's token total. Called with the lock held. */
static size_t fill_batch(sched *s, size_t *tokens)
{
    sched_job *order[64];
    size_t njobs = pending_by_size(s, order, sizeof order / sizeof order[0]);
    size_t n = 0, t = 0;
    double now = bg_now_ms();
    for (size_t k = 0; k < njobs && n < s->cfg.max_batch_seqs; k++) {
        sched_job *j = order[k];
        while (j->next_ < j->n && n < s->cfg.max_batch_seqs) {
            size_t seq = j->order_[j->next_];
            size_t len = j->lens[seq];
            if (n > 0 && t + len > s->cfg.max_batch_tokens)
                break;
            if (!j->started_) {
                j->started_ = 1;
                j->queue_ms = now - j->submit_ms_;
            }
            s->slots[n] = (slot){j, seq};
            s->ids[n] = j->ids[seq];
            s->lens[n] = len;
            n++;
            t += len;
            j->next_++;
            j->remaining_tokens_ -= len;
        }
    }
    *tokens = t;
    return n;
}

/* ---- completion ---------------------------------------------------------------- */

static void unlink_job(sched *s, sched_job *job)
{
    for (sched_job **p = &s->head; *p; p = &(*p)->link_)
        if (*p == job) {
            *p = job->link_;
            s->depth--;
            return;
        }
}

/* Copies rows out, credits time, finishes jobs whose last row came back.
 * A failed batch fails every job in it. Called with the lock held. */
static void complete_batch(sched *s, size_t n, bgeicl_code rc, const bgeicl_error *err,
                           double ms)
{
    for (size_t i = 0; i < n; i++) {
        sched_job *j = s->slots[i].job;
        if (rc == BGEICL_OK)
            memcpy(j->out + s->slots[i].seq * s->dim, s->rows + i * s->dim,
                   s->dim * sizeof(float));
        else if (j->rc == BGEICL_OK) {
            j->rc = rc;
            j->err = *err;
        }
        /* Credit each job once per batch: its slots are contiguous. */
        if (i == 0 || s->slots[i - 1].job != j)
            j->inference_ms += ms;
        if (++j->done_ == j->n) {
            unlink_job(s, j);
            j->finished_ = 1;
            pthread_cond_signal(&j->cv_);
        }
    }
    gauge(s->met.queue_depth, (double)s->depth);
}

static void *sched_thread(void *arg)
{
    sched *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        size_t tokens = 0, n = 0;
        while (!(n = fill_batch(s, &tokens)) && !s->stop)
            pthread_cond_wait(&s->work, &s->lock);
        if (n == 0)
            break; /* stopping, and nothing left to hand out */
        pthread_mutex_unlock(&s->lock);

        if (s->cfg.debug_delay_ms > 0)
            nanosleep(&(struct timespec){s->cfg.debug_delay_ms / 1000,
                                         (long)(s->cfg.debug_delay_ms % 1000) * 1000000L},
                      NULL);
        bgeicl_error err = {BGEICL_OK, ""};
        double t0 = bg_now_ms();
        bgeicl_code rc = bgeicl_embed_ids(s->model, s->ids, s->lens, n, BGEICL_NO_NORMALIZE,
                                          s->rows, NULL, &err);
        double ms = bg_now_ms() - t0;
        observe(s->met.batch_size, (double)n);
        observe(s->met.batch_tokens, (double)tokens);
        observe(s->met.inference, ms / 1000.0);
        gauge(s->met.current_batch, (double)n);

        pthread_mutex_lock(&s->lock);
        complete_batch(s, n, rc, &err, ms);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- public ---------------------------------------------------------------------- */

bgeicl_code sched_create(bgeicl_model *model, const sched_config *cfg, const sched_metrics *met,
                         sched **out, bgeicl_error *err)
{
    *out = NULL;
    if (cfg->max_batch_tokens == 0 || cfg->max_batch_seqs == 0 || cfg->max_jobs == 0)
        return bg_fail(err, BGEICL_ERR_ARG, "scheduler budgets must be positive");
    sched *s = bg_calloc(1, sizeof *s);
    if (!s)
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for the scheduler");
    s->model = model;
    s->cfg = *cfg;
    if (met)
        s->met = *met;
    s->dim = bgeicl_model_dim(model);
    size_t m = cfg->max_batch_seqs;
    s->slots = bg_malloc(m * sizeof *s->slots);
    s->ids = bg_malloc(m * sizeof *s->ids);
    s->lens = bg_malloc(m * sizeof *s->lens);
    s->rows = bg_malloc(m * s->dim * sizeof *s->rows);
    if (!s->slots || !s->ids || !s->lens || !s->rows) {
        sched_destroy(s);
        return bg_fail(err, BGEICL_ERR_NOMEM, "out of memory for batches of %zu sequences", m);
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->work, NULL);
    if (pthread_create(&s->thread, NULL, sched_thread, s) != 0) {
        pthread_cond_destroy(&s->work);
        pthread_mutex_destroy(&s->lock);
        s->thread = 0;
        bg_free(s->slots);
        bg_free(s->ids);
        bg_free(s->lens);
        bg_free(s->rows);
        bg_free(s);
        return bg_fail(err, BGEICL_ERR_NOMEM, "cannot start the scheduler thread");
    }
    *out = s;
    return BGEICL_OK;
}

void sched_destroy(sched *s)
{
    if (!s)
        return;
    if (s->thread) {
        pthread_mutex_lock(&s->lock);
        s->closed = 1;
        s->stop = 1;
        pthread_cond_signal(&s->work);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
        pthread_cond_destroy(&s->work);
        pthread_mutex_destroy(&s->lock);
    }
    bg_free(s->slots);
    bg_free(s->ids);
    bg_free(s->lens);
    bg_free(s->rows);
    bg_free(s);
}

/* Longest first; ties by index so that the order is deterministic. */
static int by_length_desc(const void *a, const void *b, void *lens_)
{
    const size_t *lens = lens_;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (lens[x] != lens[y])
        return lens[x] < lens[y] ? 1 : -1;
    return x < y ? -1 : x > y;
}

int sched_submit(sched *s, sched_job *job)
{
    job->rc = BGEICL_OK;
    job->err.code = BGEICL_OK;
    job->err.message[0] = '\0';
    job->queue_ms = job->inference_ms = 0;
    job->next_ = job->done_ = 0;
    job->started_ = job->finished_ = 0;
    job->link_ = NULL;
    job->remaining_tokens_ = 0;
    for (size_t i = 0; i < job->n; i++)
        job->remaining_tokens_ += job->lens[i];
    if (job->n == 0)
        return SCHED_NOMEM; /* callers never submit empty jobs */
    job->order_ = bg_malloc(job->n * sizeof *job->order_);
    if (!job->order_)
        return SCHED_NOMEM;
    for (size_t i = 0; i < job->n; i++)
        job->order_[i] = i;
    qsort_r(job->order_, job->n, sizeof *job->order_, by_length_desc, (void *)job->lens);

    pthread_mutex_lock(&s->lock);
    int rc = s->closed ? SCHED_CLOSED : s->depth >= s->cfg.max_jobs ? SCHED_FULL : SCHED_OK;
    if (rc == SCHED_OK) {
        pthread_cond_init(&job->cv_, NULL);
        job->submit_ms_ = bg_now_ms();
        sched_job **tail = &s->head;
        while (*tail)
            tail = &(*tail)->link_;
        *tail = job;
        s->depth++;
        gauge(s->met.queue_depth, (double)s->depth);
        pthread_cond_signal(&s->work);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc != SCHED_OK) {
        bg_free(job->order_);
        job->order_ = NULL;
    }
    return rc;
}

void sched_wait(sched *s, sched_job *job)
{
    pthread_mutex_lock(&s->lock);
    while (!job->finished_)
        pthread_cond_wait(&job->cv_, &s->lock);
    pthread_mutex_unlock(&s->lock);
    pthread_cond_destroy(&job->cv_);
    bg_free(job->order_);
    job->order_ = NULL;
}

void sched_close(sched *s)
{
    pthread_mutex_lock(&s->lock);
    s->closed = 1;
    pthread_mutex_unlock(&s->lock);
}

size_t sched_depth(sched *s)
{
    pthread_mutex_lock(&s->lock);
    size_t d = s->depth;
    pthread_mutex_unlock(&s->lock);
    return d;
}
