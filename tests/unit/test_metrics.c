/*
 * test_metrics.c - the Prometheus metrics registry: exact text and JSON
 * exposition, escaping, histogram buckets and quantiles, concurrent
 * updates, process metrics, validation, and allocation failure.
 */
#include <math.h>
#include <pthread.h>
#include <time.h>

#include "harness.h"
#include "server/metrics.h"

static const char *const REQ_LABELS[] = {"provider", "language", "status"};
static const double LAT_BOUNDS[] = {0.1, 0.5, 1.0};

static const char SMALL_TEXT[] =
    "# HELP bge_icl_requests_total Requests.\n"
    "# TYPE bge_icl_requests_total counter\n"
    "bge_icl_requests_total{provider=\"bge-in-icl\",language=\"python\",status=\"success\"} 2\n"
    "bge_icl_requests_total{provider=\"bge-in-icl\",language=\"go\",status=\"error\"} 1\n"
    "# HELP bge_icl_queue_depth Queue depth.\n"
    "# TYPE bge_icl_queue_depth gauge\n"
    "bge_icl_queue_depth 3.5\n"
    "# HELP lat_seconds Latency.\n"
    "# TYPE lat_seconds histogram\n"
    "lat_seconds_bucket{le=\"0.1\"} 0\n"
    "lat_seconds_bucket{le=\"0.5\"} 2\n"
    "lat_seconds_bucket{le=\"1\"} 2\n"
    "lat_seconds_bucket{le=\"+Inf\"} 3\n"
    "lat_seconds_sum 2.75\n"
    "lat_seconds_count 3\n";

static const char SMALL_JSON[] =
    "{\"bge_icl_requests_total\":{\"type\":\"counter\",\"help\":\"Requests.\",\"series\":["
    "{\"labels\":{\"provider\":\"bge-in-icl\",\"language\":\"python\",\"status\":\"success\"},"
    "\"value\":2},"
    "{\"labels\":{\"provider\":\"bge-in-icl\",\"language\":\"go\",\"status\":\"error\"},"
    "\"value\":1}]},"
    "\"bge_icl_queue_depth\":{\"type\":\"gauge\",\"help\":\"Queue depth.\",\"series\":["
    "{\"labels\":{},\"value\":3.5}]},"
    "\"lat_seconds\":{\"type\":\"histogram\",\"help\":\"Latency.\",\"series\":["
    "{\"labels\":{},\"buckets\":[{\"le\":\"0.1\",\"count\":0},{\"le\":\"0.5\",\"count\":2},"
    "{\"le\":\"1\",\"count\":2},{\"le\":\"+Inf\",\"count\":3}],\"sum\":2.75,\"count\":3}]}}";

/* Builds the small registry and renders it (text and JSON). Every step may
 * fail with NOMEM under fault injection; returns the first failure. */
static bgeicl_code build_small(met_buf *text, met_buf *json)
{
    met_registry *r;
    met_family *req, *depth, *lat;
    met_series *s;
    bgeicl_code rc = met_registry_create(&r);
    if (rc != BGEICL_OK)
        return rc;
    static const char *const ok[] = {"bge-in-icl", "python", "success"};
    static const char *const bad[] = {"bge-in-icl", "go", "error"};
    if ((rc = met_register(r, MET_COUNTER, "bge_icl_requests_total", "Requests.", REQ_LABELS, 3,
                           NULL, 0, &req, NULL)) ||
        (rc = met_register(r, MET_GAUGE, "bge_icl_queue_depth", "Queue depth.", NULL, 0, NULL, 0,
                           &depth, NULL)) ||
        (rc = met_register(r, MET_HISTOGRAM, "lat_seconds", "Latency.", NULL, 0, LAT_BOUNDS, 3,
                           &lat, NULL)))
        goto out;
    if ((rc = met_series_get(req, ok, 3, &s, NULL)))
        goto out;
    met_add(s, 1);
    met_add(s, 1);
    if ((rc = met_series_get(req, bad, 3, &s, NULL)))
        goto out;
    met_add(s, 1);
    if ((rc = met_series_get(depth, NULL, 0, &s, NULL)))
        goto out;
    met_set(s, 3.5);
    if ((rc = met_series_get(lat, NULL, 0, &s, NULL)))
        goto out;
    met_observe(s, 0.25);
    met_observe(s, 0.5); /* le is inclusive: lands in 0.5 */
    met_observe(s, 2.0);
    if ((rc = met_render_text(r, text)) || (rc = met_render_json(r, json)))
        goto out;
out:
    met_registry_destroy(r);
    return rc;
}

TEST(test_exact_text_and_json)
{
    met_buf t, j;
    met_buf_init(&t);
    met_buf_init(&j);
    CHECK_EQ_INT(build_small(&t, &j), BGEICL_OK);
    CHECK(t.data && strcmp(t.data, SMALL_TEXT) == 0);
    CHECK(j.data && strcmp(j.data, SMALL_JSON) == 0);
    if (t.data && strcmp(t.data, SMALL_TEXT) != 0)
        fprintf(stderr, "got text:\n%s", t.data);
    if (j.data && strcmp(j.data, SMALL_JSON) != 0)
        fprintf(stderr, "got json:\n%s\n", j.data);
    met_buf_free(&t);
    met_buf_free(&j);
}

TEST(test_escaping)
{
    met_registry *r;
    met_family *f, *h;
    bg_err err;
    CHECK_EQ_INT(met_registry_create(&r), BGEICL_OK);
    static const char *const lab[] = {"k"};
    static const double b[] = {1};
    CHECK_EQ_INT(met_register(r, MET_GAUGE, "g", "say \"hi\" \\ and\nmore", lab, 1, NULL, 0, &f,
                              &err),
                 BGEICL_OK);
    CHECK_EQ_INT(met_register(r, MET_HISTOGRAM, "h", NULL, lab, 1, b, 1, &h, &err), BGEICL_OK);
    met_series *s = met_get(f, "a\\b\"c\nd", NULL);
    CHECK(s != NULL);
    met_set(s, -0.125);
    CHECK(met_get(h, "x", NULL) != NULL);
    met_buf t, j;
    met_buf_init(&t);
    met_buf_init(&j);
    CHECK_EQ_INT(met_render_text(r, &t), BGEICL_OK);
    CHECK_EQ_INT(met_render_json(r, &j), BGEICL_OK);
    CHECK(strcmp(t.data, "# HELP g say \"hi\" \\\\ and\\nmore\n"
                         "# TYPE g gauge\n"
                         "g{k=\"a\\\\b\\\"c\\nd\"} -0.125\n"
                         "# TYPE h histogram\n"
                         "h_bucket{k=\"x\",le=\"1\"} 0\n"
                         "h_bucket{k=\"x\",le=\"+Inf\"} 0\n"
                         "h_sum{k=\"x\"} 0\n"
                         "h_count{k=\"x\"} 0\n") == 0);
    CHECK_STR_CONTAINS(j.data, "\"help\":\"say \\\"hi\\\" \\\\ and\\nmore\"");
    CHECK_STR_CONTAINS(j.data, "{\"labels\":{\"k\":\"a\\\\b\\\"c\\nd\"},\"value\":-0.125}");
    CHECK_STR_CONTAINS(j.data, "\"h\":{\"type\":\"histogram\",\"help\":\"\"");
    met_buf_free(&t);
    met_buf_free(&j);
    met_registry_destroy(r);
}

TEST(test_fmt_double)
{
    char b[32];
    CHECK(strcmp(met_fmt_double(b, 1.0), "1") == 0);
    CHECK(strcmp(met_fmt_double(b, 400000.0), "400000") == 0);
    CHECK(strcmp(met_fmt_double(b, 0.1), "0.1") == 0);
    CHECK(strcmp(met_fmt_double(b, -2.5), "-2.5") == 0);
    CHECK(strcmp(met_fmt_double(b, INFINITY), "+Inf") == 0);
    CHECK(strcmp(met_fmt_double(b, -INFINITY), "-Inf") == 0);
    CHECK(strcmp(met_fmt_double(b, NAN), "NaN") == 0);
    double third = 1.0 / 3.0;
    CHECK(strtod(met_fmt_double(b, third), NULL) == third);
    CHECK(strtod(met_fmt_double(b, 0.1 + 0.2), NULL) == 0.1 + 0.2);
    CHECK(strtod(met_fmt_double(b, 1e300), NULL) == 1e300);
}

static int near(double a, double b) { return fabs(a - b) < 1e-12; }

TEST(test_histogram_quantiles)
{
    met_registry *r;
    met_family *h, *c;
    CHECK_EQ_INT(met_registry_create(&r), BGEICL_OK);
    static const char *const lab[] = {"k"};
    CHECK_EQ_INT(met_register(r, MET_HISTOGRAM, "q", "", lab, 1, LAT_BOUNDS, 3, &h, NULL),
                 BGEICL_OK);
    CHECK_EQ_INT(met_register(r, MET_COUNTER, "c_total", "", NULL, 0, NULL, 0, &c, NULL),
                 BGEICL_OK);
    met_series *s = met_get(h, "a", NULL), *e = met_get(h, "empty", NULL);
    CHECK(s && e);
    met_observe(s, 0.05);
    met_observe(s, 0.2);
    met_observe(s, 0.7);
    met_observe(s, NAN); /* ignored */
    CHECK_EQ_INT(met_histogram_count(s), 3);
    CHECK(near(met_value(s), 0.05 + 0.2 + 0.7));
    /* cumulative 1,2,3,3. p50: rank 1.5 in (0.1,0.5] holding 1 -> 0.1+0.4*0.5.
     * p95: rank 2.85 in (0.5,1] holding 1 -> 0.5+0.5*0.85. */
    CHECK(near(met_histogram_quantile(s, 0.5), 0.3));
    CHECK(near(met_histogram_quantile(s, 0.95), 0.925));
    CHECK(near(met_histogram_quantile(s, 0.0), 0.0));
    CHECK(near(met_histogram_quantile(s, 1.0), 1.0));
    /* p20: rank 0.6 in [0,0.1] holding 1 -> 0.06. */
    CHECK(near(met_histogram_quantile(s, 0.2), 0.06));
    met_observe(s, 5.0); /* +Inf bucket: the top quantile clamps to 1 */
    CHECK(near(met_histogram_quantile(s, 0.99), 1.0));
    CHECK(isinf(met_histogram_quantile(s, 1.5)) && met_histogram_quantile(s, 1.5) > 0);
    CHECK(isinf(met_histogram_quantile(s, -0.1)) && met_histogram_quantile(s, -0.1) < 0);
    CHECK(isnan(met_histogram_quantile(s, NAN)));
    CHECK(isnan(met_histogram_quantile(e, 0.5)));
    CHECK(isnan(met_histogram_quantile(met_get(c, NULL), 0.5)));

    met_buf t;
    met_buf_init(&t);
    CHECK_EQ_INT(met_render_text(r, &t), BGEICL_OK);
    CHECK_STR_CONTAINS(t.data, "q_bucket{k=\"a\",le=\"0.1\"} 1\n"
                               "q_bucket{k=\"a\",le=\"0.5\"} 2\n"
                               "q_bucket{k=\"a\",le=\"1\"} 3\n"
                               "q_bucket{k=\"a\",le=\"+Inf\"} 4\n");
    CHECK_STR_CONTAINS(t.data, "q_count{k=\"a\"} 4\n");
    CHECK_STR_CONTAINS(t.data, "q_bucket{k=\"empty\",le=\"+Inf\"} 0\n");
    met_buf_free(&t);
    met_registry_destroy(r);
}

TEST(test_counter_and_gauge_rules)
{
    met_registry *r;
    met_family *c, *g;
    CHECK_EQ_INT(met_registry_create(&r), BGEICL_OK);
    CHECK_EQ_INT(met_register(r, MET_COUNTER, "c_total", NULL, NULL, 0, NULL, 0, &c, NULL),
                 BGEICL_OK);
    CHECK_EQ_INT(met_register(r, MET_GAUGE, "g", NULL, NULL, 0, NULL, 0, &g, NULL), BGEICL_OK);
    met_series *cs = met_get(c, NULL), *gs = met_get(g, NULL);
    CHECK(cs && gs && met_value(cs) == 0);
    met_add(cs, 2.5);
    met_add(cs, -1);  /* counters only go up */
    met_add(cs, NAN); /* ignored */
    met_set(cs, 100); /* not a gauge: ignored */
    met_observe(cs, 1);
    CHECK(met_value(cs) == 2.5);
    met_set(gs, 10);
    met_add(gs, -3);
    CHECK(met_value(gs) == 7);
    CHECK(met_get(g, NULL) == gs); /* the same series every time */
    met_registry_destroy(r);
}

/* ---- concurrency ---------------------------------------------------------- */

#define THREADS 4
#define PER_THREAD 100000

typedef struct {
    met_family *c, *h;
    int failed;
} race_ctx;

static void *race_worker(void *arg)
{
    race_ctx *ctx = arg;
    /* Every thread creates-or-finds the same series, racing on creation. */
    met_series *c = met_get(ctx->c, "bge-in-icl", "python", "success", NULL);
    met_series *h = met_get(ctx->h, NULL);
    if (!c || !h) {
        ctx->failed = 1;
        return NULL;
    }
    for (int i = 0; i < PER_THREAD; i++) {
        met_add(c, 1.0);
        met_observe(h, (i % 4) * 0.25); /* 0, 0.25, 0.5, 0.75 */
    }
    return NULL;
}

TEST(test_concurrent_updates)
{
    met_registry *r;
    race_ctx ctx[THREADS];
    pthread_t th[THREADS];
    met_family *c, *h;
    CHECK_EQ_INT(met_registry_create(&r), BGEICL_OK);
    CHECK_EQ_INT(met_register(r, MET_COUNTER, "req_total", "", REQ_LABELS, 3, NULL, 0, &c, NULL),
                 BGEICL_OK);
    CHECK_EQ_INT(met_register(r, MET_HISTOGRAM, "lat", "", NULL, 0, LAT_BOUNDS, 3, &h, NULL),
                 BGEICL_OK);
    for (int i = 0; i < THREADS; i++) {
        ctx[i] = (race_ctx){c, h, 0};
        CHECK_EQ_INT(pthread_create(&th[i], NULL, race_worker, &ctx[i]), 0);
    }
    for (int i = 0; i < 20; i++) { /* scrapes while the counts move */
        met_buf t;
        met_buf_init(&t);
        CHECK_EQ_INT(met_render_text(r, &t), BGEICL_OK);
        met_buf_free(&t);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK(!ctx[i].failed);
    }
    met_series *s = met_get(c, "bge-in-icl", "python", "success", NULL);
    CHECK(s && met_value(s) == (double)THREADS * PER_THREAD);
    met_series *hs = met_get(h, NULL);
    CHECK_EQ_INT(met_histogram_count(hs), THREADS * PER_THREAD);
    /* Each thread's sum is 25000 * (0 + 0.25 + 0.5 + 0.75), exact in binary. */
    CHECK(met_value(hs) == THREADS * 37500.0);
    met_buf t;
    met_buf_init(&t);
    CHECK_EQ_INT(met_render_text(r, &t), BGEICL_OK);
    CHECK_STR_CONTAINS(t.data, "req_total{provider=\"bge-in-icl\",language=\"python\","
                               "status=\"success\"} 400000\n");
    CHECK_STR_CONTAINS(t.data, "lat_bucket{le=\"0.1\"} 100000\n");
    CHECK_STR_CONTAINS(t.data, "lat_bucket{le=\"0.5\"} 300000\n");
    CHECK_STR_CONTAINS(t.data, "lat_bucket{le=\"+Inf\"} 400000\n");
    /* Only one series was created despite four racing creators. */
    const char *first = strstr(t.data, "req_total{");
    CHECK(first && !strstr(first + 1, "req_total{"));
    met_buf_free(&t);
    met_registry_destroy(r);
}

/* ---- process metrics -------------------------------------------------------- */

TEST(test_process_metrics)
{
    met_process p;
    bg_err err;
    CHECK_EQ_INT(met_process_read(&p, &err), BGEICL_OK);
    double now = (double)time(NULL);
    CHECK(p.resident_bytes > 0);
    CHECK(p.open_fds >= 3);
    CHECK(p.cpu_seconds >= 0 && p.cpu_seconds < 1e6);
    CHECK(p.start_time > now - 86400 && p.start_time <= now + 5);

    met_registry *r;
    CHECK_EQ_INT(met_registry_create(&r), BGEICL_OK);
    CHECK_EQ_INT(met_register_process(r, &err), BGEICL_OK);
    CHECK_EQ_INT(met_register_process(r, &err), BGEICL_ERR_ARG); /* twice: duplicates */
    met_buf t, j;
    met_buf_init(&t);
    met_buf_init(&j);
    CHECK_EQ_INT(met_render_text(r, &t), BGEICL_OK);
    CHECK_EQ_INT(met_render_json(r, &j), BGEICL_OK);
    CHECK_STR_CONTAINS(t.data, "# TYPE process_cpu_seconds_total counter\n");
    CHECK_STR_CONTAINS(t.data, "# TYPE process_resident_memory_bytes gauge\n");
    CHECK_STR_CONTAINS(t.data, "# TYPE process_open_fds gauge\n");
    CHECK_STR_CONTAINS(t.data, "# TYPE process_start_time_seconds gauge\n");
    const char *rss = strstr(t.data, "\nprocess_resident_memory_bytes ");
    CHECK(rss && strtod(rss + strlen("\nprocess_resident_memory_bytes "), NULL) > 0);
    const char *fds = strstr(t.data, "\nprocess_open_fds ");
    CHECK(fds && strtod(fds + strlen("\nprocess_open_fds "), NULL) >= 3);
    const char *st = strstr(t.data, "\nprocess_start_time_seconds ");
    double start = st ? strtod(st + strlen("\nprocess_start_time_seconds "), NULL) : 0;
    CHECK(start > now - 86400 && start <= now + 5);
    CHECK_STR_CONTAINS(j.data, "\"process_open_fds\":{\"type\":\"gauge\"");
    met_buf_free(&t);
    met_buf_free(&j);
    met_registry_destroy(r);
}

/* ---- validation ---------------------------------------------------------------- */

static bgeicl_code reg(met_registry *r, met_kind k, const char *name, const char *const *labels,
                       int n, const double *b, int nb, bg_err *err)
{
    return met_register(r, k, name, "", labels, n, b, nb, NULL, err);
}

TEST(test_validation)
{
    met_registry *r;
    bg_err err;
    CHECK_EQ_INT(met_registry_create(&r), BGEICL_OK);
    static const char *const colon[] = {"a:b"}, *const dunder[] = {"__x"}, *const le[] = {"le"},
                             *const twice[] = {"a", "a"}, *const five[] = {"a", "b", "c", "d", "e"},
                             *const digit[] = {"1a"}, *const nul[] = {NULL};
    static const double b_ok[] = {1, 2}, b_down[] = {2, 1}, b_same[] = {1, 1}, b_nan[] = {NAN},
                        b_inf[] = {1, INFINITY};
    CHECK_EQ_INT(reg(r, MET_COUNTER, "1abc", NULL, 0, NULL, 0, &err), BGEICL_ERR_ARG);
    CHECK_STR_CONTAINS(err.message, "invalid metric name \"1abc\"");
    CHECK_EQ_INT(reg(r, MET_COUNTER, "a-b", NULL, 0, NULL, 0, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, MET_COUNTER, "", NULL, 0, NULL, 0, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, MET_COUNTER, NULL, NULL, 0, NULL, 0, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, MET_COUNTER, "caf\xc3\xa9", NULL, 0, NULL, 0, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, MET_COUNTER, "ns:sub_total", NULL, 0, NULL, 0, &err), BGEICL_OK);
    CHECK_EQ_INT(reg(r, MET_COUNTER, "_x9", NULL, 0, NULL, 0, &err), BGEICL_OK);
    CHECK_EQ_INT(reg(r, MET_GAUGE, "ns:sub_total", NULL, 0, NULL, 0, &err), BGEICL_ERR_ARG);
    CHECK_STR_CONTAINS(err.message, "already registered");
    CHECK_EQ_INT(reg(r, MET_COUNTER, "l1", colon, 1, NULL, 0, &err), BGEICL_ERR_ARG);
    CHECK_STR_CONTAINS(err.message, "invalid label name \"a:b\"");
    CHECK_EQ_INT(reg(r, MET_COUNTER, "l2", dunder, 1, NULL, 0, &err), BGEICL_ERR_ARG);
    CHECK_STR_CONTAINS(err.message, "reserved");
    CHECK_EQ_INT(reg(r, MET_HISTOGRAM, "l3", le, 1, b_ok, 2, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, MET_COUNTER, "l3", le, 1, NULL, 0, &err), BGEICL_OK);
    CHECK_EQ_INT(reg(r, MET_COUNTER, "l4", twice, 2, NULL, 0, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, MET_COUNTER, "l5", five, 5, NULL, 0, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, MET_COUNTER, "l5", five, 4, NULL, 0, &err), BGEICL_OK);
    CHECK_EQ_INT(reg(r, MET_COUNTER, "l6", digit, 1, NULL, 0, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, MET_COUNTER, "l7", nul, 1, NULL, 0, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, MET_COUNTER, "l8", NULL, 1, NULL, 0, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, MET_COUNTER, "l9", NULL, -1, NULL, 0, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, MET_HISTOGRAM, "h1", NULL, 0, b_down, 2, &err), BGEICL_ERR_ARG);
    CHECK_STR_CONTAINS(err.message, "strictly increasing");
    CHECK_EQ_INT(reg(r, MET_HISTOGRAM, "h2", NULL, 0, b_same, 2, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, MET_HISTOGRAM, "h3", NULL, 0, b_nan, 1, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, MET_HISTOGRAM, "h4", NULL, 0, b_inf, 2, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, MET_HISTOGRAM, "h5", NULL, 0, NULL, 0, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, MET_HISTOGRAM, "h6", NULL, 0, b_ok, MET_MAX_BUCKETS + 1, &err),
                 BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, MET_GAUGE, "g1", NULL, 0, b_ok, 2, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(reg(r, (met_kind)7, "k1", NULL, 0, NULL, 0, &err), BGEICL_ERR_ARG);

    /* Label values: count, NULL, UTF-8. */
    met_family *f;
    CHECK_EQ_INT(met_register(r, MET_COUNTER, "req_total", "", REQ_LABELS, 3, NULL, 0, &f, &err),
                 BGEICL_OK);
    met_series *s = (met_series *)1;
    static const char *const two[] = {"a", "b"}, *const four[] = {"a", "b", "c", "d"},
                             *const has_null[] = {"a", NULL, "c"},
                             *const bad_utf8[] = {"a", "\xff", "c"};
    CHECK_EQ_INT(met_series_get(f, two, 2, &s, &err), BGEICL_ERR_ARG);
    CHECK(s == NULL);
    CHECK_STR_CONTAINS(err.message, "2 label values given, 3 expected");
    CHECK_EQ_INT(met_series_get(f, four, 4, &s, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(met_series_get(f, has_null, 3, &s, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(met_series_get(f, bad_utf8, 3, &s, &err), BGEICL_ERR_ARG);
    CHECK(met_get(f, "a", "b", NULL) == NULL);
    CHECK(met_get(f, "a", "b", "c", "d", NULL) == NULL);
    CHECK(met_get(f, "a", "b", "c", "d", "e", "f", NULL) == NULL);
    CHECK(met_get(f, "a", "b", "c", NULL) != NULL);

    /* Failed registrations left nothing behind. */
    met_buf t;
    met_buf_init(&t);
    CHECK_EQ_INT(met_render_text(r, &t), BGEICL_OK);
    CHECK(!strstr(t.data, "h1") && !strstr(t.data, "l1") && !strstr(t.data, "1abc"));
    CHECK(strstr(t.data, "# TYPE ns:sub_total counter\nns:sub_total 0\n") != NULL);
    met_buf_free(&t);
    met_registry_destroy(r);
}

/* ---- allocation failure ---------------------------------------------------------- */

/* The small registry plus process metrics, under bg_fail_after(n). */
static bgeicl_code build_with_process(void)
{
    met_registry *r;
    bgeicl_code rc = met_registry_create(&r);
    if (rc != BGEICL_OK)
        return rc;
    met_buf t;
    met_buf_init(&t);
    if ((rc = met_register_process(r, NULL)) == BGEICL_OK)
        rc = met_render_text(r, &t);
    met_buf_free(&t);
    met_registry_destroy(r);
    return rc;
}

TEST(test_alloc_failure)
{
    int succeeded = 0;
    for (long n = 0; n < 10000 && !succeeded; n++) {
        met_buf t, j;
        met_buf_init(&t);
        met_buf_init(&j);
        bg_fail_after(n);
        bgeicl_code rc = build_small(&t, &j);
        bg_fail_after(-1);
        CHECK(rc == BGEICL_OK || rc == BGEICL_ERR_NOMEM);
        if (rc == BGEICL_OK) {
            succeeded = 1;
            CHECK(n > 5);
            CHECK(strcmp(t.data, SMALL_TEXT) == 0);
            CHECK(strcmp(j.data, SMALL_JSON) == 0);
        }
        met_buf_free(&t);
        met_buf_free(&j);
    }
    CHECK(succeeded);
    succeeded = 0;
    for (long n = 0; n < 10000 && !succeeded; n++) {
        bg_fail_after(n);
        bgeicl_code rc = build_with_process();
        bg_fail_after(-1);
        CHECK(rc == BGEICL_OK || rc == BGEICL_ERR_NOMEM);
        succeeded = rc == BGEICL_OK;
    }
    CHECK(succeeded);
}

TEST(test_buf)
{
    met_buf b;
    met_buf_init(&b);
    CHECK_EQ_INT(met_buf_status(&b), BGEICL_OK);
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    met_buf_printf(&b, "%s%d", big, 42); /* longer than the printf fast path */
    CHECK_EQ_INT(b.len, 1001);
    CHECK(strcmp(b.data + 999, "42") == 0);
    bg_fail_after(0);
    met_buf_printf(&b, "%s", big);
    bg_fail_after(-1);
    CHECK_EQ_INT(met_buf_status(&b), BGEICL_ERR_NOMEM);
    CHECK_EQ_INT(b.len, 1001); /* unchanged */
    met_buf_puts(&b, "y");     /* sticky: still a no-op */
    CHECK_EQ_INT(b.len, 1001);
    met_buf_free(&b);
    CHECK(b.data == NULL && b.len == 0 && !b.oom);
}

int main(void)
{
    RUN(test_exact_text_and_json);
    RUN(test_escaping);
    RUN(test_fmt_double);
    RUN(test_histogram_quantiles);
    RUN(test_counter_and_gauge_rules);
    RUN(test_concurrent_updates);
    RUN(test_process_metrics);
    RUN(test_validation);
    RUN(test_alloc_failure);
    RUN(test_buf);
    return harness_summary("metrics");
}
