/*
 * emb_cache.h - the embedding cache: finished vectors keyed by a SHA-256 of
 * everything that decides them, in memory under a byte budget, optionally
 * persisted in an append-only log so a restart starts warm.
 *
 * Data structure (emb_cache.c)
 *   A chained hash table of entries plus one doubly linked LRU list through
 *   the same entries. An entry is one allocation: its chain link, its two
 *   LRU links, the 32-byte key and the vector (dim floats) inline after it.
 *   The bucket of a key is its first 8 bytes (little-endian) masked by the
 *   table size: keys are SHA-256 outputs, so those bits are already uniform
 *   (a caller that builds keys by other means must keep them uniform, or
 *   chains grow). The table doubles when entries exceed buckets (load factor
 *   <= 1); the rehash is O(entries) under the lock, once per doubling (Redis
 *   rehashes incrementally; at our sizes, about a million entries at most,
 *   a full rehash costs a few milliseconds once). If the doubling cannot be
 *   allocated the table keeps working at a higher load factor.
 *
 * Invariants (under the cache mutex, between public calls)
 *   - every entry is in exactly one chain, that of its bucket, and exactly
 *     once in the LRU list; both hold `entries` entries; no key twice;
 *   - the LRU list runs from the most recently used entry (head: last put
 *     or get hit) to the least recently used one (tail: next to evict);
 *   - bytes == entries * entry_size <= budget, where entry_size is the
 *     entry header (links + key) plus dim floats. The bucket array (8 bytes
 *     per bucket, 8 to 16 per entry) is outside the budget;
 *   - with persistence on: the log file is exactly log_size bytes, a valid
 *     header followed by log_records whole, valid records (an append that
 *     fails is cut back off); for every live entry, the last record of its
 *     key in the log holds its current vector; and after every put
 *     log_records <= 2 * entries + EC_COMPACT_MIN.
 *
 * The log (dir/emb-cache.log; all integers and floats little-endian)
 *   header: u32 magic "BGEC", u32 version (1), u32 dim, u32 tag_len,
 *           tag bytes, u32 crc32 of everything before it
 *   record: u32 magic "ECR1", key[32], float vec[dim],
 *           u32 crc32 (zlib) of key + vec
 *   A put appends one record with a single writev(2) on an O_APPEND
 *   descriptor; a refresh with an identical vector appends nothing; an
 *   eviction writes nothing (evicted entries stay in the log until the
 *   next compaction, and a reopen with room for them brings them back:
 *   they are still right). Gets never write: recency survives a restart
 *   only as the order of the log (last insert), refined at each compaction.
 *
 *   Open reads the records in order, later records for a key replacing
 *   earlier ones, under the LRU budget: with a budget smaller than the log
 *   the most recent records are the ones kept. It stops at the first record
 *   that is short, has a bad magic or a bad crc: that record and every one
 *   after it are dropped (counted in `discarded`) and the file is truncated
 *   there, so later appends follow good data. Records are fixed size and a
 *   resync is possible, but a bad record means the tail was never fully
 *   written back, so nothing after it is worth the risk.
 *   A file whose header is unreadable or names another version, dim or tag
 *   is not an error: it is emptied and restarted (its records counted in
 *   `discarded`). Use one directory per model and dtype.
 *
 *   Compaction: when log_records > 2 * entries + EC_COMPACT_MIN, the live
 *   entries are written, least recent first, to emb-cache.log.tmp, which is
 *   fsync'd, renamed over the log (atomic) and the directory fsync'd. It
 *   runs inside the put that crosses the threshold, under the lock: one
 *   write of the live set (about 160 MB for 100k entries of dim 384) per at
 *   least entries + EC_COMPACT_MIN appends. A background compactor would
 *   keep that off the request path; not needed at our put rates.
 *
 * What a crash can lose. Appends are not fsync'd. A killed process loses
 * nothing it has written (the data is in the page cache). A power loss or
 * kernel crash can lose the records of the last seconds: the file ends
 * short, or its tail reads back as zeros or stale blocks; either fails the
 * record magic or crc and is dropped at open. A record is accepted only if
 * its key and every byte of its vector match the crc written with them, so
 * a crash never yields a wrong vector (short of a crc32 collision on a
 * damaged record that also kept its magic: about 2^-32 per damaged record).
 * A crash during compaction leaves either the old log or the new one whole
 * under the name; a stale .tmp is removed at the next open. Under the
 * "stop at the first bad record" rule a key whose vector was replaced may
 * come back with its previous vector; keys here decide their vector (model,
 * dtype, options, text), so an older record is still the right vector.
 *
 * Errors. Open fails with BGEICL_ERR_IO when dir cannot be created, opened,
 * read or locked (one process per directory: flock on the directory). A
 * failing append or compaction during a put returns BGEICL_ERR_IO once:
 * the put still holds in memory, the torn bytes are cut off, and the cache
 * goes on in memory only (persistence off; the reason is logged once with
 * log_event, since the stats carry counts only).
 *
 * Thread-safety: every call may come from any thread; one mutex guards the
 * cache. Hashing (emb_cache_key) is done by the caller, outside it; a put
 * allocates, copies and checksums outside it too, and frees what it evicted
 * after it, so a critical section is a lookup, a memcpy of one vector, list
 * splices and the append's writev(2) (rarely a rehash or a compaction).
 * Not taken: lock striping. Gets from two threads contend on the mutex
 * (bench/cache_bench.c: two threads together do about what one does, 0.7
 * to 1.7M gets/s), but a get costs about a microsecond against
 * milliseconds for an embedding.
 */
#ifndef CACHE_EMB_CACHE_H
#define CACHE_EMB_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "bgeicl.h"

typedef struct emb_cache emb_cache;

typedef struct emb_cache_stats {
    uint64_t hits, misses, inserts, evictions;
    uint64_t entries, bytes;    /* live entries, bytes they hold (vectors + keys + overhead) */
    uint64_t loaded, discarded; /* records read back from disk at open;
                                   records dropped as corrupt/torn (or foreign) */
} emb_cache_stats;

#define EMB_CACHE_LOG_NAME "emb-cache.log"
#define EC_COMPACT_MIN 1024 /* records of slack before a compaction */
#define EC_MAX_DIM 65536    /* floats per vector */
#define EC_MAX_TAG 255      /* bytes of tag */

/* Key: SHA-256 (OpenSSL EVP) over the parts, each prefixed by its 8-byte
 * little-endian length, so ("ab","c") != ("a","bc"). The caller passes model
 * id, dtype, prompt-affecting options and the final text as parts. If
 * OpenSSL fails (out of memory) the key is 32 zero bytes, which the cache
 * reserves: get misses it and put refuses it, so a failed hash never aliases
 * another text. */
void emb_cache_key(const char *const *parts, const size_t *lens, size_t n, uint8_t key[32]);

/* budget_bytes: memory budget, at least one entry (LRU eviction beyond it);
 * dim: floats per vector, 1..EC_MAX_DIM; dir: NULL for memory only, else a
 * directory (created with its parents if missing) for persistence; tag: a
 * short string (model id + dtype + dim, at most EC_MAX_TAG bytes; NULL is
 * "") written in the file header. A file with another tag or dim is
 * replaced, not an error (counted in stats.discarded). Returns BGEICL_OK,
 * BGEICL_ERR_ARG, BGEICL_ERR_NOMEM (nothing on disk changed) or
 * BGEICL_ERR_IO; *out is NULL on failure. */
bgeicl_code emb_cache_open(size_t budget_bytes, size_t dim, const char *dir, const char *tag,
                           emb_cache **out, bgeicl_error *err);
/* Syncs the log to disk (fdatasync) and frees everything. NULL ok. */
void emb_cache_close(emb_cache *c);

/* Copies the vector into out (dim floats; out may be NULL to probe) and
 * returns 1 on a hit, making the entry the most recent; 0 on a miss. */
int emb_cache_get(emb_cache *c, const uint8_t key[32], float *out);

/* Inserts or refreshes (the entry becomes the most recent; a new vector
 * replaces the old one); evicts least-recently-used entries to stay within
 * budget; appends to the log when persistent. Returns BGEICL_OK,
 * BGEICL_ERR_ARG (NULL or the reserved zero key), BGEICL_ERR_NOMEM (nothing
 * changed) or BGEICL_ERR_IO (the entry is cached in memory; persistence is
 * now off). */
bgeicl_code emb_cache_put(emb_cache *c, const uint8_t key[32], const float *vec);

/* A consistent snapshot of the counters. */
void emb_cache_stats_get(emb_cache *c, emb_cache_stats *out);

#endif
