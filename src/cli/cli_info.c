/*
 * cli_info.c - `bgeicl info`: what a model folder holds, as one JSON object.
 */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const usage = "bgeicl info --model DIR [--dtype fp32|bf16|int8]\n"
                                 "  Prints the model's id, architecture, dimensions, limits,\n"
                                 "  pooling, dtype and the kernel ISA in use, as JSON.";

static char *info_json(const bgeicl_model_info *mi)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "id", mi->id);
    cJSON_AddStringToObject(o, "hf_id", mi->hf_id);
    cJSON_AddStringToObject(o, "architecture", mi->architecture);
    cJSON_AddNumberToObject(o, "dimensions", (double)mi->dim);
    cJSON_AddNumberToObject(o, "max_input_tokens", (double)mi->max_tokens);
    cJSON_AddNumberToObject(o, "layers", (double)mi->layers);
    cJSON_AddNumberToObject(o, "heads", (double)mi->heads);
    cJSON_AddNumberToObject(o, "intermediate_size", (double)mi->intermediate);
    cJSON_AddNumberToObject(o, "vocab_size", (double)mi->vocab_size);
    cJSON_AddStringToObject(o, "pooling", mi->pooling == BGEICL_POOL_CLS ? "cls" : "mean");
    cJSON_AddStringToObject(o, "query_instruction", mi->query_instruction);
    cJSON_AddStringToObject(o, "dtype", mi->dtype);
    cJSON_AddStringToObject(o, "isa", mi->isa);
    cJSON_AddStringToObject(o, "gemm", mi->gemm);
    cJSON_AddNumberToObject(o, "threads", mi->threads);
    cJSON_AddStringToObject(o, "version", bgeicl_version());
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int cli_info(int argc, char **argv)
{
    const char *model = NULL;
    bgeicl_dtype dtype = BGEICL_DTYPE_FP32;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s\n", usage);
            return CLI_OK;
        } else if ((r = cli_opt_value(argc, argv, &i, "--model", &v)) != 0) {
            if (r < 0)
                return CLI_USAGE;
            model = v;
        } else if ((r = cli_opt_value(argc, argv, &i, "--dtype", &v)) != 0) {
            if (r < 0)
                return CLI_USAGE;
            if (bgeicl_dtype_parse(v, &dtype) < 0)
                return cli_usage_error("info", usage, "--dtype must be fp32, bf16 or int8");
        } else {
            return cli_usage_error("info", usage, "unexpected argument %s", argv[i]);
        }
    }
    if (!model)
        return cli_usage_error("info", usage, "--model DIR is required");
    bgeicl_model *m = cli_open_model("info", model, 0, dtype);
    if (!m)
        return CLI_FAIL;
    bgeicl_model_info mi;
    bgeicl_model_info_get(m, &mi);
    char *s = info_json(&mi);
    bgeicl_model_close(m);
    if (!s) {
        fprintf(stderr, "bgeicl info: out of memory\n");
        return CLI_FAIL;
    }
    puts(s);
    cJSON_free(s);
    return CLI_OK;
}
