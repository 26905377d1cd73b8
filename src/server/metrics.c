/*
 * metrics.c - the Prometheus metrics registry: families, series, lock-free
 * updates, text/JSON exposition, and the process metrics read from /proc.
 * See metrics.h for the data structure and the locking rules.
 */
#include "metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct met_series {
    met_series *next;
    const met_family *fam;
    char *values[MET_MAX_LABELS];
    _Atomic(uint64_t) bits;      /* value, or a histogram's sum: a double's bits */
    _Atomic(uint64_t) counts[];  /* histogram: nbounds + 1 buckets, last is +Inf */
};

/* Which met_process field a process family shows (0: an ordinary family). */
enum { PROC_NONE, PROC_CPU, PROC_RSS, PROC_FDS, PROC_START };

struct met_family {
    met_family *next;
    met_registry *reg;
    met_kind kind;
    int proc;
    char *name, *help; /* help may be NULL */
    int nlabels;
    char *labels[MET_MAX_LABELS];
    int nbounds;
    double *bounds; /* nbounds finite upper bounds, strictly increasing */
    met_series *head, *tail;
};

struct met_registry {
    pthread_mutex_t mu; /* guards the family list and every series list */
    met_family *head, *tail;
    int has_process;
};

/* ---- growable output string --------------------------------------------- */

void met_buf_init(met_buf *b) { memset(b, 0, sizeof *b); }

void met_buf_free(met_buf *b)
{
    bg_free(b->data);
    met_buf_init(b);
}

/* Makes room for n more bytes plus a NUL; sets oom on failure. */
static int buf_reserve(met_buf *b, size_t n)
{
    if (b->oom)
        return 0;
    if (b->len + n + 1 <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *d = bg_realloc(b->data, cap);
    if (!d) {
        b->oom = 1;
        return 0;
    }
    b->data = d;
    b->cap = cap;
    return 1;
}

void met_buf_append(met_buf *b, const char *s, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void met_buf_puts(met_buf *b, const char *s) { met_buf_append(b, s, strlen(s)); }

void met_buf_printf(met_buf *b, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        met_buf_append(b, small, (size_t)n);
        return;
    }
    if (!buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

bgeicl_code met_buf_status(const met_buf *b) { return b->oom ? BGEICL_ERR_NOMEM : BGEICL_OK; }

char *met_fmt_double(char *out, double v)
{
    if (isnan(v))
        strcpy(out, "NaN");
    else if (isinf(v))
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(out, 32, "%.0f", v);
    else
        /* Shortest of 15..17 significant digits that reads back exactly:
         * 0.1 prints as "0.1", not "0.10000000000000001". */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, 32, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                break;
        }
    return out;
}

/* ---- atomic doubles ------------------------------------------------------ */

static uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* Relaxed order suffices: a metric is an independent statistic, and nothing
 * is published through it. */
static void atomic_add_double(_Atomic(uint64_t) *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, d2u(u2d(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static double load_double(const _Atomic(uint64_t) *p)
{
    return u2d(atomic_load_explicit((_Atomic(uint64_t) *)p, memory_order_relaxed));
}

/* ---- series ---------------------------------------------------------------- */

static void series_free(met_series *s)
{
    for (int i = 0; i < MET_MAX_LABELS; i++)
        bg_free(s->values[i]);
    bg_free(s);
}

static met_series *series_new(const met_family *f, const char *const *values)
{
    size_t nb = f->kind == MET_HISTOGRAM ? (size_t)f->nbounds + 1 : 0;
    met_series *s = bg_calloc(1, sizeof *s + nb * sizeof s->counts[0]);
    if (!s)
        return NULL;
    s->fam = f;
    atomic_init(&s->bits, d2u(0.0));
    for (size_t i = 0; i < nb; i++)
        atomic_init(&s->counts[i], 0);
    for (int i = 0; i < f->nlabels; i++) {
        s->values[i] = bg_strdup(values[i]);
        if (!s->values[i]) {
            series_free(s);
            return NULL;
        }
    }
    return s;
}

static void series_append(met_family *f, met_series *s)
{
    if (f->tail)
        f->tail->next = s;
    else
        f->head = s;
    f->tail = s;
}

static int values_match(const met_family *f, const met_series *s, const char *const *values)
{
    for (int i = 0; i < f->nlabels; i++)
        if (strcmp(s->values[i], values[i]) != 0)
            return 0;
    return 1;
}

bgeicl_code met_series_get(met_family *f, const char *const *values, int nvalues,
                           met_series **out, bg_err *err)
{
    *out = NULL;
    if (nvalues != f->nlabels)
        return bg_fail(err, BGEICL_ERR_ARG, "metric %s: %d label values given, %d expected",
                       f->name, nvalues, f->nlabels);
    for (int i = 0; i < nvalues; i++)
        if (!values[i] || !bg_utf8_valid(values[i], strlen(values[i])))
            return bg_fail(err, BGEICL_ERR_ARG, "metric %s: label %s: value is %s", f->name,
                           f->labels[i], values[i] ? "not valid UTF-8" : "NULL");
    pthread_mutex_lock(&f->reg->mu);
    met_series *s = f->head;
    while (s && !values_match(f, s, values))
        s = s->next;
    if (!s) {
        s = series_new(f, values);
        if (s)
            series_append(f, s);
    }
    pthread_mutex_unlock(&f->reg->mu);
    if (!s)
        return bg_fail(err, BGEICL_ERR_NOMEM, "metric %s: out of memory for a series", f->name);
    *out = s;
    return BGEICL_OK;
}

met_series *met_get(met_family *f, ...)
{
    const char *values[MET_MAX_LABELS + 1];
    int n = 0;
    va_list ap;
    va_start(ap, f);
    /* Reads at most one value past the limit, so a missing NULL terminator
     * among the first MET_MAX_LABELS + 1 arguments is still caught as a
     * count mismatch rather than a runaway read. */
    for (const char *v; n <= MET_MAX_LABELS && (v = va_arg(ap, const char *)) != NULL;)
        values[n++] = v;
    va_end(ap);
    met_series *s = NULL;
    met_series_get(f, values, n, &s, NULL);
    return s;
}

/* ---- updates --------------------------------------------------------------- */

void met_add(met_series *s, double v)
{
    met_kind k = s->fam->kind;
    if (k == MET_GAUGE || (k == MET_COUNTER && v >= 0)) /* v >= 0 is false for NaN */
        atomic_add_double(&s->bits, v);
}

void met_set(met_series *s, double v)
{
    if (s->fam->kind == MET_GAUGE)
        atomic_store_explicit(&s->bits, d2u(v), memory_order_relaxed);
}

void met_observe(met_series *s, double v)
{
    const met_family *f = s->fam;
    if (f->kind != MET_HISTOGRAM || isnan(v))
        return;
    /* Binary search for the first bound >= v; nbounds means +Inf. */
    int lo = 0, hi = f->nbounds;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (v <= f->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&s->counts[lo], 1, memory_order_relaxed);
    atomic_add_double(&s->bits, v);
}

/* ---- reads ----------------------------------------------------------------- */

double met_value(const met_series *s) { return load_double(&s->bits); }

/* Copies the per-bucket counts into cum[0..nbounds] as cumulative counts;
 * returns the total. */
static uint64_t snapshot_cumulative(const met_series *s, uint64_t *cum)
{
    uint64_t total = 0;
    for (int i = 0; i <= s->fam->nbounds; i++) {
        total += atomic_load_explicit((_Atomic(uint64_t) *)&s->counts[i], memory_order_relaxed);
        cum[i] = total;
    }
    return total;
}

uint64_t met_histogram_count(const met_series *s)
{
    uint64_t cum[MET_MAX_BUCKETS + 1];
    return s->fam->kind == MET_HISTOGRAM ? snapshot_cumulative(s, cum) : 0;
}

double met_histogram_quantile(const met_series *s, double q)
{
    const met_family *f = s->fam;
    if (f->kind != MET_HISTOGRAM || isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    uint64_t cum[MET_MAX_BUCKETS + 1];
    uint64_t total = snapshot_cumulative(s, cum);
    if (total == 0)
        return NAN;
    double rank = q * (double)total;
    int b = 0;
    while (b < f->nbounds && (double)cum[b] < rank)
        b++;
    if (b == f->nbounds) /* in the +Inf bucket: nothing to interpolate toward */
        return f->bounds[f->nbounds - 1];
    if (b == 0 && f->bounds[0] <= 0)
        return f->bounds[0];
    double start = b == 0 ? 0.0 : f->bounds[b - 1];
    double below = b == 0 ? 0.0 : (double)cum[b - 1];
    double count = (double)cum[b] - below;
    if (count == 0) /* only when rank is 0 and the bucket is empty */
        return start;
    return start + (f->bounds[b] - start) * ((rank - below) / count);
}

/* ---- registry -------------------------------------------------------------- */

bgeicl_code met_registry_create(met_registry **out)
{
    met_registry *r = bg_calloc(1, sizeof *r);
    *out = NULL;
    if (!r)
        return BGEICL_ERR_NOMEM;
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        bg_free(r);
        return BGEICL_ERR_NOMEM;
    }
    *out = r;
    return BGEICL_OK;
}

static void family_free(met_family *f)
{
    met_series *s = f->head;
    while (s) {
        met_series *next = s->next;
        series_free(s);
        s = next;
    }
    for (int i = 0; i < MET_MAX_LABELS; i++)
        bg_free(f->labels[i]);
    bg_free(f->bounds);
    bg_free(f->name);
    bg_free(f->help);
    bg_free(f);
}

void met_registry_destroy(met_registry *r)
{
    if (!r)
        return;
    met_family *f = r->head;
    while (f) {
        met_family *next = f->next;
        family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&r->mu);
    bg_free(r);
}

/* first: allowed first characters beyond letters and '_'; rest likewise
 * beyond letters, digits and '_'. */
static int name_valid(const char *s, const char *extra)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (p != s && c >= '0' && c <= '9') || (c && strchr(extra, c));
        if (!ok)
            return 0;
    }
    return 1;
}

static bgeicl_code check_labels(const char *name, met_kind kind, const char *const *labels,
                                int nlabels, bg_err *err)
{
    if (nlabels < 0 || nlabels > MET_MAX_LABELS || (nlabels > 0 && !labels))
        return bg_fail(err, BGEICL_ERR_ARG, "metric %s: %d labels (at most %d)", name, nlabels,
                       MET_MAX_LABELS);
    for (int i = 0; i < nlabels; i++) {
        if (!name_valid(labels[i], ""))
            return bg_fail(err, BGEICL_ERR_ARG, "metric %s: invalid label name \"%s\"", name,
                           labels[i] ? labels[i] : "(null)");
        if (strncmp(labels[i], "__", 2) == 0 ||
            (kind == MET_HISTOGRAM && strcmp(labels[i], "le") == 0))
            return bg_fail(err, BGEICL_ERR_ARG, "metric %s: label name \"%s\" is reserved", name,
                           labels[i]);
        for (int j = 0; j < i; j++)
            if (strcmp(labels[i], labels[j]) == 0)
                return bg_fail(err, BGEICL_ERR_ARG, "metric %s: label \"%s\" given twice", name,
                               labels[i]);
    }
    return BGEICL_OK;
}

static bgeicl_code check_bounds(const char *name, met_kind kind, const double *bounds,
                                int nbounds, bg_err *err)
{
    if (kind != MET_HISTOGRAM)
        return nbounds == 0 ? BGEICL_OK
                            : bg_fail(err, BGEICL_ERR_ARG, "metric %s: buckets on a non-histogram",
                                      name);
    if (nbounds < 1 || nbounds > MET_MAX_BUCKETS || !bounds)
        return bg_fail(err, BGEICL_ERR_ARG, "metric %s: %d buckets (1 to %d)", name, nbounds,
                       MET_MAX_BUCKETS);
    for (int i = 0; i < nbounds; i++)
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return bg_fail(err, BGEICL_ERR_ARG,
                           "metric %s: bucket bounds must be finite and strictly increasing",
                           name);
    return BGEICL_OK;
}

/* Builds a family (and its one series if unlabelled), not yet linked. */
static met_family *family_new(met_registry *r, met_kind kind, const char *name, const char *help,
                              const char *const *labels, int nlabels, const double *bounds,
                              int nbounds)
{
    met_family *f = bg_calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->reg = r;
    f->kind = kind;
    f->nlabels = nlabels;
    f->nbounds = nbounds;
    f->name = bg_strdup(name);
    if (!f->name || (help && !(f->help = bg_strdup(help))))
        goto err;
    for (int i = 0; i < nlabels; i++)
        if (!(f->labels[i] = bg_strdup(labels[i])))
            goto err;
    if (nbounds) {
        if (!(f->bounds = bg_malloc((size_t)nbounds * sizeof *bounds)))
            goto err;
        memcpy(f->bounds, bounds, (size_t)nbounds * sizeof *bounds);
    }
    if (nlabels == 0) {
        met_series *s = series_new(f, NULL);
        if (!s)
            goto err;
        series_append(f, s);
    }
    return f;
err:
    family_free(f);
    return NULL;
}

static met_family *find_family(const met_registry *r, const char *name)
{
    for (met_family *f = r->head; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

bgeicl_code met_register(met_registry *r, met_kind kind, const char *name, const char *help,
                         const char *const *labels, int nlabels, const double *bounds,
                         int nbounds, met_family **out, bg_err *err)
{
    if (out)
        *out = NULL;
    if (kind != MET_COUNTER && kind != MET_GAUGE && kind != MET_HISTOGRAM)
        return bg_fail(err, BGEICL_ERR_ARG, "metric %s: unknown kind %d", name ? name : "(null)",
                       (int)kind);
    if (!name_valid(name, ":"))
        return bg_fail(err, BGEICL_ERR_ARG, "invalid metric name \"%s\"", name ? name : "(null)");
    bgeicl_code rc = check_labels(name, kind, labels, nlabels, err);
    if (rc == BGEICL_OK)
        rc = check_bounds(name, kind, bounds, nbounds, err);
    if (rc != BGEICL_OK)
        return rc;
    /* Built outside the lock so a scrape never waits on allocation. */
    met_family *f = family_new(r, kind, name, help, labels, nlabels, bounds, nbounds);
    if (!f)
        return bg_fail(err, BGEICL_ERR_NOMEM, "metric %s: out of memory", name);
    pthread_mutex_lock(&r->mu);
    int dup = find_family(r, name) != NULL;
    if (!dup) {
        if (r->tail)
            r->tail->next = f;
        else
            r->head = f;
        r->tail = f;
    }
    pthread_mutex_unlock(&r->mu);
    if (dup) {
        family_free(f);
        return bg_fail(err, BGEICL_ERR_ARG, "metric %s: already registered", name);
    }
    if (out)
        *out = f;
    return BGEICL_OK;
}

/* ---- process metrics ------------------------------------------------------- */

/* Boot time in Unix seconds from the "btime" line of /proc/stat. Lines are
 * read in chunks (the "intr" line is long); only chunks that start a line
 * are looked at. */
static int read_btime(double *btime)
{
    FILE *fp = fopen("/proc/stat", "r");
    if (!fp)
        return 0;
    char line[256];
    int at_start = 1, found = 0;
    while (!found && fgets(line, sizeof line, fp)) {
        if (at_start && strncmp(line, "btime ", 6) == 0) {
            *btime = strtod(line + 6, NULL);
            found = 1;
        }
        at_start = strchr(line, '\n') != NULL;
    }
    fclose(fp);
    return found;
}

bgeicl_code met_process_read(met_process *p, bg_err *err)
{
    char buf[4096];
    FILE *fp = fopen("/proc/self/stat", "r");
    if (!fp)
        return bg_fail(err, BGEICL_ERR_IO, "/proc/self/stat: cannot open");
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    /* Fields are counted from after the last ')', since the command name in
     * field 2 may itself contain spaces and parentheses. */
    char *rp = strrchr(buf, ')');
    if (!rp)
        return bg_fail(err, BGEICL_ERR_FORMAT, "/proc/self/stat: no ')'");
    double utime = 0, stime = 0, start = 0, rss = 0;
    int field = 3;
    char *save = NULL;
    for (char *t = strtok_r(rp + 1, " \n", &save); t; t = strtok_r(NULL, " \n", &save), field++) {
        if (field == 14)
            utime = strtod(t, NULL);
        else if (field == 15)
            stime = strtod(t, NULL);
        else if (field == 22)
            start = strtod(t, NULL);
        else if (field == 24) {
            rss = strtod(t, NULL);
            break;
        }
    }
    double btime = 0;
    if (field != 24 || !read_btime(&btime))
        return bg_fail(err, BGEICL_ERR_FORMAT, "/proc/self/stat or /proc/stat: fields missing");
    double tck = (double)sysconf(_SC_CLK_TCK);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return bg_fail(err, BGEICL_ERR_IO, "/proc/self/fd: cannot open");
    int fds = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        fds += e->d_name[0] != '.'; /* includes the fd of this listing, as Prometheus' does */
    closedir(d);
    p->cpu_seconds = (utime + stime) / tck;
    p->resident_bytes = rss * (double)sysconf(_SC_PAGESIZE);
    p->open_fds = fds;
    p->start_time = btime + start / tck;
    return BGEICL_OK;
}

bgeicl_code met_register_process(met_registry *r, bg_err *err)
{
    static const struct {
        met_kind kind;
        const char *name, *help;
        int proc;
    } defs[] = {
        {MET_COUNTER, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
         PROC_CPU},
        {MET_GAUGE, "process_resident_memory_bytes", "Resident memory size in bytes.", PROC_RSS},
        {MET_GAUGE, "process_open_fds", "Number of open file descriptors.", PROC_FDS},
        {MET_GAUGE, "process_start_time_seconds",
         "Start time of the process since unix epoch in seconds.", PROC_START},
    };
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        met_family *f;
        bgeicl_code rc = met_register(r, defs[i].kind, defs[i].name, defs[i].help, NULL, 0, NULL,
                                      0, &f, err);
        if (rc != BGEICL_OK)
            return rc; /* families registered so far stay; harmless zeros */
        pthread_mutex_lock(&r->mu); /* renders read proc and has_process under it */
        f->proc = defs[i].proc;
        r->has_process = 1;
        pthread_mutex_unlock(&r->mu);
    }
    return BGEICL_OK;
}

/* Called under r->mu at the start of a render. */
static void refresh_process(met_registry *r)
{
    met_process p;
    if (!r->has_process || met_process_read(&p, NULL) != BGEICL_OK)
        return;
    for (met_family *f = r->head; f; f = f->next) {
        double v = f->proc == PROC_CPU   ? p.cpu_seconds
                   : f->proc == PROC_RSS ? p.resident_bytes
                   : f->proc == PROC_FDS ? p.open_fds
                                         : p.start_time;
        if (f->proc != PROC_NONE)
            atomic_store_explicit(&f->head->bits, d2u(v), memory_order_relaxed);
    }
}

/* ---- text exposition ------------------------------------------------------- */

static const char *kind_name(met_kind k)
{
    return k == MET_COUNTER ? "counter" : k == MET_GAUGE ? "gauge" : "histogram";
}

/* Text-format escaping: backslash and newline always; '"' in label values
 * only (HELP text keeps its quotes, per the 0.0.4 format). */
static void put_text_escaped(met_buf *b, const char *s, int quotes)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            met_buf_puts(b, "\\\\");
        else if (*p == '\n')
            met_buf_puts(b, "\\n");
        else if (*p == '"' && quotes)
            met_buf_puts(b, "\\\"");
        else
            met_buf_append(b, p, 1);
    }
}

/* {a="x",b="y"} plus le="..." when le is not NULL; nothing if no labels. */
static void put_text_labels(met_buf *b, const met_family *f, const met_series *s, const char *le)
{
    if (f->nlabels == 0 && !le)
        return;
    met_buf_puts(b, "{");
    for (int i = 0; i < f->nlabels; i++) {
        met_buf_printf(b, "%s%s=\"", i ? "," : "", f->labels[i]);
        put_text_escaped(b, s->values[i], 1);
        met_buf_puts(b, "\"");
    }
    if (le)
        met_buf_printf(b, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    met_buf_puts(b, "}");
}

static void put_text_sample(met_buf *b, const met_family *f, const met_series *s,
                            const char *suffix, const char *le, double v)
{
    char num[32];
    met_buf_printf(b, "%s%s", f->name, suffix);
    put_text_labels(b, f, s, le);
    met_buf_printf(b, " %s\n", met_fmt_double(num, v));
}

static void put_text_series(met_buf *b, const met_family *f, const met_series *s)
{
    if (f->kind != MET_HISTOGRAM) {
        put_text_sample(b, f, s, "", NULL, met_value(s));
        return;
    }
    uint64_t cum[MET_MAX_BUCKETS + 1];
    uint64_t total = snapshot_cumulative(s, cum);
    char le[32];
    for (int i = 0; i <= f->nbounds; i++)
        put_text_sample(b, f, s, "_bucket",
                        met_fmt_double(le, i < f->nbounds ? f->bounds[i] : INFINITY),
                        (double)cum[i]);
    put_text_sample(b, f, s, "_sum", NULL, met_value(s));
    put_text_sample(b, f, s, "_count", NULL, (double)total);
}

bgeicl_code met_render_text(met_registry *r, met_buf *out)
{
    pthread_mutex_lock(&r->mu);
    refresh_process(r);
    for (const met_family *f = r->head; f && !out->oom; f = f->next) {
        if (f->help) {
            met_buf_printf(out, "# HELP %s ", f->name);
            put_text_escaped(out, f->help, 0);
            met_buf_puts(out, "\n");
        }
        met_buf_printf(out, "# TYPE %s %s\n", f->name, kind_name(f->kind));
        for (const met_series *s = f->head; s; s = s->next)
            put_text_series(out, f, s);
    }
    pthread_mutex_unlock(&r->mu);
    return met_buf_status(out);
}

/* ---- JSON exposition ------------------------------------------------------- */

static void put_json_string(met_buf *b, const char *s)
{
    met_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            met_buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            met_buf_puts(b, "\\n");
        else if (*p < 0x20)
            met_buf_printf(b, "\\u%04x", *p);
        else
            met_buf_append(b, (const char *)p, 1);
    }
    met_buf_puts(b, "\"");
}

/* JSON has no Inf or NaN: those become null. */
static void put_json_number(met_buf *b, double v)
{
    char num[32];
    met_buf_puts(b, isfinite(v) ? met_fmt_double(num, v) : "null");
}

static void put_json_series(met_buf *b, const met_family *f, const met_series *s)
{
    met_buf_puts(b, "{\"labels\":{");
    for (int i = 0; i < f->nlabels; i++) {
        if (i)
            met_buf_puts(b, ",");
        put_json_string(b, f->labels[i]);
        met_buf_puts(b, ":");
        put_json_string(b, s->values[i]);
    }
    met_buf_puts(b, "}");
    if (f->kind != MET_HISTOGRAM) {
        met_buf_puts(b, ",\"value\":");
        put_json_number(b, met_value(s));
        met_buf_puts(b, "}");
        return;
    }
    uint64_t cum[MET_MAX_BUCKETS + 1];
    uint64_t total = snapshot_cumulative(s, cum);
    char le[32];
    met_buf_puts(b, ",\"buckets\":[");
    for (int i = 0; i <= f->nbounds; i++)
        met_buf_printf(b, "%s{\"le\":\"%s\",\"count\":%llu}", i ? "," : "",
                       met_fmt_double(le, i < f->nbounds ? f->bounds[i] : INFINITY),
                       (unsigned long long)cum[i]);
    met_buf_puts(b, "],\"sum\":");
    put_json_number(b, met_value(s));
    met_buf_printf(b, ",\"count\":%llu}", (unsigned long long)total);
}

bgeicl_code met_render_json(met_registry *r, met_buf *out)
{
    pthread_mutex_lock(&r->mu);
    refresh_process(r);
    met_buf_puts(out, "{");
    for (const met_family *f = r->head; f && !out->oom; f = f->next) {
        if (f != r->head)
            met_buf_puts(out, ",");
        put_json_string(out, f->name);
        met_buf_printf(out, ":{\"type\":\"%s\",\"help\":", kind_name(f->kind));
        put_json_string(out, f->help ? f->help : "");
        met_buf_puts(out, ",\"series\":[");
        for (const met_series *s = f->head; s; s = s->next) {
            if (s != f->head)
                met_buf_puts(out, ",");
            put_json_series(out, f, s);
        }
        met_buf_puts(out, "]}");
    }
    met_buf_puts(out, "}");
    pthread_mutex_unlock(&r->mu);
    return met_buf_status(out);
}
