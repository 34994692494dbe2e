/*
 * tui.h - `inferno tui`: a full-screen terminal interface (ncurses) for models, chat, a running
 * server and its jobs. Built on the public API (include/inferno/) only; the CLI fills the
 * options from its configuration and flags.
 */
#ifndef INFERNO_TUI_H
#define INFERNO_TUI_H

#include <stdbool.h>

#include "inferno/engine.h"
#include "inferno/sampling.h"

struct inf_tui_options {
    const char *models_dir; /* models listed on the Models screen */
    const char *cache_db;   /* their SQLite metadata cache ("" or NULL: none) */
    const char *model;      /* a model file to open in Chat at start, or NULL */
    const char *screen;     /* models | chat | server | jobs (NULL: models, or chat with model) */
    const char *url;        /* the server the dashboard attaches to (NULL: none) */
    const char *api_key;    /* its bearer token, or NULL; never shown */
    const char *queue_url;  /* the jobs store the Jobs screen shows ("sqlite:PATH", ...) */
    const char *files_dir;  /* its files directory */
    const char *stats_path; /* write frame/generation statistics as JSON here at exit, or NULL */
    struct inf_model_params model_params;
    struct inf_context_params context_params;
    struct inf_sampler_params sampler;
    int max_tokens; /* per reply; <= 0: until the end of the context */
};

/* Run the interface until the user quits; returns a process exit code. */
int inf_tui_run(const struct inf_tui_options *opt);

/*
 * The chat engine without the interface: one reply to prompt (a user message) streamed to
 * stdout, then "tokens N, tok/s X" on stderr. For measuring what the interface costs.
 */
int inf_tui_chat_headless(const struct inf_tui_options *opt, const char *prompt);

#endif
