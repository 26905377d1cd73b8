/*
 * log.c - the client's log lines (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *const NAMES[] = {"debug", "info", "warn", "error"};

int cl_log_parse(const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < 4; i++)
        if (!strcasecmp(s, NAMES[i]))
            return i;
    if (!strcasecmp(s, "warning"))
        return CL_LOG_WARN;
    if (!strcasecmp(s, "off") || !strcasecmp(s, "none"))
        return CL_LOG_OFF;
    return -1;
}

void cl_log(int min, int level, const char *msg, const char *fields, ...)
{
    if (level < min || level < 0 || level >= CL_LOG_OFF)
        return;
    char line[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int k = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s component=client msg=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, NAMES[level], msg);
    if (k < 0 || (size_t)k >= sizeof line - 2)
        k = (int)sizeof line - 2;
    va_list ap;
    va_start(ap, fields);
    int f = vsnprintf(line + k, sizeof line - (size_t)k - 1, fields, ap);
    va_end(ap);
    k += f < 0 ? 0 : f;
    if ((size_t)k > sizeof line - 2)
        k = (int)sizeof line - 2;
    line[k++] = '\n';
    ssize_t w = write(2, line, (size_t)k);
    (void)w;
}
