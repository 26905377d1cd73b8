/*
 * bpe_tok.c - drives the tokenizer of a tokenizer-only folder (such as
 * models/bge-en-icl-tokenizer) over JSON Lines, for
 * tests/py/test_decoder_tokenizer.py and for timing. `bgeicl tokenize`
 * needs a whole embedding model, which a decoder tokenizer folder is not.
 *
 *   bpe_tok encode DIR [--no-special] [--max-len N]  < strings   > {"ids","offsets"}
 *   bpe_tok decode DIR                               < id arrays > {"text"}
 *   bpe_tok icl DIR                                  < requests  > {"ids","text","max_length"}
 *   bpe_tok bench DIR [--repeat N]                   < strings   (tokens/s on stderr)
 *
 * Input lines are JSON. encode and bench take strings; decode takes arrays
 * of ids; icl takes {"task": "...", "query": "...", "examples": [[query,
 * response], ...], "query_max_len": N}. Output is one JSON object per input
 * line, in order; offsets are byte offsets into the input. Exits 1 naming
 * the line on bad input or a tokenizer error, 2 on usage errors.
 */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "icl/prompt_decoder.h"
#include "tokenizer/tok.h"
#include "util/util.h"

static int usage(void)
{
    fprintf(stderr, "usage: bpe_tok encode|decode|icl|bench DIR [--no-special] [--max-len N] "
                    "[--repeat N] < input.jsonl\n");
    return 2;
}

static int fail_line(size_t lineno, const char *msg)
{
    fprintf(stderr, "bpe_tok: line %zu: %s\n", lineno, msg);
    return 1;
}

static void print_ids(const tok_encoding *e, int offsets)
{
    fputs("{\"ids\":[", stdout);
    for (size_t i = 0; i < e->n; i++)
        printf("%s%d", i ? "," : "", (int)e->ids[i]);
    if (offsets) {
        fputs("],\"offsets\":[", stdout);
        for (size_t i = 0; i < e->n; i++)
            printf("%s[%u,%u]", i ? "," : "", (unsigned)e->start[i], (unsigned)e->end[i]);
    }
    fputs("]", stdout);
}

/* Prints sep "key":"text" with JSON escaping. */
static void print_text_field(const char *sep, const char *key, const char *text)
{
    cJSON *s = cJSON_CreateString(text);
    char *js = s ? cJSON_PrintUnformatted(s) : NULL;
    printf("%s\"%s\":%s", sep, key, js ? js : "null");
    free(js);
    cJSON_Delete(s);
}

static int do_encode(const tok_tokenizer *t, const cJSON *j, int special, size_t max_len,
                     size_t lineno)
{
    if (!cJSON_IsString(j))
        return fail_line(lineno, "expected a JSON string");
    tok_encoding e = {0};
    bg_err err;
    const char *s = j->valuestring;
    if (tok_encode(t, s, strlen(s), special, max_len, &e, NULL, &err) != BGEICL_OK)
        return fail_line(lineno, err.message);
    print_ids(&e, 1);
    puts("}");
    tok_encoding_free(&e);
    return 0;
}

static int do_decode(const tok_tokenizer *t, const cJSON *j, size_t lineno)
{
    int n = cJSON_GetArraySize(j);
    int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
    int k = 0;
    for (const cJSON *e = cJSON_IsArray(j) ? j->child : NULL; e && ids; e = e->next)
        ids[k++] = (int32_t)e->valuedouble;
    char *text = NULL;
    bg_err err;
    int rc = !ids || !cJSON_IsArray(j) ? fail_line(lineno, "expected an array of ids")
             : tok_decode(t, ids, (size_t)k, &text, NULL, &err) != BGEICL_OK
                 ? fail_line(lineno, err.message)
                 : 0;
    if (rc == 0) {
        print_text_field("{", "text", text);
        puts("}");
    }
    bg_free(text);
    free(ids);
    return rc;
}

/* Fills p from an icl request; the strings stay owned by j. */
static int icl_request(const cJSON *j, icl_prompt *p, const char **q, const char **r,
                       size_t cap, size_t *qmax)
{
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(j, "task");
    const cJSON *query = cJSON_GetObjectItemCaseSensitive(j, "query");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(j, "examples");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "query_max_len");
    if (!cJSON_IsString(task) || !cJSON_IsString(query) || !cJSON_IsNumber(m) ||
        (ex && !cJSON_IsArray(ex)) || (size_t)cJSON_GetArraySize(ex) > cap)
        return -1;
    memset(p, 0, sizeof *p);
    size_t n = 0;
    for (const cJSON *e = ex ? ex->child : NULL; e; e = e->next, n++) {
        if (cJSON_GetArraySize(e) != 2 || !cJSON_IsString(e->child) ||
            !cJSON_IsString(e->child->next))
            return -1;
        q[n] = e->child->valuestring;
        r[n] = e->child->next->valuestring;
    }
    p->instruction = task->valuestring;
    p->query = query->valuestring;
    p->query_len = strlen(query->valuestring);
    p->ex_query = q;
    p->ex_response = r;
    p->n_examples = n;
    *qmax = (size_t)m->valuedouble;
    return 0;
}

static int do_icl(const tok_tokenizer *t, const cJSON *j, size_t lineno)
{
    const char *q[16], *r[16];
    icl_prompt p;
    size_t qmax;
    if (icl_request(j, &p, q, r, 16, &qmax) != 0)
        return fail_line(lineno, "expected {task, query, examples: [[q, r], ...], query_max_len}");
    icl_decoder_tokens out;
    bg_err err;
    if (icl_decoder_assemble(t, &p, qmax, &out, &err) != BGEICL_OK)
        return fail_line(lineno, err.message);
    print_ids(&out.enc, 0);
    print_text_field(",", "text", out.text);
    printf(",\"max_length\":%zu,\"query_cut\":%d}\n", out.max_length, out.query_cut);
    icl_decoder_tokens_free(&out);
    return 0;
}

/* Encodes every text `repeat` times and reports the rate on stderr. */
static int do_bench(const tok_tokenizer *t, char **texts, size_t n, long repeat)
{
    tok_encoding e = {0};
    size_t tokens = 0, bytes = 0;
    double t0 = bg_now_ms();
    for (long k = 0; k < repeat; k++) {
        for (size_t i = 0; i < n; i++) {
            if (tok_encode(t, texts[i], strlen(texts[i]), 1, 0, &e, NULL, NULL) != BGEICL_OK)
                return fail_line(i + 1, "encode failed");
            tokens += e.n;
            bytes += strlen(texts[i]);
        }
    }
    double ms = bg_now_ms() - t0;
    fprintf(stderr, "bpe_tok bench: %zu texts x %ld, %zu tokens, %.1f MB in %.1f ms: "
                    "%.2f M tokens/s, %.1f MB/s\n", n, repeat, tokens, bytes / 1e6, ms,
            tokens / ms / 1e3, bytes / ms / 1e3);
    tok_encoding_free(&e);
    return 0;
}

typedef struct opts {
    const char *mode, *dir;
    int special;
    size_t max_len;
    long repeat;
} opts;

static int parse_args(int argc, char **argv, opts *o)
{
    if (argc < 3)
        return -1;
    *o = (opts){argv[1], argv[2], 1, 0, 1};
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--no-special") == 0)
            o->special = 0;
        else if (strcmp(argv[i], "--max-len") == 0 && i + 1 < argc)
            o->max_len = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            o->repeat = strtol(argv[++i], NULL, 10);
        else
            return -1;
    }
    return 0;
}

static int run_line(const tok_tokenizer *t, const opts *o, const cJSON *j, size_t lineno)
{
    if (strcmp(o->mode, "encode") == 0)
        return do_encode(t, j, o->special, o->max_len, lineno);
    if (strcmp(o->mode, "decode") == 0)
        return do_decode(t, j, lineno);
    return do_icl(t, j, lineno);
}

int main(int argc, char **argv)
{
    opts o;
    if (parse_args(argc, argv, &o) != 0 ||
        !strstr(" encode decode icl bench ", o.mode) || strchr(o.mode, ' '))
        return usage();
    tok_tokenizer *t = NULL;
    bg_err err;
    if (tok_load(o.dir, &t, &err) != BGEICL_OK) {
        fprintf(stderr, "bpe_tok: %s\n", err.message);
        return 1;
    }
    int bench = strcmp(o.mode, "bench") == 0, rc = 0;
    char *line = NULL, **texts = NULL;
    size_t cap = 0, lineno = 0, n = 0;
    ssize_t got;
    while (rc == 0 && (got = getline(&line, &cap, stdin)) > 0) {
        cJSON *j = cJSON_ParseWithLength(line, (size_t)got);
        lineno++;
        if (!j) {
            rc = fail_line(lineno, "not JSON");
        } else if (bench && cJSON_IsString(j)) {
            char **grown = realloc(texts, (n + 1) * sizeof *texts);
            rc = grown ? 0 : fail_line(lineno, "out of memory");
            if (grown)
                (texts = grown)[n++] = strdup(j->valuestring);
        } else {
            rc = bench ? fail_line(lineno, "expected a JSON string") : run_line(t, &o, j, lineno);
        }
        cJSON_Delete(j);
    }
    if (rc == 0 && bench)
        rc = do_bench(t, texts, n, o.repeat);
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(line);
    tok_free(t);
    return rc;
}
