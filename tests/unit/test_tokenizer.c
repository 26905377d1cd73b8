/*
 * test_tokenizer.c - the WordPiece tokenizer: hand-checked encodings of the
 * real bge-small tokenizer (tokens compared as strings, so no id is
 * memorised), settings variants on small tokenizer.json / vocab.txt
 * fixtures written to a temp folder, every load and encode error path,
 * allocation-failure loops, a multi-thread check and a throughput figure.
 *
 * Bit-exactness with the tokenizers library over large corpora is checked
 * by tests/py/test_tokenizer_parity.py.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tokenizer/tok.h"

/* ---- temp folders --------------------------------------------------------- */

static char g_root[512];
static int g_seq;

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void rm_rf(const char *p) { nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static const char *fresh_dir(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%d", g_root, ++g_seq);
    mkdir(buf, 0700);
    return buf;
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
    fwrite(data, 1, len, f);
    fclose(f);
}

static void write_str(const char *dir, const char *name, const char *s)
{
    write_file(dir, name, s, strlen(s));
}

/* Copies model file `name` of `src` into `dst`. */
static void copy_file(const char *src, const char *dst, const char *name)
{
    char path[1024];
    char *data = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s", src, name);
    if (bg_read_file(path, &data, &len, NULL) != BGEICL_OK) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    write_file(dst, name, data, len);
    bg_free(data);
}

/* ---- rendering encodings as "token@start:end ..." ------------------------ */

static char g_out[16384];

static const char *render(const tok_tokenizer *t, const tok_encoding *e)
{
    size_t o = 0;
    g_out[0] = '\0';
    for (size_t i = 0; i < e->n && o < sizeof g_out - 64; i++) {
        const char *s = tok_id_to_token(t, e->ids[i]);
        o += (size_t)snprintf(g_out + o, sizeof g_out - o, "%s%s@%u:%u", i ? " " : "",
                              s ? s : "(null)", (unsigned)e->start[i], (unsigned)e->end[i]);
    }
    return g_out;
}

/* Encodes and renders; on an error returns "error <code>: message". */
static const char *enc_str(const tok_tokenizer *t, const char *text, size_t len, int special,
                           size_t max_len, int *truncated)
{
    tok_encoding e = {0};
    bg_err err;
    bgeicl_code rc = tok_encode(t, text, len, special, max_len, &e, truncated, &err);
    if (rc != BGEICL_OK)
        snprintf(g_out, sizeof g_out, "error %d: %s", (int)rc, err.message);
    else
        render(t, &e);
    tok_encoding_free(&e);
    return g_out;
}

#define EXPECT_ENC(t, text, want)                                                          \
    do {                                                                                   \
        const char *got_ = enc_str((t), (text), sizeof(text) - 1, 1, 0, NULL);             \
        if (strcmp(got_, (want)) != 0) {                                                   \
            fprintf(stderr, "%s:%d: encoding of %s\n   got: %s\n  want: %s\n", __FILE__,   \
                    __LINE__, #text, got_, (want));                                        \
            harness_failures_in_test++;                                                    \
        }                                                                                  \
    } while (0)

#define CHECK_STR_EQ(got, want)                                                            \
    do {                                                                                   \
        const char *g_ = (got), *w_ = (want);                                              \
        if (strcmp(g_, w_) != 0) {                                                         \
            fprintf(stderr, "%s:%d:\n   got: %s\n  want: %s\n", __FILE__, __LINE__, g_, w_); \
            harness_failures_in_test++;                                                    \
        }                                                                                  \
    } while (0)

static tok_tokenizer *g_bge;

static tok_tokenizer *load_ok(const char *dir)
{
    tok_tokenizer *t = NULL;
    bg_err err;
    bgeicl_code rc = tok_load(dir, &t, &err);
    if (rc != BGEICL_OK) {
        fprintf(stderr, "tok_load(%s): %s\n", dir, err.message);
        return NULL;
    }
    return t;
}

/* ---- the real bge-small tokenizer ---------------------------------------- */

/* 1 if bge-small is there to test; otherwise the test skips (or fails when
 * BGEICL_REQUIRE_MODELS=1, see harness_have_model). */
static int need_bge(void)
{
    if (!harness_have_model(harness_model_dir()))
        return 0;
    CHECK(g_bge != NULL);
    return g_bge != NULL;
}

TEST(test_bge_basics)
{
    if (!need_bge())
        return;
    CHECK_EQ_INT(tok_vocab_size(g_bge), 30522);
    CHECK_EQ_INT(tok_cls_id(g_bge), tok_token_to_id(g_bge, "[CLS]"));
    CHECK_EQ_INT(tok_sep_id(g_bge), tok_token_to_id(g_bge, "[SEP]"));
    CHECK_EQ_INT(tok_pad_id(g_bge), tok_token_to_id(g_bge, "[PAD]"));
    CHECK_EQ_INT(tok_unk_id(g_bge), tok_token_to_id(g_bge, "[UNK]"));
    CHECK(tok_token_to_id(g_bge, "hello") > 0);
    CHECK_EQ_INT(tok_token_to_id(g_bge, "no-such-token-xyz"), -1);
    CHECK(tok_id_to_token(g_bge, -1) == NULL);
    CHECK(tok_id_to_token(g_bge, 30522) == NULL);
    CHECK_STR_EQ(tok_id_to_token(g_bge, tok_token_to_id(g_bge, "##ization")), "##ization");
}

TEST(test_bge_words_and_punctuation)
{
    if (!need_bge())
        return;
    EXPECT_ENC(g_bge, "Hello, World!",
               "[CLS]@0:0 hello@0:5 ,@5:6 world@7:12 !@12:13 [SEP]@0:0");
    EXPECT_ENC(g_bge, "a-b", "[CLS]@0:0 a@0:1 -@1:2 b@2:3 [SEP]@0:0");
    EXPECT_ENC(g_bge, "def add(a, b): return a + b",
               "[CLS]@0:0 def@0:3 add@4:7 (@7:8 a@8:9 ,@9:10 b@11:12 )@12:13 :@13:14 "
               "return@15:21 a@22:23 +@24:25 b@26:27 [SEP]@0:0");
    EXPECT_ENC(g_bge, "tokenization", "[CLS]@0:0 token@0:5 ##ization@5:12 [SEP]@0:0");
    EXPECT_ENC(g_bge, "  \t\n ", "[CLS]@0:0 [SEP]@0:0");
    /* Unicode punctuation (Po) is isolated too. */
    EXPECT_ENC(g_bge, "a\xc2\xa7" "b", "[CLS]@0:0 a@0:1 \xc2\xa7@1:3 b@3:4 [SEP]@0:0");
}

TEST(test_bge_accents_and_case)
{
    if (!need_bge())
        return;
    /* NFD + drop Mn; spans cover the original precomposed chars. */
    EXPECT_ENC(g_bge, "Caf\xc3\xa9 na\xc3\xafve", "[CLS]@0:0 cafe@0:5 naive@6:12 [SEP]@0:0");
    /* A decomposed accent, marks in non-canonical order. */
    EXPECT_ENC(g_bge, "e\xcc\x81\xcc\x96", "[CLS]@0:0 e@0:1 [SEP]@0:0");
    /* U+0130 lowercases to i + U+0307, the mark stripped: 'istanbul'. */
    EXPECT_ENC(g_bge, "\xc4\xb0stanbul", "[CLS]@0:0 istanbul@0:9 [SEP]@0:0");
    /* The Angstrom sign decomposes to A + ring. */
    EXPECT_ENC(g_bge, "\xe2\x84\xab", "[CLS]@0:0 a@0:3 [SEP]@0:0");
    EXPECT_ENC(g_bge, "\xce\x9f\xce\x94\xce\x9f\xce\xa3",
               "[CLS]@0:0 \xce\xbf@0:2 ##\xce\xb4@2:4 ##\xce\xbf@4:6 ##\xcf\x83@6:8 [SEP]@0:0");
}

TEST(test_bge_cjk)
{
    if (!need_bge())
        return;
    EXPECT_ENC(g_bge, "\xe4\xb8\xad\xe6\x96\x87",
               "[CLS]@0:0 \xe4\xb8\xad@0:3 \xe6\x96\x87@3:6 [SEP]@0:0");
    /* CJK chars are split off even inside a word. */
    EXPECT_ENC(g_bge, "ab\xe4\xb8\xad" "cd",
               "[CLS]@0:0 ab@0:2 \xe4\xb8\xad@2:5 cd@5:7 [SEP]@0:0");
}

TEST(test_bge_cleaning)
{
    if (!need_bge())
        return;
    /* Control chars, U+0000, zero-width and format chars vanish; the word's
     * span still runs from its first to its last kept char. */
    EXPECT_ENC(g_bge, "a\x07" "b", "[CLS]@0:0 ab@0:3 [SEP]@0:0");
    EXPECT_ENC(g_bge, "a\x00" "b", "[CLS]@0:0 ab@0:3 [SEP]@0:0");
    EXPECT_ENC(g_bge, "a\xe2\x80\x8b" "b", "[CLS]@0:0 ab@0:5 [SEP]@0:0");
    EXPECT_ENC(g_bge, "a\xef\xbf\xbd" "b", "[CLS]@0:0 ab@0:5 [SEP]@0:0");
    /* Unicode whitespace splits: NBSP, line separator, ideographic space. */
    EXPECT_ENC(g_bge, "a\xc2\xa0" "b\xe2\x80\xa8" "c\xe3\x80\x80" "d",
               "[CLS]@0:0 a@0:1 b@3:4 c@7:8 d@11:12 [SEP]@0:0");
    EXPECT_ENC(g_bge, "\x01\x02\x1b\x7f", "[CLS]@0:0 [SEP]@0:0");
}

TEST(test_bge_long_words)
{
    if (!need_bge())
        return;
    char buf[256];
    memset(buf, 'a', 101);
    /* 101 chars > max_input_chars_per_word (100): one [UNK] over the word. */
    CHECK_STR_EQ(enc_str(g_bge, buf, 101, 1, 0, NULL), "[CLS]@0:0 [UNK]@0:101 [SEP]@0:0");
    /* 100 chars: WordPiece pieces ("aaa" then "##aa" x 48 in this vocab). */
    const char *s = enc_str(g_bge, buf, 100, 0, 0, NULL);
    CHECK(strncmp(s, "aaa@0:3 ##aa@3:5 ##aa@5:7", 25) == 0);
    CHECK(strstr(s, "##aa@97:99 ##a@99:100") != NULL);
    /* A char with no vocabulary piece makes the whole word [UNK]. */
    EXPECT_ENC(g_bge, "ab\xe2\x85\xbb" "cd", "[CLS]@0:0 [UNK]@0:7 [SEP]@0:0");
}

TEST(test_bge_special_tokens_in_text)
{
    if (!need_bge())
        return;
    EXPECT_ENC(g_bge, "a [SEP] b", "[CLS]@0:0 a@0:1 [SEP]@2:7 b@8:9 [SEP]@0:0");
    EXPECT_ENC(g_bge, "[MASK]x", "[CLS]@0:0 [MASK]@0:6 x@6:7 [SEP]@0:0");
    /* Case-sensitive: "[sep]" is plain text. */
    EXPECT_ENC(g_bge, "[sep]", "[CLS]@0:0 [@0:1 sep@1:4 ]@4:5 [SEP]@0:0");
}

TEST(test_bge_empty_and_flags)
{
    if (!need_bge())
        return;
    CHECK_STR_EQ(enc_str(g_bge, "", 0, 1, 0, NULL), "[CLS]@0:0 [SEP]@0:0");
    CHECK_STR_EQ(enc_str(g_bge, "", 0, 0, 0, NULL), "");
    CHECK_STR_EQ(enc_str(g_bge, NULL, 0, 1, 0, NULL), "[CLS]@0:0 [SEP]@0:0");
    CHECK_STR_EQ(enc_str(g_bge, "hello", 5, 0, 0, NULL), "hello@0:5");
    /* (size_t)-1: NUL-terminated. */
    CHECK_STR_EQ(enc_str(g_bge, "hello", (size_t)-1, 0, 0, NULL), "hello@0:5");
}

TEST(test_bge_truncation)
{
    if (!need_bge())
        return;
    const char *text = "one two three four five six";
    int tr = -1;
    CHECK_STR_EQ(enc_str(g_bge, text, strlen(text), 1, 5, &tr),
                 "[CLS]@0:0 one@0:3 two@4:7 three@8:13 [SEP]@0:0");
    CHECK_EQ_INT(tr, 1);
    CHECK_STR_EQ(enc_str(g_bge, text, strlen(text), 1, 8, &tr),
                 "[CLS]@0:0 one@0:3 two@4:7 three@8:13 four@14:18 five@19:23 six@24:27 "
                 "[SEP]@0:0");
    CHECK_EQ_INT(tr, 0);
    CHECK_STR_EQ(enc_str(g_bge, text, strlen(text), 0, 2, &tr), "one@0:3 two@4:7");
    CHECK_EQ_INT(tr, 1);
    /* Only room for the specials. */
    CHECK_STR_EQ(enc_str(g_bge, text, strlen(text), 1, 2, &tr), "[CLS]@0:0 [SEP]@0:0");
    CHECK_EQ_INT(tr, 1);
    /* Pieces of one word are cut too, not whole words. */
    CHECK_STR_EQ(enc_str(g_bge, "tokenization", 12, 1, 3, &tr), "[CLS]@0:0 token@0:5 [SEP]@0:0");
}

TEST(test_bge_encode_errors)
{
    if (!need_bge())
        return;
    static const char *const bad[] = {
        "\xff", "ab\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "a\x80" "b",
        "\xe4\xb8", "ok [SEP] \xfe",
    };
    tok_encoding e = {0};
    bg_err err;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(tok_encode(g_bge, bad[i], strlen(bad[i]), 1, 0, &e, NULL, &err),
                     BGEICL_ERR_ARG);
        CHECK_STR_CONTAINS(err.message, "UTF-8");
        CHECK_EQ_INT(e.n, 0);
    }
    /* Invalid bytes after the truncation point are still an error. */
    char buf[400];
    memset(buf, 'a', sizeof buf);
    for (size_t i = 1; i < sizeof buf; i += 2)
        buf[i] = ' ';
    buf[sizeof buf - 1] = '\xff';
    CHECK_EQ_INT(tok_encode(g_bge, buf, sizeof buf, 1, 8, &e, NULL, &err), BGEICL_ERR_ARG);
    CHECK_STR_CONTAINS(err.message, "at byte 399");
    CHECK_EQ_INT(tok_encode(g_bge, "ab\xc3(", 4, 1, 0, &e, NULL, &err), BGEICL_ERR_ARG);
    CHECK_STR_CONTAINS(err.message, "at byte 2");
    CHECK_EQ_INT(tok_encode(g_bge, "abc", 3, 1, 1, &e, NULL, &err), BGEICL_ERR_ARG);
    CHECK_STR_CONTAINS(err.message, "special");
    CHECK_EQ_INT(tok_encode(NULL, "abc", 3, 1, 0, &e, NULL, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(tok_encode(g_bge, "abc", 3, 1, 0, NULL, NULL, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(tok_encode(g_bge, NULL, 3, 1, 0, &e, NULL, &err), BGEICL_ERR_ARG);
    /* The encoding stays usable after errors. */
    CHECK_EQ_INT(tok_encode(g_bge, "hello", 5, 1, 0, &e, NULL, &err), BGEICL_OK);
    CHECK_EQ_INT(e.n, 3);
    tok_encoding_free(&e);
    tok_encoding_free(&e);
    tok_encoding_free(NULL);
}

TEST(test_minilm_and_vocab_txt)
{
    char dir[600];
    if (!harness_have_model(harness_minilm_dir()))
        return;
    tok_tokenizer *m = load_ok(harness_minilm_dir());
    CHECK(m != NULL);
    fresh_dir(dir, sizeof dir);
    copy_file(harness_minilm_dir(), dir, "vocab.txt");
    copy_file(harness_minilm_dir(), dir, "tokenizer_config.json");
    tok_tokenizer *v = load_ok(dir);
    CHECK(v != NULL);
    if (m && v) {
        static const char text[] = "Na\xc3\xafve [MASK] tokenization of \xe4\xb8\xad\xe6\x96\x87 "
                                   "caf\xc3\xa9\xe2\x80\x8b!";
        char a[4096];
        snprintf(a, sizeof a, "%s", enc_str(m, text, sizeof text - 1, 1, 0, NULL));
        CHECK_STR_EQ(enc_str(v, text, sizeof text - 1, 1, 0, NULL), a);
        CHECK(strstr(a, "[MASK]@") != NULL);
        CHECK_EQ_INT(tok_vocab_size(v), tok_vocab_size(m));
        CHECK_EQ_INT(tok_cls_id(v), tok_cls_id(m));
        CHECK_EQ_INT(tok_sep_id(v), tok_sep_id(m));
        CHECK_EQ_INT(tok_pad_id(v), tok_pad_id(m));
    }
    tok_free(m);
    tok_free(v);
}

/* ---- small fixtures ---------------------------------------------------- */

#define MINI_VOCAB                                                                         \
    "{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,\"[SEP]\":3,\"[MASK]\":4,\"hello\":5,"           \
    "\"world\":6,\"@@s\":7,\"a\":8,\"b\":9,\",\":10,\"!\":11,\"hel\":12,\"@@lo\":13,"      \
    "\"\xc3\xa9\":14,\"e\":15,\"Hello\":16,\"i\xcc\x87\":17,\"i\":18,\"x\":20}"

/* A tokenizer.json with the given parts (JSON text, or NULL to leave out). */
static const char *mini_json(char *buf, size_t cap, const char *model, const char *norm,
                             const char *pre, const char *post, const char *added)
{
    size_t o = (size_t)snprintf(buf, cap, "{\"version\":\"1.0\"");
    const char *names[] = {"model", "normalizer", "pre_tokenizer", "post_processor",
                           "added_tokens"};
    const char *parts[] = {model, norm, pre, post, added};
    for (int i = 0; i < 5; i++)
        if (parts[i])
            o += (size_t)snprintf(buf + o, cap - o, ",\"%s\":%s", names[i], parts[i]);
    snprintf(buf + o, cap - o, "}");
    return buf;
}

static const char MODEL_OK[] =
    "{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":\"@@\","
    "\"max_input_chars_per_word\":6,\"vocab\":" MINI_VOCAB "}";
static const char NORM_OK[] =
    "{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":true,"
    "\"strip_accents\":false,\"lowercase\":true}";
static const char PRE_OK[] = "{\"type\":\"BertPreTokenizer\"}";
static const char POST_BERT[] =
    "{\"type\":\"BertProcessing\",\"sep\":[\"[SEP]\",3],\"cls\":[\"[CLS]\",2]}";
static const char ADDED_OK[] =
    "[{\"id\":4,\"content\":\"[MASK]\",\"single_word\":false,\"lstrip\":false,"
    "\"rstrip\":false,\"normalized\":false,\"special\":true},"
    "{\"id\":30,\"content\":\"<new>\",\"normalized\":false,\"special\":true}]";

static tok_tokenizer *load_mini(const char *json)
{
    char dir[600];
    fresh_dir(dir, sizeof dir);
    write_str(dir, "tokenizer.json", json);
    return load_ok(dir);
}

TEST(test_mini_settings)
{
    char js[8192];
    tok_tokenizer *t = load_mini(mini_json(js, sizeof js, MODEL_OK, NORM_OK, PRE_OK, POST_BERT,
                                           ADDED_OK));
    CHECK(t != NULL);
    if (!t)
        return;
    /* Custom prefix, BertProcessing, lowercase without accent stripping. */
    EXPECT_ENC(t, "Hello worlds, \xc3\xa9!",
               "[CLS]@0:0 hello@0:5 world@6:11 @@s@11:12 ,@12:13 \xc3\xa9@14:16 !@16:17 "
               "[SEP]@0:0");
    /* max_input_chars_per_word = 6. */
    EXPECT_ENC(t, "worlds hellooo", "[CLS]@0:0 world@0:5 @@s@5:6 [UNK]@7:14 [SEP]@0:0");
    /* U+0130 -> i + U+0307 kept as one char pair (no stripping). */
    EXPECT_ENC(t, "\xc4\xb0", "[CLS]@0:0 i\xcc\x87@0:2 [SEP]@0:0");
    /* CJK chars become words of their own. */
    EXPECT_ENC(t, "a\xe4\xb8\xad" "b", "[CLS]@0:0 a@0:1 [UNK]@1:4 b@4:5 [SEP]@0:0");
    /* An added token outside the vocabulary keeps its own id. */
    EXPECT_ENC(t, "a<new>b", "[CLS]@0:0 a@0:1 <new>@1:6 b@6:7 [SEP]@0:0");
    CHECK_EQ_INT(tok_vocab_size(t), 31);
    CHECK_EQ_INT(tok_token_to_id(t, "<new>"), 30);
    CHECK_STR_EQ(tok_id_to_token(t, 30), "<new>");
    CHECK(tok_id_to_token(t, 19) == NULL); /* a gap in the ids */
    CHECK_EQ_INT(tok_pad_id(t), 0);
    tok_free(t);

    /* No normalizer, no post-processor: case kept, no specials added. */
    t = load_mini(mini_json(js, sizeof js, MODEL_OK, "null", PRE_OK, NULL, NULL));
    CHECK(t != NULL);
    if (t) {
        EXPECT_ENC(t, "Hello hello", "Hello@0:5 hello@6:11");
        CHECK_EQ_INT(tok_cls_id(t), 2);
        CHECK_EQ_INT(tok_sep_id(t), 3);
        tok_free(t);
    }

    /* clean_text and handle_chinese_chars off: control chars stay in the
     * word, CJK chars too; whitespace still splits (even U+000B and NBSP). */
    t = load_mini(mini_json(js, sizeof js, MODEL_OK,
                            "{\"type\":\"BertNormalizer\",\"clean_text\":false,"
                            "\"handle_chinese_chars\":false,\"lowercase\":false}",
                            PRE_OK, POST_BERT, NULL));
    CHECK(t != NULL);
    if (t) {
        EXPECT_ENC(t, "a\x07" "b a\xe4\xb8\xad" "b a\x0b" "b\xc2\xa0" "a",
                   "[CLS]@0:0 [UNK]@0:3 [UNK]@4:9 a@10:11 b@12:13 a@15:16 [SEP]@0:0");
        tok_free(t);
    }

    /* TemplateProcessing with two specials in front. */
    t = load_mini(mini_json(
        js, sizeof js, MODEL_OK, NORM_OK, PRE_OK,
        "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"[CLS]\"}},"
        "{\"SpecialToken\":{\"id\":\"[MASK]\"}},{\"Sequence\":{\"id\":\"A\"}},"
        "{\"SpecialToken\":{\"id\":\"[SEP]\"}}],\"special_tokens\":{"
        "\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[2]},\"[MASK]\":{\"id\":\"[MASK]\",\"ids\":[4]},"
        "\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[3]}}}",
        NULL));
    CHECK(t != NULL);
    if (t) {
        int tr;
        CHECK_STR_EQ(enc_str(t, "a b a", 5, 1, 4, &tr), "[CLS]@0:0 [MASK]@0:0 a@0:1 [SEP]@0:0");
        CHECK_EQ_INT(tr, 1);
        CHECK_EQ_INT(tok_encode(t, "a", 1, 1, 2, &(tok_encoding){0}, NULL, NULL),
                     BGEICL_ERR_ARG);
        tok_free(t);
    }
}

/* tokenizer.json variants that must fail, with the code and a message part. */
TEST(test_json_errors)
{
    char js[8192], dir[600];
    struct {
        const char *json;
        bgeicl_code code;
        const char *msg;
    } cases[] = {
        {"{", BGEICL_ERR_FORMAT, "invalid JSON"},
        {"[1,2]", BGEICL_ERR_FORMAT, "not a JSON object"},
        {"{\"normalizer\":null}", BGEICL_ERR_FORMAT, "missing field model"},
        {"{\"model\":{\"vocab\":{}}}", BGEICL_ERR_FORMAT, "model.type"},
        {"{\"model\":{\"type\":\"Unigram\",\"vocab\":{}}}", BGEICL_ERR_UNSUPPORTED,
         "model.type"}, /* BPE is tests/unit/test_bpe.c's */
        {"{\"model\":{\"type\":\"WordPiece\"}}", BGEICL_ERR_FORMAT, "model.vocab"},
        {"{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", BGEICL_ERR_FORMAT, "model.vocab"},
        {"{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":-1}}}", BGEICL_ERR_FORMAT,
         "model.vocab"},
        {"{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":1.5}}}", BGEICL_ERR_FORMAT,
         "model.vocab"},
        {"{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}}", BGEICL_ERR_FORMAT,
         "model.unk_token"},
        {"{\"model\":{\"type\":\"WordPiece\",\"unk_token\":7,\"vocab\":{\"a\":0}}}",
         BGEICL_ERR_FORMAT, "model.unk_token"},
        {"{\"model\":{\"type\":\"WordPiece\",\"max_input_chars_per_word\":\"x\","
         "\"vocab\":{\"[UNK]\":0}}}",
         BGEICL_ERR_FORMAT, "max_input_chars_per_word"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        static int sentinel;
        tok_tokenizer *t = (tok_tokenizer *)&sentinel; /* tok_load must reset it */
        bg_err err;
        fresh_dir(dir, sizeof dir);
        write_str(dir, "tokenizer.json", cases[i].json);
        CHECK_EQ_INT(tok_load(dir, &t, &err), cases[i].code);
        CHECK(t == NULL);
        CHECK_STR_CONTAINS(err.message, "tokenizer.json");
        CHECK_STR_CONTAINS(err.message, cases[i].msg);
    }
    /* Component-level failures on an otherwise valid file. */
    struct {
        const char *norm, *pre, *post, *added;
        bgeicl_code code;
        const char *msg;
    } parts[] = {
        {"{\"type\":\"Lowercase\"}", PRE_OK, NULL, NULL, BGEICL_ERR_UNSUPPORTED,
         "normalizer.type"},
        {"{\"lowercase\":true}", PRE_OK, NULL, NULL, BGEICL_ERR_FORMAT, "normalizer.type"},
        {"{\"type\":\"BertNormalizer\",\"lowercase\":\"yes\"}", PRE_OK, NULL, NULL,
         BGEICL_ERR_FORMAT, "normalizer.lowercase"},
        {NORM_OK, "{\"type\":\"Whitespace\"}", NULL, NULL, BGEICL_ERR_UNSUPPORTED,
         "pre_tokenizer.type"},
        {NORM_OK, NULL, NULL, NULL, BGEICL_ERR_UNSUPPORTED, "pre_tokenizer"},
        {NORM_OK, PRE_OK, "{\"type\":\"RobertaProcessing\"}", NULL, BGEICL_ERR_UNSUPPORTED,
         "post_processor.type"},
        {NORM_OK, PRE_OK, "{\"type\":\"TemplateProcessing\"}", NULL, BGEICL_ERR_FORMAT,
         "post_processor.single"},
        {NORM_OK, PRE_OK,
         "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"[X]\"}}]}",
         NULL, BGEICL_ERR_FORMAT, "post_processor.special_tokens"},
        {NORM_OK, PRE_OK, "{\"type\":\"BertProcessing\",\"sep\":[\"[SEP]\",3]}", NULL,
         BGEICL_ERR_FORMAT, "post_processor.cls"},
        {NORM_OK, PRE_OK, NULL, "{}", BGEICL_ERR_FORMAT, "added_tokens"},
        {NORM_OK, PRE_OK, NULL, "[{\"id\":4,\"content\":\"[MASK]\",\"lstrip\":true}]",
         BGEICL_ERR_UNSUPPORTED, "lstrip"},
        {NORM_OK, PRE_OK, NULL, "[{\"id\":4,\"content\":\"[MASK]\",\"normalized\":true}]",
         BGEICL_ERR_UNSUPPORTED, "normalized"},
        {NORM_OK, PRE_OK, NULL, "[{\"id\":4}]", BGEICL_ERR_FORMAT, "added_tokens[].content"},
        {NORM_OK, PRE_OK, NULL, "[{\"content\":\"[X]\"}]", BGEICL_ERR_FORMAT,
         "added_tokens[].id"},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        tok_tokenizer *t = NULL;
        bg_err err;
        fresh_dir(dir, sizeof dir);
        write_str(dir, "tokenizer.json", mini_json(js, sizeof js, MODEL_OK, parts[i].norm,
                                                   parts[i].pre, parts[i].post,
                                                   parts[i].added));
        CHECK_EQ_INT(tok_load(dir, &t, &err), parts[i].code);
        CHECK(t == NULL);
        CHECK_STR_CONTAINS(err.message, "tokenizer.json");
        CHECK_STR_CONTAINS(err.message, parts[i].msg);
    }
}

TEST(test_vocab_txt_fixtures)
{
    char dir[600];
    bg_err err;
    tok_tokenizer *t = NULL;
    static const char vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello \r\nworld\n##s\n"
                                "Hello\n\xc3\xa9\n";
    /* Defaults of BertTokenizerFast, no tokenizer_config.json: lowercase +
     * strip accents; trailing whitespace and "\r" of lines dropped. */
    fresh_dir(dir, sizeof dir);
    write_str(dir, "vocab.txt", vocab);
    t = load_ok(dir);
    CHECK(t != NULL);
    if (t) {
        EXPECT_ENC(t, "Hello worlds \xc3\xa9 [MASK]",
                   "[CLS]@0:0 hello@0:5 world@6:11 ##s@11:12 [UNK]@13:15 [MASK]@16:22 [SEP]@0:0");
        CHECK_EQ_INT(tok_vocab_size(t), 10);
        tok_free(t);
    }
    /* do_lower_case false (strip_accents null follows it), token objects. */
    fresh_dir(dir, sizeof dir);
    write_str(dir, "vocab.txt", vocab);
    write_str(dir, "tokenizer_config.json",
              "{\"do_lower_case\":false,\"unk_token\":{\"content\":\"[UNK]\"},"
              "\"additional_special_tokens\":[\"<extra>\"]}");
    t = load_ok(dir);
    CHECK(t != NULL);
    if (t) {
        EXPECT_ENC(t, "Hello hello \xc3\xa9<extra>",
                   "[CLS]@0:0 Hello@0:5 hello@6:11 \xc3\xa9@12:14 <extra>@14:21 [SEP]@0:0");
        CHECK_EQ_INT(tok_vocab_size(t), 11);
        tok_free(t);
    }
    struct {
        const char *vocab, *config;
        bgeicl_code code;
        const char *msg;
    } bad[] = {
        {NULL, "{}", BGEICL_ERR_IO, "no tokenizer.json or vocab.txt"},
        {vocab, "{\"do_lower_case\":", BGEICL_ERR_FORMAT, "tokenizer_config.json"},
        {vocab, "{\"do_lower_case\":1}", BGEICL_ERR_FORMAT, "do_lower_case"},
        {vocab, "{\"cls_token\":[1]}", BGEICL_ERR_FORMAT, "cls_token"},
        {vocab, "{\"cls_token\":\"<s>\"}", BGEICL_ERR_FORMAT, "<s>"},
        {"[UNK]\n\xff\n", "{}", BGEICL_ERR_FORMAT, "vocab.txt"},
        {"a\nb\n", "{}", BGEICL_ERR_FORMAT, "[UNK]"},
        {"", "{}", BGEICL_ERR_FORMAT, "vocab.txt"},
        {vocab, "{\"added_tokens_decoder\":{\"5\":{\"content\":\"hello\",\"normalized\":true}}}",
         BGEICL_ERR_UNSUPPORTED, "tokenizer_config.json"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fresh_dir(dir, sizeof dir);
        if (bad[i].vocab)
            write_str(dir, "vocab.txt", bad[i].vocab);
        write_str(dir, "tokenizer_config.json", bad[i].config);
        CHECK_EQ_INT(tok_load(dir, &t, &err), bad[i].code);
        CHECK(t == NULL);
        CHECK_STR_CONTAINS(err.message, bad[i].msg);
    }
    CHECK_EQ_INT(tok_load("no/such/model/folder", &t, &err), BGEICL_ERR_IO);
    CHECK_EQ_INT(tok_load(NULL, &t, &err), BGEICL_ERR_ARG);
    CHECK_EQ_INT(tok_load(dir, NULL, &err), BGEICL_ERR_ARG);
    tok_free(NULL);
}

/* ---- allocation failures ------------------------------------------------ */

/* tok_load under "the n-th allocation fails" for n = 0, 1, ... until it
 * succeeds: every failure must be NOMEM (ASan checks for leaks). */
static void load_fail_loop(const char *dir)
{
    int failures = 0;
    for (long n = 0; n < 100000; n++) {
        tok_tokenizer *t = NULL;
        bg_err err;
        bg_fail_after(n);
        bgeicl_code rc = tok_load(dir, &t, &err);
        bg_fail_after(-1);
        if (rc == BGEICL_OK) {
            CHECK(t != NULL);
            tok_free(t);
            break;
        }
        failures++;
        CHECK(t == NULL);
        if (rc != BGEICL_ERR_NOMEM) {
            fprintf(stderr, "allocation %ld of tok_load(%s): code %d: %s\n", n, dir, (int)rc,
                    err.message);
            harness_failures_in_test++;
            break;
        }
    }
    CHECK(failures > 3);
}

TEST(test_load_alloc_failures)
{
    char dir[600], js[8192];
    if (harness_have_model(harness_model_dir()))
        load_fail_loop(harness_model_dir());
    if (harness_have_model(harness_minilm_dir())) {
        fresh_dir(dir, sizeof dir);
        copy_file(harness_minilm_dir(), dir, "vocab.txt");
        write_str(dir, "tokenizer_config.json",
                  "{\"do_lower_case\":true,\"additional_special_tokens\":[\"<x>\",\"<y>\"]}");
        load_fail_loop(dir);
    }
    fresh_dir(dir, sizeof dir);
    write_str(dir, "tokenizer.json", mini_json(js, sizeof js, MODEL_OK, NORM_OK, PRE_OK,
                                               POST_BERT, ADDED_OK));
    load_fail_loop(dir);
}

TEST(test_encode_alloc_failures)
{
    char js[8192];
    /* max_input_chars_per_word over the inline scratch: heap word buffers. */
    char model[1024];
    snprintf(model, sizeof model,
             "{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"max_input_chars_per_word\":300,"
             "\"vocab\":%s}", MINI_VOCAB);
    tok_tokenizer *t = load_mini(mini_json(
        js, sizeof js, model,
        "{\"type\":\"BertNormalizer\",\"strip_accents\":true,\"lowercase\":true}", PRE_OK,
        POST_BERT, ADDED_OK));
    CHECK(t != NULL);
    if (!t)
        return;
    /* Many tokens (the encoding grows), a 40-mark run (the NFD run grows)
     * and a 290-char word of 580 bytes (the word outgrows its inline room). */
    char text[4096];
    size_t o = 0;
    for (int i = 0; i < 200; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "a b, ");
    o += (size_t)snprintf(text + o, sizeof text - o, "e");
    for (int i = 0; i < 40; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, i % 2 ? "\xcc\x81" : "\xcc\x96");
    o += (size_t)snprintf(text + o, sizeof text - o, " ");
    for (int i = 0; i < 290; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "\xd0\xb6");
    char want[16384];
    snprintf(want, sizeof want, "%s", enc_str(t, text, o, 1, 0, NULL));
    CHECK(strstr(want, "e@1000:1001 [UNK]@1082:1662 [SEP]@0:0") != NULL);
    int failures = 0;
    for (long n = 0; n < 1000; n++) {
        tok_encoding e = {0};
        bg_err err;
        bg_fail_after(n);
        bgeicl_code rc = tok_encode(t, text, o, 1, 0, &e, NULL, &err);
        bg_fail_after(-1);
        if (rc == BGEICL_OK) {
            CHECK_STR_EQ(render(t, &e), want);
            tok_encoding_free(&e);
            break;
        }
        failures++;
        CHECK_EQ_INT(rc, BGEICL_ERR_NOMEM);
        CHECK_EQ_INT(e.n, 0);
        tok_encoding_free(&e);
    }
    CHECK(failures >= 3);
    tok_free(t);
}

/* Words longer than the inline scratch, up to a large max_input_chars_per_word. */
TEST(test_long_word_limit)
{
    char js[8192], model[1024];
    snprintf(model, sizeof model,
             "{\"type\":\"WordPiece\",\"max_input_chars_per_word\":1000000000000000,"
             "\"vocab\":%s}", MINI_VOCAB);
    tok_tokenizer *t = load_mini(mini_json(js, sizeof js, model, NORM_OK, PRE_OK, NULL, NULL));
    CHECK(t != NULL);
    if (!t)
        return;
    static char text[20000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = i % 2 ? 'b' : 'a';
    /* "abab...": 'a' then "@@b"? not in this vocab, so one [UNK] for the word. */
    CHECK_STR_EQ(enc_str(t, text, sizeof text, 0, 0, NULL), "[UNK]@0:20000");
    CHECK_STR_EQ(enc_str(t, text, 1, 0, 0, NULL), "a@0:1");
    tok_free(t);
}

/* ---- threads and speed --------------------------------------------------- */

typedef struct {
    const char *text;
    size_t len;
    int ok;
} thread_job;

static void *thread_main(void *arg)
{
    thread_job *j = arg;
    tok_encoding e = {0}, ref = {0};
    j->ok = tok_encode(g_bge, j->text, j->len, 1, 0, &ref, NULL, NULL) == BGEICL_OK;
    for (int i = 0; i < 200 && j->ok; i++) {
        j->ok = tok_encode(g_bge, j->text, j->len, 1, 64, &e, NULL, NULL) == BGEICL_OK &&
                e.n == (ref.n < 64 ? ref.n : 64) &&
                memcmp(e.ids + 1, ref.ids + 1, (e.n - 2) * sizeof *e.ids) == 0;
    }
    tok_encoding_free(&e);
    tok_encoding_free(&ref);
    return NULL;
}

TEST(test_threads)
{
    if (!need_bge())
        return;
    static const char *const texts[] = {
        "The quick brown fox jumps over the lazy dog, again and again and again.",
        "Caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 [SEP] e\xcc\x81",
        "for (int i = 0; i < n; i++) { sum += a[i] * b[i]; } return sum;",
        "tokenization internationalization globalization localization",
    };
    pthread_t th[4];
    thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){texts[i], strlen(texts[i]), 0};
        pthread_create(&th[i], NULL, thread_main, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(jobs[i].ok);
    }
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Throughput on this repository's own C sources (printed, loosely checked). */
TEST(test_speed)
{
    if (!need_bge())
        return;
    static const char *const files[] = {
        "src/tokenizer/tok_encode.c", "src/tokenizer/tok_normalize.c",
        "src/tokenizer/tok_load_json.c", "src/tokenizer/tok_unicode.c",
        "src/tokenizer/tok_wordpiece.c", "src/util/util.c", "include/bgeicl.h",
    };
    char *all = NULL;
    size_t len = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *d;
        size_t n;
        if (bg_read_file(files[i], &d, &n, NULL) != BGEICL_OK)
            continue;
        char *grown = realloc(all, len + n);
        if (grown) {
            memcpy(grown + len, d, n);
            all = grown;
            len += n;
        }
        bg_free(d);
    }
    if (len == 0) {
        printf("tokenizer: speed not measured (run from the repository root)\n");
        return;
    }
    tok_encoding e = {0};
    size_t total = 0, tokens = 0;
    double t0 = cpu_ms();
    while (total < (8u << 20)) {
        CHECK_EQ_INT(tok_encode(g_bge, all, len, 1, 0, &e, NULL, NULL), BGEICL_OK);
        total += len;
        tokens += e.n;
    }
    double ms = cpu_ms() - t0;
    double mbs = total / (ms > 0 ? ms : 1e-3) / 1e3;
    printf("tokenizer: %.1f MB/s of C source on one core (%zu tokens, %.0f ms CPU)\n", mbs,
           tokens, ms);
    CHECK(mbs > 1.0);
    tok_encoding_free(&e);
    free(all);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_root, sizeof g_root, "%s/bgeicl-tok-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
    if (!mkdtemp(g_root)) {
        perror("mkdtemp");
        return 2;
    }
    if (tok_load(harness_model_dir(), &g_bge, NULL) != BGEICL_OK)
        g_bge = NULL; /* need_bge() reports it per test */
    RUN(test_bge_basics);
    RUN(test_bge_words_and_punctuation);
    RUN(test_bge_accents_and_case);
    RUN(test_bge_cjk);
    RUN(test_bge_cleaning);
    RUN(test_bge_long_words);
    RUN(test_bge_special_tokens_in_text);
    RUN(test_bge_empty_and_flags);
    RUN(test_bge_truncation);
    RUN(test_bge_encode_errors);
    RUN(test_minilm_and_vocab_txt);
    RUN(test_mini_settings);
    RUN(test_json_errors);
    RUN(test_vocab_txt_fixtures);
    RUN(test_load_alloc_failures);
    RUN(test_encode_alloc_failures);
    RUN(test_long_word_limit);
    RUN(test_threads);
    RUN(test_speed);
    tok_free(g_bge);
    rm_rf(g_root);
    return harness_summary("tokenizer");
}
