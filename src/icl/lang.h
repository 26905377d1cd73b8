/*
 * lang.h - programming-language detection for code chunks and queries (icl_).
 *
 * The ICL layer picks its prompt and examples by language, and the server
 * labels metrics with it, so a chunk needs a language even when the client
 * sends none. Three sources, strongest first:
 *
 *   1. the file path, when it has a known extension or a well-known name;
 *   2. the text itself: a shebang or `<?php` decides at once; otherwise a
 *      linear score over hand-weighted features (keywords, operators such
 *      as `:=` `::` `=>` `->`, line shapes such as a Python block header
 *      ending in `:` or a Ruby `end` on its own line, `$var`, `#include`,
 *      generics, comment styles), each feature counted at most a few times
 *      so that one repeated token cannot outvote the rest; the languages
 *      close to the best of these scores then compete on it plus a fixed
 *      linear model learned offline (bench/lang_train.py) over hashed
 *      tokens and token pairs, which separates the close cousins
 *      (JavaScript / TypeScript, C / C++) where the rules cannot;
 *   3. GENERIC, when the best language scores too little, or when the text
 *      reads as English (function words, a question mark, no code
 *      punctuation) more than it reads as code.
 *
 * Limits, on purpose: no parsing and no statistics learned at run time, so
 * a chunk that is valid in two languages goes to the one whose habits it
 * shows (plain C-style statements in a .cpp file often come out as C;
 * untyped TypeScript goes by its words, a guess only as good as the code's
 * likeness to what the model was learned from); a chunk that sits inside a
 * long comment or docstring reads as prose; strings and comments are
 * skipped, so code quoted inside them does not count. docs/LANGUAGES.md has the measured
 * accuracy and where it errs.
 *
 * All functions are pure, thread-safe, allocate nothing and accept any
 * bytes: invalid UTF-8, NUL bytes inside len, empty input.
 */
#ifndef ICL_LANG_H
#define ICL_LANG_H

#include <stddef.h>

typedef enum icl_lang {
    ICL_LANG_GENERIC = 0,
    ICL_LANG_PYTHON,
    ICL_LANG_JAVASCRIPT,
    ICL_LANG_TYPESCRIPT,
    ICL_LANG_JAVA,
    ICL_LANG_CSHARP,
    ICL_LANG_GO,
    ICL_LANG_RUST,
    ICL_LANG_C,
    ICL_LANG_CPP,
    ICL_LANG_RUBY,
    ICL_LANG_PHP,
    ICL_LANG_SHELL,
    ICL_LANG_SQL,
    ICL_LANG_COUNT
} icl_lang;

/* Canonical lower-case name ("generic", "python", ..., "sql"); "generic"
 * for a value out of range. */
const char *icl_lang_name(icl_lang l);

/* Canonical names and common aliases ("py", "js", "ts", "cs", "c#", "golang",
 * "rs", "c++", "cxx", "rb", "sh", "bash", "zsh", "postgresql", ...), ASCII
 * case-insensitive. Returns the icl_lang value, or -1 if unknown or NULL. */
int icl_lang_parse(const char *name);

/* Language of a file by its extension or well-known name ("setup.py" needs
 * nothing special; ".bashrc", "Gemfile", "Rakefile" are known). Any
 * directory part is ignored. GENERIC if unknown or NULL. */
icl_lang icl_lang_from_path(const char *path);

/* Language of text[0..len). A path (may be NULL) whose language is known
 * wins; otherwise the text decides. Natural-language text comes out
 * GENERIC unless it clearly carries code. text may be NULL when len is 0. */
icl_lang icl_lang_detect(const char *text, size_t len, const char *path);

/* For the training tools (bench/lang_detect, bench/lang_train.py) and the
 * tests, not for callers: fills rule[] with the rule scores and
 * feats[0..cap) with the distinct feature buckets in order of first
 * appearance; returns 1 when the rules call the text GENERIC, else 0, and
 * the number of buckets in *nfeats (which may exceed cap). */
int icl_lang_probe(const char *text, size_t len, int rule[ICL_LANG_COUNT], unsigned short *feats,
                   size_t cap, size_t *nfeats);

#endif
