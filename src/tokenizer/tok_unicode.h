/*
 * tok_unicode.h - per-code-point facts exactly as the Hugging Face
 * tokenizers library sees them (see tok_unicode.c for the Unicode versions
 * involved), plus a UTF-8 decoder.
 */
#ifndef TOK_UNICODE_H
#define TOK_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum {
    TOK_U_WS = 1u << 0,      /* Rust char::is_whitespace */
    TOK_U_CONTROL = 1u << 1, /* BertNormalizer is_control: Cc, Cf, Cs, Co but \t \n \r */
    TOK_U_PUNCT = 1u << 2,   /* BertPreTokenizer: ASCII punctuation or P* */
    TOK_U_MN = 1u << 3,      /* removed by strip_accents after NFD */
    TOK_U_CJK = 1u << 4      /* BertNormalizer is_chinese_char */
};

/* Canonical decompositions are at most 4 chars long; room to spare. */
#define TOK_U_MAX_DECOMP 8

unsigned tok_u_flags(int32_t cp);
/* Canonical combining class. */
int tok_u_ccc(int32_t cp);
/* Full canonical decomposition of cp into out; returns the count (1 and
 * out[0] == cp when cp does not decompose). */
int tok_u_decompose(int32_t cp, int32_t out[TOK_U_MAX_DECOMP]);
/* Rust char::to_lowercase: returns the count (1 or 2). */
int tok_u_lower(int32_t cp, int32_t out[2]);

/* Decodes one UTF-8 char at s (n > 0 bytes left). Returns its length, or 0
 * when the bytes are not valid UTF-8 (overlong, surrogate, > U+10FFFF,
 * truncated). */
static inline size_t tok_utf8_decode(const unsigned char *s, size_t n, int32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = (int32_t)c;
        return 1;
    }
    if (c < 0xC2 || c > 0xF4)
        return 0;
    if (c < 0xE0) {
        if (n < 2 || (s[1] & 0xC0) != 0x80)
            return 0;
        *cp = (int32_t)(((c & 0x1F) << 6) | (s[1] & 0x3F));
        return 2;
    }
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        uint32_t v = ((c & 0x0F) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
        if (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))
            return 0;
        *cp = (int32_t)v;
        return 3;
    }
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
        return 0;
    uint32_t v = ((c & 0x07) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) |
                 (s[3] & 0x3Fu);
    if (v < 0x10000 || v > 0x10FFFF)
        return 0;
    *cp = (int32_t)v;
    return 4;
}

/* Encodes cp as UTF-8 into out (4 bytes room); returns the length. */
static inline size_t tok_utf8_encode(int32_t cp, unsigned char *out)
{
    uint32_t c = (uint32_t)cp;
    if (c < 0x80) {
        out[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (unsigned char)(0xC0 | (c >> 6));
        out[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (c >> 12));
        out[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (c >> 18));
    out[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

#endif
