/*
 * test_api.c - the public API: argument checks, error codes, truncation,
 * pre-tokenized input, concurrency and allocation failure in the embed path.
 */
#include <math.h>
#include <pthread.h>

#include "bgeicl.h"
#include "harness.h"
#include "util/util.h"

static bgeicl_model *model;

static float dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return (float)s;
}

TEST(open_errors)
{
    bgeicl_model *m = (bgeicl_model *)1;
    bgeicl_error err;
    CHECK_EQ_INT(bgeicl_model_open(NULL, NULL, &m, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(bgeicl_model_open("no/such/dir", NULL, &m, &err), BGEICL_ERR_IO);
    CHECK_STR_CONTAINS(err.message, "no/such/dir/config.json");
    CHECK(m == NULL);
    bgeicl_options o;
    bgeicl_options_init(&o);
    o.dtype = (bgeicl_dtype)7;
    CHECK_EQ_INT(bgeicl_model_open(harness_model_dir(), &o, &m, NULL), BGEICL_ERR_UNSUPPORTED);
    bgeicl_model_close(NULL);
    CHECK(strcmp(bgeicl_code_name(BGEICL_ERR_TOO_LONG), "too_long") == 0);
    CHECK(strcmp(bgeicl_code_name((bgeicl_code)99), "unknown") == 0);
}

TEST(info)
{
    bgeicl_model_info mi;
    bgeicl_model_info_get(model, &mi);
    CHECK_EQ_INT(mi.dim, 384);
    CHECK_EQ_INT(mi.max_tokens, 512);
    CHECK(strcmp(mi.id, "bge-small-en-v1.5") == 0);
    CHECK(strcmp(mi.dtype, "fp32") == 0);
    CHECK(mi.threads >= 1);
    CHECK(strcmp(bgeicl_token_text(model, 101), "[CLS]") == 0);
    CHECK(bgeicl_token_text(model, -1) == NULL);
    CHECK(bgeicl_token_text(model, 1 << 30) == NULL);
}

TEST(embed_argument_errors)
{
    float out[384];
    const char *texts[] = {"a", NULL};
    bgeicl_error err;
    CHECK_EQ_INT(bgeicl_embed(model, texts, NULL, 0, 0, out, NULL, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(bgeicl_embed(NULL, texts, NULL, 1, 0, out, NULL, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(bgeicl_embed(model, texts, NULL, 1, 0, NULL, NULL, &err), BGEICL_ERR_ARG);
    float two[768];
    CHECK_EQ_INT(bgeicl_embed(model, texts, NULL, 2, 0, two, NULL, &err), BGEICL_ERR_ARG);
    CHECK_STR_CONTAINS(err.message, "input 1");
    const char *bad[] = {"ok", "bad \xff utf8"};
    CHECK_EQ_INT(bgeicl_embed(model, bad, NULL, 2, 0, two, NULL, &err), BGEICL_ERR_ARG);
    CHECK_STR_CONTAINS(err.message, "UTF-8");
}

TEST(truncation)
{
    size_t n = 3000;
    char *longtext = malloc(n * 2 + 1);
    for (size_t i = 0; i < n; i++)
        longtext[2 * i] = 'a' + (i % 26), longtext[2 * i + 1] = ' ';
    longtext[2 * n] = '\0';
    const char *texts[] = {longtext};
    float a[384];
    bgeicl_error err;
    bgeicl_embed_stats st;
    CHECK_EQ_INT(bgeicl_embed(model, texts, NULL, 1, 0, a, &st, &err), BGEICL_OK);
    CHECK_EQ_INT(st.tokens, 512);
    CHECK_EQ_INT(bgeicl_embed(model, texts, NULL, 1, BGEICL_NO_TRUNCATE, a, NULL, &err),
                 BGEICL_ERR_TOO_LONG);
    CHECK_STR_CONTAINS(err.message, "512");
    bgeicl_tokens t = {0};
    CHECK_EQ_INT(bgeicl_tokenize(model, longtext, (size_t)-1, 0, &t, &err), BGEICL_OK);
    CHECK_EQ_INT(t.n, 512);
    CHECK_EQ_INT(bgeicl_tokenize(model, longtext, (size_t)-1, BGEICL_NO_TRUNCATE, &t, &err),
                 BGEICL_ERR_TOO_LONG);
    bgeicl_tokens_free(&t);
    free(longtext);
}

TEST(ids_equal_text)
{
    const char *text = "int main(void) { return 0; }";
    bgeicl_tokens t = {0};
    bgeicl_error err;
    CHECK_EQ_INT(bgeicl_tokenize(model, text, (size_t)-1, 0, &t, &err), BGEICL_OK);
    float a[384], b[384];
    const int32_t *ids[] = {t.ids};
    size_t lens[] = {t.n};
    CHECK_EQ_INT(bgeicl_embed(model, &text, NULL, 1, 0, a, NULL, &err), BGEICL_OK);
    CHECK_EQ_INT(bgeicl_embed_ids(model, ids, lens, 1, 0, b, NULL, &err), BGEICL_OK);
    CHECK(dot(a, b, 384) > 0.999999f);
    int32_t bad_id[] = {101, 999999, 102};
    const int32_t *bids[] = {bad_id};
    size_t blen[] = {3};
    CHECK_EQ_INT(bgeicl_embed_ids(model, bids, blen, 1, 0, b, NULL, &err), BGEICL_ERR_ARG);
    CHECK_STR_CONTAINS(err.message, "999999");
    size_t zero[] = {0};
    CHECK_EQ_INT(bgeicl_embed_ids(model, bids, zero, 1, 0, b, NULL, &err), BGEICL_ERR_ARG);
    bgeicl_tokens_free(&t);
}

TEST(batch_equals_single_and_query_differs)
{
    const char *texts[] = {"alpha", "def f(x):\n    return x * 2", "", "日本語 text", "beta"};
    size_t n = 5;
    float batch[5 * 384], one[384];
    bgeicl_error err;
    CHECK_EQ_INT(bgeicl_embed(model, texts, NULL, n, 0, batch, NULL, &err), BGEICL_OK);
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_INT(bgeicl_embed(model, &texts[i], NULL, 1, 0, one, NULL, &err), BGEICL_OK);
        CHECK(dot(one, batch + i * 384, 384) > 0.99999f);
        CHECK(fabsf(dot(one, one, 384) - 1.0f) < 1e-5f);
    }
    CHECK_EQ_INT(bgeicl_embed(model, texts, NULL, 1, BGEICL_QUERY, one, NULL, &err), BGEICL_OK);
    CHECK(dot(one, batch, 384) < 0.999f);
}

/* ---- concurrency --------------------------------------------------------- */

typedef struct thread_arg {
    int id;
    float out[4 * 384];
} thread_arg;

static const char *conc_texts[] = {"one fish", "two fish", "red fish", "blue fish"};

static void *embed_thread(void *p)
{
    thread_arg *a = p;
    for (int rep = 0; rep < 3; rep++)
        if (bgeicl_embed(model, conc_texts, NULL, 4, 0, a->out, NULL, NULL) != BGEICL_OK)
            a->id = -1;
    return NULL;
}

TEST(concurrent_embeds)
{
    float ref[4 * 384];
    CHECK_EQ_INT(bgeicl_embed(model, conc_texts, NULL, 4, 0, ref, NULL, NULL), BGEICL_OK);
    pthread_t th[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i].id = i;
        pthread_create(&th[i], NULL, embed_thread, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].id == i);
        for (int r = 0; r < 4; r++)
            CHECK(dot(ref + r * 384, args[i].out + r * 384, 384) > 0.999999f);
    }
}

/* ---- allocation failure ---------------------------------------------------- */

TEST(embed_survives_allocation_failure)
{
    const char *texts[] = {"some text", "more text with several words"};
    float out[2 * 384], ref[2 * 384];
    CHECK_EQ_INT(bgeicl_embed(model, texts, NULL, 2, BGEICL_QUERY, ref, NULL, NULL), BGEICL_OK);
    int ok = 0;
    for (long n = 0; n < 200 && !ok; n++) {
        bgeicl_error err;
        bg_fail_after(n);
        bgeicl_code rc = bgeicl_embed(model, texts, NULL, 2, BGEICL_QUERY, out, NULL, &err);
        bg_fail_after(-1);
        CHECK(rc == BGEICL_OK || rc == BGEICL_ERR_NOMEM);
        ok = rc == BGEICL_OK;
    }
    CHECK(ok);
    CHECK(dot(out, ref, 384) > 0.999999f);
}

TEST(open_survives_allocation_failure)
{
    /* Loading makes thousands of allocations (one per vocabulary entry at
     * most); failing at a spread of points covers each stage of the load. */
    unsigned long before = bg_alloc_count();
    bgeicl_model *m = NULL;
    CHECK_EQ_INT(bgeicl_model_open(harness_minilm_dir(), NULL, &m, NULL), BGEICL_OK);
    bgeicl_model_close(m);
    long total = (long)(bg_alloc_count() - before);
    for (long n = 0; n <= total; n += n < 64 ? 1 : total / 40 + 1) {
        bgeicl_error err;
        bg_fail_after(n);
        bgeicl_code rc = bgeicl_model_open(harness_minilm_dir(), NULL, &m, &err);
        bg_fail_after(-1);
        CHECK(rc == BGEICL_OK || rc == BGEICL_ERR_NOMEM);
        if (rc == BGEICL_ERR_NOMEM)
            CHECK(m == NULL);
        bgeicl_model_close(m);
        m = NULL;
    }
}

/* ---- dtypes ------------------------------------------------------------------ */

TEST(dtype_names)
{
    bgeicl_dtype d = BGEICL_DTYPE_FP32;
    CHECK(strcmp(bgeicl_dtype_name(BGEICL_DTYPE_FP32), "fp32") == 0);
    CHECK(strcmp(bgeicl_dtype_name(BGEICL_DTYPE_BF16), "bf16") == 0);
    CHECK(strcmp(bgeicl_dtype_name(BGEICL_DTYPE_INT8), "int8") == 0);
    CHECK_EQ_INT(bgeicl_dtype_parse("int8", &d), 0);
    CHECK_EQ_INT(d, BGEICL_DTYPE_INT8);
    CHECK(bgeicl_dtype_name((bgeicl_dtype)7) == NULL);
    CHECK_EQ_INT(bgeicl_dtype_parse("bf16", &d), 0);
    CHECK_EQ_INT(d, BGEICL_DTYPE_BF16);
    CHECK_EQ_INT(bgeicl_dtype_parse("fp32", &d), 0);
    CHECK_EQ_INT(d, BGEICL_DTYPE_FP32);
    CHECK_EQ_INT(bgeicl_dtype_parse("int4", &d), -1);
    CHECK_EQ_INT(bgeicl_dtype_parse("", &d), -1);
    CHECK_EQ_INT(bgeicl_dtype_parse(NULL, &d), -1);
    CHECK_EQ_INT(d, BGEICL_DTYPE_FP32); /* untouched on failure */
}

/* Reduced-precision weights: reported, close to fp32 (the Python parity
 * test checks every text of the corpus), and every allocation of the path
 * (the packed weights at open, the converted activations per pass) fails
 * cleanly. */
static void reduced_model(bgeicl_dtype dtype, float bar)
{
    const char *texts[] = {"def add(a, b): return a + b", "int main(void) { return 0; }",
                           "a longer sentence about retrieval of source code by meaning"};
    float ref[3 * 384], out[3 * 384];
    bgeicl_options o;
    bgeicl_options_init(&o);
    o.dtype = dtype;
    bgeicl_model *m = NULL;
    bgeicl_error err;
    if (bgeicl_model_open(harness_model_dir(), &o, &m, &err) != BGEICL_OK) {
        fprintf(stderr, "%s open: %s\n", bgeicl_dtype_name(dtype), err.message);
        harness_failures_in_test++;
        return;
    }
    bgeicl_model_info mi;
    bgeicl_model_info_get(m, &mi);
    CHECK(strcmp(mi.dtype, bgeicl_dtype_name(dtype)) == 0);
    CHECK_EQ_INT(bgeicl_embed(model, texts, NULL, 3, 0, ref, NULL, NULL), BGEICL_OK);
    CHECK_EQ_INT(bgeicl_embed(m, texts, NULL, 3, 0, out, NULL, NULL), BGEICL_OK);
    for (int r = 0; r < 3; r++) {
        float c = dot(ref + r * 384, out + r * 384, 384);
        CHECK(c >= bar && c < 0.9999999f); /* close, and really reduced */
    }
    int ok = 0;
    for (long n = 0; n < 200 && !ok; n++) {
        bg_fail_after(n);
        bgeicl_code rc = bgeicl_embed(m, texts, NULL, 3, 0, ref, NULL, &err);
        bg_fail_after(-1);
        CHECK(rc == BGEICL_OK || rc == BGEICL_ERR_NOMEM);
        ok = rc == BGEICL_OK;
    }
    CHECK(ok && !memcmp(ref, out, sizeof out)); /* and the same vectors after */
    bgeicl_model_close(m);
    /* The engine's allocations, and the layers' matrices it reads from the
     * file, come last in an open. */
    unsigned long before = bg_alloc_count();
    CHECK_EQ_INT(bgeicl_model_open(harness_minilm_dir(), &o, &m, NULL), BGEICL_OK);
    bgeicl_model_close(m);
    long total = (long)(bg_alloc_count() - before);
    for (long n = total > 40 ? total - 40 : 0; n <= total; n++) {
        m = NULL;
        bg_fail_after(n);
        bgeicl_code rc = bgeicl_model_open(harness_minilm_dir(), &o, &m, &err);
        bg_fail_after(-1);
        CHECK(rc == BGEICL_OK || rc == BGEICL_ERR_NOMEM);
        CHECK((rc == BGEICL_OK) == (m != NULL));
        bgeicl_model_close(m);
    }
}

TEST(bf16_model) { reduced_model(BGEICL_DTYPE_BF16, 0.999f); }
TEST(int8_model) { reduced_model(BGEICL_DTYPE_INT8, 0.99f); }

int main(void)
{
    RUN(open_errors);
    RUN(dtype_names);
    if (harness_have_model(harness_model_dir()) && harness_have_model(harness_minilm_dir())) {
        bgeicl_error err;
        if (bgeicl_model_open(harness_model_dir(), NULL, &model, &err) != BGEICL_OK) {
            fprintf(stderr, "cannot open model: %s\n", err.message);
            return 1;
        }
        RUN(info);
        RUN(embed_argument_errors);
        RUN(truncation);
        RUN(ids_equal_text);
        RUN(batch_equals_single_and_query_differs);
        RUN(concurrent_embeds);
        RUN(embed_survives_allocation_failure);
        RUN(open_survives_allocation_failure);
        RUN(bf16_model);
    RUN(int8_model);
        bgeicl_model_close(model);
    } else if (harness_failures_in_test) {
        harness_failed++;
    }
    return harness_summary("api");
}
