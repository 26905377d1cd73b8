/*
 * test_bank.c - the ICL example banks (icl/examples, one JSON file per language) and their
 * loader and lexical selection (src/icl/bank.c).
 *
 * The real banks are read from icl/examples, relative to the repository
 * root (the unit tests' working directory). Error cases write small banks
 * into a fresh directory under the system temp dir ($TMPDIR or P_tmpdir).
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "icl/bank.h"
#include "util/util.h"

#define REAL_DIR "icl/examples"

#define GENERIC_OK                                                                       \
    "{\"language\":\"generic\",\"instruction\":\"Given a code search query, retrieve "  \
    "the code snippet that answers it.\",\"examples\":["                                \
    "{\"query\":\"binary search in a sorted array\",\"response\":\"lo, hi = 0, n\"},"    \
    "{\"query\":\"reverse a linked list\",\"response\":\"prev = None\"}]}"

#define PYTHON_OK                                                                        \
    "{\"language\":\"python\",\"instruction\":\"Retrieve the Python snippet.\","        \
    "\"examples\":[{\"query\":\"read a file\",\"response\":\"open(path).read()\"},"     \
    "{\"query\":\"parse JSON\",\"response\":\"json.loads(text)\"},"                     \
    "{\"query\":\"sort a dict by value\",\"response\":\"sorted(d.items(), key=f)\"}]}"

/* ---- temp directories ------------------------------------------------------ */

static char *make_dir(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = P_tmpdir;
    size_t n = strlen(base) + 32;
    char *dir = malloc(n);
    snprintf(dir, n, "%s/bgeicl-bank-XXXXXX", base);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", dir, strerror(errno));
        free(dir);
        return NULL;
    }
    return dir;
}

/* Writes dir/name; len 0 means strlen(data). */
static void put(const char *dir, const char *name, const char *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        return;
    }
    fwrite(data, 1, len ? len : strlen(data), f);
    fclose(f);
}

/* Removes dir, its files and its empty subdirectories. */
static void remove_dir(char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char path[1024];
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            if (unlink(path) != 0)
                rmdir(path);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

/* ---- the real banks ---------------------------------------------------------- */

static icl_bank *real;

/* Leading or trailing white space. */
static int space_edge(const char *s)
{
    size_t n = strlen(s);
    return n && (strchr(" \t\n\r", s[0]) || strchr(" \t\n\r", s[n - 1]));
}

static size_t count_lines(const char *s)
{
    size_t n = 1;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

TEST(real_banks_complete)
{
    const icl_example *gex;
    size_t gn = icl_bank_examples(real, ICL_LANG_GENERIC, &gex);
    const char *ginstr = icl_bank_instruction(real, ICL_LANG_GENERIC);
    for (int l = 0; l < ICL_LANG_COUNT; l++) {
        const icl_example *ex = NULL;
        size_t n = icl_bank_examples(real, (icl_lang)l, &ex);
        const char *instr = icl_bank_instruction(real, (icl_lang)l);
        const char *name = icl_lang_name((icl_lang)l);
        if (n < 8)
            fprintf(stderr, "%s: only %zu examples\n", name, n);
        CHECK(n >= 8);
        CHECK(ex != NULL);
        CHECK(instr != NULL && strlen(instr) > 20);
        CHECK_STR_CONTAINS(instr, "Given a code search query, retrieve the");
        if (l != ICL_LANG_GENERIC) { /* its own file, not the fallback */
            CHECK(ex != gex && instr != ginstr);
            if (ex == gex)
                fprintf(stderr, "%s: falls back to generic\n", name);
        } else {
            CHECK_EQ_INT(n, gn);
        }
        for (size_t i = 0; i < n; i++) {
            size_t lines = count_lines(ex[i].response);
            if (lines < 3 || lines > 15 || !ex[i].query[0] || space_edge(ex[i].query))
                fprintf(stderr, "%s: example %zu (%s): %zu lines\n", name, i, ex[i].query, lines);
            CHECK(lines >= 3 && lines <= 15);
            CHECK(!space_edge(ex[i].query));
            for (size_t j = 0; j < i; j++)
                CHECK(strcmp(ex[i].query, ex[j].query) != 0);
        }
    }
}

/* A query and a phrase of the example query it must rank first. */
typedef struct pick_case {
    icl_lang lang;
    const char *query;
    const char *want;
} pick_case;

static const pick_case PICKS[] = {
    {ICL_LANG_PYTHON, "how do I parse a JSON file", "JSON config file"},
    {ICL_LANG_PYTHON, "read lines from a log file", "line by line"},
    {ICL_LANG_PYTHON, "argparse command line flags", "argparse"},
    {ICL_LANG_PYTHON, "select rows from sqlite", "SQLite"},
    {ICL_LANG_PYTHON, "ThreadPoolExecutor download", "thread pool"},
    {ICL_LANG_PYTHON, "regex to find emails", "email addresses"},
    {ICL_LANG_JAVASCRIPT, "debounce resize handler", "debounce"},
    {ICL_LANG_JAVASCRIPT, "addEventListener click", "click event"},
    {ICL_LANG_TYPESCRIPT, "type guard for unknown json", "type guard"},
    {ICL_LANG_JAVA, "JUnit test", "JUnit"},
    {ICL_LANG_JAVA, "Collectors.groupingBy counting", "group a list"},
    {ICL_LANG_CSHARP, "LINQ group by", "LINQ"},
    {ICL_LANG_GO, "goroutine channel results", "channel"},
    {ICL_LANG_GO, "unmarshal json into struct", "JSON config"},
    {ICL_LANG_GO, "table driven test", "table-driven"},
    {ICL_LANG_RUST, "serde_json deserialize", "serde"},
    {ICL_LANG_RUST, "tokio spawn tasks", "tokio"},
    {ICL_LANG_C, "getopt command line options", "getopt"},
    {ICL_LANG_C, "qsort struct array", "qsort"},
    {ICL_LANG_CPP, "unique_ptr shared_ptr", "smart pointers"},
    {ICL_LANG_RUBY, "rspec", "RSpec"},
    {ICL_LANG_PHP, "PDO prepared statement query", "PDO"},
    {ICL_LANG_SHELL, "parse options with getopts", "getopts"},
    {ICL_LANG_SHELL, "extract a field from json with jq", "jq"},
    {ICL_LANG_SQL, "cumulative sum of payments", "running total"},
    {ICL_LANG_SQL, "find duplicate emails", "duplicate email"},
    {ICL_LANG_SQL, "upsert on conflict", "upsert"},
    {ICL_LANG_GENERIC, "dijkstra shortest path weighted graph", "Dijkstra"},
    {ICL_LANG_GENERIC, "LRU cache", "LRU"},
};

TEST(select_picks_the_matching_example)
{
    for (size_t c = 0; c < sizeof PICKS / sizeof PICKS[0]; c++) {
        const pick_case *p = &PICKS[c];
        const icl_example *ex;
        icl_bank_examples(real, p->lang, &ex);
        size_t idx[3] = {99, 99, 99};
        size_t got = icl_bank_select(real, p->lang, p->query, strlen(p->query), 3, idx);
        CHECK_EQ_INT(got, 3);
        if (!strstr(ex[idx[0]].query, p->want))
            fprintf(stderr, "%s \"%s\": picked \"%s\", wanted \"%s\"\n",
                    icl_lang_name(p->lang), p->query, ex[idx[0]].query, p->want);
        CHECK_STR_CONTAINS(ex[idx[0]].query, p->want);
        CHECK(idx[0] != idx[1] && idx[1] != idx[2] && idx[0] != idx[2]);
    }
}

/* The query's length counts, not its NUL: the tail past len is not read. */
TEST(select_respects_len)
{
    const icl_example *ex;
    icl_bank_examples(real, ICL_LANG_GO, &ex);
    const char *q = "table driven test; goroutine channel results";
    size_t a, b;
    CHECK_EQ_INT(icl_bank_select(real, ICL_LANG_GO, q, 17, 1, &a), 1);
    CHECK_STR_CONTAINS(ex[a].query, "table-driven");
    CHECK_EQ_INT(icl_bank_select(real, ICL_LANG_GO, q + 19, strlen(q + 19), 1, &b), 1);
    CHECK_STR_CONTAINS(ex[b].query, "channel");
}

TEST(select_k_larger_than_bank)
{
    size_t n = icl_bank_examples(real, ICL_LANG_PYTHON, NULL);
    size_t idx[ICL_BANK_MAX_EXAMPLES + 8];
    const char *q = "load json config";
    size_t got = icl_bank_select(real, ICL_LANG_PYTHON, q, strlen(q), n + 8, idx);
    CHECK_EQ_INT(got, n);
    char seen[ICL_BANK_MAX_EXAMPLES] = {0};
    for (size_t i = 0; i < got; i++) {
        CHECK(idx[i] < n);
        if (idx[i] < n) {
            CHECK(!seen[idx[i]]);
            seen[idx[i]] = 1;
        }
    }
    const icl_example *ex;
    icl_bank_examples(real, ICL_LANG_PYTHON, &ex);
    CHECK_STR_CONTAINS(ex[idx[0]].query, "JSON config");
}

/* No known token: every score is 0 and the first examples come in file order. */
TEST(select_empty_query_keeps_file_order)
{
    const char *queries[] = {"", "how to do it", "   ,;  ", "a b c 1 22 333", "zzqx"};
    for (size_t q = 0; q < sizeof queries / sizeof queries[0]; q++) {
        size_t idx[5];
        CHECK_EQ_INT(icl_bank_select(real, ICL_LANG_RUST, queries[q], strlen(queries[q]), 5, idx), 5);
        for (size_t i = 0; i < 5; i++)
            CHECK_EQ_INT(idx[i], i);
    }
    size_t idx[4];
    CHECK_EQ_INT(icl_bank_select(real, ICL_LANG_SQL, NULL, 0, 4, idx), 4);
    for (size_t i = 0; i < 4; i++)
        CHECK_EQ_INT(idx[i], i);
}

TEST(select_edge_arguments)
{
    size_t idx[2] = {7, 7};
    CHECK_EQ_INT(icl_bank_select(real, ICL_LANG_GO, "json", 4, 0, idx), 0);
    CHECK_EQ_INT(idx[0], 7);
    CHECK_EQ_INT(icl_bank_select(real, ICL_LANG_GO, "json", 4, 2, NULL), 0);
    CHECK_EQ_INT(icl_bank_select(NULL, ICL_LANG_GO, "json", 4, 2, idx), 0);
    CHECK(icl_bank_instruction(NULL, ICL_LANG_GO) == NULL);
    const icl_example *ex = (const icl_example *)1;
    CHECK_EQ_INT(icl_bank_examples(NULL, ICL_LANG_GO, &ex), 0);
    CHECK(ex == NULL);
    /* Out-of-range languages read as generic. */
    const icl_example *gex;
    size_t gn = icl_bank_examples(real, ICL_LANG_GENERIC, &gex);
    CHECK_EQ_INT(icl_bank_examples(real, ICL_LANG_COUNT, &ex), gn);
    CHECK(ex == gex);
    CHECK(icl_bank_instruction(real, (icl_lang)-1) == icl_bank_instruction(real, ICL_LANG_GENERIC));
    /* Invalid UTF-8 and NUL bytes inside len are just bytes. */
    const char odd[] = "\xff\xfe json\0config \xc3";
    CHECK_EQ_INT(icl_bank_select(real, ICL_LANG_PYTHON, odd, sizeof odd - 1, 2, idx), 2);
    /* A very long identifier is cut, not overrun. */
    char longq[600];
    memset(longq, 'q', sizeof longq);
    CHECK_EQ_INT(icl_bank_select(real, ICL_LANG_C, longq, sizeof longq, 2, idx), 2);
}

/* camelCase, acronyms and snake_case split the same way in queries and examples. */
TEST(select_splits_identifiers)
{
    const icl_example *ex;
    size_t idx;
    const char *q1 = "as_completed ThreadPoolExecutor";
    icl_bank_examples(real, ICL_LANG_PYTHON, &ex);
    CHECK_EQ_INT(icl_bank_select(real, ICL_LANG_PYTHON, q1, strlen(q1), 1, &idx), 1);
    CHECK_STR_CONTAINS(ex[idx].query, "thread pool");
    const char *q2 = "HTTPClient";
    icl_bank_examples(real, ICL_LANG_JAVA, &ex);
    CHECK_EQ_INT(icl_bank_select(real, ICL_LANG_JAVA, q2, strlen(q2), 1, &idx), 1);
    CHECK_STR_CONTAINS(ex[idx].query, "HttpClient");
    const char *q3 = "CSV_FILES";
    icl_bank_examples(real, ICL_LANG_PYTHON, &ex);
    CHECK_EQ_INT(icl_bank_select(real, ICL_LANG_PYTHON, q3, strlen(q3), 1, &idx), 1);
    CHECK_STR_CONTAINS(ex[idx].query, "CSV");
}

typedef struct sel_job {
    size_t idx[ICL_LANG_COUNT][6];
} sel_job;

static const char *const THREAD_QUERIES[ICL_LANG_COUNT] = {
    "binary search", "json file", "fetch api", "type guard", "http client", "linq",
    "goroutine",     "serde",     "getopt",    "mutex",     "rspec",        "pdo",
    "jq",            "window function"};

static void select_all(sel_job *j)
{
    for (int l = 0; l < ICL_LANG_COUNT; l++)
        icl_bank_select(real, (icl_lang)l, THREAD_QUERIES[l], strlen(THREAD_QUERIES[l]), 6,
                        j->idx[l]);
}

static void *select_thread(void *arg)
{
    for (int rep = 0; rep < 50; rep++)
        select_all(arg);
    return NULL;
}

TEST(select_concurrent_and_deterministic)
{
    sel_job ref, jobs[4];
    select_all(&ref);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, select_thread, &jobs[i]) == 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(memcmp(&jobs[i], &ref, sizeof ref) == 0);
    }
}

/* ---- loading: fallback and ignored files -------------------------------------- */

TEST(load_fallback_to_generic)
{
    char *dir = make_dir();
    if (!dir) {
        CHECK(0);
        return;
    }
    put(dir, "generic.json", GENERIC_OK, 0);
    put(dir, "python.json", PYTHON_OK, 0);
    put(dir, "README.md", "not json", 0);
    put(dir, "notes.json.bak", "{", 0);
    put(dir, ".hidden.json", "{", 0);
    icl_bank *b = NULL;
    bgeicl_error err;
    CHECK_EQ_INT(icl_bank_load(dir, &b, &err), BGEICL_OK);
    if (b) {
        const icl_example *gex, *pex, *ex;
        CHECK_EQ_INT(icl_bank_examples(b, ICL_LANG_GENERIC, &gex), 2);
        CHECK_EQ_INT(icl_bank_examples(b, ICL_LANG_PYTHON, &pex), 3);
        CHECK(strcmp(pex[1].response, "json.loads(text)") == 0);
        CHECK(strcmp(icl_bank_instruction(b, ICL_LANG_PYTHON), "Retrieve the Python snippet.") == 0);
        for (int l = ICL_LANG_JAVASCRIPT; l < ICL_LANG_COUNT; l++) {
            CHECK_EQ_INT(icl_bank_examples(b, (icl_lang)l, &ex), 2);
            CHECK(ex == gex);
            CHECK(icl_bank_instruction(b, (icl_lang)l) == icl_bank_instruction(b, ICL_LANG_GENERIC));
        }
        size_t idx[2];
        CHECK_EQ_INT(icl_bank_select(b, ICL_LANG_GO, "linked list", 11, 2, idx), 2);
        CHECK_EQ_INT(idx[0], 1);
        CHECK_EQ_INT(idx[1], 0);
        CHECK_EQ_INT(icl_bank_select(b, ICL_LANG_PYTHON, "JSON", 4, 1, idx), 1);
        CHECK_EQ_INT(idx[0], 1);
    }
    icl_bank_free(b);
    remove_dir(dir);
}

/* A literal backslash-u0000 in the text (an escaped backslash) is fine. */
TEST(load_escaped_backslash_is_not_nul)
{
    char *dir = make_dir();
    if (!dir) {
        CHECK(0);
        return;
    }
    put(dir, "generic.json",
        "{\"language\":\"generic\",\"instruction\":\"i\",\"examples\":"
        "[{\"query\":\"nul escape\",\"response\":\"s = \\\"\\\\u0000\\\"\\n\\tx\"}]}",
        0);
    icl_bank *b = NULL;
    bgeicl_error err;
    CHECK_EQ_INT(icl_bank_load(dir, &b, &err), BGEICL_OK);
    if (b) {
        const icl_example *ex;
        CHECK_EQ_INT(icl_bank_examples(b, ICL_LANG_GENERIC, &ex), 1);
        CHECK(strcmp(ex[0].response, "s = \"\\u0000\"\n\tx") == 0);
    }
    icl_bank_free(b);
    remove_dir(dir);
}

/* ---- loading: errors ---------------------------------------------------------- */

typedef struct bad_case {
    const char *file; /* written next to a valid generic.json (or replacing it) */
    const char *data;
    size_t len; /* 0: strlen(data) */
    bgeicl_code code;
    const char *msg; /* besides the file name */
} bad_case;

#define PY_HEAD "{\"language\":\"python\",\"instruction\":\"Retrieve Python.\","
#define PY_EX(q, r) PY_HEAD "\"examples\":[{\"query\":" q ",\"response\":" r "}]}"
#define BAD(d, m) {"python.json", d, 0, BGEICL_ERR_FORMAT, m}

static const bad_case BADS[] = {
    BAD("{\"language\": \"python\",,", "malformed JSON"),
    BAD("", "malformed JSON"),
    BAD(PY_EX("\"q\"", "\"r\"") " x", "trailing data"),
    BAD("[]", "top level must be a JSON object"),
    BAD("null", "top level must be a JSON object"),
    BAD("\"python\"", "top level must be a JSON object"),
    BAD("{\"instruction\":\"i\",\"examples\":[]}", "'language' is required"),
    BAD("{\"language\":5,\"instruction\":\"i\"}", "'language' must be a string"),
    BAD("{\"language\":\"\",\"instruction\":\"i\"}", "'language' must not be empty"),
    BAD("{\"language\":\"java\",\"instruction\":\"i\"}", "'language' is \"java\""),
    BAD("{\"language\":\"Python\",\"instruction\":\"i\"}", "'language' is \"Python\""),
    BAD("{\"language\":\"py\",\"instruction\":\"i\"}", "file name says \"python\""),
    BAD("{\"language\":\"python\",\"examples\":[]}", "'instruction' is required"),
    BAD("{\"language\":\"python\",\"instruction\":\"\"}", "'instruction' must not be empty"),
    BAD("{\"language\":\"python\",\"instruction\":[\"i\"]}", "'instruction' must be a string"),
    BAD("{\"language\":\"python\",\"instruction\":null}", "'instruction' must be a string"),
    BAD("{\"language\":\"python\",\"instruction\":\"\xed\xa0\x80\"}", "'instruction' is not valid UTF-8"),
    BAD(PY_HEAD "\"x\":1}", "'examples' is required"),
    BAD(PY_HEAD "\"examples\":{}}", "'examples' must be an array"),
    BAD(PY_HEAD "\"examples\":\"q\"}", "'examples' must be an array"),
    BAD(PY_HEAD "\"examples\":[]}", "'examples' must not be empty"),
    BAD(PY_HEAD "\"examples\":[{\"query\":\"q\",\"response\":\"r\"},\"x\"]}",
        "'examples[1]' must be an object"),
    BAD(PY_HEAD "\"examples\":[{\"response\":\"r\"}]}", "'examples[0].query' is required"),
    BAD(PY_HEAD "\"examples\":[{\"query\":\"q\"}]}", "'examples[0].response' is required"),
    BAD(PY_EX("\"q\"", "7"), "'examples[0].response' must be a string"),
    BAD(PY_EX("[\"q\"]", "\"r\""), "'examples[0].query' must be a string"),
    BAD(PY_EX("\"\"", "\"r\""), "'examples[0].query' must not be empty"),
    BAD(PY_EX("\"q\"", "\"\""), "'examples[0].response' must not be empty"),
    BAD(PY_EX("\"q\xc3\x28\"", "\"r\""), "'examples[0].query' is not valid UTF-8"),
    BAD(PY_EX("\"q\"", "\"\xc0\xaf\""), "'examples[0].response' is not valid UTF-8"),
    BAD(PY_EX("\"q\"", "\"\xf4\x90\x80\x80\""), "'examples[0].response' is not valid UTF-8"),
    BAD(PY_EX("\"q\"", "\"a\\u0000b\""), "'examples[0].response' contains a NUL"),
    BAD(PY_EX("\"\\u0000\"", "\"r\""), "'examples[0].query' contains a NUL"),
    BAD(PY_EX("\"q\x01\"", "\"r\""), "'examples[0].query' contains a NUL or control character"),
    BAD(PY_EX("\"q\"", "\"\\u001b[0m\""), "'examples[0].response' contains a NUL or control"),
    {"python.json", PY_EX("\"q\0\"", "\"r\""), sizeof(PY_EX("\"q\0\"", "\"r\"")) - 1,
     BGEICL_ERR_FORMAT, "NUL byte at offset"},
    {"klingon.json", "{}", 0, BGEICL_ERR_FORMAT, "not a language file name"},
    {"klingon.json", "{}", 0, BGEICL_ERR_FORMAT, "python, javascript, typescript"},
    {"js.json", "{}", 0, BGEICL_ERR_FORMAT, "canonical name javascript.json"},
    {"Python.json", PY_EX("\"q\"", "\"r\""), 0, BGEICL_ERR_FORMAT, "canonical name python.json"},
    {"generic.json", PY_EX("\"q\"", "\"r\""), 0, BGEICL_ERR_FORMAT, "file name says \"generic\""},
    {"generic.json", "{\"language\":\"generic\",\"instruction\":\"i\",\"examples\":[{}]}", 0,
     BGEICL_ERR_FORMAT, "'examples[0].query' is required"},
};

static void expect_load_error(const char *dir, bgeicl_code code, const char *file, const char *msg)
{
    icl_bank *b = (icl_bank *)1;
    bgeicl_error err = {0};
    bgeicl_code rc = icl_bank_load(dir, &b, &err);
    if (rc != code || !strstr(err.message, msg) || !strstr(err.message, file))
        fprintf(stderr, "%s: got %d \"%s\", wanted %d \"%s\"\n", file, rc, err.message, code, msg);
    CHECK_EQ_INT(rc, code);
    CHECK_EQ_INT(err.code, code);
    CHECK(b == NULL);
    CHECK_STR_CONTAINS(err.message, file);
    CHECK_STR_CONTAINS(err.message, msg);
    if (rc == BGEICL_OK)
        icl_bank_free(b);
}

TEST(load_errors_name_file_and_field)
{
    for (size_t c = 0; c < sizeof BADS / sizeof BADS[0]; c++) {
        char *dir = make_dir();
        if (!dir) {
            CHECK(0);
            return;
        }
        if (strcmp(BADS[c].file, "generic.json") != 0)
            put(dir, "generic.json", GENERIC_OK, 0);
        put(dir, BADS[c].file, BADS[c].data, BADS[c].len);
        expect_load_error(dir, BADS[c].code, BADS[c].file, BADS[c].msg);
        remove_dir(dir);
    }
}

TEST(load_missing_generic)
{
    char *dir = make_dir();
    if (!dir) {
        CHECK(0);
        return;
    }
    expect_load_error(dir, BGEICL_ERR_FORMAT, "generic.json", "the generic bank is required");
    put(dir, "python.json", PYTHON_OK, 0);
    put(dir, "generic.txt", GENERIC_OK, 0);
    expect_load_error(dir, BGEICL_ERR_FORMAT, "generic.json", "the generic bank is required");
    remove_dir(dir);
}

TEST(load_io_and_argument_errors)
{
    char *dir = make_dir();
    if (!dir) {
        CHECK(0);
        return;
    }
    char missing[1024];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    expect_load_error(missing, BGEICL_ERR_IO, missing, "cannot open directory");
    /* A directory where a file should be cannot be read. */
    put(dir, "generic.json", GENERIC_OK, 0);
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/rust.json", dir);
    CHECK(mkdir(sub, 0700) == 0);
    icl_bank *b = (icl_bank *)1;
    bgeicl_error err = {0};
    CHECK_EQ_INT(icl_bank_load(dir, &b, &err), BGEICL_ERR_IO);
    CHECK(b == NULL);
    CHECK_STR_CONTAINS(err.message, "rust.json");
    remove_dir(dir);

    CHECK_EQ_INT(icl_bank_load(NULL, &b, &err), BGEICL_ERR_ARG);
    CHECK(b == NULL);
    CHECK_EQ_INT(icl_bank_load(REAL_DIR, NULL, NULL), BGEICL_ERR_ARG);
    icl_bank_free(NULL);
}

/* ICL_BANK_MAX_EXAMPLES is the limit: one more is an error. */
TEST(load_example_limit)
{
    char *dir = make_dir();
    if (!dir) {
        CHECK(0);
        return;
    }
    for (int extra = 0; extra <= 1; extra++) {
        int n = ICL_BANK_MAX_EXAMPLES + extra;
        size_t cap = 128 + (size_t)n * 64, at = 0;
        char *doc = malloc(cap);
        at += (size_t)snprintf(doc + at, cap - at,
                               "{\"language\":\"generic\",\"instruction\":\"i\",\"examples\":[");
        for (int i = 0; i < n; i++)
            at += (size_t)snprintf(doc + at, cap - at, "%s{\"query\":\"q%d\",\"response\":\"r\"}",
                                   i ? "," : "", i);
        snprintf(doc + at, cap - at, "]}");
        put(dir, "generic.json", doc, 0);
        free(doc);
        if (extra) {
            expect_load_error(dir, BGEICL_ERR_FORMAT, "generic.json", "over the limit of 256");
        } else {
            icl_bank *b = NULL;
            CHECK_EQ_INT(icl_bank_load(dir, &b, NULL), BGEICL_OK);
            size_t idx[ICL_BANK_MAX_EXAMPLES];
            CHECK_EQ_INT(icl_bank_examples(b, ICL_LANG_GENERIC, NULL), ICL_BANK_MAX_EXAMPLES);
            CHECK_EQ_INT(icl_bank_select(b, ICL_LANG_GENERIC, "q1", 2, 1000, idx),
                         ICL_BANK_MAX_EXAMPLES);
            CHECK_EQ_INT(idx[0], 1);
            CHECK_EQ_INT(idx[1], 0);
            icl_bank_free(b);
        }
    }
    remove_dir(dir);
}

/* ---- allocation failure -------------------------------------------------------- */

/* Fails the nth allocation of a load for n = 0 .. total, stepping by `step`
 * past the first 64; every result is OK or NOMEM, and NOMEM leaves nothing
 * behind (ASan's leak check runs at exit). */
static void alloc_loop(const char *dir, long step)
{
    unsigned long before = bg_alloc_count();
    icl_bank *b = NULL;
    CHECK_EQ_INT(icl_bank_load(dir, &b, NULL), BGEICL_OK);
    icl_bank_free(b);
    long total = (long)(bg_alloc_count() - before);
    CHECK(total > 10);
    int saw_nomem = 0;
    for (long n = 0; n <= total; n += n < 64 ? 1 : step) {
        bgeicl_error err = {0};
        b = (icl_bank *)1;
        bg_fail_after(n);
        bgeicl_code rc = icl_bank_load(dir, &b, &err);
        bg_fail_after(-1);
        CHECK(rc == BGEICL_OK || rc == BGEICL_ERR_NOMEM);
        if (rc == BGEICL_ERR_NOMEM) {
            saw_nomem = 1;
            CHECK(b == NULL);
            CHECK_STR_CONTAINS(err.message, "out of memory");
        }
        if (rc == BGEICL_OK) {
            CHECK(n >= total);
            icl_bank_free(b);
        }
    }
    CHECK(saw_nomem);
}

TEST(load_survives_allocation_failure)
{
    char *dir = make_dir();
    if (!dir) {
        CHECK(0);
        return;
    }
    put(dir, "generic.json", GENERIC_OK, 0);
    put(dir, "python.json", PYTHON_OK, 0);
    alloc_loop(dir, 1); /* every allocation */
    remove_dir(dir);
    alloc_loop(REAL_DIR, 7);
}

int main(void)
{
    bgeicl_error err;
    if (icl_bank_load(REAL_DIR, &real, &err) != BGEICL_OK) {
        fprintf(stderr, "cannot load %s: %s\n", REAL_DIR, err.message);
        printf("bank: 0 passed, 1 failed\n");
        return 1;
    }
    RUN(real_banks_complete);
    RUN(select_picks_the_matching_example);
    RUN(select_respects_len);
    RUN(select_k_larger_than_bank);
    RUN(select_empty_query_keeps_file_order);
    RUN(select_edge_arguments);
    RUN(select_splits_identifiers);
    RUN(select_concurrent_and_deterministic);
    RUN(load_fallback_to_generic);
    RUN(load_escaped_backslash_is_not_nul);
    RUN(load_errors_name_file_and_field);
    RUN(load_missing_generic);
    RUN(load_io_and_argument_errors);
    RUN(load_example_limit);
    RUN(load_survives_allocation_failure);
    icl_bank_free(real);
    return harness_summary("bank");
}
