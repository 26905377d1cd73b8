/*
 * cli.h - shared pieces of the bgeicl subcommands: option parsing, the
 * JSON Lines input reader and JSON output helpers.
 *
 * Exit codes follow the contract: 0 success, 1 runtime failure, 2 usage.
 */
#ifndef CLI_H
#define CLI_H

#include <stddef.h>
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
bgeicl_model *cli_open_model(const char *cmd, const char *dir, int threads);

int cli_embed(int argc, char **argv);
int cli_tokenize(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_serve(int argc, char **argv);

#endif
