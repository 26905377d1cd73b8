/*
 * tok_unicode.c - Unicode facts for the BERT normalizer and pre-tokenizer,
 * taken from utf8proc and bent to match the tokenizers library bit for bit.
 *
 * The tokenizers library (Rust) gets its Unicode facts from three places,
 * each frozen at a different Unicode version:
 *   - the unicode_categories crate, Unicode 8.0: is_punctuation (P*),
 *     is_other (Cc Cf Cs Co; NOT Cn, so unassigned code points are kept),
 *     is_mark_nonspacing (Mn);
 *   - the unicode-normalization-alignments crate, Unicode 9.0: NFD
 *     (decompositions and canonical combining classes);
 *   - Rust's std, a current Unicode: char::is_whitespace, char::to_lowercase.
 * utf8proc 2.8 knows Unicode 15.0. Categories and combining classes of
 * assigned characters almost never change, so the only corrections needed
 * are for code points assigned after 8.0 / 9.0 (NEW8 and NEW9 below) and
 * for six characters whose category changed since 8.0.
 *
 * The two range tables were derived, not written by hand: NEW8 is every code
 * point that is not in Unicode 8.0 (DerivedAge) and that Unicode 15.0 puts in
 * P*, Mn or Cf, merged across code points also absent from 8.0; NEW9 is the
 * same for 9.0 and "has a combining class or a canonical decomposition".
 * tests/py/test_tokenizer_parity.py sweeps all code points of planes 0-3 and
 * 14 (samples of the uniform rest) against the tokenizers library, which
 * catches any drift, e.g. after a utf8proc upgrade.
 *
 * Known, accepted difference: code points unassigned in utf8proc's Unicode
 * but assigned (with a lowercase mapping) in Rust's newer one, e.g.
 * U+1C89, U+A7CB..A7DC, U+10D50..10D65, U+16EA0..16EB8 (Unicode 16), are
 * not lowercased here.
 */
#include "tok_unicode.h"

#include <utf8proc.h>

typedef struct {
    int32_t lo, hi;
} tok_range;

/* Not in Unicode 8.0: never P*, Mn or Cf for the unicode_categories crate. */
static const tok_range new8[] = {
    {0x61D, 0x61D}, {0x7FD, 0x7FD}, {0x890, 0x89F}, {0x8CA, 0x8E2}, {0x9FD, 0x9FE},
    {0xA76, 0xA76}, {0xAFA, 0xAFF}, {0xB55, 0xB55}, {0xC04, 0xC04}, {0xC3C, 0xC3C},
    {0xC77, 0xC77}, {0xC84, 0xC84}, {0xD00, 0xD00}, {0xD3B, 0xD3C}, {0xD81, 0xD81},
    {0xEBA, 0xEBA}, {0xECE, 0xECE}, {0x180F, 0x180F}, {0x1ABF, 0x1ACE}, {0x1B7D, 0x1B7E},
    {0x1DF6, 0x1DFB}, {0x2E43, 0x2E5D}, {0xA82C, 0xA82C}, {0xA8C5, 0xA8C5},
    {0xA8FF, 0xA8FF}, {0x10D24, 0x10D27}, {0x10EAB, 0x10F89}, {0x11070, 0x11074},
    {0x110C2, 0x110CD}, {0x111CF, 0x111CF}, {0x1123E, 0x11241}, {0x1133B, 0x1133B},
    {0x11438, 0x1145E}, {0x11660, 0x1166C}, {0x116B9, 0x116B9}, {0x1182F, 0x1183B},
    {0x1193B, 0x11AA2}, {0x11B00, 0x11FFF}, {0x12FF1, 0x12FF2}, {0x13430, 0x13455},
    {0x16E97, 0x16E9A}, {0x16F4F, 0x16F4F}, {0x16FE2, 0x16FE4}, {0x1CF00, 0x1CF46},
    {0x1E000, 0x1E4EF}, {0x1E944, 0x1E95F},
};

/* Not in Unicode 9.0: combining class 0 and no decomposition for the
 * normalization crate. */
static const tok_range new9[] = {
    {0x7FD, 0x7FD}, {0x898, 0x89F}, {0x8CA, 0x8D3}, {0x9FE, 0x9FE}, {0xC3C, 0xC3C},
    {0xD3B, 0xD3C}, {0xEBA, 0xEBA}, {0x1715, 0x1715}, {0x1ABF, 0x1ACE}, {0x1DF6, 0x1DFA},
    {0xA82C, 0xA82C}, {0x10D24, 0x10D27}, {0x10EAB, 0x10F85}, {0x11070, 0x11070},
    {0x1133B, 0x1133B}, {0x1145E, 0x1145E}, {0x11839, 0x1183A}, {0x11938, 0x11A99},
    {0x11D42, 0x11F42}, {0x16FF0, 0x16FF1}, {0x1E08F, 0x1E4EF},
};

static int in_ranges(const tok_range *r, size_t n, int32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

static int is_cjk(int32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static unsigned ascii_flags(int32_t c)
{
    if (c == ' ' || (c >= 0x09 && c <= 0x0D))
        return TOK_U_WS | (c == 0x0B || c == 0x0C ? TOK_U_CONTROL : 0);
    if (c < 0x20 || c == 0x7F)
        return TOK_U_CONTROL;
    if ((c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
        (c >= '{' && c <= '~'))
        return TOK_U_PUNCT;
    return 0;
}

/* General category as of Unicode 8.0 where it differs in a way that matters. */
static int category_v8(int32_t cp, int cat)
{
    switch (cp) {
    case 0x166D: /* CANADIAN SYLLABICS CHI SIGN: Po until 12.0 */
    case 0x111C9: /* SHARADA SANDHI MARK: Po until 11.0 */
        return UTF8PROC_CATEGORY_PO;
    case 0x1734: /* HANUNOO SIGN PAMUDPOD: Mn until 14.0 */
        return UTF8PROC_CATEGORY_MN;
    case 0x1885: /* MONGOLIAN LETTER ALI GALI BALUDA: Lo until 9.0 */
    case 0x1886:
        return UTF8PROC_CATEGORY_LO;
    case 0xA9BD: /* JAVANESE CONSONANT SIGN KERET: Mc until 12.0 */
        return UTF8PROC_CATEGORY_MC;
    default:
        break;
    }
    int relevant = cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_CF ||
                   (cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO);
    if (relevant && in_ranges(new8, sizeof new8 / sizeof new8[0], cp))
        return UTF8PROC_CATEGORY_CN;
    return cat;
}

unsigned tok_u_flags(int32_t cp)
{
    if (cp < 0x80)
        return ascii_flags(cp);
    int cat = category_v8(cp, utf8proc_category(cp));
    unsigned f = 0;
    /* White_Space above ASCII: U+0085 and the Zs/Zl/Zp separators. */
    if (cp == 0x85 || cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
        cat == UTF8PROC_CATEGORY_ZP)
        f |= TOK_U_WS;
    if (cat >= UTF8PROC_CATEGORY_CC && cat <= UTF8PROC_CATEGORY_CO)
        f |= TOK_U_CONTROL;
    if (cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO)
        f |= TOK_U_PUNCT;
    if (cat == UTF8PROC_CATEGORY_MN)
        f |= TOK_U_MN;
    if (is_cjk(cp))
        f |= TOK_U_CJK;
    return f;
}

static int is_new9(int32_t cp)
{
    return cp >= 0x7FD && in_ranges(new9, sizeof new9 / sizeof new9[0], cp);
}

int tok_u_ccc(int32_t cp)
{
    if (cp < 0x300)
        return 0;
    int ccc = utf8proc_get_property(cp)->combining_class;
    return ccc && is_new9(cp) ? 0 : ccc;
}

int tok_u_decompose(int32_t cp, int32_t out[TOK_U_MAX_DECOMP])
{
    if (cp < 0xC0 || is_new9(cp)) {
        out[0] = cp;
        return 1;
    }
    int last_boundclass = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char(cp, out, TOK_U_MAX_DECOMP,
                                                 UTF8PROC_DECOMPOSE, &last_boundclass);
    if (n < 1 || n > TOK_U_MAX_DECOMP) {
        /* Cannot happen for canonical decompositions (at most 4 chars). */
        out[0] = cp;
        return 1;
    }
    return (int)n;
}

int tok_u_lower(int32_t cp, int32_t out[2])
{
    /* The one unconditional multi-char lowercase mapping of SpecialCasing.txt;
     * utf8proc only has simple mappings. */
    if (cp == 0x130) {
        out[0] = 'i';
        out[1] = 0x307;
        return 2;
    }
    out[0] = utf8proc_tolower(cp);
    return 1;
}
