/*
 * cli_health.c - `bgeicl health`: the /health of every server of a list,
 * once or (--watch) every --interval seconds until SIGINT.
 *
 * One line per server: URL, status (healthy, loading, draining, unhealthy,
 * unreachable), model, the probe's round-trip time and the configured
 * weight. Exit 0 when every server is healthy, else 1; with --watch the
 * exit status is that of the last complete round.
 */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "bgeicl health --server URL[@W][,URL...] [--watch] [--interval S] [--api-key KEY]";

static const char help[] =
    "Probes GET /health of each server and prints one line per server:\n"
    "URL, status (healthy, loading, draining, unhealthy, unreachable), model,\n"
    "round-trip time of the probe in ms, and the server's weight.\n\n"
    "  --server URL[,URL...]  servers, each optionally weighted as URL@W\n"
    "                         (default: BGE_ICL_BASE_URL)\n"
    "  --api-key KEY          sent as a Bearer token (default: BGE_ICL_API_KEY)\n"
    "  --watch                repeat until SIGINT, each line prefixed with the time\n"
    "  --interval S           seconds between rounds with --watch (5)\n\n"
    "Exit status: 0 when every server is healthy, 1 otherwise (with --watch, of\n"
    "the last complete round), 2 for a usage error.\n";

typedef struct health_args {
    cli_client_args client;
    int watch;
    double interval;
} health_args;

static int parse_args(int argc, char **argv, health_args *a)
{
    a->interval = 5;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r = cli_client_flag(argc, argv, &i, &a->client);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        if (!strcmp(argv[i], "--watch")) {
            a->watch = 1;
            continue;
        }
        r = cli_opt_value(argc, argv, &i, "--interval", &v);
        if (r < 0 || (r > 0 && cli_parse_double("--interval", v, 0.05, 86400, &a->interval)))
            return cli_usage_error("health", usage, "bad --interval");
        if (r == 0)
            return cli_usage_error("health", usage, "unknown option '%s'", argv[i]);
    }
    return CLI_OK;
}

/* One probe's outcome. */
typedef struct probe {
    char status[32];
    char model[128];
    double latency_ms; /* NaN when nothing answered */
    char detail[sizeof ((bgeicl_error *)0)->message];
} probe;

/* Reads {"status":..., "model":...} from a /health body. */
static void read_body(probe *p, const char *body, size_t len, long http)
{
    cJSON *j = body ? cJSON_ParseWithLength(body, len) : NULL;
    const char *st = cli_json_str(j, "status", NULL);
    snprintf(p->status, sizeof p->status, "%s", st ? st : "unhealthy");
    snprintf(p->model, sizeof p->model, "%s", cli_json_str(j, "model", "-"));
    if (!st || http != 200)
        snprintf(p->detail, sizeof p->detail, "HTTP %ld", http);
    cJSON_Delete(j);
}

static void probe_server(bgeicl_client *c, size_t i, probe *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->model, sizeof p->model, "-");
    long http = 0;
    char *body = NULL;
    size_t len = 0;
    bgeicl_error err;
    double t0 = cli_now();
    bgeicl_code rc = bgeicl_client_get(c, i, "/health", &http, &body, &len, &err);
    p->latency_ms = (cli_now() - t0) * 1e3;
    if (http > 0) {
        /* Whatever the call's code, a server answered: its body says why. */
        read_body(p, body, len, http);
    } else {
        snprintf(p->status, sizeof p->status, "unreachable");
        snprintf(p->detail, sizeof p->detail, "%s",
                 rc == BGEICL_OK ? "no answer" : err.message);
        p->latency_ms = NAN;
    }
    bgeicl_free(body);
}

static void print_line(const bgeicl_server_state *s, const probe *p, int watch)
{
    if (watch) {
        char now[32];
        cli_iso_time(now, sizeof now);
        printf("%s  ", now);
    }
    printf("%s  %s  model=%s  latency_ms=", s->url, p->status, p->model);
    if (p->latency_ms == p->latency_ms)
        printf("%.1f", p->latency_ms);
    else
        printf("-");
    printf("  weight=%g", s->weight);
    if (p->detail[0])
        printf("  (%s)", p->detail);
    printf("\n");
}

/* Probes every server, then prints the round unless a stop signal cut it
 * short. Returns 1 when all are healthy, 0 when not, -1 when cut short. */
static int run_round(bgeicl_client *c, int watch)
{
    size_t n = bgeicl_client_server_count(c);
    probe *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "bgeicl health: out of memory\n");
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        probe_server(c, i, &p[i]);
    int all = 1;
    if (watch && cli_stopped()) {
        free(p);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        bgeicl_server_state s;
        bgeicl_client_server_get(c, i, &s);
        print_line(&s, &p[i], watch);
        all &= !strcmp(p[i].status, "healthy");
    }
    fflush(stdout);
    free(p);
    return all;
}

int cli_health(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s\n\n%s", usage, help);
            return CLI_OK;
        }
    health_args a;
    memset(&a, 0, sizeof a);
    bgeicl_client_options o;
    int rc = parse_args(argc, argv, &a);
    if (rc == CLI_OK)
        rc = cli_client_options("health", usage, &a.client, &o);
    if (rc != CLI_OK)
        return rc;
    /* A probe should not hang a health check: no retries, and short
     * timeouts unless BGE_ICL_TIMEOUT asks otherwise. */
    o.max_retries = 0;
    if (!getenv("BGE_ICL_TIMEOUT"))
        o.timeout_s = 10;
    o.connect_timeout_s = o.connect_timeout_s < 5 ? o.connect_timeout_s : 5;
    bgeicl_client *c;
    if ((rc = cli_client_open("health", usage, &o, &c)) != CLI_OK)
        return rc;
    if (a.watch)
        cli_stop_on_signals();
    int last = 0;
    while (!(a.watch && cli_stopped())) {
        double next = cli_now() + a.interval;
        int r = run_round(c, a.watch);
        if (r >= 0)
            last = r;
        if (!a.watch)
            break;
        cli_sleep_until(next);
    }
    bgeicl_client_free(c);
    return last ? CLI_OK : CLI_FAIL;
}
