/*
 * cli.h - shared pieces of the bgeicl subcommands: option parsing, the
 * JSON Lines input reader and JSON output helpers.
 *
 * Exit codes follow the contract: 0 success, 1 runtime failure, 2 usage.
 */
#ifndef CLI_H
#define CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bgeicl.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* If argv[*i] is `name` (then the value is argv[*i+1]) or `name=value`,
 * stores the value, advances *i past it and returns 1. A missing value
 * prints a usage error and returns -1. Otherwise returns 0. */
int cli_opt_value(int argc, char **argv, int *i, const char *name, const char **value);
/* Parses a positive integer option value; prints an error and returns -1 on failure. */
int cli_parse_int(const char *name, const char *value, long min, long max, long *out);
/* Prints "bgeicl CMD: MSG" and the usage hint to stderr; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One input of `embed` / `tokenize`. */
typedef struct cli_input {
    char *text;
    size_t len;
    char *id_json; /* the "id" field re-serialised as JSON, or NULL */
} cli_input;

/* Reads inputs either from argv texts or, for "-", from JSON Lines on a
 * stream: each line a JSON string or an object with "text" (and optional
 * "id", "path"). Blank lines are skipped. */
typedef struct cli_source {
    char **texts;     /* argv texts, or NULL for the stream */
    int ntexts, next;
    FILE *in;
    size_t lineno;
    char *line;
    size_t line_cap;
    int failed;       /* a bad line was met; the next read reports it */
} cli_source;

/* Fills up to `max` inputs; *n = 0 at the end. Returns 0, or -1 after
 * printing an error naming the line (the inputs before a bad line are
 * returned first). Caller frees with cli_inputs_free. */
int cli_read_inputs(cli_source *src, cli_input *items, size_t max, size_t *n);
void cli_inputs_free(cli_input *items, size_t n);
void cli_source_close(cli_source *src);

/* Writes a float array as a JSON array, round-trippable (9 significant digits). */
void cli_write_floats(FILE *out, const float *v, size_t n);

/* Opens the model or prints the error; returns NULL on failure. */
bgeicl_model *cli_open_model(const char *cmd, const char *dir, int threads, bgeicl_dtype dtype);

int cli_embed(int argc, char **argv);
int cli_tokenize(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_serve(int argc, char **argv);

/* ---- client tools: bench, monitor, diagnose, health (cli_client_common.c) ---- */

struct cJSON;

/* The flags every client tool takes: --server URL[@W][,...] and --api-key. */
typedef struct cli_client_args {
    const char *servers; /* NULL: BGE_ICL_BASE_URL, else a usage error */
    const char *api_key; /* NULL: BGE_ICL_API_KEY, else none */
} cli_client_args;

/* If argv[*i] is --server or --api-key, stores it and returns 1; 0 if not;
 * -1 after printing an error (missing value). */
int cli_client_flag(int argc, char **argv, int *i, cli_client_args *a);
/* Client options from the defaults, the BGE_ICL_* environment, then the
 * flags. The tools probe explicitly, so background health probes are off.
 * Returns CLI_OK, or CLI_USAGE after printing why (no server, bad env). */
int cli_client_options(const char *cmd, const char *usage, const cli_client_args *a,
                       bgeicl_client_options *o);
/* bgeicl_client_new, reporting errors: a bad --server is CLI_USAGE, any
 * other failure CLI_FAIL. */
int cli_client_open(const char *cmd, const char *usage, const bgeicl_client_options *o,
                    bgeicl_client **out);
/* Whether o->servers names exactly one server (for monitor and diagnose). */
int cli_single_server(const bgeicl_client_options *o);

/* Parses a number option value; prints an error naming `name` on failure. */
int cli_parse_double(const char *name, const char *value, double min, double max, double *out);
/* Parses "1,5,10" into up to `max` integers in [min, maxv]; returns the count,
 * or -1 after printing an error naming `name`. */
int cli_parse_int_list(const char *name, const char *value, long min, long maxv, int *out,
                       int max);

/* GET `path` from server i and parse it as JSON. Returns NULL after filling
 * err (a non-200 status is an error naming it). Free with cJSON_Delete. */
struct cJSON *cli_get_json(bgeicl_client *c, size_t i, const char *path, bgeicl_error *err);
/* From /metrics?format=json: the sum of the "value" of every series of a
 * counter or gauge family; NaN when the family is absent. */
double cli_metric_sum(const struct cJSON *metrics, const char *family);
/* The sum and count of every series of a histogram family; -1 if absent. */
int cli_metric_hist(const struct cJSON *metrics, const char *family, double *sum,
                    double *count);
/* A number member of an object (dotted paths not supported); NaN if absent. */
double cli_json_num(const struct cJSON *obj, const char *key);
/* A string member of an object, or `dflt`. */
const char *cli_json_str(const struct cJSON *obj, const char *key, const char *dflt);
/* Adds a number, or null when it is NaN or infinite. */
void cli_json_add_num(struct cJSON *obj, const char *key, double v);
/* Writes j (indented) to path; prints the error and returns -1 on failure. */
int cli_write_json_file(const char *cmd, const char *path, const struct cJSON *j);

/* Summary statistics of n samples (n may be 0: everything NaN). */
typedef struct cli_stats {
    size_t n;
    double mean, min, max, stddev, p50, p95;
} cli_stats;
void cli_stats_of(const double *v, size_t n, cli_stats *s);
/* The q-quantile (0..1) of n samples, linear between closest ranks. */
double cli_percentile(const double *v, size_t n, double q);

/* Monotonic seconds. */
double cli_now(void);
/* The current time as ISO-8601 UTC, "2026-01-02T03:04:05Z". */
void cli_iso_time(char *buf, size_t cap);
/* SIGINT and SIGTERM set a flag instead of killing the process. */
void cli_stop_on_signals(void);
int cli_stopped(void);
/* Sleeps until the monotonic time `deadline`, or until a stop signal. */
void cli_sleep_until(double deadline);

/* Languages the snippet generator writes, and its output. */
extern const char *const cli_gen_languages[];
/* Index of a language name in cli_gen_languages, or -1. */
int cli_gen_language(const char *name);
/* Writes a short, code-like snippet in language `lang` into buf. `counter`
 * is part of the text, so distinct counters give distinct texts; `seed`
 * varies the rest. Returns the length. */
size_t cli_gen_snippet(char *buf, size_t cap, int lang, uint64_t counter, uint64_t seed);

int cli_bench(int argc, char **argv);
int cli_monitor(int argc, char **argv);
int cli_diagnose(int argc, char **argv);
int cli_health(int argc, char **argv);

#endif
