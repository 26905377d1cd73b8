/*
 * options.c - client option defaults, environment and checks (see
 * options.h and bgeicl.h).
 */
#include "options.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../icl/icl.h"
#include "../icl/lang.h"
#include "../util/util.h"
#include "log.h"

void bgeicl_client_options_init(bgeicl_client_options *o)
{
    if (!o)
        return;
    *o = (bgeicl_client_options){
        .servers = CL_DEFAULT_SERVERS,
        .connect_timeout_s = 10,
        .timeout_s = 120,
        .batch_size = 50,
        .adaptive = 1,
        .min_batch_size = 10,
        .max_batch_size = 100,
        .window = 10,
        .min_points = 3,
        .shrink_above = 1.5,
        .shrink_factor = 0.8,
        .grow_below = 0.7,
        .grow_factor = 1.2,
        .enable_icl = ICL_DEFAULT_ON, /* as the server: see docs/RETRIEVAL.md */
        .context_cache_size = 200,
        .similarity_threshold = 0.8,
        .max_concurrency = 4,
        .max_retries = 3,
        .retry_delay_s = 1,
        .retry_backoff = 2,
        .health_check_interval_s = 30,
    };
}

/* ---- environment --------------------------------------------------------------- */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static bgeicl_code env_int(const char *name, long min, long max, int *out, bgeicl_error *err)
{
    const char *v = env(name);
    if (!v)
        return BGEICL_OK;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno || x < min || x > max)
        return bg_fail(err, BGEICL_ERR_ARG, "%s='%.60s': expected an integer from %ld to %ld", name,
                       v, min, max);
    *out = (int)x;
    return BGEICL_OK;
}

static bgeicl_code env_num(const char *name, double min, double max, double *out,
                           bgeicl_error *err)
{
    const char *v = env(name);
    if (!v)
        return BGEICL_OK;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(x) || x < min || x > max)
        return bg_fail(err, BGEICL_ERR_ARG, "%s='%.60s': expected a number from %g to %g", name, v,
                       min, max);
    *out = x;
    return BGEICL_OK;
}

static bgeicl_code env_bool(const char *name, int *out, bgeicl_error *err)
{
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};
    const char *v = env(name);
    if (!v)
        return BGEICL_OK;
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i]))
            return *out = 1, BGEICL_OK;
        if (!strcasecmp(v, no[i]))
            return *out = 0, BGEICL_OK;
    }
    return bg_fail(err, BGEICL_ERR_ARG, "%s='%.60s': expected true or false (1/0, yes/no, on/off)",
                   name, v);
}

static bgeicl_code env_language(bgeicl_client_options *o, bgeicl_error *err)
{
    const char *v = env("BGE_ICL_LANGUAGE");
    if (v && strcasecmp(v, "auto") && icl_lang_parse(v) < 0)
        return bg_fail(err, BGEICL_ERR_ARG,
                       "BGE_ICL_LANGUAGE='%.60s': unknown language; use auto or a name such as "
                       "python",
                       v);
    if (v)
        o->language = v;
    return BGEICL_OK;
}

static bgeicl_code env_log_level(bgeicl_client_options *o, bgeicl_error *err)
{
    const char *v = env("BGE_ICL_LOG_LEVEL");
    if (v && cl_log_parse(v) < 0)
        return bg_fail(err, BGEICL_ERR_ARG,
                       "BGE_ICL_LOG_LEVEL='%.60s': expected debug, info, warn, error or off", v);
    if (v)
        o->log_level = v;
    return BGEICL_OK;
}

bgeicl_code bgeicl_client_options_from_env(bgeicl_client_options *o, bgeicl_error *err)
{
    if (!o)
        return bg_fail(err, BGEICL_ERR_ARG, "bgeicl_client_options_from_env: options are NULL");
    bgeicl_client_options t = *o; /* all or nothing */
    bgeicl_code rc;
    if ((rc = env_int("BGE_ICL_BATCH_SIZE", 1, CL_MAX_BATCH, &t.batch_size, err)) ||
        (rc = env_num("BGE_ICL_TIMEOUT", 0.001, 86400, &t.timeout_s, err)) ||
        (rc = env_language(&t, err)) || (rc = env_bool("BGE_ICL_ENABLE_ICL", &t.enable_icl, err)) ||
        (rc = env_bool("BGE_ICL_ADAPTIVE_BATCHING", &t.adaptive, err)) ||
        (rc = env_int("BGE_ICL_MIN_BATCH_SIZE", 1, CL_MAX_BATCH, &t.min_batch_size, err)) ||
        (rc = env_int("BGE_ICL_MAX_BATCH_SIZE", 1, CL_MAX_BATCH, &t.max_batch_size, err)) ||
        (rc = env_int("BGE_ICL_CONTEXT_CACHE_SIZE", 0, 1000000, &t.context_cache_size, err)) ||
        (rc = env_num("BGE_ICL_SIMILARITY_THRESHOLD", 0, 1, &t.similarity_threshold, err)) ||
        (rc = env_num("BGE_ICL_HEALTH_CHECK_INTERVAL", 0, 86400, &t.health_check_interval_s,
                      err)) ||
        (rc = env_log_level(&t, err)))
        return rc;
    if (env("BGE_ICL_BASE_URL"))
        t.servers = env("BGE_ICL_BASE_URL");
    if (env("BGE_ICL_API_KEY"))
        t.api_key = env("BGE_ICL_API_KEY");
    *o = t;
    bg_err_clear(err);
    return BGEICL_OK;
}

/* ---- checks ------------------------------------------------------------------------ */

static bgeicl_code int_in(const char *field, int v, long min, long max, bgeicl_error *err)
{
    if (v < min || v > max)
        return bg_fail(err, BGEICL_ERR_ARG, "%s is %d; it must be from %ld to %ld", field, v, min,
                       max);
    return BGEICL_OK;
}

static bgeicl_code num_in(const char *field, double v, double min, double max, bgeicl_error *err)
{
    if (!(v >= min && v <= max))
        return bg_fail(err, BGEICL_ERR_ARG, "%s is %g; it must be from %g to %g", field, v, min,
                       max);
    return BGEICL_OK;
}

static bgeicl_code check_batching(const bgeicl_client_options *o, bgeicl_error *err)
{
    bgeicl_code rc;
    if ((rc = int_in("batch_size", o->batch_size, 1, CL_MAX_BATCH, err)) ||
        (rc = int_in("min_batch_size", o->min_batch_size, 1, CL_MAX_BATCH, err)) ||
        (rc = int_in("max_batch_size", o->max_batch_size, 1, CL_MAX_BATCH, err)) ||
        (rc = int_in("window", o->window, 1, 1000, err)) ||
        (rc = int_in("min_points", o->min_points, 1, o->window, err)) ||
        (rc = num_in("shrink_above", o->shrink_above, 1, 1e6, err)) ||
        (rc = num_in("shrink_factor", o->shrink_factor, 0.01, 1, err)) ||
        (rc = num_in("grow_below", o->grow_below, 0.0, 1, err)) ||
        (rc = num_in("grow_factor", o->grow_factor, 1, 100, err)))
        return rc;
    if (o->adaptive && o->min_batch_size > o->max_batch_size)
        return bg_fail(err, BGEICL_ERR_ARG, "min_batch_size (%d) is above max_batch_size (%d)",
                       o->min_batch_size, o->max_batch_size);
    return BGEICL_OK;
}

static bgeicl_code check_strings(const bgeicl_client_options *o, int *lang, int *log,
                                 bgeicl_error *err)
{
    if (o->api_key)
        for (const char *p = o->api_key; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return bg_fail(err, BGEICL_ERR_ARG, "api_key contains a control character");
    if (o->model && (!*o->model || !bg_utf8_valid(o->model, strlen(o->model))))
        return bg_fail(err, BGEICL_ERR_ARG, "model must be a non-empty UTF-8 string");
    *lang = -1;
    if (o->language && strcasecmp(o->language, "auto") &&
        (*lang = icl_lang_parse(o->language)) < 0)
        return bg_fail(err, BGEICL_ERR_ARG,
                       "language '%.60s' is unknown; use auto or a name such as python",
                       o->language);
    *log = o->log_level ? cl_log_parse(o->log_level) : CL_LOG_OFF;
    if (*log < 0)
        return bg_fail(err, BGEICL_ERR_ARG,
                       "log_level '%.40s': expected debug, info, warn, error or off", o->log_level);
    return BGEICL_OK;
}

bgeicl_code cl_options_check(const bgeicl_client_options *o, int *lang, int *log,
                             bgeicl_error *err)
{
    bgeicl_code rc;
    if ((rc = num_in("connect_timeout_s", o->connect_timeout_s, 0.001, 86400, err)) ||
        (rc = num_in("timeout_s", o->timeout_s, 0.001, 86400, err)) ||
        (rc = check_batching(o, err)) ||
        (rc = int_in("icl_examples", o->icl_examples, 0, 8, err)) ||
        (rc = int_in("context_cache_size", o->context_cache_size, 0, 1000000, err)) ||
        (rc = num_in("similarity_threshold", o->similarity_threshold, 0, 1, err)) ||
        (rc = int_in("max_concurrency", o->max_concurrency, 1, CL_MAX_CONCURRENCY, err)) ||
        (rc = int_in("max_retries", o->max_retries, 0, 100, err)) ||
        (rc = num_in("retry_delay_s", o->retry_delay_s, 0, 3600, err)) ||
        (rc = num_in("retry_backoff", o->retry_backoff, 1, 100, err)) ||
        (rc = num_in("health_check_interval_s", o->health_check_interval_s, 0, 86400, err)))
        return rc;
    return check_strings(o, lang, log, err);
}
