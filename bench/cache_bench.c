/*
 * cache_bench.c - throughput of the embedding cache (src/cache/emb_cache.h).
 *
 *   cache_bench [DIR] [N] [DIM]      defaults: build/cache-bench 100000 384
 *
 * Hashes N keys, then measures puts and gets of N entries of DIM floats in
 * memory only and persistent (the log in DIR, removed at the end), plus
 * puts under a budget that evicts, gets from two threads, and the time to
 * read the log back at open. Prints one JSON object. Links the server
 * archive (libcrypto, zlib), not only libbgeicl.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/emb_cache.h"
#include "util/util.h"

static size_t n_items, dim;
static uint8_t (*keys)[32];
static size_t *order; /* a random permutation of 0..n-1 */

static void make_vec(size_t i, float *v)
{
    for (size_t j = 0; j < dim; j++)
        v[j] = (float)((i * 31 + j * 17) % 1000) / 1000.0f;
    v[0] = (float)i;
}

static double put_all(emb_cache *c, size_t n)
{
    float *v = malloc(dim * sizeof *v);
    make_vec(0, v);
    double t0 = bg_now_ms();
    for (size_t i = 0; i < n; i++) {
        v[0] = (float)i; /* a distinct vector, at the cost of one store */
        if (emb_cache_put(c, keys[i], v) != BGEICL_OK) {
            fprintf(stderr, "put %zu failed\n", i);
            exit(1);
        }
    }
    double ms = bg_now_ms() - t0;
    free(v);
    return n / (ms / 1000.0);
}

/* Gets every key once in random order; returns ops/s, counts hits. */
static double get_all(emb_cache *c, size_t *hits)
{
    float *v = malloc(dim * sizeof *v);
    size_t h = 0;
    double t0 = bg_now_ms();
    for (size_t i = 0; i < n_items; i++)
        h += (size_t)emb_cache_get(c, keys[order[i]], v);
    double ms = bg_now_ms() - t0;
    free(v);
    *hits = h;
    return n_items / (ms / 1000.0);
}

typedef struct th_arg {
    emb_cache *c;
    size_t start;
} th_arg;

static void *get_thread(void *p)
{
    th_arg *a = p;
    float *v = malloc(dim * sizeof *v);
    for (size_t i = 0; i < n_items; i++)
        emb_cache_get(a->c, keys[order[(a->start + i) % n_items]], v);
    free(v);
    return NULL;
}

static double get_threads(emb_cache *c, int nt)
{
    pthread_t t[8];
    th_arg a[8];
    double t0 = bg_now_ms();
    for (int i = 0; i < nt; i++) {
        a[i] = (th_arg){c, (size_t)i * n_items / (size_t)nt};
        pthread_create(&t[i], NULL, get_thread, &a[i]);
    }
    for (int i = 0; i < nt; i++)
        pthread_join(t[i], NULL);
    double ms = bg_now_ms() - t0;
    return (double)nt * n_items / (ms / 1000.0);
}

static emb_cache *open_or_die(size_t budget, const char *dir)
{
    emb_cache *c = NULL;
    bgeicl_error err;
    if (emb_cache_open(budget, dim, dir, "bench/fp32", &c, &err) != BGEICL_OK) {
        fprintf(stderr, "cache_bench: %s\n", err.message);
        exit(1);
    }
    return c;
}

static void remove_log(const char *dir)
{
    char *p = bg_path_join(dir, EMB_CACHE_LOG_NAME);
    if (p)
        unlink(p);
    bg_free(p);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "build/cache-bench";
    n_items = argc > 2 ? (size_t)atol(argv[2]) : 100000;
    dim = argc > 3 ? (size_t)atol(argv[3]) : 384;
    if (n_items == 0 || dim == 0) {
        fprintf(stderr, "usage: cache_bench [DIR] [N] [DIM]\n");
        return 2;
    }

    /* Keys as the server builds them: model, dtype, options, text. */
    keys = malloc(n_items * sizeof *keys);
    order = malloc(n_items * sizeof *order);
    char text[160];
    double t0 = bg_now_ms();
    for (size_t i = 0; i < n_items; i++) {
        int l = snprintf(text, sizeof text,
                         "def function_%zu(arg):\n    return helper(arg) + %zu  # a line of code",
                         i, i * 7);
        const char *parts[4] = {"bge-small-en-v1.5", "fp32", "normalize=1", text};
        size_t lens[4] = {17, 4, 11, (size_t)l};
        emb_cache_key(parts, lens, 4, keys[i]);
    }
    double key_ops = n_items / ((bg_now_ms() - t0) / 1000.0);
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < n_items; i++)
        order[i] = i;
    for (size_t i = n_items - 1; i > 0; i--) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        size_t j = (size_t)(s % (i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }

    /* Memory only. */
    size_t entry = 0, hits = 0;
    emb_cache *c = open_or_die((size_t)-1 / 2, NULL);
    double mem_put = put_all(c, n_items);
    emb_cache_stats st;
    emb_cache_stats_get(c, &st);
    entry = (size_t)(st.bytes / st.entries);
    double mem_get = get_all(c, &hits);
    size_t mem_hits = hits;
    double mem_get2 = get_threads(c, 2);
    emb_cache_close(c);
    c = open_or_die(n_items / 10 * entry, NULL);
    double mem_put_evict = put_all(c, n_items);
    double mem_get_mostly_miss = get_all(c, &hits);
    emb_cache_close(c);

    /* Persistent. */
    remove_log(dir);
    c = open_or_die((size_t)-1 / 2, dir);
    double p_put = put_all(c, n_items);
    double p_get = get_all(c, &hits);
    size_t p_hits = hits;
    t0 = bg_now_ms();
    emb_cache_close(c);
    double close_ms = bg_now_ms() - t0;
    char *logp = bg_path_join(dir, EMB_CACHE_LOG_NAME);
    struct stat sb;
    long long log_bytes = logp && stat(logp, &sb) == 0 ? (long long)sb.st_size : -1;
    t0 = bg_now_ms();
    c = open_or_die((size_t)-1 / 2, dir);
    double open_ms = bg_now_ms() - t0;
    emb_cache_stats_get(c, &st);
    emb_cache_close(c);
    /* Under a budget of a tenth: evictions and a compaction every ~11k puts. */
    remove_log(dir);
    c = open_or_die(n_items / 10 * entry, dir);
    double p_put_evict = put_all(c, n_items);
    emb_cache_close(c);
    remove_log(dir);
    rmdir(dir);
    bg_free(logp);

    printf("{\"n\":%zu,\"dim\":%zu,\"entry_bytes\":%zu,\"key_ops_s\":%.0f,\n", n_items, dim,
           entry, key_ops);
    printf(" \"memory\":{\"put_ops_s\":%.0f,\"get_hit_ops_s\":%.0f,\"hits\":%zu,"
           "\"get_hit_2threads_ops_s\":%.0f,\"put_evicting_ops_s\":%.0f,"
           "\"get_mostly_miss_ops_s\":%.0f},\n",
           mem_put, mem_get, mem_hits, mem_get2, mem_put_evict, mem_get_mostly_miss);
    printf(" \"persistent\":{\"put_ops_s\":%.0f,\"get_hit_ops_s\":%.0f,\"hits\":%zu,"
           "\"close_ms\":%.1f,\"log_bytes\":%lld,\"open_ms\":%.1f,\"loaded\":%llu,"
           "\"load_records_s\":%.0f,\"put_evicting_compacting_ops_s\":%.0f}}\n",
           p_put, p_get, p_hits, close_ms, log_bytes, open_ms, (unsigned long long)st.loaded,
           st.loaded / (open_ms / 1000.0), p_put_evict);
    free(keys);
    free(order);
    return 0;
}
