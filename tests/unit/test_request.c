/*
 * test_request.c - request-body parsing and validation (src/server/request.c).
 */
#include <cJSON.h>
#include <math.h>

#include "harness.h"
#include "server/request.h"
#include "util/util.h"

enum { EMB, EMBED, TOK };

static const req_limits LIM = {
    .max_inputs = 4, .max_input_bytes = 16, .max_input_tokens = 8, .max_dimensions = 384};

/* Parses from an exact-size copy (no NUL after it) so overreads show under ASan. */
static int parse(int which, const char *body, size_t len, const req_limits *lim,
                 req_embeddings *e, req_embed *b, req_tokenize *t, req_error *err)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, body, len);
    int st = which == EMB   ? req_parse_embeddings(copy, len, lim, e, err)
             : which == EMBED ? req_parse_embed(copy, len, lim, b, err)
                              : req_parse_tokenize(copy, len, lim, t, err);
    free(copy);
    return st;
}

typedef struct {
    int which;
    const char *body;
    size_t len; /* 0: strlen(body) */
    int status;
    const char *param;
    const char *code;
    const char *msg;
} bad_case;

#define E400(b, p, c, m) {EMB, b, 0, 400, p, c, m}
static const bad_case BAD[] = {
    /* body */
    E400("", "", "invalid_json", "not valid JSON"),
    E400("{", "", "invalid_json", "not valid JSON"),
    E400("{\"input\":\"a\",}", "", "invalid_json", "not valid JSON"),
    E400("{\"input\":\"a\"} x", "", "invalid_json", "trailing"),
    E400("\xff{}", "", "invalid_json", "not valid JSON"),
    E400("{\"input\":\"a\",\"user\":\"\xff\"}", "", "invalid_json", "UTF-8"),
    E400("{\"input\":\"a\",\"zzz\":\"\xc0\x80\"}", "", "invalid_json", "UTF-8"),
    {EMB, "{\"input\":\"a\0\"}", 15, 400, "", "invalid_json", "NUL byte"},
    E400("{\"input\":\"a\\u0000b\"}", "", "invalid_value", "\\u0000"),
    E400("{\"input\":\"a\",\"user\":\"\\u0000\"}", "", "invalid_value", "\\u0000"),
    E400("[1]", "", "invalid_type", "must be a JSON object"),
    E400("\"input\"", "", "invalid_type", "must be a JSON object"),
    E400("null", "", "invalid_type", "must be a JSON object"),
    /* input */
    E400("{}", "input", "missing_field", "'input' is required"),
    E400("{\"Input\":\"a\"}", "input", "missing_field", "'input' is required"),
    E400("{\"input\":\"\"}", "input", "invalid_value", "empty string"),
    E400("{\"input\":[]}", "input", "invalid_value", "empty array"),
    E400("{\"input\":null}", "input", "invalid_type", "must not be null"),
    E400("{\"input\":5}", "input", "invalid_type", "must be a string"),
    E400("{\"input\":{}}", "input", "invalid_type", "must be a string"),
    E400("{\"input\":true}", "input", "invalid_type", "must be a string"),
    E400("{\"input\":[\"a\",\"b\",\"c\",4]}", "input", "invalid_type", "input[3] must be a string"),
    E400("{\"input\":[\"a\",null]}", "input", "invalid_type", "input[1] must be a string"),
    E400("{\"input\":[\"a\",\"\"]}", "input", "invalid_value", "input[1] must not be an empty"),
    E400("{\"input\":[\"a\",[\"x\"]]}", "input", "invalid_type", "input[1] must be a string"),
    E400("{\"input\":[\"a\",{}]}", "input", "invalid_type", "input[1] must be a string"),
    E400("{\"input\":\"\xc3\x28\"}", "input", "invalid_utf8", "'input' is not valid UTF-8"),
    E400("{\"input\":[\"ok\",\"\xed\xa0\x80\"]}", "input", "invalid_utf8",
         "input[1] is not valid UTF-8"),
    E400("{\"input\":\"\\ud800\"}", "", "invalid_json", "not valid JSON"),
    /* token ids */
    E400("{\"input\":[[1,2],\"a\"]}", "input", "invalid_type", "input[1] must be an array of token ids"),
    E400("{\"input\":[[1,-1]]}", "input", "invalid_value", "input[0][1] must be a token id"),
    E400("{\"input\":[[2147483648]]}", "input", "invalid_value", "input[0][0] must be a token id"),
    E400("{\"input\":[[1.5]]}", "input", "invalid_value", "input[0][0] must be a token id"),
    E400("{\"input\":[[1e999]]}", "input", "invalid_value", "input[0][0] must be a token id"),
    E400("{\"input\":[[\"1\"]]}", "input", "invalid_type", "input[0][0] must be a token id"),
    E400("{\"input\":[[1],[]]}", "input", "invalid_value", "input[1] must not be empty"),
    E400("{\"input\":[[1],[[2]]]}", "input", "invalid_type", "input[1][0] must be a token id"),
    /* optional fields */
    E400("{\"input\":\"a\",\"model\":5}", "model", "invalid_type", "'model' must be a string"),
    E400("{\"input\":\"a\",\"model\":\"\xff\"}", "model", "invalid_utf8", "not valid UTF-8"),
    E400("{\"input\":\"a\",\"encoding_format\":5}", "encoding_format", "invalid_type", "must be a string"),
    E400("{\"input\":\"a\",\"encoding_format\":\"int8\"}", "encoding_format", "invalid_value",
         "\"float\" or \"base64\""),
    E400("{\"input\":\"a\",\"dimensions\":\"384\"}", "dimensions", "invalid_type", "integer"),
    E400("{\"input\":\"a\",\"dimensions\":0}", "dimensions", "invalid_value", "from 1 to 384"),
    E400("{\"input\":\"a\",\"dimensions\":385}", "dimensions", "invalid_value", "from 1 to 384"),
    E400("{\"input\":\"a\",\"dimensions\":-3}", "dimensions", "invalid_value", "from 1 to 384"),
    E400("{\"input\":\"a\",\"dimensions\":12.5}", "dimensions", "invalid_value", "from 1 to 384"),
    E400("{\"input\":\"a\",\"dimensions\":1e999}", "dimensions", "invalid_value", "from 1 to 384"),
    E400("{\"input\":\"a\",\"dimensions\":-1e400}", "dimensions", "invalid_value", "from 1 to 384"),
    E400("{\"input\":\"a\",\"dimensions\":18446744073709551616}", "dimensions", "invalid_value",
         "from 1 to 384"),
    E400("{\"input\":\"a\",\"dimensions\":true}", "dimensions", "invalid_type", "integer"),
    E400("{\"input\":\"a\",\"user\":5}", "user", "invalid_type", "'user' must be a string"),
    E400("{\"input\":\"a\",\"input_type\":\"passage\"}", "input_type", "invalid_value",
         "\"document\" or \"query\""),
    E400("{\"input\":\"a\",\"input_type\":1}", "input_type", "invalid_type", "must be a string"),
    E400("{\"input\":\"a\",\"truncate\":\"yes\"}", "truncate", "invalid_type", "must be a boolean"),
    E400("{\"input\":\"a\",\"truncate\":1}", "truncate", "invalid_type", "must be a boolean"),
    E400("{\"input\":\"a\",\"enable_icl\":1}", "enable_icl", "invalid_type", "must be a boolean"),
    E400("{\"input\":\"a\",\"language\":5}", "language", "invalid_type", "must be a string"),
    E400("{\"input\":\"a\",\"language\":\"\xed\xbf\xbf\"}", "language", "invalid_utf8", "UTF-8"),
    /* icl_context */
    E400("{\"input\":\"a\",\"icl_context\":\"x\"}", "icl_context", "invalid_type", "must be an object"),
    E400("{\"input\":\"a\",\"icl_context\":[]}", "icl_context", "invalid_type", "must be an object"),
    E400("{\"input\":\"a\",\"icl_context\":{\"instruction\":5}}", "icl_context.instruction",
         "invalid_type", "must be a string"),
    E400("{\"input\":\"a\",\"icl_context\":{\"examples\":\"x\"}}", "icl_context.examples",
         "invalid_type", "must be an array"),
    E400("{\"input\":\"a\",\"icl_context\":{\"examples\":[\"q\",1]}}", "icl_context.examples",
         "invalid_type", "icl_context.examples[1] must be a string or"),
    E400("{\"input\":\"a\",\"icl_context\":{\"examples\":[{\"response\":\"r\"}]}}",
         "icl_context.examples", "missing_field", "examples[0].query' is required"),
    E400("{\"input\":\"a\",\"icl_context\":{\"examples\":[{\"query\":5}]}}",
         "icl_context.examples", "invalid_type", "examples[0].query' must be a string"),
    E400("{\"input\":\"a\",\"icl_context\":{\"examples\":[\"x\",{\"query\":\"q\",\"response\":[]}]}}",
         "icl_context.examples", "invalid_type", "examples[1].response' must be a string"),
    E400("{\"input\":\"a\",\"icl_context\":{\"examples\":[\"\xf8\x88\x80\x80\x80\"]}}",
         "icl_context.examples", "invalid_utf8", "examples[0] is not valid UTF-8"),
    E400("{\"input\":\"a\",\"icl_context\":{\"language\":1}}", "icl_context.language",
         "invalid_type", "must be a string"),
    E400("{\"input\":\"a\",\"icl_context\":{\"enable_context_learning\":\"no\"}}",
         "icl_context.enable_context_learning", "invalid_type", "must be a boolean"),
    E400("{\"input\":\"a\",\"icl_context\":{\"similarity_score\":\"high\"}}",
         "icl_context.similarity_score", "invalid_type", "must be a number"),
    E400("{\"input\":\"a\",\"icl_context\":{\"similarity_score\":1e999}}",
         "icl_context.similarity_score", "invalid_value", "out of range"),
    E400("{\"input\":\"a\",\"icl_context\":{\"context_processing_time\":true}}",
         "icl_context.context_processing_time", "invalid_type", "must be a number"),
    /* limits: 413 */
    {EMB, "{\"input\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", 0, 413, "input", "too_many_inputs",
     "5 inputs, over the limit of 4"},
    {EMB, "{\"input\":\"aaaaaaaaaaaaaaaaa\"}", 0, 413, "input", "input_too_long",
     "17 bytes long, over the limit of 16"},
    {EMB, "{\"input\":[\"a\",\"aaaaaaaaaaaaaaaaa\"]}", 0, 413, "input", "input_too_long",
     "input[1] is 17 bytes"},
    {EMB, "{\"input\":[[1],[1,2,3,4,5,6,7,8,9]]}", 0, 413, "input", "input_too_long",
     "input[1] has 9 tokens"},
    {EMB, "{\"input\":[[1],[1],[1],[1],[1]]}", 0, 413, "input", "too_many_inputs", "5 inputs"},
    /* /embed */
    {EMBED, "{}", 0, 400, "inputs", "missing_field", "'inputs' is required"},
    {EMBED, "{\"input\":\"a\"}", 0, 400, "inputs", "missing_field", "'inputs' is required"},
    {EMBED, "{\"inputs\":\"\"}", 0, 400, "inputs", "invalid_value", "empty string"},
    {EMBED, "{\"inputs\":[1]}", 0, 400, "inputs", "invalid_type", "inputs[0] must be a string"},
    {EMBED, "{\"inputs\":[[1]]}", 0, 400, "inputs", "invalid_type", "inputs[0] must be a string"},
    {EMBED, "{\"inputs\":{}}", 0, 400, "inputs", "invalid_type", "or an array of strings"},
    {EMBED, "{\"inputs\":\"a\",\"normalize\":\"x\"}", 0, 400, "normalize", "invalid_type", "boolean"},
    {EMBED, "{\"inputs\":\"a\",\"truncate\":0}", 0, 400, "truncate", "invalid_type", "boolean"},
    {EMBED, "{\"inputs\":\"a\",\"prompt_name\":\"passage\"}", 0, 400, "prompt_name",
     "invalid_value", "\"query\" or null"},
    {EMBED, "{\"inputs\":\"a\",\"prompt_name\":1}", 0, 400, "prompt_name", "invalid_type",
     "string or null"},
    {EMBED, "{\"inputs\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", 0, 413, "inputs", "too_many_inputs",
     "over the limit"},
    {EMBED, "[]", 0, 400, "", "invalid_type", "JSON object"},
    /* /tokenize */
    {TOK, "{\"inputs\":5}", 0, 400, "inputs", "invalid_type", "must be a string"},
    {TOK, "{\"inputs\":null}", 0, 400, "inputs", "invalid_type", "must not be null"},
    {TOK, "{\"inputs\":[\"ok\",\"\xe2\x82\"]}", 0, 400, "inputs", "invalid_utf8",
     "inputs[1] is not valid UTF-8"},
    {TOK, "{\"inputs\":\"a\",\"add_special_tokens\":\"x\"}", 0, 400, "add_special_tokens",
     "invalid_type", "boolean"},
    {TOK, "{\"inputs\":\"aaaaaaaaaaaaaaaaaaaa\"}", 0, 413, "inputs", "input_too_long", "20 bytes"},
    {TOK, "{\"inputs\":\"a\"", 0, 400, "", "invalid_json", "not valid JSON"},
};

TEST(bad_input_matrix)
{
    size_t n = sizeof BAD / sizeof BAD[0];
    CHECK(n >= 40);
    for (size_t i = 0; i < n; i++) {
        const bad_case *c = &BAD[i];
        size_t len = c->len ? c->len : strlen(c->body);
        req_embeddings e;
        req_embed b;
        req_tokenize t;
        req_error err;
        memset(&err, 0, sizeof err);
        int st = parse(c->which, c->body, len, &LIM, &e, &b, &t, &err);
        int ok = st == c->status && err.status == c->status && strcmp(err.param, c->param) == 0 &&
                 strcmp(err.code, c->code) == 0 && strstr(err.message, c->msg) &&
                 err.type && strcmp(err.type, "invalid_request_error") == 0;
        if (!ok) {
            fprintf(stderr, "case %zu (%s): got %d param=\"%s\" code=\"%s\" msg=\"%s\"\n", i,
                    c->body, st, err.param, err.code, err.message);
            harness_failures_in_test++;
        }
        /* the outputs are left zeroed */
        if (c->which == EMB)
            CHECK(e.input.items == NULL && e.model == NULL && e.icl.examples == NULL);
        else if (c->which == EMBED)
            CHECK(b.inputs.items == NULL);
        else
            CHECK(t.inputs.items == NULL);
    }
}

static char *nested(int depth, const char *prefix, const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *s = malloc(pl + sl + 2 * (size_t)depth + 2);
    char *p = s;
    memcpy(p, prefix, pl), p += pl;
    for (int i = 0; i < depth; i++)
        *p++ = '[';
    *p++ = '1';
    for (int i = 0; i < depth; i++)
        *p++ = ']';
    memcpy(p, suffix, sl), p += sl;
    *p = '\0';
    return s;
}

TEST(depth_limit)
{
    req_embeddings e;
    req_error err;
    /* depth 1 (object) + 63 arrays = 64: accepted as far as depth goes */
    char *s = nested(REQ_MAX_DEPTH - 1, "{\"input\":\"a\",\"x\":", "}");
    CHECK_EQ_INT(req_parse_embeddings(s, strlen(s), &LIM, &e, &err), 0);
    req_free_embeddings(&e);
    free(s);
    s = nested(REQ_MAX_DEPTH, "{\"input\":\"a\",\"x\":", "}");
    CHECK_EQ_INT(req_parse_embeddings(s, strlen(s), &LIM, &e, &err), 400);
    CHECK(strcmp(err.code, "nesting_too_deep") == 0 && err.param[0] == '\0');
    free(s);
    s = nested(100000, "{\"input\":", "}");
    CHECK_EQ_INT(req_parse_embeddings(s, strlen(s), &LIM, &e, &err), 400);
    CHECK(strcmp(err.code, "nesting_too_deep") == 0);
    free(s);
    /* brackets inside strings (and escaped quotes) do not count */
    char buf[400];
    char br[201];
    memset(br, '[', 200);
    br[200] = '\0';
    snprintf(buf, sizeof buf, "{\"input\":\"\\\"%s\",\"u\":\"\\\\\"}", br);
    req_limits big = LIM;
    big.max_input_bytes = 1000;
    CHECK_EQ_INT(req_parse_embeddings(buf, strlen(buf), &big, &e, &err), 0);
    CHECK_EQ_INT(e.input.items[0].len, 201);
    req_free_embeddings(&e);
}

TEST(embeddings_defaults)
{
    req_embeddings e;
    req_error err;
    const char *b = "{\"input\":\"hello\"}";
    CHECK_EQ_INT(req_parse_embeddings(b, strlen(b), NULL, &e, &err), 0);
    CHECK_EQ_INT(e.input.count, 1);
    CHECK_EQ_INT(e.input.was_array, 0);
    CHECK_EQ_INT(e.input.is_tokens, 0);
    CHECK(strcmp(e.input.items[0].text, "hello") == 0);
    CHECK_EQ_INT(e.input.items[0].len, 5);
    CHECK_EQ_INT(e.input.items[0].index, 0);
    CHECK(e.input.items[0].ids == NULL);
    CHECK(e.model == NULL);
    CHECK_EQ_INT(e.encoding_format, REQ_ENC_FLOAT);
    CHECK_EQ_INT(e.dimensions, 0);
    CHECK_EQ_INT(e.input_type, REQ_INPUT_DOCUMENT);
    CHECK_EQ_INT(e.truncate, 1);
    CHECK_EQ_INT(e.enable_icl, -1);
    CHECK(e.language == NULL);
    CHECK_EQ_INT(e.icl.present, 0);
    CHECK_EQ_INT(e.icl.enable_context_learning, 1);
    req_free_embeddings(&e);
    req_free_embeddings(&e); /* idempotent */
    req_free_embeddings(NULL);

    /* null optional fields count as absent; unknown fields are ignored */
    b = "{\"input\":[\"x\"],\"model\":null,\"dimensions\":null,\"user\":null,"
        "\"encoding_format\":null,\"icl_context\":null,\"extra\":{\"a\":[1,{\"b\":null}]}}";
    CHECK_EQ_INT(req_parse_embeddings(b, strlen(b), &LIM, &e, &err), 0);
    CHECK_EQ_INT(e.input.was_array, 1);
    CHECK(e.model == NULL && e.dimensions == 0 && e.icl.present == 0);
    req_free_embeddings(&e);
}

static const char FULL[] =
    "  {\"model\":\"BAAI/bge-en-icl\",\"input\":[\"first\",\"s\\u00e9cond \\\"q\\\"\",\"a\\\\u0000b\","
    "\"\xe4\xb8\xad\xe6\x96\x87\"],"
    "\"encoding_format\":\"base64\",\"dimensions\":384.0,\"user\":\"u-1\",\"input_type\":\"query\","
    "\"truncate\":false,\"enable_icl\":true,\"language\":\"python\","
    "\"icl_context\":{\"instruction\":\"Find code\",\"examples\":[\"plain example\","
    "{\"query\":\"q1\",\"response\":\"r1\"},{\"query\":\"q2\"}],\"language\":\"go\","
    "\"enable_context_learning\":false,\"similarity_score\":0.75,"
    "\"context_processing_time\":12.5,\"future\":1}}\n";

TEST(embeddings_all_fields)
{
    req_embeddings e;
    req_error err;
    CHECK_EQ_INT(req_parse_embeddings(FULL, strlen(FULL), &LIM, &e, &err), 0);
    CHECK_EQ_INT(e.input.count, 4);
    CHECK_EQ_INT(e.input.was_array, 1);
    CHECK(strcmp(e.input.items[0].text, "first") == 0);
    CHECK(strcmp(e.input.items[1].text, "s\xc3\xa9" "cond \"q\"") == 0);
    CHECK(strcmp(e.input.items[2].text, "a\\u0000b") == 0); /* escaped backslash: not a NUL */
    CHECK(strcmp(e.input.items[3].text, "\xe4\xb8\xad\xe6\x96\x87") == 0);
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ_INT(e.input.items[i].index, i);
        CHECK_EQ_INT(e.input.items[i].len, strlen(e.input.items[i].text));
    }
    CHECK(e.model && strcmp(e.model, "BAAI/bge-en-icl") == 0);
    CHECK_EQ_INT(e.encoding_format, REQ_ENC_BASE64);
    CHECK_EQ_INT(e.dimensions, 384);
    CHECK_EQ_INT(e.input_type, REQ_INPUT_QUERY);
    CHECK_EQ_INT(e.truncate, 0);
    CHECK_EQ_INT(e.enable_icl, 1);
    CHECK(e.language && strcmp(e.language, "python") == 0);
    CHECK_EQ_INT(e.icl.present, 1);
    CHECK(e.icl.instruction && strcmp(e.icl.instruction, "Find code") == 0);
    CHECK_EQ_INT(e.icl.n_examples, 3);
    if (e.icl.n_examples == 3) {
        CHECK(e.icl.examples[0].text && strcmp(e.icl.examples[0].text, "plain example") == 0);
        CHECK(e.icl.examples[0].query == NULL && e.icl.examples[0].response == NULL);
        CHECK(e.icl.examples[1].text == NULL);
        CHECK(e.icl.examples[1].query && strcmp(e.icl.examples[1].query, "q1") == 0);
        CHECK(e.icl.examples[1].response && strcmp(e.icl.examples[1].response, "r1") == 0);
        CHECK(e.icl.examples[2].query && strcmp(e.icl.examples[2].query, "q2") == 0);
        CHECK(e.icl.examples[2].response == NULL);
    }
    CHECK(e.icl.language && strcmp(e.icl.language, "go") == 0);
    CHECK_EQ_INT(e.icl.enable_context_learning, 0);
    CHECK_EQ_INT(e.icl.has_similarity_score, 1);
    CHECK(e.icl.similarity_score == 0.75);
    CHECK_EQ_INT(e.icl.has_context_processing_time, 1);
    CHECK(e.icl.context_processing_time == 12.5);
    req_free_embeddings(&e);

    /* icl_context with nothing in it */
    const char *b = "{\"input\":\"a\",\"icl_context\":{\"examples\":[]},\"enable_icl\":false,"
                    "\"dimensions\":1}";
    CHECK_EQ_INT(req_parse_embeddings(b, strlen(b), &LIM, &e, &err), 0);
    CHECK_EQ_INT(e.icl.present, 1);
    CHECK_EQ_INT(e.icl.n_examples, 0);
    CHECK(e.icl.instruction == NULL && e.icl.language == NULL);
    CHECK_EQ_INT(e.icl.enable_context_learning, 1);
    CHECK_EQ_INT(e.icl.has_similarity_score, 0);
    CHECK_EQ_INT(e.enable_icl, 0);
    CHECK_EQ_INT(e.dimensions, 1);
    req_free_embeddings(&e);
}

TEST(embeddings_token_ids)
{
    req_embeddings e;
    req_error err;
    const char *b = "{\"input\":[[101,2054,102],[0],[2147483647,5.0,7]]}";
    CHECK_EQ_INT(req_parse_embeddings(b, strlen(b), &LIM, &e, &err), 0);
    CHECK_EQ_INT(e.input.count, 3);
    CHECK_EQ_INT(e.input.is_tokens, 1);
    CHECK_EQ_INT(e.input.was_array, 1);
    const req_input *in = e.input.items;
    CHECK(in[0].text == NULL);
    CHECK_EQ_INT(in[0].n_ids, 3);
    CHECK(in[0].ids[0] == 101 && in[0].ids[1] == 2054 && in[0].ids[2] == 102);
    CHECK_EQ_INT(in[1].n_ids, 1);
    CHECK_EQ_INT(in[1].ids[0], 0);
    CHECK_EQ_INT(in[2].n_ids, 3);
    CHECK(in[2].ids[0] == 2147483647 && in[2].ids[1] == 5 && in[2].ids[2] == 7);
    CHECK_EQ_INT(in[2].index, 2);
    req_free_embeddings(&e);
}

TEST(embed_and_tokenize)
{
    req_embed b;
    req_tokenize t;
    req_error err;
    const char *s = "{\"inputs\":\"hi there\"}";
    CHECK_EQ_INT(req_parse_embed(s, strlen(s), &LIM, &b, &err), 0);
    CHECK_EQ_INT(b.inputs.count, 1);
    CHECK_EQ_INT(b.inputs.was_array, 0);
    CHECK(strcmp(b.inputs.items[0].text, "hi there") == 0);
    CHECK_EQ_INT(b.normalize, 1);
    CHECK_EQ_INT(b.truncate, 1);
    CHECK_EQ_INT(b.prompt_query, 0);
    req_free_embed(&b);

    s = "{\"inputs\":[\"a\",\"b\"],\"normalize\":false,\"truncate\":false,\"prompt_name\":\"query\"}";
    CHECK_EQ_INT(req_parse_embed(s, strlen(s), &LIM, &b, &err), 0);
    CHECK_EQ_INT(b.inputs.count, 2);
    CHECK_EQ_INT(b.inputs.was_array, 1);
    CHECK(strcmp(b.inputs.items[1].text, "b") == 0);
    CHECK_EQ_INT(b.normalize, 0);
    CHECK_EQ_INT(b.truncate, 0);
    CHECK_EQ_INT(b.prompt_query, 1);
    req_free_embed(&b);

    s = "{\"inputs\":\"a\",\"prompt_name\":null}";
    CHECK_EQ_INT(req_parse_embed(s, strlen(s), &LIM, &b, &err), 0);
    CHECK_EQ_INT(b.prompt_query, 0);
    req_free_embed(&b);
    req_free_embed(NULL);

    s = "{\"inputs\":[\"x y\",\"z\"]}";
    CHECK_EQ_INT(req_parse_tokenize(s, strlen(s), &LIM, &t, &err), 0);
    CHECK_EQ_INT(t.inputs.count, 2);
    CHECK_EQ_INT(t.add_special_tokens, 1);
    CHECK(strcmp(t.inputs.items[0].text, "x y") == 0);
    req_free_tokenize(&t);
    s = "{\"inputs\":\"x\",\"add_special_tokens\":false}";
    CHECK_EQ_INT(req_parse_tokenize(s, strlen(s), &LIM, &t, &err), 0);
    CHECK_EQ_INT(t.add_special_tokens, 0);
    req_free_tokenize(&t);
    req_free_tokenize(NULL);
}

TEST(many_inputs)
{
    enum { N = 20000 };
    size_t cap = (size_t)N * 16 + 32, n = 0;
    char *s = malloc(cap);
    n += (size_t)sprintf(s + n, "{\"input\":[");
    for (int i = 0; i < N; i++)
        n += (size_t)sprintf(s + n, "%s\"t%d\"", i ? "," : "", i);
    n += (size_t)sprintf(s + n, "]}");
    req_embeddings e;
    req_error err;
    double t0 = bg_now_ms();
    CHECK_EQ_INT(req_parse_embeddings(s, n, NULL, &e, &err), 0);
    double ms = bg_now_ms() - t0;
    CHECK(ms < 2000.0);
    CHECK_EQ_INT(e.input.count, N);
    int order_ok = 1;
    char want[32];
    for (int i = 0; i < N && order_ok; i++) {
        snprintf(want, sizeof want, "t%d", i);
        order_ok = e.input.items[i].index == (size_t)i && strcmp(e.input.items[i].text, want) == 0;
    }
    CHECK(order_ok);
    req_free_embeddings(&e);
    req_limits lim = {.max_inputs = N - 1};
    CHECK_EQ_INT(req_parse_embeddings(s, n, &lim, &e, &err), 413);
    CHECK(strcmp(err.code, "too_many_inputs") == 0);
    free(s);
}

TEST(error_rendering)
{
    req_error e;
    req_error_set(&e, 400, NULL, "input", "invalid_value",
                  "quote \" backslash \\ newline \n tab \t ctl \x01 del \x7f utf8 \xc3\xa9 end");
    size_t len = 0;
    char *s = req_error_json(&e, &len);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ_INT(len, strlen(s));
    cJSON *j = cJSON_Parse(s);
    CHECK(j != NULL);
    cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "error");
    CHECK(cJSON_IsObject(o));
    cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "message");
    CHECK(cJSON_IsString(m) && strcmp(m->valuestring, e.message) == 0);
    cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    CHECK(cJSON_IsString(t) && strcmp(t->valuestring, "invalid_request_error") == 0);
    cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "param");
    CHECK(cJSON_IsString(p) && strcmp(p->valuestring, "input") == 0);
    cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "code");
    CHECK(cJSON_IsString(c) && strcmp(c->valuestring, "invalid_value") == 0);
    cJSON_Delete(j);
    bg_free(s);

    /* null param and code; types by status */
    req_error_set(&e, 500, NULL, NULL, NULL, "boom");
    s = req_error_json(&e, NULL);
    CHECK(s && strcmp(s, "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\","
                         "\"param\":null,\"code\":null}}") == 0);
    j = cJSON_Parse(s);
    o = cJSON_GetObjectItemCaseSensitive(j, "error");
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "param")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "code")));
    cJSON_Delete(j);
    bg_free(s);
    CHECK_EQ_INT(req_error_set(&e, 401, NULL, NULL, NULL, "x"), 401);
    CHECK(strcmp(e.type, "authentication_error") == 0);
    req_error_set(&e, 404, NULL, "model", "model_not_found", "x");
    CHECK(strcmp(e.type, "not_found_error") == 0);
    req_error_set(&e, 429, NULL, NULL, NULL, "x");
    CHECK(strcmp(e.type, "rate_limit_error") == 0);
    req_error_set(&e, 413, "custom_type", NULL, NULL, "x");
    CHECK(strcmp(e.type, "custom_type") == 0);

    /* rendering itself can run out of memory */
    bg_fail_after(0);
    CHECK(req_error_json(&e, NULL) == NULL);
    bg_fail_after(-1);

    /* a rendered parse error round-trips */
    req_embeddings r;
    const char *b = "{\"input\":[\"a\",3]}";
    CHECK_EQ_INT(req_parse_embeddings(b, strlen(b), NULL, &r, &e), 400);
    s = req_error_json(&e, NULL);
    j = cJSON_Parse(s);
    o = cJSON_GetObjectItemCaseSensitive(j, "error");
    m = cJSON_GetObjectItemCaseSensitive(o, "message");
    CHECK(cJSON_IsString(m) && strstr(m->valuestring, "input[1] must be a string"));
    cJSON_Delete(j);
    bg_free(s);
}

static void alloc_loop(int which, const char *body, size_t want_count)
{
    size_t len = strlen(body);
    int done = 0;
    for (long n = 0; n < 10000 && !done; n++) {
        req_embeddings e;
        req_embed b;
        req_tokenize t;
        req_error err;
        memset(&err, 0, sizeof err);
        bg_fail_after(n);
        int st = which == EMB     ? req_parse_embeddings(body, len, &LIM, &e, &err)
                 : which == EMBED ? req_parse_embed(body, len, &LIM, &b, &err)
                                  : req_parse_tokenize(body, len, &LIM, &t, &err);
        bg_fail_after(-1);
        if (st == 0) {
            done = 1;
            CHECK(n > 0);
            if (which == EMB) {
                CHECK_EQ_INT(e.input.count, want_count);
                req_free_embeddings(&e);
            } else if (which == EMBED) {
                CHECK_EQ_INT(b.inputs.count, want_count);
                req_free_embed(&b);
            } else {
                CHECK_EQ_INT(t.inputs.count, want_count);
                req_free_tokenize(&t);
            }
        } else {
            CHECK_EQ_INT(st, 500);
            CHECK(err.type && strcmp(err.type, "server_error") == 0);
            CHECK(strcmp(err.code, "out_of_memory") == 0);
            CHECK_STR_CONTAINS(err.message, "out of memory");
            if (which == EMB)
                CHECK(e.input.items == NULL && e.model == NULL && e.icl.examples == NULL &&
                      e.icl.instruction == NULL);
        }
    }
    CHECK(done);
}

TEST(allocation_failures)
{
    alloc_loop(EMB, FULL, 4);
    alloc_loop(EMB, "{\"input\":[[1,2],[3]]}", 2);
    alloc_loop(EMBED, "{\"inputs\":[\"a\",\"b\"]}", 2);
    alloc_loop(TOK, "{\"inputs\":\"a\"}", 1);
}

int main(void)
{
    RUN(bad_input_matrix);
    RUN(depth_limit);
    RUN(embeddings_defaults);
    RUN(embeddings_all_fields);
    RUN(embeddings_token_ids);
    RUN(embed_and_tokenize);
    RUN(many_inputs);
    RUN(error_rendering);
    RUN(allocation_failures);
    return harness_summary("request");
}
