/*
 * tok.h - the WordPiece tokenizer of BERT-family models, bit-exact with the
 * Hugging Face `tokenizers` library (BertNormalizer + BertPreTokenizer +
 * WordPiece + TemplateProcessing "[CLS] $A [SEP]"), and the SentencePiece-
 * style BPE tokenizer of Llama/Mistral decoders (tok_bpe.h: byte fallback,
 * "▁" normalizer or Metaspace, "<s> $A </s>"), chosen by tokenizer.json's
 * model.type. tok_load takes a model folder or a tokenizer-only folder.
 *
 * It reads tokenizer.json, or vocab.txt + tokenizer_config.json when there
 * is no tokenizer.json. Offsets are byte offsets into the caller's input.
 * A tok_tokenizer is immutable after tok_load and safe to share between
 * threads; tok_encode writes only to the caller's tok_encoding.
 */
#ifndef TOK_H
#define TOK_H

#include <stddef.h>
#include <stdint.h>

#include "../util/util.h"

typedef struct tok_tokenizer tok_tokenizer;

/* Same layout as the public bgeicl_tokens. */
typedef bgeicl_tokens tok_encoding;

/* Loads the tokenizer of the model (or tokenizer) folder `dir`. */
bgeicl_code tok_load(const char *dir, tok_tokenizer **out, bg_err *err);
void tok_free(tok_tokenizer *tok);

/* Encodes len bytes of UTF-8 text. Invalid UTF-8 gives BGEICL_ERR_ARG.
 * add_special: wrap in [CLS] ... [SEP], or <s> ... </s> for BPE, as the
 * post_processor says (special tokens get offsets 0,0).
 * max_len: total length cap including special tokens (0 = none); tokens past
 * it are dropped from the end, as the tokenizers library's truncation does.
 * If `truncated` is not NULL it is set to 1 when tokens were dropped. */
bgeicl_code tok_encode(const tok_tokenizer *tok, const char *text, size_t len,
                       int add_special, size_t max_len, tok_encoding *enc,
                       int *truncated, bg_err *err);

void tok_encoding_free(tok_encoding *enc);

/* Decodes ids back to text with the tokenizer.json decoder, as the
 * tokenizers library's decode(ids, skip_special_tokens=False): for
 * Llama/Mistral files "▁" becomes " ", runs of <0xNN> byte tokens become
 * their bytes (U+FFFD per byte when they are not valid UTF-8) and the
 * leading space of the "▁" prefix is stripped. Ids without a token are
 * skipped. *out is bg_malloc'd and NUL-terminated, *out_len (if not NULL)
 * its length. BGEICL_ERR_UNSUPPORTED for tokenizers without such a decoder
 * (the WordPiece ones). */
bgeicl_code tok_decode(const tok_tokenizer *tok, const int32_t *ids, size_t n, char **out,
                       size_t *out_len, bg_err *err);

size_t tok_vocab_size(const tok_tokenizer *tok);
/* Token string for id, NULL if out of range. */
const char *tok_id_to_token(const tok_tokenizer *tok, int32_t id);
/* Id for an exact token string, -1 if absent. */
int32_t tok_token_to_id(const tok_tokenizer *tok, const char *token);
int32_t tok_cls_id(const tok_tokenizer *tok);
int32_t tok_sep_id(const tok_tokenizer *tok);
int32_t tok_pad_id(const tok_tokenizer *tok);
int32_t tok_unk_id(const tok_tokenizer *tok);

#endif
