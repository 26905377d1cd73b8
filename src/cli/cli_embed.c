/*
 * cli_embed.c - `bgeicl embed`: embeddings for texts, as JSON Lines or one
 * JSON document.
 *
 * Inputs are read and embedded in slices of BATCH texts so that memory
 * stays bounded however long the input stream is; output order is input
 * order.
 */
#include <stdlib.h>
#include <string.h>

#include "../icl/icl.h"
#include "cli.h"

#define BATCH 64

static const char *const usage =
    "bgeicl embed --model DIR [--query] [--language L] [--icl | --no-icl] [--icl-examples DIR]\n"
    "             [--format jsonl|json] [--threads N] [TEXT... | -]\n"
    "  Prints one line {\"index\":i,\"embedding\":[...]} per input (plus \"id\" if given).\n"
    "  With -, reads JSON Lines from stdin: a JSON string or {\"text\":..., \"id\":...}.\n"
    "  --query embeds the texts as queries: the model's query instruction, or with --icl an\n"
    "  instruction and worked examples for the language (--language, else detected), as the\n"
    "  server builds them. --no-icl is the default, as for the server (docs/RETRIEVAL.md).";

typedef struct embed_opts {
    const char *model;
    int query;
    int icl;          /* ICL for queries */
    int lang;         /* -1: detect */
    const char *examples;
    int json; /* 1: one JSON array document instead of lines */
    long threads;
    int first_text; /* argv index of the first TEXT, or -1 for stdin */
} embed_opts;

static int parse(int argc, char **argv, embed_opts *o)
{
    memset(o, 0, sizeof *o);
    o->icl = ICL_DEFAULT_ON;
    o->lang = -1;
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
        } else if ((r = cli_opt_value(argc, argv, &i, "--icl-examples", &v)) != 0) {
            if (r < 0)
                return -1;
            o->examples = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--model", &v)) != 0) {
            if (r < 0)
                return -1;
            o->model = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--format", &v)) != 0) {
            if (r < 0)
                return -1;
            if (strcmp(v, "jsonl") && strcmp(v, "json"))
                return cli_usage_error("embed", usage, "--format must be jsonl or json"), -1;
            o->json = !strcmp(v, "json");
        } else if ((r = cli_opt_value(argc, argv, &i, "--threads", &v)) != 0) {
            if (r < 0 || cli_parse_int("--threads", v, 1, 1024, &o->threads) < 0)
                return -1;
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
    if (!o->model)
        return cli_usage_error("embed", usage, "--model DIR is required"), -1;
    if (o->first_text == 0)
        return cli_usage_error("embed", usage, "no input: give TEXT arguments or - for stdin"), -1;
    return 0;
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
                !strcmp(argv[i], "--icl"))
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
    int rc = CLI_FAIL;
    bgeicl_model *m = cli_open_model("embed", o.model, (int)o.threads);
    /* The bank is read only when queries get ICL. */
    icl_settings is = {.k = ICL_DEFAULT_K};
    if (o.query && o.icl)
        is.examples_dir = o.examples ? o.examples : icl_default_examples_dir();
    icl_engine *e = NULL;
    bgeicl_error err;
    if (m && icl_engine_create(&is, &e, &err) != BGEICL_OK)
        fprintf(stderr, "bgeicl embed: cannot load the ICL examples: %s\n", err.message);
    else if (m)
        rc = run(m, e, &src, &o);
    icl_engine_free(e);
    bgeicl_model_close(m);
    cli_source_close(&src);
    free(texts);
    if (rc == CLI_OK && fflush(stdout) != 0)
        rc = CLI_FAIL;
    return rc;
}
