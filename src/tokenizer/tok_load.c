/*
 * tok_load.c - tok_load: picks tokenizer.json (preferred, as transformers
 * does) or vocab.txt + tokenizer_config.json, then derives the lookup tables
 * the encoder's fast paths use. Also tok_free and the shared helpers of the
 * two loaders.
 */
#include <string.h>

#include "tok_bpe.h"
#include "tok_internal.h"
#include "tok_unicode.h"

bgeicl_code tok_add_special(tok_tokenizer *t, const char *content, int32_t id_if_absent,
                            const char *file, bg_err *err)
{
    if (!content[0])
        return BGEICL_OK; /* the library ignores empty added tokens */
    int32_t id = tok_vocab_find(&t->vocab, content, strlen(content));
    if (id < 0)
        id = id_if_absent;
    if (id < 0)
        return bg_fail(err, BGEICL_ERR_FORMAT, "%s: special token \"%s\" has no id", file,
                       content);
    if (tok_added_add(&t->added, content, id) != 0)
        return bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory", file);
    return BGEICL_OK;
}

static void setup_ascii(tok_tokenizer *t)
{
    for (int b = 0; b < 128; b++) {
        unsigned f = tok_u_flags(b);
        unsigned char cls = TOK_A_WORD;
        if (t->clean_text && (b == 0 || (f & TOK_U_CONTROL)))
            cls = TOK_A_REMOVE;
        else if (f & TOK_U_WS)
            cls = TOK_A_SPACE;
        else if (f & TOK_U_PUNCT)
            cls = TOK_A_PUNCT;
        t->ascii_class[b] = cls;
        t->ascii_map[b] = (unsigned char)(t->lowercase && b >= 'A' && b <= 'Z' ? b + 32 : b);
        /* A lone punctuation char is a one-char word: look it up once here. */
        char c = (char)b;
        int32_t id = t->max_word_chars >= 1 ? tok_vocab_find(&t->vocab, &c, 1) : -1;
        t->ascii_punct_id[b] = id >= 0 ? id : t->unk_id;
    }
}

void tok_finish_setup(tok_tokenizer *t)
{
    tok_added_finish(&t->added);
    if (t->bpe)
        return; /* the tables below serve WordPiece only */
    setup_ascii(t);
    uint64_t h = TOK_HASH_INIT;
    for (size_t i = 0; i < t->prefix_len; i++)
        h = tok_hash_step(h, (unsigned char)t->prefix[i]);
    t->prefix_hash = h;
    t->max_first_len = t->vocab.max_len;
    t->max_cont_len = 0;
    for (size_t id = 0; id < t->vocab.n_ids; id++) {
        const char *s = tok_vocab_str(&t->vocab, (int32_t)id);
        size_t len = s ? t->vocab.str_len[id] : 0;
        if (s && len >= t->prefix_len && memcmp(s, t->prefix, t->prefix_len) == 0 &&
            len - t->prefix_len > t->max_cont_len)
            t->max_cont_len = len - t->prefix_len;
    }
}

void tok_free(tok_tokenizer *t)
{
    if (!t)
        return;
    tok_vocab_free(&t->vocab);
    tok_added_free(&t->added);
    bg_free(t->prefix);
    bg_free(t->pre_ids);
    bg_free(t->post_ids);
    tok_bpe_free(t->bpe);
    bg_free(t);
}

bgeicl_code tok_load(const char *dir, tok_tokenizer **out, bg_err *err)
{
    if (!out)
        return bg_fail(err, BGEICL_ERR_ARG, "tok_load: NULL output");
    *out = NULL;
    if (!dir)
        return bg_fail(err, BGEICL_ERR_ARG, "tok_load: NULL model folder");
    bgeicl_code rc = BGEICL_OK;
    tok_tokenizer *t = bg_calloc(1, sizeof *t);
    char *json = bg_path_join(dir, "tokenizer.json");
    if (!t || !json) {
        rc = bg_fail(err, BGEICL_ERR_NOMEM, "%s: out of memory loading the tokenizer", dir);
        goto err;
    }
    t->pad_id = 0;
    if (bg_file_exists(json))
        rc = tok_load_json(t, json, err);
    else
        rc = tok_load_vocab_txt(t, dir, err);
    if (rc != BGEICL_OK)
        goto err;
    tok_finish_setup(t);
    bg_free(json);
    *out = t;
    return BGEICL_OK;
err:
    bg_free(json);
    tok_free(t);
    return rc;
}
