/*
 * cli_serve.c - `bgeicl serve`: flags and environment variables into a
 * srv_config, then srv_run.
 *
 * The environment is applied first, then the flags, so a flag always wins.
 * Both go through one setter (set_option), so an environment variable and
 * its flag accept exactly the same values.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../server/log.h"
#include "../server/server.h"
#include "cli.h"

static const char usage[] =
    "bgeicl serve [--model DIR] [--host H] [--port P] [--threads N] [--dtype fp32|bf16|int8]\n"
    "             [--max-batch-tokens N] [--max-batch-requests N] [--max-concurrent-requests N]\n"
    "             [--max-client-batch-size N] [--payload-limit BYTES]\n"
    "             [--api-key KEY | --api-key-file F] [--metrics-public] [--strict-model]\n"
    "             [--cache-size MB] [--cache-dir DIR] [--icl on|off] [--icl-examples DIR]\n"
    "             [--icl-k N] [--context-cache-size N]\n"
    "             [--similarity-threshold F] [--log-level debug|info|warn|error]\n"
    "             [--log-format text|json] [--read-timeout S] [--idle-timeout S]\n"
    "             [--drain-timeout S] [--max-connections N] [--debug-batch-delay-ms MS]";

static const char help[] =
    "Serves embeddings over HTTP: the OpenAI API (/v1/embeddings), TEI's /embed and\n"
    "/tokenize, /health, /v1/models, /info and Prometheus /metrics.\n\n"
    "  --model DIR                  model folder (models/bge-small-en-v1.5)\n"
    "  --host H, --port P           address to listen on (0.0.0.0, 8080; port 0 = any)\n"
    "  --threads N                  inference threads (one per core)\n"
    "  --dtype fp32|bf16|int8       linear-layer weight precision (fp32); bf16 halves the\n"
    "                               weights, int8 quarters them; both use AMX, AVX512_BF16\n"
    "                               or AVX512-VNNI where the CPU has them\n"
    "  --max-batch-tokens N         tokens per forward pass (16384)\n"
    "  --max-batch-requests N       texts per forward pass (256)\n"
    "  --max-concurrent-requests N  requests queued or running before 429 (512)\n"
    "  --max-client-batch-size N    inputs per request before 413 (2048)\n"
    "  --payload-limit BYTES        request body limit, after gzip (16777216)\n"
    "  --api-key KEY, --api-key-file F   require 'Authorization: Bearer KEY'\n"
    "  --metrics-public             /metrics without the key\n"
    "  --strict-model               unknown model names are 404\n"
    "  --log-level L, --log-format F     info, text\n"
    "  --read-timeout S             the whole body must arrive within S seconds (30)\n"
    "  --idle-timeout S             close idle keep-alive connections (60)\n"
    "  --drain-timeout S            on SIGTERM, wait at most S for requests in flight (30)\n"
    "  --max-connections N          open connections (1024)\n"
    "  --cache-size MB              embedding cache budget (512; 0 = off)\n"
    "  --cache-dir DIR              keep the embedding cache on disk across restarts\n"
    "  --icl on|off                 ICL for queries that do not say enable_icl (off)\n"
    "  --icl-examples DIR           the example bank (icl/examples)\n"
    "  --icl-k N                    examples per ICL query (1)\n"
    "  --context-cache-size N       ICL contexts remembered (200)\n"
    "  --similarity-threshold F     reuse a context for queries this similar (0.8)\n\n"
    "Environment (flags win): BGE_ICL_MODEL or MODEL_NAME, PORT, WORKERS or BGE_ICL_THREADS,\n"
    "MAX_BATCH_SIZE (= --max-batch-requests), ENABLE_ICL, LOG_LEVEL, BGE_ICL_API_KEY,\n"
    "BGE_ICL_CONTEXT_CACHE_SIZE, BGE_ICL_SIMILARITY_THRESHOLD.\n";

/* Environment variables and the flag each one stands for. */
static const struct {
    const char *env, *flag;
} env_map[] = {
    {"MODEL_NAME", "--model"},
    {"BGE_ICL_MODEL", "--model"}, /* after MODEL_NAME: the specific name wins */
    {"PORT", "--port"},
    {"WORKERS", "--threads"},
    {"BGE_ICL_THREADS", "--threads"},
    {"MAX_BATCH_SIZE", "--max-batch-requests"},
    {"ENABLE_ICL", "--icl"},
    {"LOG_LEVEL", "--log-level"},
    {"BGE_ICL_API_KEY", "--api-key"},
    {"BGE_ICL_CONTEXT_CACHE_SIZE", "--context-cache-size"},
    {"BGE_ICL_SIMILARITY_THRESHOLD", "--similarity-threshold"},
};

/* Storage for strings the config points at (model path, key file contents). */
typedef struct serve_state {
    srv_config cfg;
    char model_buf[4096];
    char *key_buf;
} serve_state;

static int bad(const char *src, const char *what, const char *value)
{
    fprintf(stderr, "bgeicl serve: %s must be %s, got '%s'\nusage: %s\n", src, what, value, usage);
    return -1;
}

static int parse_long(const char *src, const char *v, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < min || x > max) {
        char what[96];
        snprintf(what, sizeof what, "an integer from %ld to %ld", min, max);
        return bad(src, what, v);
    }
    *out = x;
    return 0;
}

static int parse_double(const char *src, const char *v, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= min && x <= max)) {
        char what[96];
        snprintf(what, sizeof what, "a number from %g to %g", min, max);
        return bad(src, what, v);
    }
    *out = x;
    return 0;
}

static int parse_bool(const char *src, const char *v, int *out)
{
    static const char *const yes[] = {"on", "true", "1", "yes"}, *const no[] = {"off", "false", "0", "no"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i]))
            return *out = 1, 0;
        if (!strcasecmp(v, no[i]))
            return *out = 0, 0;
    }
    return bad(src, "on or off", v);
}

/* MODEL_NAME may be a Hugging Face id ("BAAI/bge-small-en-v1.5"): when it is
 * not a folder, its last part is looked up under models/. */
static const char *model_path(serve_state *st, const char *v)
{
    struct stat sb;
    if (stat(v, &sb) == 0 || !strchr(v, '/'))
        return v;
    snprintf(st->model_buf, sizeof st->model_buf, "models/%s", strrchr(v, '/') + 1);
    return stat(st->model_buf, &sb) == 0 ? st->model_buf : v;
}

static int read_key_file(serve_state *st, const char *src, const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    if (!f) {
        fprintf(stderr, "bgeicl serve: %s: cannot read '%s': %s\n", src, path, strerror(errno));
        return -1;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    if (!n)
        return bad(src, "a file holding the API key", path);
    free(st->key_buf);
    st->key_buf = strdup(buf);
    st->cfg.api_key = st->key_buf;
    return st->key_buf ? 0 : -1;
}

#define LONG_OPT(flag, min, max, field)                                                        \
    if (!strcmp(name, flag)) {                                                                 \
        long x;                                                                                \
        if (parse_long(src, v, min, max, &x))                                                  \
            return -1;                                                                         \
        c->field = x;                                                                          \
        return 0;                                                                              \
    }

#define DOUBLE_OPT(flag, min, max, field)                                                      \
    if (!strcmp(name, flag))                                                                   \
        return parse_double(src, v, min, max, &c->field);

/* Applies one option value; src names it in errors (a flag or a variable). */
static int set_option(serve_state *st, const char *name, const char *src, const char *v)
{
    srv_config *c = &st->cfg;
    LONG_OPT("--port", 0, 65535, port)
    LONG_OPT("--threads", 1, 1024, threads)
    LONG_OPT("--max-batch-tokens", 16, 1L << 20, max_batch_tokens)
    LONG_OPT("--max-batch-requests", 1, 65536, max_batch_requests)
    LONG_OPT("--max-concurrent-requests", 1, 1000000, max_concurrent)
    LONG_OPT("--max-client-batch-size", 1, 1000000, max_client_batch)
    LONG_OPT("--payload-limit", 1024, 1L << 32, payload_limit)
    LONG_OPT("--cache-size", 0, 1L << 20, cache_mb)
    LONG_OPT("--context-cache-size", 0, 1000000, context_cache_size)
    LONG_OPT("--icl-k", 0, 8, icl_k)
    LONG_OPT("--idle-timeout", 1, 86400, idle_timeout_s)
    LONG_OPT("--max-connections", 1, 65536, max_connections)
    LONG_OPT("--debug-batch-delay-ms", 0, 600000, debug_delay_ms)
    DOUBLE_OPT("--similarity-threshold", 0.0, 1.0, similarity_threshold)
    DOUBLE_OPT("--read-timeout", 0.1, 86400, read_timeout_s)
    DOUBLE_OPT("--drain-timeout", 0, 86400, drain_timeout_s)
    if (!strcmp(name, "--model"))
        return c->model_dir = model_path(st, v), 0;
    if (!strcmp(name, "--host"))
        return c->host = v, 0;
    if (!strcmp(name, "--cache-dir"))
        return c->cache_dir = v, 0;
    if (!strcmp(name, "--icl-examples"))
        return c->icl_examples = v, 0;
    if (!strcmp(name, "--api-key"))
        return *v ? (c->api_key = v, 0) : bad(src, "a non-empty key", v);
    if (!strcmp(name, "--api-key-file"))
        return read_key_file(st, src, v);
    if (!strcmp(name, "--icl"))
        return parse_bool(src, v, &c->icl);
    if (!strcmp(name, "--dtype")) {
        bgeicl_dtype d;
        return bgeicl_dtype_parse(v, &d) == 0 ? (c->dtype = v, 0)
                                              : bad(src, "fp32, bf16 or int8", v);
    }
    if (!strcmp(name, "--log-level")) {
        int l = log_level_parse(v);
        return l < 0 ? bad(src, "debug, info, warn or error", v) : (c->log_level = l, 0);
    }
    if (!strcmp(name, "--log-format")) {
        if (strcmp(v, "text") && strcmp(v, "json"))
            return bad(src, "text or json", v);
        return c->log_json = !strcmp(v, "json"), 0;
    }
    return 1; /* not a value option */
}

static int apply_env(serve_state *st)
{
    for (size_t i = 0; i < sizeof env_map / sizeof env_map[0]; i++) {
        const char *v = getenv(env_map[i].env);
        if (v && *v && set_option(st, env_map[i].flag, env_map[i].env, v) != 0)
            return -1;
    }
    return 0;
}

static const char *const value_flags[] = {
    "--model", "--host", "--port", "--threads", "--dtype", "--max-batch-tokens",
    "--max-batch-requests", "--max-concurrent-requests", "--max-client-batch-size",
    "--payload-limit", "--api-key", "--api-key-file", "--cache-size", "--cache-dir", "--icl",
    "--context-cache-size", "--similarity-threshold", "--icl-examples", "--icl-k", "--log-level", "--log-format",
    "--read-timeout", "--idle-timeout", "--drain-timeout", "--max-connections",
    "--debug-batch-delay-ms"};

static int is_value_flag(const char *name)
{
    for (size_t i = 0; i < sizeof value_flags / sizeof value_flags[0]; i++)
        if (!strcmp(name, value_flags[i]))
            return 1;
    return 0;
}

static int apply_flags(serve_state *st, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--metrics-public")) {
            st->cfg.metrics_public = 1;
            continue;
        }
        if (!strcmp(a, "--strict-model")) {
            st->cfg.strict_model = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "bgeicl serve: unexpected argument '%s'\nusage: %s\n", a, usage);
            return -1;
        }
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(a, "="), a);
        if (!is_value_flag(name)) {
            fprintf(stderr, "bgeicl serve: unknown option '%s'\nusage: %s\n", name, usage);
            return -1;
        }
        const char *v;
        if (cli_opt_value(argc, argv, &i, name, &v) < 0 || set_option(st, name, name, v) != 0)
            return -1;
    }
    return 0;
}

int cli_serve(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s\n\n%s", usage, help);
            return CLI_OK;
        }
    serve_state st;
    memset(&st, 0, sizeof st);
    srv_config_init(&st.cfg);
    int rc = CLI_USAGE;
    if (apply_env(&st) == 0 && apply_flags(&st, argc, argv) == 0)
        rc = srv_run(&st.cfg) == 0 ? CLI_OK : CLI_FAIL;
    free(st.key_buf);
    return rc;
}
