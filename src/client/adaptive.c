/*
 * adaptive.c - the batch-size controller (see adaptive.h).
 */
#include "adaptive.h"

static int clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void cl_adaptive_init(cl_adaptive *a, const cl_adaptive_cfg *cfg)
{
    a->cfg = *cfg;
    if (a->cfg.window > CL_ADAPTIVE_MAX_WINDOW)
        a->cfg.window = CL_ADAPTIVE_MAX_WINDOW;
    if (a->cfg.window < 1)
        a->cfg.window = 1;
    a->size = cfg->enabled ? clamp(cfg->start, cfg->min, cfg->max) : cfg->start;
    a->head = a->n = 0;
}

int cl_adaptive_size(const cl_adaptive *a) { return a->size; }

/* The mean of the newest k recorded times. */
static double mean_last(const cl_adaptive *a, int k)
{
    double s = 0;
    for (int i = a->n - k; i < a->n; i++)
        s += a->times[(a->head + i) % a->cfg.window];
    return s / k;
}

static void push(cl_adaptive *a, double t)
{
    int w = a->cfg.window;
    if (a->n < w) {
        a->times[(a->head + a->n) % w] = t;
        a->n++;
    } else {
        a->times[a->head] = t;
        a->head = (a->head + 1) % w;
    }
}

int cl_adaptive_record(cl_adaptive *a, double seconds, int texts)
{
    if (!a->cfg.enabled || texts <= 0 || !(seconds >= 0))
        return a->size;
    push(a, seconds / texts);
    if (a->n < a->cfg.min_points)
        return a->size;
    int k = a->n < CL_ADAPTIVE_RECENT ? a->n : CL_ADAPTIVE_RECENT;
    double recent = mean_last(a, k), all = mean_last(a, a->n);
    int size = a->size;
    if (recent > a->cfg.shrink_above * all) {
        size = (int)(size * a->cfg.shrink_factor);
    } else if (recent < a->cfg.grow_below * all) {
        int grown = (int)(size * a->cfg.grow_factor);
        size = grown > size ? grown : size + 1;
    }
    a->size = clamp(size, a->cfg.min, a->cfg.max);
    return a->size;
}
