/*
 * main.c - the bgeicl command: one binary, one subcommand per job.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"serve", cli_serve, "run the HTTP embedding service"},
    {"embed", cli_embed, "embed texts with a local model"},
    {"tokenize", cli_tokenize, "token ids and byte offsets of texts"},
    {"info", cli_info, "describe a model folder"},
    {"bench", cli_bench, "benchmark client configurations against servers"},
    {"monitor", cli_monitor, "watch a server's latency, throughput and resources"},
    {"diagnose", cli_diagnose, "troubleshoot a server's performance"},
    {"health", cli_health, "check the health of servers"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: bgeicl COMMAND [OPTIONS]   (bgeicl COMMAND --help for details)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n  --version  print the version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("bgeicl %s\n", bgeicl_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "bgeicl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
