/*
 * test_client.c - the client library without a server: the batch-size
 * controller, the server list and weighted selection, options from the
 * environment, and calls against a port nobody listens on (connection
 * errors, retries, allocation failure).
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bgeicl.h"
#include "client/adaptive.h"
#include "client/options.h"
#include "client/servers.h"
#include "harness.h"
#include "util/util.h"

/* ---- adaptive controller --------------------------------------------------------- */

static cl_adaptive_cfg guide(int start, int min, int max)
{
    return (cl_adaptive_cfg){.enabled = 1, .start = start, .min = min, .max = max, .window = 10,
                             .min_points = 3, .shrink_above = 1.5, .shrink_factor = 0.8,
                             .grow_below = 0.7, .grow_factor = 1.2};
}

/* Records `k` batches of `size` texts at `per_text` seconds each. */
static int feed(cl_adaptive *a, int k, double per_text)
{
    int s = cl_adaptive_size(a);
    for (int i = 0; i < k; i++)
        s = cl_adaptive_record(a, per_text * s, s);
    return s;
}

TEST(adaptive_no_action_before_three_points)
{
    cl_adaptive_cfg c = guide(50, 10, 100);
    cl_adaptive a;
    cl_adaptive_init(&a, &c);
    CHECK_EQ_INT(cl_adaptive_record(&a, 0.001 * 50, 50), 50);
    CHECK_EQ_INT(cl_adaptive_record(&a, 10.0 * 50, 50), 50); /* a huge jump, but 2 points */
    c.min_points = 6;
    cl_adaptive_init(&a, &c);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(cl_adaptive_record(&a, 0.001 * 50, 50), 50);
    CHECK_EQ_INT(cl_adaptive_record(&a, 1.0 * 50, 50), 50); /* 5 points < min_points */
    c.min_points = 3;
    cl_adaptive_init(&a, &c);
    for (int i = 0; i < 4; i++)
        cl_adaptive_record(&a, 0.001 * 50, 50);
    CHECK_EQ_INT(cl_adaptive_record(&a, 1.0 * 50, 50), 40); /* the same 5 points: acts */
}

TEST(adaptive_shrinks_on_slowdown_and_grows_back)
{
    cl_adaptive_cfg c = guide(50, 10, 100);
    cl_adaptive a;
    cl_adaptive_init(&a, &c);
    CHECK_EQ_INT(feed(&a, 5, 0.001), 50); /* steady: no change */
    int s = feed(&a, 1, 0.01);             /* one batch 10x slower per text */
    CHECK_EQ_INT(s, 40);
    s = feed(&a, 1, 0.001); /* recent mean still high: 0.004 vs window 0.0019 */
    CHECK(s <= 40);
    int lowest = s;
    for (int i = 0; i < 6; i++)
        s = feed(&a, 1, 0.001);
    CHECK(s > lowest); /* fast again: the window still remembers the slow batch */
}

TEST(adaptive_per_text_time_ignores_batch_size)
{
    /* The same server speed at different sizes is no signal. */
    cl_adaptive_cfg c = guide(50, 10, 100);
    cl_adaptive a;
    cl_adaptive_init(&a, &c);
    for (int i = 0; i < 10; i++)
        cl_adaptive_record(&a, 0.002 * (i % 2 ? 10 : 90), i % 2 ? 10 : 90);
    CHECK_EQ_INT(cl_adaptive_size(&a), 50);
}

TEST(adaptive_clamps_and_grows_from_one)
{
    cl_adaptive_cfg c = guide(1, 1, 3);
    cl_adaptive a;
    cl_adaptive_init(&a, &c);
    feed(&a, 8, 1.0);
    CHECK_EQ_INT(feed(&a, 1, 0.01), 1); /* one fast batch: recent 0.67 vs 0.88 */
    CHECK_EQ_INT(feed(&a, 1, 0.01), 2); /* 1 x 1.2 = 1: at least +1 */
    CHECK_EQ_INT(feed(&a, 1, 0.01), 3);
    CHECK_EQ_INT(feed(&a, 1, 0.01), 3); /* max */
    feed(&a, 10, 0.01);
    CHECK_EQ_INT(feed(&a, 3, 100.0), 1); /* shrinks to min, never 0 */
    c = guide(500, 10, 100);
    cl_adaptive_init(&a, &c);
    CHECK_EQ_INT(cl_adaptive_size(&a), 100); /* the start is clamped */
}

TEST(adaptive_custom_thresholds_and_disabled)
{
    cl_adaptive_cfg c = guide(50, 10, 100);
    cl_adaptive a, d;
    cl_adaptive_init(&d, &c);
    c.shrink_above = 3.0; /* a 2x slowdown is now tolerated */
    c.shrink_factor = 0.5;
    cl_adaptive_init(&a, &c);
    feed(&a, 9, 0.001);
    feed(&d, 9, 0.001);
    CHECK_EQ_INT(feed(&d, 1, 0.01), 40); /* the guide's 1.5: shrinks */
    CHECK_EQ_INT(feed(&a, 1, 0.01), 50); /* 2.1 x the window: tolerated */
    CHECK_EQ_INT(feed(&a, 1, 1.0), 25);  /* 3.3 x: halved */
    c = guide(50, 10, 100);
    c.enabled = 0;
    cl_adaptive_init(&a, &c);
    feed(&a, 5, 0.001);
    CHECK_EQ_INT(feed(&a, 3, 1.0), 50);
}

/* ---- server list ------------------------------------------------------------------ */

TEST(servers_parse_urls_and_weights)
{
    cl_server *s;
    size_t n;
    bgeicl_error err;
    CHECK_EQ_INT(cl_servers_parse(" http://a:8080@3, https://b/ ,http://u@c:1", &s, &n, &err),
                 BGEICL_OK);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK(!strcmp(s[0].url, "http://a:8080") && s[0].weight == 3);
        CHECK(!strcmp(s[1].url, "https://b") && s[1].weight == 1);
        CHECK(!strcmp(s[2].url, "http://u@c:1") && s[2].weight == 1);
    }
    cl_server_array_free(s, n);
    CHECK_EQ_INT(cl_servers_parse("http://a@0.5", &s, &n, &err), BGEICL_OK);
    CHECK(n == 1 && s[0].weight == 0.5);
    cl_server_array_free(s, n);
}

TEST(servers_parse_errors_name_the_entry)
{
    static const struct {
        const char *list, *want;
    } bad[] = {{"ftp://a", "'ftp://a' is not an http"},  {"a:8080", "'a:8080' is not an http"},
               {"http://a@0", "must be > 0"},              {"http://a@-2", "must be > 0"},
               {"http://a@3x", "'3x' in 'http://a@3x' is not a number"},
               {"http://a,,http://b", "entry 2"},          {"http://", "has no host"},
               {"http://a b", "contains a space"},        {"", "entry 1"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cl_server *s = NULL;
        size_t n = 9;
        bgeicl_error err;
        CHECK_EQ_INT(cl_servers_parse(bad[i].list, &s, &n, &err), BGEICL_ERR_ARG);
        CHECK_STR_CONTAINS(err.message, bad[i].want);
        CHECK(s == NULL && n == 0);
    }
}

TEST(servers_weighted_selection_proportions)
{
    cl_servers v;
    CHECK_EQ_INT(cl_servers_init(&v, "http://a@3,http://b,http://c@2", NULL), BGEICL_OK);
    int count[3] = {0}, run = 0, longest = 0;
    size_t last = 9;
    for (int i = 0; i < 600; i++) {
        size_t k = cl_servers_pick(&v, NULL);
        count[k]++;
        run = k == last ? run + 1 : 1;
        longest = run > longest ? run : longest;
        last = k;
    }
    CHECK_EQ_INT(count[0], 300);
    CHECK_EQ_INT(count[1], 100);
    CHECK_EQ_INT(count[2], 200);
    CHECK(longest <= 2); /* smooth: picks are spread, not in runs */

    /* An unhealthy server drops to weight/1000 until it answers again. */
    cl_servers_note(&v, 0, 0, 1, CL_ST_UNREACHABLE, -1);
    memset(count, 0, sizeof count);
    for (int i = 0; i < 300; i++)
        count[cl_servers_pick(&v, NULL)]++;
    CHECK(count[0] <= 1);
    cl_servers_note(&v, 0, 1, 0, CL_ST_HEALTHY, 1.0);
    memset(count, 0, sizeof count);
    for (int i = 0; i < 600; i++)
        count[cl_servers_pick(&v, NULL)]++;
    CHECK(count[0] >= 290);
    cl_servers_free(&v);
}

TEST(servers_failover_avoids_tried_and_prefers_healthy)
{
    cl_servers v;
    CHECK_EQ_INT(cl_servers_init(&v, "http://a@100,http://b,http://c", NULL), BGEICL_OK);
    unsigned char tried[3] = {1, 0, 0};
    for (int i = 0; i < 20; i++)
        CHECK(cl_servers_pick(&v, tried) != 0);
    cl_servers_note(&v, 1, 0, 1, CL_ST_DRAINING, -1);
    for (int i = 0; i < 20; i++)
        CHECK_EQ_INT(cl_servers_pick(&v, tried), 2); /* b is down: c */
    CHECK(cl_servers_untried_healthy(&v, tried));
    tried[2] = 1;
    CHECK(!cl_servers_untried_healthy(&v, tried));
    CHECK_EQ_INT(cl_servers_pick(&v, tried), 1); /* only b is untried, down or not */
    tried[1] = 1;
    size_t k = cl_servers_pick(&v, tried); /* all tried: anyone */
    CHECK(k < 3);
    bgeicl_server_state st;
    cl_servers_state(&v, 1, &st);
    CHECK(!st.healthy && !strcmp(st.status, "draining") && st.effective_weight == 1.0 / 1000);
    cl_servers_free(&v);
}

/* ---- options ------------------------------------------------------------------------ */

TEST(options_from_env_apply_and_name_bad_variables)
{
    bgeicl_client_options o;
    bgeicl_client_options_init(&o);
    CHECK(o.batch_size == 50 && o.max_retries == 3 && o.adaptive == 1 && o.window == 10);
    setenv("BGE_ICL_BASE_URL", "http://x:1@2", 1);
    setenv("BGE_ICL_BATCH_SIZE", "64", 1);
    setenv("BGE_ICL_ENABLE_ICL", "false", 1);
    setenv("BGE_ICL_TIMEOUT", "2.5", 1);
    setenv("BGE_ICL_LANGUAGE", "py", 1);
    CHECK_EQ_INT(bgeicl_client_options_from_env(&o, NULL), BGEICL_OK);
    CHECK(!strcmp(o.servers, "http://x:1@2") && o.batch_size == 64 && !o.enable_icl &&
          o.timeout_s == 2.5 && !strcmp(o.language, "py"));
    static const char *const bad[][2] = {{"BGE_ICL_BATCH_SIZE", "ten"},
                                         {"BGE_ICL_TIMEOUT", "-1"},
                                         {"BGE_ICL_ENABLE_ICL", "maybe"},
                                         {"BGE_ICL_ADAPTIVE_BATCHING", "2"},
                                         {"BGE_ICL_MIN_BATCH_SIZE", "0"},
                                         {"BGE_ICL_MAX_BATCH_SIZE", "1e3"},
                                         {"BGE_ICL_SIMILARITY_THRESHOLD", "1.5"},
                                         {"BGE_ICL_CONTEXT_CACHE_SIZE", "-3"},
                                         {"BGE_ICL_HEALTH_CHECK_INTERVAL", "soon"},
                                         {"BGE_ICL_LANGUAGE", "klingon"},
                                         {"BGE_ICL_LOG_LEVEL", "loud"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bgeicl_client_options before = o;
        bgeicl_error err;
        setenv(bad[i][0], bad[i][1], 1);
        CHECK_EQ_INT(bgeicl_client_options_from_env(&o, &err), BGEICL_ERR_ARG);
        CHECK_STR_CONTAINS(err.message, bad[i][0]);
        CHECK(!memcmp(&before, &o, sizeof o)); /* nothing applied */
        unsetenv(bad[i][0]);
    }
    setenv("BGE_ICL_BATCH_SIZE", "", 1); /* empty: unset */
    CHECK_EQ_INT(bgeicl_client_options_from_env(&o, NULL), BGEICL_OK);
    for (const char *const *v = (const char *const[]){"BGE_ICL_BASE_URL", "BGE_ICL_BATCH_SIZE",
                                                      "BGE_ICL_ENABLE_ICL", "BGE_ICL_TIMEOUT",
                                                      "BGE_ICL_LANGUAGE", NULL};
         *v; v++)
        unsetenv(*v);
}

TEST(client_new_rejects_bad_options_naming_the_field)
{
    bgeicl_client_options o;
    bgeicl_client *c = (bgeicl_client *)1;
    bgeicl_error err;
#define BAD(stmt, want)                                                              \
    do {                                                                             \
        bgeicl_client_options_init(&o);                                              \
        o.health_check_interval_s = 0;                                               \
        stmt;                                                                        \
        CHECK_EQ_INT(bgeicl_client_new(&o, &c, &err), BGEICL_ERR_ARG);                \
        CHECK_STR_CONTAINS(err.message, want);                                       \
        CHECK(c == NULL);                                                            \
    } while (0)
    BAD(o.min_batch_size = 200, "min_batch_size (200) is above max_batch_size");
    BAD(o.batch_size = 0, "batch_size");
    BAD(o.max_concurrency = 0, "max_concurrency");
    BAD(o.timeout_s = 0, "timeout_s");
    BAD(o.retry_backoff = 0.5, "retry_backoff");
    BAD(o.servers = "http://a@1x", "servers");
    BAD(o.language = "cobol", "language 'cobol'");
    BAD(o.api_key = "a\nb", "api_key");
    BAD(o.similarity_threshold = 2, "similarity_threshold");
#undef BAD
    CHECK_EQ_INT(bgeicl_client_new(NULL, &c, &err), BGEICL_ERR_ARG);
}

/* ---- calls against nobody --------------------------------------------------------------- */

/* A loopback port with nothing listening: bound, then closed. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static bgeicl_client *unreachable_client(char *url, size_t url_len, int retries,
                                         bgeicl_error *err)
{
    snprintf(url, url_len, "http://127.0.0.1:%d", closed_port());
    bgeicl_client_options o;
    bgeicl_client_options_init(&o);
    o.servers = url;
    o.retry_delay_s = 0.01;
    o.max_retries = retries;
    o.health_check_interval_s = 0.05;
    o.enable_icl = 0;
    bgeicl_client *c = NULL;
    bgeicl_client_new(&o, &c, err);
    return c;
}

TEST(embed_unreachable_fails_with_connect_after_retries)
{
    char url[64];
    bgeicl_error err;
    bgeicl_client *c = unreachable_client(url, sizeof url, 3, &err);
    CHECK(c != NULL);
    if (!c)
        return;
    const char *texts[] = {"a", "b", "c"};
    bgeicl_vectors v = {(float *)1, 7, 7};
    double t0 = bg_now_ms();
    CHECK_EQ_INT(bgeicl_client_embed(c, texts, NULL, 3, BGEICL_QUERY, NULL, &v, &err),
                 BGEICL_ERR_CONNECT);
    CHECK(bg_now_ms() - t0 < 3000);
    CHECK_STR_CONTAINS(err.message, url);
    CHECK_STR_CONTAINS(err.message, "after 4 attempts");
    CHECK(v.data == NULL && v.n == 0);
    bgeicl_client_metrics m;
    bgeicl_client_metrics_get(c, &m);
    CHECK_EQ_INT(m.retries, 3);
    CHECK_EQ_INT(m.errors, 4);
    CHECK_EQ_INT(m.total_requests, 0);
    bgeicl_server_state st;
    bgeicl_client_server_get(c, 0, &st);
    CHECK(!st.healthy && !strcmp(st.status, "unreachable") && st.requests == 4 &&
          st.errors == 4);
    CHECK_EQ_INT(bgeicl_client_check_health(c, &err), BGEICL_ERR_CONNECT);
    CHECK_STR_CONTAINS(err.message, "unreachable");
    long status;
    char *body = (char *)1;
    CHECK_EQ_INT(bgeicl_client_get(c, 0, "/info", &status, &body, NULL, &err), BGEICL_ERR_CONNECT);
    CHECK(body == NULL);
    /* bad arguments */
    CHECK_EQ_INT(bgeicl_client_embed(c, texts, NULL, 0, 0, NULL, &v, &err), BGEICL_ERR_ARG);
    const char *empty[] = {"ok", ""};
    CHECK_EQ_INT(bgeicl_client_embed(c, empty, NULL, 2, 0, NULL, &v, &err), BGEICL_ERR_ARG);
    CHECK_STR_CONTAINS(err.message, "input 1 is empty");
    const char *badutf[] = {"\xff\xfe"};
    CHECK_EQ_INT(bgeicl_client_embed(c, badutf, NULL, 1, 0, NULL, &v, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(bgeicl_client_embed(c, texts, NULL, 1, 0, "cobol", &v, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(bgeicl_client_get(c, 1, "/info", &status, &body, NULL, &err), BGEICL_ERR_ARG);
    usleep(120 * 1000); /* the probe thread runs at least once; free stops it */
    bgeicl_client_free(c);
    bgeicl_client_free(NULL);
    bgeicl_vectors_free(NULL);
}

TEST(client_survives_allocation_failure)
{
    char url[64];
    const char *texts[] = {"a", "b"};
    int saw_nomem = 0;
    for (long n = 0; n < 120; n++) {
        bgeicl_error err;
        bg_fail_after(n);
        bgeicl_client *c = unreachable_client(url, sizeof url, 0, &err);
        bgeicl_code rc = c ? BGEICL_OK : err.code;
        bgeicl_vectors v;
        if (c)
            rc = bgeicl_client_embed(c, texts, NULL, 2, 0, NULL, &v, &err);
        bg_fail_after(-1);
        CHECK(rc == BGEICL_ERR_NOMEM || rc == BGEICL_ERR_CONNECT);
        saw_nomem |= rc == BGEICL_ERR_NOMEM;
        bgeicl_client_free(c);
    }
    CHECK(saw_nomem);
}

int main(void)
{
    RUN(adaptive_no_action_before_three_points);
    RUN(adaptive_shrinks_on_slowdown_and_grows_back);
    RUN(adaptive_per_text_time_ignores_batch_size);
    RUN(adaptive_clamps_and_grows_from_one);
    RUN(adaptive_custom_thresholds_and_disabled);
    RUN(servers_parse_urls_and_weights);
    RUN(servers_parse_errors_name_the_entry);
    RUN(servers_weighted_selection_proportions);
    RUN(servers_failover_avoids_tried_and_prefers_healthy);
    RUN(options_from_env_apply_and_name_bad_variables);
    RUN(client_new_rejects_bad_options_naming_the_field);
    RUN(embed_unreachable_fails_with_connect_after_retries);
    RUN(client_survives_allocation_failure);
    return harness_summary("client");
}
