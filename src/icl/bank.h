/*
 * bank.h - the per-language banks of worked examples for in-context
 * learning, and lexical selection of the examples closest to a query (icl_bank_).
 *
 * Files. A bank directory holds one <language>.json per language, named by
 * the canonical name of lang.h ("python.json", "csharp.json", ...):
 *
 *   {"language": "python",
 *    "instruction": "Given a code search query, retrieve the Python code snippet that answers it.",
 *    "examples": [{"query": "...", "response": "..."}, ...]}
 *
 * generic.json is required; a language without a file falls back to it at
 * lookup. Other *.json names (unknown languages, aliases such as js.json)
 * are an error; files that do not end in .json, and hidden files, are
 * ignored. Files load in name order, so the first error is the same on
 * every machine. Every string must be non-empty, valid UTF-8 and free of
 * NUL and of control characters other than tab, newline and carriage
 * return; unknown keys are ignored. Every error names the file and the
 * field (or the byte offset, for malformed JSON).
 *
 * Data structure. One slot per icl_lang; a loaded slot owns its
 * instruction, its examples (bg_strdup'd strings, file order) and an
 * inverted index for selection:
 *
 *   terms[n_terms]  the distinct tokens of the language's examples, sorted
 *                   by strcmp (binary search), each with its postings
 *                   range [first, first + count) in post[];
 *   post[n_post]    (example, weight) pairs in increasing example order;
 *                   weight is the example's precomputed BM25 term weight.
 *
 * Invariants: slot GENERIC is loaded; 1 <= n_ex <= ICL_BANK_MAX_EXAMPLES in
 * every loaded slot; every posting's example is < n_ex; nothing changes
 * after icl_bank_load returns, so every reader below is thread-safe
 * without locks, and icl_bank_select allocates nothing.
 *
 * Selection: Okapi BM25 (k1 = 1.2, b = 0.75, idf = ln(1 + (N - df + 0.5) /
 * (df + 0.5))) over each example's query and response text together,
 * summed over the distinct tokens of the query. Tokens: runs of ASCII
 * letters and digits (bytes >= 0x80 count as letters), split at camelCase
 * boundaries ("readFileSync" -> read file sync, "HTTPServer" -> http
 * server, "utf8String" -> utf8 string; a compound also yields its whole
 * word, "readfilesync", so that an exact identifier and spellings such as
 * "rspec" for "RSpec" match) and at every other byte (so snake_case splits
 * too), ASCII lower-cased and cut to ICL_BANK_MAX_TOKEN bytes; tokens of one byte, all-digit tokens and a small list of English
 * stop words ("how", "to", "the", ...) are dropped, and a final plural "s"
 * is folded ("files" -> file; not after s, u or i: "class", "status",
 * "analysis" stay). The same tokenizer runs on examples and queries.
 */
#ifndef ICL_BANK_H
#define ICL_BANK_H

#include <stddef.h>

#include "bgeicl.h"
#include "lang.h"

/* Most examples one language may hold: selection keeps its scores on the stack. */
#define ICL_BANK_MAX_EXAMPLES 256
/* Longest token, in bytes; longer pieces are cut, in examples and queries alike. */
#define ICL_BANK_MAX_TOKEN 64
/* Distinct query tokens that take part in a selection; later ones are ignored. */
#define ICL_BANK_MAX_QUERY_TERMS 128

typedef struct icl_example {
    const char *query, *response;
} icl_example;

typedef struct icl_bank icl_bank;

/* Loads every <language>.json in dir. On error *out is NULL and err says
 * which file and field: BGEICL_ERR_IO (unreadable directory or file),
 * BGEICL_ERR_FORMAT (bad content, unknown language, no generic.json),
 * BGEICL_ERR_NOMEM, BGEICL_ERR_ARG (dir or out NULL). */
bgeicl_code icl_bank_load(const char *dir, icl_bank **out, bgeicl_error *err);
void icl_bank_free(icl_bank *b);

/* The language's instruction; the generic one when the language has no
 * file or is out of range. NULL only for a NULL bank. */
const char *icl_bank_instruction(const icl_bank *b, icl_lang lang);

/* The language's examples in file order (generic fallback as above):
 * sets *out (when out is not NULL) and returns how many. */
size_t icl_bank_examples(const icl_bank *b, icl_lang lang, const icl_example **out);

/* Writes the indices (into icl_bank_examples' array for the same lang) of
 * the min(k, n) examples most similar to query[0..len) into idx, best
 * first, and returns how many. Equal scores keep example order, so a query
 * with no known token (or an empty one) gets the first min(k, n) examples
 * in file order. Deterministic; query may be NULL when len is 0, and needs
 * no NUL terminator. */
size_t icl_bank_select(const icl_bank *b, icl_lang lang, const char *query, size_t len,
                       size_t k, size_t *idx);

#endif
