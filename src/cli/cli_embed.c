/*
 * cli_embed.c - `bgeicl embed`: embeddings for texts, as JSON Lines or one
 * JSON document, computed here (--model) or by servers (--server).
 *
 * Inputs are read and embedded in slices so that memory stays bounded
 * however long the input stream is; output order is input order. With
 * --model a slice is BATCH texts for the local engine; with --server it is
 * CLIENT_SLICE texts for one bgeicl_client_embed call, which cuts it into
 * batches (adaptive size), sends several at once and retries and fails
 * over between the servers. Both paths print the same lines for the same
 * inputs and flags.
 */
#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../icl/icl.h"
#include "cli.h"

#define BATCH 64
#define CLIENT_SLICE 1024

static const char *const usage =
    "bgeicl embed (--model DIR | --server URL[,URL...]) [--query] [--language L]\n"
    "             [--icl | --no-icl] [--icl-examples DIR] [--format jsonl|json] [TEXT... | -]\n"
    "  local:  [--threads N] [--dtype fp32|bf16|int8]\n"
    "  server: [--api-key KEY] [--batch-size N] [--min-batch-size N] [--max-batch-size N]\n"
    "          [--no-adaptive] [--timeout S] [--concurrency N] [--retries N] [--retry-delay S]\n"
    "          [--stats FILE]\n"
    "  Prints one line {\"index\":i,\"embedding\":[...]} per input (plus \"id\" if given).\n"
    "  With -, reads JSON Lines from stdin: a JSON string or {\"text\":..., \"id\":...}.\n"
    "  --query embeds the texts as queries: the model's query instruction, or with --icl an\n"
    "  instruction and worked examples for the language (--language, else detected), as the\n"
    "  server builds them. --no-icl is the default, as for the server (docs/RETRIEVAL.md).\n"
    "  --server sends the texts to one or more `bgeicl serve` replicas (URL@WEIGHT weights\n"
    "  them) through the client library: adaptive batches, --concurrency batches in flight,\n"
    "  retries with backoff and failover between servers. Options not given come from the\n"
    "  BGE_ICL_* environment (BGE_ICL_API_KEY, BGE_ICL_BATCH_SIZE, BGE_ICL_TIMEOUT, ...).\n"
    "  --stats FILE writes the client's final metrics as JSON.";

/* Client flags; unset ones keep the environment's or the library's value. */
typedef struct client_flags {
    const char *api_key, *stats;
    long batch, min_batch, max_batch, concurrency, retries; /* -1: unset */
    double timeout, retry_delay;                              /* < 0: unset */
    int no_adaptive;
    const char *first; /* the first client flag given, for a usage error with --model */
} client_flags;

typedef struct embed_opts {
    const char *model;
    const char *server;
    client_flags cf;
    int query;
    int icl;          /* ICL for queries */
    int icl_given;    /* --icl or --no-icl was given */
    int lang;         /* -1: detect */
    const char *examples;
    int json; /* 1: one JSON array document instead of lines */
    long threads;
    bgeicl_dtype dtype;
    int dtype_given;
    int first_text; /* argv index of the first TEXT, or -1 for stdin */
} embed_opts;

static int check_opts(const embed_opts *o)
{
    if (o->model && o->server)
        return cli_usage_error("embed", usage, "--model and --server exclude each other"), -1;
    if (!o->model && !o->server)
        return cli_usage_error("embed", usage, "--model DIR or --server URL is required"), -1;
    if (o->model && o->cf.first)
        return cli_usage_error("embed", usage, "%s needs --server", o->cf.first), -1;
    if (o->server && o->threads)
        return cli_usage_error("embed", usage, "--threads needs --model"), -1;
    if (o->server && o->dtype_given)
        return cli_usage_error("embed", usage, "--dtype needs --model (a server has its own)"),
               -1;
    if (o->first_text == 0)
        return cli_usage_error("embed", usage, "no input: give TEXT arguments or - for stdin"), -1;
    return 0;
}

static int parse_double(const char *name, const char *v, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < min || x > max) {
        fprintf(stderr, "bgeicl: %s must be a number from %g to %g, got '%s'\n", name, min, max, v);
        return -1;
    }
    *out = x;
    return 0;
}

/* A client flag at argv[*i]: 1 consumed, 0 not a client flag, -1 error. */
static int parse_client_flag(int argc, char **argv, int *i, client_flags *f)
{
    static const struct {
        const char *name;
        long min, max;
        size_t off;
    } ints[] = {{"--batch-size", 1, 100000, offsetof(client_flags, batch)},
                {"--min-batch-size", 1, 100000, offsetof(client_flags, min_batch)},
                {"--max-batch-size", 1, 100000, offsetof(client_flags, max_batch)},
                {"--concurrency", 1, 256, offsetof(client_flags, concurrency)},
                {"--retries", 0, 100, offsetof(client_flags, retries)}};
    const char *v = NULL, *flag = argv[*i];
    int r;
    if (!strcmp(flag, "--no-adaptive")) {
        f->no_adaptive = 1;
    } else if ((r = cli_opt_value(argc, argv, i, "--api-key", &v)) != 0) {
        if (r < 0)
            return -1;
        f->api_key = v;
    } else if ((r = cli_opt_value(argc, argv, i, "--stats", &v)) != 0) {
        if (r < 0)
            return -1;
        f->stats = v;
    } else if ((r = cli_opt_value(argc, argv, i, "--timeout", &v)) != 0) {
        if (r < 0 || parse_double("--timeout", v, 0.001, 86400, &f->timeout) < 0)
            return -1;
    } else if ((r = cli_opt_value(argc, argv, i, "--retry-delay", &v)) != 0) {
        if (r < 0 || parse_double("--retry-delay", v, 0, 3600, &f->retry_delay) < 0)
            return -1;
    } else {
        for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++)
            if ((r = cli_opt_value(argc, argv, i, ints[k].name, &v)) != 0) {
                long *dst = (long *)((char *)f + ints[k].off);
                if (r < 0 || cli_parse_int(ints[k].name, v, ints[k].min, ints[k].max, dst) < 0)
                    return -1;
                goto consumed;
            }
        return 0;
    }
consumed:
    if (!f->first)
        f->first = flag;
    return 1;
}

static int parse(int argc, char **argv, embed_opts *o)
{
    memset(o, 0, sizeof *o);
    o->icl = ICL_DEFAULT_ON;
    o->lang = -1;
    o->cf = (client_flags){.batch = -1, .min_batch = -1, .max_batch = -1, .concurrency = -1,
                           .retries = -1, .timeout = -1, .retry_delay = -1};
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s\n", usage);
            return -2;
        } else if (!strcmp(argv[i], "--query")) {
            o->query = 1;
        } else if (!strcmp(argv[i], "--no-icl") || !strcmp(argv[i], "--icl")) {
            o->icl = !strcmp(argv[i], "--icl");
            o->icl_given = 1;
        } else if ((r = parse_client_flag(argc, argv, &i, &o->cf)) != 0) {
            if (r < 0)
                return -1;
        } else if ((r = cli_opt_value(argc, argv, &i, "--icl-examples", &v)) != 0) {
            if (r < 0)
                return -1;
            o->examples = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--model", &v)) != 0) {
            if (r < 0)
                return -1;
            o->model = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--server", &v)) != 0) {
            if (r < 0)
                return -1;
            o->server = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--format", &v)) != 0) {
            if (r < 0)
                return -1;
            if (strcmp(v, "jsonl") && strcmp(v, "json"))
                return cli_usage_error("embed", usage, "--format must be jsonl or json"), -1;
            o->json = !strcmp(v, "json");
        } else if ((r = cli_opt_value(argc, argv, &i, "--threads", &v)) != 0) {
            if (r < 0 || cli_parse_int("--threads", v, 1, 1024, &o->threads) < 0)
                return -1;
        } else if ((r = cli_opt_value(argc, argv, &i, "--dtype", &v)) != 0) {
            if (r < 0)
                return -1;
            if (bgeicl_dtype_parse(v, &o->dtype) < 0)
                return cli_usage_error("embed", usage, "--dtype must be fp32, bf16 or int8"), -1;
            o->dtype_given = 1;
        } else if ((r = cli_opt_value(argc, argv, &i, "--language", &v)) != 0) {
            if (r < 0)
                return -1;
            o->lang = strcmp(v, "auto") ? icl_lang_parse(v) : -1;
            if (o->lang < 0 && strcmp(v, "auto"))
                return cli_usage_error("embed", usage, "unknown --language '%s'", v), -1;
        } else if (!strcmp(argv[i], "-")) {
            o->first_text = -1;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            return cli_usage_error("embed", usage, "unknown option %s", argv[i]), -1;
        } else {
            if (o->first_text == -1)
                return cli_usage_error("embed", usage, "give TEXT arguments or -, not both"), -1;
            if (!o->first_text)
                o->first_text = i;
        }
    }
    return check_opts(o);
}

/* Collects the TEXT arguments after option parsing (options may follow). */
static int collect_texts(int argc, char **argv, int first, char ***texts)
{
    int n = 0;
    *texts = malloc((size_t)argc * sizeof **texts);
    if (!*texts)
        return -1;
    for (int i = first; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] == '-') {
            if (!strcmp(argv[i], "--query") || !strcmp(argv[i], "--no-icl") ||
                !strcmp(argv[i], "--icl") || !strcmp(argv[i], "--no-adaptive"))
                continue;
            if (!strchr(argv[i], '='))
                i++; /* skip the option's value */
            continue;
        }
        (*texts)[n++] = argv[i];
    }
    return n;
}

static void print_batch(FILE *out, const cli_input *items, size_t n, size_t base,
                        const float *vecs, size_t dim, int json)
{
    for (size_t i = 0; i < n; i++) {
        if (json)
            fputs(base + i ? ",\n" : "", out);
        fprintf(out, "{\"index\":%zu,", base + i);
        if (items[i].id_json)
            fprintf(out, "\"id\":%s,", items[i].id_json);
        fputs("\"embedding\":", out);
        cli_write_floats(out, vecs + i * dim, dim);
        fputs(json ? "}" : "}\n", out);
    }
}

/* The prompts of one slice of inputs, as the server would build them. */
static int prepare(bgeicl_model *m, icl_engine *e, const embed_opts *o, const cli_input *items,
                   size_t n, icl_output *out)
{
    icl_mode mode = !o->query ? ICL_NONE : o->icl ? ICL_SERVER : ICL_PLAIN_QUERY;
    for (size_t i = 0; i < n; i++) {
        icl_input in = {.mode = mode, .text = items[i].text, .len = items[i].len, .lang = o->lang};
        bgeicl_error err;
        if (icl_prepare(e, m, &in, &out[i], &err) != BGEICL_OK) {
            fprintf(stderr, "bgeicl embed: %s\n", err.message);
            while (i > 0)
                icl_output_free(&out[--i]);
            return -1;
        }
    }
    return 0;
}

static int run(bgeicl_model *m, icl_engine *e, cli_source *src, const embed_opts *o)
{
    size_t dim = bgeicl_model_dim(m), base = 0, n;
    cli_input items[BATCH];
    float *vecs = malloc(BATCH * dim * sizeof *vecs);
    if (!vecs) {
        fprintf(stderr, "bgeicl embed: out of memory\n");
        return CLI_FAIL;
    }
    int rc = CLI_OK, rd = 0;
    if (o->json)
        fputs("[", stdout);
    while (rc == CLI_OK && (rd = cli_read_inputs(src, items, BATCH, &n)) == 0 && n > 0) {
        const char *texts[BATCH];
        size_t lens[BATCH];
        icl_output pr[BATCH];
        if (prepare(m, e, o, items, n, pr) != 0) {
            cli_inputs_free(items, n);
            rc = CLI_FAIL;
            break;
        }
        for (size_t i = 0; i < n; i++)
            texts[i] = pr[i].text, lens[i] = pr[i].len;
        bgeicl_error err;
        bgeicl_code ec = bgeicl_embed(m, texts, lens, n, pr[0].flags, vecs, NULL, &err);
        for (size_t i = 0; i < n; i++)
            icl_output_free(&pr[i]);
        if (ec != BGEICL_OK) {
            fprintf(stderr, "bgeicl embed: inputs %zu..%zu: %s\n", base, base + n - 1,
                    err.message);
            rc = CLI_FAIL;
        } else {
            print_batch(stdout, items, n, base, vecs, dim, o->json);
            base += n;
        }
        cli_inputs_free(items, n);
    }
    if (rd < 0 || (!src->texts && ferror(src->in)))
        rc = CLI_FAIL;
    if (o->json)
        fputs("]\n", stdout);
    free(vecs);
    return rc;
}

/* ---- --server: through the client library ----------------------------------------- */

/* The client's options: library defaults, then BGE_ICL_*, then the flags. */
static int client_options(const embed_opts *o, bgeicl_client_options *co)
{
    bgeicl_client_options_init(co);
    co->log_level = "warn";
    bgeicl_error err;
    if (bgeicl_client_options_from_env(co, &err) != BGEICL_OK)
        return cli_usage_error("embed", usage, "%s", err.message), -1;
    const client_flags *f = &o->cf;
    co->servers = o->server;
    if (f->api_key)
        co->api_key = f->api_key;
    if (f->batch > 0)
        co->batch_size = (int)f->batch;
    if (f->min_batch > 0)
        co->min_batch_size = (int)f->min_batch;
    if (f->max_batch > 0)
        co->max_batch_size = (int)f->max_batch;
    if (f->concurrency > 0)
        co->max_concurrency = (int)f->concurrency;
    if (f->retries >= 0)
        co->max_retries = (int)f->retries;
    if (f->timeout > 0)
        co->timeout_s = f->timeout;
    if (f->retry_delay >= 0)
        co->retry_delay_s = f->retry_delay;
    if (f->no_adaptive)
        co->adaptive = 0;
    if (o->icl_given)
        co->enable_icl = o->icl;
    if (o->lang >= 0)
        co->language = icl_lang_name((icl_lang)o->lang);
    if (o->examples)
        co->icl_examples_dir = o->examples;
    return 0;
}

static void write_stats_servers(FILE *f, bgeicl_client *c)
{
    fputs(",\"servers\":[", f);
    for (size_t i = 0; i < bgeicl_client_server_count(c); i++) {
        bgeicl_server_state s;
        bgeicl_client_server_get(c, i, &s);
        fprintf(f,
                "%s{\"url\":\"%s\",\"weight\":%g,\"effective_weight\":%g,\"healthy\":%s,"
                "\"status\":\"%s\",\"last_latency_ms\":%.3f,\"requests\":%llu,\"errors\":%llu}",
                i ? "," : "", s.url, s.weight, s.effective_weight, s.healthy ? "true" : "false",
                s.status, s.last_latency_ms, (unsigned long long)s.requests,
                (unsigned long long)s.errors);
    }
    fputs("]", f);
}

/* The guide's get_performance_metrics() keys, the retry counts and the servers. */
static int write_stats(const char *path, bgeicl_client *c)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bgeicl embed: --stats %s: %s\n", path, strerror(errno));
        return -1;
    }
    bgeicl_client_metrics m;
    bgeicl_client_metrics_get(c, &m);
    fprintf(f,
            "{\"total_requests\":%llu,\"total_texts\":%llu,\"total_time\":%.6f,"
            "\"avg_texts_per_second\":%.3f,\"avg_response_time\":%.6f,\"cache_hit_rate\":%.6f,"
            "\"current_batch_size\":%d,\"adaptive_batching_enabled\":%s,\"recent_batch_sizes\":[",
            (unsigned long long)m.total_requests, (unsigned long long)m.total_texts, m.total_time,
            m.avg_texts_per_second, m.avg_response_time, m.cache_hit_rate, m.current_batch_size,
            m.adaptive_batching_enabled ? "true" : "false");
    for (size_t i = 0; i < m.n_recent; i++)
        fprintf(f, "%s%d", i ? "," : "", m.recent_batch_sizes[i]);
    fprintf(f, "],\"retries\":%llu,\"failovers\":%llu,\"errors\":%llu",
            (unsigned long long)m.retries, (unsigned long long)m.failovers,
            (unsigned long long)m.errors);
    write_stats_servers(f, c);
    fputs("}\n", f);
    if (fclose(f) != 0) {
        fprintf(stderr, "bgeicl embed: --stats %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Embeds one slice through the client and prints it. */
static int client_slice(bgeicl_client *c, const embed_opts *o, const cli_input *items, size_t n,
                        size_t base)
{
    const char **texts = malloc(n * sizeof *texts);
    size_t *lens = malloc(n * sizeof *lens);
    int rc = CLI_FAIL;
    if (!texts || !lens) {
        fprintf(stderr, "bgeicl embed: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        texts[i] = items[i].text, lens[i] = items[i].len;
    bgeicl_vectors v;
    bgeicl_error err;
    const char *lang = o->lang >= 0 ? icl_lang_name((icl_lang)o->lang) : NULL;
    if (bgeicl_client_embed(c, texts, lens, n, o->query ? BGEICL_QUERY : 0, lang, &v, &err) !=
        BGEICL_OK) {
        fprintf(stderr, "bgeicl embed: inputs %zu..%zu: %s\n", base, base + n - 1, err.message);
        goto out;
    }
    print_batch(stdout, items, n, base, v.data, v.dim, o->json);
    fflush(stdout);
    bgeicl_vectors_free(&v);
    rc = CLI_OK;
out:
    free(texts);
    free(lens);
    return rc;
}

static int run_client(bgeicl_client *c, cli_source *src, const embed_opts *o)
{
    cli_input *items = malloc(CLIENT_SLICE * sizeof *items);
    if (!items) {
        fprintf(stderr, "bgeicl embed: out of memory\n");
        return CLI_FAIL;
    }
    size_t base = 0, n;
    int rc = CLI_OK, rd = 0;
    if (o->json)
        fputs("[", stdout);
    while (rc == CLI_OK && (rd = cli_read_inputs(src, items, CLIENT_SLICE, &n)) == 0 && n > 0) {
        rc = client_slice(c, o, items, n, base);
        base += n;
        cli_inputs_free(items, n);
    }
    if (rd < 0 || (!src->texts && ferror(src->in)))
        rc = CLI_FAIL;
    if (o->json)
        fputs("]\n", stdout);
    free(items);
    return rc;
}

static int embed_with_client(const embed_opts *o, cli_source *src)
{
    bgeicl_client_options co;
    if (client_options(o, &co) < 0)
        return CLI_USAGE;
    bgeicl_client *c;
    bgeicl_error err;
    bgeicl_code ec = bgeicl_client_new(&co, &c, &err);
    if (ec == BGEICL_ERR_ARG)
        return cli_usage_error("embed", usage, "%s", err.message);
    if (ec != BGEICL_OK) {
        fprintf(stderr, "bgeicl embed: %s\n", err.message);
        return CLI_FAIL;
    }
    int rc = run_client(c, src, o);
    if (o->cf.stats && write_stats(o->cf.stats, c) < 0)
        rc = CLI_FAIL;
    bgeicl_client_free(c);
    return rc;
}

/* ---- --model: the local engine ----------------------------------------------------------- */

static int embed_local(const embed_opts *o, cli_source *src)
{
    int rc = CLI_FAIL;
    bgeicl_model *m = cli_open_model("embed", o->model, (int)o->threads, o->dtype);
    /* The bank is read only when queries get ICL. */
    icl_settings is = {.k = ICL_DEFAULT_K};
    if (o->query && o->icl)
        is.examples_dir = o->examples ? o->examples : icl_default_examples_dir();
    icl_engine *e = NULL;
    bgeicl_error err;
    if (m && icl_engine_create(&is, &e, &err) != BGEICL_OK)
        fprintf(stderr, "bgeicl embed: cannot load the ICL examples: %s\n", err.message);
    else if (m)
        rc = run(m, e, src, o);
    icl_engine_free(e);
    bgeicl_model_close(m);
    return rc;
}

int cli_embed(int argc, char **argv)
{
    embed_opts o;
    int p = parse(argc, argv, &o);
    if (p == -2)
        return CLI_OK;
    if (p < 0)
        return CLI_USAGE;
    cli_source src = {0};
    char **texts = NULL;
    if (o.first_text > 0) {
        int n = collect_texts(argc, argv, o.first_text, &texts);
        if (n < 0)
            return CLI_FAIL;
        src.texts = texts;
        src.ntexts = n;
    } else {
        src.in = stdin;
    }
    int rc = o.server ? embed_with_client(&o, &src) : embed_local(&o, &src);
    cli_source_close(&src);
    free(texts);
    if (rc == CLI_OK && fflush(stdout) != 0)
        rc = CLI_FAIL;
    return rc;
}
