/*
 * cmd_tokenize.c - `inferno tokenize` and `inferno detokenize`.
 *
 *   inferno tokenize -m MODEL [--text T | --file F | stdin] [--ids] [--pieces] [--no-bos]
 *       [--parse-special]
 *   inferno detokenize -m MODEL [--no-special] [--no-cleanup] [IDS...]
 *
 * tokenize prints one "ID<TAB>PIECE" line per token (the piece escaped: \n, \t, \\, \xNN for
 * other control bytes and bytes that are not UTF-8), or with --ids the ids on one line
 * separated by spaces, or with --pieces the pieces only. The text is taken byte for byte
 * (a file's final newline is part of it). --no-bos adds no BOS, EOS, CLS, SEP or any other
 * automatic token, which is how llama.cpp's test vectors are tokenized. --parse-special turns
 * control-token texts such as <|im_end|> into their ids; never use it on untrusted text.
 *
 * detokenize takes ids as arguments (spaces, commas and brackets are separators, so
 * "[1, 2, 3]" works) or, without arguments, from stdin, and prints the text and a newline.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/files.h"
#include "inferno/config.h"
#include "inferno/models.h"
#include "inferno/tokenizer.h"

/* Declared in cli.h once the commands are in the table; repeated so this file stands alone. */
int inf_cmd_tokenize(struct inf_cli *cli, struct inf_cli_args *args);
int inf_cmd_detokenize(struct inf_cli *cli, struct inf_cli_args *args);
extern const struct inf_cli_opt inf_cmd_tokenize_opts[];
extern const struct inf_cli_opt inf_cmd_detokenize_opts[];

const struct inf_cli_opt inf_cmd_tokenize_opts[] = {
    {"model", 'm', INF_OPT_VALUE, "MODEL", "GGUF model (a path or a name in models_dir)", NULL},
    {"text", 0, INF_OPT_VALUE, "TEXT", "the text to tokenize", NULL},
    {"file", 'f', INF_OPT_VALUE, "FILE", "tokenize this file (default: stdin)", NULL},
    {"ids", 0, INF_OPT_FLAG, NULL, "print only the ids, space-separated on one line", NULL},
    {"pieces", 0, INF_OPT_FLAG, NULL, "print only the pieces, one per line", NULL},
    {"no-bos", 0, INF_OPT_FLAG, NULL, "add no BOS/EOS/CLS/SEP or other automatic token", NULL},
    {"parse-special", 0, INF_OPT_FLAG, NULL,
     "turn control-token texts (<|im_end|>...) into their ids (trusted text only)", NULL},
    {NULL, 0, 0, NULL, NULL, NULL},
};

const struct inf_cli_opt inf_cmd_detokenize_opts[] = {
    {"model", 'm', INF_OPT_VALUE, "MODEL", "GGUF model (a path or a name in models_dir)", NULL},
    {"no-special", 0, INF_OPT_FLAG, NULL, "leave control tokens (BOS, <|im_end|>...) out", NULL},
    {"no-cleanup", 0, INF_OPT_FLAG, NULL,
     "keep spaces before punctuation even where the vocabulary removes them", NULL},
    {NULL, 0, 0, NULL, NULL, NULL},
};

/*
 * MODEL as a path, else as models_dir/MODEL or models_dir/MODEL.gguf, else as a name
 * (inf_models_resolve: registered names such as OWNER/REPO:QUANT, names under models_dir).
 */
static bool resolve_model(struct inf_cli *cli, const char *arg, char *path, size_t size)
{
    const char *dir = inf_config_get_str(cli->config, "models_dir");
    struct stat sb;
    struct inf_error err = {0};
    if (stat(arg, &sb) == 0) {
        snprintf(path, size, "%s", arg);
        return true;
    }
    if (dir && *dir && !strchr(arg, '/')) {
        snprintf(path, size, "%s/%s", dir, arg);
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
            return true;
        snprintf(path, size, "%s/%s.gguf", dir, arg);
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
            return true;
    }
    if (inf_models_resolve(arg, dir, inf_config_get_str(cli->config, "cache.models_db"), path, size,
                           &err) == INF_OK)
        return true;
    inf_cli_errorf(cli, "%s", inf_error_message(&err));
    return false;
}

static struct inf_tokenizer *open_model(struct inf_cli *cli, struct inf_cli_args *args)
{
    const char *arg = inf_cli_value(args, "model");
    struct inf_tokenizer *tok = NULL;
    struct inf_error err = {0};
    char path[4096];

    if (!arg) {
        inf_cli_errorf(cli, "a model is required (-m MODEL)");
        return NULL;
    }
    if (!resolve_model(cli, arg, path, sizeof(path)))
        return NULL;
    if (inf_tokenizer_load_gguf(path, &tok, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        return NULL;
    }
    return tok;
}

/* Read all of f (at most INF_TOK_MAX_INPUT bytes). */
static char *read_all(struct inf_cli *cli, FILE *f, const char *name, size_t *len)
{
    char *buf = inf__read_stream(f, INF_TOK_MAX_INPUT, len);
    if (!buf && errno == EFBIG)
        inf_cli_errorf(cli, "'%s' is longer than %zu bytes", name, (size_t)INF_TOK_MAX_INPUT);
    else if (!buf && errno == ENOMEM)
        inf_cli_errorf(cli, "out of memory reading '%s'", name);
    else if (!buf)
        inf_cli_errorf(cli, "cannot read '%s': %s", name, strerror(errno));
    return buf;
}

/* Write bytes with control characters, backslashes and invalid UTF-8 escaped. */
static void put_escaped(FILE *out, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') {
            fputs("\\\\", out);
        } else if (c == '\n') {
            fputs("\\n", out);
        } else if (c == '\t') {
            fputs("\\t", out);
        } else if (c == '\r') {
            fputs("\\r", out);
        } else if (c < 0x20 || c == 0x7F) {
            fprintf(out, "\\x%02x", c);
        } else if (c >= 0x80) {
            /* a whole, valid character goes out as is; anything else byte by byte */
            size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
            bool ok = len > 0 && i + len <= n;
            for (size_t k = 1; ok && k < len; k++)
                ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
            if (ok) {
                fwrite(s + i, 1, len, out);
                i += len;
                continue;
            }
            fprintf(out, "\\x%02x", c);
        } else {
            fputc(c, out);
        }
        i++;
    }
}

int inf_cmd_tokenize(struct inf_cli *cli, struct inf_cli_args *args)
{
    const char *text_arg = inf_cli_value(args, "text"), *file = inf_cli_value(args, "file");
    struct inf_tokenizer *tok = NULL;
    struct inf_tokens ids = {0};
    struct inf_error err = {0};
    char *buf = NULL;
    const char *text;
    size_t len = 0;
    unsigned flags = 0;
    int rc = INF_EXIT_FAIL;

    if (text_arg && file) {
        inf_cli_errorf(cli, "give --text or --file, not both");
        return INF_EXIT_USAGE;
    }
    if (args->n_positional > 0) {
        inf_cli_errorf(cli, "unexpected argument '%s' (the text goes in --text)",
                       args->positional[0]);
        return INF_EXIT_USAGE;
    }
    if (!(tok = open_model(cli, args)))
        return inf_cli_value(args, "model") ? INF_EXIT_FAIL : INF_EXIT_USAGE;
    if (text_arg) {
        text = text_arg;
        len = strlen(text_arg);
    } else {
        FILE *f = file ? fopen(file, "rb") : stdin;
        if (!f) {
            inf_cli_errorf(cli, "cannot open '%s': %s", file, strerror(errno));
            goto cleanup;
        }
        buf = read_all(cli, f, file ? file : "stdin", &len);
        if (file)
            fclose(f);
        if (!buf)
            goto cleanup;
        text = buf;
    }
    if (!inf_cli_has(args, "no-bos"))
        flags |= INF_TOK_ADD_SPECIAL;
    if (inf_cli_has(args, "parse-special"))
        flags |= INF_TOK_PARSE_SPECIAL;
    if (inf_tok_encode(tok, text, len, flags, &ids, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        goto cleanup;
    }
    bool only_ids = inf_cli_has(args, "ids"), only_pieces = inf_cli_has(args, "pieces");
    for (size_t i = 0; i < ids.n; i++) {
        size_t pl;
        const char *p = inf_tok_piece(tok, ids.ids[i], true, &pl);
        if (only_ids) {
            printf(i ? " %d" : "%d", ids.ids[i]);
            continue;
        }
        if (!only_pieces)
            printf("%d\t", ids.ids[i]);
        put_escaped(stdout, p, pl);
        putchar('\n');
    }
    if (only_ids)
        putchar('\n');
    rc = fflush(stdout) == 0 ? INF_EXIT_OK : INF_EXIT_FAIL;
cleanup:
    inf_tokens_release(&ids);
    inf_tokenizer_free(tok);
    free(buf);
    return rc;
}

/* Parse ids out of s (separators: whitespace , [ ]). false on anything else. */
static bool parse_ids(struct inf_cli *cli, const char *s, struct inf_tokens *ids)
{
    while (*s) {
        if (strchr(" \t\r\n,[]", *s)) {
            s++;
            continue;
        }
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end == s || errno || v < INT32_MIN || v > INT32_MAX ||
            (*end && !strchr(" \t\r\n,[]", *end))) {
            inf_cli_errorf(cli, "'%.*s' is not a token id", (int)strcspn(s, " \t\r\n,[]"), s);
            return false;
        }
        if (inf_tokens_push(ids, (inf_token)v) != INF_OK) {
            inf_cli_errorf(cli, "out of memory");
            return false;
        }
        s = end;
    }
    return true;
}

int inf_cmd_detokenize(struct inf_cli *cli, struct inf_cli_args *args)
{
    struct inf_tokenizer *tok = NULL;
    struct inf_tokens ids = {0};
    struct inf_error err = {0};
    char *in = NULL, *text = NULL;
    size_t len;
    unsigned flags = 0;
    int rc = INF_EXIT_USAGE;

    for (int i = 0; i < args->n_positional; i++)
        if (!parse_ids(cli, args->positional[i], &ids))
            goto cleanup;
    if (args->n_positional == 0) {
        if (!(in = read_all(cli, stdin, "stdin", &len))) {
            rc = INF_EXIT_FAIL;
            goto cleanup;
        }
        char *z = realloc(in, len + 1);
        if (!z) {
            inf_cli_errorf(cli, "out of memory");
            rc = INF_EXIT_FAIL;
            goto cleanup;
        }
        in = z;
        in[len] = '\0';
        if (strlen(in) != len) {
            inf_cli_errorf(cli, "stdin holds a NUL byte; expected token ids");
            goto cleanup;
        }
        if (!parse_ids(cli, in, &ids))
            goto cleanup;
    }
    rc = INF_EXIT_FAIL;
    if (!(tok = open_model(cli, args))) {
        rc = inf_cli_value(args, "model") ? INF_EXIT_FAIL : INF_EXIT_USAGE;
        goto cleanup;
    }
    if (!inf_cli_has(args, "no-special"))
        flags |= INF_TOK_DECODE_SPECIAL;
    if (inf_cli_has(args, "no-cleanup"))
        flags |= INF_TOK_DECODE_NO_CLEANUP;
    if (inf_tok_decode(tok, ids.ids, ids.n, flags, &text, &len, &err) != INF_OK) {
        inf_cli_errorf(cli, "%s", inf_error_message(&err));
        goto cleanup;
    }
    fwrite(text, 1, len, stdout);
    putchar('\n');
    rc = fflush(stdout) == 0 ? INF_EXIT_OK : INF_EXIT_FAIL;
cleanup:
    inf_tokens_release(&ids);
    inf_tokenizer_free(tok);
    free(in);
    free(text);
    return rc;
}
