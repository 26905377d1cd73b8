/*
 * cli_bench.c - `bgeicl bench`: the performance-tuning guide's named client
 * configurations, measured against running servers at a list of batch
 * sizes, with a summary and a recommendation.
 *
 * For each configuration and each batch size: --warmup unrecorded runs,
 * then --runs runs, each one bgeicl_client_embed call of exactly that many
 * texts through a client set up from the configuration with its batch size
 * fixed to the one measured (adaptive batching off, so that the size in the
 * table is the size that was sent). Then one "adaptive" row per
 * configuration: a larger workload in a single call with the
 * configuration's own starting size, bounds and adaptive setting, which is
 * what the bounds are for.
 *
 * Every text is embedded as a query (BGEICL_QUERY): ICL only changes
 * queries, so a document benchmark could not tell the ICL configurations
 * from no_icl. No text repeats within a benchmark, so the server's
 * embedding cache never answers for the model.
 */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
    "bgeicl bench --server URL[@W][,URL...] [--config default|high_throughput|low_latency|no_icl|all]\n"
    "             [--batch-sizes 1,5,10,25,50,100] [--runs 5] [--warmup 1] [--languages L,...]\n"
    "             [--corpus DIR] [--output FILE.json] [--csv FILE.csv] [--api-key KEY]\n"
    "             [--adaptive-texts N] [--latency-budget-ms MS] [--seed N]";

static const char help[] =
    "Measures the performance-tuning guide's client configurations against running\n"
    "servers. Every text is a query (ICL changes queries only) and no text repeats.\n\n"
    "  --server URL[,URL...]   servers, each optionally weighted as URL@W\n"
    "                          (default: BGE_ICL_BASE_URL)\n"
    "  --api-key KEY           sent as a Bearer token (default: BGE_ICL_API_KEY)\n"
    "  --config NAME           default (batch 50, ICL, adaptive 10..100),\n"
    "                          high_throughput (100, ICL, adaptive 50..150),\n"
    "                          low_latency (16, ICL, adaptive 4..32), no_icl (64, no ICL,\n"
    "                          fixed), or all (the default)\n"
    "  --batch-sizes LIST      texts per measured call (1,5,10,25,50,100)\n"
    "  --runs N, --warmup N    recorded and unrecorded calls per batch size (5, 1)\n"
    "  --languages L,...       languages of the generated code snippets\n"
    "                          (python,javascript,go,rust,java)\n"
    "  --corpus DIR            embed ~20-line chunks of the text files under DIR instead\n"
    "  --adaptive-texts N      texts of each configuration's adaptive row\n"
    "                          (5 x its batch size; 0 = no adaptive rows)\n"
    "  --latency-budget-ms MS  the recommendation's p95 latency bound (1000)\n"
    "  --seed N                seed of the generated snippets (default: from the time\n"
    "                          and process id, so that a second run meets a cold cache)\n"
    "  --output FILE.json      results, summary and environment\n"
    "  --csv FILE.csv          one row per configuration and batch size\n\n"
    "Latencies are in ms per call; throughput is texts/s over the recorded runs;\n"
    "tokens come from the servers' bge_icl_input_tokens_total (other traffic to the\n"
    "same servers would count too).\n";

/* ---- configurations -------------------------------------------------------------- */

typedef struct bench_config {
    const char *name;
    int batch, icl, adaptive, min, max;
} bench_config;

static const bench_config configs[] = {
    {"default", 50, 1, 1, 10, 100},
    {"high_throughput", 100, 1, 1, 50, 150},
    {"low_latency", 16, 1, 1, 4, 32},
    {"no_icl", 64, 0, 0, 64, 64},
};
#define N_CONFIGS 4
#define MAX_SIZES 32
#define MAX_LANGS 16
#define CHUNK_LINES 20
#define CHUNK_MAX_BYTES 8192

typedef struct bench_args {
    cli_client_args client;
    int use[N_CONFIGS];
    int sizes[MAX_SIZES], nsizes;
    long runs, warmup, adaptive_texts, seed;
    int langs[MAX_LANGS], nlangs;
    const char *corpus, *output, *csv;
    double budget_ms;
} bench_args;

/* One line of results: a configuration at one fixed batch size, or its
 * adaptive workload. */
typedef struct bench_row {
    int config, batch, adaptive;
    double *lat_ms; /* per run (fixed) */
    cli_stats s;
    long texts;
    double seconds, throughput, tokens;
    /* adaptive rows: what the client's controller did */
    double requests, avg_request_ms;
    int final_batch, recent[BGEICL_RECENT_BATCHES];
    size_t n_recent;
} bench_row;

/* Where texts come from: generated snippets, or chunks of a corpus. */
typedef struct text_source {
    const int *langs;
    int nlangs;
    uint64_t seed, counter, calls;
    char **chunks;
    size_t nchunks, next, pass;
} text_source;

typedef struct bench {
    bench_args a;
    bgeicl_client_options base;
    text_source src;
    bench_row *rows;
    size_t nrows;
    size_t steps, steps_done;
    int progress;
} bench;

/* ---- arguments ------------------------------------------------------------------- */

static int parse_config(bench_args *a, const char *v)
{
    memset(a->use, 0, sizeof a->use);
    for (int c = 0; c < N_CONFIGS; c++)
        if (!strcmp(v, "all") || !strcmp(v, configs[c].name))
            a->use[c] = 1;
    for (int c = 0; c < N_CONFIGS; c++)
        if (a->use[c])
            return 0;
    fprintf(stderr,
            "bgeicl: --config must be default, high_throughput, low_latency, no_icl or all, "
            "got '%s'\n",
            v);
    return -1;
}

static int parse_languages(bench_args *a, const char *v)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", v);
    a->nlangs = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int l = cli_gen_language(t);
        if (l < 0 || a->nlangs == MAX_LANGS) {
            fprintf(stderr, "bgeicl: --languages: unknown or too many languages in '%s' (known:",
                    v);
            for (int i = 0; cli_gen_languages[i]; i++)
                fprintf(stderr, " %s", cli_gen_languages[i]);
            fprintf(stderr, ")\n");
            return -1;
        }
        a->langs[a->nlangs++] = l;
    }
    if (a->nlangs)
        return 0;
    fprintf(stderr, "bgeicl: --languages needs at least one language\n");
    return -1;
}

/* One value option; returns 1 if argv[*i] was one, 0 if not, -1 on error. */
static int value_flag(int argc, char **argv, int *i, bench_args *a)
{
    const char *v;
    int r;
#define FLAG(name) ((r = cli_opt_value(argc, argv, i, name, &v)) != 0)
    if (FLAG("--config"))
        return r < 0 || parse_config(a, v) ? -1 : 1;
    if (FLAG("--batch-sizes"))
        return r < 0 || (a->nsizes = cli_parse_int_list("--batch-sizes", v, 1, 4096, a->sizes,
                                                         MAX_SIZES)) < 0 ? -1 : 1;
    if (FLAG("--runs"))
        return r < 0 || cli_parse_int("--runs", v, 1, 100000, &a->runs) ? -1 : 1;
    if (FLAG("--warmup"))
        return r < 0 || cli_parse_int("--warmup", v, 0, 100000, &a->warmup) ? -1 : 1;
    if (FLAG("--adaptive-texts"))
        return r < 0 || cli_parse_int("--adaptive-texts", v, 0, 1000000, &a->adaptive_texts) ? -1 : 1;
    if (FLAG("--seed"))
        return r < 0 || cli_parse_int("--seed", v, 0, 2147483647L, &a->seed) ? -1 : 1;
    if (FLAG("--latency-budget-ms"))
        return r < 0 || cli_parse_double("--latency-budget-ms", v, 0.001, 1e9, &a->budget_ms) ? -1 : 1;
    if (FLAG("--languages"))
        return r < 0 || parse_languages(a, v) ? -1 : 1;
    if (FLAG("--corpus"))
        return r < 0 ? -1 : (a->corpus = v, 1);
    if (FLAG("--output"))
        return r < 0 ? -1 : (a->output = v, 1);
    if (FLAG("--csv"))
        return r < 0 ? -1 : (a->csv = v, 1);
#undef FLAG
    return 0;
}

static int parse_args(int argc, char **argv, bench_args *a)
{
    static const int dflt_sizes[] = {1, 5, 10, 25, 50, 100};
    for (int c = 0; c < N_CONFIGS; c++)
        a->use[c] = 1;
    a->nsizes = 6;
    memcpy(a->sizes, dflt_sizes, sizeof dflt_sizes);
    a->runs = 5;
    a->warmup = 1;
    a->adaptive_texts = -1;
    a->seed = -1;
    a->budget_ms = 1000;
    parse_languages(a, "python,javascript,go,rust,java");
    for (int i = 1; i < argc; i++) {
        int r = cli_client_flag(argc, argv, &i, &a->client);
        if (r == 0)
            r = value_flag(argc, argv, &i, a);
        if (r < 0)
            return cli_usage_error("bench", usage, "invalid option value (see above)");
        if (r == 0)
            return cli_usage_error("bench", usage, "unknown option '%s'", argv[i]);
    }
    return CLI_OK;
}

/* ---- the corpus ------------------------------------------------------------------ */

/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
 * The server refuses anything else, so such a file is not text to us. */
static int valid_utf8(const unsigned char *s, size_t n)
{
    static const unsigned min_cp[] = {0, 0x80, 0x800, 0x10000};
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t more; /* continuation bytes */
        if (c < 0x80)
            more = 0;
        else if ((c & 0xe0) == 0xc0)
            more = 1;
        else if ((c & 0xf0) == 0xe0)
            more = 2;
        else if ((c & 0xf8) == 0xf0)
            more = 3;
        else
            return 0;
        if (n - i <= more)
            return 0;
        unsigned cp = c & (0x7f >> more);
        for (size_t j = 1; j <= more; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min_cp[more] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += more + 1;
    }
    return 1;
}

/* Reads a whole file; NULL for files that are too big, unreadable or binary
 * (a NUL byte, or not UTF-8). */
static char *read_text_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && sb.st_size > 0 && sb.st_size <= (16 << 20))
        buf = malloc((size_t)sb.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)sb.st_size, f) : 0;
    fclose(f);
    if (!buf || n == 0 || memchr(buf, '\0', n) || !valid_utf8((unsigned char *)buf, n)) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

typedef struct str_list {
    char **v;
    size_t n, cap;
} str_list;

static int list_push(str_list *l, char *s)
{
    if (!s)
        return -1;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        char **p = realloc(l->v, cap * sizeof *p);
        if (!p) {
            free(s);
            return -1;
        }
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

static void list_free(str_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* Every regular file under dir, recursively. Hidden entries (.git) are
 * skipped, and symbolic links are not followed, so a link cannot loop. */
static int walk(const char *dir, str_list *files)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char *path = malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (!path) {
            rc = -1;
            break;
        }
        sprintf(path, "%s/%s", dir, e->d_name);
        struct stat sb;
        int kind = lstat(path, &sb) != 0 ? 0 : S_ISDIR(sb.st_mode) ? 1 : S_ISREG(sb.st_mode) ? 2 : 0;
        if (kind == 1)
            walk(path, files); /* an unreadable subfolder is skipped */
        if (kind == 2)
            rc = list_push(files, path);
        else
            free(path);
    }
    closedir(d);
    return rc;
}

/* Cuts text into chunks of CHUNK_LINES lines (at most CHUNK_MAX_BYTES, cut
 * on a character boundary); blank chunks are dropped. */
static int chunk_text(const char *text, size_t len, str_list *out)
{
    for (size_t pos = 0; pos < len;) {
        size_t end = pos;
        for (int lines = 0; end < len && lines < CHUNK_LINES; lines++) {
            const char *nl = memchr(text + end, '\n', len - end);
            end = nl ? (size_t)(nl - text) + 1 : len;
        }
        size_t n = end - pos;
        if (n > CHUNK_MAX_BYTES) {
            n = CHUNK_MAX_BYTES;
            while (n && ((unsigned char)text[pos + n] & 0xc0) == 0x80)
                n--;
        }
        size_t blank = strspn(text + pos, " \t\r\n");
        if (blank < n && list_push(out, strndup(text + pos, n)) != 0)
            return -1;
        pos += n;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Index order of chunks sorted by text, first occurrence first. */
static const char *const *sort_base;
static int cmp_idx(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(sort_base[x], sort_base[y]);
    return c ? c : (x > y) - (x < y);
}

/* Drops repeated chunks, keeping the first of each and the original order. */
static int dedupe(str_list *l)
{
    size_t *idx = malloc((l->n ? l->n : 1) * sizeof *idx);
    if (!idx)
        return -1;
    for (size_t i = 0; i < l->n; i++)
        idx[i] = i;
    sort_base = (const char *const *)l->v;
    qsort(idx, l->n, sizeof *idx, cmp_idx);
    for (size_t i = 1; i < l->n; i++)
        if (!strcmp(l->v[idx[i]], l->v[idx[i - 1]])) {
            free(l->v[idx[i]]);
            l->v[idx[i]] = NULL;
        }
    free(idx);
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i])
            l->v[k++] = l->v[i];
    l->n = k;
    return 0;
}

/* Loads the corpus; CLI_USAGE when the folder is missing or holds no text. */
static int load_corpus(const char *dir, text_source *src)
{
    str_list files = {0}, chunks = {0};
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return cli_usage_error("bench", usage, "--corpus '%s' is not a folder", dir);
    int rc = walk(dir, &files);
    if (rc == 0)
        qsort(files.v, files.n, sizeof *files.v, cmp_str);
    for (size_t i = 0; rc == 0 && i < files.n; i++) {
        size_t len;
        char *text = read_text_file(files.v[i], &len);
        if (text)
            rc = chunk_text(text, len, &chunks);
        free(text);
    }
    list_free(&files);
    if (rc == 0)
        rc = dedupe(&chunks);
    if (rc != 0 || chunks.n == 0) {
        list_free(&chunks);
        if (rc != 0) {
            fprintf(stderr, "bgeicl bench: cannot read --corpus '%s'\n", dir);
            return CLI_FAIL;
        }
        return cli_usage_error("bench", usage, "--corpus '%s' holds no text files", dir);
    }
    src->chunks = chunks.v;
    src->nchunks = chunks.n;
    return CLI_OK;
}

/* ---- texts ----------------------------------------------------------------------- */

static char *next_chunk(text_source *src)
{
    if (src->next == src->nchunks) {
        src->next = 0;
        src->pass++;
    }
    const char *c = src->chunks[src->next++];
    if (!src->pass)
        return strdup(c);
    /* A second pass over the corpus: mark the text so it is new to the cache. */
    char *s = malloc(strlen(c) + 32);
    if (s)
        sprintf(s, "%s\n// pass %zu", c, src->pass + 1);
    return s;
}

/* Fills texts[0..n) with fresh texts (caller frees). *lang is the language
 * to pass to the client, NULL for a corpus (the client detects it). */
static int fill_texts(text_source *src, char **texts, size_t n, const char **lang)
{
    int l = src->langs[src->calls++ % (uint64_t)src->nlangs];
    *lang = src->chunks ? NULL : cli_gen_languages[l];
    for (size_t i = 0; i < n; i++) {
        if (src->chunks) {
            texts[i] = next_chunk(src);
        } else {
            char buf[1024];
            cli_gen_snippet(buf, sizeof buf, l, src->counter++, src->seed);
            texts[i] = strdup(buf);
        }
        if (!texts[i]) {
            while (i)
                free(texts[--i]);
            return -1;
        }
    }
    return 0;
}

/* One embedding call of n fresh queries; returns seconds, or -1 after
 * printing the error. */
static double embed_call(bench *b, bgeicl_client *c, size_t n)
{
    char **texts = calloc(n, sizeof *texts);
    const char *lang = NULL;
    if (!texts || fill_texts(&b->src, texts, n, &lang) != 0) {
        free(texts);
        fprintf(stderr, "bgeicl bench: out of memory\n");
        return -1;
    }
    bgeicl_vectors v = {0};
    bgeicl_error err;
    double t0 = cli_now();
    bgeicl_code rc = bgeicl_client_embed(c, (const char *const *)texts, NULL, n, BGEICL_QUERY,
                                         lang, &v, &err);
    double secs = cli_now() - t0;
    bgeicl_vectors_free(&v);
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    if (rc != BGEICL_OK) {
        fprintf(stderr, "%sbgeicl bench: embedding %zu texts failed: %s\n", b->progress ? "\n" : "",
                n, err.message);
        return -1;
    }
    return secs;
}

/* ---- measuring ------------------------------------------------------------------- */

static void progress(bench *b, const char *what)
{
    b->steps_done++;
    if (!b->progress)
        return;
    int width = 30, done = (int)(b->steps_done * (size_t)width / (b->steps ? b->steps : 1));
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu %-28s", done, "##############################",
            width - done, "", b->steps_done, b->steps, what);
    fflush(stderr);
}

/* Input tokens and embedding requests the servers have counted so far;
 * tokens NaN if any server cannot say. */
static void server_counts(bgeicl_client *c, double *tokens, double *requests)
{
    *tokens = *requests = 0;
    for (size_t i = 0; i < bgeicl_client_server_count(c); i++) {
        bgeicl_error err;
        cJSON *m = cli_get_json(c, i, "/metrics?format=json", &err);
        *tokens += cli_metric_sum(m, "bge_icl_input_tokens_total");
        *requests += cli_json_num(m, "requests_total");
        cJSON_Delete(m);
    }
}

/* A mark taken before the measured runs. */
typedef struct count_mark {
    double tokens, requests;
    uint64_t sent; /* the client's successful requests */
} count_mark;

static void mark(bgeicl_client *c, count_mark *m)
{
    bgeicl_client_metrics cm;
    bgeicl_client_metrics_get(c, &cm);
    m->sent = cm.total_requests;
    server_counts(c, &m->tokens, &m->requests);
}

/* Tokens embedded since the mark. A server counts a request once its
 * answer has gone out, so the last one may not be counted yet when the
 * call returns: wait (1 s at most) until every request this client sent
 * since the mark is. */
static double tokens_since(bgeicl_client *c, const count_mark *m0)
{
    count_mark m1;
    for (int k = 0; k < 100; k++) {
        mark(c, &m1);
        if (m1.requests - m0->requests >= (double)(m1.sent - m0->sent) ||
            m1.requests != m1.requests)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return m1.tokens - m0->tokens;
}

static bgeicl_client *open_for(bench *b, const bench_config *cfg, int batch, int adaptive)
{
    bgeicl_client_options o = b->base;
    o.enable_icl = cfg->icl;
    o.batch_size = batch;
    o.adaptive = adaptive && cfg->adaptive;
    o.min_batch_size = adaptive ? cfg->min : 1;
    o.max_batch_size = adaptive ? cfg->max : batch;
    bgeicl_client *c = NULL;
    if (cli_client_open("bench", usage, &o, &c) != CLI_OK)
        return NULL;
    return c;
}

static int measure_fixed(bench *b, int ci, int size, bench_row *row)
{
    const bench_config *cfg = &configs[ci];
    char what[64];
    snprintf(what, sizeof what, "%s batch %d", cfg->name, size);
    row->config = ci;
    row->batch = size;
    row->lat_ms = calloc((size_t)b->a.runs, sizeof *row->lat_ms);
    bgeicl_client *c = row->lat_ms ? open_for(b, cfg, size, 0) : NULL;
    if (!c)
        return -1;
    int rc = 0;
    for (long w = 0; rc == 0 && w < b->a.warmup; w++, progress(b, what))
        rc = embed_call(b, c, (size_t)size) < 0 ? -1 : 0;
    count_mark m0;
    mark(c, &m0);
    double total = 0;
    for (long r = 0; rc == 0 && r < b->a.runs; r++, progress(b, what)) {
        double s = embed_call(b, c, (size_t)size);
        rc = s < 0 ? -1 : 0;
        row->lat_ms[r] = s * 1e3;
        total += s;
    }
    row->tokens = rc == 0 ? tokens_since(c, &m0) : NAN;
    bgeicl_client_free(c);
    cli_stats_of(row->lat_ms, (size_t)b->a.runs, &row->s);
    row->texts = (long)size * b->a.runs;
    row->seconds = total;
    row->throughput = total > 0 ? (double)row->texts / total : NAN;
    return rc;
}

static int measure_adaptive(bench *b, int ci, bench_row *row)
{
    const bench_config *cfg = &configs[ci];
    long n = b->a.adaptive_texts >= 0 ? b->a.adaptive_texts : 5L * cfg->batch;
    row->config = ci;
    row->batch = cfg->batch;
    row->adaptive = 1;
    row->texts = n;
    cli_stats_of(NULL, 0, &row->s);
    bgeicl_client *c = open_for(b, cfg, cfg->batch, 1);
    if (!c)
        return -1;
    count_mark m0;
    mark(c, &m0);
    double s = embed_call(b, c, (size_t)n);
    row->tokens = s >= 0 ? tokens_since(c, &m0) : NAN;
    bgeicl_client_metrics m;
    bgeicl_client_metrics_get(c, &m);
    bgeicl_client_free(c);
    progress(b, cfg->name);
    if (s < 0)
        return -1;
    row->seconds = s;
    row->throughput = s > 0 ? (double)n / s : NAN;
    row->requests = (double)m.total_requests;
    row->avg_request_ms = m.avg_response_time * 1e3;
    row->final_batch = m.current_batch_size;
    row->n_recent = m.n_recent < BGEICL_RECENT_BATCHES ? m.n_recent : BGEICL_RECENT_BATCHES;
    memcpy(row->recent, m.recent_batch_sizes, row->n_recent * sizeof(int));
    return 0;
}

static int run_all(bench *b)
{
    int nconf = 0;
    for (int c = 0; c < N_CONFIGS; c++)
        nconf += b->a.use[c];
    int adaptive = b->a.adaptive_texts != 0;
    b->steps = (size_t)nconf * ((size_t)b->a.nsizes * (size_t)(b->a.warmup + b->a.runs) +
                                (size_t)adaptive);
    b->rows = calloc((size_t)nconf * (size_t)(b->a.nsizes + 1), sizeof *b->rows);
    if (!b->rows)
        return -1;
    for (int c = 0; c < N_CONFIGS; c++) {
        if (!b->a.use[c])
            continue;
        for (int k = 0; k < b->a.nsizes; k++)
            if (measure_fixed(b, c, b->a.sizes[k], &b->rows[b->nrows++]) != 0)
                return -1;
        if (adaptive && measure_adaptive(b, c, &b->rows[b->nrows++]) != 0)
            return -1;
    }
    if (b->progress)
        fprintf(stderr, "\r%*s\r", 80, "");
    return 0;
}

/* ---- the summary ----------------------------------------------------------------- */

typedef struct bench_summary {
    const bench_row *best_tp, *best_lat, *rec;
    char reason[256];
} bench_summary;

static void summarise(const bench *b, bench_summary *s)
{
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < b->nrows; i++) {
        const bench_row *r = &b->rows[i];
        if (r->adaptive)
            continue;
        if (!s->best_tp || r->throughput > s->best_tp->throughput)
            s->best_tp = r;
        if (!s->best_lat || r->s.mean < s->best_lat->s.mean)
            s->best_lat = r;
        if (r->s.p95 <= b->a.budget_ms && (!s->rec || r->throughput > s->rec->throughput))
            s->rec = r;
    }
    if (s->rec) {
        snprintf(s->reason, sizeof s->reason,
                 "the highest throughput (%.1f texts/s) whose p95 latency (%.1f ms) is within "
                 "the %g ms budget",
                 s->rec->throughput, s->rec->s.p95, b->a.budget_ms);
    } else if (s->best_lat) {
        s->rec = s->best_lat;
        snprintf(s->reason, sizeof s->reason,
                 "no configuration kept p95 latency within %g ms; this one has the lowest "
                 "latency (%.1f ms): consider more server threads or replicas",
                 b->a.budget_ms, s->best_lat->s.mean);
    }
}

/* ---- output ---------------------------------------------------------------------- */

static void print_table(const bench *b, const bench_summary *s)
{
    printf("%-16s %8s %5s %10s %10s %10s %10s %10s %10s %10s\n", "config", "batch", "runs",
           "avg_ms", "min_ms", "max_ms", "stddev_ms", "p95_ms", "texts/s", "tokens/s");
    for (size_t i = 0; i < b->nrows; i++) {
        const bench_row *r = &b->rows[i];
        double tps = r->seconds > 0 ? r->tokens / r->seconds : NAN;
        if (r->adaptive) {
            char label[32];
            snprintf(label, sizeof label, "a%d>%d", r->batch, r->final_batch);
            printf("%-16s %8s %5.0f %10.1f %10s %10s %10s %10s %10.1f %10.0f\n",
                   configs[r->config].name, label, r->requests, r->avg_request_ms, "-", "-",
                   "-", "-", r->throughput, tps);
            continue;
        }
        printf("%-16s %8d %5ld %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f %10.0f\n",
               configs[r->config].name, r->batch, b->a.runs, r->s.mean, r->s.min, r->s.max,
               r->s.stddev, r->s.p95, r->throughput, tps);
    }
    if (!s->best_tp)
        return;
    printf("\nadaptive rows (aSTART>FINAL): one call of the configuration's workload; runs = "
           "HTTP requests, avg_ms = per request\n");
    printf("best throughput: %s at batch %d (%.1f texts/s)\n", configs[s->best_tp->config].name,
           s->best_tp->batch, s->best_tp->throughput);
    printf("best latency:    %s at batch %d (%.1f ms)\n", configs[s->best_lat->config].name,
           s->best_lat->batch, s->best_lat->s.mean);
    printf("recommended:     %s at batch %d: %s\n", configs[s->rec->config].name, s->rec->batch,
           s->reason);
}

static cJSON *row_json(const bench *b, const bench_row *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "config", configs[r->config].name);
    cJSON_AddStringToObject(o, "mode", r->adaptive ? "adaptive" : "fixed");
    cJSON_AddNumberToObject(o, "batch_size", r->batch);
    cJSON_AddBoolToObject(o, "icl", configs[r->config].icl);
    cJSON_AddNumberToObject(o, "texts", (double)r->texts);
    cli_json_add_num(o, "seconds", r->seconds);
    cli_json_add_num(o, "throughput_tps", r->throughput);
    cli_json_add_num(o, "tokens", r->tokens);
    cli_json_add_num(o, "tokens_per_s", r->seconds > 0 ? r->tokens / r->seconds : NAN);
    if (r->adaptive) {
        cJSON_AddNumberToObject(o, "min_batch_size", configs[r->config].min);
        cJSON_AddNumberToObject(o, "max_batch_size", configs[r->config].max);
        cJSON_AddBoolToObject(o, "adaptive_batching", configs[r->config].adaptive);
        cJSON_AddNumberToObject(o, "requests", r->requests);
        cli_json_add_num(o, "avg_request_ms", r->avg_request_ms);
        cJSON_AddNumberToObject(o, "final_batch_size", r->final_batch);
        cJSON_AddItemToObject(o, "recent_batch_sizes",
                              cJSON_CreateIntArray(r->recent, (int)r->n_recent));
        return o;
    }
    cJSON_AddNumberToObject(o, "runs", (double)b->a.runs);
    cli_json_add_num(o, "avg_ms", r->s.mean);
    cli_json_add_num(o, "min_ms", r->s.min);
    cli_json_add_num(o, "max_ms", r->s.max);
    cli_json_add_num(o, "stddev_ms", r->s.stddev);
    cli_json_add_num(o, "p50_ms", r->s.p50);
    cli_json_add_num(o, "p95_ms", r->s.p95);
    cJSON_AddItemToObject(o, "latencies_ms", cJSON_CreateDoubleArray(r->lat_ms, (int)b->a.runs));
    return o;
}

static cJSON *pick_json(const bench_row *r, const char *key, double v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "config", configs[r->config].name);
    cJSON_AddNumberToObject(o, "batch_size", r->batch);
    cli_json_add_num(o, key, v);
    return o;
}

static cJSON *summary_json(const bench *b, const bench_summary *s)
{
    cJSON *o = cJSON_CreateObject();
    if (!s->rec)
        return o;
    cJSON_AddItemToObject(o, "best_throughput",
                          pick_json(s->best_tp, "throughput_tps", s->best_tp->throughput));
    cJSON_AddItemToObject(o, "best_latency", pick_json(s->best_lat, "avg_ms", s->best_lat->s.mean));
    cJSON *rec = pick_json(s->rec, "throughput_tps", s->rec->throughput);
    cli_json_add_num(rec, "p95_ms", s->rec->s.p95);
    cJSON_AddStringToObject(rec, "reason", s->reason);
    cJSON_AddItemToObject(o, "recommended", rec);
    cJSON_AddNumberToObject(o, "latency_budget_ms", b->a.budget_ms);
    return o;
}

static cJSON *environment_json(const bench *b, bgeicl_client *c)
{
    cJSON *o = cJSON_CreateObject(), *servers = cJSON_AddArrayToObject(o, "servers");
    for (size_t i = 0; c && i < bgeicl_client_server_count(c); i++) {
        bgeicl_server_state st;
        bgeicl_client_server_get(c, i, &st);
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "url", st.url);
        cJSON_AddNumberToObject(s, "weight", st.weight);
        cJSON_AddItemToArray(servers, s);
    }
    bgeicl_error err;
    cJSON *info = c ? cli_get_json(c, 0, "/info", &err) : NULL;
    char date[32];
    cli_iso_time(date, sizeof date);
    cJSON_AddStringToObject(o, "model", cli_json_str(info, "model", "unknown"));
    cJSON_AddStringToObject(o, "dtype", cli_json_str(info, "dtype", "unknown"));
    cJSON_AddStringToObject(o, "isa", cli_json_str(info, "isa", "unknown"));
    cJSON_AddStringToObject(o, "server_version", cli_json_str(info, "version", "unknown"));
    cli_json_add_num(o, "server_threads", cli_json_num(info, "threads"));
    cJSON_AddStringToObject(o, "date", date);
    cJSON_AddStringToObject(o, "client_version", bgeicl_version());
    cJSON_AddStringToObject(o, "input_type", "query");
    cJSON_AddStringToObject(o, "texts", b->a.corpus ? "corpus" : "generated");
    cJSON_Delete(info);
    return o;
}

static cJSON *settings_json(const bench *b)
{
    cJSON *o = cJSON_CreateObject(), *cf = cJSON_AddArrayToObject(o, "configs");
    for (int c = 0; c < N_CONFIGS; c++)
        if (b->a.use[c])
            cJSON_AddItemToArray(cf, cJSON_CreateString(configs[c].name));
    cJSON_AddItemToObject(o, "batch_sizes", cJSON_CreateIntArray(b->a.sizes, b->a.nsizes));
    cJSON_AddNumberToObject(o, "runs", (double)b->a.runs);
    cJSON_AddNumberToObject(o, "warmup", (double)b->a.warmup);
    cJSON *langs = cJSON_AddArrayToObject(o, "languages");
    for (int i = 0; !b->a.corpus && i < b->a.nlangs; i++)
        cJSON_AddItemToArray(langs, cJSON_CreateString(cli_gen_languages[b->a.langs[i]]));
    if (b->a.corpus)
        cJSON_AddStringToObject(o, "corpus", b->a.corpus);
    cJSON_AddNumberToObject(o, "seed", (double)b->a.seed);
    cJSON_AddNumberToObject(o, "adaptive_texts", (double)b->a.adaptive_texts);
    return o;
}

static int write_json(const bench *b, const bench_summary *s, bgeicl_client *c)
{
    cJSON *o = cJSON_CreateObject(), *rows = cJSON_CreateArray();
    cJSON_AddItemToObject(o, "environment", environment_json(b, c));
    cJSON_AddItemToObject(o, "settings", settings_json(b));
    for (size_t i = 0; i < b->nrows; i++)
        cJSON_AddItemToArray(rows, row_json(b, &b->rows[i]));
    cJSON_AddItemToObject(o, "results", rows);
    cJSON_AddItemToObject(o, "summary", summary_json(b, s));
    int rc = cli_write_json_file("bench", b->a.output, o);
    cJSON_Delete(o);
    return rc;
}

/* A number for the CSV; empty when unknown. */
static void csv_num(FILE *f, double v, int prec)
{
    if (isfinite(v))
        fprintf(f, ",%.*f", prec, v);
    else
        fputc(',', f);
}

static int write_csv(const bench *b)
{
    FILE *f = fopen(b->a.csv, "w");
    if (!f) {
        fprintf(stderr, "bgeicl bench: cannot write '%s': %s\n", b->a.csv, strerror(errno));
        return -1;
    }
    fprintf(f, "config,mode,batch_size,icl,runs,texts,avg_ms,min_ms,max_ms,stddev_ms,p95_ms,"
               "throughput_tps,tokens,tokens_per_s,final_batch_size\n");
    for (size_t i = 0; i < b->nrows; i++) {
        const bench_row *r = &b->rows[i];
        fprintf(f, "%s,%s,%d,%d,%.0f,%ld", configs[r->config].name,
                r->adaptive ? "adaptive" : "fixed", r->batch, configs[r->config].icl,
                r->adaptive ? r->requests : (double)b->a.runs, r->texts);
        csv_num(f, r->adaptive ? r->avg_request_ms : r->s.mean, 3);
        csv_num(f, r->s.min, 3);
        csv_num(f, r->s.max, 3);
        csv_num(f, r->s.stddev, 3);
        csv_num(f, r->s.p95, 3);
        csv_num(f, r->throughput, 3);
        csv_num(f, r->tokens, 0);
        csv_num(f, r->seconds > 0 ? r->tokens / r->seconds : NAN, 1);
        csv_num(f, r->adaptive ? r->final_batch : NAN, 0);
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "bgeicl bench: cannot write '%s': %s\n", b->a.csv, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- main ------------------------------------------------------------------------ */

static void bench_free(bench *b)
{
    for (size_t i = 0; i < b->nrows; i++)
        free(b->rows[i].lat_ms);
    free(b->rows);
    for (size_t i = 0; i < b->src.nchunks; i++)
        free(b->src.chunks[i]);
    free(b->src.chunks);
}

/* Outputs, with an environment read through one more client. */
static int report(bench *b)
{
    bench_summary s;
    summarise(b, &s);
    print_table(b, &s);
    fflush(stdout);
    int rc = CLI_OK;
    if (b->a.csv && write_csv(b) != 0)
        rc = CLI_FAIL;
    if (b->a.output) {
        bgeicl_client *c = NULL;
        bgeicl_error err;
        if (bgeicl_client_new(&b->base, &c, &err) != BGEICL_OK)
            c = NULL;
        if (write_json(b, &s, c) != 0)
            rc = CLI_FAIL;
        bgeicl_client_free(c);
    }
    return rc;
}

/* Checks the server list, and that a server is up, before any measuring:
 * a dead server should fail at once, not after every retry of every run. */
static int check_servers(const bgeicl_client_options *o)
{
    bgeicl_client *c = NULL;
    int rc = cli_client_open("bench", usage, o, &c);
    bgeicl_error err;
    if (rc == CLI_OK && bgeicl_client_check_health(c, &err) != BGEICL_OK) {
        fprintf(stderr, "bgeicl bench: no healthy server: %s\n", err.message);
        rc = CLI_FAIL;
    }
    bgeicl_client_free(c);
    return rc;
}

int cli_bench(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s\n\n%s", usage, help);
            return CLI_OK;
        }
    bench b;
    memset(&b, 0, sizeof b);
    int rc = parse_args(argc, argv, &b.a);
    if (rc == CLI_OK)
        rc = cli_client_options("bench", usage, &b.a.client, &b.base);
    if (rc == CLI_OK && b.a.corpus)
        rc = load_corpus(b.a.corpus, &b.src);
    if (rc == CLI_OK)
        rc = check_servers(&b.base);
    if (rc != CLI_OK) {
        bench_free(&b);
        return rc;
    }
    b.src.langs = b.a.langs;
    b.src.nlangs = b.a.nlangs;
    if (b.a.seed < 0)
        b.a.seed = (long)(((uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid()) % 2147483647u);
    b.src.seed = (uint64_t)b.a.seed;
    /* The counter is part of every text: start it where the seed says, so
     * that two runs with different seeds share no text. */
    b.src.counter = (uint64_t)b.a.seed * 7919u % 1000000007u;
    b.progress = isatty(STDERR_FILENO);
    rc = run_all(&b) == 0 ? report(&b) : CLI_FAIL;
    bench_free(&b);
    return rc;
}
