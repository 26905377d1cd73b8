/*
 * cli_common.c - option parsing, JSON Lines input and JSON output for the
 * bgeicl subcommands.
 */
#include <cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_opt_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *a = argv[*i];
    size_t nl = strlen(name);
    if (strncmp(a, name, nl) != 0)
        return 0;
    if (a[nl] == '=') {
        *value = a + nl + 1;
        return 1;
    }
    if (a[nl] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "bgeicl: option %s needs a value\n", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int cli_parse_int(const char *name, const char *value, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < min || v > max) {
        fprintf(stderr, "bgeicl: %s must be an integer from %ld to %ld, got '%s'\n", name, min,
                max, value);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bgeicl %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nusage: %s\n", usage);
    va_end(ap);
    return CLI_USAGE;
}

bgeicl_model *cli_open_model(const char *cmd, const char *dir, int threads, bgeicl_dtype dtype)
{
    bgeicl_options opts;
    bgeicl_options_init(&opts);
    opts.threads = threads;
    opts.dtype = dtype;
    bgeicl_model *m = NULL;
    bgeicl_error err;
    if (bgeicl_model_open(dir, &opts, &m, &err) != BGEICL_OK) {
        fprintf(stderr, "bgeicl %s: cannot load model: %s\n", cmd, err.message);
        return NULL;
    }
    return m;
}

/* ---- inputs ------------------------------------------------------------------ */

static int dup_input(cli_input *it, const char *text, size_t len)
{
    it->text = malloc(len + 1);
    if (!it->text)
        return -1;
    memcpy(it->text, text, len);
    it->text[len] = '\0';
    it->len = len;
    return 0;
}

/* Whether a JSON text holds the escape \u0000. cJSON ends its strings at
 * the first NUL, so such a text would be cut short without a word; we
 * refuse it instead. An escape is live when an odd number of backslashes
 * leads up to the 'u'. */
static int has_nul_escape(const char *s)
{
    for (const char *p = strstr(s, "u0000"); p; p = strstr(p + 1, "u0000")) {
        size_t slashes = 0;
        for (const char *q = p; q > s && q[-1] == '\\'; q--)
            slashes++;
        if (slashes % 2 == 1)
            return 1;
    }
    return 0;
}

/* Parses one JSON line into it. Returns 0, or -1 after printing why. */
static int parse_line(cli_source *src, cli_input *it)
{
    if (has_nul_escape(src->line)) {
        fprintf(stderr, "bgeicl: stdin line %zu: NUL characters (\\u0000) are not supported\n",
                src->lineno);
        return -1;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(src->line, &end, 1);
    const cJSON *text = j;
    if (j && cJSON_IsObject(j))
        text = cJSON_GetObjectItemCaseSensitive(j, "text");
    if (!j || !cJSON_IsString(text)) {
        fprintf(stderr,
                "bgeicl: stdin line %zu: expected a JSON string or an object with a string "
                "\"text\" field\n",
                src->lineno);
        cJSON_Delete(j);
        return -1;
    }
    int rc = dup_input(it, text->valuestring, strlen(text->valuestring));
    const cJSON *id = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
    if (rc == 0 && id) {
        it->id_json = cJSON_PrintUnformatted(id);
        rc = it->id_json ? 0 : -1;
    }
    cJSON_Delete(j);
    if (rc)
        fprintf(stderr, "bgeicl: out of memory reading stdin line %zu\n", src->lineno);
    return rc;
}

static int only_space(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return 0;
    return 1;
}

int cli_read_inputs(cli_source *src, cli_input *items, size_t max, size_t *n)
{
    *n = 0;
    if (src->failed)
        return -1;
    while (*n < max) {
        cli_input *it = &items[*n];
        memset(it, 0, sizeof *it);
        if (src->texts) {
            if (src->next >= src->ntexts)
                break;
            const char *t = src->texts[src->next++];
            if (dup_input(it, t, strlen(t)) != 0) {
                fprintf(stderr, "bgeicl: out of memory\n");
                return -1;
            }
        } else {
            ssize_t got = getline(&src->line, &src->line_cap, src->in);
            if (got < 0)
                break;
            src->lineno++;
            if (only_space(src->line))
                continue;
            if (parse_line(src, it) != 0) {
                /* Hand back what came before the bad line first, so that
                 * output stays a prefix of the input; fail on the next call. */
                cli_inputs_free(it, 1);
                src->failed = 1;
                return *n ? 0 : -1;
            }
        }
        (*n)++;
    }
    return 0;
}

void cli_inputs_free(cli_input *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].text);
        cJSON_free(items[i].id_json);
        items[i].text = NULL;
        items[i].id_json = NULL;
    }
}

void cli_source_close(cli_source *src) { free(src->line); }

/* ---- output ------------------------------------------------------------------ */

void cli_write_floats(FILE *out, const float *v, size_t n)
{
    char buf[32];
    fputc('[', out);
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(buf, sizeof buf, "%s%.9g", i ? "," : "", (double)v[i]);
        fwrite(buf, 1, (size_t)len, out);
    }
    fputc(']', out);
}
