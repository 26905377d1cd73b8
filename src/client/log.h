/*
 * log.h - the client's log lines (cl_log_), on stderr, in the server's
 * text format: "ts=... level=warn component=client msg=failover k=v ...".
 * Each line goes out in one write(2), so concurrent lines never interleave.
 * Off unless the client's log_level asks for it.
 */
#ifndef CL_LOG_H
#define CL_LOG_H

enum { CL_LOG_DEBUG = 0, CL_LOG_INFO, CL_LOG_WARN, CL_LOG_ERROR, CL_LOG_OFF };

/* "debug", "info", "warn"/"warning", "error", "off"/"none"; -1 if unknown. */
int cl_log_parse(const char *s);
/* Logs when level >= min. `fields` is a printf format for " k=v" pairs. */
void cl_log(int min, int level, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 4, 5)));

#endif
