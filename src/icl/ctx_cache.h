/*
 * ctx_cache.h - the context cache: which worked examples a query got, reused
 * for later queries that are similar enough.
 *
 * Building an ICL context means detecting the language, ranking the bank's
 * examples against the query and fitting the best ones into the model's
 * length. A developer's code-search queries repeat and vary slightly
 * ("parse json config", "parse the json config file"), so the cache keeps
 * the chosen examples per query and hands them to any later query of the
 * same language whose identifier-token set is at least `threshold` similar
 * (Jaccard over hashed, lower-cased identifier tokens).
 *
 * Data structure: a fixed array of `capacity` entries, scanned linearly on
 * lookup (capacity is a few hundred; a scan of 200 short sorted signatures
 * costs microseconds, less than ranking the bank again). Each entry holds
 * its language, its query's signature (sorted unique 32-bit token hashes, at
 * most CTX_MAX_TOKENS), the chosen example indices, a last-use tick and
 * the similarities of the hits it served.
 *
 * Eviction combines recency and similarity: when full, the entry with the
 * lowest  0.5 * recency + 0.5 * usefulness  goes, where recency is
 * 1 - age / capacity (clamped at 0; age in lookups since last use) and
 * usefulness is the mean similarity of the hits it served (0 if none). An
 * entry that keeps answering close queries survives a burst of one-off
 * queries; an old entry that never matched goes first.
 *
 * Thread-safety: one mutex; lookups and inserts are short.
 */
#ifndef ICL_CTX_CACHE_H
#define ICL_CTX_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "bgeicl.h"

#define CTX_MAX_TOKENS 64
#define CTX_MAX_EXAMPLES 8

typedef struct ctx_cache ctx_cache;

typedef struct ctx_signature {
    uint32_t tok[CTX_MAX_TOKENS]; /* sorted, unique */
    size_t n;
} ctx_signature;

typedef struct ctx_value {
    size_t idx[CTX_MAX_EXAMPLES]; /* bank example indices, best first */
    size_t n;
} ctx_value;

typedef struct ctx_cache_stats {
    uint64_t hits, misses, evictions, entries;
} ctx_cache_stats;

/* The signature of a text: identifier tokens split on non-alphanumerics,
 * camelCase and digits, lower-cased, hashed (FNV-1a). */
void ctx_signature_of(const char *text, size_t len, ctx_signature *out);
/* Jaccard similarity of two signatures; 1 for two empty ones. */
double ctx_similarity(const ctx_signature *a, const ctx_signature *b);

/* capacity 0 makes a cache that never hits (every lookup a miss). */
bgeicl_code ctx_cache_create(size_t capacity, double threshold, ctx_cache **out,
                             bgeicl_error *err);
void ctx_cache_free(ctx_cache *c);

/* 1 and *out filled (and *similarity, if not NULL) when an entry of `lang`
 * is at least `threshold` similar; 0 on a miss. */
int ctx_cache_lookup(ctx_cache *c, int lang, const ctx_signature *sig, ctx_value *out,
                     double *similarity);
void ctx_cache_insert(ctx_cache *c, int lang, const ctx_signature *sig, const ctx_value *v);
void ctx_cache_stats_get(ctx_cache *c, ctx_cache_stats *out);

#endif
