/*
 * options.h - client options: defaults, the BGE_ICL_* environment and
 * validation (cl_options_). Pure functions over a bgeicl_client_options.
 */
#ifndef CL_OPTIONS_H
#define CL_OPTIONS_H

#include "bgeicl.h"

#define CL_DEFAULT_SERVERS "http://127.0.0.1:8080"
#define CL_DEFAULT_MODEL "bge-in-icl"
#define CL_MAX_BATCH 100000
#define CL_MAX_CONCURRENCY 256

/* Checks every field but `servers` (servers.c parses that); errors name
 * the field. *lang is -1 for "auto", else the icl_lang; *log the level. */
bgeicl_code cl_options_check(const bgeicl_client_options *o, int *lang, int *log,
                             bgeicl_error *err);

#endif
