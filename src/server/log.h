/*
 * log.h - structured log lines on stderr, one event per line.
 *
 *   text: ts=2026-11-29T10:00:00.123Z level=info msg=request method=POST status=200
 *   json: {"ts":"2026-11-29T10:00:00.123Z","level":"info","msg":"request","method":"POST","status":200}
 *
 * An event is a level, a message and a list of typed fields. Text values
 * that hold spaces, quotes, '=' or control characters are quoted with JSON
 * escapes, so every line splits unambiguously on spaces. Each line is
 * written with one write(2), so lines from concurrent threads never
 * interleave. The logger is configured once at start (log_setup) and is
 * read-only afterwards.
 */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include <stddef.h>

typedef enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 } log_level;

typedef enum log_kind { LOG_STR, LOG_INT, LOG_NUM } log_kind;

typedef struct log_field {
    const char *key;
    log_kind kind;
    const char *s; /* LOG_STR; NULL logs as null / "-" */
    long long i;   /* LOG_INT */
    double d;      /* LOG_NUM, written with 3 decimals */
} log_field;

#define LOG_S(k, v) ((log_field){.key = (k), .kind = LOG_STR, .s = (v)})
#define LOG_I(k, v) ((log_field){.key = (k), .kind = LOG_INT, .i = (long long)(v)})
#define LOG_N(k, v) ((log_field){.key = (k), .kind = LOG_NUM, .d = (double)(v)})

/* Parses "debug", "info", "warn"/"warning", "error". Returns -1 if unknown. */
int log_level_parse(const char *s);
void log_setup(log_level min_level, int json);
int log_enabled(log_level level);
void log_event(log_level level, const char *msg, const log_field *fields, size_t n);

#endif
