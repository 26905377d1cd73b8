/*
 * cli_diagnose.c - `bgeicl diagnose`: the performance-tuning guide's
 * troubleshooting checks against one running server, each ending in
 * OK/WARN/FAIL findings with the guide's remedies.
 *
 *   health      /health and /info (always)
 *   latency     one call each at batch 1, 8 and 32; per-text cost; flags
 *               latency that grows faster than the batch
 *   throughput  N providers (N client handles in N threads) at once against
 *               the same N one after another
 *   memory      server RSS over growing batches, then identical rounds
 *   cache       a repeated text (embedding cache) and similar ICL queries
 *               (context cache)
 *
 * Every text is new to the server (a per-run nonce), except where the cache
 * check repeats one on purpose.
 */
#include <cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
    "bgeicl diagnose --server URL [--check latency|throughput|memory|cache|all]\n"
    "                [--json FILE.json] [--batch-sizes 1,8,32] [--concurrency N] [--api-key KEY]";

static const char help[] =
    "Runs the performance-tuning guide's checks against a server and prints each\n"
    "finding as OK, WARN or FAIL with the guide's remedy.\n\n"
    "  --server URL        the server (default: BGE_ICL_BASE_URL)\n"
    "  --api-key KEY       sent as a Bearer token (default: BGE_ICL_API_KEY)\n"
    "  --check NAME        latency, throughput, memory, cache or all (all); the health\n"
    "                      of the server (/health, /info) is always checked first\n"
    "  --batch-sizes LIST  batch sizes of the latency check, in growing order (1,8,32);\n"
    "                      the memory check grows through them too, then runs identical\n"
    "                      rounds of a quarter of the largest\n"
    "  --concurrency N     providers of the throughput check (4)\n"
    "  --json FILE.json    also write the findings and measurements as JSON\n\n"
    "Exit status: 0 when no finding is FAIL (warnings included), 1 otherwise, 2 for a\n"
    "usage error.\n";

enum { ST_OK, ST_WARN, ST_FAIL };
static const char *const status_names[] = {"OK", "WARN", "FAIL"};

enum { SEC_HEALTH, SEC_LATENCY, SEC_THROUGHPUT, SEC_MEMORY, SEC_CACHE, SEC_COUNT };
static const char *const section_names[] = {"health", "latency", "throughput", "memory", "cache"};

/* The guide's remedies, one per kind of trouble. */
static const char remedy_latency[] =
    "reduce the batch size, enable adaptive batching, or give the server more threads";
static const char remedy_throughput[] =
    "increase the batch size, or run more replicas behind a weighted --server list";
static const char remedy_memory[] =
    "lower --cache-size, check for leaks, and restart the server";
static const char remedy_cache[] =
    "raise --context-cache-size, lower --similarity-threshold, and group queries by language";
static const char remedy_health[] = "start the server, or wait until /health says healthy";

#define LATENCY_ALERT_MS 10000.0 /* the guide's latency alert */
#define SUPERLINEAR 1.25         /* per-text cost may rise this much between sizes */
#define MIN_SPEEDUP 1.2          /* concurrent vs one-after-another */
#define PER_PROVIDER_TEXTS 4
#define MEM_ROUNDS 5
#define MAX_SIZES 16
#define LEAK_MIN_BYTES (8.0 * 1024 * 1024)
#define LEAK_FRACTION 0.02
#define MEMORY_ALERT_PCT 95.0
#define CACHE_HIT_ALERT 0.30
#define ICL_QUERIES 6

typedef struct diag {
    cli_client_args client;
    int run[SEC_COUNT];
    long concurrency;
    int sizes[MAX_SIZES], nsizes; /* latency check; the memory check grows through them */
    const char *json_path;
    bgeicl_client_options base;
    bgeicl_client *c; /* documents, no ICL, batch size set per call */
    uint64_t nonce, counter;
    cJSON *out, *sections, *section; /* the JSON report; the section being filled */
    int section_status, worst;
} diag;

/* ---- findings -------------------------------------------------------------------- */

static void section_begin(diag *d, int sec)
{
    printf("== %s\n", section_names[sec]);
    d->section = cJSON_AddObjectToObject(d->sections, section_names[sec]);
    cJSON_AddArrayToObject(d->section, "findings");
    cJSON_AddObjectToObject(d->section, "data");
    d->section_status = ST_OK;
}

static void section_end(diag *d)
{
    cJSON_AddStringToObject(d->section, "status", status_names[d->section_status]);
    printf("   -> %s\n", status_names[d->section_status]);
    d->worst = d->section_status > d->worst ? d->section_status : d->worst;
}

static cJSON *data(diag *d) { return cJSON_GetObjectItemCaseSensitive(d->section, "data"); }

static void finding(diag *d, int status, const char *remedy, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void finding(diag *d, int status, const char *remedy, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("   %-4s %s\n", status_names[status], msg);
    if (status != ST_OK && remedy)
        printf("        remedy: %s\n", remedy);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "status", status_names[status]);
    cJSON_AddStringToObject(f, "message", msg);
    if (status != ST_OK && remedy)
        cJSON_AddStringToObject(f, "remedy", remedy);
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(d->section, "findings"), f);
    d->section_status = status > d->section_status ? status : d->section_status;
}

/* ---- helpers --------------------------------------------------------------------- */

/* n fresh generated texts (python snippets), or NULL. */
static char **fresh_texts(diag *d, size_t n)
{
    char **t = calloc(n ? n : 1, sizeof *t);
    for (size_t i = 0; t && i < n; i++) {
        char buf[1024];
        cli_gen_snippet(buf, sizeof buf, (int)(i % 5), d->nonce + d->counter++, d->nonce);
        if (!(t[i] = strdup(buf))) {
            while (i)
                free(t[--i]);
            free(t);
            return NULL;
        }
    }
    return t;
}

static void free_texts(char **t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        free(t[i]);
    free(t);
}

/* A client like the base one with a fixed batch size. */
static bgeicl_client *client_with(diag *d, int batch, int concurrency, int icl)
{
    bgeicl_client_options o = d->base;
    o.batch_size = batch;
    o.adaptive = 0;
    o.min_batch_size = 1;
    o.max_batch_size = batch;
    o.max_concurrency = concurrency;
    o.enable_icl = icl;
    bgeicl_client *c = NULL;
    bgeicl_error err;
    if (bgeicl_client_new(&o, &c, &err) != BGEICL_OK) {
        fprintf(stderr, "bgeicl diagnose: %s\n", err.message);
        return NULL;
    }
    return c;
}

/* Embeds texts in one call; seconds, or -1 (err filled). */
static double embed(bgeicl_client *c, char **texts, size_t n, unsigned flags, const char *lang,
                    bgeicl_error *err)
{
    bgeicl_vectors v = {0};
    double t0 = cli_now();
    bgeicl_code rc = bgeicl_client_embed(c, (const char *const *)texts, NULL, n, flags, lang, &v, err);
    double s = cli_now() - t0;
    bgeicl_vectors_free(&v);
    return rc == BGEICL_OK ? s : -1;
}

/* Fresh texts of batch `n` through a client of that batch size; ms or -1. */
static double timed_batch(diag *d, size_t n, bgeicl_error *err)
{
    char **t = fresh_texts(d, n);
    bgeicl_client *c = t ? client_with(d, (int)n, 1, 0) : NULL;
    double s = c ? embed(c, t, n, 0, NULL, err) : -1;
    if (!c)
        snprintf(err->message, sizeof err->message, "out of memory or no client");
    bgeicl_client_free(c);
    free_texts(t, n);
    return s < 0 ? -1 : s * 1e3;
}

static cJSON *metrics(diag *d)
{
    bgeicl_error err;
    return cli_get_json(d->c, 0, "/metrics?format=json", &err);
}

static double metric(diag *d, const char *family)
{
    cJSON *m = metrics(d);
    double v = cli_metric_sum(m, family);
    cJSON_Delete(m);
    return v;
}

/* ---- health ---------------------------------------------------------------------- */

static int check_health(diag *d)
{
    section_begin(d, SEC_HEALTH);
    bgeicl_error err;
    long status = 0;
    char *body = NULL;
    size_t len = 0;
    double t0 = cli_now();
    bgeicl_code rc = bgeicl_client_get(d->c, 0, "/health", &status, &body, &len, &err);
    double ms = (cli_now() - t0) * 1e3;
    cJSON *h = body ? cJSON_ParseWithLength(body, len) : NULL;
    bgeicl_free(body);
    const char *st = cli_json_str(h, "status", status ? "unhealthy" : "unreachable");
    cJSON_AddStringToObject(data(d), "status", st);
    cli_json_add_num(data(d), "health_ms", ms);
    int ok = status == 200 && !strcmp(st, "healthy");
    if (!ok)
        finding(d, ST_FAIL, remedy_health, "server is %s%s%s", st, rc == BGEICL_OK ? "" : ": ",
                rc == BGEICL_OK ? "" : err.message);
    cJSON_Delete(h);
    cJSON *info = ok ? cli_get_json(d->c, 0, "/info", &err) : NULL;
    if (ok && !info)
        finding(d, ST_WARN, NULL, "GET /info failed: %s", err.message);
    if (info) {
        const cJSON *icl = cJSON_GetObjectItemCaseSensitive(info, "icl");
        const cJSON *cache = cJSON_GetObjectItemCaseSensitive(info, "cache");
        finding(d, ST_OK, NULL,
                "healthy in %.1f ms: %s (%s, %s), %g threads, ICL %s by default, embedding "
                "cache %g MB",
                ms, cli_json_str(info, "model", "?"), cli_json_str(info, "dtype", "?"),
                cli_json_str(info, "isa", "?"), cli_json_num(info, "threads"),
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(icl, "enabled")) ? "on" : "off",
                cli_json_num(cache, "size_mb"));
        cJSON_AddItemToObject(data(d), "info", info);
    }
    section_end(d);
    return ok;
}

/* ---- latency --------------------------------------------------------------------- */

static void check_latency(diag *d)
{
    const int *sizes = d->sizes;
    size_t nsizes = (size_t)d->nsizes;
    section_begin(d, SEC_LATENCY);
    bgeicl_error err;
    if (timed_batch(d, 1, &err) < 0) /* warm-up: connections, first-touch pages */
        finding(d, ST_FAIL, remedy_latency, "warm-up request failed: %s", err.message);
    cJSON *rows = cJSON_AddArrayToObject(data(d), "batches");
    printf("   %6s %12s %12s\n", "batch", "latency_ms", "per_text_ms");
    double prev = NAN;
    int super = 0, slow = 0;
    for (size_t k = 0; k < nsizes && d->section_status != ST_FAIL; k++) {
        /* The better of two runs, so that one slow outlier makes no finding;
         * the largest batch runs once, as it is long enough to average out. */
        double a = timed_batch(d, (size_t)sizes[k], &err), b = a;
        if (a >= 0 && k + 1 < nsizes)
            b = timed_batch(d, (size_t)sizes[k], &err);
        if (a < 0 || b < 0) {
            finding(d, ST_FAIL, remedy_latency, "batch %d failed: %s", sizes[k], err.message);
            break;
        }
        double ms = a < b ? a : b, per = ms / sizes[k];
        printf("   %6d %12.1f %12.2f\n", sizes[k], ms, per);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "batch_size", sizes[k]);
        cJSON_AddNumberToObject(r, "latency_ms", ms);
        cJSON_AddNumberToObject(r, "per_text_ms", per);
        cJSON_AddItemToArray(rows, r);
        if (prev == prev && per > SUPERLINEAR * prev) {
            finding(d, ST_WARN, remedy_latency,
                    "per-text cost rises from %.2f to %.2f ms at batch %d: latency grows faster "
                    "than the batch",
                    prev, per, sizes[k]);
            super = 1;
        }
        if (ms > LATENCY_ALERT_MS) {
            finding(d, ST_WARN, remedy_latency, "batch %d took %.0f ms, over the guide's %.0f ms",
                    sizes[k], ms, LATENCY_ALERT_MS);
            slow = 1;
        }
        prev = per;
    }
    if (d->section_status == ST_OK && !super && !slow)
        finding(d, ST_OK, NULL, "per-text cost falls or stays within %.0f%% as batches grow",
                (SUPERLINEAR - 1) * 100);
    section_end(d);
}

/* ---- throughput ------------------------------------------------------------------ */

typedef struct provider {
    bgeicl_client *c;
    char **texts;
    double seconds;
    bgeicl_error err;
} provider;

static void *provider_run(void *arg)
{
    provider *p = arg;
    p->seconds = embed(p->c, p->texts, PER_PROVIDER_TEXTS, 0, NULL, &p->err);
    return NULL;
}

/* N providers, each a client handle sending its texts one per request. */
static int providers_new(diag *d, provider *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i].texts = fresh_texts(d, PER_PROVIDER_TEXTS);
        p[i].c = p[i].texts ? client_with(d, 1, 1, 0) : NULL;
        if (!p[i].c)
            return -1;
    }
    return 0;
}

static void providers_free(provider *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bgeicl_client_free(p[i].c);
        free_texts(p[i].texts, PER_PROVIDER_TEXTS);
        p[i].c = NULL;
        p[i].texts = NULL;
    }
}

/* Wall seconds of running the providers one after another or all at once. */
static double run_providers(provider *p, size_t n, int concurrent)
{
    pthread_t *th = calloc(n, sizeof *th);
    double t0 = cli_now();
    size_t started = 0;
    for (size_t i = 0; i < n; i++) {
        if (concurrent && th && pthread_create(&th[i], NULL, provider_run, &p[i]) == 0)
            started++;
        else if (!concurrent)
            provider_run(&p[i]);
    }
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double wall = cli_now() - t0;
    free(th);
    if (concurrent && started != n)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (p[i].seconds < 0)
            return -1;
    return wall;
}

/* The mean executed batch size over a phase, from the batch histogram. */
static double avg_batch(const cJSON *before, const cJSON *after)
{
    double s0, c0, s1, c1;
    if (cli_metric_hist(before, "bge_icl_batch_size", &s0, &c0) ||
        cli_metric_hist(after, "bge_icl_batch_size", &s1, &c1) || c1 <= c0)
        return NAN;
    return (s1 - s0) / (c1 - c0);
}

static void report_speedup(diag *d, size_t n, double seq, double conc, double batch)
{
    double texts = (double)(n * PER_PROVIDER_TEXTS), ratio = seq / conc;
    cJSON *o = data(d);
    cJSON_AddNumberToObject(o, "providers", (double)n);
    cJSON_AddNumberToObject(o, "texts_per_provider", PER_PROVIDER_TEXTS);
    cJSON_AddNumberToObject(o, "sequential_s", seq);
    cJSON_AddNumberToObject(o, "concurrent_s", conc);
    cJSON_AddNumberToObject(o, "sequential_tps", texts / seq);
    cJSON_AddNumberToObject(o, "concurrent_tps", texts / conc);
    cJSON_AddNumberToObject(o, "speedup", ratio);
    cli_json_add_num(o, "avg_server_batch_concurrent", batch);
    printf("   one after another: %.2f s (%.1f texts/s); %zu at once: %.2f s (%.1f texts/s)\n", seq,
           texts / seq, n, conc, texts / conc);
    if (ratio >= MIN_SPEEDUP)
        finding(d, ST_OK, NULL,
                "%zu concurrent providers ran %.2fx faster (server batches averaged %.1f texts): "
                "the server batches concurrent requests effectively",
                n, ratio, batch);
    else if (batch > 1.5)
        finding(d, ST_WARN, remedy_throughput,
                "%zu concurrent providers ran %.2fx as fast as one after another (%.1fx "
                "expected): the server merged them (batches averaged %.1f texts) but is "
                "compute-bound, so batching gains nothing",
                n, ratio, MIN_SPEEDUP, batch);
    else
        finding(d, ST_WARN, remedy_throughput,
                "%zu concurrent providers ran %.2fx as fast as one after another (%.1fx "
                "expected) and the server did not merge their requests (batches averaged %.1f "
                "texts)",
                n, ratio, MIN_SPEEDUP, batch);
}

static void check_throughput(diag *d)
{
    section_begin(d, SEC_THROUGHPUT);
    size_t n = (size_t)d->concurrency;
    provider *p = calloc(n, sizeof *p);
    bgeicl_error err;
    double seq = -1, conc = -1, batch = NAN;
    if (p && timed_batch(d, 1, &err) >= 0 && providers_new(d, p, n) == 0)
        seq = run_providers(p, n, 0);
    providers_free(p, n);
    if (seq > 0 && providers_new(d, p, n) == 0) {
        cJSON *before = metrics(d);
        conc = run_providers(p, n, 1);
        cJSON *after = metrics(d);
        batch = avg_batch(before, after);
        cJSON_Delete(before);
        cJSON_Delete(after);
    }
    for (size_t i = 0; p && i < n && (seq <= 0 || conc <= 0); i++)
        if (p[i].seconds < 0)
            snprintf(err.message, sizeof err.message, "%s", p[i].err.message);
    providers_free(p, n);
    free(p);
    if (seq > 0 && conc > 0)
        report_speedup(d, n, seq, conc, batch);
    else
        finding(d, ST_FAIL, remedy_throughput, "providers failed: %s",
                p ? err.message : "out of memory");
    section_end(d);
}

/* ---- memory ---------------------------------------------------------------------- */

typedef struct mem_point {
    double rss, cache_bytes;
} mem_point;

static int mem_after_batch(diag *d, size_t n, mem_point *pt, bgeicl_error *err)
{
    if (timed_batch(d, n, err) < 0)
        return -1;
    cJSON *m = metrics(d);
    pt->rss = cli_metric_sum(m, "process_resident_memory_bytes");
    pt->cache_bytes = cli_metric_sum(m, "bge_icl_embedding_cache_bytes");
    cJSON_Delete(m);
    return pt->rss == pt->rss ? 0 : -1;
}

static void memory_verdict(diag *d, const mem_point *r, int round_size, double mem_total)
{
    /* From the second round on: the first may still grow arenas and
     * buffers to their working size. */
    double growth = r[MEM_ROUNDS - 1].rss - r[1].rss;
    double cache = r[MEM_ROUNDS - 1].cache_bytes - r[1].cache_bytes;
    double unexplained = growth - (cache == cache ? cache : 0);
    double tol = fmax(LEAK_MIN_BYTES, LEAK_FRACTION * r[1].rss);
    int rising = 1;
    for (int k = 2; k < MEM_ROUNDS; k++)
        rising &= r[k].rss > r[k - 1].rss;
    cJSON_AddNumberToObject(data(d), "round_growth_bytes", growth);
    cJSON_AddNumberToObject(data(d), "cache_growth_bytes", cache == cache ? cache : 0);
    cJSON_AddNumberToObject(data(d), "tolerance_bytes", tol);
    if (rising && unexplained > tol)
        finding(d, ST_WARN, remedy_memory,
                "RSS grew in every identical round, by %.1f MiB beyond the embedding cache's "
                "%.1f MiB (tolerance %.1f MiB): possible leak",
                unexplained / 1048576, cache / 1048576, tol / 1048576);
    else
        finding(d, ST_OK, NULL,
                "RSS steady over %d identical rounds of %d texts: %+.1f MiB, of which the "
                "embedding cache %+.1f MiB (tolerance %.1f MiB)",
                MEM_ROUNDS - 1, round_size, growth / 1048576, cache / 1048576, tol / 1048576);
    double pct = r[MEM_ROUNDS - 1].rss / mem_total * 100;
    cli_json_add_num(data(d), "memory_pct_of_local_memtotal", pct);
    if (pct > MEMORY_ALERT_PCT)
        finding(d, ST_FAIL, remedy_memory, "RSS is %.1f%% of this machine's memory (> %.0f%%)",
                pct, MEMORY_ALERT_PCT);
}

static double local_mem_total(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (double)pages * (double)size : NAN;
}

static void check_memory(diag *d)
{
    /* Rounds a quarter of the largest batch: enough texts to exercise the
     * whole path, few enough that five rounds stay short. */
    int round_size = d->sizes[d->nsizes - 1] / 4 > 0 ? d->sizes[d->nsizes - 1] / 4 : 1;
    section_begin(d, SEC_MEMORY);
    bgeicl_error err;
    mem_point pt, rounds[MEM_ROUNDS];
    cJSON *g = cJSON_AddArrayToObject(data(d), "growing"), *rr = cJSON_AddArrayToObject(data(d), "rounds");
    printf("   %-10s %6s %10s\n", "phase", "batch", "rss_mib");
    for (int k = 0; k < d->nsizes; k++) {
        if (mem_after_batch(d, (size_t)d->sizes[k], &pt, &err) != 0)
            goto failed;
        printf("   %-10s %6d %10.1f\n", "growing", d->sizes[k], pt.rss / 1048576);
        cJSON_AddItemToArray(g, cJSON_CreateNumber(pt.rss));
    }
    for (int k = 0; k < MEM_ROUNDS; k++) {
        if (mem_after_batch(d, (size_t)round_size, &rounds[k], &err) != 0)
            goto failed;
        printf("   %-10s %6d %10.1f\n", "round", round_size, rounds[k].rss / 1048576);
        cJSON_AddItemToArray(rr, cJSON_CreateNumber(rounds[k].rss));
    }
    memory_verdict(d, rounds, round_size, local_mem_total());
    section_end(d);
    return;
failed:
    finding(d, ST_FAIL, remedy_memory, "could not measure: %s",
            err.message[0] ? err.message : "no process_resident_memory_bytes in /metrics");
    section_end(d);
}

/* ---- cache ----------------------------------------------------------------------- */

static void embedding_cache(diag *d)
{
    char **t = fresh_texts(d, 1);
    bgeicl_client *c = t ? client_with(d, 1, 1, 0) : NULL;
    bgeicl_error err;
    if (!c) {
        finding(d, ST_FAIL, NULL, "out of memory");
        free_texts(t, 1);
        return;
    }
    double first = embed(c, t, 1, 0, NULL, &err);
    double h1 = metric(d, "bge_icl_embedding_cache_hits_total");
    double second = first < 0 ? -1 : embed(c, t, 1, 0, NULL, &err);
    double h2 = metric(d, "bge_icl_embedding_cache_hits_total");
    bgeicl_client_free(c);
    free_texts(t, 1);
    if (first < 0 || second < 0) {
        finding(d, ST_FAIL, NULL, "request failed: %s", err.message);
        return;
    }
    cJSON_AddNumberToObject(data(d), "first_ms", first * 1e3);
    cJSON_AddNumberToObject(data(d), "second_ms", second * 1e3);
    cli_json_add_num(data(d), "embedding_cache_hits_delta", h2 - h1);
    if (h2 - h1 >= 1)
        finding(d, ST_OK, NULL,
                "embedding cache: the repeated text took %.1f ms against %.1f ms the first time "
                "(hits +%.0f)",
                second * 1e3, first * 1e3, h2 - h1);
    else
        finding(d, ST_WARN, "give the server an embedding cache (--cache-size MB)",
                "embedding cache: the repeated text was not a hit (%.1f ms, first %.1f ms)",
                second * 1e3, first * 1e3);
}

/* Similar ICL queries one per request: the first builds a context, the
 * rest should reuse it. Counted on the server and in the client. */
static void context_cache(diag *d)
{
    static const char *const ends[ICL_QUERIES] = {"", "?", "!", " please", "??", "."};
    bgeicl_client *c = client_with(d, 1, 1, 1);
    cJSON *before = metrics(d);
    bgeicl_error err;
    int failed = !c;
    for (int k = 0; k < ICL_QUERIES && !failed; k++) {
        char q[256], *texts[1] = {q};
        snprintf(q, sizeof q,
                 "check %llu: how do I parse the json configuration file and read each key "
                 "value pair%s",
                 (unsigned long long)d->nonce, ends[k]);
        failed = embed(c, texts, 1, BGEICL_QUERY, "python", &err) < 0;
    }
    cJSON *after = metrics(d);
    bgeicl_client_metrics cm = {0};
    if (c)
        bgeicl_client_metrics_get(c, &cm);
    bgeicl_client_free(c);
    double hits = cli_metric_sum(after, "bge_icl_context_cache_hits_total") -
                  cli_metric_sum(before, "bge_icl_context_cache_hits_total");
    double miss = cli_metric_sum(after, "bge_icl_context_cache_misses_total") -
                  cli_metric_sum(before, "bge_icl_context_cache_misses_total");
    double server_rate = cli_json_num(after, "cache_hit_rate");
    cJSON_Delete(before);
    cJSON_Delete(after);
    if (failed) {
        finding(d, ST_FAIL, NULL, "ICL query failed: %s", c ? err.message : "no client");
        return;
    }
    cli_json_add_num(data(d), "context_cache_hits_delta", hits);
    cli_json_add_num(data(d), "context_cache_misses_delta", miss);
    cli_json_add_num(data(d), "server_cache_hit_rate", server_rate);
    cJSON_AddNumberToObject(data(d), "client_cache_hit_rate", cm.cache_hit_rate);
    /* Whichever side kept the contexts: the client when it has an example
     * bank, the server otherwise. */
    double rate = hits + miss > 0 ? hits / (hits + miss) : cm.cache_hit_rate;
    const char *side = hits + miss > 0 ? "server" : "client";
    if (rate < CACHE_HIT_ALERT)
        finding(d, ST_WARN, remedy_cache,
                "context cache (%s): %.0f%% hits over %d similar queries (< %.0f%%)", side,
                rate * 100, ICL_QUERIES, CACHE_HIT_ALERT * 100);
    else
        finding(d, ST_OK, NULL, "context cache (%s): %.0f%% hits over %d similar queries", side,
                rate * 100, ICL_QUERIES);
}

static void check_cache(diag *d)
{
    section_begin(d, SEC_CACHE);
    embedding_cache(d);
    context_cache(d);
    section_end(d);
}

/* ---- main ------------------------------------------------------------------------ */

/* A growing list of batch sizes. */
static int parse_sizes(diag *d, const char *v)
{
    d->nsizes = cli_parse_int_list("--batch-sizes", v, 1, 4096, d->sizes, MAX_SIZES);
    for (int k = 1; k < d->nsizes; k++)
        if (d->sizes[k] <= d->sizes[k - 1]) {
            fprintf(stderr, "bgeicl: --batch-sizes must grow, got '%s'\n", v);
            return -1;
        }
    return d->nsizes < 0 ? -1 : 0;
}

static int parse_args(int argc, char **argv, diag *d)
{
    for (int s = 0; s < SEC_COUNT; s++)
        d->run[s] = 1;
    d->concurrency = 4;
    d->nsizes = 3;
    memcpy(d->sizes, (const int[]){1, 8, 32}, 3 * sizeof(int));
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r = cli_client_flag(argc, argv, &i, &d->client);
        if (r == 0 && (r = cli_opt_value(argc, argv, &i, "--check", &v)) > 0) {
            int all = !strcmp(v, "all"), found = all;
            for (int s = SEC_LATENCY; s < SEC_COUNT; s++) {
                d->run[s] = all || !strcmp(v, section_names[s]);
                found |= d->run[s];
            }
            if (!found)
                return cli_usage_error("diagnose", usage,
                                       "--check must be latency, throughput, memory, cache or "
                                       "all, got '%s'",
                                       v);
        }
        if (r == 0 && (r = cli_opt_value(argc, argv, &i, "--batch-sizes", &v)) > 0 &&
            parse_sizes(d, v))
            r = -1;
        if (r == 0 && (r = cli_opt_value(argc, argv, &i, "--concurrency", &v)) > 0 &&
            cli_parse_int("--concurrency", v, 2, 256, &d->concurrency))
            r = -1;
        if (r == 0)
            r = cli_opt_value(argc, argv, &i, "--json", &d->json_path);
        if (r < 0)
            return cli_usage_error("diagnose", usage, "invalid option value (see above)");
        if (r == 0)
            return cli_usage_error("diagnose", usage, "unknown option '%s'", argv[i]);
    }
    return CLI_OK;
}

static void run_checks(diag *d)
{
    static void (*const checks[SEC_COUNT])(diag *) = {NULL, check_latency, check_throughput,
                                                      check_memory, check_cache};
    int healthy = check_health(d);
    for (int s = SEC_LATENCY; s < SEC_COUNT; s++) {
        if (!d->run[s])
            continue;
        if (!healthy) {
            printf("== %s\n   skipped: the server is not healthy\n", section_names[s]);
            continue;
        }
        checks[s](d);
        fflush(stdout);
    }
    printf("overall: %s\n", status_names[d->worst]);
}

int cli_diagnose(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s\n\n%s", usage, help);
            return CLI_OK;
        }
    diag d;
    memset(&d, 0, sizeof d);
    int rc = parse_args(argc, argv, &d);
    if (rc == CLI_OK)
        rc = cli_client_options("diagnose", usage, &d.client, &d.base);
    if (rc == CLI_OK && !cli_single_server(&d.base))
        rc = cli_usage_error("diagnose", usage, "--server takes one server, got '%s'",
                             d.base.servers);
    /* A diagnosis should see failures, not have retries hide them. */
    d.base.max_retries = 0;
    if (rc == CLI_OK)
        rc = cli_client_open("diagnose", usage, &d.base, &d.c);
    if (rc != CLI_OK)
        return rc;
    /* A nonce per run: texts from an earlier diagnose are in the server's
     * embedding cache and would flatter every measurement. */
    d.nonce = ((uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid()) % 1000000007u;
    d.out = cJSON_CreateObject();
    char date[32];
    cli_iso_time(date, sizeof date);
    cJSON_AddStringToObject(d.out, "server", d.base.servers);
    cJSON_AddStringToObject(d.out, "date", date);
    d.sections = cJSON_AddObjectToObject(d.out, "sections");
    run_checks(&d);
    cJSON_AddStringToObject(d.out, "status", status_names[d.worst]);
    rc = d.worst == ST_FAIL ? CLI_FAIL : CLI_OK;
    if (d.json_path && cli_write_json_file("diagnose", d.json_path, d.out) != 0)
        rc = CLI_FAIL;
    cJSON_Delete(d.out);
    bgeicl_client_free(d.c);
    return rc;
}
