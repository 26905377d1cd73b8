/*
 * tok_access.c - read-only accessors of a loaded tokenizer. Ids of added
 * tokens that are not in the model vocabulary live in tok_added, so every
 * lookup checks both (added tokens first, as the library does).
 */
#include <string.h>

#include "tok_internal.h"

size_t tok_vocab_size(const tok_tokenizer *t)
{
    size_t n = t->vocab.n_ids;
    for (size_t i = 0; i < t->added.n; i++)
        if ((size_t)t->added.id[i] + 1 > n)
            n = (size_t)t->added.id[i] + 1;
    return n;
}

const char *tok_id_to_token(const tok_tokenizer *t, int32_t id)
{
    const char *s = tok_vocab_str(&t->vocab, id);
    return s ? s : tok_added_str(&t->added, id);
}

int32_t tok_token_to_id(const tok_tokenizer *t, const char *token)
{
    for (size_t i = 0; i < t->added.n; i++)
        if (strcmp(t->added.str[i], token) == 0)
            return t->added.id[i];
    return tok_vocab_find(&t->vocab, token, strlen(token));
}

int32_t tok_cls_id(const tok_tokenizer *t)
{
    return t->n_pre ? t->pre_ids[0] : tok_token_to_id(t, "[CLS]");
}

int32_t tok_sep_id(const tok_tokenizer *t)
{
    return t->n_post ? t->post_ids[t->n_post - 1] : tok_token_to_id(t, "[SEP]");
}

int32_t tok_pad_id(const tok_tokenizer *t) { return t->pad_id; }

int32_t tok_unk_id(const tok_tokenizer *t) { return t->unk_id; }
