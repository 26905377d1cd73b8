/*
 * cli_tokenize.c - `bgeicl tokenize`: token ids and byte offsets, one JSON
 * line per input, special tokens included.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define BATCH 256

static const char *const usage =
    "bgeicl tokenize --model DIR [TEXT... | -]\n"
    "  Prints one line {\"index\":i,\"ids\":[...],\"offsets\":[[start,end],...]} per input,\n"
    "  with byte offsets into the input and [CLS]/[SEP] included.\n"
    "  With -, reads JSON Lines from stdin: a JSON string or {\"text\":...}.";

static void print_tokens(FILE *out, size_t index, const cli_input *it, const bgeicl_tokens *t)
{
    fprintf(out, "{\"index\":%zu,", index);
    if (it->id_json)
        fprintf(out, "\"id\":%s,", it->id_json);
    fputs("\"ids\":[", out);
    for (size_t i = 0; i < t->n; i++)
        fprintf(out, i ? ",%d" : "%d", (int)t->ids[i]);
    fputs("],\"offsets\":[", out);
    for (size_t i = 0; i < t->n; i++)
        fprintf(out, i ? ",[%u,%u]" : "[%u,%u]", (unsigned)t->start[i], (unsigned)t->end[i]);
    fputs("]}\n", out);
}

static int run(bgeicl_model *m, cli_source *src)
{
    cli_input items[BATCH];
    bgeicl_tokens t = {0};
    size_t n, index = 0;
    int rc = CLI_OK, rd;
    while (rc == CLI_OK && (rd = cli_read_inputs(src, items, BATCH, &n)) == 0 && n > 0) {
        for (size_t i = 0; i < n && rc == CLI_OK; i++, index++) {
            bgeicl_error err;
            if (bgeicl_tokenize(m, items[i].text, items[i].len, 0, &t, &err) != BGEICL_OK) {
                fprintf(stderr, "bgeicl tokenize: input %zu: %s\n", index, err.message);
                rc = CLI_FAIL;
            } else {
                print_tokens(stdout, index, &items[i], &t);
            }
        }
        cli_inputs_free(items, n);
    }
    if (rd < 0)
        rc = CLI_FAIL;
    bgeicl_tokens_free(&t);
    return rc;
}

int cli_tokenize(int argc, char **argv)
{
    const char *model = NULL;
    int from_stdin = 0;
    char **texts = malloc((size_t)argc * sizeof *texts);
    int ntexts = 0;
    if (!texts)
        return CLI_FAIL;
    int rc = CLI_OK;
    for (int i = 1; i < argc && rc == CLI_OK; i++) {
        const char *v;
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s\n", usage);
            free(texts);
            return CLI_OK;
        } else if ((r = cli_opt_value(argc, argv, &i, "--model", &v)) != 0) {
            if (r < 0)
                rc = CLI_USAGE;
            model = v;
        } else if (!strcmp(argv[i], "-")) {
            from_stdin = 1;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            rc = cli_usage_error("tokenize", usage, "unknown option %s", argv[i]);
        } else {
            texts[ntexts++] = argv[i];
        }
    }
    if (rc == CLI_OK && !model)
        rc = cli_usage_error("tokenize", usage, "--model DIR is required");
    else if (rc == CLI_OK && from_stdin == (ntexts > 0))
        rc = cli_usage_error("tokenize", usage, "give TEXT arguments or - for stdin (one of them)");
    if (rc != CLI_OK) {
        free(texts);
        return rc;
    }
    cli_source src = {0};
    if (from_stdin)
        src.in = stdin;
    else
        src.texts = texts, src.ntexts = ntexts;
    bgeicl_model *m = cli_open_model("tokenize", model, 1, BGEICL_DTYPE_FP32);
    rc = m ? run(m, &src) : CLI_FAIL;
    bgeicl_model_close(m);
    cli_source_close(&src);
    free(texts);
    if (rc == CLI_OK && fflush(stdout) != 0)
        rc = CLI_FAIL;
    return rc;
}
