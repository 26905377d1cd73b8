/*
 * test_emb_cache.c - the embedding cache: keys, hits and misses, LRU order
 * under a budget, the log read back after clean closes, torn tails at every
 * byte, corrupt records, foreign files, compaction, allocation failures,
 * IO failures, a process killed mid-write (SIGKILL) and concurrent threads.
 *
 * Files go to a fresh directory under $BUILD (set by `make unit`), removed
 * at the end. The tests know the file format (emb_cache.h): a header of
 * 20 + strlen(tag) bytes, then records of 40 + 4 * dim bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/emb_cache.h"
#include "harness.h"
#include "util/util.h"

/* ---- helpers ------------------------------------------------------------------ */

static char root[400];

static const char *path_in(char *buf, size_t n, const char *name)
{
    if (snprintf(buf, n, "%s/%s", root, name) >= (int)n)
        buf[0] = '\0';
    return buf;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void rm_rf(const char *p) { nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static size_t hdr_size(const char *tag) { return 20 + strlen(tag); }
static size_t rec_size(size_t dim) { return 40 + 4 * dim; }

static long file_size(const char *dir)
{
    char p[1024];
    if (snprintf(p, sizeof p, "%s/%s", dir, EMB_CACHE_LOG_NAME) >= (int)sizeof p)
        return -1;
    struct stat sb;
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

/* Reads or writes the whole log of dir. */
static unsigned char *log_read(const char *dir, size_t *len)
{
    char p[1024], *data = NULL;
    if (snprintf(p, sizeof p, "%s/%s", dir, EMB_CACHE_LOG_NAME) >= (int)sizeof p)
        return NULL;
    if (bg_read_file(p, &data, len, NULL) != BGEICL_OK)
        return NULL;
    return (unsigned char *)data;
}

static int log_write(const char *dir, const unsigned char *data, size_t len)
{
    char p[1024];
    if (snprintf(p, sizeof p, "%s/%s", dir, EMB_CACHE_LOG_NAME) >= (int)sizeof p)
        return -1;
    FILE *f = fopen(p, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

/* The key of item i, built as the server builds them. */
static void mkkey(int i, uint8_t key[32])
{
    char text[64];
    snprintf(text, sizeof text, "def item_%d(): return %d", i, i);
    const char *parts[3] = {"bge-small-en-v1.5", "fp32", text};
    size_t lens[3] = {strlen(parts[0]), strlen(parts[1]), strlen(text)};
    emb_cache_key(parts, lens, 3, key);
}

/* A vector that differs from every other item's in every float. */
static void mkvec(int i, size_t dim, float *v)
{
    for (size_t j = 0; j < dim; j++)
        v[j] = (float)(((unsigned)i * 2654435761u + (unsigned)j * 40503u) % 100003u) / 100003.0f -
               0.5f + (float)i;
}

/* 1 if the cache holds item i with exactly its vector; 0 on a miss; -1 if
 * it holds a wrong vector (never acceptable). */
static int holds(emb_cache *c, int i, size_t dim)
{
    uint8_t k[32];
    float got[512], want[512];
    mkkey(i, k);
    memset(got, 0xAB, sizeof got);
    if (!emb_cache_get(c, k, got))
        return 0;
    mkvec(i, dim, want);
    return memcmp(got, want, dim * sizeof(float)) == 0 ? 1 : -1;
}

static bgeicl_code put_item(emb_cache *c, int i, size_t dim)
{
    uint8_t k[32];
    float v[512];
    mkkey(i, k);
    mkvec(i, dim, v);
    return emb_cache_put(c, k, v);
}

static emb_cache *open_ok(size_t budget, size_t dim, const char *dir, const char *tag)
{
    emb_cache *c = NULL;
    bgeicl_error err;
    bgeicl_code rc = emb_cache_open(budget, dim, dir, tag, &c, &err);
    if (rc != BGEICL_OK)
        fprintf(stderr, "emb_cache_open: %s\n", err.message);
    CHECK_EQ_INT(rc, BGEICL_OK);
    return c;
}

static emb_cache_stats stats(emb_cache *c)
{
    emb_cache_stats s;
    emb_cache_stats_get(c, &s);
    return s;
}

/* Bytes one entry holds, as the cache accounts them. */
static size_t entry_bytes(size_t dim)
{
    emb_cache *c = open_ok(1 << 20, dim, NULL, NULL);
    put_item(c, 0, dim);
    size_t n = (size_t)stats(c).bytes;
    emb_cache_close(c);
    return n;
}

#define BIG (64u << 20)

/* ---- keys ----------------------------------------------------------------------- */

static void hex(const uint8_t *k, char *out)
{
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", k[i]);
}

TEST(key_is_length_prefixed_sha256)
{
    uint8_t a[32], b[32];
    char h[65];
    const char *p1[] = {"abc"};
    size_t l1[] = {3};
    emb_cache_key(p1, l1, 1, a);
    hex(a, h); /* sha256 of 03 00 00 00 00 00 00 00 'a' 'b' 'c' (Python hashlib) */
    CHECK(!strcmp(h, "ce91dc5eec0139adf091900d225971d6ad246a845bad791b5693a9d0d55dd391"));
    const char *p2[] = {"ab", "c"};
    size_t l2[] = {2, 1};
    emb_cache_key(p2, l2, 2, b);
    hex(b, h);
    CHECK(!strcmp(h, "43ee655579de01ca739b3f95c1c2d3f46d353b2c0df818064ea594506cdb2617"));
    const char *p3[] = {"a", "bc"};
    size_t l3[] = {1, 2};
    emb_cache_key(p3, l3, 2, a);
    CHECK(memcmp(a, b, 32) != 0);

    /* No parts, one empty part, two empty parts: all different. */
    uint8_t e0[32], e1[32], e2[32];
    const char *pe[] = {"", ""};
    size_t le[] = {0, 0};
    emb_cache_key(NULL, NULL, 0, e0);
    hex(e0, h);
    CHECK(!strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    emb_cache_key(pe, le, 1, e1);
    emb_cache_key(pe, le, 2, e2);
    CHECK(memcmp(e0, e1, 32) && memcmp(e1, e2, 32) && memcmp(e0, e2, 32));

    /* Parts may hold NUL bytes; only the lengths delimit them. */
    const char *pn[] = {"a\0b"};
    size_t ln1[] = {3}, ln2[] = {1};
    emb_cache_key(pn, ln1, 1, a);
    emb_cache_key(pn, ln2, 1, b);
    CHECK(memcmp(a, b, 32) != 0);

    /* Same parts, same key; different model, different key. */
    mkkey(7, a);
    mkkey(7, b);
    CHECK(!memcmp(a, b, 32));
    const char *pm[] = {"all-MiniLM-L6-v2", "fp32", "def item_7(): return 7"};
    size_t lm[] = {strlen(pm[0]), 4, strlen(pm[2])};
    emb_cache_key(pm, lm, 3, b);
    CHECK(memcmp(a, b, 32) != 0);
}

/* OpenSSL's allocations, made to fail on demand (set before its first use). */
static atomic_long ossl_countdown = -1;

static int ossl_should_fail(void)
{
    long c = atomic_load(&ossl_countdown);
    if (c < 0)
        return 0;
    if (c == 0)
        return 1;
    atomic_fetch_sub(&ossl_countdown, 1);
    return 0;
}
static void *ossl_malloc(size_t n, const char *f, int l)
{
    (void)f, (void)l;
    return ossl_should_fail() ? NULL : malloc(n);
}
static void *ossl_realloc(void *p, size_t n, const char *f, int l)
{
    (void)f, (void)l;
    return ossl_should_fail() ? NULL : realloc(p, n);
}
static void ossl_free(void *p, const char *f, int l)
{
    (void)f, (void)l;
    free(p);
}

TEST(key_hash_failure_gives_reserved_key)
{
    uint8_t good[32], k[32], zero[32] = {0};
    float v[8] = {1}, out[8];
    mkkey(1, good);
    emb_cache *c = open_ok(BIG, 8, NULL, NULL);
    int failed = 0;
    for (long n = 0; n < 20; n++) {
        atomic_store(&ossl_countdown, n);
        mkkey(1, k);
        atomic_store(&ossl_countdown, -1);
        /* Either the right key or the reserved one, never another. */
        CHECK(!memcmp(k, good, 32) || !memcmp(k, zero, 32));
        if (!memcmp(k, zero, 32)) {
            failed++;
            CHECK_EQ_INT(emb_cache_put(c, k, v), BGEICL_ERR_ARG);
            CHECK_EQ_INT(emb_cache_get(c, k, out), 0);
        }
    }
    CHECK(failed >= 1); /* at least EVP_MD_CTX_new failed */
    CHECK_EQ_INT(stats(c).entries, 0);
    emb_cache_close(c);
}

/* ---- memory ------------------------------------------------------------------------ */

TEST(open_rejects_bad_arguments)
{
    emb_cache *c = (emb_cache *)1;
    bgeicl_error err;
    size_t one = entry_bytes(8);
    char longtag[300];
    memset(longtag, 't', sizeof longtag - 1);
    longtag[sizeof longtag - 1] = '\0';
    CHECK_EQ_INT(emb_cache_open(BIG, 0, NULL, NULL, &c, &err), BGEICL_ERR_ARG);
    CHECK(c == NULL);
    CHECK_STR_CONTAINS(err.message, "dim");
    CHECK_EQ_INT(emb_cache_open(BIG, EC_MAX_DIM + 1, NULL, NULL, &c, NULL), BGEICL_ERR_ARG);
    CHECK_EQ_INT(emb_cache_open(one - 1, 8, NULL, NULL, &c, &err), BGEICL_ERR_ARG);
    CHECK_STR_CONTAINS(err.message, "budget");
    CHECK_EQ_INT(emb_cache_open(BIG, 8, NULL, longtag, &c, NULL), BGEICL_ERR_ARG);
    CHECK_EQ_INT(emb_cache_open(BIG, 8, "", NULL, &c, NULL), BGEICL_ERR_ARG);
    CHECK_EQ_INT(emb_cache_open(BIG, 8, NULL, NULL, NULL, NULL), BGEICL_ERR_ARG);
    /* A budget of exactly one entry works and holds one. */
    c = open_ok(one, 8, NULL, NULL);
    put_item(c, 1, 8);
    put_item(c, 2, 8);
    CHECK_EQ_INT(holds(c, 1, 8), 0);
    CHECK_EQ_INT(holds(c, 2, 8), 1);
    emb_cache_close(c);
    emb_cache_close(NULL);
    CHECK_EQ_INT(emb_cache_get(NULL, NULL, NULL), 0);
}

TEST(hit_miss_and_stats)
{
    size_t dim = 8;
    emb_cache *c = open_ok(BIG, dim, NULL, "m");
    uint8_t k[32], zero[32] = {0};
    float v[8], w[8], out[8];
    mkkey(1, k);
    mkvec(1, dim, v);
    CHECK_EQ_INT(emb_cache_get(c, k, out), 0);
    CHECK_EQ_INT(emb_cache_put(c, k, v), BGEICL_OK);
    memset(out, 0, sizeof out);
    CHECK_EQ_INT(emb_cache_get(c, k, out), 1);
    CHECK(!memcmp(out, v, sizeof v));
    CHECK_EQ_INT(emb_cache_get(c, k, NULL), 1); /* a probe */
    emb_cache_stats s = stats(c);
    CHECK_EQ_INT(s.hits, 2);
    CHECK_EQ_INT(s.misses, 1);
    CHECK_EQ_INT(s.inserts, 1);
    CHECK_EQ_INT(s.entries, 1);
    CHECK(s.bytes >= 32 + dim * sizeof(float));
    CHECK_EQ_INT(s.evictions + s.loaded + s.discarded, 0);

    /* A new vector for the same key replaces the old one; still one entry. */
    mkvec(2, dim, w);
    CHECK_EQ_INT(emb_cache_put(c, k, w), BGEICL_OK);
    CHECK_EQ_INT(emb_cache_get(c, k, out), 1);
    CHECK(!memcmp(out, w, sizeof w));
    s = stats(c);
    CHECK_EQ_INT(s.entries, 1);
    CHECK_EQ_INT(s.inserts, 1);

    /* Bad arguments and the reserved key. */
    CHECK_EQ_INT(emb_cache_put(c, NULL, v), BGEICL_ERR_ARG);
    CHECK_EQ_INT(emb_cache_put(c, k, NULL), BGEICL_ERR_ARG);
    CHECK_EQ_INT(emb_cache_put(NULL, k, v), BGEICL_ERR_ARG);
    CHECK_EQ_INT(emb_cache_put(c, zero, v), BGEICL_ERR_ARG);
    CHECK_EQ_INT(emb_cache_get(c, zero, out), 0);
    CHECK_EQ_INT(emb_cache_get(c, NULL, out), 0);

    /* Many entries: the table grows; every one is still found. */
    for (int i = 0; i < 5000; i++)
        CHECK_EQ_INT(put_item(c, 100 + i, dim), BGEICL_OK);
    int good = 0;
    for (int i = 0; i < 5000; i++)
        good += holds(c, 100 + i, dim) == 1;
    CHECK_EQ_INT(good, 5000);
    s = stats(c);
    CHECK_EQ_INT(s.entries, 5001);
    CHECK_EQ_INT(s.bytes, 5001 * entry_bytes(dim));
    emb_cache_close(c);
}

TEST(lru_eviction_order_and_refresh)
{
    size_t dim = 8, one = entry_bytes(dim);
    emb_cache *c = open_ok(3 * one + one / 2, dim, NULL, NULL); /* room for 3 */
    enum { A, B, C, D, E, F };
    put_item(c, A, dim);
    put_item(c, B, dim);
    put_item(c, C, dim);
    CHECK_EQ_INT(stats(c).evictions, 0);
    put_item(c, D, dim); /* evicts A, the oldest */
    CHECK_EQ_INT(stats(c).evictions, 1);
    float out[8];
    uint8_t k[32];
    mkkey(B, k);
    CHECK_EQ_INT(emb_cache_get(c, k, out), 1); /* B is now the most recent: B D C */
    put_item(c, E, dim);                        /* evicts C, not B: E B D */
    CHECK_EQ_INT(holds(c, C, dim), 0);          /* (a miss changes no order) */
    put_item(c, D, dim);                        /* a put refreshes too: D E B */
    CHECK_EQ_INT(stats(c).inserts, 5);          /* D again was no insert */
    put_item(c, F, dim);                        /* evicts B, not D: F D E */
    CHECK_EQ_INT(holds(c, B, dim), 0);
    emb_cache_stats s = stats(c);
    CHECK_EQ_INT(s.evictions, 3);
    CHECK_EQ_INT(s.entries, 3);
    CHECK_EQ_INT(s.bytes, 3 * one);
    CHECK(s.bytes <= 3 * one + one / 2);
    CHECK_EQ_INT(holds(c, A, dim), 0);
    CHECK_EQ_INT(holds(c, B, dim), 0);
    CHECK_EQ_INT(holds(c, C, dim), 0);
    CHECK_EQ_INT(holds(c, D, dim), 1);
    CHECK_EQ_INT(holds(c, E, dim), 1);
    CHECK_EQ_INT(holds(c, F, dim), 1);
    emb_cache_close(c);

    /* A long run under a budget: always the newest 100 live. */
    c = open_ok(100 * one, dim, NULL, NULL);
    for (int i = 0; i < 1000; i++)
        put_item(c, i, dim);
    s = stats(c);
    CHECK_EQ_INT(s.entries, 100);
    CHECK_EQ_INT(s.evictions, 900);
    int live = 0, wrong = 0;
    for (int i = 0; i < 1000; i++) {
        int h = holds(c, i, dim);
        live += h == 1 && i >= 900;
        wrong += h == -1 || (h == 1 && i < 900);
    }
    CHECK_EQ_INT(live, 100);
    CHECK_EQ_INT(wrong, 0);
    emb_cache_close(c);
}

/* ---- persistence ----------------------------------------------------------------- */

TEST(persistence_round_trip)
{
    char dir[600];
    path_in(dir, sizeof dir, "round/trip/nested"); /* created with its parents */
    const char *tag = "bge-small-en-v1.5/fp32/384";
    size_t dim = 384;
    int n = 200;
    emb_cache *c = open_ok(BIG, dim, dir, tag);
    CHECK_EQ_INT(file_size(dir), hdr_size(tag));
    for (int i = 0; i < n; i++)
        CHECK_EQ_INT(put_item(c, i, dim), BGEICL_OK);
    CHECK_EQ_INT(file_size(dir), hdr_size(tag) + n * rec_size(dim));
    /* Refreshing with the same vector appends nothing. */
    CHECK_EQ_INT(put_item(c, 3, dim), BGEICL_OK);
    CHECK_EQ_INT(file_size(dir), hdr_size(tag) + n * rec_size(dim));
    emb_cache_close(c);

    c = open_ok(BIG, dim, dir, tag);
    emb_cache_stats s = stats(c);
    CHECK_EQ_INT(s.loaded, n);
    CHECK_EQ_INT(s.entries, n);
    CHECK_EQ_INT(s.discarded, 0);
    int good = 0;
    for (int i = 0; i < n; i++)
        good += holds(c, i, dim) == 1;
    CHECK_EQ_INT(good, n);
    CHECK_EQ_INT(holds(c, n, dim), 0);

    /* A changed vector is appended; the later record wins at open. */
    uint8_t k[32];
    float v[384], out[384];
    mkkey(5, k);
    mkvec(99999, dim, v);
    CHECK_EQ_INT(emb_cache_put(c, k, v), BGEICL_OK);
    emb_cache_close(c);
    c = open_ok(BIG, dim, dir, tag);
    CHECK_EQ_INT(stats(c).loaded, n + 1);
    CHECK_EQ_INT(stats(c).entries, n);
    CHECK_EQ_INT(emb_cache_get(c, k, out), 1);
    CHECK(!memcmp(out, v, sizeof v));

    /* One cache per directory at a time. */
    emb_cache *c2 = (emb_cache *)1;
    bgeicl_error err;
    CHECK_EQ_INT(emb_cache_open(BIG, dim, dir, tag, &c2, &err), BGEICL_ERR_IO);
    CHECK(c2 == NULL);
    CHECK_STR_CONTAINS(err.message, "in use");
    emb_cache_close(c);
}

/* Truncates the log inside its last record at every byte, as a crash in the
 * middle of an append would leave it. */
TEST(torn_tail_at_every_byte)
{
    char dir[600];
    path_in(dir, sizeof dir, "torn");
    const char *tag = "t";
    size_t dim = 16, rs = rec_size(dim);
    int n = 8;
    emb_cache *c = open_ok(BIG, dim, dir, tag);
    for (int i = 0; i < n; i++)
        put_item(c, i, dim);
    emb_cache_close(c);
    size_t len = 0;
    unsigned char *orig = log_read(dir, &len);
    CHECK(orig && len == hdr_size(tag) + n * rs);
    if (!orig)
        return;
    int bad = 0;
    for (size_t cut = len - rs; cut < len; cut++) {
        CHECK_EQ_INT(log_write(dir, orig, cut), 0);
        c = open_ok(BIG, dim, dir, tag);
        if (!c)
            return;
        emb_cache_stats s = stats(c);
        bad += s.entries != (uint64_t)n - 1 || s.loaded != (uint64_t)n - 1;
        bad += s.discarded != (cut > len - rs ? 1u : 0u);
        bad += file_size(dir) != (long)(len - rs); /* the torn bytes are gone */
        for (int i = 0; i < n - 1; i++)
            bad += holds(c, i, dim) != 1;
        bad += holds(c, n - 1, dim) != 0;
        /* Appends after the cut follow good data and survive a reopen. */
        bad += put_item(c, n - 1, dim) != BGEICL_OK;
        bad += put_item(c, n, dim) != BGEICL_OK;
        emb_cache_close(c);
        c = open_ok(BIG, dim, dir, tag);
        if (!c)
            return;
        s = stats(c);
        bad += s.entries != (uint64_t)n + 1 || s.discarded != 0;
        for (int i = 0; i <= n; i++)
            bad += holds(c, i, dim) != 1;
        emb_cache_close(c);
        if (bad) {
            fprintf(stderr, "torn tail: failures at cut %zu of %zu\n", cut, len);
            break;
        }
    }
    CHECK_EQ_INT(bad, 0);
    bg_free(orig);
}

/* A byte flipped in the middle record: that record and every later one are
 * dropped (the design in emb_cache.h), never a wrong vector. */
TEST(corrupt_record_drops_it_and_the_rest)
{
    char dir[600];
    path_in(dir, sizeof dir, "corrupt");
    const char *tag = "t";
    size_t dim = 16, rs = rec_size(dim), hs = hdr_size(tag);
    int n = 9, mid = 4;
    emb_cache *c = open_ok(BIG, dim, dir, tag);
    for (int i = 0; i < n; i++)
        put_item(c, i, dim);
    emb_cache_close(c);
    size_t len = 0;
    unsigned char *orig = log_read(dir, &len);
    if (!orig) {
        CHECK(orig != NULL);
        return;
    }
    /* magic, key, first float, a middle float, crc */
    size_t where[] = {0, 3, 4, 20, 35, 36, 37, 36 + 4 * dim / 2, rs - 4, rs - 1};
    for (size_t w = 0; w < sizeof where / sizeof where[0]; w++) {
        unsigned char *copy = bg_malloc(len);
        memcpy(copy, orig, len);
        copy[hs + mid * rs + where[w]] ^= 0x10;
        CHECK_EQ_INT(log_write(dir, copy, len), 0);
        bg_free(copy);
        c = open_ok(BIG, dim, dir, tag);
        if (!c)
            break;
        emb_cache_stats s = stats(c);
        CHECK_EQ_INT(s.entries, mid);
        CHECK_EQ_INT(s.discarded, n - mid);
        CHECK_EQ_INT(file_size(dir), hs + mid * rs);
        int wrong = 0, hits = 0;
        for (int i = 0; i < n; i++) {
            int h = holds(c, i, dim);
            wrong += h == -1;
            hits += h == 1 && i < mid;
        }
        CHECK_EQ_INT(wrong, 0);
        CHECK_EQ_INT(hits, mid);
        emb_cache_close(c);
    }
    bg_free(orig);
}

TEST(foreign_file_is_replaced)
{
    char dir[600];
    path_in(dir, sizeof dir, "foreign");
    size_t dim = 16;
    emb_cache *c = open_ok(BIG, dim, dir, "model-a/fp32/16");
    for (int i = 0; i < 5; i++)
        put_item(c, i, dim);
    emb_cache_close(c);

    /* Another tag: the five records are discarded, the file restarted. */
    c = open_ok(BIG, dim, dir, "model-b/fp32/16");
    emb_cache_stats s = stats(c);
    CHECK_EQ_INT(s.entries, 0);
    CHECK_EQ_INT(s.loaded, 0);
    CHECK_EQ_INT(s.discarded, 5);
    CHECK_EQ_INT(holds(c, 0, dim), 0);
    CHECK_EQ_INT(file_size(dir), hdr_size("model-b/fp32/16"));
    put_item(c, 42, dim);
    emb_cache_close(c);
    c = open_ok(BIG, dim, dir, "model-b/fp32/16");
    CHECK_EQ_INT(stats(c).loaded, 1);
    CHECK_EQ_INT(holds(c, 42, dim), 1);
    emb_cache_close(c);

    /* Same tag, another dim. */
    c = open_ok(BIG, 32, dir, "model-b/fp32/16");
    CHECK_EQ_INT(stats(c).discarded, 1);
    CHECK_EQ_INT(stats(c).entries, 0);
    emb_cache_close(c);

    /* Garbage, and a header cut at every byte: restarted, never an error. */
    unsigned char junk[1000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    CHECK_EQ_INT(log_write(dir, junk, sizeof junk), 0);
    c = open_ok(BIG, dim, dir, "x");
    CHECK(stats(c).discarded >= 1);
    CHECK_EQ_INT(stats(c).entries, 0);
    put_item(c, 1, dim);
    emb_cache_close(c);
    size_t len = 0;
    unsigned char *orig = log_read(dir, &len);
    CHECK(orig && len == hdr_size("x") + rec_size(dim));
    int bad = 0;
    for (size_t cut = 1; orig && cut < hdr_size("x"); cut++) {
        log_write(dir, orig, cut);
        c = open_ok(BIG, dim, dir, "x");
        if (!c)
            break;
        bad += stats(c).entries != 0 || stats(c).discarded != 1;
        bad += file_size(dir) != (long)hdr_size("x");
        emb_cache_close(c);
    }
    CHECK_EQ_INT(bad, 0);
    bg_free(orig);
}

/* Puts until the log is rewritten; it then holds exactly the live set, least
 * recent first, and a reopen finds exactly those entries. */
TEST(compaction_keeps_exactly_the_live_set)
{
    char dir[600];
    path_in(dir, sizeof dir, "compact");
    const char *tag = "c";
    size_t dim = 8, rs = rec_size(dim), hs = hdr_size(tag), one = entry_bytes(dim);
    int live = 10;
    /* 2 * live + EC_COMPACT_MIN records are allowed; the next put compacts. */
    int trigger = 2 * live + EC_COMPACT_MIN;
    int refreshed = trigger - live + 1; /* would be the oldest live one */
    emb_cache *c = open_ok(live * one, dim, dir, tag);
    long prev = file_size(dir);
    int compacted_at = -1;
    for (int i = 0; i < 5000 && compacted_at < 0; i++) {
        if (i == trigger)
            CHECK_EQ_INT(holds(c, refreshed, dim), 1); /* now the most recent but one */
        put_item(c, i, dim);
        long now = file_size(dir);
        if (now < prev)
            compacted_at = i;
        prev = now;
    }
    CHECK_EQ_INT(compacted_at, trigger);
    CHECK_EQ_INT(file_size(dir), hs + live * rs);
    CHECK_EQ_INT(stats(c).entries, live);
    emb_cache_close(c);

    /* Exactly the live set comes back, and nothing else. */
    c = open_ok(BIG, dim, dir, tag);
    emb_cache_stats s = stats(c);
    CHECK_EQ_INT(s.loaded, live);
    CHECK_EQ_INT(s.entries, live);
    int hits = 0, wrong = 0;
    for (int j = 0; j <= trigger; j++) {
        int h = holds(c, j, dim);
        int want = j > trigger - live; /* trigger-9 .. trigger */
        hits += h == 1;
        wrong += h == -1 || h != want;
    }
    CHECK_EQ_INT(hits, live);
    CHECK_EQ_INT(wrong, 0);
    emb_cache_close(c);

    /* The log is in LRU order: a budget of 3 keeps the 3 most recently
     * used (trigger-1, refreshed, trigger), not the 3 last inserted. */
    c = open_ok(3 * one, dim, dir, tag);
    CHECK_EQ_INT(stats(c).entries, 3);
    CHECK_EQ_INT(holds(c, trigger, dim), 1);
    CHECK_EQ_INT(holds(c, refreshed, dim), 1);
    CHECK_EQ_INT(holds(c, trigger - 1, dim), 1);
    CHECK_EQ_INT(holds(c, trigger - 2, dim), 0);
    /* Appends after a compaction follow it and survive a reopen. */
    for (int j = 1; j <= 5; j++)
        put_item(c, trigger + j, dim);
    emb_cache_close(c);
    c = open_ok(BIG, dim, dir, tag);
    CHECK_EQ_INT(stats(c).loaded, live + 5);
    CHECK_EQ_INT(stats(c).entries, live + 5); /* evicted ones stay in the log */
    hits = 0;
    for (int j = trigger - live + 1; j <= trigger + 5; j++)
        hits += holds(c, j, dim) == 1;
    CHECK_EQ_INT(hits, live + 5);
    emb_cache_close(c);

    /* A log far beyond the budget is compacted at open, keeping the most
     * recent records. */
    rm_rf(dir);
    c = open_ok(BIG, dim, dir, tag);
    for (int j = 0; j < 1100; j++)
        put_item(c, j, dim);
    emb_cache_close(c);
    c = open_ok(live * one, dim, dir, tag);
    CHECK_EQ_INT(stats(c).loaded, 1100);
    CHECK_EQ_INT(stats(c).entries, live);
    CHECK_EQ_INT(file_size(dir), hs + live * rs);
    CHECK_EQ_INT(holds(c, 1099, dim), 1);
    CHECK_EQ_INT(holds(c, 1099 - live + 1, dim), 1);
    CHECK_EQ_INT(holds(c, 1099 - live, dim), 0);
    emb_cache_close(c);
}

/* ---- failures ----------------------------------------------------------------------- */

TEST(nomem_at_open_changes_nothing)
{
    char dir[600];
    path_in(dir, sizeof dir, "nomem-open");
    const char *tag = "n";
    size_t dim = 16;
    int n = 50;
    emb_cache *c = open_ok(BIG, dim, dir, tag);
    for (int i = 0; i < n; i++)
        put_item(c, i, dim);
    emb_cache_close(c);
    /* A torn tail too, which a successful open cuts off. */
    size_t len = 0;
    unsigned char *orig = log_read(dir, &len);
    if (!orig) {
        CHECK(orig != NULL);
        return;
    }
    log_write(dir, orig, len - 7);
    bg_free(orig);
    long torn = file_size(dir);

    int ok = 0;
    for (long k = 0; k < 500 && !ok; k++) {
        bgeicl_error err;
        c = (emb_cache *)1;
        bg_fail_after(k);
        bgeicl_code rc = emb_cache_open(BIG, dim, dir, tag, &c, &err);
        bg_fail_after(-1);
        if (rc == BGEICL_ERR_NOMEM) {
            CHECK(c == NULL);
            CHECK_STR_CONTAINS(err.message, "out of memory");
            CHECK_EQ_INT(file_size(dir), torn); /* nothing on disk changed */
            continue;
        }
        CHECK_EQ_INT(rc, BGEICL_OK);
        ok = 1;
        CHECK(k > n); /* every entry is an allocation that failed once */
        CHECK_EQ_INT(stats(c).entries, n - 1);
        CHECK_EQ_INT(stats(c).discarded, 1);
        int good = 0;
        for (int i = 0; i < n - 1; i++)
            good += holds(c, i, dim) == 1;
        CHECK_EQ_INT(good, n - 1);
        emb_cache_close(c);
    }
    CHECK(ok);

    /* Memory only. */
    for (long k = 0; k < 10; k++) {
        bg_fail_after(k);
        bgeicl_code rc = emb_cache_open(BIG, dim, NULL, tag, &c, NULL);
        bg_fail_after(-1);
        CHECK(rc == BGEICL_OK || rc == BGEICL_ERR_NOMEM);
        if (rc == BGEICL_OK)
            emb_cache_close(c);
    }
}

TEST(nomem_at_put_keeps_state)
{
    char dir[600];
    path_in(dir, sizeof dir, "nomem-put");
    const char *tag = "n";
    size_t dim = 16;
    int n = 300;
    emb_cache *c = open_ok(BIG, dim, dir, tag);
    for (int i = 0; i < n; i++) {
        emb_cache_stats before = stats(c);
        long size = file_size(dir);
        bg_fail_after(0); /* the entry itself */
        CHECK_EQ_INT(put_item(c, i, dim), BGEICL_ERR_NOMEM);
        bg_fail_after(-1);
        emb_cache_stats after = stats(c);
        CHECK(!memcmp(&before, &after, sizeof before));
        CHECK_EQ_INT(file_size(dir), size);
        /* The entry, but not a table doubling: the table stays usable. */
        bg_fail_after(1);
        CHECK_EQ_INT(put_item(c, i, dim), BGEICL_OK);
        bg_fail_after(-1);
    }
    int good = 0;
    for (int i = 0; i < n; i++)
        good += holds(c, i, dim) == 1;
    CHECK_EQ_INT(good, n);
    CHECK_EQ_INT(stats(c).entries, n);
    emb_cache_close(c);
    c = open_ok(BIG, dim, dir, tag);
    good = 0;
    for (int i = 0; i < n; i++)
        good += holds(c, i, dim) == 1;
    CHECK_EQ_INT(good, n);
    emb_cache_close(c);
}

TEST(unusable_directory_is_an_io_error)
{
    char file[600], dir[700];
    path_in(file, sizeof file, "plain-file");
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    /* Root ignores permission bits, so a path under a regular file it is. */
    if (snprintf(dir, sizeof dir, "%s/sub", file) >= (int)sizeof dir)
        return;
    emb_cache *c = (emb_cache *)1;
    bgeicl_error err;
    CHECK_EQ_INT(emb_cache_open(BIG, 8, dir, "t", &c, &err), BGEICL_ERR_IO);
    CHECK(c == NULL);
    CHECK_STR_CONTAINS(err.message, "plain-file/sub");
    CHECK_EQ_INT(emb_cache_open(BIG, 8, file, "t", &c, &err), BGEICL_ERR_IO);
    CHECK_STR_CONTAINS(err.message, "plain-file");
    /* With allocation failures on top: still no leak, no crash. */
    for (long k = 0; k < 8; k++) {
        bg_fail_after(k);
        bgeicl_code rc = emb_cache_open(BIG, 8, dir, "t", &c, NULL);
        bg_fail_after(-1);
        CHECK(rc == BGEICL_ERR_IO || rc == BGEICL_ERR_NOMEM);
    }
}

/* A file size limit makes an append fail half way, as a full disk would:
 * the put still holds in memory, the torn bytes are cut off, and the cache
 * goes on in memory only. */
TEST(io_error_on_append_turns_persistence_off)
{
    char dir[600];
    path_in(dir, sizeof dir, "fsize");
    const char *tag = "f";
    size_t dim = 16, rs = rec_size(dim);
    emb_cache *c = open_ok(BIG, dim, dir, tag);
    for (int i = 0; i < 5; i++)
        put_item(c, i, dim);
    long good = file_size(dir);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)good + rs / 2;
    CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
    bgeicl_code rc = put_item(c, 5, dim);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    CHECK_EQ_INT(rc, BGEICL_ERR_IO);
    CHECK_EQ_INT(file_size(dir), good); /* the half record was cut off */
    CHECK_EQ_INT(holds(c, 5, dim), 1);
    CHECK_EQ_INT(put_item(c, 6, dim), BGEICL_OK); /* memory only from now on */
    CHECK_EQ_INT(holds(c, 6, dim), 1);
    CHECK_EQ_INT(file_size(dir), good);
    emb_cache_close(c);

    c = open_ok(BIG, dim, dir, tag);
    emb_cache_stats s = stats(c);
    CHECK_EQ_INT(s.entries, 5);
    CHECK_EQ_INT(s.discarded, 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(holds(c, i, dim), 1);
    CHECK_EQ_INT(holds(c, 5, dim), 0);
    CHECK_EQ_INT(holds(c, 6, dim), 0);
    emb_cache_close(c);
}

/* ---- crashes --------------------------------------------------------------------------- */

/* A child process puts items 0, 1, 2, ... (compacting every ~1200) and is
 * killed with SIGKILL at some point; the log it leaves must read back with
 * the newest entries and no wrong vector. */
static void crash_once(const char *dir, long kill_after)
{
    const char *tag = "k";
    size_t dim = 16, one = entry_bytes(dim);
    int live = 100;
    atomic_long *done = mmap(NULL, sizeof *done, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(done != MAP_FAILED);
    if (done == MAP_FAILED)
        return;
    atomic_store(done, 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        emb_cache *c = NULL;
        if (emb_cache_open(live * one, dim, dir, tag, &c, NULL) != BGEICL_OK)
            _exit(3);
        for (long i = 0;; i++) {
            if (put_item(c, (int)i, dim) != BGEICL_OK)
                _exit(4);
            atomic_store(done, i + 1);
        }
    }
    CHECK(pid > 0);
    double t0 = bg_now_ms();
    while (atomic_load(done) < kill_after && bg_now_ms() - t0 < 20000) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            pid = -1;
            break;
        }
        usleep(200);
    }
    int status = 0;
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    CHECK(pid > 0 && WIFSIGNALED(status));
    long n = atomic_load(done); /* items 0..n-1 were put, maybe n too */
    munmap(done, sizeof *done);
    CHECK(n >= kill_after);

    emb_cache *c = open_ok(live * one, dim, dir, tag);
    if (!c)
        return;
    int wrong = 0, newest = 0;
    for (long i = 0; i <= n; i++) {
        int h = holds(c, (int)i, dim);
        wrong += h == -1;
        newest += h == 1 && i >= n - live;
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK(newest >= live - 1); /* the newest, bar the one in flight */
    CHECK(stats(c).entries <= (uint64_t)live);
    emb_cache_close(c);
    rm_rf(dir);
}

TEST(killed_process_leaves_a_good_log)
{
    char dir[600];
    path_in(dir, sizeof dir, "crash");
    long points[] = {150, 1223, 1300, 2500, 3700};
    for (size_t i = 0; i < sizeof points / sizeof points[0]; i++)
        crash_once(dir, points[i]);
}

/* ---- threads ------------------------------------------------------------------------------ */

enum { TH_KEYS = 600, TH_DIM = 32, TH_OPS = 6000, TH_N = 4 };
static uint8_t th_key[TH_KEYS][32];
static float th_vec[TH_KEYS][TH_DIM];
static atomic_long th_wrong, th_gets, th_bad_rc;

static void *worker(void *arg)
{
    emb_cache *c = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    float out[TH_DIM];
    for (int i = 0; i < TH_OPS; i++) {
        int k = (int)(rand_r(&seed) % TH_KEYS);
        atomic_fetch_add(&th_gets, 1);
        if (emb_cache_get(c, th_key[k], out)) {
            if (memcmp(out, th_vec[k], sizeof out))
                atomic_fetch_add(&th_wrong, 1);
        } else if (emb_cache_put(c, th_key[k], th_vec[k]) != BGEICL_OK) {
            atomic_fetch_add(&th_bad_rc, 1);
        }
    }
    return NULL;
}

TEST(concurrent_puts_and_gets)
{
    char dir[600];
    path_in(dir, sizeof dir, "threads");
    for (int i = 0; i < TH_KEYS; i++) {
        mkkey(i, th_key[i]);
        mkvec(i, TH_DIM, th_vec[i]);
    }
    size_t one = entry_bytes(TH_DIM);
    emb_cache *c = open_ok(200 * one, TH_DIM, dir, "th");
    if (!c)
        return;
    pthread_t t[TH_N];
    for (int i = 0; i < TH_N; i++)
        pthread_create(&t[i], NULL, worker, c);
    for (int i = 0; i < TH_N; i++)
        pthread_join(t[i], NULL);
    emb_cache_stats s = stats(c);
    CHECK_EQ_INT(atomic_load(&th_wrong), 0);
    CHECK_EQ_INT(atomic_load(&th_bad_rc), 0);
    CHECK_EQ_INT(s.hits + s.misses, atomic_load(&th_gets));
    CHECK(s.hits > 0 && s.misses > 0 && s.evictions > 0);
    CHECK_EQ_INT(s.entries, 200);
    CHECK_EQ_INT(s.bytes, 200 * one);
    CHECK_EQ_INT(s.inserts - s.evictions, s.entries);
    emb_cache_close(c);

    c = open_ok(200 * one, TH_DIM, dir, "th");
    int wrong = 0;
    float out[TH_DIM];
    for (int k = 0; k < TH_KEYS; k++)
        if (emb_cache_get(c, th_key[k], out) && memcmp(out, th_vec[k], sizeof out))
            wrong++;
    CHECK_EQ_INT(wrong, 0);
    CHECK_EQ_INT(stats(c).entries, 200);
    CHECK_EQ_INT(stats(c).discarded, 0);
    emb_cache_close(c);
}

int main(void)
{
    /* Before OpenSSL's first allocation, so the key test can fail them. */
    if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free))
        fprintf(stderr, "CRYPTO_set_mem_functions refused\n");
    const char *base = getenv("BUILD");
    if (!base || !*base)
        base = "build";
    mkdir(base, 0755);
    if (snprintf(root, sizeof root, "%s/emb-cache-test-XXXXXX", base) >= (int)sizeof root)
        return 1;
    if (!mkdtemp(root)) {
        fprintf(stderr, "mkdtemp %s: %s\n", root, strerror(errno));
        return 1;
    }
    RUN(key_is_length_prefixed_sha256);
    RUN(key_hash_failure_gives_reserved_key);
    RUN(open_rejects_bad_arguments);
    RUN(hit_miss_and_stats);
    RUN(lru_eviction_order_and_refresh);
    RUN(persistence_round_trip);
    RUN(torn_tail_at_every_byte);
    RUN(corrupt_record_drops_it_and_the_rest);
    RUN(foreign_file_is_replaced);
    RUN(compaction_keeps_exactly_the_live_set);
    RUN(nomem_at_open_changes_nothing);
    RUN(nomem_at_put_keeps_state);
    RUN(unusable_directory_is_an_io_error);
    RUN(io_error_on_append_turns_persistence_off);
    RUN(killed_process_leaves_a_good_log);
    RUN(concurrent_puts_and_gets);
    rm_rf(root);
    return harness_summary("emb_cache");
}
