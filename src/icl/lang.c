/*
 * lang.c - programming-language detection (see lang.h for the method).
 *
 * The rules: one pass over the bytes, line by line. Each identifier is
 * looked up in a keyword table (sorted once, binary search); operators and line shapes
 * raise named features. Every keyword and feature carries a small weight
 * per language, and counts at most `cap` times, so the score measures how
 * many different habits of a language a chunk shows rather than how long
 * it is. Strings and comments are skipped: their words are English or data
 * and would drown the code. The scan keeps all state on the stack.
 *
 * The rule weights were set by hand, reading the confusions on the tuning
 * half of bench/lang_eval.py's corpus. On top of the rules sits a learned
 * part (see "the learned part" below): a multinomial logistic model over
 * the thirteen languages whose features are hashed tokens and token pairs
 * of the raw text, found by a second, simpler pass (lm_scan). The rules
 * alone decide GENERIC (too little code, or English); otherwise every
 * language within LM_MARGIN of the best rule score gets
 * LM_RULE * rule score + LM_BIAS + its bucket weights, and the highest
 * wins (ties in the fixed preference order). The weights, LM_RULE and
 * LM_MARGIN come from lang_model.inc, which bench/lang_train.py generates
 * from the tuning half only (never the held-out half); regenerate it with
 * `python3 bench/lang_train.py --no-download` after any change to the
 * rules or to lm_scan (the model is fitted to both), never edit it. That
 * script reads the rule scores and buckets through icl_lang_probe (lang.h), so the
 * C code is their only definition. docs/LANGUAGES.md has the held-out
 * figures.
 *
 * Invariants: no allocation, no state outside the stack apart from the
 * keyword index built once; any bytes are safe and nothing past len is
 * read; the same text always gives the same answer.
 */
#include "icl/lang.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Short names for the weight tables. */
enum {
    GEN = ICL_LANG_GENERIC, PY = ICL_LANG_PYTHON, JS = ICL_LANG_JAVASCRIPT,
    TS = ICL_LANG_TYPESCRIPT, JV = ICL_LANG_JAVA, CS = ICL_LANG_CSHARP, GO = ICL_LANG_GO,
    RS = ICL_LANG_RUST, C_ = ICL_LANG_C, CP = ICL_LANG_CPP, RB = ICL_LANG_RUBY,
    PH = ICL_LANG_PHP, SH = ICL_LANG_SHELL, SQ = ICL_LANG_SQL, NLANG = ICL_LANG_COUNT
};

/* ---- names, aliases, paths ---------------------------------------------- */

static const char *const NAMES[NLANG] = {
    "generic", "python", "javascript", "typescript", "java", "csharp", "go",
    "rust", "c", "cpp", "ruby", "php", "shell", "sql",
};

const char *icl_lang_name(icl_lang l)
{
    return (unsigned)l < NLANG ? NAMES[l] : NAMES[GEN];
}

typedef struct alias {
    const char *s;
    int lang;
} alias;

static const alias ALIASES[] = {
    {"text", GEN}, {"plain", GEN}, {"plaintext", GEN}, {"none", GEN},
    {"py", PY}, {"python3", PY}, {"py3", PY},
    {"js", JS}, {"node", JS}, {"nodejs", JS}, {"ecmascript", JS}, {"jsx", JS},
    {"ts", TS}, {"tsx", TS},
    {"c#", CS}, {"cs", CS}, {"c-sharp", CS}, {"dotnet", CS},
    {"golang", GO},
    {"rs", RS},
    {"h", C_},
    {"c++", CP}, {"cxx", CP}, {"cc", CP}, {"hpp", CP},
    {"rb", RB},
    {"php3", PH}, {"php4", PH}, {"php5", PH}, {"php7", PH}, {"php8", PH},
    {"sh", SH}, {"bash", SH}, {"zsh", SH}, {"ksh", SH}, {"dash", SH}, {"posix", SH},
    {"shellscript", SH}, {"shell-script", SH},
    {"postgresql", SQ}, {"postgres", SQ}, {"psql", SQ}, {"plpgsql", SQ}, {"mysql", SQ},
    {"sqlite", SQ}, {"tsql", SQ}, {"t-sql", SQ}, {"plsql", SQ}, {"pl/sql", SQ},
    {"mssql", SQ}, {"mariadb", SQ},
};

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* ASCII case-insensitive equality of s[0..n) and the NUL-terminated lit. */
static int eq_nocase(const char *s, size_t n, const char *lit)
{
    size_t i = 0;
    for (; i < n && lit[i]; i++)
        if (ascii_lower((unsigned char)s[i]) != lit[i])
            return 0;
    return i == n && lit[i] == '\0';
}

int icl_lang_parse(const char *name)
{
    if (!name)
        return -1;
    size_t n = strlen(name);
    for (int l = 0; l < NLANG; l++)
        if (eq_nocase(name, n, NAMES[l]))
            return l;
    for (size_t i = 0; i < sizeof ALIASES / sizeof *ALIASES; i++)
        if (eq_nocase(name, n, ALIASES[i].s))
            return ALIASES[i].lang;
    return -1;
}

static const alias EXTS[] = {
    {"py", PY}, {"pyw", PY}, {"pyi", PY},
    {"js", JS}, {"mjs", JS}, {"cjs", JS}, {"jsx", JS},
    {"ts", TS}, {"tsx", TS}, {"mts", TS}, {"cts", TS},
    {"java", JV},
    {"cs", CS}, {"csx", CS},
    {"go", GO},
    {"rs", RS},
    {"c", C_}, {"h", C_},
    {"cc", CP}, {"cpp", CP}, {"cxx", CP}, {"c++", CP}, {"hpp", CP}, {"hh", CP},
    {"hxx", CP}, {"h++", CP}, {"ipp", CP}, {"tpp", CP}, {"inl", CP}, {"cppm", CP}, {"ixx", CP},
    {"rb", RB}, {"rake", RB}, {"gemspec", RB}, {"ru", RB}, {"rbw", RB},
    {"php", PH}, {"phtml", PH}, {"php3", PH}, {"php4", PH}, {"php5", PH}, {"php7", PH},
    {"php8", PH}, {"phps", PH},
    {"sh", SH}, {"bash", SH}, {"zsh", SH}, {"ksh", SH}, {"dash", SH}, {"bats", SH},
    {"command", SH},
    {"sql", SQ}, {"psql", SQ}, {"pgsql", SQ}, {"plsql", SQ}, {"ddl", SQ}, {"dml", SQ},
};

/* Whole file names, matched exactly (they are case-sensitive on disk). */
static const alias FILENAMES[] = {
    {".bashrc", SH}, {".bash_profile", SH}, {".bash_login", SH}, {".bash_logout", SH},
    {".profile", SH}, {".zshrc", SH}, {".zshenv", SH}, {".zprofile", SH}, {".kshrc", SH},
    {"PKGBUILD", SH}, {"APKBUILD", SH}, {"configure", SH}, {"gradlew", SH},
    {"Gemfile", RB}, {"Rakefile", RB}, {"Guardfile", RB}, {"Podfile", RB},
    {"Vagrantfile", RB}, {"Brewfile", RB}, {"Fastfile", RB}, {"Capfile", RB},
    {"SConstruct", PY}, {"SConscript", PY}, {"wscript", PY},
};

icl_lang icl_lang_from_path(const char *path)
{
    if (!path)
        return ICL_LANG_GENERIC;
    const char *base = path;
    for (const char *p = path; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    for (size_t i = 0; i < sizeof FILENAMES / sizeof *FILENAMES; i++)
        if (strcmp(base, FILENAMES[i].s) == 0)
            return (icl_lang)FILENAMES[i].lang;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base || !dot[1])
        return ICL_LANG_GENERIC;
    /* ".C" and ".H" are C++ by Unix tradition; every other extension is
     * matched case-insensitively (".PY" on case-folding file systems). */
    if (strcmp(dot, ".C") == 0 || strcmp(dot, ".H") == 0)
        return ICL_LANG_CPP;
    size_t n = strlen(dot + 1);
    for (size_t i = 0; i < sizeof EXTS / sizeof *EXTS; i++)
        if (eq_nocase(dot + 1, n, EXTS[i].s))
            return (icl_lang)EXTS[i].lang;
    return ICL_LANG_GENERIC;
}

/* ---- weight tables --------------------------------------------------------- */

typedef struct kw {
    const char *s;
    signed char w[NLANG];
} kw;

/* Identifiers, case-sensitive. "." before a name means "after a dot"
 * (a method or field), "@" an annotation or decorator. Weights: 1 a hint,
 * 3 a habit, 5 nearly unique to the language. */
static const kw KW[] = {
    /* Python */
    {"def", {[PY] = 4, [RB] = 3}},
    {"elif", {[PY] = 5, [SH] = 2}},
    {"lambda", {[PY] = 3, [RB] = 1}},
    {"None", {[PY] = 4, [RS] = 2}},
    {"True", {[PY] = 4}},
    {"False", {[PY] = 4}},
    {"self", {[PY] = 2, [RS] = 1, [RB] = 1}},
    {"cls", {[PY] = 3}},
    {"pass", {[PY] = 3}},
    {"except", {[PY] = 5}},
    {"raise", {[PY] = 4, [RB] = 3}},
    {"nonlocal", {[PY] = 5}},
    {"isinstance", {[PY] = 5}},
    {"len", {[PY] = 3, [GO] = 2}},
    {"dict", {[PY] = 3}},
    {"kwargs", {[PY] = 4}},
    {"args", {[PY] = 1}},
    {"del", {[PY] = 3}},
    {"assert", {[PY] = 2, [C_] = 1, [CP] = 1, [JV] = 1}},
    {"__init__", {[PY] = 5}},
    {"__name__", {[PY] = 5}},
    {"print", {[PY] = 2, [RB] = 1, [PH] = 1}},
    {"with", {[PY] = 2}},
    {"is", {[PY] = 1, [CS] = 1}},
    {"not", {[PY] = 2, [RB] = 1}},
    {"and", {[PY] = 2, [RB] = 1, [PH] = 1}},
    {"or", {[PY] = 2, [RB] = 1, [PH] = 1}},
    {"in", {[PY] = 1, [SH] = 1}},
    {"yield", {[PY] = 2, [RB] = 1, [JS] = 1, [CS] = 1}},
    {"from", {[PY] = 2, [JS] = 1, [TS] = 1}},
    {"import", {[PY] = 2, [JV] = 2, [GO] = 2, [JS] = 2, [TS] = 2}},
    {"global", {[PY] = 2, [PH] = 1}},
    {"str", {[PY] = 2, [RS] = 1}},
    {"bytes", {[PY] = 2}},
    {"range", {[PY] = 2, [GO] = 2}},
    {"super", {[PY] = 1, [JV] = 1, [JS] = 1, [TS] = 1, [RB] = 1}},
    /* JavaScript / TypeScript */
    {"function", {[JS] = 2, [TS] = 2, [PH] = 2, [SH] = 1}},
    {"const", {[JS] = 2, [TS] = 2, [C_] = 1, [CP] = 1, [RS] = 1}},
    {"let", {[JS] = 2, [TS] = 2, [RS] = 2}},
    {"var", {[JS] = 3, [TS] = 1, [CS] = 2, [GO] = 1}},
    {"undefined", {[JS] = 3, [TS] = 3}},
    {"null", {[JS] = 1, [TS] = 1, [JV] = 2, [CS] = 2, [PH] = 1}},
    {"this", {[JS] = 1, [TS] = 1, [JV] = 1, [CS] = 1, [CP] = 1}},
    {"require", {[JS] = 4, [TS] = 1, [RB] = 2, [PH] = 1}},
    {"module", {[JS] = 1, [RB] = 2}},
    {"exports", {[JS] = 4, [TS] = 1}},
    {"prototype", {[JS] = 5, [TS] = 1}},
    {"console", {[JS] = 3, [TS] = 3}},
    {"typeof", {[JS] = 3, [TS] = 3, [CS] = 1}},
    {"instanceof", {[JS] = 2, [TS] = 1, [JV] = 3, [PH] = 2}},
    {"export", {[JS] = 2, [TS] = 2, [SH] = 2}},
    {"async", {[JS] = 1, [TS] = 1, [CS] = 1, [PY] = 1, [RS] = 1}},
    {"await", {[JS] = 1, [TS] = 1, [CS] = 1, [PY] = 1}},
    {"document", {[JS] = 2, [TS] = 2}},
    {"window", {[JS] = 2, [TS] = 2}},
    {"Promise", {[JS] = 2, [TS] = 2}},
    {"JSON", {[JS] = 2, [TS] = 2}},
    {"arguments", {[JS] = 2}},
    {"interface", {[TS] = 3, [JV] = 2, [CS] = 2, [GO] = 1, [PH] = 1}},
    {"readonly", {[TS] = 2, [CS] = 3}},
    {"declare", {[TS] = 5}},
    {"keyof", {[TS] = 5}},
    {"namespace", {[CS] = 3, [CP] = 2, [TS] = 1, [PH] = 2}},
    {"implements", {[JV] = 3, [TS] = 2, [PH] = 2}},
    {"extends", {[JV] = 3, [TS] = 1, [JS] = 1, [PH] = 2}},
    {"abstract", {[JV] = 2, [CS] = 2, [TS] = 2, [PH] = 1}},
    {"enum", {[TS] = 1, [CS] = 1, [JV] = 1, [RS] = 1, [C_] = 1, [CP] = 1}},
    /* TypeScript's type names count only where a type goes (after ":"),
     * since JavaScript uses them as variable names. */
    {"boolean", {[JV] = 3}},
    {"string", {[CS] = 3, [GO] = 1}},
    /* Java */
    {"public", {[JV] = 2, [CS] = 2, [TS] = 2, [PH] = 1}},
    {"private", {[JV] = 2, [CS] = 2, [TS] = 2, [PH] = 1, [RB] = 1}},
    {"protected", {[JV] = 2, [CS] = 2, [TS] = 2, [PH] = 1, [RB] = 1}},
    {"final", {[JV] = 4, [PH] = 1}},
    {"throws", {[JV] = 5}},
    {"permits", {[JV] = 4}},
    {"package", {[JV] = 3, [GO] = 3}},
    {"synchronized", {[JV] = 5}},
    {"String", {[JV] = 3, [CS] = 1, [RS] = 1}},
    {"Integer", {[JV] = 3}},
    {"System", {[JV] = 2, [CS] = 2}},
    {"Object", {[JV] = 2, [JS] = 1, [TS] = 1}},
    {"ArrayList", {[JV] = 3, [CS] = 1}},
    {"HashMap", {[JV] = 2, [RS] = 1}},
    {"@Override", {[JV] = 5}},
    {"@SuppressWarnings", {[JV] = 5}},
    {"@Deprecated", {[JV] = 3}},
    {"@FunctionalInterface", {[JV] = 5}},
    {"@Test", {[JV] = 3}},
    {"@property", {[PY] = 5}},
    {"@staticmethod", {[PY] = 5}},
    {"@classmethod", {[PY] = 5}},
    {"@Component", {[TS] = 3}},
    {"@Injectable", {[TS] = 4}},
    {"@Input", {[TS] = 3}},
    /* C# */
    {"using", {[CS] = 4, [CP] = 1}},
    {"internal", {[CS] = 5}},
    {"sealed", {[CS] = 3, [JV] = 2}},
    {"override", {[CS] = 3, [CP] = 1}},
    {"virtual", {[CS] = 2, [CP] = 3}},
    {"ref", {[CS] = 3, [RS] = 1}},
    {"out", {[CS] = 2}},
    {"params", {[CS] = 2}},
    {"foreach", {[CS] = 4, [PH] = 3}},
    {"nameof", {[CS] = 5}},
    {"bool", {[CS] = 3, [CP] = 2, [C_] = 1, [RS] = 1}},
    {"object", {[CS] = 2}},
    {"base", {[CS] = 2}},
    {"delegate", {[CS] = 4}},
    {"event", {[CS] = 1}},
    {"decimal", {[CS] = 3}},
    {"uint", {[CS] = 2}},
    {"ulong", {[CS] = 3}},
    {"IntPtr", {[CS] = 4}},
    {"Console", {[CS] = 3}},
    {"Task", {[CS] = 2}},
    {"Dictionary", {[CS] = 3}},
    {"get", {[CS] = 1}},
    {"set", {[CS] = 1, [SH] = 1}},
    {"value", {[CS] = 1}},
    {"unsafe", {[CS] = 2, [RS] = 2}},
    {"lock", {[CS] = 2}},
    {"checked", {[CS] = 1}},
    /* Go */
    {"func", {[GO] = 5}},
    {"chan", {[GO] = 5}},
    {"defer", {[GO] = 5}},
    {"go", {[GO] = 2}},
    {"nil", {[GO] = 3, [RB] = 3}},
    {"fmt", {[GO] = 4}},
    {"err", {[GO] = 2}},
    {"make", {[GO] = 2}},
    {"append", {[GO] = 2}},
    {"iota", {[GO] = 5}},
    {"fallthrough", {[GO] = 3}},
    {"rune", {[GO] = 5}},
    {"byte", {[GO] = 3, [JV] = 1, [CS] = 2}},
    {"int64", {[GO] = 3}},
    {"int32", {[GO] = 3}},
    {"uint64", {[GO] = 3}},
    {"uint32", {[GO] = 3}},
    {"uint8", {[GO] = 3}},
    {"float64", {[GO] = 4}},
    {"uintptr", {[GO] = 4}},
    {"map", {[GO] = 1}},
    {"ok", {[GO] = 1}},
    /* Rust */
    {"fn", {[RS] = 5}},
    {"mut", {[RS] = 5}},
    {"impl", {[RS] = 5}},
    {"pub", {[RS] = 4}},
    {"crate", {[RS] = 5}},
    {"mod", {[RS] = 3}},
    {"use", {[RS] = 2, [PH] = 1}},
    {"match", {[RS] = 2}},
    {"Some", {[RS] = 4}},
    {"Ok", {[RS] = 3}},
    {"Err", {[RS] = 3}},
    {"Self", {[RS] = 4}},
    {"trait", {[RS] = 4, [PH] = 2}},
    {"where", {[RS] = 2, [CS] = 1}},
    {"loop", {[RS] = 3}},
    {"usize", {[RS] = 5}},
    {"isize", {[RS] = 5}},
    {"u8", {[RS] = 4}},
    {"u16", {[RS] = 4}},
    {"u32", {[RS] = 4}},
    {"u64", {[RS] = 4}},
    {"i32", {[RS] = 4}},
    {"i64", {[RS] = 4}},
    {"f32", {[RS] = 3}},
    {"f64", {[RS] = 3}},
    {"Vec", {[RS] = 4}},
    {"Box", {[RS] = 3}},
    {"Option", {[RS] = 3, [JV] = 1}},
    {"Result", {[RS] = 2}},
    {"dyn", {[RS] = 5}},
    {"move", {[RS] = 2}},
    {"extern", {[RS] = 1, [C_] = 2, [CP] = 2}},
    {"throw", {[JV] = 1, [CS] = 1, [CP] = 1, [JS] = 1, [TS] = 1, [PH] = 1}},
    {"new", {[JV] = 1, [CS] = 1, [CP] = 1, [JS] = 1, [TS] = 1, [PH] = 1}},
    {"static_assert", {[CP] = 4, [C_] = 1}},
    {".unwrap", {[RS] = 5}},
    {".iter", {[RS] = 3}},
    {".len", {[RS] = 3}},
    {".clone", {[RS] = 3}},
    {".into", {[RS] = 3}},
    /* C */
    {"NULL", {[C_] = 3, [CP] = 1, [SQ] = 1}},
    {"struct", {[C_] = 2, [CP] = 2, [RS] = 1, [GO] = 1, [CS] = 1}},
    {"typedef", {[C_] = 3, [CP] = 2}},
    {"sizeof", {[C_] = 3, [CP] = 2}},
    {"unsigned", {[C_] = 3, [CP] = 2}},
    {"char", {[C_] = 2, [CP] = 2, [JV] = 1, [CS] = 1}},
    {"int", {[C_] = 1, [CP] = 1, [JV] = 1, [CS] = 1}},
    {"long", {[C_] = 2, [CP] = 1, [JV] = 1, [CS] = 1}},
    {"void", {[C_] = 2, [CP] = 2, [JV] = 1, [CS] = 1}},
    {"static", {[C_] = 1, [CP] = 1, [JV] = 1, [CS] = 1, [PH] = 1}},
    {"malloc", {[C_] = 5, [CP] = 2}},
    {"free", {[C_] = 3, [CP] = 1}},
    {"printf", {[C_] = 3, [CP] = 2, [SH] = 2}},
    {"fprintf", {[C_] = 4, [CP] = 2}},
    {"memcpy", {[C_] = 4, [CP] = 2}},
    {"memset", {[C_] = 4, [CP] = 2}},
    {"strlen", {[C_] = 3, [CP] = 2, [PH] = 2}},
    {"strcmp", {[C_] = 4, [CP] = 2}},
    {"size_t", {[C_] = 4, [CP] = 2}},
    {"uint8_t", {[C_] = 3, [CP] = 2}},
    {"uint32_t", {[C_] = 3, [CP] = 2}},
    {"uint64_t", {[C_] = 3, [CP] = 2}},
    {"int64_t", {[C_] = 3, [CP] = 2}},
    {"goto", {[C_] = 3, [CP] = 1}},
    {"register", {[C_] = 2}},
    {"volatile", {[C_] = 2, [CP] = 1}},
    {"stderr", {[C_] = 2, [CP] = 1}},
    {"errno", {[C_] = 3, [CP] = 2}},
    {"FILE", {[C_] = 2, [CP] = 1}},
    /* C++ */
    {"std", {[CP] = 5}},
    {"template", {[CP] = 5}},
    {"typename", {[CP] = 5}},
    {"nullptr", {[CP] = 5}},
    {"auto", {[CP] = 3}},
    {"constexpr", {[CP] = 5}},
    {"noexcept", {[CP] = 5}},
    {"operator", {[CP] = 4, [CS] = 1}},
    {"explicit", {[CP] = 4}},
    {"friend", {[CP] = 4}},
    {"mutable", {[CP] = 4}},
    {"inline", {[C_] = 1, [CP] = 2}},
    {"static_cast", {[CP] = 5}},
    {"dynamic_cast", {[CP] = 5}},
    {"reinterpret_cast", {[CP] = 5}},
    {"const_cast", {[CP] = 5}},
    {"decltype", {[CP] = 5}},
    {"unique_ptr", {[CP] = 5}},
    {"shared_ptr", {[CP] = 5}},
    {"vector", {[CP] = 3}},
    {"cout", {[CP] = 5}},
    {"cerr", {[CP] = 5}},
    {"endl", {[CP] = 5}},
    {"class", {[CP] = 1, [JV] = 1, [CS] = 1, [PY] = 1, [RB] = 1, [PH] = 1, [TS] = 1, [JS] = 1}},
    {"delete", {[CP] = 2}},
    {"true", {[CP] = 1, [JS] = 1, [TS] = 1, [JV] = 1, [CS] = 1, [RS] = 1, [RB] = 1, [PH] = 1, [GO] = 1}},
    {"false", {[CP] = 1, [JS] = 1, [TS] = 1, [JV] = 1, [CS] = 1, [RS] = 1, [RB] = 1, [PH] = 1, [GO] = 1}},
    /* googletest, C++ only */
    {"TEST", {[CP] = 3}},
    {"TEST_F", {[CP] = 5}},
    {"TYPED_TEST", {[CP] = 5}},
    {"INSTANTIATE_TEST_SUITE_P", {[CP] = 5}},
    {"MOCK_METHOD", {[CP] = 5}},
    {"TEST_P", {[CP] = 5}},
    {"EXPECT_EQ", {[CP] = 4}},
    {"EXPECT_NE", {[CP] = 4}},
    {"EXPECT_TRUE", {[CP] = 4}},
    {"EXPECT_FALSE", {[CP] = 4}},
    {"EXPECT_STREQ", {[CP] = 4}},
    {"EXPECT_THAT", {[CP] = 5}},
    {"EXPECT_CALL", {[CP] = 5}},
    {"ASSERT_EQ", {[CP] = 4}},
    {"ASSERT_NE", {[CP] = 4}},
    {"ASSERT_TRUE", {[CP] = 4}},
    {"ASSERT_FALSE", {[CP] = 4}},
    {".push_back", {[CP] = 5}},
    {".c_str", {[CP] = 5}},
    {".size", {[CP] = 2, [JV] = 2, [RB] = 1}},
    /* Ruby */
    {"end", {[RB] = 3}},
    {"elsif", {[RB] = 5}},
    {"unless", {[RB] = 4}},
    {"until", {[RB] = 2, [SH] = 2}},
    {"begin", {[RB] = 2}},
    {"rescue", {[RB] = 5}},
    {"ensure", {[RB] = 4}},
    {"attr_accessor", {[RB] = 5}},
    {"attr_reader", {[RB] = 5}},
    {"attr_writer", {[RB] = 5}},
    {"puts", {[RB] = 4}},
    {"when", {[RB] = 2}},
    {"proc", {[RB] = 2}},
    {"__FILE__", {[RB] = 2, [PH] = 1}},
    {".new", {[RB] = 4}},
    {".each", {[RB] = 4}},
    {".nil?", {[RB] = 5}},
    {"require_relative", {[RB] = 5}},
    {".freeze", {[RB] = 4}},
    /* PHP */
    {"echo", {[PH] = 3, [SH] = 3}},
    {"isset", {[PH] = 5}},
    {"unset", {[PH] = 3, [SH] = 3}},
    {"elseif", {[PH] = 5}},
    {"endif", {[PH] = 5}},
    {"endforeach", {[PH] = 5}},
    {"require_once", {[PH] = 5}},
    {"include_once", {[PH] = 5}},
    {"__construct", {[PH] = 6}},
    {"array", {[PH] = 3}},
    {"die", {[PH] = 2}},
    {"empty", {[PH] = 1}},
    /* shell */
    {"fi", {[SH] = 6}},
    {"esac", {[SH] = 6}},
    {"done", {[SH] = 3}},
    {"then", {[SH] = 3, [RB] = 1}},
    {"do", {[SH] = 2, [RB] = 1}},
    {"local", {[SH] = 3}},
    {"shift", {[SH] = 3}},
    {"exit", {[SH] = 2, [PH] = 1}},
    {"trap", {[SH] = 4}},
    {"grep", {[SH] = 4}},
    {"sed", {[SH] = 4}},
    {"awk", {[SH] = 4}},
    {"xargs", {[SH] = 4}},
    {"mkdir", {[SH] = 2}},
    {"rm", {[SH] = 3}},
    {"cd", {[SH] = 3}},
    {"dirname", {[SH] = 3}},
    {"basename", {[SH] = 2}},
    {"eval", {[SH] = 1, [JS] = 1, [PH] = 1}},
    {"exec", {[SH] = 2}},
    {"source", {[SH] = 1}},
    {"case", {[SH] = 1}},
    /* method habits, after a dot */
    {".length", {[JS] = 2, [TS] = 2, [JV] = 1}},
    {".Length", {[CS] = 4}},
    {".push", {[JS] = 2, [TS] = 2}},
    {".prototype", {[JS] = 5}},
    {".then", {[JS] = 3, [TS] = 3}},
    {".forEach", {[JS] = 2, [TS] = 2, [JV] = 1}},
    {".log", {[JS] = 2, [TS] = 2}},
    {".toString", {[JS] = 2, [JV] = 2, [TS] = 2}},
    {".ToString", {[CS] = 4}},
    {".equals", {[JV] = 4}},
    {".println", {[JV] = 4}},
    {".Println", {[GO] = 4}},
    {".Printf", {[GO] = 4}},
    {".Sprintf", {[GO] = 4}},
    {".Errorf", {[GO] = 4}},
    {".append", {[PY] = 2, [JV] = 1}},
    {".format", {[PY] = 3}},
    {".items", {[PY] = 3}},
    {".join", {[PY] = 2, [JS] = 1}},
    {".startswith", {[PY] = 4}},
    {".endswith", {[PY] = 4}},
    {".strip", {[PY] = 3, [RB] = 2}},
    {".startsWith", {[JS] = 2, [TS] = 2, [JV] = 2}},
    {".StartsWith", {[CS] = 4}},
};

/* SQL keywords, matched case-insensitively (keys in lower case). Upper-case
 * spelling, the SQL habit, counts double; so does `strong` lower case. */
typedef struct sqlkw {
    const char *s;
    signed char w;
    signed char strong; /* 1: rare outside SQL even in lower case */
} sqlkw;

static const sqlkw SQLKW[] = {
    {"select", 3, 1}, {"from", 1, 0}, {"where", 2, 0}, {"insert", 3, 0}, {"into", 2, 0},
    {"values", 2, 0}, {"update", 1, 0}, {"delete", 1, 0}, {"create", 3, 0}, {"table", 2, 0},
    {"alter", 3, 1}, {"drop", 2, 0}, {"index", 1, 0}, {"primary", 3, 1}, {"key", 1, 0},
    {"foreign", 3, 1}, {"references", 3, 1}, {"constraint", 3, 1}, {"unique", 1, 0},
    {"default", 1, 0}, {"varchar", 4, 1}, {"integer", 1, 0}, {"text", 1, 0},
    {"timestamp", 2, 0}, {"serial", 2, 0}, {"returns", 3, 1}, {"language", 2, 0},
    {"function", 1, 0}, {"replace", 1, 0}, {"join", 2, 0}, {"inner", 3, 1}, {"outer", 2, 0},
    {"on", 1, 0}, {"group", 2, 0}, {"order", 1, 0}, {"by", 1, 0}, {"having", 3, 1},
    {"union", 2, 0}, {"distinct", 2, 0}, {"grant", 3, 1}, {"revoke", 3, 1}, {"schema", 2, 0},
    {"begin", 1, 0}, {"commit", 2, 0}, {"rollback", 2, 0}, {"trigger", 3, 1},
    {"procedure", 3, 1}, {"view", 1, 0}, {"declare", 1, 0}, {"immutable", 2, 0},
    {"strict", 1, 0}, {"plpgsql", 5, 1}, {"cascade", 3, 1}, {"execute", 1, 0},
    {"exists", 1, 0}, {"coalesce", 3, 1}, {"nextval", 4, 1}, {"regclass", 4, 1},
    {"bigint", 3, 1}, {"smallint", 4, 1}, {"numeric", 2, 0}, {"sequence", 2, 0},
    {"extension", 2, 0}, {"cast", 2, 0}, {"aggregate", 3, 1}, {"setof", 4, 1},
    {"as", 1, 0}, {"and", 1, 0}, {"or", 1, 0}, {"not", 1, 0}, {"null", 1, 0}, {"is", 1, 0},
    {"in", 1, 0}, {"set", 1, 0}, {"case", 1, 0}, {"when", 1, 0}, {"then", 1, 0},
    {"else", 1, 0}, {"end", 1, 0}, {"if", 1, 0}, {"limit", 2, 0}, {"offset", 1, 0},
    {"like", 2, 0}, {"between", 2, 0}, {"count", 1, 0}, {"sum", 1, 0}, {"asc", 2, 0},
    {"desc", 2, 0}, {"column", 2, 0}, {"add", 1, 0}, {"comment", 1, 0}, {"owner", 1, 0},
    {"to", 1, 0}, {"with", 1, 0}, {"returning", 3, 1}, {"truncate", 2, 0},
    {"transaction", 2, 0}, {"parallel", 1, 0}, {"safe", 1, 0}, {"cost", 1, 0},
    {"boolean", 1, 0}, {"char", 1, 0}, {"oid", 2, 0}, {"void", 1, 0}, {"type", 1, 0},
    {"operator", 1, 0}, {"all", 1, 0}, {"any", 1, 0}, {"row", 1, 0}, {"rows", 1, 0},
    {"using", 1, 0}, {"over", 2, 0}, {"partition", 2, 0}, {"temp", 1, 0}, {"temporary", 2, 0},
    {"database", 2, 0}, {"role", 1, 0}, {"user", 1, 0}, {"privileges", 3, 1},
};

/* English function words that code rarely uses as identifiers: the
 * evidence for GENERIC. */
static const char *const PROSE[] = {
    "a", "about", "an", "are", "best", "between", "can", "could", "difference", "does",
    "how", "i", "into", "it", "its", "me", "my", "of", "our", "should", "some", "than",
    "that", "the", "there", "to", "was", "way", "we", "what", "which", "why", "would",
    "you", "your", "when", "only", "whether", "where", "after", "before", "given",
};

/* Features that are not single identifiers. */
enum feat {
    F_SHEBANG_PY, F_SHEBANG_JS, F_SHEBANG_RB, F_SHEBANG_PHP, F_SHEBANG_SH, F_PHP_OPEN,
    F_PHP_CLOSE, F_INCLUDE_H, F_INCLUDE_STD, F_INCLUDE_HPP, F_PP, F_PP_DEFINE, F_CS_PP,
    F_RS_ATTR, F_HASH_COMMENT, F_SLASH_COMMENT, F_BLOCK_COMMENT, F_DASH_COMMENT,
    F_TRIPLE_QUOTE, F_FSTRING, F_CS_INTERP, F_BACKTICK, F_DQ_DOLLAR, F_DQ_HASHBRACE,
    F_SQ_LONG, F_DOLLAR_THIS, F_DOLLAR_VAR, F_DOLLAR_ARROW, F_DOLLAR_ASSIGN, F_DOLLAR_PAREN,
    F_DOLLAR_SPECIAL, F_SH_TEST, F_DASH_FLAG, F_SEMISEMI, F_REDIRECT, F_WALRUS, F_FAT_ARROW,
    F_ARROW_MEMBER, F_ARROW_RET, F_COLONCOLON, F_STRICT_EQ, F_OPT_CHAIN, F_NULLISH, F_RANGE,
    F_ELLIPSIS, F_CHAN, F_RS_MACRO, F_TS_NONNULL, F_RS_LIFETIME, F_RS_REF, F_PY_SELF_PARAM,
    F_PY_BLOCK, F_CPP_ACCESS, F_END_SEMI, F_END_LBRACE, F_END_BARE, F_RB_END, F_SH_CLOSER,
    F_GENERIC, F_TS_TYPE, F_PY_TYPE, F_RS_TYPE, F_RET_TYPE, F_DOT_UPPER_CALL,
    F_DOT_LOWER_CALL, F_PHP_NS, F_CPP_REF, F_C_PTR_DECL, F_C_VOID_PARAMS, F_RB_SYMBOL,
    F_RB_BLOCK, F_RS_CLOSURE, F_RB_IVAR, F_AT_LINE, F_CS_ATTR_LINE, F_RS_TRY, F_TS_OPTIONAL,
    F_CS_NULLABLE, F_RB_PRED, F_HEREDOC, F_RB_HEREDOC, F_LINE_CONT, F_RS_NUM, F_C_NUM,
    F_PHP_CONCAT_EQ, F_RB_MATCH, F_PUBLIC_FUNCTION, F_LET_MUT, F_PUB_FN, F_USING_SYSTEM,
    F_USING_NS, F_GO_VAR_TYPE, F_GO_TYPE_DECL, F_TS_TYPE_ALIAS, F_JS_IMPORT_FROM,
    F_PY_FROM_IMPORT, F_GO_IMPORT, F_JV_IMPORT, F_RB_CLASS_LT, F_STATIC_SCOPE, F_THIS_ARROW,
    F_TAB_INDENT, F_TYPED_PARAM, F_ADDR_OF, F_CAMEL, F_SNAKE, F_ARROW_UPPER_CALL, F_STREAM,
    F_CPP_NS, F_SQL_STMT, F_CS_DOC, F_METHOD_UPPER, F_CPP_INHERIT, F_CPP_REF_DECL, F_CPP_PTR_STYLE,
    F_TS_AS, F_TS_PROP, F_CPP_LAMBDA, F_CPP_INIT, F_RANGE_FOR, F_TS_TYPED_VAR, F_INCLUDE_QH, F_CS_ACCESSOR, F_RB_DEF, F_CPP_MEMBER, F_PP_LINE_COMMENT,
    F_PP_BLOCK_COMMENT, F_JAVADOC, F_JSDOC_TYPE, F_JV_METHOD, F_NUM
};

typedef struct feature {
    signed char w[NLANG];
    unsigned char cap;
} feature;

#define BRACES [C_] = 1, [CP] = 1, [JV] = 1, [CS] = 1, [GO] = 1, [RS] = 1, [JS] = 1, [TS] = 1, [PH] = 1

static const feature FEATS[F_NUM] = {
    [F_SHEBANG_PY] = {{[PY] = 20}, 1},
    [F_SHEBANG_JS] = {{[JS] = 20}, 1},
    [F_SHEBANG_RB] = {{[RB] = 20}, 1},
    [F_SHEBANG_PHP] = {{[PH] = 20}, 1},
    [F_SHEBANG_SH] = {{[SH] = 20}, 1},
    [F_PHP_OPEN] = {{[PH] = 15}, 1},
    [F_PHP_CLOSE] = {{[PH] = 4}, 1},
    [F_INCLUDE_H] = {{[C_] = 5, [CP] = 3}, 3},
    [F_INCLUDE_STD] = {{[CP] = 7, [C_] = 2}, 3},
    [F_INCLUDE_HPP] = {{[CP] = 8, [C_] = 2}, 2},
    [F_PP] = {{[C_] = 3, [CP] = 2, [CS] = 1}, 3},
    [F_PP_DEFINE] = {{[C_] = 4, [CP] = 2}, 3},
    [F_CS_PP] = {{[CS] = 6}, 2},
    [F_RS_ATTR] = {{[RS] = 6}, 2},
    [F_HASH_COMMENT] = {{[PY] = 2, [RB] = 2, [SH] = 2}, 2},
    [F_SLASH_COMMENT] = {{BRACES}, 2},
    [F_BLOCK_COMMENT] = {{[C_] = 1, [CP] = 1, [JV] = 1, [CS] = 1, [JS] = 1, [TS] = 1, [PH] = 1, [SQ] = 1}, 1},
    [F_DASH_COMMENT] = {{[SQ] = 4}, 2},
    [F_TRIPLE_QUOTE] = {{[PY] = 4}, 1},
    [F_FSTRING] = {{[PY] = 3}, 2},
    [F_CS_INTERP] = {{[CS] = 5}, 2},
    [F_BACKTICK] = {{[JS] = 1, [TS] = 1, [GO] = 1, [SH] = 1}, 2},
    [F_DQ_DOLLAR] = {{[SH] = 3, [PH] = 1}, 3},
    [F_DQ_HASHBRACE] = {{[RB] = 4}, 2},
    [F_SQ_LONG] = {{[PY] = 1, [JS] = 1, [TS] = 1, [RB] = 1, [PH] = 1, [SH] = 1, [SQ] = 2,
                    [C_] = -2, [CP] = -2, [JV] = -3, [CS] = -3, [GO] = -3, [RS] = -2}, 3},
    [F_DOLLAR_THIS] = {{[PH] = 6}, 2},
    [F_DOLLAR_VAR] = {{[PH] = 2, [SH] = 2}, 4},
    [F_DOLLAR_ARROW] = {{[PH] = 4}, 2},
    [F_DOLLAR_ASSIGN] = {{[PH] = 3}, 2},
    [F_DOLLAR_PAREN] = {{[SH] = 4, [JS] = 1}, 3},
    [F_DOLLAR_SPECIAL] = {{[SH] = 4}, 2},
    [F_SH_TEST] = {{[SH] = 4}, 2},
    [F_DASH_FLAG] = {{[SH] = 2}, 3},
    [F_SEMISEMI] = {{[SH] = 5}, 2},
    [F_REDIRECT] = {{[SH] = 5}, 2},
    [F_WALRUS] = {{[GO] = 4, [SQ] = 1}, 3},
    [F_FAT_ARROW] = {{[JS] = 2, [TS] = 2, [CS] = 2, [PH] = 2, [RS] = 2, [RB] = 1}, 2},
    [F_ARROW_MEMBER] = {{[C_] = 2, [CP] = 2, [PH] = 2}, 3},
    [F_ARROW_RET] = {{[RS] = 3, [PY] = 3, [CP] = 1}, 2},
    [F_COLONCOLON] = {{[CP] = 3, [RS] = 3, [PH] = 2, [RB] = 1, [SQ] = 1}, 3},
    [F_STRICT_EQ] = {{[JS] = 4, [TS] = 4, [PH] = 3}, 2},
    [F_OPT_CHAIN] = {{[JS] = 2, [TS] = 2, [CS] = 2}, 2},
    [F_NULLISH] = {{[CS] = 2, [JS] = 1, [TS] = 1, [PH] = 2}, 2},
    [F_RANGE] = {{[RS] = 2, [RB] = 1}, 2},
    [F_ELLIPSIS] = {{[JS] = 1, [TS] = 1, [GO] = 1, [JV] = 1, [CP] = 1}, 2},
    [F_CHAN] = {{[GO] = 4}, 2},
    [F_RS_MACRO] = {{[RS] = 5}, 3},
    [F_TS_NONNULL] = {{[TS] = 3}, 2},
    [F_RS_LIFETIME] = {{[RS] = 6}, 2},
    [F_RS_REF] = {{[RS] = 5}, 2},
    [F_PY_SELF_PARAM] = {{[PY] = 5}, 2},
    [F_PY_BLOCK] = {{[PY] = 5}, 3},
    [F_CPP_ACCESS] = {{[CP] = 5}, 2},
    [F_END_SEMI] = {{[C_] = 1, [CP] = 1, [JV] = 1, [CS] = 1, [PH] = 1, [RS] = 1, [SQ] = 1,
                     [PY] = -2, [GO] = -2, [RB] = -2, [SH] = -1}, 4},
    [F_END_LBRACE] = {{BRACES, [PY] = -2, [RB] = -1, [SQ] = -1}, 3},
    [F_END_BARE] = {{[PY] = 1, [GO] = 1, [RB] = 1, [SH] = 1, [JS] = 1, [TS] = 1}, 4},
    [F_RB_END] = {{[RB] = 5}, 2},
    [F_SH_CLOSER] = {{[SH] = 5}, 2},
    [F_GENERIC] = {{[JV] = 1, [CS] = 1, [TS] = 1, [RS] = 1, [CP] = 1}, 3},
    [F_TS_TYPE] = {{[TS] = 4}, 3},
    [F_PY_TYPE] = {{[PY] = 2}, 2},
    [F_RS_TYPE] = {{[RS] = 3}, 3},
    [F_RET_TYPE] = {{[TS] = 3, [PH] = 1}, 2},
    [F_DOT_UPPER_CALL] = {{[CS] = 2, [GO] = 2, [CP] = 1}, 3},
    [F_DOT_LOWER_CALL] = {{[JV] = 1, [JS] = 1, [TS] = 1, [PY] = 1}, 3},
    [F_PHP_NS] = {{[PH] = 4}, 2},
    [F_CPP_REF] = {{[CP] = 3}, 2},
    [F_C_PTR_DECL] = {{[C_] = 2, [CP] = 1}, 3},
    [F_C_VOID_PARAMS] = {{[C_] = 4}, 1},
    [F_RB_SYMBOL] = {{[RB] = 3}, 3},
    [F_RB_BLOCK] = {{[RB] = 5}, 2},
    [F_RS_CLOSURE] = {{[RS] = 3}, 2},
    [F_RB_IVAR] = {{[RB] = 3}, 3},
    [F_AT_LINE] = {{[PY] = 1, [JV] = 1, [TS] = 1}, 2},
    [F_CS_ATTR_LINE] = {{[CS] = 4}, 2},
    [F_RS_TRY] = {{[RS] = 3}, 2},
    [F_TS_OPTIONAL] = {{[TS] = 3}, 2},
    [F_CS_NULLABLE] = {{[CS] = 2}, 2},
    [F_RB_PRED] = {{[RB] = 4}, 2},
    [F_HEREDOC] = {{[SH] = 3, [RB] = 1, [PH] = 1}, 1},
    [F_RB_HEREDOC] = {{[RB] = 4}, 1},
    [F_LINE_CONT] = {{[SH] = 1, [C_] = 1, [PY] = 1}, 2},
    [F_RS_NUM] = {{[RS] = 4}, 2},
    [F_C_NUM] = {{[C_] = 1, [CP] = 1, [CS] = 1, [JV] = 1}, 2},
    [F_PHP_CONCAT_EQ] = {{[PH] = 3}, 2},
    [F_RB_MATCH] = {{[RB] = 3}, 1},
    [F_PUBLIC_FUNCTION] = {{[PH] = 5}, 2},
    [F_LET_MUT] = {{[RS] = 4}, 2},
    [F_PUB_FN] = {{[RS] = 3}, 2},
    [F_USING_SYSTEM] = {{[CS] = 6}, 1},
    [F_USING_NS] = {{[CP] = 6}, 1},
    [F_GO_VAR_TYPE] = {{[GO] = 3}, 2},
    [F_GO_TYPE_DECL] = {{[GO] = 5}, 2},
    [F_TS_TYPE_ALIAS] = {{[TS] = 3}, 2},
    [F_JS_IMPORT_FROM] = {{[JS] = 2, [TS] = 3}, 2},
    [F_PY_FROM_IMPORT] = {{[PY] = 5}, 2},
    [F_GO_IMPORT] = {{[GO] = 5}, 1},
    [F_JV_IMPORT] = {{[JV] = 5}, 2},
    [F_RB_CLASS_LT] = {{[RB] = 5}, 1},
    [F_STATIC_SCOPE] = {{[PH] = 4}, 2},
    [F_THIS_ARROW] = {{[CP] = 4}, 2},
    [F_TAB_INDENT] = {{[GO] = 1}, 2},
    [F_TYPED_PARAM] = {{[TS] = 3, [PY] = 1, [RS] = 1}, 3},
    [F_ADDR_OF] = {{[C_] = 1, [CP] = 1, [GO] = 1, [RS] = 1}, 2},
    [F_CAMEL] = {{[JV] = 1, [JS] = 1, [TS] = 1, [CS] = 1, [GO] = 1}, 3},
    [F_SNAKE] = {{[C_] = 1, [CP] = 1, [PY] = 1, [RS] = 1, [RB] = 1, [PH] = 1, [SH] = 1, [SQ] = 1}, 3},
    [F_ARROW_UPPER_CALL] = {{[CP] = 2}, 2},
    [F_STREAM] = {{[CP] = 3}, 2},
    [F_CPP_NS] = {{[CP] = 4}, 1},
    [F_SQL_STMT] = {{[SQ] = 5}, 3},
    [F_CS_DOC] = {{[CS] = 5}, 1},
    [F_METHOD_UPPER] = {{[CS] = 3, [CP] = 1}, 2},
    [F_CPP_INHERIT] = {{[CP] = 5}, 1},
    [F_CPP_REF_DECL] = {{[CP] = 3}, 2},
    [F_CPP_PTR_STYLE] = {{[CP] = 1}, 1},
    [F_TS_AS] = {{[TS] = 3}, 2},
    [F_TS_PROP] = {{[TS] = 3}, 2},
    [F_CPP_LAMBDA] = {{[CP] = 5}, 1},
    [F_CPP_INIT] = {{[CP] = 3}, 1},
    [F_RANGE_FOR] = {{[CP] = 2, [JV] = 2}, 1},
    [F_TS_TYPED_VAR] = {{[TS] = 6, [RS] = 2}, 2},
    [F_INCLUDE_QH] = {{[C_] = 3, [CP] = 3}, 3},
    [F_CS_ACCESSOR] = {{[CS] = 6}, 2},
    [F_RB_DEF] = {{[RB] = 4}, 2},
    [F_CPP_MEMBER] = {{[CP] = 2}, 2},
    [F_PP_LINE_COMMENT] = {{[CP] = 3, [CS] = 1}, 2},
    [F_PP_BLOCK_COMMENT] = {{[C_] = 3}, 2},
    [F_JAVADOC] = {{[JV] = 4}, 1},
    [F_JSDOC_TYPE] = {{[JS] = 4}, 1},
    [F_JV_METHOD] = {{[JV] = 3}, 2},
};


/* ---- keyword index --------------------------------------------------------- */

#define NKW (sizeof KW / sizeof *KW)
#define NSQL (sizeof SQLKW / sizeof *SQLKW)
#define NPROSE (sizeof PROSE / sizeof *PROSE)

/* Sorted views of the tables, built once: the tables stay grouped by
 * language for the reader, the lookups stay O(log n). */
static uint16_t kw_order[NKW], sql_order[NSQL], prose_order[NPROSE];
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

static int cmp_kw(const void *a, const void *b)
{
    return strcmp(KW[*(const uint16_t *)a].s, KW[*(const uint16_t *)b].s);
}
static int cmp_sql(const void *a, const void *b)
{
    return strcmp(SQLKW[*(const uint16_t *)a].s, SQLKW[*(const uint16_t *)b].s);
}
static int cmp_prose(const void *a, const void *b)
{
    return strcmp(PROSE[*(const uint16_t *)a], PROSE[*(const uint16_t *)b]);
}

static void build_index(void)
{
    for (size_t i = 0; i < NKW; i++)
        kw_order[i] = (uint16_t)i;
    for (size_t i = 0; i < NSQL; i++)
        sql_order[i] = (uint16_t)i;
    for (size_t i = 0; i < NPROSE; i++)
        prose_order[i] = (uint16_t)i;
    qsort(kw_order, NKW, sizeof *kw_order, cmp_kw);
    qsort(sql_order, NSQL, sizeof *sql_order, cmp_sql);
    qsort(prose_order, NPROSE, sizeof *prose_order, cmp_prose);
}

/* Compares s[0..n) with the NUL-terminated key like strcmp. */
static int cmp_key(const char *s, size_t n, const char *key)
{
    size_t i = 0;
    for (; i < n && key[i]; i++)
        if ((unsigned char)s[i] != (unsigned char)key[i])
            return (unsigned char)s[i] - (unsigned char)key[i];
    return i < n ? 1 : (key[i] ? -1 : 0);
}

/* Index into the table behind order (strings reached by get), or -1. */
#define DEFINE_FIND(fn, order, count, get)                                      \
    static int fn(const char *s, size_t n)                                      \
    {                                                                           \
        size_t lo = 0, hi = count;                                              \
        while (lo < hi) {                                                       \
            size_t mid = (lo + hi) / 2;                                         \
            int c = cmp_key(s, n, get(order[mid]));                             \
            if (c == 0)                                                         \
                return order[mid];                                              \
            if (c < 0)                                                          \
                hi = mid;                                                       \
            else                                                                \
                lo = mid + 1;                                                   \
        }                                                                       \
        return -1;                                                              \
    }
#define KW_S(i) KW[i].s
#define SQL_S(i) SQLKW[i].s
#define PROSE_S(i) PROSE[i]
DEFINE_FIND(find_kw, kw_order, NKW, KW_S)
DEFINE_FIND(find_sql, sql_order, NSQL, SQL_S)
DEFINE_FIND(find_prose, prose_order, NPROSE, PROSE_S)

/* ---- the scan --------------------------------------------------------------- */

enum { KW_CAP = 3, MAX_IDENT = 40 };

typedef struct scan {
    const unsigned char *s;
    size_t n;
    int score[NLANG];
    unsigned char kw_hits[NKW];
    unsigned char sql_hits[NSQL];
    unsigned char f_hits[F_NUM];
    int prose;       /* English function words seen */
    int code_punct;  /* bytes of ( ) { } [ ] ; = < > $ * | & outside strings and comments */
    /* the current line */
    size_t line_start;
    int tokens;          /* tokens on the line so far */
    const unsigned char *first_id; /* the line's first identifier */
    size_t first_len;
    int member_colon;    /* the line began "name: " (a typed member or a key) */
    unsigned char last;  /* last significant byte on the line, 0 if none */
    /* the previous token */
    const unsigned char *prev_id;
    size_t prev_len;
    size_t prev_end;     /* offset just past the previous identifier */
    unsigned char prev_punct;
    int in_block;        /* inside a C-style block comment */
    int in_triple;       /* inside a Python triple-quoted string: the quote */
    int in_backtick;     /* inside a backtick string */
    int in_dq;           /* inside a double-quoted string that spans lines */
    unsigned char br[32]; /* open brackets, innermost last */
    int depth;
} scan;

/* The innermost open bracket, or 0. */
static int inner(const scan *sc)
{
    return sc->depth > 0 && sc->depth <= (int)sizeof sc->br ? sc->br[sc->depth - 1] : 0;
}

static void feat(scan *sc, enum feat f)
{
    if (sc->f_hits[f] >= FEATS[f].cap)
        return;
    sc->f_hits[f]++;
    for (int l = 0; l < NLANG; l++)
        sc->score[l] += FEATS[f].w[l];
}

static void keyword(scan *sc, int k)
{
    if (k < 0 || sc->kw_hits[k] >= KW_CAP)
        return;
    sc->kw_hits[k]++;
    for (int l = 0; l < NLANG; l++)
        sc->score[l] += KW[k].w[l];
}

static int is_id_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static int is_id(int c)
{
    return is_id_start(c) || (c >= '0' && c <= '9');
}
static int is_upper(int c)
{
    return c >= 'A' && c <= 'Z';
}
static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Byte at i, or 0 past the end of the line (the scan never reads past n). */
static int at(const scan *sc, size_t i, size_t eol)
{
    return i < eol ? sc->s[i] : 0;
}

/* Offset of the next non-blank byte at or after i on the line. */
static size_t skip_sp(const scan *sc, size_t i, size_t eol)
{
    while (i < eol && is_space(sc->s[i]))
        i++;
    return i;
}

/* Length of the identifier at i (0 if none). */
static size_t id_len(const scan *sc, size_t i, size_t eol)
{
    size_t j = i;
    if (j < eol && is_id_start(sc->s[j]))
        while (j < eol && is_id(sc->s[j]))
            j++;
    return j - i;
}

/* Looks up "." or "@" + identifier in the keyword table. */
static void prefixed_keyword(scan *sc, char prefix, const unsigned char *id, size_t n)
{
    char buf[MAX_IDENT + 2];
    if (n == 0 || n > MAX_IDENT)
        return;
    buf[0] = prefix;
    memcpy(buf + 1, id, n);
    keyword(sc, find_kw(buf, n + 1));
}

static int id_is(const unsigned char *id, size_t n, const char *lit)
{
    return id && cmp_key((const char *)id, n, lit) == 0;
}

/* The shebang's interpreter, e.g. "#!/usr/bin/env python3" -> python. */
static void shebang(scan *sc, size_t i, size_t eol)
{
    size_t last_word = i, j = i;
    /* The interpreter is the last path word before any argument, or the
     * word after `env`. */
    while (j < eol && !is_space(sc->s[j])) {
        if (sc->s[j] == '/')
            last_word = j + 1;
        j++;
    }
    size_t w = last_word, wn = j - last_word;
    if (id_is(sc->s + w, wn, "env")) {
        w = skip_sp(sc, j, eol);
        if (at(sc, w, eol) == '-') { /* env -S */
            while (w < eol && !is_space(sc->s[w]))
                w++;
            w = skip_sp(sc, w, eol);
        }
        wn = 0;
        while (w + wn < eol && !is_space(sc->s[w + wn]))
            wn++;
    }
    const char *p = (const char *)sc->s + w;
    if (wn >= 6 && memcmp(p, "python", 6) == 0)
        feat(sc, F_SHEBANG_PY);
    else if ((wn >= 4 && memcmp(p, "node", 4) == 0) || (wn >= 4 && memcmp(p, "deno", 4) == 0))
        feat(sc, F_SHEBANG_JS);
    else if (wn >= 4 && memcmp(p, "ruby", 4) == 0)
        feat(sc, F_SHEBANG_RB);
    else if (wn >= 3 && memcmp(p, "php", 3) == 0)
        feat(sc, F_SHEBANG_PHP);
    else if ((wn == 2 && memcmp(p, "sh", 2) == 0) || (wn >= 4 && memcmp(p, "bash", 4) == 0) ||
             (wn == 4 && memcmp(p, "dash", 4) == 0) || (wn >= 3 && memcmp(p, "zsh", 3) == 0) ||
             (wn >= 3 && memcmp(p, "ksh", 3) == 0))
        feat(sc, F_SHEBANG_SH);
}

/* An include path into a library that only C++ can use. */
static int cpp_library(const unsigned char *p, size_t n)
{
    static const char *const dirs[] = {"gtest/", "gmock/", "boost/", "absl/", "llvm/", "opencv2/",
                                       "QtCore/", "QtWidgets/", "Eigen/"};
    for (size_t k = 0; k < sizeof dirs / sizeof *dirs; k++) {
        size_t m = strlen(dirs[k]);
        if (n > m && memcmp(p, dirs[k], m) == 0)
            return 1;
    }
    return 0;
}

/* A preprocessor-looking line "#word ...". Returns 1 if it was one. */
static int directive(scan *sc, size_t i, size_t eol)
{
    size_t j = skip_sp(sc, i + 1, eol);
    int spaced = j > i + 1;
    size_t n = id_len(sc, j, eol);
    const unsigned char *w = sc->s + j;
    if (n == 0)
        return 0;
    if (id_is(w, n, "include") || id_is(w, n, "import")) {
        size_t k = skip_sp(sc, j + n, eol);
        int open = at(sc, k, eol);
        if (open != '<' && open != '"')
            return 0;
        size_t e = k + 1;
        int dot = 0;
        while (e < eol && sc->s[e] != '>' && sc->s[e] != '"')
            if (sc->s[e++] == '.')
                dot = (int)(e - k);
        const unsigned char *ext = sc->s + k + dot;
        size_t en = dot ? e - (k + (size_t)dot) : 0;
        if (!dot || cpp_library(sc->s + k + 1, e - k - 1))
            feat(sc, F_INCLUDE_STD); /* <vector>, <cstdio>, <gtest/gtest.h> */
        else if (en == 1 && ext[0] == 'h')
            feat(sc, open == '"' ? F_INCLUDE_QH : F_INCLUDE_H); /* "x.h": a project's own header */
        else if (id_is(ext, en, "hpp") || id_is(ext, en, "hh") || id_is(ext, en, "hxx") ||
                 id_is(ext, en, "cc") || id_is(ext, en, "cpp"))
            feat(sc, F_INCLUDE_HPP);
        return 1;
    }
    if (id_is(w, n, "region") || id_is(w, n, "endregion") || id_is(w, n, "nullable")) {
        feat(sc, F_CS_PP);
        return 1;
    }
    /* Spaced forms ("#  ifdef") are C; "# if the..." is a Python comment. */
    if (id_is(w, n, "ifdef") || id_is(w, n, "ifndef") || id_is(w, n, "endif") ||
        id_is(w, n, "undef") || id_is(w, n, "pragma")) {
        feat(sc, F_PP);
        return 1;
    }
    if (spaced)
        return 0;
    if (id_is(w, n, "define")) {
        feat(sc, F_PP_DEFINE);
        return 1;
    }
    if (id_is(w, n, "if") || id_is(w, n, "else") || id_is(w, n, "elif") ||
        id_is(w, n, "error") || id_is(w, n, "warning") || id_is(w, n, "line")) {
        size_t k = j + n;
        if (k == eol || is_space(sc->s[k])) {
            feat(sc, F_PP);
            return 1;
        }
    }
    return 0;
}

/* A directive, and the comment style after it: a line comment after
 * "#endif" is the C++ habit, a block comment the C one (C89 had no line
 * comments, and C headers still avoid them). */
static int preprocessor(scan *sc, size_t i, size_t eol)
{
    if (!directive(sc, i, eol))
        return 0;
    int q = 0;
    for (size_t k = i + 1; k + 1 < eol; k++) {
        if (sc->s[k] == '"' || sc->s[k] == '\'')
            q = q == sc->s[k] ? 0 : (q ? q : sc->s[k]);
        else if (!q && sc->s[k] == '/' && (sc->s[k + 1] == '/' || sc->s[k + 1] == '*')) {
            feat(sc, sc->s[k + 1] == '/' ? F_PP_LINE_COMMENT : F_PP_BLOCK_COMMENT);
            break;
        }
    }
    return 1;
}

/* Scans a quoted string starting at i (the quote); returns the offset after
 * it, or i + 1 if it does not close on this line. Looks inside double
 * quotes for interpolation, the one part of a string that is code. */
static size_t string_lit(scan *sc, size_t i, size_t eol)
{
    unsigned char q = sc->s[i];
    size_t j = i + 1;
    int dollar = 0, hashbrace = 0, brace = 0;
    while (j < eol && sc->s[j] != q) {
        if (sc->s[j] == '\\' && j + 1 < eol) {
            j += 2;
            continue;
        }
        if (q == '"') {
            int c = sc->s[j], d = at(sc, j + 1, eol);
            if (c == '$' && (is_id_start(d) || d == '{' || d == '(' || (d >= '0' && d <= '9') || d == '@'))
                dollar = 1;
            else if (c == '#' && d == '{')
                hashbrace = 1;
            else if (c == '{' && (is_id_start(d) || d == '}'))
                brace = 1;
        }
        j++;
    }
    if (j >= eol)
        return i + 1;
    /* The prefix letter, if any, was the previous identifier right before
     * the quote: f"..." (Python), $"..." (C#). */
    int fprefix = sc->prev_id && sc->prev_end == i &&
                  (id_is(sc->prev_id, sc->prev_len, "f") || id_is(sc->prev_id, sc->prev_len, "rf") ||
                   id_is(sc->prev_id, sc->prev_len, "fr"));
    if (fprefix && brace)
        feat(sc, F_FSTRING);
    else if (i > 0 && sc->s[i - 1] == '$' && q == '"')
        feat(sc, F_CS_INTERP);
    else if (dollar)
        feat(sc, F_DQ_DOLLAR);
    if (hashbrace)
        feat(sc, F_DQ_HASHBRACE);
    if (q == '\'') {
        size_t len = j - i - 1;
        if (len > 1 && !(len == 2 && sc->s[i + 1] == '\\') && !(sc->s[i + 1] == '\\' && len <= 6))
            feat(sc, F_SQ_LONG);
    }
    return j + 1;
}

/* The type word after "name:" or "):". */
static void type_after_colon(scan *sc, size_t j, size_t eol, int after_paren)
{
    j = skip_sp(sc, j, eol);
    if (at(sc, j, eol) == '&') {
        feat(sc, F_RS_TYPE);
        return;
    }
    size_t n = id_len(sc, j, eol);
    if (!n)
        return;
    const unsigned char *w = sc->s + j;
    static const char *const ts[] = {"string", "number", "boolean", "any", "void", "unknown",
                                     "never", "undefined", "object", "symbol", "bigint", "Promise",
                                     "Record", "Partial", "Array", "readonly"};
    static const char *const py[] = {"str", "int", "float", "bool", "bytes", "list", "dict",
                                     "tuple", "Optional", "List", "Dict", "Any", "Callable",
                                     "Union", "Iterable", "Sequence", "Tuple", "Iterator", "set"};
    static const char *const rs[] = {"u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16",
                                     "i32", "i64", "i128", "isize", "f32", "f64", "Self",
                                     "Vec", "Option", "Result", "Box", "impl", "char", "Rc", "Arc"};
    for (size_t k = 0; k < sizeof ts / sizeof *ts; k++)
        if (id_is(w, n, ts[k])) {
            feat(sc, after_paren ? F_RET_TYPE : F_TS_TYPE);
            return;
        }
    if (after_paren) {
        if (is_upper(w[0]))
            feat(sc, F_RET_TYPE);
        return;
    }
    for (size_t k = 0; k < sizeof py / sizeof *py; k++)
        if (id_is(w, n, py[k])) {
            feat(sc, F_PY_TYPE);
            return;
        }
    for (size_t k = 0; k < sizeof rs / sizeof *rs; k++)
        if (id_is(w, n, rs[k])) {
            feat(sc, F_RS_TYPE);
            return;
        }
    /* "(name: Type": an annotated parameter, which JavaScript lacks. */
    if (is_upper(w[0]) && inner(sc) == '(')
        feat(sc, F_TYPED_PARAM);
}

static int upper_word(const unsigned char *w, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (w[k] >= 'a' && w[k] <= 'z')
            return 0;
    return 1;
}

static unsigned char last_before(const scan *sc, size_t i);

/* "string", "boolean", "number" where a TypeScript type goes: after
 * "name: ", "?: ", "): ", or in a union "A | string". C# and Java spell
 * their types before the name, so there the word is not theirs. */
static int ts_type_word(const scan *sc, size_t i, const unsigned char *w, size_t n)
{
    if (!id_is(w, n, "string") && !id_is(w, n, "boolean") && !id_is(w, n, "number"))
        return 0;
    if (at(sc, i + n, sc->n) == '.')
        return 0; /* string.Empty */
    size_t k = i;
    while (k > sc->line_start && sc->s[k - 1] == ' ')
        k--;
    if (k == i || k < sc->line_start + 2)
        return 0;
    int c = sc->s[k - 1], b = sc->s[k - 2];
    if (c == ':')
        return is_id(b) || b == ')' || b == '?' || b == ']' || b == '!';
    return c == '|' && b == ' ' && !id_is(w, n, "number"); /* "flags | number" is arithmetic */
}

/* "=> void" as a function type ("cb: () => void"), not JavaScript's
 * "() => void 0". j is just past the arrow. */
static int void_type_after(const scan *sc, size_t j, size_t eol)
{
    j = skip_sp(sc, j, eol);
    if (!id_is(sc->s + j, id_len(sc, j, eol), "void"))
        return 0;
    size_t k = skip_sp(sc, j + 4, eol);
    int c = at(sc, k, eol);
    return c == 0 || c == ')' || c == ';' || c == ',' || c == '|' || c == '>' || c == '=' || c == '}';
}

/* C#'s parameter modifiers "out int x", "ref x", "params T[] xs", used
 * as plain names elsewhere ("out.println", "(..., out)"). */
static int cs_modifier_as_name(const unsigned char *w, size_t n, int next, int next_ns)
{
    if (!id_is(w, n, "out") && !id_is(w, n, "ref") && !id_is(w, n, "params"))
        return 0;
    return next != ' ' || !is_id_start(next_ns);
}

/* "public Type name(": a method in Java's style, its type before its
 * lower-case name (C# capitalizes methods; TypeScript and PHP put no type
 * there). */
static int java_method(const scan *sc, size_t i, const unsigned char *w, int next)
{
    static const char *const mods[] = {"function", "static", "async", "abstract", "final",
                                       "synchronized", "native", "override", "get", "set",
                                       "readonly", "virtual", "new", "default", "extern", "fn",
                                       "def", "public", "private", "protected", "unsafe", "sealed"};
    if (next != '(' || !(w[0] >= 'a' && w[0] <= 'z') || !sc->first_id || sc->tokens < 2)
        return 0;
    if (!id_is(sc->first_id, sc->first_len, "public") && !id_is(sc->first_id, sc->first_len, "private") &&
        !id_is(sc->first_id, sc->first_len, "protected"))
        return 0;
    int b = last_before(sc, i);
    if (!is_id(b) && b != '>' && b != ']')
        return 0;
    if (is_id(b) && sc->prev_id)
        for (size_t k = 0; k < sizeof mods / sizeof *mods; k++)
            if (id_is(sc->prev_id, sc->prev_len, mods[k]))
                return 0;
    return 1;
}

/* Everything about one identifier at i (length n), with its neighbours. */
static void identifier(scan *sc, size_t i, size_t n, size_t eol)
{
    const unsigned char *w = sc->s + i;
    int prev_dot = i > 0 && sc->s[i - 1] == '.' && !(i > 1 && sc->s[i - 2] == '.');
    size_t after = i + n;
    int next = at(sc, after, eol);
    size_t nx = skip_sp(sc, after, eol);
    int next_ns = at(sc, nx, eol); /* next non-space */

    if (n <= MAX_IDENT) {
        if (prev_dot) {
            if (!(is_upper(w[0]) && next == '('))
                prefixed_keyword(sc, '.', w, n);

            if (next == '(')
                feat(sc, is_upper(w[0]) ? F_DOT_UPPER_CALL : F_DOT_LOWER_CALL);
            if (next == '?' && (after + 1 >= eol || is_space(sc->s[after + 1]) ||
                                sc->s[after + 1] == ')'))
                feat(sc, F_RB_PRED);
        } else if (ts_type_word(sc, i, w, n)) {
            feat(sc, F_TS_TYPE);
        } else if (cs_modifier_as_name(w, n, next, next_ns)) {
            /* Java's "PrintStream out)" */
        } else if (!(id_is(w, n, "namespace") && !is_id_start(next_ns))) {
            /* ("namespace" only as a declaration: Java uses it as a name.) */
            keyword(sc, find_kw((const char *)w, n));
        }
        /* SQL words, case-insensitively; upper case is the SQL habit. */
        char low[MAX_IDENT + 1];
        int upper = 1;
        for (size_t k = 0; k < n; k++) {
            low[k] = (char)ascii_lower(w[k]);
            if (w[k] >= 'a' && w[k] <= 'z')
                upper = 0;
        }
        int q = find_sql(low, n);
        if (q >= 0 && sc->sql_hits[q] < KW_CAP) {
            int weight = upper && n > 1 ? SQLKW[q].w * 2 : (SQLKW[q].strong ? SQLKW[q].w : 0);
            if (weight) {
                sc->sql_hits[q]++;
                sc->score[SQ] += weight;
            }
        }
        if (!prev_dot && next != '.' && next != '(' && find_prose(low, n) >= 0 && (!upper || n == 1) &&
            !(is_upper(w[0]) && n > 1 && sc->tokens > 0))
            sc->prose++;
    }

    /* Naming habits: camelCase (Java, JS, C#, Go) against snake_case. */
    if (w[0] >= 'a' && w[0] <= 'z' && n >= 4) {
        int up = 0, us = 0;
        for (size_t k = 1; k < n; k++) {
            up |= is_upper(w[k]);
            us |= w[k] == '_' && k + 1 < n;
        }
        if (up && !us)
            feat(sc, F_CAMEL);
        else if (us && !up)
            feat(sc, F_SNAKE);
    }
    if (next == '(' && is_upper(w[0]) && i > 1 && sc->s[i - 1] == '>' && sc->s[i - 2] == '-')
        feat(sc, F_ARROW_UPPER_CALL);
    /* "m_count": the C++ habit of marking data members (C structs have
     * no methods to tell a member from a local). */
    if (n > 2 && w[0] == 'm' && w[1] == '_' && is_id_start(w[2]) && !prev_dot)
        feat(sc, F_CPP_MEMBER);

    /* identifier followed by ... */
    if (next == '!' && (at(sc, after + 1, eol) == '(' || at(sc, after + 1, eol) == '[' ||
                        (at(sc, after + 1, eol) == ' ' && at(sc, after + 2, eol) == '{')))
        feat(sc, F_RS_MACRO);
    else if (next == '!' && (at(sc, after + 1, eol) == '.' || at(sc, after + 1, eol) == ';' ||
                             at(sc, after + 1, eol) == ')' || at(sc, after + 1, eol) == ',' ||
                             at(sc, after + 1, eol) == ']' || at(sc, after + 1, eol) == ':'))
        feat(sc, F_TS_NONNULL); /* "x!.y", "x!;": TypeScript's non-null assertion; "x!: T" */
    if (next == '<' && (id_is(sc->s + after + 1, id_len(sc, after + 1, eol), "typeof") ||
                        id_is(sc->s + after + 1, id_len(sc, after + 1, eol), "keyof")))
        feat(sc, F_TS_TYPE); /* "Infer<typeof schema>" */
    else if (next == '<' && (is_id_start(at(sc, after + 1, eol)) || at(sc, after + 1, eol) == '\'')) {
        /* "Foo<T" or "vector<int>": a type argument list, not "i<n". */
        size_t k = after + 1 + (at(sc, after + 1, eol) == '\'');
        size_t m = id_len(sc, k, eol);
        int e = at(sc, k + m, eol);
        if (is_upper(w[0]) || is_upper(at(sc, k, eol)) || e == '>' || e == ',' || e == '<' ||
            (e == ':' && at(sc, k + m + 1, eol) == ':') || e == '*')
            feat(sc, F_GENERIC);
    }
    if (next == '&' && at(sc, after + 1, eol) != '&' && at(sc, after + 1, eol) != '=' &&
        (at(sc, after + 1, eol) == ' ' || at(sc, after + 1, eol) == ')' || at(sc, after + 1, eol) == ','))
        feat(sc, F_CPP_REF);
    if (next == '?' && at(sc, after + 1, eol) == ':')
        feat(sc, F_TS_OPTIONAL);
    if (next == '?' && at(sc, after + 1, eol) == ' ' && is_id_start(at(sc, after + 2, eol)) &&
        (is_upper(w[0]) || id_is(w, n, "int") || id_is(w, n, "bool") || id_is(w, n, "string") ||
         id_is(w, n, "long") || id_is(w, n, "double")))
        feat(sc, F_CS_NULLABLE);

    /* ... and the identifier before it */
    const unsigned char *p = sc->prev_id;
    size_t pn = sc->prev_len;
    if (p && sc->prev_punct == 0) {
        if (id_is(p, pn, "public") && id_is(w, n, "function"))
            feat(sc, F_PUBLIC_FUNCTION);
        else if (id_is(p, pn, "let") && id_is(w, n, "mut"))
            feat(sc, F_LET_MUT);
        else if (id_is(p, pn, "pub") && (id_is(w, n, "fn") || id_is(w, n, "struct") || id_is(w, n, "enum")))
            feat(sc, F_PUB_FN);
        else if (id_is(p, pn, "using") && id_is(w, n, "System"))
            feat(sc, F_USING_SYSTEM);
        else if (id_is(p, pn, "using") && id_is(w, n, "namespace"))
            feat(sc, F_USING_NS);
        else if (id_is(w, n, "namespace") && next_ns == '{')
            feat(sc, F_CPP_NS); /* the anonymous namespace */
        else if (id_is(p, pn, "namespace") && w[0] >= 'a' && w[0] <= 'z' &&
                 (next_ns == '{' || next_ns == 0 || (next_ns == ':' && at(sc, nx + 1, eol) == ':')))
            feat(sc, F_CPP_NS);
        else if (id_is(p, pn, "import") && (id_is(w, n, "java") || id_is(w, n, "javax") || id_is(w, n, "static")))
            feat(sc, F_JV_IMPORT);
    }
    /* SQL statements in lower case: "create table", "drop index". */
    if (sc->tokens == 1 && sc->first_id) {
        static const char *const verbs[] = {"create", "drop", "alter", "insert", "delete", "grant", "revoke", "truncate"};
        static const char *const objs[] = {"table", "index", "view", "sequence", "into", "from", "function",
                                           "trigger", "unique", "or", "schema", "extension", "type",
                                           "constraint", "procedure", "temporary", "temp", "all"};
        for (size_t a = 0; a < sizeof verbs / sizeof *verbs; a++)
            if (id_is(sc->first_id, sc->first_len, verbs[a])) {
                for (size_t b = 0; b < sizeof objs / sizeof *objs; b++)
                    if (id_is(w, n, objs[b])) {
                        feat(sc, F_SQL_STMT);
                        break;
                    }
                break;
            }
    }
    /* Go: "type Name struct|interface", "var name Type". */
    if (sc->tokens == 2 && sc->first_id && id_is(sc->first_id, sc->first_len, "type") &&
        (id_is(w, n, "struct") || id_is(w, n, "interface") || id_is(w, n, "func")))
        feat(sc, F_GO_TYPE_DECL);
    if (sc->tokens == 2 && sc->first_id && id_is(sc->first_id, sc->first_len, "var") &&
        sc->prev_punct == 0 && (next == 0 || next == ' ') && next_ns != '=' && next_ns != ':' &&
        next_ns != ';')
        feat(sc, F_GO_VAR_TYPE);
    /* Ruby: "class Name < Base". */
    if (sc->tokens == 2 && sc->first_id && id_is(sc->first_id, sc->first_len, "class") &&
        next_ns == '<' && at(sc, nx + 1, eol) == ' ')
        feat(sc, F_RB_CLASS_LT);
    /* TypeScript: "type Name = ...", also after "export"; a lower-case
     * name only at the start of a statement. */
    if (sc->prev_id && id_is(sc->prev_id, sc->prev_len, "type") && sc->prev_punct == 0 &&
        (is_upper(w[0]) || (sc->tokens <= 2 && next_ns == '=')) && (next_ns == '=' || next_ns == '<') &&
        at(sc, nx + 1, eol) != '=')
        feat(sc, F_TS_TYPE_ALIAS);
    /* Imports: "from x import y" (Python), "import x from 'y'" (JS/TS). */
    if (id_is(w, n, "import") && sc->first_id && id_is(sc->first_id, sc->first_len, "from") && sc->tokens >= 2)
        feat(sc, F_PY_FROM_IMPORT);
    if (id_is(w, n, "from") && sc->first_id && (id_is(sc->first_id, sc->first_len, "import") ||
                                               id_is(sc->first_id, sc->first_len, "export")) &&
        (next_ns == '\'' || next_ns == '"'))
        feat(sc, F_JS_IMPORT_FROM);
    else if (id_is(w, n, "from") && sc->tokens == 1 && !sc->first_id && last_before(sc, i) == '}' &&
             (next_ns == '\'' || next_ns == '"'))
        feat(sc, F_JS_IMPORT_FROM); /* "} from 'x'" ends a long import list */
    if (id_is(w, n, "import") && sc->tokens == 0 && (next_ns == '(' || next_ns == '"'))
        feat(sc, F_GO_IMPORT);
    if (java_method(sc, i, w, next))
        feat(sc, F_JV_METHOD);
    /* A method declared "void Name(": C# names methods in PascalCase,
     * Java and C in lower case. (After "public" it may be a constructor.) */
    if (next == '(' && p && sc->prev_punct == 0 && is_upper(w[0])) {
        static const char *const types[] = {"void", "int", "bool", "string", "long", "double",
                                            "float", "byte", "object", "var"};
        for (size_t k = 0; k < sizeof types / sizeof *types; k++)
            if (id_is(p, pn, types[k])) {
                feat(sc, F_METHOD_UPPER);
                break;
            }
    }
    /* "(self," / "(self)": Python's explicit receiver. */
    if (id_is(w, n, "self") && i > 0 && sc->s[i - 1] == '(' && (next == ',' || next == ')'))
        feat(sc, F_PY_SELF_PARAM);
    /* "&self", "&mut": Rust borrows. */
    if (i > 0 && sc->s[i - 1] == '&' && (id_is(w, n, "self") || id_is(w, n, "mut") || id_is(w, n, "str")))
        feat(sc, F_RS_REF);
    /* "this->" (C++); "self::" "static::" "parent::" (PHP). */
    if (id_is(w, n, "this") && next == '-' && at(sc, after + 1, eol) == '>')
        feat(sc, F_THIS_ARROW);
    if ((id_is(w, n, "self") || id_is(w, n, "static") || id_is(w, n, "parent")) && next == ':' &&
        at(sc, after + 1, eol) == ':')
        feat(sc, F_STATIC_SCOPE);
    /* "private name = ...", "readonly name: T": a class field without a
     * type before its name (Java and C# put one there). */
    if (sc->first_id && sc->tokens >= 1 && sc->tokens <= 2 && sc->prev_punct == 0 &&
        (next_ns == '=' || next_ns == ':' || (next_ns == '?' && at(sc, nx + 1, eol) == ':')) &&
        at(sc, nx + 1, eol) != '=' && at(sc, nx + 1, eol) != ':') {
        static const char *const mods[] = {"private", "public", "protected", "readonly"};
        for (size_t k = 0; k < sizeof mods / sizeof *mods; k++)
            if (id_is(sc->first_id, sc->first_len, mods[k])) {
                feat(sc, F_TS_PROP);
                break;
            }
    }
    /* "x as Foo", "as const": TypeScript's casts (Python's "as" names
     * lower-case things, Rust's casts are to primitives). */
    if (id_is(w, n, "as") && next == ' ' && i > 0 && sc->s[i - 1] == ' ') {
        size_t m = id_len(sc, nx, eol);
        if (m && (is_upper(sc->s[nx]) || id_is(sc->s + nx, m, "const") || id_is(sc->s + nx, m, "any") ||
                  id_is(sc->s + nx, m, "unknown") || id_is(sc->s + nx, m, "string") ||
                  id_is(sc->s + nx, m, "number")) &&
            !(m > 1 && is_upper(sc->s[nx + 1])) && !upper_word(w, n))
            feat(sc, F_TS_AS);
        else if (m && at(sc, nx + m, eol) == '.' &&
                 (is_id_start(at(sc, nx + m + 1, eol)) || at(sc, nx + m + 1, eol) == '$'))
            feat(sc, F_TS_AS); /* "x as ns.Type": a qualified type */
    }
    /* "const name: Type", "let x: T": an annotated variable (Rust's "let"
     * too, but JavaScript never). */
    if (next == ':' && at(sc, after + 1, eol) == ' ' && p && sc->prev_punct == 0 &&
        (id_is(p, pn, "const") || id_is(p, pn, "let") || id_is(p, pn, "var")))
        feat(sc, F_TS_TYPED_VAR);
    /* "{ get; set; }": a C# auto-property. */
    if ((id_is(w, n, "get") || id_is(w, n, "set") || id_is(w, n, "init")) && next == ';' &&
        last_before(sc, i) == '{')
        feat(sc, F_CS_ACCESSOR);
    /* Ruby block "do |x|". */
    if (id_is(w, n, "do") && next_ns == '|')
        feat(sc, F_RB_BLOCK);
    /* "(void)" parameter lists are C. */
    if (id_is(w, n, "void") && i > 0 && sc->s[i - 1] == '(' && next == ')')
        feat(sc, F_C_VOID_PARAMS);

    if (sc->tokens == 0) {
        sc->first_id = w;
        sc->first_len = n;
    }
    sc->prev_id = w;
    sc->prev_len = n;
    sc->prev_end = after;
    sc->prev_punct = 0;
    sc->tokens++;
    sc->last = w[n - 1];
}

/* What one finished line says by its shape. */
static void end_line(scan *sc, size_t eol)
{
    (void)eol;
    if (sc->tokens == 0 && sc->last == 0)
        return;
    const unsigned char *f = sc->first_id;
    size_t fn = sc->first_len;
    int only = sc->tokens == 1 && f && sc->last == f[fn - 1];
    switch (sc->last) {
    case ';':
        feat(sc, F_END_SEMI);
        /* "name: Type;" is an interface or class member; a JavaScript
         * object's "key: value" ends with a comma. */
        if (sc->member_colon && inner(sc) == '{')
            feat(sc, F_TS_PROP);
        break;
    case '{':
        feat(sc, F_END_LBRACE);
        break;
    case ':':
        if (f && (id_is(f, fn, "def") || id_is(f, fn, "class") || id_is(f, fn, "if") ||
                  id_is(f, fn, "elif") || id_is(f, fn, "else") || id_is(f, fn, "for") ||
                  id_is(f, fn, "while") || id_is(f, fn, "try") || id_is(f, fn, "except") ||
                  id_is(f, fn, "finally") || id_is(f, fn, "with") || id_is(f, fn, "async")) &&
            !(sc->tokens == 1 && (id_is(f, fn, "if") || id_is(f, fn, "for"))))
            feat(sc, F_PY_BLOCK);
        else if (sc->tokens == 2 && (id_is(f, fn, "public") || id_is(f, fn, "private") ||
                                     id_is(f, fn, "protected")))
            feat(sc, F_CPP_ACCESS);
        break;
    case ',':
    case '(':
    case '[':
    case '\\':
        break; /* the line goes on */
    default:
        if (f && id_is(f, fn, "def") && sc->tokens >= 2)
            feat(sc, F_RB_DEF); /* "def name" with no ":" after it: Ruby */
        if (only && id_is(f, fn, "end"))
            feat(sc, F_RB_END);
        else if (only && (id_is(f, fn, "fi") || id_is(f, fn, "done") || id_is(f, fn, "esac")))
            feat(sc, F_SH_CLOSER);
        else if (is_id(sc->last) || sc->last == ')' || sc->last == ']' || sc->last == '"' ||
                 sc->last == '\'')
            feat(sc, F_END_BARE);
        break;
    }
}

/* The last non-blank byte of the line before offset i, or 0. */
static unsigned char last_before(const scan *sc, size_t i)
{
    while (i > sc->line_start && is_space(sc->s[i - 1]))
        i--;
    return i > sc->line_start ? sc->s[i - 1] : 0;
}

/* Tags in a documentation comment [i, e): Javadoc's inline tags, and
 * JSDoc's "@param {Type}", which only untyped JavaScript needs. */
static void doc_tags(scan *sc, size_t i, size_t e)
{
    static const char *const javadoc[] = {"code", "linkplain", "inheritDoc", "return", "literal", "value"};
    for (; i + 2 < e; i++) {
        if (sc->s[i] != '@' || !is_id_start(sc->s[i + 1]))
            continue;
        size_t n = id_len(sc, i + 1, e);
        const unsigned char *w = sc->s + i + 1;
        if (i > 0 && sc->s[i - 1] == '{') {
            for (size_t k = 0; k < sizeof javadoc / sizeof *javadoc; k++)
                if (id_is(w, n, javadoc[k]))
                    feat(sc, F_JAVADOC);
        } else if ((id_is(w, n, "param") || id_is(w, n, "returns") || id_is(w, n, "return") ||
                    id_is(w, n, "type") || id_is(w, n, "typedef")) &&
                   at(sc, skip_sp(sc, i + 1 + n, e), e) == '{') {
            feat(sc, F_JSDOC_TYPE);
        }
        i += n;
    }
}

/* Scans one line [i, eol). */
static void scan_line(scan *sc, size_t i, size_t eol)
{
    sc->tokens = 0;
    sc->first_id = NULL;
    sc->first_len = 0;
    sc->member_colon = 0;
    sc->last = 0;
    sc->prev_id = NULL;
    sc->prev_punct = 0;

    /* Continue a construct left open by an earlier line. */
    if (sc->in_block) {
        size_t b = i;
        while (i + 1 < eol && !(sc->s[i] == '*' && sc->s[i + 1] == '/'))
            i++;
        doc_tags(sc, b, i + 1 < eol ? i : eol);
        if (i + 1 >= eol)
            return;
        sc->in_block = 0;
        i += 2;
    } else if (sc->in_triple) {
        while (i + 2 < eol && !(sc->s[i] == sc->in_triple && sc->s[i + 1] == sc->in_triple &&
                                sc->s[i + 2] == sc->in_triple))
            i++;
        if (i + 2 >= eol)
            return;
        sc->in_triple = 0;
        i += 3;
    } else if (sc->in_backtick) {
        while (i < eol && sc->s[i] != '`')
            i++;
        if (i >= eol)
            return;
        sc->in_backtick = 0;
        i++;
    } else if (sc->in_dq) {
        while (i < eol && sc->s[i] != '"')
            i += sc->s[i] == '\\' ? 2 : 1;
        if (i >= eol)
            return;
        sc->in_dq = 0;
        i++;
    }

    size_t indent_start = i;
    i = skip_sp(sc, i, eol);
    if (i >= eol)
        return;
    if (i > indent_start && sc->s[indent_start] == '\t' && i == sc->line_start + (i - indent_start))
        feat(sc, F_TAB_INDENT);

    /* Line-start forms. */
    int c = sc->s[i], d = at(sc, i + 1, eol);
    if (c == '#') {
        if (d == '!' && at(sc, i + 2, eol) == '[') {
            feat(sc, F_RS_ATTR);
            return;
        }
        if (d == '!') {
            shebang(sc, i + 2, eol);
            return;
        }
        if (d == '[') {
            feat(sc, F_RS_ATTR);
            return;
        }
        if (preprocessor(sc, i, eol))
            return;
        feat(sc, F_HASH_COMMENT);
        return;
    }
    if (c == '*' && (d == ' ' || d == '/' || d == 0 || d == '\t' || d == '*')) {
        doc_tags(sc, i, eol);
        return; /* the middle or end of a block comment begun before the text */
    }
    if (c == '-' && d == '-' && (at(sc, i + 2, eol) == ' ' || at(sc, i + 2, eol) == 0 ||
                                 at(sc, i + 2, eol) == '-')) {
        feat(sc, F_DASH_COMMENT);
        return;
    }
    if (c == '=' && eol - i >= 6 && memcmp(sc->s + i, "=begin", 6) == 0) {
        feat(sc, F_RB_HEREDOC);
        return;
    }
    if (c == '[' && is_upper(d)) {
        /* "[Attribute(...)]" alone on a line: C# attributes. */
        size_t e = eol;
        while (e > i && is_space(sc->s[e - 1]))
            e--;
        if (sc->s[e - 1] == ']')
            feat(sc, F_CS_ATTR_LINE);
    }
    if (c == '@' && is_id_start(d)) {
        size_t n = id_len(sc, i + 1, eol);
        size_t k = skip_sp(sc, i + 1 + n, eol);
        if (at(sc, k, eol) == '=' && at(sc, k + 1, eol) != '=') {
            feat(sc, F_RB_IVAR);
        } else {
            feat(sc, F_AT_LINE);
            prefixed_keyword(sc, '@', sc->s + i + 1, n);
        }
        i = i + 1 + n;
        sc->tokens++;
        sc->last = sc->s[i - 1];
    }

    while (i < eol) {
        c = sc->s[i];
        d = at(sc, i + 1, eol);
        if (is_space(c)) {
            i++;
            continue;
        }
        if (is_id_start(c)) {
            size_t n = id_len(sc, i, eol);
            identifier(sc, i, n, eol);
            i += n;
            continue;
        }
        if (c >= '0' && c <= '9') {
            size_t j = i;
            while (j < eol && (is_id(sc->s[j]) || (sc->s[j] == '.' && at(sc, j + 1, eol) != '.')))
                j++;
            const unsigned char *e = sc->s + j;
            size_t len = j - i;
            if (len > 2 && (e[-2] == 'u' || e[-2] == 'i' || e[-3] == 'u' || e[-3] == 'i' ||
                            e[-3] == 'f' || (len > 5 && memcmp(e - 5, "usize", 5) == 0)) &&
                (e[-1] >= '0' && e[-1] <= '9') && !(sc->s[i] == '0' && (d == 'x' || d == 'X')))
                feat(sc, F_RS_NUM);
            else if (len > 1 && (e[-1] == 'L' || e[-1] == 'U' || e[-1] == 'f' || e[-1] == 'u') &&
                     !(sc->s[i] == '0' && (d == 'x' || d == 'X')))
                feat(sc, F_C_NUM);
            sc->tokens++;
            sc->last = '0';
            sc->prev_id = NULL;
            i = j;
            continue;
        }
        if (c >= 0x80 || c < 0x20) { /* non-ASCII letters, control bytes, NUL */
            i++;
            continue;
        }
        sc->tokens++;
        sc->last = (unsigned char)c;
        sc->prev_punct = (unsigned char)c;
        size_t next = i + 1;
        switch (c) {
        case '/':
            if (d == '/') {
                feat(sc, F_SLASH_COMMENT);
                if (at(sc, i + 2, eol) == '/' && at(sc, i + 3, eol) == ' ' && at(sc, i + 4, eol) == '<')
                    feat(sc, F_CS_DOC); /* "/// <summary>": C#'s XML doc comments */
                size_t k = skip_sp(sc, i + 2, eol);
                if (eol - k >= 9 && memcmp(sc->s + k, "namespace", 9) == 0 && sc->tokens == 2)
                    feat(sc, F_CPP_NS); /* "}  // namespace foo" closes C++ namespaces */
                sc->tokens--;
                sc->last = last_before(sc, i); /* the line's shape is the code before it */
                return;
            }
            if (d == '*') {
                feat(sc, F_BLOCK_COMMENT);
                size_t j = i + 2;
                while (j + 1 < eol && !(sc->s[j] == '*' && sc->s[j + 1] == '/'))
                    j++;
                doc_tags(sc, i + 2, j + 1 < eol ? j : eol);
                sc->tokens--;
                sc->last = last_before(sc, i);
                if (j + 1 >= eol) {
                    sc->in_block = 1;
                    return;
                }
                next = j + 2;
            }
            break;
        case '#': {
            /* Mid-line: a comment after code in Python, Ruby, shell; the
             * rest is English. */
            if (i > 0 && is_space(sc->s[i - 1]) && (d == ' ' || d == 0 || d == '#' || d == '!')) {
                feat(sc, F_HASH_COMMENT);
                sc->tokens--;
                sc->last = last_before(sc, i);
                return;
            }
            break;
        }
        case '"':
        case '\'':
            if (d == c && at(sc, i + 2, eol) == c) {
                feat(sc, F_TRIPLE_QUOTE);
                size_t j = i + 3;
                while (j + 2 < eol && !(sc->s[j] == c && sc->s[j + 1] == c && sc->s[j + 2] == c))
                    j++;
                if (j + 2 >= eol) {
                    sc->in_triple = c;
                    return;
                }
                next = j + 3;
                break;
            }
            if (c == '\'' && is_id_start(d) && i > 0 &&
                (sc->s[i - 1] == '&' || sc->s[i - 1] == '<' ||
                 (sc->s[i - 1] == ' ' && i > 1 && sc->s[i - 2] == ','))) {
                size_t n = id_len(sc, i + 1, eol);
                if (at(sc, i + 1 + n, eol) != '\'') {
                    feat(sc, F_RS_LIFETIME);
                    next = i + 1 + n;
                    break;
                }
            }
            next = string_lit(sc, i, eol);
            if (next == i + 1 && c == '"') {
                /* Unclosed on its line: a multi-line string (shell, Ruby,
                 * PHP, Rust), if it closes later in the text. */
                size_t k = eol;
                while (k < sc->n && sc->s[k] != '"')
                    k++;
                if (k < sc->n)
                    sc->in_dq = 1;
                return;
            }
            break;
        case '`': {
            feat(sc, F_BACKTICK);
            size_t j = i + 1;
            while (j < eol && sc->s[j] != '`')
                j++;
            if (j >= eol) {
                /* Close it on a later line only if one exists in the text. */
                size_t k = eol;
                while (k < sc->n && sc->s[k] != '`')
                    k++;
                if (k < sc->n)
                    sc->in_backtick = 1;
                return;
            }
            next = j + 1;
            break;
        }
        case '$': {
            size_t n = id_len(sc, i + 1, eol);
            if (n) {
                const unsigned char *w = sc->s + i + 1;
                size_t k = skip_sp(sc, i + 1 + n, eol);
                if (id_is(w, n, "this"))
                    feat(sc, F_DOLLAR_THIS);
                else
                    feat(sc, F_DOLLAR_VAR);
                if (at(sc, i + 1 + n, eol) == '-' && at(sc, i + 2 + n, eol) == '>')
                    feat(sc, F_DOLLAR_ARROW);
                else if (k > i + 1 + n && at(sc, k, eol) == '=' && at(sc, k + 1, eol) != '=')
                    feat(sc, F_DOLLAR_ASSIGN);
                next = i + 1 + n;
                sc->last = 'a'; /* the line ends in a name, for its shape */
            } else if (d == '(' || d == '{') {
                feat(sc, F_DOLLAR_PAREN);
            } else if ((d >= '0' && d <= '9') || d == '@' || d == '#' || d == '?' || d == '*' ||
                       d == '$' || d == '!') {
                feat(sc, F_DOLLAR_SPECIAL);
                next = i + 2;
            } else if (d == '"') {
                /* C# $"...": leave the quote to the string scan. */
            }
            break;
        }
        case '@':
            if (is_id_start(d)) {
                size_t n = id_len(sc, i + 1, eol);
                if (i > 0 && (sc->s[i - 1] == '@' || sc->s[i - 1] == '(' || sc->s[i - 1] == ' ' ||
                              sc->s[i - 1] == '.' || sc->s[i - 1] == '['))
                    feat(sc, F_RB_IVAR);
                next = i + 1 + n;
                sc->last = 'a'; /* the line ends in a name, for its shape */
            }
            break;
        case '<':
            if (d == '?' && eol - i >= 5 && memcmp(sc->s + i, "<?php", 5) == 0) {
                feat(sc, F_PHP_OPEN);
                next = i + 5;
            } else if (d == '?' && at(sc, i + 2, eol) == '=') {
                feat(sc, F_PHP_OPEN);
                next = i + 3;
            } else if (d == '-' && at(sc, i + 2, eol) != '-' && i > 0 &&
                       (sc->s[i - 1] == ' ' || sc->s[i - 1] == '(') && at(sc, i + 2, eol) != '>') {
                feat(sc, F_CHAN);
                next = i + 2;
            } else if (d == '<') {
                int e = at(sc, i + 2, eol);
                size_t k = i + 2;
                if (e == '~') {
                    feat(sc, F_RB_HEREDOC);
                } else if (e == '<') {
                    feat(sc, F_HEREDOC); /* PHP <<< */
                    next = i + 3;
                } else {
                    /* "<< EOF" starts a here-document; "<< \"text\"" and
                     * "<< std::" write to a C++ stream. */
                    if (e == '-')
                        k++;
                    k = skip_sp(sc, k, eol);
                    int quoted = at(sc, k, eol) == '\'' || at(sc, k, eol) == '"';
                    k += (size_t)quoted;
                    size_t m = id_len(sc, k, eol);
                    if (is_upper(at(sc, k, eol)) && is_upper(at(sc, k + 1, eol)))
                        feat(sc, F_HEREDOC);
                    else if (k > i + 2 && (quoted || id_is(sc->s + k, m, "std") || id_is(sc->s + k, m, "endl")))
                        feat(sc, F_STREAM);
                    next = i + 2;
                }
            }
            break;
        case '-':
            if (d == '>') {
                if (at(sc, i + 2, eol) == ' ')
                    feat(sc, F_ARROW_RET);
                else if (is_id_start(at(sc, i + 2, eol)))
                    feat(sc, F_ARROW_MEMBER);
                next = i + 2;
            } else if (d == '-' && i > 0 && is_space(sc->s[i - 1]) &&
                       (at(sc, i + 2, eol) == ' ' || at(sc, i + 2, eol) == 0)) {
                feat(sc, F_DASH_COMMENT);
                sc->tokens--;
                sc->last = last_before(sc, i);
                return;
            } else if ((d == '-' || is_id_start(d)) && i > 0 && is_space(sc->s[i - 1])) {
                /* "-x" / "--long" after a space: a command-line flag,
                 * unless it is arithmetic on an identifier ("a -b" is rare). */
                size_t k = i + 1 + (d == '-');
                size_t n = id_len(sc, k, eol);
                int e = at(sc, k + n, eol);
                if (n && n <= 20 && (e == ' ' || e == 0 || e == '=' || e == '-' || e == '"' || e == ';'))
                    feat(sc, F_DASH_FLAG);
                next = k;
            }
            break;
        case '=':
            if (d == '>') {
                feat(sc, F_FAT_ARROW);
                if (void_type_after(sc, i + 2, eol))
                    feat(sc, F_TS_TYPE);
                next = i + 2;
            } else if (d == '=' && at(sc, i + 2, eol) == '=') {
                if (at(sc, i + 3, eol) != '=')
                    feat(sc, F_STRICT_EQ); /* "====" is an underline */
                next = i + 3;
                while (next < eol && sc->s[next] == '=')
                    next++;
            } else if (d == '~') {
                feat(sc, F_RB_MATCH);
                next = i + 2;
            } else if (d == '=') {
                next = i + 2;
            }
            break;
        case '!':
            if (d == '=' && at(sc, i + 2, eol) == '=') {
                feat(sc, F_STRICT_EQ);
                next = i + 3;
            }
            break;
        case ':':
            if (d == ':') {
                feat(sc, F_COLONCOLON);
                if (sc->prev_id && sc->prev_end == i && id_is(sc->prev_id, sc->prev_len, "std"))
                    feat(sc, F_INCLUDE_STD);
                next = i + 2;
                sc->prev_punct = 0; /* keep prev_id for "X::y" chains */
            } else if (d == '=') {
                feat(sc, F_WALRUS);
                next = i + 2;
            } else if (d == ' ' && i > 0 && sc->s[i - 1] == ' ') {
                /* "struct a : public b": C++ inheritance; ") : x_(x)": a
                 * constructor's initializer list; "for (T x : xs)". */
                size_t k = i + 2;
                size_t m = id_len(sc, k, eol);
                if (id_is(sc->s + k, m, "public") || id_is(sc->s + k, m, "private") ||
                    id_is(sc->s + k, m, "protected") || id_is(sc->s + k, m, "virtual"))
                    feat(sc, F_CPP_INHERIT);
                else if (m && last_before(sc, i) == ')' && (at(sc, k + m, eol) == '(' || at(sc, k + m, eol) == '{'))
                    feat(sc, F_CPP_INIT);
                else if (sc->first_id && id_is(sc->first_id, sc->first_len, "for") && inner(sc) == '(' &&
                         sc->tokens >= 4)
                    feat(sc, F_RANGE_FOR);
            } else if (is_id_start(d) && i > 0 &&
                       (sc->s[i - 1] == ' ' || sc->s[i - 1] == '(' || sc->s[i - 1] == ',')) {
                feat(sc, F_RB_SYMBOL);
            } else if (i > 0 && sc->s[i - 1] == ')' && d == ' ') {
                type_after_colon(sc, i + 1, eol, 1);
            } else if (sc->prev_id && d == ' ' &&
                       (sc->prev_end == i || (sc->prev_end + 1 == i && sc->s[i - 1] == '?'))) {
                if (sc->tokens == 2 || (sc->tokens == 3 && sc->s[i - 1] == '?'))
                    sc->member_colon = 1;
                type_after_colon(sc, i + 1, eol, 0);
            }
            break;
        case '?':
            if (d == '.') {
                feat(sc, F_OPT_CHAIN);
                next = i + 2;
            } else if (d == '?') {
                feat(sc, F_NULLISH);
                next = i + 2;
            } else if (d == '>') {
                feat(sc, F_PHP_CLOSE);
                next = i + 2;
            } else if (i > 0 && sc->s[i - 1] == ')' && (d == ';' || d == '.' || d == ')' || d == ',' || d == 0)) {
                feat(sc, F_RS_TRY);
            }
            break;
        case '.':
            if (d == '.' && at(sc, i + 2, eol) == '.') {
                feat(sc, F_ELLIPSIS);
                next = i + 3;
            } else if (d == '.') {
                feat(sc, F_RANGE);
                next = i + 2;
            } else if (d == '=') {
                feat(sc, F_PHP_CONCAT_EQ);
                next = i + 2;
            }
            break;
        case ';':
            if (d == ';' && !(i > 0 && sc->s[i - 1] == '(')) {
                feat(sc, F_SEMISEMI);
                next = i + 2;
            }
            break;
        case '>':
            if (d == '&' && at(sc, i + 2, eol) >= '0' && at(sc, i + 2, eol) <= '9') {
                feat(sc, F_REDIRECT);
            } else if (d == '/' && eol - i >= 5 && memcmp(sc->s + i + 1, "/dev/", 5) == 0) {
                feat(sc, F_REDIRECT);
            }
            break;
        case '[':
            if ((d == '&' || d == '=') && (at(sc, i + 2, eol) == ']' || at(sc, i + 2, eol) == ',')) {
                feat(sc, F_CPP_LAMBDA); /* "[&]", "[=]": C++ lambda captures */
            } else if (d == ']' && at(sc, i + 2, eol) == '(' && i > 0 && !is_id(sc->s[i - 1]) &&
                       sc->s[i - 1] != ']' && sc->s[i - 1] != ')') {
                feat(sc, F_CPP_LAMBDA); /* "[](int x)" */
            } else if (d == '[' && at(sc, i + 2, eol) == ' ') {
                feat(sc, F_SH_TEST);
                next = i + 2;
            } else if (d == ' ' && (sc->tokens == 1 || (sc->prev_id && (id_is(sc->prev_id, sc->prev_len, "if") ||
                                                                           id_is(sc->prev_id, sc->prev_len, "while"))))) {
                feat(sc, F_SH_TEST);
            }
            break;
        case '|':
            if (is_id_start(d) || d == '_' || (d == '&')) {
                /* "|x|" block parameters: Ruby after "{ " or "do ", Rust
                 * closures elsewhere. */
                size_t k = i + 1;
                while (k < eol && sc->s[k] != '|' && sc->s[k] != '(' && sc->s[k] != ')' &&
                       sc->s[k] != ';' && sc->s[k] != '=')
                    k++;
                if (at(sc, k, eol) == '|' && k > i + 1) {
                    int before = last_before(sc, i);
                    if (before == '{')
                        feat(sc, F_RB_BLOCK);
                    else if (before == '(' || before == ',' || before == '=' || (sc->prev_id && id_is(sc->prev_id, sc->prev_len, "move")))
                        feat(sc, F_RS_CLOSURE);
                    next = k + 1;
                }
            }
            break;
        case '\\':
            if (is_id_start(d) && i > 0 && (is_id(sc->s[i - 1]) || ((sc->s[i - 1] == ' ' || sc->s[i - 1] == '(') && is_upper(d)))) {
                feat(sc, F_PHP_NS);
            } else if (i + 1 == eol || (i + 2 == eol && d == '\r')) {
                feat(sc, F_LINE_CONT);
                sc->tokens--;
                sc->last = 0;
                return;
            }
            break;
        case '&':
            if (d == '>') {
                feat(sc, F_REDIRECT);
            } else if (is_id_start(d) && i > 0 &&
                       (sc->s[i - 1] == '(' || (sc->s[i - 1] == ' ' && i > 1 &&
                                                (sc->s[i - 2] == ',' || sc->s[i - 2] == '=')))) {
                feat(sc, F_ADDR_OF);
            } else if (is_id_start(d) && i > 0 && sc->s[i - 1] == ' ' && sc->prev_id &&
                       sc->prev_end + 1 == i && sc->tokens <= 4) {
                feat(sc, F_CPP_REF_DECL); /* "int &ref" */
            }
            break;
        case '*':
            /* "type *name": a C pointer declaration; "type* name" is the
             * C++ habit of binding the star to the type. */
            if (i > 0 && sc->s[i - 1] == ' ' && is_id_start(d) && sc->prev_id && sc->prev_end + 1 == i &&
                sc->tokens <= 4) {
                feat(sc, F_C_PTR_DECL);
            } else if (sc->prev_id && sc->prev_end == i && sc->tokens <= 4) {
                size_t k = i;
                while (k < eol && sc->s[k] == '*')
                    k++;
                if (at(sc, k, eol) == ' ' && is_id_start(at(sc, k + 1, eol)))
                    feat(sc, F_CPP_PTR_STYLE);
            }
            break;
        default:
            break;
        }
        if (c == '(' || c == '[' || c == '{') {
            if (sc->depth < (int)sizeof sc->br)
                sc->br[sc->depth] = (unsigned char)c;
            sc->depth++;
        } else if ((c == ')' || c == ']' || c == '}') && sc->depth > 0) {
            sc->depth--;
        }
        if (c == '(' || c == ')' || c == '{' || c == '}' || c == '[' || c == ']' || c == ';' ||
            c == '=' || c == '<' || c == '>' || c == '$' || c == '*' || c == '|' || c == '&')
            sc->code_punct++;
        i = next;
    }
}

/* Whether a line reads as Python code rather than docstring prose. */
static int code_line(const unsigned char *l, size_t n)
{
    size_t i = 0;
    while (i < n && is_space(l[i]))
        i++;
    size_t e = n;
    while (e > i && is_space(l[e - 1]))
        e--;
    size_t w = i;
    while (w < e && is_id(l[w]))
        w++;
    const unsigned char *word = l + i;
    size_t wn = w - i;
    static const char *const always[] = {"def", "class", "import", "from", "return", "raise",
                                         "yield", "assert", "async", "pass", "del", "self"};
    static const char *const block[] = {"if", "elif", "else", "for", "while", "with", "try", "except"};
    for (size_t k = 0; k < sizeof always / sizeof *always; k++)
        if (id_is(word, wn, always[k]))
            return w == e || l[w] == ' ' || l[w] == '(' || l[w] == '.' || l[w] == ':';
    for (size_t k = 0; k < sizeof block / sizeof *block; k++)
        if (id_is(word, wn, block[k]))
            return e > i && l[e - 1] == ':';
    return 0;
}

/* The shape of a closing triple quote at i on the line starting at b:
 * nothing after it, and before it no "=", "(" or string prefix that would
 * make it an opener. */
static int closer_shape(const unsigned char *s, size_t n, size_t b, size_t i)
{
    size_t j = i + 3;
    while (j < n && is_space(s[j]))
        j++;
    if (j < n && s[j] != '\n')
        return 0; /* text after it: an opener ("""Summary) */
    size_t e = i;
    while (e > b && is_space(s[e - 1]))
        e--;
    if (e == b && b == 0)
        return 0; /* alone on the first line: as likely an opener */
    if (e > b && (s[e - 1] == '=' || s[e - 1] == '(' || s[e - 1] == ',' || s[e - 1] == '[' ||
                  ((s[e - 1] == 'r' || s[e - 1] == 'b' || s[e - 1] == 'f' || s[e - 1] == 'u') &&
                   (e - 1 == b || !is_id(s[e - 2])))))
        return 0;
    return 1;
}

/* A chunk cut from the middle of a docstring (or any triple-quoted string)
 * starts with text that is not code, up to the closing quotes. Returns the
 * offset just past the closing line, or 0 when the text does not start
 * that way. An odd number of triple quotes says one of them closes a
 * string begun before the text. */
static size_t skip_docstring_tail(const unsigned char *s, size_t n)
{
    size_t first = n, b_first = 0, b = 0, count = 0;
    int code_before = 0, punct_before = 0;
    unsigned char q = 0;
    for (size_t i = 0; i + 2 < n; i++) {
        int c = s[i];
        if (c == '\n') {
            if (first == n && code_line(s + b, i - b))
                code_before = 1;
            b = i + 1;
            continue;
        }
        if (first == n && (c == ';' || c == '{' ||
                           (c == '=' && (i == 0 || s[i - 1] != '=') && s[i + 1] != '=')))
            punct_before = 1;
        if ((c == '"' || c == '\'') && s[i + 1] == c && s[i + 2] == c && (!q || c == q)) {
            if (first == n) {
                first = i;
                b_first = b;
                q = (unsigned char)c;
            }
            count++;
            i += 2;
        }
    }
    if (first == n || !closer_shape(s, n, b_first, first))
        return 0;
    /* A Python line (def, class, import, a block header) before it means
     * the quote opens a string; so does code punctuation, unless the count
     * says a string was already open (its text may be a code template). */
    if (code_before || (count % 2 == 0 && punct_before))
        return 0;
    size_t j = first + 3;
    while (j < n && s[j] != '\n')
        j++;
    return j < n ? j + 1 : n;
}

/* ---- the learned part ------------------------------------------------------ */

/* A multinomial logistic model over the thirteen languages, learned by
 * bench/lang_train.py from the tuning half and written to lang_model.inc:
 * for language l its score is LM_RULE * rule score + LM_BIAS[l] + the sum
 * of LM_W[b][l] over the distinct feature buckets b of the text. A feature
 * is a token or a pair of adjacent tokens, hashed into LM_BUCKETS buckets;
 * a token is an identifier (its bytes), a number, one punctuation byte, a
 * line break, a string literal (by its quote: ' " ` or triple) or a
 * comment (// or block), so that `::` `->` `:=` `=>` `$name` `;` at the
 * end of a line and `#include <x.h>` all become pairs. String and comment
 * contents are skipped; a chunk that starts inside one shows its words. */
enum { LM_CLASSES = NLANG - 1 };
#include "icl/lang_model.inc"

enum { TOK_NL = 1, TOK_NUM, TOK_SQ, TOK_DQ, TOK_BT, TOK_TRIPLE, TOK_LINE_COMMENT,
       TOK_BLOCK_COMMENT, TOK_PUNCT = 0x100 };

static uint32_t lm_mix(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x7feb352dU;
    h ^= h >> 15;
    h *= 0x846ca68bU;
    h ^= h >> 16;
    return h;
}

typedef struct lm_acc {
    uint64_t seen[LM_BUCKETS / 64];
    int32_t score[LM_CLASSES];
    uint32_t prev;
    uint16_t *out; /* the probe's feature list, or NULL */
    size_t cap, count;
} lm_acc;

static void lm_bucket(lm_acc *a, uint32_t h)
{
    uint32_t b = lm_mix(h) % LM_BUCKETS;
    uint64_t bit = (uint64_t)1 << (b % 64);
    if (a->seen[b / 64] & bit)
        return;
    a->seen[b / 64] |= bit;
    for (int l = 0; l < LM_CLASSES; l++)
        a->score[l] += LM_W[b][l];
    if (a->out && a->count < a->cap)
        a->out[a->count] = (uint16_t)b;
    a->count++;
}

static void lm_token(lm_acc *a, uint32_t t)
{
    if (t == TOK_NL && a->prev == TOK_NL)
        return;
    lm_bucket(a, t * 2u);
    lm_bucket(a, (a->prev * 0x9e3779b1u + t) * 2u + 1u);
    a->prev = t;
}

/* Offset just past the first occurrence of lit (of length k) at or after
 * i, or n when there is none. */
static size_t lm_past(const unsigned char *s, size_t n, size_t i, const char *lit, size_t k)
{
    for (; i + k <= n; i++)
        if (memcmp(s + i, lit, k) == 0)
            return i + k;
    return n;
}

static void lm_scan(lm_acc *a, const unsigned char *s, size_t n)
{
    a->prev = TOK_NL;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c == '\n') {
            lm_token(a, TOK_NL);
            i++;
        } else if (c == ' ' || c == '\t' || c == '\r' || c >= 0x80 || c < 0x20) {
            i++;
        } else if (is_id_start((int)c)) {
            uint32_t h = 2166136261u;
            size_t j = i;
            while (j < n && is_id(s[j]))
                h = (h ^ s[j++]) * 16777619u;
            lm_token(a, h | 0x10000u);
            i = j;
        } else if (c >= '0' && c <= '9') {
            while (i < n && (is_id(s[i]) || s[i] == '.'))
                i++;
            lm_token(a, TOK_NUM);
        } else if ((c == '"' || c == '\'') && i + 2 < n && s[i + 1] == c && s[i + 2] == c) {
            char q[3] = {(char)c, (char)c, (char)c};
            i = lm_past(s, n, i + 3, q, 3);
            lm_token(a, TOK_TRIPLE);
        } else if (c == '"' || c == '\'' || c == '`') {
            size_t j = i + 1;
            while (j < n && s[j] != c && (c == '`' || s[j] != '\n'))
                j += s[j] == '\\' ? 2 : 1;
            if (j < n && s[j] == c) {
                lm_token(a, c == '"' ? TOK_DQ : c == '\'' ? TOK_SQ : TOK_BT);
                i = j + 1;
            } else {
                lm_token(a, TOK_PUNCT + c); /* unclosed: a lone quote */
                i++;
            }
        } else if (c == '/' && i + 1 < n && s[i + 1] == '/') {
            while (i < n && s[i] != '\n')
                i++;
            lm_token(a, TOK_LINE_COMMENT);
        } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
            i = lm_past(s, n, i + 2, "*/", 2);
            lm_token(a, TOK_BLOCK_COMMENT);
        } else {
            lm_token(a, TOK_PUNCT + c);
            i++;
        }
    }
}

/* ---- detection ---------------------------------------------------------------- */

/* Below this, no language has shown enough of its habits. */
enum { MIN_SCORE = 4 };

/* The rule scores of text[0..len) and whether the rules call it GENERIC
 * (too little code, or English). */
static int rule_scores(const char *text, size_t len, int score[NLANG])
{
    scan sc;
    memset(&sc, 0, sizeof sc);
    sc.s = (const unsigned char *)text;
    sc.n = len;

    size_t i = skip_docstring_tail(sc.s, len);
    if (i)
        feat(&sc, F_TRIPLE_QUOTE);
    while (i < len) {
        const unsigned char *nl = memchr(sc.s + i, '\n', len - i);
        size_t eol = nl ? (size_t)(nl - sc.s) : len;
        sc.line_start = i;
        scan_line(&sc, i, eol);
        end_line(&sc, eol);
        i = eol + 1;
    }
    memcpy(score, sc.score, sizeof sc.score);

    int top = sc.score[GEN + 1];
    for (int l = GEN + 1; l < NLANG; l++)
        if (sc.score[l] > top)
            top = sc.score[l];
    /* English evidence: function words, a question, no code punctuation. */
    size_t e = len;
    while (e > 0 && (is_space(sc.s[e - 1]) || sc.s[e - 1] == '\n'))
        e--;
    int prose = 2 * (sc.prose < 8 ? sc.prose : 8) + (sc.code_punct == 0 ? 6 : 0) +
                (e > 0 && sc.s[e - 1] == '?' ? 2 : 0);
    if (sc.code_punct >= 40)
        prose /= 2; /* English does not come with forty brackets and semicolons */
    return top <= 0 || prose >= top || (top < MIN_SCORE && sc.code_punct < 3);
}

int icl_lang_probe(const char *text, size_t len, int rule[ICL_LANG_COUNT], unsigned short *feats,
                   size_t cap, size_t *nfeats)
{
    pthread_once(&index_once, build_index);
    int generic = rule_scores(text ? text : "", text ? len : 0, rule);
    lm_acc a;
    memset(&a, 0, sizeof a);
    a.out = feats;
    a.cap = cap;
    if (text)
        lm_scan(&a, (const unsigned char *)text, len);
    *nfeats = a.count;
    return generic;
}

icl_lang icl_lang_detect(const char *text, size_t len, const char *path)
{
    icl_lang by_path = icl_lang_from_path(path);
    if (by_path != ICL_LANG_GENERIC)
        return by_path;
    if (!text || len == 0)
        return ICL_LANG_GENERIC;
    pthread_once(&index_once, build_index);

    int rule[NLANG];
    if (rule_scores(text, len, rule))
        return ICL_LANG_GENERIC;
    lm_acc a;
    memset(&a, 0, sizeof a);
    lm_scan(&a, (const unsigned char *)text, len);

    /* The languages within LM_MARGIN of the best rule score compete on
     * the sum of both parts. Ties go to the language whose habits are the
     * common ground: plain statements with braces and semicolons read as
     * C, untyped script as JavaScript. */
    static const unsigned char PREF[] = {C_, JS, PY, JV, GO, CP, CS, TS, RS, RB, PH, SH, SQ};
    int top = rule[PREF[0]];
    for (size_t k = 1; k < sizeof PREF; k++)
        if (rule[PREF[k]] > top)
            top = rule[PREF[k]];
    int best = -1;
    int32_t best_score = 0;
    for (size_t k = 0; k < sizeof PREF; k++) {
        int l = PREF[k];
        if (rule[l] < top - LM_MARGIN)
            continue;
        int32_t v = (int32_t)LM_RULE * rule[l] + LM_BIAS[l - 1] + a.score[l - 1];
        if (best < 0 || v > best_score) {
            best = l;
            best_score = v;
        }
    }
    return (icl_lang)best;
}
