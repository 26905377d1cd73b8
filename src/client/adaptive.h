/*
 * adaptive.h - the client's batch-size controller (cl_adaptive_), the rule
 * of the performance-tuning guide.
 *
 * Data structure: a ring of the last `window` batch times, each in seconds
 * per text (a batch's request time divided by its texts, so that a smaller
 * batch is not mistaken for a faster server), and the current size.
 *
 * Rule, applied after every recorded batch once the ring holds at least
 * `min_points` times: with r = the mean of the last 3 times and w = the
 * mean of the whole ring,
 *   r > shrink_above x w  ->  size = size x shrink_factor
 *   r < grow_below  x w   ->  size = max(size x grow_factor, size + 1)
 * and the size always stays within [min, max]. Disabled, the size is fixed.
 *
 * Invariants: min <= size <= max when enabled; 0 <= n <= window <= CL_ADAPTIVE_MAX_WINDOW.
 * Thread-safety: none; the client calls it under its own lock.
 */
#ifndef CL_ADAPTIVE_H
#define CL_ADAPTIVE_H

#define CL_ADAPTIVE_MAX_WINDOW 1000
#define CL_ADAPTIVE_RECENT 3 /* "the mean of the last 3" */

typedef struct cl_adaptive_cfg {
    int enabled;
    int start, min, max;
    int window, min_points;
    double shrink_above, shrink_factor, grow_below, grow_factor;
} cl_adaptive_cfg;

typedef struct cl_adaptive {
    cl_adaptive_cfg cfg;
    int size;
    double times[CL_ADAPTIVE_MAX_WINDOW]; /* ring; times[(head + i) % window], i < n, oldest first */
    int head, n;
} cl_adaptive;

/* cfg must be valid (the client checks it); the start size is clamped into [min, max]. */
void cl_adaptive_init(cl_adaptive *a, const cl_adaptive_cfg *cfg);
/* Records one batch: `seconds` for `texts` texts. Returns the new size. */
int cl_adaptive_record(cl_adaptive *a, double seconds, int texts);
int cl_adaptive_size(const cl_adaptive *a);

#endif
