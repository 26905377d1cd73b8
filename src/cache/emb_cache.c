/*
 * emb_cache.c - the embedding cache: chained hash table + LRU list in
 * memory, an append-only log on disk. The data structure, the file format,
 * the invariants and what a crash can lose are in emb_cache.h.
 */
#include "emb_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "server/log.h"
#include "util/util.h"

/* The log stores floats and integers as the host does; we only build for
 * little-endian hosts (x86-64, AArch64), where that is the file's order. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "emb_cache: the log format is little-endian; big-endian hosts are not supported"
#endif

#define EC_FILE_MAGIC 0x43454742u /* "BGEC" */
#define EC_REC_MAGIC 0x31524345u  /* "ECR1" */
#define EC_VERSION 1u
#define EC_HDR_FIXED 20u          /* magic, version, dim, tag_len, crc */
#define EC_MIN_BUCKETS 64u
#define EC_IO_BYTES (256u << 10)  /* read/compaction buffer */
#define EC_TMP_NAME EMB_CACHE_LOG_NAME ".tmp"

/* ---- structures ---------------------------------------------------------- */

typedef struct ec_entry {
    struct ec_entry *hnext;       /* next in the bucket chain */
    struct ec_entry *prev, *next; /* LRU: prev is more recent, next less */
    uint8_t key[32];
    float vec[];                  /* (dim) */
} ec_entry;

struct emb_cache {
    pthread_mutex_t mu;
    size_t dim, budget;
    size_t entry_size;          /* sizeof(ec_entry) + dim floats */
    size_t rec_size;            /* 4 + 32 + 4 * dim + 4 */
    ec_entry **buckets;         /* (nbuckets) chains */
    size_t nbuckets;            /* power of two */
    ec_entry *head, *tail;      /* LRU: most recent, least recent */
    emb_cache_stats st;

    /* persistence; dir and the paths are fixed at open */
    char *dir, *tag, *log_path, *tmp_path;
    int persist;                /* 1 while appends go to the log */
    int logfd, dirfd;           /* -1 when closed */
    uint64_t log_size;          /* bytes of the log, all valid */
    uint64_t log_records;       /* records in the log, live or not */
    unsigned char *iobuf;       /* (iobuf_cap) for open and compaction */
    size_t io_recs, iobuf_cap;  /* io_recs records, plus room for a header */
    char io_error[256];         /* why persistence went off */
};

/* ---- key ------------------------------------------------------------------ */

void emb_cache_key(const char *const *parts, const size_t *lens, size_t n, uint8_t key[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int out_len = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < n; i++) {
        uint8_t len[8];
        uint64_t l = lens[i];
        for (int b = 0; b < 8; b++)
            len[b] = (uint8_t)(l >> (8 * b));
        ok = EVP_DigestUpdate(ctx, len, 8) && (l == 0 || EVP_DigestUpdate(ctx, parts[i], l));
    }
    ok = ok && EVP_DigestFinal_ex(ctx, key, &out_len) && out_len == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        memset(key, 0, 32); /* the reserved key: never stored, never found */
}

static int key_reserved(const uint8_t key[32])
{
    static const uint8_t zero[32];
    return memcmp(key, zero, 32) == 0;
}

/* ---- hash table and LRU list ----------------------------------------------- */

static size_t bucket_of(const emb_cache *c, const uint8_t key[32])
{
    uint64_t h;
    memcpy(&h, key, 8); /* little-endian host: the first 8 bytes as LE */
    return (size_t)(h & (c->nbuckets - 1));
}

static ec_entry *find(const emb_cache *c, const uint8_t key[32])
{
    for (ec_entry *e = c->buckets[bucket_of(c, key)]; e; e = e->hnext)
        if (memcmp(e->key, key, 32) == 0)
            return e;
    return NULL;
}

static void lru_unlink(emb_cache *c, ec_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_head(emb_cache *c, ec_entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static void lru_touch(emb_cache *c, ec_entry *e)
{
    if (c->head != e) {
        lru_unlink(c, e);
        lru_push_head(c, e);
    }
}

/* Doubles the table when entries exceed buckets. A failed allocation is not
 * an error: chains get longer until a later doubling succeeds. */
static void maybe_grow(emb_cache *c)
{
    if (c->st.entries < c->nbuckets || c->nbuckets > (SIZE_MAX / sizeof(ec_entry *)) / 2)
        return;
    size_t nb = c->nbuckets * 2;
    ec_entry **b = bg_calloc(nb, sizeof *b);
    if (!b)
        return;
    size_t old = c->nbuckets;
    ec_entry **ob = c->buckets;
    c->buckets = b;
    c->nbuckets = nb;
    for (size_t i = 0; i < old; i++) {
        for (ec_entry *e = ob[i], *nx; e; e = nx) {
            nx = e->hnext;
            size_t k = bucket_of(c, e->key);
            e->hnext = b[k];
            b[k] = e;
        }
    }
    bg_free(ob);
}

/* Removes the least recent entry from table and list and pushes it onto
 * *freed (through hnext) so the caller frees it after unlocking. */
static void evict_tail(emb_cache *c, ec_entry **freed)
{
    ec_entry *e = c->tail;
    ec_entry **pp = &c->buckets[bucket_of(c, e->key)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->st.entries--;
    c->st.bytes -= c->entry_size;
    c->st.evictions++;
    e->hnext = *freed;
    *freed = e;
}

/* Links a new entry (key not present) as the most recent, evicting to fit. */
static void link_new(emb_cache *c, ec_entry *e, ec_entry **freed)
{
    while (c->st.bytes + c->entry_size > c->budget)
        evict_tail(c, freed);
    maybe_grow(c);
    size_t k = bucket_of(c, e->key);
    e->hnext = c->buckets[k];
    c->buckets[k] = e;
    lru_push_head(c, e);
    c->st.entries++;
    c->st.bytes += c->entry_size;
    c->st.inserts++;
}

static void free_chain(ec_entry *e)
{
    while (e) {
        ec_entry *nx = e->hnext;
        bg_free(e);
        e = nx;
    }
}

/* ---- file helpers ------------------------------------------------------------- */

static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint32_t rec_crc(const uint8_t key[32], const float *vec, size_t dim)
{
    uLong crc = crc32(0L, key, 32);
    return (uint32_t)crc32(crc, (const Bytef *)vec, (uInt)(dim * sizeof(float)));
}

static int write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads up to n bytes at off; returns the count (short only at EOF) or -1. */
static ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* mkdir -p. Returns 0 or -1 with errno set. */
static int mkdir_p(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int r = mkdir(path, 0755);
        int e = errno;
        *p = '/';
        if (r != 0 && e != EEXIST) {
            errno = e;
            return -1;
        }
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static size_t header_size(const emb_cache *c) { return EC_HDR_FIXED + strlen(c->tag); }

static void header_encode(const emb_cache *c, unsigned char *h)
{
    size_t tl = strlen(c->tag);
    put_u32(h, EC_FILE_MAGIC);
    put_u32(h + 4, EC_VERSION);
    put_u32(h + 8, (uint32_t)c->dim);
    put_u32(h + 12, (uint32_t)tl);
    memcpy(h + 16, c->tag, tl);
    put_u32(h + 16 + tl, (uint32_t)crc32(0L, h, (uInt)(16 + tl)));
}

static void record_encode(const emb_cache *c, const ec_entry *e, unsigned char *r)
{
    put_u32(r, EC_REC_MAGIC);
    memcpy(r + 4, e->key, 32);
    memcpy(r + 36, e->vec, c->dim * sizeof(float));
    put_u32(r + 36 + c->dim * sizeof(float), rec_crc(e->key, e->vec, c->dim));
}

/* Turns persistence off after an IO failure: the log is cut back to its
 * last good byte (best effort) and closed; the reason is kept and logged. */
static void persist_fail(emb_cache *c, const char *what, int e)
{
    if (e)
        snprintf(c->io_error, sizeof c->io_error, "%s: %s: %s", c->log_path, what, strerror(e));
    else
        snprintf(c->io_error, sizeof c->io_error, "%s: %s", c->log_path, what);
    if (c->logfd >= 0) {
        if (ftruncate(c->logfd, (off_t)c->log_size) != 0) {
            /* the torn tail stays; open drops it by its crc */
        }
        close(c->logfd);
        c->logfd = -1;
    }
    if (c->dirfd >= 0) {
        close(c->dirfd); /* releases the directory lock */
        c->dirfd = -1;
    }
    c->persist = 0;
    log_field f[] = {LOG_S("error", c->io_error)};
    log_event(LOG_ERROR, "emb_cache_persistence_off", f, 1);
}

/* Rewrites the log as the live entries, least recent first: temp file,
 * fsync, rename over, fsync the directory. On failure before the rename the
 * old log is untouched; returns -1 with errno and *what set. */
static int compact(emb_cache *c, const char **what)
{
    int fd = open(c->tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        *what = "compaction: cannot create temp file";
        return -1;
    }
    size_t hs = header_size(c);
    header_encode(c, c->iobuf);
    size_t fill = hs;
    uint64_t size = 0, recs = 0;
    int e;
    for (ec_entry *x = c->tail; x; x = x->prev) {
        if (fill + c->rec_size > c->iobuf_cap) {
            if (write_all(fd, c->iobuf, fill) != 0)
                goto fail_write;
            size += fill;
            fill = 0;
        }
        record_encode(c, x, c->iobuf + fill);
        fill += c->rec_size;
        recs++;
    }
    if (write_all(fd, c->iobuf, fill) != 0)
        goto fail_write;
    size += fill;
    if (fsync(fd) != 0) {
        *what = "compaction: fsync";
        goto fail;
    }
    if (rename(c->tmp_path, c->log_path) != 0) {
        *what = "compaction: rename";
        goto fail;
    }
    /* The new log is in place: switch to it whatever the directory sync says. */
    close(c->logfd);
    c->logfd = fd;
    c->log_size = size;
    c->log_records = recs;
    if (fsync(c->dirfd) != 0) {
        *what = "compaction: fsync of the directory";
        return -1;
    }
    return 0;
fail_write:
    *what = "compaction: write";
fail:
    e = errno;
    close(fd);
    unlink(c->tmp_path);
    errno = e;
    return -1;
}

static int needs_compaction(const emb_cache *c)
{
    return c->log_records > 2 * c->st.entries + EC_COMPACT_MIN;
}

/* Appends the record of e with one writev(2). On failure *what says how. */
static int append(emb_cache *c, ec_entry *e, uint32_t crc, const char **what)
{
    uint32_t magic = EC_REC_MAGIC;
    struct iovec iov[4] = {
        {.iov_base = &magic, .iov_len = 4},
        {.iov_base = e->key, .iov_len = 32},
        {.iov_base = e->vec, .iov_len = c->dim * sizeof(float)},
        {.iov_base = &crc, .iov_len = 4},
    };
    ssize_t w;
    do
        w = writev(c->logfd, iov, 4);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)c->rec_size) {
        *what = "append";
        if (w >= 0) {
            *what = "append: short write (disk full or file size limit)";
            errno = 0;
        }
        return -1;
    }
    c->log_size += c->rec_size;
    c->log_records++;
    return 0;
}

/* ---- open: read the log back ---------------------------------------------------- */

/* Checks the header at the start of the file (size bytes long). Returns 1
 * if it is ours; else 0 and *foreign_recs gets the records it seems to hold. */
static int header_matches(emb_cache *c, uint64_t size, uint64_t *foreign_recs, bg_err *err, int *io)
{
    unsigned char h[EC_HDR_FIXED + EC_MAX_TAG];
    size_t want = size < sizeof h ? (size_t)size : sizeof h;
    ssize_t got = pread_full(c->logfd, h, want, 0);
    *io = 0;
    *foreign_recs = size ? 1 : 0;
    if (got < 0) {
        *io = 1;
        bg_fail(err, BGEICL_ERR_IO, "%s: cannot read: %s", c->log_path, strerror(errno));
        return 0;
    }
    if ((size_t)got < 16 || get_u32(h) != EC_FILE_MAGIC)
        return 0;
    uint32_t tl = get_u32(h + 12), fdim = get_u32(h + 8);
    if (tl > EC_MAX_TAG || (size_t)got < EC_HDR_FIXED + tl ||
        get_u32(h + 16 + tl) != (uint32_t)crc32(0L, h, 16 + tl))
        return 0;
    uint64_t body = size - (EC_HDR_FIXED + tl);
    if (fdim > 0 && fdim <= EC_MAX_DIM) {
        uint64_t rs = 40 + 4 * (uint64_t)fdim;
        *foreign_recs = (body + rs - 1) / rs;
    }
    return get_u32(h + 4) == EC_VERSION && fdim == c->dim && tl == strlen(c->tag) &&
           memcmp(h + 16, c->tag, tl) == 0;
}

/* Inserts a record read from the log: later records replace earlier ones. */
static bgeicl_code load_record(emb_cache *c, const unsigned char *r, ec_entry **freed)
{
    const unsigned char *vec = r + 36; /* floats, maybe unaligned: memcpy only */
    ec_entry *e = find(c, r + 4);
    if (e) {
        memcpy(e->vec, vec, c->dim * sizeof(float));
        lru_touch(c, e);
        return BGEICL_OK;
    }
    e = bg_malloc(c->entry_size);
    if (!e)
        return BGEICL_ERR_NOMEM;
    memcpy(e->key, r + 4, 32);
    memcpy(e->vec, vec, c->dim * sizeof(float));
    link_new(c, e, freed);
    return BGEICL_OK;
}

static int record_valid(const emb_cache *c, const unsigned char *r)
{
    size_t vb = c->dim * sizeof(float);
    if (get_u32(r) != EC_REC_MAGIC)
        return 0;
    uLong crc = crc32(0L, r + 4, 32);
    crc = crc32(crc, r + 36, (uInt)vb);
    return get_u32(r + 36 + vb) == (uint32_t)crc;
}

/* Reads the log into memory; truncates a torn tail; replaces a foreign
 * file. Nothing on disk changes before every record is in memory, so a
 * NOMEM leaves the file as it was. */
static bgeicl_code load(emb_cache *c, bg_err *err)
{
    struct stat sb;
    if (fstat(c->logfd, &sb) != 0)
        return bg_fail(err, BGEICL_ERR_IO, "%s: cannot stat: %s", c->log_path, strerror(errno));
    uint64_t size = (uint64_t)sb.st_size, foreign = 0;
    int io = 0;
    size_t hs = header_size(c);
    if (size == 0 || !header_matches(c, size, &foreign, err, &io)) {
        if (io)
            return BGEICL_ERR_IO;
        /* new, or another model's / a damaged file: start it over */
        c->st.discarded += foreign;
        header_encode(c, c->iobuf);
        if (ftruncate(c->logfd, 0) != 0 || write_all(c->logfd, c->iobuf, hs) != 0 ||
            fdatasync(c->logfd) != 0 || fsync(c->dirfd) != 0)
            return bg_fail(err, BGEICL_ERR_IO, "%s: cannot write header: %s", c->log_path,
                           strerror(errno));
        c->log_size = hs;
        return BGEICL_OK;
    }

    uint64_t off = hs;
    ec_entry *freed = NULL;
    bgeicl_code rc = BGEICL_OK;
    int bad = 0;
    while (!bad && off < size) {
        uint64_t left = size - off;
        size_t want = c->io_recs * c->rec_size;
        if (left < want)
            want = (size_t)left - (size_t)left % c->rec_size;
        if (want == 0)
            break; /* a partial record at the end */
        ssize_t got = pread_full(c->logfd, c->iobuf, want, off);
        if (got < 0) {
            rc = bg_fail(err, BGEICL_ERR_IO, "%s: cannot read: %s", c->log_path, strerror(errno));
            break;
        }
        size_t n = (size_t)got / c->rec_size;
        for (size_t i = 0; i < n; i++) {
            const unsigned char *r = c->iobuf + i * c->rec_size;
            if (!record_valid(c, r)) {
                bad = 1;
                break;
            }
            if (load_record(c, r, &freed) != BGEICL_OK) {
                rc = bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory loading the cache",
                             c->log_path);
                break;
            }
            c->st.loaded++;
            c->log_records++;
            off += c->rec_size;
        }
        if (rc != BGEICL_OK || (size_t)got < want)
            break;
    }
    free_chain(freed);
    if (rc != BGEICL_OK)
        return rc;
    if (off < size) {
        c->st.discarded += (size - off + c->rec_size - 1) / c->rec_size;
        if (ftruncate(c->logfd, (off_t)off) != 0)
            return bg_fail(err, BGEICL_ERR_IO, "%s: cannot truncate: %s", c->log_path,
                           strerror(errno));
    }
    c->log_size = off;
    return BGEICL_OK;
}

static bgeicl_code persist_open(emb_cache *c, const char *dir, const char *tag, bg_err *err)
{
    c->dir = bg_strdup(dir);
    c->tag = bg_strdup(tag);
    c->log_path = bg_path_join(dir, EMB_CACHE_LOG_NAME);
    c->tmp_path = bg_path_join(dir, EC_TMP_NAME);
    c->io_recs = EC_IO_BYTES / c->rec_size;
    if (c->io_recs < 1)
        c->io_recs = 1;
    c->iobuf_cap = c->io_recs * c->rec_size + EC_HDR_FIXED + EC_MAX_TAG;
    c->iobuf = bg_malloc(c->iobuf_cap);
    if (!c->dir || !c->tag || !c->log_path || !c->tmp_path || !c->iobuf)
        return bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory opening the cache", dir);

    if (mkdir_p(c->dir) != 0)
        return bg_fail(err, BGEICL_ERR_IO, "%s: cannot create directory: %s", dir,
                       strerror(errno));
    c->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->dirfd < 0)
        return bg_fail(err, BGEICL_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    if (flock(c->dirfd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK)
        return bg_fail(err, BGEICL_ERR_IO, "%s: in use by another cache", dir);
    if (unlink(c->tmp_path) != 0 && errno != ENOENT)
        return bg_fail(err, BGEICL_ERR_IO, "%s: cannot remove: %s", c->tmp_path, strerror(errno));
    c->logfd = open(c->log_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (c->logfd < 0)
        return bg_fail(err, BGEICL_ERR_IO, "%s: cannot open: %s", c->log_path, strerror(errno));
    bgeicl_code rc = load(c, err);
    if (rc != BGEICL_OK)
        return rc;
    c->persist = 1;
    const char *what = NULL;
    if (needs_compaction(c) && compact(c, &what) != 0)
        return bg_fail(err, BGEICL_ERR_IO, "%s: %s: %s", c->log_path, what, strerror(errno));
    return BGEICL_OK;
}

/* ---- public API ---------------------------------------------------------------- */

static void cache_free(emb_cache *c)
{
    if (c->logfd >= 0)
        close(c->logfd);
    if (c->dirfd >= 0)
        close(c->dirfd);
    for (ec_entry *e = c->head, *nx; e; e = nx) {
        nx = e->next;
        bg_free(e);
    }
    bg_free(c->buckets);
    bg_free(c->iobuf);
    bg_free(c->dir);
    bg_free(c->tag);
    bg_free(c->log_path);
    bg_free(c->tmp_path);
    pthread_mutex_destroy(&c->mu);
    bg_free(c);
}

bgeicl_code emb_cache_open(size_t budget_bytes, size_t dim, const char *dir, const char *tag,
                           emb_cache **out, bgeicl_error *err)
{
    bg_err_clear(err);
    if (!out)
        return bg_fail(err, BGEICL_ERR_ARG, "emb_cache_open: out is NULL");
    *out = NULL;
    if (!tag)
        tag = "";
    if (dim == 0 || dim > EC_MAX_DIM)
        return bg_fail(err, BGEICL_ERR_ARG, "emb_cache_open: dim %zu is not in 1..%d", dim,
                       EC_MAX_DIM);
    size_t entry_size = sizeof(ec_entry) + dim * sizeof(float);
    if (budget_bytes < entry_size)
        return bg_fail(err, BGEICL_ERR_ARG,
                       "emb_cache_open: budget of %zu bytes is below one entry (%zu bytes)",
                       budget_bytes, entry_size);
    if (strlen(tag) > EC_MAX_TAG)
        return bg_fail(err, BGEICL_ERR_ARG, "emb_cache_open: tag longer than %d bytes",
                       EC_MAX_TAG);
    if (dir && !*dir)
        return bg_fail(err, BGEICL_ERR_ARG, "emb_cache_open: empty directory name");

    emb_cache *c = bg_calloc(1, sizeof *c);
    if (!c)
        return bg_fail(err, BGEICL_ERR_NOMEM, "emb_cache_open: out of memory");
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        bg_free(c);
        return bg_fail(err, BGEICL_ERR_NOMEM, "emb_cache_open: cannot create mutex");
    }
    c->dim = dim;
    c->budget = budget_bytes;
    c->entry_size = entry_size;
    c->rec_size = 4 + 32 + dim * sizeof(float) + 4;
    c->logfd = c->dirfd = -1;
    c->nbuckets = EC_MIN_BUCKETS;
    c->buckets = bg_calloc(c->nbuckets, sizeof *c->buckets);
    if (!c->buckets) {
        cache_free(c);
        return bg_fail(err, BGEICL_ERR_NOMEM, "emb_cache_open: out of memory");
    }
    if (dir) {
        bgeicl_code rc = persist_open(c, dir, tag, err);
        if (rc != BGEICL_OK) {
            cache_free(c);
            return rc;
        }
    }
    *out = c;
    return BGEICL_OK;
}

void emb_cache_close(emb_cache *c)
{
    if (!c)
        return;
    if (c->persist && fdatasync(c->logfd) != 0)
        persist_fail(c, "fdatasync at close", errno);
    cache_free(c);
}

int emb_cache_get(emb_cache *c, const uint8_t key[32], float *out)
{
    if (!c || !key)
        return 0;
    pthread_mutex_lock(&c->mu);
    ec_entry *e = key_reserved(key) ? NULL : find(c, key);
    if (!e) {
        c->st.misses++;
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    if (out)
        memcpy(out, e->vec, c->dim * sizeof(float));
    lru_touch(c, e);
    c->st.hits++;
    pthread_mutex_unlock(&c->mu);
    return 1;
}

bgeicl_code emb_cache_put(emb_cache *c, const uint8_t key[32], const float *vec)
{
    if (!c || !key || !vec || key_reserved(key))
        return BGEICL_ERR_ARG;
    /* Outside the lock: the allocation, the copy and the checksum. */
    ec_entry *fresh = bg_malloc(c->entry_size);
    if (!fresh)
        return BGEICL_ERR_NOMEM;
    memcpy(fresh->key, key, 32);
    memcpy(fresh->vec, vec, c->dim * sizeof(float));
    uint32_t crc = c->dir ? rec_crc(key, vec, c->dim) : 0;

    ec_entry *freed = NULL, *target;
    bgeicl_code rc = BGEICL_OK;
    pthread_mutex_lock(&c->mu);
    ec_entry *e = find(c, key);
    if (e) {
        lru_touch(c, e);
        if (memcmp(e->vec, fresh->vec, c->dim * sizeof(float)) == 0) {
            target = NULL; /* the log already holds this vector */
        } else {
            memcpy(e->vec, fresh->vec, c->dim * sizeof(float));
            target = e;
        }
        fresh->hnext = freed;
        freed = fresh;
    } else {
        link_new(c, fresh, &freed);
        target = fresh;
    }
    if (target && c->persist) {
        const char *what = "append";
        if (append(c, target, crc, &what) != 0 ||
            (needs_compaction(c) && compact(c, &what) != 0)) {
            persist_fail(c, what, errno);
            rc = BGEICL_ERR_IO;
        }
    }
    pthread_mutex_unlock(&c->mu);
    free_chain(freed);
    return rc;
}

void emb_cache_stats_get(emb_cache *c, emb_cache_stats *out)
{
    if (!out)
        return;
    if (!c) {
        memset(out, 0, sizeof *out);
        return;
    }
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}
