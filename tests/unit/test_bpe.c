/*
 * test_bpe.c - the SentencePiece-style BPE tokenizer (tok_bpe*.c,
 * tok_decode.c) and the decoder ICL assembly (icl/prompt_decoder.c): merge
 * order, byte fallback, the "▁" normalizer and Metaspace, added tokens,
 * decoding, every load error path, allocation-failure loops, and the real
 * bge-en-icl tokenizer folder when it is fetched.
 *
 * Bit-exactness with the tokenizers library over large corpora, and of the
 * ICL assembly with FlagEmbedding's algorithm, is checked by
 * tests/py/test_decoder_tokenizer.py.
 */
#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "icl/prompt_decoder.h"
#include "tokenizer/tok.h"

/* ---- temp folders and fixtures ------------------------------------------- */

static char g_root[512];
static int g_seq;

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static const char *fresh_dir(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%d", g_root, ++g_seq);
    mkdir(buf, 0700);
    return buf;
}

static void write_str(const char *dir, const char *name, const char *s)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
    fputs(s, f);
    fclose(f);
}

/* vocab: <unk> <s> </s>, the 256 byte tokens (3..258), then these. */
static const char *const WORDS[] = {"\xe2\x96\x81", "a", "b", "c", "ab", "\xe2\x96\x81" "a",
                                    "abc", "\xe2\x96\x81" "ab", "x"};
#define W0 259 /* id of WORDS[0] */

static size_t vocab_json(char *o, size_t cap, int with_bytes)
{
    size_t n = (size_t)snprintf(o, cap, "{\"<unk>\":0,\"<s>\":1,\"</s>\":2");
    for (int b = 0; with_bytes && b < 256; b++)
        n += (size_t)snprintf(o + n, cap - n, ",\"<0x%02X>\":%d", b, 3 + b);
    for (size_t i = 0; i < sizeof WORDS / sizeof WORDS[0]; i++)
        n += (size_t)snprintf(o + n, cap - n, ",\"%s\":%zu", WORDS[i], W0 + i);
    return n + (size_t)snprintf(o + n, cap - n, "}");
}

#define MERGES_OK                                                                       \
    "[[\"a\",\"b\"],\"\xe2\x96\x81 a\",[\"ab\",\"c\"],[\"\xe2\x96\x81\",\"ab\"]]"
#define NORM_LLAMA                                                                      \
    "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\xe2\x96\x81\"}," \
    "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xe2\x96\x81\"}]}"
#define POST_BOS_EOS                                                                    \
    "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\"}},"  \
    "{\"Sequence\":{\"id\":\"A\"}},{\"SpecialToken\":{\"id\":\"</s>\"}}],\"special_tokens\":{" \
    "\"<s>\":{\"id\":\"<s>\",\"ids\":[1]},\"</s>\":{\"id\":\"</s>\",\"ids\":[2]}}}"
#define ADDED_OK                                                                        \
    "[{\"id\":0,\"content\":\"<unk>\",\"special\":true},{\"id\":1,\"content\":\"<s>\"," \
    "\"special\":true},{\"id\":2,\"content\":\"</s>\",\"special\":true}]"
#define DEC_LLAMA                                                                       \
    "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":"  \
    "\"\xe2\x96\x81\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"  \
    "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}"

typedef struct fixture {
    const char *model_extra; /* extra "key":value pairs of model, or NULL */
    const char *merges;      /* NULL: MERGES_OK */
    const char *norm, *pre, *post, *added, *dec;
    int no_bytes; /* leave the byte tokens out of the vocabulary */
} fixture;

static char g_json[65536];

static const char *fixture_json(const fixture *f)
{
    char vocab[16384];
    vocab_json(vocab, sizeof vocab, !f->no_bytes);
    snprintf(g_json, sizeof g_json,
             /* model_extra first: cJSON finds the first of duplicate keys */
             "{\"model\":{%s%s\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"byte_fallback\":%s,"
             "\"fuse_unk\":true,\"vocab\":%s,\"merges\":%s},\"normalizer\":%s,"
             "\"pre_tokenizer\":%s,\"post_processor\":%s,\"added_tokens\":%s,\"decoder\":%s}",
             f->model_extra ? f->model_extra : "", f->model_extra ? "," : "",
             f->no_bytes ? "false" : "true", vocab, f->merges ? f->merges : MERGES_OK,
             f->norm ? f->norm : "null", f->pre ? f->pre : "null",
             f->post ? f->post : "null", f->added ? f->added : "null",
             f->dec ? f->dec : "null");
    return g_json;
}

static const fixture LLAMA = {NULL, NULL, NORM_LLAMA, NULL, POST_BOS_EOS, ADDED_OK, DEC_LLAMA, 0};

static tok_tokenizer *load_fixture(const fixture *f, char *dir, size_t cap)
{
    tok_tokenizer *t = NULL;
    bg_err err;
    fresh_dir(dir, cap);
    write_str(dir, "tokenizer.json", fixture_json(f));
    if (tok_load(dir, &t, &err) != BGEICL_OK) {
        fprintf(stderr, "tok_load: %s\n", err.message);
        return NULL;
    }
    return t;
}

/* ---- rendering ----------------------------------------------------------- */

static char g_out[16384];

/* "token@start:end ..." with "▁" shown as "_", or "error <code>". */
static const char *enc_str(const tok_tokenizer *t, const char *text, int special, size_t max)
{
    tok_encoding e = {0};
    bg_err err;
    bgeicl_code rc = tok_encode(t, text, strlen(text), special, max, &e, NULL, &err);
    size_t o = 0;
    g_out[0] = '\0';
    if (rc != BGEICL_OK)
        snprintf(g_out, sizeof g_out, "error %d", (int)rc);
    for (size_t i = 0; rc == BGEICL_OK && i < e.n && o < sizeof g_out - 64; i++) {
        const char *s = tok_id_to_token(t, e.ids[i]);
        o += (size_t)snprintf(g_out + o, sizeof g_out - o, "%s", i ? " " : "");
        for (; s && *s; s++) {
            if (strncmp(s, "\xe2\x96\x81", 3) == 0)
                g_out[o++] = '_', s += 2;
            else
                g_out[o++] = *s;
        }
        o += (size_t)snprintf(g_out + o, sizeof g_out - o, "@%u:%u", (unsigned)e.start[i],
                              (unsigned)e.end[i]);
    }
    tok_encoding_free(&e);
    return g_out;
}

#define EXPECT_STR(got, want)                                                                \
    do {                                                                                     \
        const char *g_ = (got), *w_ = (want);                                                \
        if (strcmp(g_, w_) != 0) {                                                           \
            fprintf(stderr, "%s:%d:\n   got: %s\n  want: %s\n", __FILE__, __LINE__, g_, w_); \
            harness_failures_in_test++;                                                      \
        }                                                                                    \
    } while (0)

/* ---- encoding ------------------------------------------------------------ */

TEST(test_merge_order_and_offsets)
{
    char dir[600];
    tok_tokenizer *t = load_fixture(&LLAMA, dir, sizeof dir);
    CHECK(t != NULL);
    if (!t)
        return;
    /* ▁ a b c: (a,b) has rank 0, then (ab,c) rank 2 beats (▁,ab) rank 3. */
    EXPECT_STR(enc_str(t, "abc", 1, 0), "<s>@0:0 _@0:1 abc@0:3 </s>@0:0");
    /* ▁ab wins when no c follows; a space becomes a "▁" of its own. */
    EXPECT_STR(enc_str(t, "ab ab", 0, 0), "_ab@0:2 _ab@2:5");
    /* Byte fallback: é is not in the vocabulary; each byte token spans it. */
    EXPECT_STR(enc_str(t, "\xc3\xa9", 0, 0), "_@0:2 <0xC3>@0:2 <0xA9>@0:2");
    /* Added tokens split the text; every segment gets its own "▁". */
    EXPECT_STR(enc_str(t, "a<s>b</s>", 0, 0), "_a@0:1 <s>@1:4 _@4:5 b@4:5 </s>@5:9");
    EXPECT_STR(enc_str(t, "", 1, 0), "<s>@0:0 </s>@0:0");
    EXPECT_STR(enc_str(t, " ", 0, 0), "_@0:1 _@0:1");
    /* Truncation counts the specials. */
    EXPECT_STR(enc_str(t, "ab ab ab", 1, 4), "<s>@0:0 _ab@0:2 _ab@2:5 </s>@0:0");
    EXPECT_STR(enc_str(t, "a\xff", 0, 0), "error 6");
    CHECK_EQ_INT(tok_vocab_size(t), W0 + sizeof WORDS / sizeof WORDS[0]);
    CHECK_EQ_INT(tok_cls_id(t), 1);
    CHECK_EQ_INT(tok_sep_id(t), 2);
    tok_free(t);
}

TEST(test_unk_without_byte_fallback)
{
    char dir[600];
    fixture f = LLAMA;
    f.no_bytes = 1;
    tok_tokenizer *t = load_fixture(&f, dir, sizeof dir);
    CHECK(t != NULL);
    if (!t)
        return;
    /* fuse_unk: the two unknown chars become one <unk> spanning both. */
    EXPECT_STR(enc_str(t, "\xc3\xa9\xc3\xa8" "a", 0, 0), "_@0:2 <unk>@0:4 a@4:5");
    tok_free(t);
}

TEST(test_metaspace)
{
    char dir[600];
    fixture f = LLAMA;
    f.norm = NULL;
    f.pre = "{\"type\":\"Metaspace\",\"replacement\":\"\xe2\x96\x81\",\"prepend_scheme\":\"first\","
            "\"split\":true}";
    tok_tokenizer *t = load_fixture(&f, dir, sizeof dir);
    CHECK(t != NULL);
    if (t) {
        /* Split into words before each "▁"; "first": no "▁" after <s>. */
        EXPECT_STR(enc_str(t, "a b<s>a", 0, 0), "_a@0:1 _@1:2 b@2:3 <s>@3:6 a@6:7");
        /* A text that starts with a space gets no second "▁". */
        EXPECT_STR(enc_str(t, " a", 0, 0), "_a@0:2");
        tok_free(t);
    }
    f.pre = "{\"type\":\"Metaspace\",\"replacement\":\"\xe2\x96\x81\",\"add_prefix_space\":false,"
            "\"split\":false}";
    t = load_fixture(&f, dir, sizeof dir);
    CHECK(t != NULL);
    if (t) {
        EXPECT_STR(enc_str(t, "ab ab", 0, 0), "ab@0:2 _ab@2:5");
        tok_free(t);
    }
}

/* ---- decoding ------------------------------------------------------------ */

static const char *dec_str(const tok_tokenizer *t, const int32_t *ids, size_t n)
{
    char *s = NULL;
    bg_err err;
    bgeicl_code rc = tok_decode(t, ids, n, &s, NULL, &err);
    snprintf(g_out, sizeof g_out, "%s", rc == BGEICL_OK ? s : "error");
    if (rc != BGEICL_OK)
        snprintf(g_out, sizeof g_out, "error %d", (int)rc);
    bg_free(s);
    return g_out;
}

TEST(test_decode)
{
    char dir[600];
    tok_tokenizer *t = load_fixture(&LLAMA, dir, sizeof dir);
    CHECK(t != NULL);
    if (!t)
        return;
    int32_t abc[] = {1, W0, W0 + 6, W0 + 7, 2};
    EXPECT_STR(dec_str(t, abc, 5), "<s> abc ab</s>");
    int32_t e_acute[] = {W0 + 7, 3 + 0xC3, 3 + 0xA9, W0 + 1};
    EXPECT_STR(dec_str(t, e_acute, 4), "ab\xc3\xa9" "a");
    int32_t broken[] = {W0, 3 + 0xC3, W0 + 1, 3 + 0xA9, 999999}; /* unknown ids are skipped */
    EXPECT_STR(dec_str(t, broken, 5), "\xef\xbf\xbd" "a\xef\xbf\xbd");
    EXPECT_STR(dec_str(t, NULL, 0), "");
    tok_free(t);
    fixture f = LLAMA;
    f.dec = "{\"type\":\"ByteLevel\"}"; /* loads, but decoding is not supported */
    t = load_fixture(&f, dir, sizeof dir);
    CHECK(t != NULL);
    if (t) {
        EXPECT_STR(dec_str(t, abc, 5), "error 3");
        tok_free(t);
    }
}

/* ---- load errors --------------------------------------------------------- */

TEST(test_load_errors)
{
    struct {
        fixture f;
        bgeicl_code code;
        const char *msg;
    } cases[] = {
        {{NULL, "{}", NORM_LLAMA, 0, 0, 0, 0, 0}, BGEICL_ERR_FORMAT, "model.merges must be"},
        {{NULL, "[\"ab\"]", 0, 0, 0, 0, 0, 0}, BGEICL_ERR_FORMAT, "model.merges[0]"},
        {{NULL, "[\"a b\",\"a b c\"]", 0, 0, 0, 0, 0, 0}, BGEICL_ERR_FORMAT, "model.merges[1]"},
        {{NULL, "[[\"a\"]]", 0, 0, 0, 0, 0, 0}, BGEICL_ERR_FORMAT, "model.merges[0]"},
        {{NULL, "[[\"a\",7]]", 0, 0, 0, 0, 0, 0}, BGEICL_ERR_FORMAT, "model.merges[0]"},
        {{NULL, "[\"q b\"]", 0, 0, 0, 0, 0, 0}, BGEICL_ERR_FORMAT, "\"q\" is not in model.vocab"},
        {{NULL, "[\"b c\"]", 0, 0, 0, 0, 0, 0}, BGEICL_ERR_FORMAT, "merged token \"bc\""},
        {{"\"unk_token\":\"<nope>\"", 0, 0, 0, 0, 0, 0, 0}, BGEICL_ERR_FORMAT, "model.unk_token"},
        {{"\"continuing_subword_prefix\":\"##\"", 0, 0, 0, 0, 0, 0, 0}, BGEICL_ERR_UNSUPPORTED,
         "continuing_subword_prefix"},
        {{"\"end_of_word_suffix\":\"</w>\"", 0, 0, 0, 0, 0, 0, 0}, BGEICL_ERR_UNSUPPORTED,
         "end_of_word_suffix"},
        {{"\"dropout\":0.1", 0, 0, 0, 0, 0, 0, 0}, BGEICL_ERR_UNSUPPORTED, "dropout"},
        {{"\"ignore_merges\":true", 0, 0, 0, 0, 0, 0, 0}, BGEICL_ERR_UNSUPPORTED, "ignore_merges"},
        {{"\"byte_fallback\":\"yes\"", 0, 0, 0, 0, 0, 0, 0}, BGEICL_ERR_FORMAT, "byte_fallback"},
        {{NULL, NULL, "{\"type\":\"Lowercase\"}", 0, 0, 0, 0, 0}, BGEICL_ERR_UNSUPPORTED,
         "normalizer.type"},
        {{NULL, NULL, "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" +\"},\"content\":\"_\"}",
          0, 0, 0, 0, 0}, BGEICL_ERR_UNSUPPORTED, "normalizer.pattern"},
        {{NULL, NULL, "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\","
                      "\"prepend\":\"x\"},{\"type\":\"Prepend\",\"prepend\":\"y\"}]}",
          0, 0, 0, 0, 0}, BGEICL_ERR_UNSUPPORTED, "normalizer.type Prepend"},
        {{NULL, NULL, "{\"type\":\"Prepend\"}", 0, 0, 0, 0, 0}, BGEICL_ERR_FORMAT,
         "normalizer.prepend"},
        {{NULL, NULL, NULL, "{\"type\":\"ByteLevel\"}", 0, 0, 0, 0}, BGEICL_ERR_UNSUPPORTED,
         "pre_tokenizer.type"},
        {{NULL, NULL, NULL, "{\"type\":\"Metaspace\"}", 0, 0, 0, 0}, BGEICL_ERR_FORMAT,
         "pre_tokenizer.replacement"},
        {{NULL, NULL, NULL, "{\"type\":\"Metaspace\",\"replacement\":\"ab\"}", 0, 0, 0, 0},
         BGEICL_ERR_FORMAT, "one character"},
        {{NULL, NULL, NULL, "{\"type\":\"Metaspace\",\"replacement\":\"_\","
                            "\"prepend_scheme\":\"sometimes\"}", 0, 0, 0, 0},
         BGEICL_ERR_UNSUPPORTED, "prepend_scheme"},
        {{NULL, NULL, NULL, NULL, NULL, NULL, "{\"type\":\"Strip\",\"content\":\"xy\"}", 0},
         BGEICL_ERR_FORMAT, "decoder.content"},
    };
    char dir[600];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        static int sentinel;
        tok_tokenizer *t = (tok_tokenizer *)&sentinel;
        bg_err err;
        fresh_dir(dir, sizeof dir);
        write_str(dir, "tokenizer.json", fixture_json(&cases[i].f));
        bgeicl_code rc = tok_load(dir, &t, &err);
        if (rc != cases[i].code)
            fprintf(stderr, "load error case %zu (%s)\n", i, cases[i].msg);
        CHECK_EQ_INT(rc, cases[i].code);
        CHECK(t == NULL);
        if (rc != BGEICL_OK)
            CHECK_STR_CONTAINS(err.message, cases[i].msg);
        if (rc == BGEICL_OK)
            tok_free(t);
    }
    /* A vocabulary without the byte tokens cannot do byte fallback. */
    fixture f = LLAMA;
    f.no_bytes = 1;
    fixture_json(&f);
    char *p = strstr(g_json, "\"byte_fallback\":false");
    memcpy(p, "\"byte_fallback\":true ", 21);
    tok_tokenizer *t = NULL;
    bg_err err;
    fresh_dir(dir, sizeof dir);
    write_str(dir, "tokenizer.json", g_json);
    CHECK_EQ_INT(tok_load(dir, &t, &err), BGEICL_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(err.message, "<0xNN>");
    /* Other model types stay unsupported. */
    fresh_dir(dir, sizeof dir);
    write_str(dir, "tokenizer.json", "{\"model\":{\"type\":\"WordLevel\",\"vocab\":{\"a\":0}}}");
    CHECK_EQ_INT(tok_load(dir, &t, &err), BGEICL_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(err.message, "model.type WordLevel");
    fresh_dir(dir, sizeof dir);
    write_str(dir, "tokenizer.json", "{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}");
    CHECK_EQ_INT(tok_load(dir, &t, &err), BGEICL_ERR_FORMAT);
    CHECK_STR_CONTAINS(err.message, "model.vocab is empty");
}

/* ---- allocation failures ------------------------------------------------- */

TEST(test_load_alloc_failures)
{
    char dir[600];
    fresh_dir(dir, sizeof dir);
    write_str(dir, "tokenizer.json", fixture_json(&LLAMA));
    int failures = 0;
    for (long n = 0; n < 100000; n++) {
        tok_tokenizer *t = NULL;
        bg_err err;
        bg_fail_after(n);
        bgeicl_code rc = tok_load(dir, &t, &err);
        bg_fail_after(-1);
        if (rc == BGEICL_OK) {
            tok_free(t);
            break;
        }
        failures++;
        CHECK(t == NULL);
        CHECK_EQ_INT(rc, BGEICL_ERR_NOMEM);
        if (rc != BGEICL_ERR_NOMEM)
            break;
    }
    CHECK(failures > 5);
}

/* The text: many segments, byte fallback, and a long merge run. */
static char *long_text(size_t *len)
{
    size_t cap = 64 * 1024, o = 0;
    char *s = malloc(cap);
    for (int i = 0; i < 300; i++)
        o += (size_t)snprintf(s + o, cap - o, "abc ab \xc3\xa9<s>");
    for (int i = 0; i < 2000; i++)
        s[o++] = (char)"abc"[i % 3];
    s[o] = '\0';
    *len = o;
    return s;
}

TEST(test_encode_decode_alloc_failures)
{
    char dir[600];
    tok_tokenizer *t = load_fixture(&LLAMA, dir, sizeof dir);
    CHECK(t != NULL);
    if (!t)
        return;
    size_t len;
    char *text = long_text(&len);
    tok_encoding want = {0}, e = {0};
    CHECK_EQ_INT(tok_encode(t, text, len, 1, 0, &want, NULL, NULL), BGEICL_OK);
    int failures = 0;
    for (long n = 0; n < 10000; n++) {
        bg_fail_after(n);
        bgeicl_code rc = tok_encode(t, text, len, 1, 0, &e, NULL, NULL);
        bg_fail_after(-1);
        if (rc == BGEICL_OK) {
            CHECK_EQ_INT(e.n, want.n);
            CHECK(memcmp(e.ids, want.ids, want.n * sizeof *want.ids) == 0);
            break;
        }
        failures++;
        CHECK_EQ_INT(rc, BGEICL_ERR_NOMEM);
        CHECK_EQ_INT(e.n, 0);
    }
    CHECK(failures >= 3);
    char *ref = NULL, *s = NULL;
    CHECK_EQ_INT(tok_decode(t, want.ids, want.n, &ref, NULL, NULL), BGEICL_OK);
    failures = 0;
    for (long n = 0; n < 100000 && ref; n++) {
        bg_fail_after(n);
        bgeicl_code rc = tok_decode(t, want.ids, want.n, &s, NULL, NULL);
        bg_fail_after(-1);
        if (rc == BGEICL_OK) {
            CHECK(strcmp(s, ref) == 0);
            break;
        }
        failures++;
        CHECK_EQ_INT(rc, BGEICL_ERR_NOMEM);
        CHECK(s == NULL);
    }
    CHECK(failures >= 3);
    bg_free(ref);
    bg_free(s);
    tok_encoding_free(&want);
    tok_encoding_free(&e);
    free(text);
    tok_free(t);
}

TEST(test_icl_alloc_failures)
{
    char dir[600];
    tok_tokenizer *t = load_fixture(&LLAMA, dir, sizeof dir);
    CHECK(t != NULL);
    if (!t)
        return;
    const char *eq[] = {"ab c", "\xc3\xa9"}, *er[] = {"abc abc", "a"};
    icl_prompt p = {"ab", eq, er, 2, "abc ab abc ab abc", 17, 1};
    icl_decoder_tokens want, out;
    bg_err err;
    CHECK_EQ_INT(icl_decoder_assemble(t, &p, 20, &want, &err), BGEICL_OK);
    CHECK(want.query_cut == 1);
    CHECK(want.enc.n > 0 && want.enc.ids[0] == 1 && want.enc.ids[want.enc.n - 1] == 2);
    CHECK_EQ_INT(icl_decoder_assemble(t, &p, 3, &out, &err), BGEICL_ERR_ARG);
    CHECK_STR_CONTAINS(err.message, "query_max_len");
    int failures = 0;
    for (long n = 0; n < 100000; n++) {
        bg_fail_after(n);
        bgeicl_code rc = icl_decoder_assemble(t, &p, 20, &out, NULL);
        bg_fail_after(-1);
        if (rc == BGEICL_OK) {
            CHECK(strcmp(out.text, want.text) == 0);
            CHECK_EQ_INT(out.enc.n, want.enc.n);
            icl_decoder_tokens_free(&out);
            break;
        }
        failures++;
        CHECK_EQ_INT(rc, BGEICL_ERR_NOMEM);
        CHECK(out.text == NULL && out.enc.n == 0);
    }
    CHECK(failures >= 5);
    icl_decoder_tokens_free(&want);
    tok_free(t);
}

/* ---- the real tokenizer -------------------------------------------------- */

static const char *icl_dir(void)
{
    const char *d = getenv("BGEICL_TEST_ICL_TOKENIZER_DIR");
    return d ? d : "models/bge-en-icl-tokenizer";
}

/* 1 when the fetched folder is there (see harness_have_file). */
static int have_icl_tokenizer(void)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/tokenizer.json", icl_dir());
    return harness_have_file(p);
}

TEST(test_bge_en_icl_tokenizer)
{
    if (!have_icl_tokenizer())
        return;
    tok_tokenizer *t = NULL;
    bg_err err;
    CHECK_EQ_INT(tok_load(icl_dir(), &t, &err), BGEICL_OK);
    if (!t)
        return;
    CHECK_EQ_INT(tok_vocab_size(t), 32003);
    CHECK_EQ_INT(tok_token_to_id(t, "<s>"), 1);
    CHECK_EQ_INT(tok_token_to_id(t, "<instruct>"), 32000);
    CHECK_EQ_INT(tok_token_to_id(t, "<response>"), 32002);
    EXPECT_STR(enc_str(t, "Hello world", 1, 0), "<s>@0:0 _Hello@0:5 _world@5:11 </s>@0:0");
    /* A private-use char is in no vocabulary: byte fallback. */
    EXPECT_STR(enc_str(t, "<query>\xee\x80\x80", 0, 0),
               "<query>@0:7 _@7:10 <0xEE>@7:10 <0x80>@7:10 <0x80>@7:10");
    /* One 1 MB word: the heap keeps the merges O(n log n). */
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)"abcdefgh"[(i * 7 + i / 13) % 8];
    big[n] = '\0';
    tok_encoding e = {0};
    double t0 = bg_now_ms();
    CHECK_EQ_INT(tok_encode(t, big, n, 1, 0, &e, NULL, NULL), BGEICL_OK);
    double ms = bg_now_ms() - t0;
    printf("bpe: 1 MB without spaces -> %zu tokens in %.0f ms (%.1f MB/s)\n", e.n, ms,
           1.0 / (ms / 1e3));
    CHECK(ms < 30000); /* a guard against quadratic time, not a benchmark */
    tok_encoding_free(&e);
    free(big);
    tok_free(t);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_root, sizeof g_root, "%s/bgeicl-bpe-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
    if (!mkdtemp(g_root)) {
        perror("mkdtemp");
        return 2;
    }
    RUN(test_merge_order_and_offsets);
    RUN(test_unk_without_byte_fallback);
    RUN(test_metaspace);
    RUN(test_decode);
    RUN(test_load_errors);
    RUN(test_load_alloc_failures);
    RUN(test_encode_decode_alloc_failures);
    RUN(test_icl_alloc_failures);
    RUN(test_bge_en_icl_tokenizer);
    nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return harness_summary("bpe");
}
