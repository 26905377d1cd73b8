/*
 * test_lang.c - language names, aliases, paths and detection (src/icl/lang.c).
 */
#include "harness.h"
#include "icl/lang.h"

static icl_lang det(const char *text)
{
    return icl_lang_detect(text, strlen(text), NULL);
}

/* Detects from an exact-size heap copy (no NUL after it), so that any read
 * past len shows under ASan. */
static icl_lang det_exact(const char *text, size_t len)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, text, len);
    icl_lang l = icl_lang_detect(copy, len, NULL);
    free(copy);
    return l;
}

#define CHECK_LANG(got, want)                                                    \
    do {                                                                         \
        icl_lang g_ = (got), w_ = (want);                                        \
        if (g_ != w_) {                                                          \
            fprintf(stderr, "%s:%d: got %s, want %s\n", __FILE__, __LINE__,       \
                    icl_lang_name(g_), icl_lang_name(w_));                       \
            harness_failures_in_test++;                                          \
        }                                                                        \
    } while (0)

TEST(names_round_trip)
{
    static const char *const want[] = {"generic", "python", "javascript", "typescript", "java",
                                       "csharp", "go", "rust", "c", "cpp", "ruby", "php", "shell",
                                       "sql"};
    CHECK_EQ_INT(sizeof want / sizeof *want, ICL_LANG_COUNT);
    for (int l = 0; l < ICL_LANG_COUNT; l++) {
        CHECK(strcmp(icl_lang_name((icl_lang)l), want[l]) == 0);
        CHECK_EQ_INT(icl_lang_parse(want[l]), l);
    }
    CHECK(strcmp(icl_lang_name(ICL_LANG_COUNT), "generic") == 0);
    CHECK(strcmp(icl_lang_name((icl_lang)-1), "generic") == 0);
}

TEST(parse_aliases)
{
    static const struct {
        const char *name;
        int lang;
    } cases[] = {
        {"py", ICL_LANG_PYTHON}, {"Python", ICL_LANG_PYTHON}, {"PYTHON3", ICL_LANG_PYTHON},
        {"js", ICL_LANG_JAVASCRIPT}, {"JavaScript", ICL_LANG_JAVASCRIPT}, {"node", ICL_LANG_JAVASCRIPT},
        {"ts", ICL_LANG_TYPESCRIPT}, {"TypeScript", ICL_LANG_TYPESCRIPT},
        {"cs", ICL_LANG_CSHARP}, {"c#", ICL_LANG_CSHARP}, {"C#", ICL_LANG_CSHARP},
        {"golang", ICL_LANG_GO}, {"Go", ICL_LANG_GO},
        {"rs", ICL_LANG_RUST}, {"Rust", ICL_LANG_RUST},
        {"C", ICL_LANG_C}, {"c++", ICL_LANG_CPP}, {"C++", ICL_LANG_CPP}, {"cxx", ICL_LANG_CPP},
        {"rb", ICL_LANG_RUBY}, {"PHP", ICL_LANG_PHP},
        {"sh", ICL_LANG_SHELL}, {"bash", ICL_LANG_SHELL}, {"zsh", ICL_LANG_SHELL}, {"Bash", ICL_LANG_SHELL},
        {"postgresql", ICL_LANG_SQL}, {"PostgreSQL", ICL_LANG_SQL}, {"mysql", ICL_LANG_SQL},
        {"plpgsql", ICL_LANG_SQL}, {"text", ICL_LANG_GENERIC},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int got = icl_lang_parse(cases[i].name);
        if (got != cases[i].lang) {
            fprintf(stderr, "parse(\"%s\") = %d, want %d\n", cases[i].name, got, cases[i].lang);
            harness_failures_in_test++;
        }
    }
    CHECK_EQ_INT(icl_lang_parse(NULL), -1);
    CHECK_EQ_INT(icl_lang_parse(""), -1);
    CHECK_EQ_INT(icl_lang_parse("cobol"), -1);
    CHECK_EQ_INT(icl_lang_parse("pythonx"), -1);
    CHECK_EQ_INT(icl_lang_parse("pytho"), -1);
    CHECK_EQ_INT(icl_lang_parse("c\xff"), -1);
}

TEST(from_path_every_language)
{
    static const struct {
        const char *path;
        icl_lang lang;
    } cases[] = {
        {"setup.py", ICL_LANG_PYTHON}, {"pkg/mod.pyi", ICL_LANG_PYTHON},
        {"app.js", ICL_LANG_JAVASCRIPT}, {"lib/x.mjs", ICL_LANG_JAVASCRIPT}, {"a.cjs", ICL_LANG_JAVASCRIPT},
        {"view.jsx", ICL_LANG_JAVASCRIPT},
        {"src/index.ts", ICL_LANG_TYPESCRIPT}, {"App.tsx", ICL_LANG_TYPESCRIPT}, {"types.d.ts", ICL_LANG_TYPESCRIPT},
        {"Main.java", ICL_LANG_JAVA},
        {"Program.cs", ICL_LANG_CSHARP},
        {"main.go", ICL_LANG_GO},
        {"lib.rs", ICL_LANG_RUST},
        {"util.c", ICL_LANG_C}, {"util.h", ICL_LANG_C},
        {"a.cc", ICL_LANG_CPP}, {"a.cpp", ICL_LANG_CPP}, {"a.cxx", ICL_LANG_CPP}, {"a.hpp", ICL_LANG_CPP},
        {"a.hh", ICL_LANG_CPP}, {"legacy.C", ICL_LANG_CPP},
        {"app.rb", ICL_LANG_RUBY}, {"Gemfile", ICL_LANG_RUBY}, {"tasks/x.rake", ICL_LANG_RUBY},
        {"index.php", ICL_LANG_PHP},
        {"build.sh", ICL_LANG_SHELL}, {"x.bash", ICL_LANG_SHELL}, {"home/.bashrc", ICL_LANG_SHELL},
        {"x.zsh", ICL_LANG_SHELL},
        {"schema.sql", ICL_LANG_SQL}, {"SCHEMA.SQL", ICL_LANG_SQL},
        {"C:\\src\\Main.JAVA", ICL_LANG_JAVA},
        {"README.md", ICL_LANG_GENERIC}, {"Makefile", ICL_LANG_GENERIC}, {"noext", ICL_LANG_GENERIC},
        {".py", ICL_LANG_GENERIC}, {"dir.py/file", ICL_LANG_GENERIC}, {"trailing.", ICL_LANG_GENERIC},
        {"", ICL_LANG_GENERIC},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        icl_lang got = icl_lang_from_path(cases[i].path);
        if (got != cases[i].lang) {
            fprintf(stderr, "from_path(\"%s\") = %s, want %s\n", cases[i].path, icl_lang_name(got),
                    icl_lang_name(cases[i].lang));
            harness_failures_in_test++;
        }
    }
    CHECK_LANG(icl_lang_from_path(NULL), ICL_LANG_GENERIC);
    /* Every language has at least one extension. */
    int seen[ICL_LANG_COUNT] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        seen[cases[i].lang] = 1;
    for (int l = 0; l < ICL_LANG_COUNT; l++)
        CHECK(seen[l]);
}

typedef struct snippet {
    icl_lang lang;
    const char *text;
} snippet;

static const snippet SNIPPETS[] = {
    {ICL_LANG_PYTHON, "def add(a, b):\n    return a + b\n"},
    {ICL_LANG_PYTHON, "class Stack:\n    def __init__(self):\n        self.items = []\n\n"
                      "    def push(self, x):\n        self.items.append(x)\n"},
    {ICL_LANG_PYTHON, "import os\nfrom pathlib import Path\n\nfor name in os.listdir('.'):\n"
                      "    if name.endswith('.py'):\n        print(name)\n"},
    {ICL_LANG_JAVASCRIPT, "const fs = require('fs');\nfunction read(p) {\n  return fs.readFileSync(p, 'utf8');\n}\n"
                          "module.exports = { read };\n"},
    {ICL_LANG_JAVASCRIPT, "document.querySelector('#go').addEventListener('click', () => {\n"
                          "  console.log('clicked');\n});\n"},
    {ICL_LANG_JAVASCRIPT, "async function load(url) {\n  const res = await fetch(url)\n"
                          "  if (res.status !== 200) throw new Error(`status ${res.status}`)\n  return res.json()\n}\n"},
    {ICL_LANG_TYPESCRIPT, "interface User {\n  id: number;\n  name: string;\n}\n\n"
                          "export function greet(user: User): string {\n  return `hi ${user.name}`;\n}\n"},
    {ICL_LANG_TYPESCRIPT, "export class Cache<T> {\n  private items: Map<string, T> = new Map();\n"
                          "  get(key: string): T | undefined {\n    return this.items.get(key);\n  }\n}\n"},
    {ICL_LANG_TYPESCRIPT, "type Handler = (event: Event) => void;\nconst handlers: Handler[] = [];\n"},
    {ICL_LANG_TYPESCRIPT, "const value = lastValue!;\nconst adm: Administration = lookup(this)[key];\n"
                          "subscriber.next(value);\n"},
    {ICL_LANG_TYPESCRIPT, "const issue = raw as errors.StringFormatIssue;\nlet client: QueryClient\n"
                          "client = create(issue)\n"},
    {ICL_LANG_JAVA, "public class Main {\n    public static void main(String[] args) {\n"
                    "        System.out.println(\"Hello\");\n    }\n}\n"},
    {ICL_LANG_JAVA, "import java.util.List;\nimport java.util.ArrayList;\n\n"
                    "final List<String> names = new ArrayList<>();\n"},
    {ICL_LANG_JAVA, "    @Override\n    public boolean equals(Object o) {\n        if (this == o) return true;\n"
                    "        return o instanceof Point && ((Point) o).x == x;\n    }\n"},
    {ICL_LANG_CSHARP, "using System;\n\nnamespace Demo\n{\n    class Program\n    {\n"
                      "        static void Main(string[] args)\n        {\n"
                      "            Console.WriteLine($\"Hello {args.Length}\");\n        }\n    }\n}\n"},
    {ICL_LANG_CSHARP, "public string Name { get; set; }\npublic override string ToString() => Name;\n"},
    {ICL_LANG_CSHARP, "interface ITypeOffsets\n{\n    int tp_alloc { get; }\n    int tp_base { get; }\n}\n"},
    {ICL_LANG_CSHARP, "/// <summary>Adds two numbers.</summary>\ninternal static int Add(int a, int b)\n{\n"
                      "    return a + b;\n}\n"},
    {ICL_LANG_GO, "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hello\")\n}\n"},
    {ICL_LANG_GO, "func (s *Server) Close() error {\n\tif err := s.ln.Close(); err != nil {\n"
                  "\t\treturn err\n\t}\n\treturn nil\n}\n"},
    {ICL_LANG_GO, "ch := make(chan int)\ngo func() { ch <- 1 }()\ndefer close(ch)\n"},
    {ICL_LANG_RUST, "fn main() {\n    let mut v = Vec::new();\n    v.push(1);\n    println!(\"{:?}\", v);\n}\n"},
    {ICL_LANG_RUST, "impl<'a> Parser<'a> {\n    pub fn next(&mut self) -> Option<Token> {\n"
                    "        self.iter.next()\n    }\n}\n"},
    {ICL_LANG_RUST, "#[derive(Debug, Clone)]\npub struct Point {\n    x: f64,\n    y: f64,\n}\n"},
    {ICL_LANG_C, "#include <stdio.h>\n\nint main(void)\n{\n    printf(\"hello\\n\");\n    return 0;\n}\n"},
    {ICL_LANG_C, "static size_t count(const char *s)\n{\n    size_t n = 0;\n    while (*s++)\n"
                 "        n++;\n    return n;\n}\n"},
    {ICL_LANG_C, "typedef struct node {\n    struct node *next;\n    int value;\n} node;\n\n"
                 "node *n = malloc(sizeof *n);\nif (n == NULL)\n    return -1;\n"},
    {ICL_LANG_CPP, "#include <iostream>\n#include <vector>\n\nint main() {\n    std::vector<int> v{1, 2};\n"
                   "    std::cout << v.size() << std::endl;\n}\n"},
    {ICL_LANG_CPP, "template <typename T>\nclass Box {\npublic:\n    explicit Box(T v) : v_(v) {}\n"
                   "    const T& get() const noexcept { return v_; }\nprivate:\n    T v_;\n};\n"},
    {ICL_LANG_CPP, "namespace util {\nauto p = std::make_unique<Widget>();\nif (p != nullptr) p->run();\n}  // namespace util\n"},
    {ICL_LANG_RUBY, "class Greeter\n  attr_reader :name\n\n  def initialize(name)\n    @name = name\n  end\n\n"
                    "  def greet\n    puts \"Hello, #{@name}\"\n  end\nend\n"},
    {ICL_LANG_CPP, "#include \"sample2.h\"\n\n#include \"gtest/gtest.h\"\nnamespace {\n"
                   "TEST(MyString, DefaultConstructor) {\n  const MyString s;\n"
                   "  EXPECT_STREQ(nullptr, s.c_string());\n  EXPECT_EQ(0u, s.Length());\n}\n"},
    {ICL_LANG_CPP, "// Pulls in the real sources.\n#include \"src/gtest-death-test.cc\"\n"
                   "#include \"src/gtest-filepath.cc\"\n"},
    {ICL_LANG_RUBY, "  def times\n    cpu = bean.current_thread_cpu_time\n    cpu = 0 if cpu < 0\n"
                    "    cpu / 1000000000.0\n"},
    {ICL_LANG_RUBY, "[1, 2, 3].each do |x|\n  puts x unless x.nil?\nend\n"},
    {ICL_LANG_RUBY, "require 'json'\nmodule Util\n  def self.load(path)\n    JSON.parse(File.read(path))\n"
                    "  rescue Errno::ENOENT\n    nil\n  end\nend\n"},
    {ICL_LANG_PHP, "<?php\nnamespace App\\Http;\n\nclass Controller {\n    public function index($request) {\n"
                   "        return $this->view('home', ['user' => $request->user()]);\n    }\n}\n"},
    {ICL_LANG_PHP, "foreach ($items as $key => $value) {\n    echo $key . ': ' . $value;\n}\n"},
    {ICL_LANG_PHP, "$name = isset($_GET['name']) ? $_GET['name'] : 'world';\necho \"Hello $name\";\n"},
    {ICL_LANG_SHELL, "#!/bin/sh\nset -e\nfor f in *.txt; do\n    echo \"$f\"\ndone\n"},
    {ICL_LANG_SHELL, "if [ -z \"$1\" ]; then\n  echo \"usage: $0 FILE\" >&2\n  exit 1\nfi\n"},
    {ICL_LANG_SHELL, "case \"$1\" in\n  start) run ;;\n  stop) kill \"$(cat pid)\" ;;\nesac\n"
                     "ls -la | grep foo > /dev/null 2>&1\n"},
    {ICL_LANG_SQL, "SELECT name, COUNT(*) FROM users WHERE active = 1 GROUP BY name ORDER BY 2 DESC;\n"},
    {ICL_LANG_SQL, "CREATE TABLE users (\n  id SERIAL PRIMARY KEY,\n  email VARCHAR(255) NOT NULL UNIQUE\n);\n"},
    {ICL_LANG_SQL, "create index idx_users_email on users(email);\ndrop table if exists tmp;\n"
                   "insert into audit (who) values ('me');\n"},
    {ICL_LANG_SQL, "-- the newest orders\nselect * from orders where created_at > now() - interval '1 day';\n"},
};

TEST(snippets_per_language)
{
    int per_lang[ICL_LANG_COUNT] = {0};
    for (size_t i = 0; i < sizeof SNIPPETS / sizeof *SNIPPETS; i++) {
        icl_lang got = det(SNIPPETS[i].text);
        per_lang[SNIPPETS[i].lang]++;
        if (got != SNIPPETS[i].lang) {
            fprintf(stderr, "snippet %zu: got %s, want %s:\n%s\n", i, icl_lang_name(got),
                    icl_lang_name(SNIPPETS[i].lang), SNIPPETS[i].text);
            harness_failures_in_test++;
        }
        /* The same without the terminating NUL, and with CRLF line ends. */
        CHECK_LANG(det_exact(SNIPPETS[i].text, strlen(SNIPPETS[i].text)), SNIPPETS[i].lang);
        char crlf[2048];
        size_t n = 0;
        for (const char *p = SNIPPETS[i].text; *p && n + 2 < sizeof crlf; p++) {
            if (*p == '\n')
                crlf[n++] = '\r';
            crlf[n++] = *p;
        }
        CHECK_LANG(det_exact(crlf, n), SNIPPETS[i].lang);
    }
    for (int l = 1; l < ICL_LANG_COUNT; l++)
        CHECK(per_lang[l] >= 3);
}

TEST(shebangs)
{
    CHECK_LANG(det("#!/usr/bin/env python3\nx = 1\n"), ICL_LANG_PYTHON);
    CHECK_LANG(det("#!/usr/bin/env node\nx = 1\n"), ICL_LANG_JAVASCRIPT);
    CHECK_LANG(det("#!/usr/bin/ruby -w\nx = 1\n"), ICL_LANG_RUBY);
    CHECK_LANG(det("#!/usr/bin/php\nx = 1\n"), ICL_LANG_PHP);
    CHECK_LANG(det("#!/bin/bash\nx=1\n"), ICL_LANG_SHELL);
    CHECK_LANG(det("#!/usr/bin/env -S bash -e\nx=1\n"), ICL_LANG_SHELL);
    CHECK_LANG(det("#!/bin/sh"), ICL_LANG_SHELL);
}

TEST(natural_language_is_generic)
{
    static const char *const queries[] = {
        "how do I sort a list",
        "how do I sort a list in python",
        "read a file line by line",
        "function that returns the maximum of two numbers",
        "What is the difference between a process and a thread?",
        "parse command line arguments with defaults and help text",
        "select the ten largest customers by revenue",
        "create a table for users with a unique email",
        "Returns the number of elements in the collection.",
        "where do we set the timeout for database queries?",
        "async function that fetches a URL and returns the body",
        "delete all rows older than thirty days",
        "class for a thread-safe queue with a maximum size",
        "Ce programme lit un fichier et affiche les lignes.",
        "日本語のテキストです",
        "ok",
        "x",
    };
    for (size_t i = 0; i < sizeof queries / sizeof *queries; i++) {
        icl_lang got = det(queries[i]);
        if (got != ICL_LANG_GENERIC) {
            fprintf(stderr, "query \"%s\" detected as %s\n", queries[i], icl_lang_name(got));
            harness_failures_in_test++;
        }
    }
    /* A query that carries code is code. */
    CHECK_LANG(det("why does fn main() { let mut x = vec![1]; x.push(2); } not compile"), ICL_LANG_RUST);
}

TEST(path_hint_wins)
{
    const char *py = "def f(x):\n    return x\n";
    CHECK_LANG(icl_lang_detect(py, strlen(py), NULL), ICL_LANG_PYTHON);
    CHECK_LANG(icl_lang_detect(py, strlen(py), "weird.rb"), ICL_LANG_RUBY);
    CHECK_LANG(icl_lang_detect(py, strlen(py), "src/a.go"), ICL_LANG_GO);
    /* An unknown extension falls back to the text. */
    CHECK_LANG(icl_lang_detect(py, strlen(py), "notes.txt"), ICL_LANG_PYTHON);
    CHECK_LANG(icl_lang_detect(py, strlen(py), ""), ICL_LANG_PYTHON);
    /* The path decides even with no text. */
    CHECK_LANG(icl_lang_detect(NULL, 0, "x.sql"), ICL_LANG_SQL);
    CHECK_LANG(icl_lang_detect("", 0, "x.ts"), ICL_LANG_TYPESCRIPT);
}

TEST(any_bytes_are_safe)
{
    CHECK_LANG(icl_lang_detect(NULL, 0, NULL), ICL_LANG_GENERIC);
    CHECK_LANG(icl_lang_detect("", 0, NULL), ICL_LANG_GENERIC);
    CHECK_LANG(det_exact("", 0), ICL_LANG_GENERIC);
    CHECK_LANG(det("\n\n\n"), ICL_LANG_GENERIC);
    CHECK_LANG(det("   \t  "), ICL_LANG_GENERIC);
    CHECK_LANG(det("\xff\xfe\xfd\xc3\x28\xed\xa0\x80\xf8\x88\x80\x80\x80"), ICL_LANG_GENERIC);

    /* NUL bytes inside len do not end the text. */
    static const char nul[] = "\0\0def f(self):\0\n    return self.x\n\0";
    icl_lang l = det_exact(nul, sizeof nul - 1);
    CHECK(l == ICL_LANG_PYTHON || l == ICL_LANG_GENERIC);
    static const char nul_go[] = "package main\n\0\nfunc main() {\n\tx := 1\n\t_ = x\n}\n";
    CHECK_LANG(det_exact(nul_go, sizeof nul_go - 1), ICL_LANG_GO);

    /* Every prefix of every snippet, cut anywhere (inside strings, comments,
     * escapes), stays inside its bytes. */
    for (size_t i = 0; i < sizeof SNIPPETS / sizeof *SNIPPETS; i++) {
        size_t n = strlen(SNIPPETS[i].text);
        for (size_t k = 0; k <= n; k++) {
            icl_lang got = det_exact(SNIPPETS[i].text, k);
            CHECK((unsigned)got < ICL_LANG_COUNT);
        }
    }

    /* Unclosed constructs and lone openers at the very end. */
    static const char *const tails[] = {
        "/*", "\"", "'", "`", "\"\"\"", "'''", "#", "#!", "#include", "#include <", "$", "${", "@",
        "<?php", "<<", "<<~", "<<-", "->", "::", "\\", "x?", "f\"", "r#\"", "&'", "|x", "--", "//",
        "/// <", "= begin", "=begin", "[A", "\xe2\x80", "0x", "1u", "..", "'a", "#[", "#![",
        "x = \"unclosed\nstill open\n", "s = `a\nb` + '", "a /* b\n c */ d",
    };
    for (size_t i = 0; i < sizeof tails / sizeof *tails; i++) {
        icl_lang got = det_exact(tails[i], strlen(tails[i]));
        CHECK((unsigned)got < ICL_LANG_COUNT);
    }

    /* Pseudo-random bytes, including long identifiers and deep brackets. */
    unsigned char buf[4096];
    unsigned x = 12345;
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)(round * 37) % sizeof buf;
        for (size_t k = 0; k < n; k++) {
            x = x * 1103515245u + 12345u;
            static const char alphabet[] = "({[<\"'`#$@:;\n x_A9*/\\-|&!?.";
            buf[k] = round % 2 ? (unsigned char)(x >> 16)
                               : (unsigned char)alphabet[(x >> 16) % (sizeof alphabet - 1)];
        }
        icl_lang got = det_exact((const char *)buf, n);
        CHECK((unsigned)got < ICL_LANG_COUNT);
    }
    char longid[1000];
    memset(longid, 'a', sizeof longid);
    CHECK_LANG(det_exact(longid, sizeof longid), ICL_LANG_GENERIC);
    char deep[300];
    memset(deep, '(', sizeof deep);
    CHECK((unsigned)det_exact(deep, sizeof deep) < ICL_LANG_COUNT);
}

TEST(deterministic)
{
    for (size_t i = 0; i < sizeof SNIPPETS / sizeof *SNIPPETS; i++)
        CHECK_LANG(det(SNIPPETS[i].text), det(SNIPPETS[i].text));
}

/* TypeScript that shows itself only in small ways: a definite-assignment
 * "!:", "=> void" in a callback type, "<typeof x>", a lower-case type
 * alias, "string" in a union, and untyped code whose words are
 * TypeScript's (generic parameters, "readonly", "unknown"). */
TEST(typescript_idioms)
{
    CHECK_LANG(det("class Doc {\n  args!: string[];\n  indent = 0;\n"
                   "  indented(fn) {\n    this.indent += 1;\n  }\n}\n"),
               ICL_LANG_TYPESCRIPT);
    CHECK_LANG(det("const listeners = [];\nfunction on(cb: () => void) {\n"
                   "  listeners.push(cb);\n}\n"),
               ICL_LANG_TYPESCRIPT);
    CHECK_LANG(det("const schema = z.object({ name: z.string() });\n"
                   "type schema = z.infer<typeof schema>;\n"),
               ICL_LANG_TYPESCRIPT);
    CHECK_LANG(det("function pick(key, fallback) {\n  const value = lookup(key);\n"
                   "  return value ?? fallback;\n}\nlet id: number | string = 0;\n"),
               ICL_LANG_TYPESCRIPT);
    CHECK_LANG(det("export function first(items, fallback) {\n"
                   "  const [head] = items as unknown[];\n  return head ?? fallback;\n}\n"),
               ICL_LANG_TYPESCRIPT);
}

/* The negative side: CommonJS, JSDoc types and "() => void 0" stay
 * JavaScript; Java's "out" parameter is not C#'s. */
TEST(javascript_stays_javascript)
{
    CHECK_LANG(det("const fs = require('fs');\n\n/**\n * @param {string} file\n"
                   " * @returns {Promise<string>}\n */\n"
                   "module.exports = function read(file) {\n"
                   "  return fs.promises.readFile(file, 'utf8');\n};\n"),
               ICL_LANG_JAVASCRIPT);
    CHECK_LANG(det("const noop = () => void 0;\nconst total = items.reduce((a, b) => a + b, 0);\n"
                   "console.log(total);\n"),
               ICL_LANG_JAVASCRIPT);
    CHECK_LANG(det("var opts = Object.assign({}, defaults, options);\n"
                   "if (typeof opts.path !== 'string') {\n"
                   "  throw new TypeError('path must be a string');\n}\n"),
               ICL_LANG_JAVASCRIPT);
}

/* C++ habits on code that would otherwise read as C: "m_" members,
 * googletest headers; and C that keeps its own habits. (A line comment
 * after a directive alone no longer makes C++: C99 code writes them too,
 * and the learned part weighs it against the rest.) */
TEST(cpp_idioms_and_c_negatives)
{
    CHECK_LANG(det("void Buffer::reset()\n{\n  if (m_data != 0)\n    free(m_data);\n"
                   "  m_data = 0;\n  m_size = 0;\n}\n"),
               ICL_LANG_CPP);
    CHECK_LANG(det("#include \"gtest/gtest.h\"\n\nstatic int add(int a, int b) { return a + b; }\n"
                   "\nTEST(Add, Small) { EXPECT_EQ(3, add(1, 2)); }\n"),
               ICL_LANG_CPP);
    CHECK_LANG(det("#ifndef BUF_H\n#define BUF_H /* once */\n#include <stddef.h>\n\n"
                   "struct buf {\n    char *data;\n    size_t len;\n};\n"
                   "int buf_grow(struct buf *b, size_t n);\n#endif /* BUF_H */\n"),
               ICL_LANG_C);
    CHECK_LANG(det("static int count_lines(const char *s)\n{\n    int n = 0;\n"
                   "    for (; *s; s++)\n        if (*s == '\\n')\n            n++;\n"
                   "    return n;\n}\n"),
               ICL_LANG_C);
}

/* Java beside C#: Javadoc tags, a lower-case method after its type, a
 * stream named "out". */
TEST(java_not_csharp)
{
    CHECK_LANG(det("    /**\n     * Returns the key, or {@code null}.\n     */\n"
                   "    public SecretKey getClientKey() {\n        return clientKey;\n    }\n"),
               ICL_LANG_JAVA);
    CHECK_LANG(det("    public void run(PrintStream out, Debugger dbg) {\n"
                   "        Target t = dbg.getTarget();\n        if (t != null) {\n"
                   "            print(out, t);\n        }\n    }\n"),
               ICL_LANG_JAVA);
}

/* The trainer's view of a text: rule scores, the rules' generic verdict
 * and the distinct feature buckets, all in range, repeatable, and cut at
 * cap without losing the count. */
TEST(probe_hook)
{
    static const char code[] = "fn main() {\n    let v: Vec<u8> = Vec::new();\n"
                               "    println!(\"{}\", v.len());\n}\n";
    unsigned short f1[512], f2[512], few[3] = {0, 0, 0};
    int r1[ICL_LANG_COUNT], r2[ICL_LANG_COUNT];
    size_t n1 = 0, n2 = 0, nfew = 0;
    CHECK_EQ_INT(icl_lang_probe(code, strlen(code), r1, f1, 512, &n1), 0);
    CHECK(n1 > 10 && n1 <= 512);
    for (size_t k = 0; k < n1; k++) {
        CHECK(f1[k] < 4096);
        for (size_t j = 0; j < k; j++)
            CHECK(f1[j] != f1[k]); /* each bucket once */
    }
    int best = 1;
    for (int l = 2; l < ICL_LANG_COUNT; l++)
        if (r1[l] > r1[best])
            best = l;
    CHECK_LANG((icl_lang)best, ICL_LANG_RUST);
    CHECK_EQ_INT(icl_lang_probe(code, strlen(code), r2, f2, 512, &n2), 0);
    CHECK_EQ_INT(n2, n1);
    CHECK(memcmp(f1, f2, n1 * sizeof *f1) == 0 && memcmp(r1, r2, sizeof r1) == 0);
    CHECK_EQ_INT(icl_lang_probe(code, strlen(code), r2, few, 2, &nfew), 0);
    CHECK_EQ_INT(nfew, n1);
    CHECK(few[0] == f1[0] && few[1] == f1[1] && few[2] == 0);

    static const char query[] = "how do I sort a list in python";
    CHECK_EQ_INT(icl_lang_probe(query, strlen(query), r1, f1, 512, &n1), 1);
    CHECK_EQ_INT(icl_lang_probe(NULL, 0, r1, f1, 512, &n1), 1);
    CHECK_EQ_INT(n1, 0);
}

/* The learned part's tokenizer on literals and comments left open at the
 * end of the text, on exact-size copies (ASan catches a read past len). */
TEST(learned_tokens_at_the_edge)
{
    static const char *const texts[] = {
        "x = \"unclosed", "x = 'a", "s = `multi\nline", "doc = \"\"\"open\n",
        "y = '''", "a /* open", "b // tail", "c /", "d \\", "0x1f.", "$", "#include <a.h",
        "\"\"", "''", "``", "\"\\", "'\\", "`\\",
    };
    unsigned short f[64];
    int r[ICL_LANG_COUNT];
    size_t n;
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        size_t len = strlen(texts[i]);
        char *copy = malloc(len);
        memcpy(copy, texts[i], len);
        (void)icl_lang_probe(copy, len, r, f, 64, &n);
        CHECK(n > 0);
        (void)icl_lang_detect(copy, len, NULL);
        free(copy);
    }
}

int main(void)
{
    RUN(names_round_trip);
    RUN(parse_aliases);
    RUN(from_path_every_language);
    RUN(snippets_per_language);
    RUN(shebangs);
    RUN(natural_language_is_generic);
    RUN(path_hint_wins);
    RUN(any_bytes_are_safe);
    RUN(deterministic);
    RUN(typescript_idioms);
    RUN(javascript_stays_javascript);
    RUN(cpp_idioms_and_c_negatives);
    RUN(java_not_csharp);
    RUN(probe_hook);
    RUN(learned_tokens_at_the_edge);
    return harness_summary("lang");
}
