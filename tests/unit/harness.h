/*
 * harness.h - a minimal test harness for the C unit tests.
 *
 *   TEST(name) { CHECK(x == 1); CHECK_EQ_INT(a, b); }
 *   int main(void) { RUN(name); return harness_summary("tokenizer"); }
 *
 * Each CHECK failure prints file:line and the expression. harness_summary
 * prints "<suite>: N passed, N failed" and returns the exit status.
 * BGEICL_TEST_MODEL_DIR / BGEICL_TEST_MINILM_DIR name the model folders.
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int harness_failures_in_test;
static int harness_passed, harness_failed;

#define TEST(name) static void name(void)

#define CHECK(expr)                                                              \
    do {                                                                         \
        if (!(expr)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr); \
            harness_failures_in_test++;                                          \
        }                                                                        \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                       \
    do {                                                                         \
        long long va_ = (long long)(a), vb_ = (long long)(b);                    \
        if (va_ != vb_) {                                                        \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,  \
                    __LINE__, #a, #b, va_, vb_);                                 \
            harness_failures_in_test++;                                          \
        }                                                                        \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                          \
    do {                                                                         \
        const char *h_ = (hay), *n_ = (needle);                                  \
        if (!h_ || !strstr(h_, n_)) {                                            \
            fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, \
                    __LINE__, h_ ? h_ : "(null)", n_);                           \
            harness_failures_in_test++;                                          \
        }                                                                        \
    } while (0)

#define RUN(name)                                                                \
    do {                                                                         \
        harness_failures_in_test = 0;                                            \
        name();                                                                  \
        if (harness_failures_in_test) {                                          \
            harness_failed++;                                                    \
            fprintf(stderr, "FAIL %s\n", #name);                                 \
        } else {                                                                 \
            harness_passed++;                                                    \
        }                                                                        \
    } while (0)

static inline int harness_summary(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, harness_passed, harness_failed);
    return harness_failed ? 1 : 0;
}

/* Whether a test may skip for lack of a fetched file. The test command sets
 * BGEICL_REQUIRE_MODELS=1, so there a missing file is a failure, never a
 * silent pass. Returns 1 if the test should go on. */
static inline int harness_have_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        return 1;
    }
    const char *req = getenv("BGEICL_REQUIRE_MODELS");
    if (req && *req == '1') {
        fprintf(stderr, "%s: missing, and BGEICL_REQUIRE_MODELS=1\n", path);
        harness_failures_in_test++;
    } else {
        fprintf(stderr, "SKIP: %s not found\n", path);
    }
    return 0;
}

/* The same for a model folder (its model.safetensors). */
static inline int harness_have_model(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    return harness_have_file(p);
}

static inline const char *harness_model_dir(void)
{
    const char *d = getenv("BGEICL_TEST_MODEL_DIR");
    return d ? d : "models/bge-small-en-v1.5";
}

static inline const char *harness_minilm_dir(void)
{
    const char *d = getenv("BGEICL_TEST_MINILM_DIR");
    return d ? d : "models/all-MiniLM-L6-v2";
}

#endif
