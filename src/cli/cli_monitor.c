/*
 * cli_monitor.c - `bgeicl monitor`: one line per --interval seconds with a
 * server's response time, throughput, context-cache hit rate, CPU, memory,
 * batch size and queue depth; the performance-tuning guide's alerts; and a
 * JSON report at the end (--duration reached, or SIGINT/SIGTERM).
 *
 * Each snapshot sends one probe (a single document embedding of a fresh
 * text, so it takes the real path: queue, tokenizer, forward pass; never
 * the embedding cache) and reads /metrics?format=json. Rates are deltas
 * between consecutive reads of the server's own counters, divided by the
 * time between those reads.
 */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
    "bgeicl monitor --server URL [--interval S] [--duration S] [--report FILE.json]\n"
    "               [--api-key KEY] [--latency-alert-ms MS] [--cpu-alert PCT]\n"
    "               [--memory-alert PCT] [--cache-hit-alert PCT]";

static const char help[] =
    "Prints one line per snapshot:\n"
    "  time            ISO-8601, UTC\n"
    "  latency_ms      round trip of a probe: one document embedding of a fresh text\n"
    "  throughput_tps  texts/s the server embedded since the last snapshot, the probe\n"
    "                  excluded (bge_icl_embeddings_generated_total)\n"
    "  cache_hit_pct   the server's context-cache hit rate (cache_hit_rate)\n"
    "  cpu_pct         server CPU time / wall time, in % of its inference threads\n"
    "                  (/info threads; 100 = every inference thread busy)\n"
    "  memory_pct      process_resident_memory_bytes / MemTotal of THIS machine's\n"
    "                  /proc/meminfo: meaningful only when the server runs here\n"
    "  batch_size      texts in the server's last executed batch\n"
    "  queue_depth     requests admitted and not yet answered\n\n"
    "Alerts (the performance-tuning guide's thresholds) are appended to the line\n"
    "and printed on stderr: latency > 10000 ms, CPU > 90%, memory > 95%, and a\n"
    "cache hit rate < 30% once the context cache has been looked up at all (a\n"
    "server without ICL traffic has nothing to fix), and a failed probe.\n\n"
    "  --server URL            the server (default: BGE_ICL_BASE_URL)\n"
    "  --api-key KEY           sent as a Bearer token (default: BGE_ICL_API_KEY)\n"
    "  --interval S            seconds between snapshots (5)\n"
    "  --duration S            stop after S seconds (default: run until SIGINT)\n"
    "  --report FILE.json      write avg/min/max/p95 of every metric and the alerts\n"
    "  --latency-alert-ms MS, --cpu-alert PCT, --memory-alert PCT, --cache-hit-alert PCT\n"
    "                          change a threshold (10000, 90, 95, 30)\n\n"
    "Exit status: 0 when at least one snapshot succeeded and the report (if asked)\n"
    "was written, 1 otherwise, 2 for a usage error.\n";

/* ---- metrics of a snapshot ------------------------------------------------------- */

enum { M_LATENCY, M_THROUGHPUT, M_CACHE, M_CPU, M_MEM, M_BATCH, M_QUEUE, M_COUNT };
static const char *const metric_names[M_COUNT] = {"latency_ms",    "throughput_tps",
                                                  "cache_hit_pct", "cpu_pct",
                                                  "memory_pct",    "batch_size",
                                                  "queue_depth"};

typedef struct monitor_args {
    cli_client_args client;
    double interval, duration; /* duration 0: until a signal */
    const char *report;
    double threshold[M_COUNT]; /* NaN: no alert on that metric */
} monitor_args;

/* One alert: a metric past its threshold, or a failed probe (metric -1). */
typedef struct alert {
    char time[32];
    int metric;
    double value;
    char message[192];
} alert;

typedef struct monitor_state {
    monitor_args a;
    bgeicl_client *client;
    double threads;              /* /info threads: the CPU denominator */
    double mem_total;            /* bytes, this machine */
    char model[128];
    double prev_t, prev_emb, prev_cpu; /* the last successful metrics read */
    uint64_t probes;
    double *values[M_COUNT];     /* per snapshot; NaN where unknown */
    size_t n, cap;
    alert *alerts;
    size_t n_alerts, cap_alerts;
    size_t probe_errors;
    char start[32], end[32];
} monitor_state;

/* ---- arguments ------------------------------------------------------------------- */

static int threshold_flag(int argc, char **argv, int *i, monitor_args *a)
{
    static const struct {
        const char *flag;
        int metric;
        double max;
    } t[] = {{"--latency-alert-ms", M_LATENCY, 1e9},
             {"--cpu-alert", M_CPU, 1e6},
             {"--memory-alert", M_MEM, 100},
             {"--cache-hit-alert", M_CACHE, 100}};
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        const char *v;
        int r = cli_opt_value(argc, argv, i, t[k].flag, &v);
        if (r > 0 && cli_parse_double(t[k].flag, v, 0, t[k].max, &a->threshold[t[k].metric]))
            return -1;
        if (r)
            return r;
    }
    return 0;
}

static int parse_args(int argc, char **argv, monitor_args *a)
{
    for (int m = 0; m < M_COUNT; m++)
        a->threshold[m] = NAN;
    a->threshold[M_LATENCY] = 10000;
    a->threshold[M_CPU] = 90;
    a->threshold[M_MEM] = 95;
    a->threshold[M_CACHE] = 30;
    a->interval = 5;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r = cli_client_flag(argc, argv, &i, &a->client);
        if (r == 0)
            r = threshold_flag(argc, argv, &i, a);
        if (r == 0 && (r = cli_opt_value(argc, argv, &i, "--interval", &v)) > 0 &&
            cli_parse_double("--interval", v, 0.05, 86400, &a->interval))
            r = -1;
        if (r == 0 && (r = cli_opt_value(argc, argv, &i, "--duration", &v)) > 0 &&
            cli_parse_double("--duration", v, 0.01, 1e9, &a->duration))
            r = -1;
        if (r == 0 && (r = cli_opt_value(argc, argv, &i, "--report", &a->report)) > 0 &&
            !*a->report) {
            fprintf(stderr, "bgeicl: --report needs a file name\n");
            r = -1;
        }
        if (r < 0)
            return cli_usage_error("monitor", usage, "invalid option value (see above)");
        if (r == 0)
            return cli_usage_error("monitor", usage, "unknown option '%s'", argv[i]);
    }
    return CLI_OK;
}

/* ---- server facts ---------------------------------------------------------------- */

static double mem_total_bytes(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    double kb = NAN;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %lf kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024.0;
}

static void read_info(monitor_state *st)
{
    bgeicl_error err;
    cJSON *info = cli_get_json(st->client, 0, "/info", &err);
    st->threads = cli_json_num(info, "threads");
    if (!(st->threads >= 1))
        st->threads = 1; /* unknown: report % of one core */
    snprintf(st->model, sizeof st->model, "%s", cli_json_str(info, "model", "unknown"));
    cJSON_Delete(info);
}

/* ---- one snapshot ---------------------------------------------------------------- */

static int push_alert(monitor_state *st, const char *time, int metric, double value,
                      const char *msg)
{
    if (st->n_alerts == st->cap_alerts) {
        size_t cap = st->cap_alerts ? 2 * st->cap_alerts : 16;
        alert *p = realloc(st->alerts, cap * sizeof *p);
        if (!p)
            return -1;
        st->alerts = p;
        st->cap_alerts = cap;
    }
    alert *al = &st->alerts[st->n_alerts++];
    snprintf(al->time, sizeof al->time, "%s", time);
    al->metric = metric;
    al->value = value;
    snprintf(al->message, sizeof al->message, "%s", msg);
    return 0;
}

/* Embeds one fresh text; returns the round trip in ms or NaN (err filled). */
static double probe(monitor_state *st, bgeicl_error *err)
{
    char text[160];
    snprintf(text, sizeof text, "monitor probe %ld.%llu: def health_check(): return True",
             (long)getpid(), (unsigned long long)++st->probes);
    const char *texts[1] = {text};
    bgeicl_vectors v = {0};
    double t0 = cli_now();
    bgeicl_code rc = bgeicl_client_embed(st->client, texts, NULL, 1, 0, NULL, &v, err);
    double ms = (cli_now() - t0) * 1e3;
    bgeicl_vectors_free(&v);
    return rc == BGEICL_OK ? ms : NAN;
}

/* Fills row[] from a metrics read taken at time t. */
static void read_metrics(monitor_state *st, const cJSON *m, double t, int probed,
                         double row[M_COUNT], double *lookups)
{
    double emb = cli_metric_sum(m, "bge_icl_embeddings_generated_total");
    double cpu = cli_metric_sum(m, "process_cpu_seconds_total");
    double dt = t - st->prev_t;
    double texts = emb - st->prev_emb - (probed ? 1 : 0);
    row[M_THROUGHPUT] = dt > 0 ? (texts > 0 ? texts : 0) / dt : NAN;
    row[M_CPU] = dt > 0 ? (cpu - st->prev_cpu) / dt / st->threads * 100.0 : NAN;
    row[M_MEM] = cli_metric_sum(m, "process_resident_memory_bytes") / st->mem_total * 100.0;
    row[M_CACHE] = cli_json_num(m, "cache_hit_rate") * 100.0;
    row[M_BATCH] = cli_json_num(m, "current_batch_size");
    row[M_QUEUE] = cli_json_num(m, "queue_depth");
    *lookups = cli_metric_sum(m, "bge_icl_context_cache_hits_total") +
               cli_metric_sum(m, "bge_icl_context_cache_misses_total");
    st->prev_t = t;
    st->prev_emb = emb;
    st->prev_cpu = cpu;
}

/* Alerts of one row, appended to `line`; returns how many. */
static int check_alerts(monitor_state *st, const char *time, const double row[M_COUNT],
                        double lookups, char *line, size_t cap)
{
    int count = 0;
    for (int m = 0; m < M_COUNT; m++) {
        double th = st->a.threshold[m], v = row[m];
        if (th != th || v != v)
            continue;
        /* A cache that was never looked up has no hit rate to act on. */
        int low = m == M_CACHE;
        if (low && !(lookups > 0))
            continue;
        if (low ? !(v < th) : !(v > th))
            continue;
        char msg[160];
        snprintf(msg, sizeof msg, "%s %.1f %s %g", metric_names[m], v, low ? "<" : ">", th);
        size_t len = strlen(line);
        snprintf(line + len, cap - len, "  ALERT %s", msg);
        fprintf(stderr, "bgeicl monitor: %s ALERT %s\n", time, msg);
        push_alert(st, time, m, v, msg);
        count++;
    }
    return count;
}

static int push_row(monitor_state *st, const double row[M_COUNT])
{
    if (st->n == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 64;
        for (int m = 0; m < M_COUNT; m++) {
            double *p = realloc(st->values[m], cap * sizeof *p);
            if (!p)
                return -1;
            st->values[m] = p;
        }
        st->cap = cap;
    }
    for (int m = 0; m < M_COUNT; m++)
        st->values[m][st->n] = row[m];
    st->n++;
    return 0;
}

static void format_line(char *line, size_t cap, const char *time, const double row[M_COUNT])
{
    size_t len = (size_t)snprintf(line, cap, "%s", time);
    for (int m = 0; m < M_COUNT && len < cap; m++) {
        int prec = m == M_BATCH || m == M_QUEUE ? 0 : 1;
        if (row[m] == row[m])
            len += (size_t)snprintf(line + len, cap - len, "  %s=%.*f", metric_names[m], prec,
                                    row[m]);
        else
            len += (size_t)snprintf(line + len, cap - len, "  %s=-", metric_names[m]);
    }
}

/* One snapshot: probe, read the metrics, print the line, raise alerts.
 * Returns 1 if the probe worked, 0 if not, -1 if a stop signal cut it. */
static int snapshot(monitor_state *st)
{
    double row[M_COUNT];
    for (int m = 0; m < M_COUNT; m++)
        row[m] = NAN;
    char time[32], line[1024];
    cli_iso_time(time, sizeof time);
    bgeicl_error perr, merr;
    row[M_LATENCY] = probe(st, &perr);
    int ok = row[M_LATENCY] == row[M_LATENCY];
    cJSON *m = cli_get_json(st->client, 0, "/metrics?format=json", &merr);
    if (cli_stopped() && (!ok || !m)) {
        cJSON_Delete(m);
        return -1;
    }
    double lookups = 0;
    if (m)
        read_metrics(st, m, cli_now(), ok, row, &lookups);
    cJSON_Delete(m);
    format_line(line, sizeof line, time, row);
    check_alerts(st, time, row, lookups, line, sizeof line);
    if (!ok) {
        char msg[160];
        snprintf(msg, sizeof msg, "probe failed: %.140s", perr.message);
        size_t len = strlen(line);
        snprintf(line + len, sizeof line - len, "  ALERT %s", msg);
        fprintf(stderr, "bgeicl monitor: %s ALERT %s\n", time, msg);
        push_alert(st, time, -1, NAN, msg);
        st->probe_errors++;
    }
    printf("%s\n", line);
    fflush(stdout);
    push_row(st, row);
    return ok;
}

/* ---- the report ------------------------------------------------------------------ */

static cJSON *metric_summary(const monitor_state *st, int m)
{
    double *v = malloc((st->n ? st->n : 1) * sizeof *v);
    size_t n = 0;
    for (size_t i = 0; v && i < st->n; i++)
        if (st->values[m][i] == st->values[m][i])
            v[n++] = st->values[m][i];
    cli_stats s;
    cli_stats_of(v, n, &s);
    free(v);
    cJSON *o = cJSON_CreateObject();
    cli_json_add_num(o, "avg", s.mean);
    cli_json_add_num(o, "min", s.min);
    cli_json_add_num(o, "max", s.max);
    cli_json_add_num(o, "p95", s.p95);
    cJSON_AddNumberToObject(o, "samples", (double)n);
    return o;
}

static cJSON *alerts_json(const monitor_state *st)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < st->n_alerts; i++) {
        const alert *al = &st->alerts[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "time", al->time);
        cJSON_AddStringToObject(o, "metric", al->metric >= 0 ? metric_names[al->metric] : "probe");
        cli_json_add_num(o, "value", al->value);
        cli_json_add_num(o, "threshold", al->metric >= 0 ? st->a.threshold[al->metric] : NAN);
        cJSON_AddStringToObject(o, "message", al->message);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static int write_report(const monitor_state *st, const char *server)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "server", server);
    cJSON_AddStringToObject(r, "model", st->model);
    cJSON_AddStringToObject(r, "start", st->start);
    cJSON_AddStringToObject(r, "end", st->end);
    cJSON_AddNumberToObject(r, "interval_s", st->a.interval);
    cli_json_add_num(r, "duration_s", st->a.duration > 0 ? st->a.duration : NAN);
    cJSON_AddNumberToObject(r, "snapshots", (double)st->n);
    cJSON_AddNumberToObject(r, "probe_errors", (double)st->probe_errors);
    char basis[160];
    snprintf(basis, sizeof basis, "percent of the server's %g inference threads", st->threads);
    cJSON_AddStringToObject(r, "cpu_basis", basis);
    cJSON_AddStringToObject(r, "memory_basis",
                            "server RSS / MemTotal of the machine running monitor");
    cJSON *th = cJSON_AddObjectToObject(r, "thresholds");
    for (int m = 0; m < M_COUNT; m++)
        if (st->a.threshold[m] == st->a.threshold[m])
            cJSON_AddNumberToObject(th, metric_names[m], st->a.threshold[m]);
    cJSON *ms = cJSON_AddObjectToObject(r, "metrics");
    for (int m = 0; m < M_COUNT; m++)
        cJSON_AddItemToObject(ms, metric_names[m], metric_summary(st, m));
    cJSON_AddNumberToObject(r, "alert_count", (double)st->n_alerts);
    cJSON_AddItemToObject(r, "alerts", alerts_json(st));
    int rc = cli_write_json_file("monitor", st->a.report, r);
    cJSON_Delete(r);
    return rc;
}

/* ---- the loop -------------------------------------------------------------------- */

static void baseline(monitor_state *st)
{
    bgeicl_error err;
    cJSON *m = cli_get_json(st->client, 0, "/metrics?format=json", &err);
    st->prev_t = cli_now();
    st->prev_emb = cli_metric_sum(m, "bge_icl_embeddings_generated_total");
    st->prev_cpu = cli_metric_sum(m, "process_cpu_seconds_total");
    if (!m)
        fprintf(stderr, "bgeicl monitor: cannot read /metrics: %s\n", err.message);
    cJSON_Delete(m);
}

/* Snapshots at start + k x interval; a late snapshot skips the ticks it missed. */
static int run_loop(monitor_state *st)
{
    int any_ok = 0;
    double t0 = cli_now();
    for (long k = 1; !cli_stopped(); k++) {
        double due = t0 + (double)k * st->a.interval;
        if (st->a.duration > 0 && due > t0 + st->a.duration + 1e-6)
            break;
        cli_sleep_until(due);
        if (cli_stopped())
            break;
        int r = snapshot(st);
        any_ok |= r > 0;
        double now = cli_now();
        if (now > due + st->a.interval)
            k = (long)((now - t0) / st->a.interval);
    }
    return any_ok;
}

static void state_free(monitor_state *st)
{
    for (int m = 0; m < M_COUNT; m++)
        free(st->values[m]);
    free(st->alerts);
    bgeicl_client_free(st->client);
}

int cli_monitor(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s\n\n%s", usage, help);
            return CLI_OK;
        }
    monitor_state st;
    memset(&st, 0, sizeof st);
    bgeicl_client_options o;
    int rc = parse_args(argc, argv, &st.a);
    if (rc == CLI_OK)
        rc = cli_client_options("monitor", usage, &st.a.client, &o);
    if (rc == CLI_OK && !cli_single_server(&o))
        rc = cli_usage_error("monitor", usage, "--server takes one server, got '%s'", o.servers);
    if (rc != CLI_OK)
        return rc;
    /* A probe is a measurement: a retry would hide the failure it measures. */
    o.max_retries = 0;
    if (!getenv("BGE_ICL_TIMEOUT"))
        o.timeout_s = 30;
    if ((rc = cli_client_open("monitor", usage, &o, &st.client)) != CLI_OK)
        return rc;
    cli_stop_on_signals();
    st.mem_total = mem_total_bytes();
    read_info(&st);
    cli_iso_time(st.start, sizeof st.start);
    baseline(&st);
    int ok = run_loop(&st);
    cli_iso_time(st.end, sizeof st.end);
    fprintf(stderr, "bgeicl monitor: %zu snapshots, %zu alerts\n", st.n, st.n_alerts);
    if (st.a.report && write_report(&st, o.servers) != 0)
        ok = 0;
    state_free(&st);
    return ok ? CLI_OK : CLI_FAIL;
}
