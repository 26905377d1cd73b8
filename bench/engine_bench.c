/*
 * engine_bench.c - in-process throughput of libbgeicl.
 *
 *   engine_bench MODEL_DIR CORPUS.jsonl BATCH[,BATCH...] [SECONDS] [THREADS] [DTYPE]
 *
 * Reads the corpus (one JSON string per line), then for each batch size
 * embeds consecutive slices of the corpus for at least SECONDS (default 5)
 * after one warm-up batch, cycling through the corpus. Prints one JSON
 * object per batch size: texts/s, tokens/s, and the texts and time measured.
 * DTYPE (fp32, bf16, int8; default fp32) is bgeicl_options.dtype.
 */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bgeicl.h"
#include "util/util.h"

typedef struct corpus {
    char **texts;
    size_t n, cap;
} corpus;

static int load_corpus(const char *path, corpus *c)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        if (cJSON_IsString(j)) {
            if (c->n == c->cap) {
                c->cap = c->cap ? c->cap * 2 : 1024;
                c->texts = realloc(c->texts, c->cap * sizeof *c->texts);
            }
            c->texts[c->n++] = strdup(j->valuestring);
        }
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    return c->n ? 0 : -1;
}

static void bench_batch(bgeicl_model *m, const corpus *c, size_t batch, double seconds)
{
    size_t dim = bgeicl_model_dim(m), pos = 0, texts = 0, tokens = 0;
    float *out = malloc(batch * dim * sizeof *out);
    const char **slice = malloc(batch * sizeof *slice);
    bgeicl_error err;
    bgeicl_embed_stats st;
    double start = 0;
    for (int warm = 1; ; warm = 0) {
        for (size_t i = 0; i < batch; i++)
            slice[i] = c->texts[(pos + i) % c->n];
        pos = (pos + batch) % c->n;
        if (bgeicl_embed(m, slice, NULL, batch, 0, out, &st, &err) != BGEICL_OK) {
            fprintf(stderr, "embed failed: %s\n", err.message);
            exit(1);
        }
        if (warm) {
            start = bg_now_ms();
            continue;
        }
        texts += batch;
        tokens += st.tokens;
        double el = (bg_now_ms() - start) / 1e3;
        if (el >= seconds && texts >= 2 * batch) {
            printf("{\"batch\":%zu,\"texts\":%zu,\"tokens\":%zu,\"seconds\":%.3f,"
                   "\"texts_per_s\":%.2f,\"tokens_per_s\":%.1f}\n",
                   batch, texts, tokens, el, texts / el, tokens / el);
            fflush(stdout);
            break;
        }
    }
    free(out);
    free(slice);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: engine_bench MODEL_DIR CORPUS.jsonl BATCHES [SECONDS] [THREADS] "
                        "[DTYPE]\n");
        return 2;
    }
    double seconds = argc > 4 ? atof(argv[4]) : 5.0;
    bgeicl_options o;
    bgeicl_options_init(&o);
    o.threads = argc > 5 ? atoi(argv[5]) : 0;
    if (argc > 6 && bgeicl_dtype_parse(argv[6], &o.dtype) != 0) {
        fprintf(stderr, "unknown dtype %s\n", argv[6]);
        return 2;
    }
    corpus c = {0};
    if (load_corpus(argv[2], &c) != 0) {
        fprintf(stderr, "cannot read corpus %s\n", argv[2]);
        return 1;
    }
    bgeicl_model *m;
    bgeicl_error err;
    if (bgeicl_model_open(argv[1], &o, &m, &err) != BGEICL_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    char *list = strdup(argv[3]);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
        bench_batch(m, &c, (size_t)atol(tok), seconds);
    free(list);
    bgeicl_model_close(m);
    for (size_t i = 0; i < c.n; i++)
        free(c.texts[i]);
    free(c.texts);
    return 0;
}
