/*
 * cli_client_common.c - what the client tools (bench, monitor, diagnose,
 * health) share: the --server/--api-key flags over the client's options,
 * JSON reads of /metrics?format=json and /info, summary statistics, clocks
 * and stop signals, and the generator of fresh code-like texts.
 */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* ---- options -------------------------------------------------------------------- */

int cli_client_flag(int argc, char **argv, int *i, cli_client_args *a)
{
    int r = cli_opt_value(argc, argv, i, "--server", &a->servers);
    if (r == 0)
        r = cli_opt_value(argc, argv, i, "--api-key", &a->api_key);
    return r;
}

int cli_client_options(const char *cmd, const char *usage, const cli_client_args *a,
                       bgeicl_client_options *o)
{
    bgeicl_error err;
    bgeicl_client_options_init(o);
    o->servers = NULL; /* so that "no --server and no BGE_ICL_BASE_URL" shows */
    if (bgeicl_client_options_from_env(o, &err) != BGEICL_OK)
        return cli_usage_error(cmd, usage, "%s", err.message);
    if (a->servers)
        o->servers = a->servers;
    if (a->api_key)
        o->api_key = a->api_key;
    if (!o->servers || !*o->servers)
        return cli_usage_error(cmd, usage, "--server is required (or set BGE_ICL_BASE_URL)");
    /* Every tool probes when it needs to; a background prober would only
     * add requests to what is being measured. */
    o->health_check_interval_s = 0;
    return CLI_OK;
}

int cli_client_open(const char *cmd, const char *usage, const bgeicl_client_options *o,
                    bgeicl_client **out)
{
    bgeicl_error err;
    bgeicl_code rc = bgeicl_client_new(o, out, &err);
    if (rc == BGEICL_OK)
        return CLI_OK;
    *out = NULL;
    /* The tools validate every other option themselves, so an argument
     * error here is about the server list. */
    if (rc == BGEICL_ERR_ARG)
        return cli_usage_error(cmd, usage, "--server '%s': %s", o->servers, err.message);
    fprintf(stderr, "bgeicl %s: cannot start the client: %s\n", cmd, err.message);
    return CLI_FAIL;
}

int cli_single_server(const bgeicl_client_options *o)
{
    return o->servers && !strchr(o->servers, ',');
}

int cli_parse_double(const char *name, const char *value, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !(v >= min && v <= max)) {
        fprintf(stderr, "bgeicl: %s must be a number from %g to %g, got '%s'\n", name, min, max,
                value);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_int_list(const char *name, const char *value, long min, long maxv, int *out,
                       int max)
{
    int n = 0;
    const char *p = value;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || (*end && *end != ',') || v < min || v > maxv || n >= max) {
            fprintf(stderr,
                    "bgeicl: %s must be a comma-separated list of at most %d integers from %ld "
                    "to %ld, got '%s'\n",
                    name, max, min, maxv, value);
            return -1;
        }
        out[n++] = (int)v;
        if (!*end)
            return n;
        p = end + 1;
    }
}

/* ---- JSON from the server --------------------------------------------------------- */

cJSON *cli_get_json(bgeicl_client *c, size_t i, const char *path, bgeicl_error *err)
{
    long status = 0;
    char *body = NULL;
    size_t len = 0;
    bgeicl_code rc = bgeicl_client_get(c, i, path, &status, &body, &len, err);
    cJSON *j = NULL;
    if (rc == BGEICL_OK && status == 200) {
        j = cJSON_ParseWithLength(body, len);
        if (!j && err) {
            err->code = BGEICL_ERR_FORMAT;
            snprintf(err->message, sizeof err->message, "GET %s: the answer is not JSON", path);
        }
    } else if (rc == BGEICL_OK && err) {
        err->code = BGEICL_ERR_HTTP;
        snprintf(err->message, sizeof err->message, "GET %s: HTTP %ld", path, status);
    }
    bgeicl_free(body);
    return j;
}

static const cJSON *series_of(const cJSON *metrics, const char *family)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(metrics, family);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(f, "series");
    return cJSON_IsArray(s) ? s : NULL;
}

double cli_metric_sum(const cJSON *metrics, const char *family)
{
    const cJSON *series = series_of(metrics, family), *s;
    if (!series)
        return NAN;
    double sum = 0;
    cJSON_ArrayForEach(s, series)
    {
        double v = cli_json_num(s, "value");
        if (v == v)
            sum += v;
    }
    return sum;
}

int cli_metric_hist(const cJSON *metrics, const char *family, double *sum, double *count)
{
    const cJSON *series = series_of(metrics, family), *s;
    if (!series)
        return -1;
    *sum = *count = 0;
    cJSON_ArrayForEach(s, series)
    {
        double a = cli_json_num(s, "sum"), b = cli_json_num(s, "count");
        *sum += a == a ? a : 0;
        *count += b == b ? b : 0;
    }
    return 0;
}

double cli_json_num(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

const char *cli_json_str(const cJSON *obj, const char *key, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

void cli_json_add_num(cJSON *obj, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(obj, key, v);
    else
        cJSON_AddNullToObject(obj, key);
}

int cli_write_json_file(const char *cmd, const char *path, const cJSON *j)
{
    char *text = cJSON_Print(j);
    FILE *f = text ? fopen(path, "w") : NULL;
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "bgeicl %s: cannot write '%s': %s\n", cmd, path,
                text ? strerror(errno) : "out of memory");
    cJSON_free(text);
    return ok ? 0 : -1;
}

/* ---- statistics ------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* On a sorted copy: the value at rank q x (n - 1), interpolated. */
static double sorted_quantile(const double *v, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)pos;
    if (lo + 1 >= n)
        return v[n - 1];
    return v[lo] + (pos - (double)lo) * (v[lo + 1] - v[lo]);
}

double cli_percentile(const double *v, size_t n, double q)
{
    if (!n)
        return NAN;
    double *s = malloc(n * sizeof *s);
    if (!s)
        return NAN;
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double r = sorted_quantile(s, n, q);
    free(s);
    return r;
}

void cli_stats_of(const double *v, size_t n, cli_stats *s)
{
    s->n = n;
    s->mean = s->min = s->max = s->stddev = s->p50 = s->p95 = NAN;
    if (!n)
        return;
    double sum = 0, sq = 0;
    s->min = s->max = v[0];
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
        s->min = v[i] < s->min ? v[i] : s->min;
        s->max = v[i] > s->max ? v[i] : s->max;
    }
    s->mean = sum / (double)n;
    for (size_t i = 0; i < n; i++)
        sq += (v[i] - s->mean) * (v[i] - s->mean);
    /* The sample standard deviation: the runs are a sample of the server's
     * behaviour, not all of it. One run has none. */
    s->stddev = n > 1 ? sqrt(sq / (double)(n - 1)) : 0.0;
    s->p50 = cli_percentile(v, n, 0.50);
    s->p95 = cli_percentile(v, n, 0.95);
}

/* ---- clocks and signals ----------------------------------------------------------- */

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_iso_time(char *buf, size_t cap)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

void cli_stop_on_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_stopped(void) { return stop_flag != 0; }

void cli_sleep_until(double deadline)
{
    /* Short steps: a signal that lands in another thread does not wake
     * this one, so the flag is checked at least every 50 ms. */
    for (double now = cli_now(); now < deadline && !stop_flag; now = cli_now()) {
        double d = deadline - now < 0.05 ? deadline - now : 0.05;
        struct timespec ts = {0, (long)(d * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* ---- generated texts -------------------------------------------------------------- */

const char *const cli_gen_languages[] = {"python", "javascript", "typescript", "java", "csharp",
                                         "go",     "rust",       "c",          "cpp",  "ruby",
                                         "php",    "shell",      "sql",        NULL};

/* One template per language. Placeholders: @f snake-case function name,
 * @F camel-case, @a and @b two variable names, @v a verb, @n a noun, @k the
 * counter, @m a small number. */
static const char *const templates[] = {
    /* python */
    "def @f(@a, @b):\n    \"\"\"@v the @n from @a.\"\"\"\n"
    "    result = [@a[i] * @m for i in range(len(@b))]\n    return result  # @k\n",
    /* javascript */
    "function @F(@a, @b) {\n  // @v the @n\n  const out = @a.map((x) => x * @m + @b.length);\n"
    "  return out.filter(Boolean); // @k\n}\n",
    /* typescript */
    "export function @F(@a: number[], @b: string): number[] {\n  // @v the @n\n"
    "  return @a.map((x: number) => x * @m + @b.length); // @k\n}\n",
    /* java */
    "public static int @F(int[] @a, String @b) {\n    // @v the @n\n    int sum = @k;\n"
    "    for (int x : @a) { sum += x * @m; }\n    return sum + @b.length();\n}\n",
    /* csharp */
    "public static int @F(List<int> @a, string @b)\n{\n    // @v the @n\n"
    "    return @a.Sum(x => x * @m) + @b.Length + @k;\n}\n",
    /* go */
    "func @F(@a []int, @b string) (int, error) {\n\t// @v the @n\n\tsum := @k\n"
    "\tfor _, x := range @a {\n\t\tsum += x * @m\n\t}\n\treturn sum + len(@b), nil\n}\n",
    /* rust */
    "fn @f(@a: &[i64], @b: &str) -> Result<i64, String> {\n    // @v the @n\n"
    "    let total: i64 = @a.iter().map(|x| x * @m).sum();\n"
    "    Ok(total + @b.len() as i64 + @k)\n}\n",
    /* c */
    "static int @f(const int *@a, size_t @b)\n{\n    /* @v the @n */\n    int sum = @k;\n"
    "    for (size_t i = 0; i < @b; i++)\n        sum += @a[i] * @m;\n    return sum;\n}\n",
    /* cpp */
    "template <typename T>\nstd::vector<T> @f(const std::vector<T>& @a, std::size_t @b) {\n"
    "    // @v the @n\n    std::vector<T> out;\n    for (auto x : @a) out.push_back(x * @m + @b);\n"
    "    return out; // @k\n}\n",
    /* ruby */
    "def @f(@a, @b)\n  # @v the @n\n  @a.map { |x| x * @m + @b.size }.select(&:positive?) # @k\nend\n",
    /* php */
    "<?php\nfunction @F(array $@a, string $@b): int {\n    // @v the @n\n"
    "    return array_sum($@a) * @m + strlen($@b) + @k;\n}\n",
    /* shell */
    "#!/bin/sh\n# @v the @n\n@f() {\n  local @a=\"$1\" @b=@m\n"
    "  grep -c \"@n\" \"$@a\" | awk '{print $1 * '\"$@b\"' + @k}'\n}\n",
    /* sql */
    "-- @v the @n\nSELECT @a.id, COUNT(*) * @m AS @n_count\nFROM @n AS @a\n"
    "JOIN @b ON @b.@n_id = @a.id\nWHERE @a.version > @k\nGROUP BY @a.id;\n",
};

static const char *const verbs[] = {"parse",  "load",  "merge",  "compute",  "render",  "encode",
                                    "fetch",  "sort",  "filter", "validate", "resolve", "update"};
static const char *const nouns[] = {"config", "user",  "buffer",  "token",   "matrix",  "request",
                                    "cache",  "index", "record",  "path",    "handler", "payload"};
static const char *const vars[] = {"items", "values", "data",  "name",    "key",
                                   "source", "target", "count", "entries", "prefix"};
#define NWORDS(a) (sizeof a / sizeof a[0])

int cli_gen_language(const char *name)
{
    for (int i = 0; cli_gen_languages[i]; i++)
        if (!strcmp(name, cli_gen_languages[i]))
            return i;
    return -1;
}

/* splitmix64: a full-period mix, so nearby counters give unrelated words. */
static uint64_t mix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct gen_words {
    const char *verb, *noun, *a, *b;
    unsigned long long counter;
    int small;
} gen_words;

/* Appends the expansion of placeholder `p` at buf[*len]. */
static void put_placeholder(char *buf, size_t cap, size_t *len, char p, const gen_words *w)
{
    char tmp[96];
    switch (p) {
    case 'f': snprintf(tmp, sizeof tmp, "%s_%s_%llu", w->verb, w->noun, w->counter); break;
    case 'F':
        snprintf(tmp, sizeof tmp, "%s%c%s%llu", w->verb, w->noun[0] - 'a' + 'A', w->noun + 1,
                 w->counter);
        break;
    case 'a': snprintf(tmp, sizeof tmp, "%s", w->a); break;
    case 'b': snprintf(tmp, sizeof tmp, "%s", w->b); break;
    case 'v': snprintf(tmp, sizeof tmp, "%c%s", w->verb[0] - 'a' + 'A', w->verb + 1); break;
    case 'n': snprintf(tmp, sizeof tmp, "%s", w->noun); break;
    case 'k': snprintf(tmp, sizeof tmp, "%llu", w->counter); break;
    default: snprintf(tmp, sizeof tmp, "%d", w->small); break;
    }
    for (const char *t = tmp; *t && *len + 1 < cap; t++)
        buf[(*len)++] = *t;
}

size_t cli_gen_snippet(char *buf, size_t cap, int lang, uint64_t counter, uint64_t seed)
{
    uint64_t st = seed * 0x2545f4914f6cdd1dull ^ counter;
    gen_words w;
    w.verb = verbs[mix(&st) % NWORDS(verbs)];
    w.noun = nouns[mix(&st) % NWORDS(nouns)];
    size_t ia = mix(&st) % NWORDS(vars), ib = (ia + 1 + mix(&st) % (NWORDS(vars) - 1)) % NWORDS(vars);
    w.a = vars[ia];
    w.b = vars[ib];
    w.counter = (unsigned long long)counter;
    w.small = 2 + (int)(mix(&st) % 98);
    size_t len = 0;
    if (!cap)
        return 0;
    for (const char *t = templates[lang]; *t && len + 1 < cap; t++) {
        if (*t == '@' && t[1]) {
            put_placeholder(buf, cap, &len, *++t, &w);
            continue;
        }
        buf[len++] = *t;
    }
    buf[len] = '\0';
    return len;
}
