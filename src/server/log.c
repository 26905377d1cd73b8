/*
 * log.c - structured log lines (see log.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static log_level min_level = LOG_INFO;
static int as_json = 0;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *s)
{
    if (!strcasecmp(s, "warning"))
        return LOG_WARN;
    for (int i = 0; i < 4; i++)
        if (!strcasecmp(s, level_names[i]))
            return i;
    return -1;
}

void log_setup(log_level level, int json)
{
    min_level = level;
    as_json = json;
}

int log_enabled(log_level level) { return level >= min_level; }

/* A bounded line buffer: appends past the end are dropped, and the line is
 * then marked as cut with a trailing "...". */
#define LINE_TAIL 8 /* room kept for "...", "}" and "\n" */

typedef struct line {
    char buf[4096];
    size_t len;
} line;

static void put(line *l, const char *s, size_t n)
{
    size_t room = sizeof l->buf - LINE_TAIL - l->len;
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line *l, const char *s) { put(l, s, strlen(s)); }

static void put_quoted(line *l, const char *s)
{
    put(l, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(l, esc, 6);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
    put(l, "\"", 1);
}

/* Text values go bare unless they would break the key=value split. */
static int needs_quotes(const char *s)
{
    if (!*s)
        return 1;
    for (; *s; s++)
        if (*s == ' ' || *s == '"' || *s == '=' || *s == '\\' || (unsigned char)*s < 0x20 ||
            *s == 0x7f)
            return 1;
    return 0;
}

static void put_value(line *l, const log_field *f)
{
    char num[48];
    switch (f->kind) {
    case LOG_STR:
        if (!f->s)
            puts_(l, as_json ? "null" : "-");
        else if (as_json || needs_quotes(f->s))
            put_quoted(l, f->s);
        else
            puts_(l, f->s);
        return;
    case LOG_INT:
        snprintf(num, sizeof num, "%lld", f->i);
        break;
    case LOG_NUM:
        snprintf(num, sizeof num, "%.3f", f->d);
        break;
    }
    puts_(l, num);
}

static void put_field(line *l, const char *key, const log_field *f)
{
    if (as_json) {
        put(l, ",", 1);
        put_quoted(l, key);
        put(l, ":", 1);
    } else {
        put(l, " ", 1);
        puts_(l, key);
        put(l, "=", 1);
    }
    put_value(l, f);
}

static void timestamp(char *out, size_t n)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%03dZ", (int)(tv.tv_usec / 1000));
}

void log_event(log_level level, const char *msg, const log_field *fields, size_t n)
{
    if (!log_enabled(level))
        return;
    line l = {.len = 0};
    char ts[40];
    timestamp(ts, sizeof ts);
    log_field head[3] = {LOG_S("ts", ts), LOG_S("level", level_names[level]), LOG_S("msg", msg)};
    if (as_json) {
        put(&l, "{", 1);
        put_quoted(&l, "ts");
        put(&l, ":", 1);
        put_value(&l, &head[0]);
    } else {
        puts_(&l, "ts=");
        puts_(&l, ts);
    }
    for (int i = 1; i < 3; i++)
        put_field(&l, head[i].key, &head[i]);
    for (size_t i = 0; i < n; i++)
        put_field(&l, fields[i].key, &fields[i]);
    if (l.len == sizeof l.buf - LINE_TAIL && !as_json) {
        memcpy(l.buf + l.len, "...", 3);
        l.len += 3;
    }
    if (as_json)
        l.buf[l.len++] = '}';
    l.buf[l.len++] = '\n';
    /* One write per line: concurrent lines never interleave. */
    ssize_t w = write(STDERR_FILENO, l.buf, l.len);
    (void)w;
}
