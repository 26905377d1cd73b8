/*
 * test_server.c - the server's own pieces below HTTP: gzip bodies, the
 * scheduler (batching under budgets, admission, closing, concurrent jobs)
 * and log-level parsing. HTTP behaviour is tested against the real server
 * in tests/py/test_server_*.py.
 */
#include <math.h>
#include <pthread.h>
#include <zlib.h>

#include "harness.h"
#include "server/gzip.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/sched.h"
#include "util/util.h"

/* ---- gzip -------------------------------------------------------------------- */

TEST(gzip_round_trip)
{
    const char *text = "{\"input\":[\"hello\",\"world\"]}";
    char *z = NULL, *back = NULL;
    size_t zl = 0, bl = 0;
    CHECK_EQ_INT(gz_deflate(text, strlen(text), &z, &zl), GZ_OK);
    CHECK(zl > 18 && (unsigned char)z[0] == 0x1f && (unsigned char)z[1] == 0x8b);
    CHECK_EQ_INT(gz_inflate(z, zl, 1000, &back, &bl), GZ_OK);
    CHECK_EQ_INT(bl, strlen(text));
    CHECK(back && !strcmp(back, text));
    bg_free(back);

    /* Two members back to back inflate to the concatenation (RFC 1952). */
    char *two = bg_malloc(2 * zl);
    memcpy(two, z, zl);
    memcpy(two + zl, z, zl);
    CHECK_EQ_INT(gz_inflate(two, 2 * zl, 1000, &back, &bl), GZ_OK);
    CHECK_EQ_INT(bl, 2 * strlen(text));
    bg_free(back);

    /* Truncated, corrupted, trailing garbage: all bad data, nothing leaked. */
    CHECK_EQ_INT(gz_inflate(z, zl - 5, 1000, &back, &bl), GZ_BAD_DATA);
    z[zl / 2] ^= 0x55;
    CHECK_EQ_INT(gz_inflate(z, zl, 1000, &back, &bl), GZ_BAD_DATA);
    CHECK_EQ_INT(gz_inflate("not gzip at all", 15, 1000, &back, &bl), GZ_BAD_DATA);
    memcpy(two + zl, "garbage!", 8);
    CHECK_EQ_INT(gz_inflate(two, zl + 8, 1000, &back, &bl), GZ_BAD_DATA);
    CHECK_EQ_INT(gz_inflate("", 0, 1000, &back, &bl), GZ_BAD_DATA);
    bg_free(two);
    bg_free(z);
}

TEST(gzip_bomb_stops_at_limit)
{
    size_t n = 8u << 20; /* 8 MiB of zeros deflate to about 8 KiB */
    char *zeros = calloc(1, n);
    char *z = NULL, *back = NULL;
    size_t zl = 0, bl = 0;
    CHECK_EQ_INT(gz_deflate(zeros, n, &z, &zl), GZ_OK);
    CHECK(zl < 64 * 1024);
    CHECK_EQ_INT(gz_inflate(z, zl, 100000, &back, &bl), GZ_TOO_LARGE);
    CHECK(back == NULL);
    CHECK_EQ_INT(gz_inflate(z, zl, n, &back, &bl), GZ_OK);
    CHECK_EQ_INT(bl, n);
    bg_free(back);
    bg_free(z);
    free(zeros);
}

TEST(gzip_allocation_failures)
{
    const char *text = "some body text that is long enough to compress somewhat somewhat";
    char *z = NULL, *back = NULL;
    size_t zl = 0, bl = 0;
    CHECK_EQ_INT(gz_deflate(text, strlen(text), &z, &zl), GZ_OK);
    bg_fail_after(0);
    CHECK_EQ_INT(gz_inflate(z, zl, 1000, &back, &bl), GZ_NOMEM);
    char *z2 = NULL;
    size_t zl2 = 0;
    CHECK_EQ_INT(gz_deflate(text, strlen(text), &z2, &zl2), GZ_NOMEM);
    bg_fail_after(-1);
    bg_free(z);
}

/* ---- log ------------------------------------------------------------------------ */

TEST(log_levels)
{
    CHECK_EQ_INT(log_level_parse("debug"), LOG_DEBUG);
    CHECK_EQ_INT(log_level_parse("INFO"), LOG_INFO);
    CHECK_EQ_INT(log_level_parse("warning"), LOG_WARN);
    CHECK_EQ_INT(log_level_parse("warn"), LOG_WARN);
    CHECK_EQ_INT(log_level_parse("error"), LOG_ERROR);
    CHECK_EQ_INT(log_level_parse("loud"), -1);
    log_setup(LOG_WARN, 0);
    CHECK(!log_enabled(LOG_INFO));
    CHECK(log_enabled(LOG_ERROR));
    log_setup(LOG_INFO, 0);
}

/* ---- scheduler -------------------------------------------------------------------- */

static bgeicl_model *model;
static size_t dim;

static const char *const texts[] = {
    "def add(a, b): return a + b",
    "for (int i = 0; i < n; i++) sum += v[i];",
    "SELECT name FROM users WHERE id = ?",
    "fn main() { println!(\"hello\"); }",
    "How do I reverse a linked list in place without extra memory?",
    "class Stack: pass",
    "x",
    "package main; import \"fmt\"; func main() { fmt.Println(42) }",
    "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }",
    "The quick brown fox jumps over the lazy dog, again and again and again.",
};
#define N_TEXTS (sizeof texts / sizeof texts[0])

typedef struct seqs {
    bgeicl_tokens tok[N_TEXTS];
    const int32_t *ids[N_TEXTS];
    size_t lens[N_TEXTS];
    float ref[N_TEXTS * 384]; /* bgeicl_embed, unnormalised */
} seqs;

static seqs S;

static int setup_model(void)
{
    if (model)
        return 1;
    const char *dir = harness_model_dir();
    if (!harness_have_model(dir))
        return 0;
    bgeicl_options o;
    bgeicl_options_init(&o);
    o.threads = 2;
    if (bgeicl_model_open(dir, &o, &model, NULL) != BGEICL_OK)
        return 0;
    dim = bgeicl_model_dim(model);
    for (size_t i = 0; i < N_TEXTS; i++) {
        bgeicl_tokenize(model, texts[i], (size_t)-1, 0, &S.tok[i], NULL);
        S.ids[i] = S.tok[i].ids;
        S.lens[i] = S.tok[i].n;
    }
    bgeicl_embed(model, texts, NULL, N_TEXTS, BGEICL_NO_NORMALIZE, S.ref, NULL, NULL);
    return 1;
}

static float max_diff(const float *a, const float *b, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

TEST(sched_splits_by_budget_and_keeps_rows)
{
    if (!setup_model())
        return;
    met_registry *reg = NULL;
    met_family *f = NULL;
    static const double b[] = {1, 2, 4, 8, 16};
    met_registry_create(&reg);
    met_register(reg, MET_HISTOGRAM, "batch", NULL, NULL, 0, b, 5, &f, NULL);
    sched_metrics m = {.batch_size = met_get(f, NULL)};
    /* 40 tokens a batch: the ten texts (8..24 tokens) need several batches. */
    sched_config c = {.max_batch_tokens = 40, .max_batch_seqs = 3, .max_jobs = 4};
    sched *s = NULL;
    CHECK_EQ_INT(sched_create(model, &c, &m, &s, NULL), BGEICL_OK);
    float out[N_TEXTS * 384];
    sched_job j = {.ids = S.ids, .lens = S.lens, .n = N_TEXTS, .out = out};
    CHECK_EQ_INT(sched_submit(s, &j), SCHED_OK);
    sched_wait(s, &j);
    CHECK_EQ_INT(j.rc, BGEICL_OK);
    CHECK(max_diff(out, S.ref, N_TEXTS * dim) < 1e-4f);
    CHECK(met_histogram_count(m.batch_size) >= 4); /* >= ceil(10 / 3) batches */
    CHECK(met_value(m.batch_size) == (double)N_TEXTS); /* every text ran once */
    CHECK(j.inference_ms > 0);
    sched_destroy(s);
    met_registry_destroy(reg);
}

TEST(sched_admission_full_and_closed)
{
    if (!setup_model())
        return;
    sched_config c = {.max_batch_tokens = 4096, .max_batch_seqs = 64, .max_jobs = 1,
                      .debug_delay_ms = 300};
    sched *s = NULL;
    CHECK_EQ_INT(sched_create(model, &c, NULL, &s, NULL), BGEICL_OK);
    float out1[384], out2[384];
    sched_job a = {.ids = S.ids, .lens = S.lens, .n = 1, .out = out1};
    sched_job b = {.ids = S.ids + 1, .lens = S.lens + 1, .n = 1, .out = out2};
    CHECK_EQ_INT(sched_submit(s, &a), SCHED_OK);
    CHECK_EQ_INT(sched_depth(s), 1);
    CHECK_EQ_INT(sched_submit(s, &b), SCHED_FULL); /* a is still running */
    sched_wait(s, &a);
    CHECK(max_diff(out1, S.ref, dim) < 1e-4f);
    CHECK_EQ_INT(sched_depth(s), 0);
    CHECK_EQ_INT(sched_submit(s, &b), SCHED_OK);
    sched_close(s);
    sched_job c2 = {.ids = S.ids, .lens = S.lens, .n = 1, .out = out1};
    CHECK_EQ_INT(sched_submit(s, &c2), SCHED_CLOSED);
    sched_wait(s, &b); /* admitted before the close: still runs */
    CHECK(max_diff(out2, S.ref + dim, dim) < 1e-4f);
    sched_destroy(s);
}

typedef struct client {
    sched *s;
    int seed;
    int bad;
} client;

static void *client_run(void *arg)
{
    client *c = arg;
    float out[N_TEXTS * 384];
    for (int round = 0; round < 5; round++) {
        size_t first = (size_t)(c->seed + round) % N_TEXTS;
        size_t n = 1 + (size_t)(c->seed * 7 + round * 3) % (N_TEXTS - first);
        sched_job j = {.ids = S.ids + first, .lens = S.lens + first, .n = n, .out = out};
        if (sched_submit(c->s, &j) != SCHED_OK) {
            c->bad++;
            continue;
        }
        sched_wait(c->s, &j);
        if (j.rc != BGEICL_OK || max_diff(out, S.ref + first * dim, n * dim) >= 1e-4f)
            c->bad++;
    }
    return NULL;
}

TEST(sched_concurrent_jobs_get_their_own_rows)
{
    if (!setup_model())
        return;
    sched_config c = {.max_batch_tokens = 64, .max_batch_seqs = 5, .max_jobs = 64};
    sched *s = NULL;
    CHECK_EQ_INT(sched_create(model, &c, NULL, &s, NULL), BGEICL_OK);
    enum { N = 8 };
    client cl[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        cl[i] = (client){s, i, 0};
        pthread_create(&th[i], NULL, client_run, &cl[i]);
    }
    int bad = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        bad += cl[i].bad;
    }
    CHECK_EQ_INT(bad, 0);
    sched_destroy(s);
}

TEST(sched_rejects_bad_config_and_survives_nomem)
{
    if (!setup_model())
        return;
    sched *s = NULL;
    sched_config zero = {.max_batch_tokens = 0, .max_batch_seqs = 1, .max_jobs = 1};
    CHECK_EQ_INT(sched_create(model, &zero, NULL, &s, NULL), BGEICL_ERR_ARG);
    sched_config c = {.max_batch_tokens = 64, .max_batch_seqs = 4, .max_jobs = 4};
    for (long k = 0; k < 4; k++) {
        bg_fail_after(k);
        bgeicl_code rc = sched_create(model, &c, NULL, &s, NULL);
        bg_fail_after(-1);
        CHECK(rc == BGEICL_ERR_NOMEM || rc == BGEICL_OK);
        if (rc == BGEICL_OK)
            sched_destroy(s);
    }
    CHECK_EQ_INT(sched_create(model, &c, NULL, &s, NULL), BGEICL_OK);
    float out[384];
    sched_job j = {.ids = S.ids, .lens = S.lens, .n = 1, .out = out};
    bg_fail_after(0);
    CHECK_EQ_INT(sched_submit(s, &j), SCHED_NOMEM);
    bg_fail_after(-1);
    CHECK_EQ_INT(sched_depth(s), 0);
    sched_destroy(s);
}

int main(void)
{
    RUN(gzip_round_trip);
    RUN(gzip_bomb_stops_at_limit);
    RUN(gzip_allocation_failures);
    RUN(log_levels);
    RUN(sched_splits_by_budget_and_keeps_rows);
    RUN(sched_admission_full_and_closed);
    RUN(sched_concurrent_jobs_get_their_own_rows);
    RUN(sched_rejects_bad_config_and_survives_nomem);
    if (model) {
        for (size_t i = 0; i < N_TEXTS; i++)
            bgeicl_tokens_free(&S.tok[i]);
        bgeicl_model_close(model);
    }
    return harness_summary("server");
}
