/*
 * tok_vocab.c - the vocabulary: token string <-> id.
 *
 * Data structure and invariants: see tok_vocab in tok_internal.h. In short,
 * one arena of NUL-terminated strings, an id-indexed array of (offset,
 * length) into it, and a power-of-two open-addressing table of (hash, id)
 * with linear probing and a load factor of at most 1/2. Lookups compare the
 * 32-bit hash first, then the length, then the bytes.
 */
#include <string.h>

#include "tok_internal.h"

uint32_t tok_hash_bytes(const char *s, size_t len)
{
    uint64_t h = TOK_HASH_INIT;
    for (size_t i = 0; i < len; i++)
        h = tok_hash_step(h, (unsigned char)s[i]);
    return tok_hash_final(h);
}

int tok_vocab_alloc(tok_vocab *v, size_t n_strings, size_t n_ids, size_t str_bytes)
{
    size_t cap = 16;
    while (cap < 2 * n_strings)
        cap *= 2;
    memset(v, 0, sizeof *v);
    v->arena_cap = str_bytes + n_strings;
    v->arena = bg_malloc(v->arena_cap);
    v->str_off = bg_malloc(n_ids * sizeof *v->str_off);
    v->str_len = bg_calloc(n_ids, sizeof *v->str_len);
    v->slots = bg_malloc(cap * sizeof *v->slots);
    if (!v->arena || !v->str_off || !v->str_len || !v->slots) {
        tok_vocab_free(v);
        return -1;
    }
    for (size_t i = 0; i < n_ids; i++)
        v->str_off[i] = TOK_NO_STR;
    for (size_t i = 0; i < cap; i++)
        v->slots[i].id = -1;
    v->n_ids = n_ids;
    v->mask = cap - 1;
    return 0;
}

void tok_vocab_free(tok_vocab *v)
{
    bg_free(v->arena);
    bg_free(v->str_off);
    bg_free(v->str_len);
    bg_free(v->slots);
    memset(v, 0, sizeof *v);
}

/* Byte loops, not memcmp: the strings are a few bytes long and a libc call
 * costs more than the comparison. */
static int same_str(const tok_vocab *v, int32_t id, const char *a, size_t alen, const char *b,
                    size_t blen)
{
    if (v->str_len[id] != alen + blen)
        return 0;
    const char *s = v->arena + v->str_off[id];
    for (size_t i = 0; i < alen; i++)
        if (s[i] != a[i])
            return 0;
    s += alen;
    for (size_t i = 0; i < blen; i++)
        if (s[i] != b[i])
            return 0;
    return 1;
}

void tok_vocab_put(tok_vocab *v, const char *s, size_t len, int32_t id)
{
    uint32_t h = tok_hash_bytes(s, len);
    size_t i = h & v->mask;
    while (v->slots[i].id >= 0) {
        if (v->slots[i].hash == h && same_str(v, v->slots[i].id, s, len, "", 0)) {
            v->slots[i].id = id; /* later duplicate wins */
            break;
        }
        i = (i + 1) & v->mask;
    }
    if (v->slots[i].id < 0) {
        v->slots[i].hash = h;
        v->slots[i].id = id;
    }
    /* Reverse entry: the arena was sized for every string, duplicates too. */
    v->str_off[id] = (uint32_t)v->arena_len;
    v->str_len[id] = (uint32_t)len;
    memcpy(v->arena + v->arena_len, s, len);
    v->arena[v->arena_len + len] = '\0';
    v->arena_len += len + 1;
    if (len > v->max_len)
        v->max_len = len;
}

int32_t tok_vocab_find2(const tok_vocab *v, uint32_t h, const char *a, size_t alen,
                        const char *b, size_t blen)
{
    size_t i = h & v->mask;
    for (;;) {
        int32_t id = v->slots[i].id;
        if (id < 0)
            return -1;
        if (v->slots[i].hash == h && same_str(v, id, a, alen, b, blen))
            return id;
        i = (i + 1) & v->mask;
    }
}

int32_t tok_vocab_find(const tok_vocab *v, const char *s, size_t len)
{
    return tok_vocab_find2(v, tok_hash_bytes(s, len), "", 0, s, len);
}

const char *tok_vocab_str(const tok_vocab *v, int32_t id)
{
    if (id < 0 || (size_t)id >= v->n_ids || v->str_off[id] == TOK_NO_STR)
        return NULL;
    return v->arena + v->str_off[id];
}
