/*
 * prompt.c - in-context-learning prompts (see prompt.h for the format).
 */
#include <string.h>

#include "../util/util.h"
#include "prompt.h"

static const char INSTRUCT[] = "<instruct>";
static const char QUERY[] = "\n<query>";
static const char RESPONSE[] = "\n<response>";
static const char SEP[] = "\n\n";
#define LIT(s) (sizeof(s) - 1)

/* A cursor into a buffer sized exactly beforehand. */
typedef struct out {
    char *p;
} out;

static void put(out *o, const char *s, size_t n)
{
    memcpy(o->p, s, n);
    o->p += n;
}

static size_t str_len(const char *s) { return s ? strlen(s) : 0; }

static size_t example_len(const icl_prompt *p, size_t i)
{
    return LIT(INSTRUCT) + str_len(p->instruction) + LIT(QUERY) + str_len(p->ex_query[i]) +
           LIT(RESPONSE) + str_len(p->ex_response ? p->ex_response[i] : NULL);
}

static void put_example(out *o, const icl_prompt *p, size_t i)
{
    put(o, INSTRUCT, LIT(INSTRUCT));
    put(o, p->instruction ? p->instruction : "", str_len(p->instruction));
    put(o, QUERY, LIT(QUERY));
    put(o, p->ex_query[i] ? p->ex_query[i] : "", str_len(p->ex_query[i]));
    put(o, RESPONSE, LIT(RESPONSE));
    const char *r = p->ex_response ? p->ex_response[i] : NULL;
    put(o, r ? r : "", str_len(r));
}

static size_t query_part_len(const icl_prompt *p)
{
    return LIT(INSTRUCT) + str_len(p->instruction) + LIT(QUERY) + p->query_len;
}

static size_t prefix_len(const icl_prompt *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_examples; i++)
        n += example_len(p, i) + LIT(SEP);
    return n;
}

/* The examples, joined by "\n\n", and "\n\n" after the last. */
static void put_prefix(out *o, const icl_prompt *p)
{
    for (size_t i = 0; i < p->n_examples; i++) {
        put_example(o, p, i);
        put(o, SEP, LIT(SEP));
    }
}

char *icl_prompt_build(const icl_prompt *p, size_t *len)
{
    size_t n = prefix_len(p) + query_part_len(p) + (p->decoder ? LIT(RESPONSE) : 0);
    char *buf = bg_malloc(n + 1);
    if (!buf)
        return NULL;
    out o = {buf};
    put_prefix(&o, p);
    put(&o, INSTRUCT, LIT(INSTRUCT));
    put(&o, p->instruction ? p->instruction : "", str_len(p->instruction));
    put(&o, QUERY, LIT(QUERY));
    put(&o, p->query, p->query_len);
    if (p->decoder)
        put(&o, RESPONSE, LIT(RESPONSE));
    *o.p = '\0';
    if (len)
        *len = n;
    return buf;
}

char *icl_prompt_prefix(const icl_prompt *p, size_t *len)
{
    size_t n = prefix_len(p);
    char *buf = bg_malloc(n + 1);
    if (!buf)
        return NULL;
    out o = {buf};
    put_prefix(&o, p);
    *o.p = '\0';
    if (len)
        *len = n;
    return buf;
}

/* Counts one example block by building it alone. */
static size_t count_example(const icl_prompt *p, size_t i, icl_token_count count, void *ctx)
{
    size_t n = example_len(p, i);
    char *buf = bg_malloc(n + 1);
    if (!buf)
        return (size_t)-1;
    out o = {buf};
    put_example(&o, p, i);
    size_t t = count(ctx, buf, n);
    bg_free(buf);
    return t;
}

size_t icl_prompt_fit(icl_prompt *p, size_t budget, icl_token_count count, void *ctx)
{
    if (p->n_examples == 0)
        return 0;
    icl_prompt q = *p;
    q.n_examples = 0;
    size_t qn = 0;
    char *qs = icl_prompt_build(&q, &qn);
    if (!qs)
        return (size_t)-1;
    size_t used = count(ctx, qs, qn);
    bg_free(qs);
    size_t keep = 0;
    for (; keep < p->n_examples; keep++) {
        size_t t = count_example(p, keep, count, ctx);
        if (t == (size_t)-1)
            return (size_t)-1;
        if (used + t > budget)
            break;
        used += t;
    }
    p->n_examples = keep;
    return keep;
}
