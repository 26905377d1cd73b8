/*
 * tok_added.c - added tokens matched on the raw input.
 *
 * The tokenizers library extracts "added tokens" (for BERT: [PAD] [UNK]
 * [CLS] [SEP] [MASK], all special and not normalized) from the original text
 * before any normalization, with a leftmost-longest Aho-Corasick search: a
 * literal "[SEP]" typed in the input becomes the [SEP] id, and the text
 * around it is normalized and tokenized as separate segments.
 *
 * BERT vocabularies carry a handful of such tokens, so instead of an
 * automaton this keeps them sorted by decreasing length (invariant of
 * tok_added) and a 256-entry table of first bytes to skip most positions.
 */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

int tok_added_add(tok_added *a, const char *s, int32_t id)
{
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->str[i], s) == 0) { /* the later id wins, as in the library */
            a->id[i] = id;
            return 0;
        }
    }
    size_t n = a->n + 1;
    char **str = bg_realloc(a->str, n * sizeof *str);
    if (!str)
        return -1;
    a->str = str;
    size_t *len = bg_realloc(a->len, n * sizeof *len);
    if (!len)
        return -1;
    a->len = len;
    int32_t *ids = bg_realloc(a->id, n * sizeof *ids);
    if (!ids)
        return -1;
    a->id = ids;
    char *copy = bg_strdup(s);
    if (!copy)
        return -1;
    a->str[a->n] = copy;
    a->len[a->n] = strlen(s);
    a->id[a->n] = id;
    a->n = n;
    return 0;
}

/* Sorts by decreasing length (insertion sort: a handful of entries) and
 * fills the first-byte table. */
void tok_added_finish(tok_added *a)
{
    for (size_t i = 1; i < a->n; i++) {
        for (size_t j = i; j > 0 && a->len[j] > a->len[j - 1]; j--) {
            char *s = a->str[j];
            size_t l = a->len[j];
            int32_t id = a->id[j];
            a->str[j] = a->str[j - 1];
            a->len[j] = a->len[j - 1];
            a->id[j] = a->id[j - 1];
            a->str[j - 1] = s;
            a->len[j - 1] = l;
            a->id[j - 1] = id;
        }
    }
    memset(a->first, 0, sizeof a->first);
    a->single_first = a->n ? (unsigned char)a->str[0][0] : -1;
    for (size_t i = 0; i < a->n; i++) {
        a->first[(unsigned char)a->str[i][0]] = 1;
        if ((unsigned char)a->str[i][0] != a->single_first)
            a->single_first = -1;
    }
}

void tok_added_free(tok_added *a)
{
    for (size_t i = 0; i < a->n; i++)
        bg_free(a->str[i]);
    bg_free(a->str);
    bg_free(a->len);
    bg_free(a->id);
    memset(a, 0, sizeof *a);
}

size_t tok_added_next(const tok_added *a, const char *s, size_t len, size_t pos,
                      size_t *mlen, int32_t *id)
{
    const unsigned char *u = (const unsigned char *)s;
    if (a->n == 0)
        return len;
    for (size_t i = pos; i < len; i++) {
        if (a->single_first >= 0) { /* one first byte ('[' for BERT): memchr is SIMD */
            const char *p = memchr(s + i, a->single_first, len - i);
            if (!p)
                return len;
            i = (size_t)(p - s);
        } else if (!a->first[u[i]]) {
            continue;
        }
        for (size_t k = 0; k < a->n; k++) {
            size_t l = a->len[k];
            if (l <= len - i && memcmp(s + i, a->str[k], l) == 0) {
                *mlen = l;
                *id = a->id[k];
                return i;
            }
        }
    }
    return len;
}

const char *tok_added_str(const tok_added *a, int32_t id)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->id[i] == id)
            return a->str[i];
    return NULL;
}
