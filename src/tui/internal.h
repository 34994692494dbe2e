/* internal.h - state shared by the terminal UI's screens (src/tui/ only). */
#ifndef INFERNO_TUI_INTERNAL_H
#define INFERNO_TUI_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tui/text.h"
#include "tui/tui.h"

enum tui_screen { SCR_MODELS, SCR_CHAT, SCR_SERVER, SCR_JOBS, SCR_COUNT };

/* Colour pairs (attributes only when NO_COLOR is set or the terminal has no colours). */
enum tui_style { ST_NORMAL, ST_TITLE, ST_SELECTED, ST_DIM, ST_OK, ST_WARN, ST_ERR, ST_ACCENT };

struct tui_app;

/* ---- app.c: drawing helpers and shared services ---- */
int tui_attr(const struct tui_app *a, enum tui_style s);
/* Draw s[0..n) at (y, x), at most maxcols columns (cut with an ellipsis); returns columns. */
int tui_put(int y, int x, const char *s, size_t n, int maxcols);
/* tui_put of a NUL-terminated string. */
int tui_puts(int y, int x, const char *s, int maxcols);
int tui_putf(int y, int x, int maxcols, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Fill a row with spaces from x to the right edge. */
void tui_clear_row(int y, int x, int cols);
/* A box title line "── title ──" over [x, x + w). */
void tui_rule(const struct tui_app *a, int y, int x, int w, const char *title);
/* Show a message in the bottom line for a few seconds. */
void tui_flash(struct tui_app *a, bool error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ask a yes/no question in the bottom line; the answer comes to the screen's key handler as
 * the key 'y' after confirm_tag is set. */
void tui_confirm(struct tui_app *a, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ask for a line of text in the bottom line; on Enter the screen gets on_prompt(tag, text). */
void tui_prompt(struct tui_app *a, const char *tag, const char *label, const char *initial);
void tui_switch(struct tui_app *a, enum tui_screen s);
/* Open a model in the chat and show it. */
void tui_chat_open_from_models(struct tui_app *a, const char *path);
bool tui_utf8_ok(const struct tui_app *a);
const struct inf_tui_options *tui_options(const struct tui_app *a);
double tui_now(void);

/* ---- each screen: state, draw, keys ---- */
struct tui_models;
struct tui_chat;
struct tui_dash;

struct tui_models *tui_models_new(struct tui_app *a);
void tui_models_free(struct tui_models *m);
void tui_models_draw(struct tui_models *m, int y0, int rows, int cols);
bool tui_models_key(struct tui_models *m, int key, bool is_char);
void tui_models_answer(struct tui_models *m, const char *tag, const char *text);
void tui_models_status(struct tui_models *m, char *buf, size_t cap);

struct tui_chat *tui_chat_new(struct tui_app *a);
void tui_chat_free(struct tui_chat *c);
/* Load a model into the chat (in the engine thread; the screen shows progress). */
void tui_chat_open(struct tui_chat *c, const char *path);
void tui_chat_draw(struct tui_chat *c, int y0, int rows, int cols);
bool tui_chat_key(struct tui_chat *c, int key, bool is_char);
void tui_chat_answer(struct tui_chat *c, const char *tag, const char *text);
void tui_chat_status(struct tui_chat *c, char *buf, size_t cap);
/* Whether keys go to a text field (then 1-4, q and ? are text). */
bool tui_chat_typing(const struct tui_chat *c);
/* Fold events from the engine thread into the screen; true when something changed. */
bool tui_chat_poll(struct tui_chat *c);
bool tui_chat_generating(const struct tui_chat *c);
void tui_chat_stats(const struct tui_chat *c, int64_t *tokens, double *gen_seconds);

struct tui_dash *tui_dash_new(struct tui_app *a, const char *url, const char *api_key);
void tui_dash_free(struct tui_dash *d);
void tui_dash_draw(struct tui_dash *d, int y0, int rows, int cols);
void tui_jobs_draw(struct tui_dash *d, int y0, int rows, int cols);
bool tui_dash_key(struct tui_dash *d, int key, bool is_char);
bool tui_jobs_key(struct tui_dash *d, int key, bool is_char);
void tui_dash_answer(struct tui_dash *d, const char *tag, const char *text);
void tui_dash_status(struct tui_dash *d, char *buf, size_t cap);
bool tui_dash_poll(struct tui_dash *d);

/* ---- keys ---- */
#define TUI_KEY_ESC     27
#define TUI_KEY_CTRL(c) ((c)&0x1f)
/* Alt-x arrives as ESC followed by x; the loop folds it into this. */
#define TUI_KEY_ALT(c) (0x10000 | (c))

#endif
