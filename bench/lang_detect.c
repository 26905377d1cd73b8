/*
 * lang_detect.c - runs icl_lang_detect over JSON Lines, for bench/lang_eval.py.
 *
 *   lang_detect [--time | --probe] < chunks.jsonl > names.txt
 *
 * Each input line is a JSON object {"text": "...", "path": "..."} ("path"
 * optional, null or absent for text-only detection) or a bare JSON string.
 * Prints one language name per input line, in order. With --time, detects
 * every text again in a timed loop and reports microseconds per text on
 * stderr, so the figure covers detection alone, not JSON parsing.
 * With --probe, prints instead what bench/lang_train.py learns from, one
 * line per text: 1 if the rules call it generic else 0, the thirteen rule
 * scores (python ... sql), then the text's feature buckets.
 * Exits 1 on a line that is not such JSON, naming the line.
 */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "icl/lang.h"
#include "util/util.h"

typedef struct item {
    char *text;
    size_t len;
    char *path; /* NULL: text only */
} item;

int main(int argc, char **argv)
{
    int timing = argc > 1 && strcmp(argv[1], "--time") == 0;
    int probe = argc > 1 && strcmp(argv[1], "--probe") == 0;
    item *items = NULL;
    size_t n = 0, cap = 0, lineno = 0;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    while ((got = getline(&line, &line_cap, stdin)) > 0) {
        lineno++;
        cJSON *j = cJSON_ParseWithLength(line, (size_t)got);
        const cJSON *t = cJSON_IsString(j) ? j : cJSON_GetObjectItemCaseSensitive(j, "text");
        const cJSON *p = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "path") : NULL;
        if (!cJSON_IsString(t)) {
            fprintf(stderr, "lang_detect: line %zu: expected a JSON string or an object with \"text\"\n",
                    lineno);
            cJSON_Delete(j);
            return 1;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            items = realloc(items, cap * sizeof *items);
            if (!items)
                return 1;
        }
        items[n].text = strdup(t->valuestring);
        items[n].len = strlen(t->valuestring);
        items[n].path = cJSON_IsString(p) ? strdup(p->valuestring) : NULL;
        n++;
        cJSON_Delete(j);
    }
    free(line);

    for (size_t i = 0; i < n && probe; i++) {
        enum { CAP = 8192 };
        static unsigned short feats[CAP];
        int rule[ICL_LANG_COUNT];
        size_t nf = 0;
        int generic = icl_lang_probe(items[i].text, items[i].len, rule, feats, CAP, &nf);
        printf("%d", generic);
        for (int l = 1; l < ICL_LANG_COUNT; l++)
            printf(" %d", rule[l]);
        fputs(" |", stdout);
        for (size_t k = 0; k < nf && k < CAP; k++)
            printf(" %u", feats[k]);
        putchar('\n');
    }
    for (size_t i = 0; i < n && !probe; i++)
        puts(icl_lang_name(icl_lang_detect(items[i].text, items[i].len, items[i].path)));

    if (timing && n) {
        /* Enough rounds for a stable figure without holding a shared core for long. */
        size_t bytes = 0, sink = 0;
        for (size_t i = 0; i < n; i++)
            bytes += items[i].len;
        int rounds = 1;
        while (rounds < 64 && (size_t)rounds * bytes < 50u * 1000 * 1000)
            rounds *= 2;
        double t0 = bg_now_ms();
        for (int r = 0; r < rounds; r++)
            for (size_t i = 0; i < n; i++)
                sink += (size_t)icl_lang_detect(items[i].text, items[i].len, NULL);
        double ms = bg_now_ms() - t0;
        fprintf(stderr, "{\"texts\": %zu, \"rounds\": %d, \"us_per_text\": %.3f, \"mb_per_s\": %.1f, \"sink\": %zu}\n",
                n, rounds, ms * 1000.0 / ((double)n * rounds),
                (double)bytes * rounds / (ms * 1000.0), sink);
    }
    for (size_t i = 0; i < n; i++) {
        free(items[i].text);
        free(items[i].path);
    }
    free(items);
    return 0;
}
