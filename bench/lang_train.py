"""Trains the learned part of icl_lang_detect: a multinomial logistic
model over the thirteen languages that works together with the
hand-written rules in src/icl/lang.c.

    python3 bench/lang_train.py [--no-download] [--detector PATH]
                                [--out src/icl/lang_model.inc] [--no-cv]
                                [--margin N] [--l2 X] [--by-file]

For each language l the detector scores LM_RULE * rule score(l) + bias(l)
+ the sum of weight(b, l) over the distinct feature buckets b of the text
(hashed tokens and token pairs; lang.c says which), and the languages
whose rule score is within LM_MARGIN of the best compete on that sum.
The rules alone still decide when a text is generic (prose, too little
code). The features and rule scores come from the detector itself
(`lang_detect --probe`), so the C scanner is the only definition of them
and they do not depend on the weights being trained.

Training data: the "tune" half of bench/lang_eval.py's corpus only (the
same split by file hash; the "report" half is never read), cut into chunks
with seeds of their own (101-104). The model is fitted by L-BFGS on the
full batch (cross-entropy plus an L2 penalty on the bucket weights), the
rule weight being one shared parameter, then rounded to int16.

Unless --no-cv, it is measured first: the tune files are split in two by their origin
directory, a model is trained on each side and tested on chunks (seed 1)
of the other, so that no directory's own names are seen in both; the
margin is picked by that figure. The figures go into the header of the generated table, and
bench/lang_eval.py copies them into docs/LANGUAGES.md. Deterministic: the
same corpus gives the same file, byte for byte.
"""
import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402
import scipy.sparse  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lang_eval as le  # noqa: E402

LANGS = le.LANGS          # the thirteen classes, in icl_lang order
BUCKETS = 4096            # LM_BUCKETS in lang.c's feature hash
SEEDS = [101, 102, 103, 104]
PER_LANG = 800            # chunks per language and seed
L2 = 10.0                 # penalty on the bucket weights (sum of squares, per chunk)
MARGINS = [0, 2, 4, 8, 16, 32, 1000]
ITERS = 300


def origin(name, group):
    """A file's origin for the validation split: its directory within its
    source (a package directory, a directory of an archive). Splitting by
    whole package would leave languages that come from one or two packages
    (C#, PHP, Ruby, the JDK's Java) on one side only."""
    return group + ":" + os.path.dirname(name)


def fold_of(pkg):
    return hashlib.sha1(pkg.encode("utf-8", "surrogateescape")).digest()[0] % 2


def load_corpus(no_download):
    corpus = le.Corpus()
    le.walk_roots(corpus, 25)
    le.walk_scripts(corpus)
    le.walk_jdk(corpus, 25)
    short = {l for l in LANGS if len(corpus.files[l]) < 150}
    le.add_downloads(corpus, short, {}, 25, offline=no_download)
    return corpus


def chunks(corpus, files, seeds, per_lang):
    out = []
    for seed in seeds:
        for l in LANGS:
            out += le.make_chunks(corpus, l, files[l], seed, per_lang)
    return out


def probe(exe, cs):
    """(generic flags, rule scores n x 13, sparse features n x BUCKETS)."""
    data = "".join(le.json.dumps({"text": c["text"]}) + "\n" for c in cs)
    out = subprocess.run([str(exe), "--probe"], input=data, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert len(out) == len(cs)
    gen = np.zeros(len(cs), dtype=bool)
    rule = np.zeros((len(cs), len(LANGS)))
    rows, cols = [], []
    for i, line in enumerate(out):
        head, feats = line.split("|")
        v = [int(x) for x in head.split()]
        gen[i], rule[i] = v[0], v[1:]
        f = [int(x) for x in feats.split()]
        rows += [i] * len(f)
        cols += f
    x = scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(cs), BUCKETS))
    return gen, rule, x


def fit(rule, x, y):
    """Multinomial logistic regression: logits = a * rule + b + x @ W."""
    n, k = rule.shape
    yk = np.zeros((n, k))
    yk[np.arange(n), y] = 1
    xt = x.T.tocsr()

    def f(theta):
        a, b, w = theta[0], theta[1:1 + k], theta[1 + k:].reshape(BUCKETS, k)
        z = a * rule + b + x @ w
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(n), y] + 1e-12).sum() + L2 * (w * w).sum()
        g = p - yk
        grad = np.concatenate([[(g * rule).sum()], g.sum(axis=0), (xt @ g + 2 * L2 * w).ravel()])
        return loss / n, grad / n

    theta0 = np.zeros(1 + k + BUCKETS * k)
    theta0[0] = 0.1
    res = scipy.optimize.minimize(f, theta0, jac=True, method="L-BFGS-B",
                                  options={"maxiter": ITERS})
    th = res.x
    return th[0], th[1:1 + k], th[1 + k:].reshape(BUCKETS, k)


def quantize(a, b, w):
    """Integer weights: Q units per nat, int16 range."""
    big = max(np.abs(w).max(), np.abs(b).max(), 1e-9)
    q = min(256.0, 32000.0 / big)
    return (int(round(a * q)), np.round(b * q).astype(int), np.round(w * q).astype(int), q)


# The detector's tie order (lang.c's PREF), as class indices.
PREF = [LANGS.index(l) for l in ["c", "javascript", "python", "java", "go", "cpp", "csharp",
                                 "typescript", "rust", "ruby", "php", "shell", "sql"]]


def decide(model, gen, rule, x, margin):
    """What lang.c decides: class index, or -1 for generic."""
    ra, rb, rw, _ = model
    s = ra * rule + rb + (x @ rw)
    top = rule.max(axis=1, keepdims=True)
    s = np.where(rule >= top - margin, s, -np.inf)
    best = np.full(len(rule), -1)
    bv = np.full(len(rule), -np.inf)
    for l in PREF:  # strict >, in tie order
        take = s[:, l] > bv
        best[take], bv[take] = l, s[take, l]
    return np.where(gen, -1, best)


def labels(cs):
    return np.array([LANGS.index(c["label"]) for c in cs])


def train_on(exe, corpus, files):
    cs = chunks(corpus, files, SEEDS, PER_LANG)
    gen, rule, x = probe(exe, cs)
    keep = ~gen
    a, b, w = fit(rule[keep], x[keep], labels(cs)[keep])
    return quantize(a, b, w)


def write_table(path, model, margin, notes):
    ra, rb, rw, q = model
    lines = ["/* Generated by bench/lang_train.py from the tuning half of",
             " * bench/lang_eval.py's corpus; do not edit, regenerate with",
             " * `python3 bench/lang_train.py --no-download`.",
             f" * {BUCKETS} buckets x {len(LANGS)} languages int16 weights, "
             f"{q:.1f} units per nat."]
    lines += [f" * {n}" for n in notes]
    lines += [" */",
              f"#define LM_BUCKETS {BUCKETS}",
              f"#define LM_RULE {ra}",
              f"#define LM_MARGIN {margin}",
              "static const int16_t LM_BIAS[LM_CLASSES] = {" + ", ".join(map(str, rb)) + "};",
              "static const int16_t LM_W[LM_BUCKETS][LM_CLASSES] = {"]
    lines += ["{" + ",".join(map(str, row)) + "}," for row in rw]
    lines += ["};"]
    Path(path).write_text("\n".join(lines) + "\n")


def main():
    global L2
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-download", action="store_true",
                    help="use only the pinned files already in .cache/lang-corpus/")
    ap.add_argument("--detector", default=str(le.ROOT / "build" / "bench" / "lang_detect"))
    ap.add_argument("--out", default=str(le.ROOT / "src" / "icl" / "lang_model.inc"))
    ap.add_argument("--no-cv", dest="cv", action="store_false",
                    help="skip the validation (faster; the table then states no figure)")
    ap.add_argument("--margin", type=int, help="LM_MARGIN instead of the validated choice")
    ap.add_argument("--l2", type=float, default=L2)
    ap.add_argument("--by-file", action="store_true",
                    help="--cv splits by file instead of by package (as the report half does)")
    args = ap.parse_args()
    L2 = args.l2
    corpus = load_corpus(args.no_download)
    tune = {l: sorted(h for h in corpus.files[l] if int(h[:8], 16) % 2 == 0) for l in LANGS}
    notes, margin = [], 16 if args.margin is None else args.margin
    if args.cv:
        side = {}
        for l in LANGS:
            for h in tune[l]:
                name, _ = corpus.files[l][h]
                side[h] = int(h[8:10], 16) % 2 if args.by_file else fold_of(origin(name, corpus.group[h]))
        right = {m: 0 for m in ["rules"] + MARGINS}
        total = 0
        for f in (0, 1):
            train = {l: [h for h in tune[l] if side[h] == f] for l in LANGS}
            test = {l: [h for h in tune[l] if side[h] != f] for l in LANGS}
            model = train_on(args.detector, corpus, train)
            cs = chunks(corpus, test, [1], 400)
            gen, rule, x = probe(args.detector, cs)
            y = labels(cs)
            total += len(cs)
            zero = (0, np.zeros(len(LANGS)), np.zeros((BUCKETS, len(LANGS))), 1)
            right["rules"] += int((decide((1,) + zero[1:], gen, rule, x, 0) == y).sum())
            for m in MARGINS:
                right[m] += int((decide(model, gen, rule, x, m) == y).sum())
        for k, v in right.items():
            print(f"{'file' if args.by_file else 'directory'}-split validation, {'rules only' if k == 'rules' else f'margin {k}'}: "
                  f"{100 * v / total:.1f}% of {total}")
        margin = max(MARGINS, key=lambda m: (right[m], -m)) if args.margin is None else args.margin
        kind = "File-split" if args.by_file else "Directory-split"
        notes = [f"{kind} validation on the tuning half ({total} chunks): "
                 f"{100 * right[margin] / total:.1f}% (rules alone: {100 * right['rules'] / total:.1f}%)."]
    model = train_on(args.detector, corpus, tune)
    write_table(args.out, model, margin, notes)
    print(f"wrote {args.out}: LM_RULE {model[0]}, margin {margin}; " + " ".join(notes))


if __name__ == "__main__":
    main()
