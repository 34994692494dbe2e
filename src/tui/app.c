/*
 * app.c - the terminal UI's main loop: screens as tabs, keys, the bottom line (messages,
 * confirmations, prompts), help, terminal set-up and its restoration on every way out.
 *
 * One thread draws and reads keys; the chat engine and the dashboard's poller run in their own
 * threads and hand results over under a mutex, so nothing here waits for a model or the
 * network. get_wch() waits at most one frame (FRAME_MS): while a reply is generated the screen is
 * redrawn every frame (30 fps or more).
 */
#define NCURSES_WIDECHAR 1

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "inferno/log.h"
#include "tui/internal.h"

enum mode { MODE_NONE, MODE_CONFIRM, MODE_PROMPT };

/* The longest a frame waits for a key: 40 frames a second, so that drawing (a few ms) and a
 * loaded machine still leave 30 or more. */
#define FRAME_MS 25

struct tui_app {
    const struct inf_tui_options *opt;
    enum tui_screen screen;
    bool color, utf8, help;
    struct tui_models *models;
    struct tui_chat *chat;
    struct tui_dash *dash;
    char flash[512];
    bool flash_err;
    double flash_until;
    enum mode mode;
    enum tui_screen mode_screen;
    char tag[32], label[160];
    char input[1024];
    size_t input_len;
    /* frame statistics while a reply is generated */
    uint64_t frames, gen_frames;
    double gen_time, worst_gap, last_frame;
};

static const char *screen_names[SCR_COUNT] = {"Models", "Chat", "Server", "Jobs"};

/* ---- terminal restoration on every exit path ---------------------------------------------- */

static struct termios saved_tio;
static bool have_tio;
static volatile sig_atomic_t curses_on;
static volatile sig_atomic_t quit_signal;

static void restore_raw(void)
{
    /* async-signal-safe: the saved terminal modes, then leave the alternate screen, show the
     * cursor and reset attributes */
    static const char seq[] = "\033[0m\033[?1049l\033[?25h\r\n";
    if (have_tio)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
    ssize_t w = write(STDOUT_FILENO, seq, sizeof(seq) - 1);
    (void)w;
}

static void on_crash(int sig)
{
    if (curses_on)
        restore_raw();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_quit(int sig)
{
    quit_signal = sig;
}

static void at_exit_restore(void)
{
    if (curses_on) {
        endwin();
        curses_on = 0;
    }
}

/* ---- the library's log, shown in the bottom line instead of written over the screen ------- */

static int log_rd = -1;
static FILE *log_wr;

static void log_capture_start(void)
{
    int p[2];
    if (pipe(p) != 0)
        return;
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    log_wr = fdopen(p[1], "w");
    if (!log_wr) {
        close(p[0]);
        close(p[1]);
        return;
    }
    setvbuf(log_wr, NULL, _IOLBF, 0);
    log_rd = p[0];
    inf_log_set_format(INF_LOG_COMPACT);
    inf_log_set_color(false);
    inf_log_set_stream(log_wr);
}

static void log_capture_stop(void)
{
    if (!log_wr)
        return;
    inf_log_set_stream(NULL);
    fclose(log_wr);
    close(log_rd);
    log_wr = NULL;
    log_rd = -1;
}

/* Show the error lines the library logged since the last frame. */
static void log_capture_poll(struct tui_app *a)
{
    static char acc[4096];
    static size_t n;
    if (log_rd < 0)
        return;
    for (;;) {
        ssize_t k = read(log_rd, acc + n, sizeof(acc) - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        acc[n] = '\0';
        char *nl;
        while ((nl = memchr(acc, '\n', n)) != NULL) {
            *nl = '\0';
            /* errors only: warnings (a context beyond the trained one, a tokenizer default)
             * would hide the status line while the user reads it */
            if (strstr(acc, " error ") != NULL) {
                /* drop the timestamp: "ts level module: msg" */
                const char *msg = strchr(acc, ' ');
                tui_flash(a, true, "%s", msg ? msg + 1 : acc);
            }
            size_t used = (size_t)(nl - acc) + 1;
            memmove(acc, nl + 1, n - used);
            n -= used;
        }
        if (n == sizeof(acc) - 1)
            n = 0; /* a line longer than the buffer: dropped */
    }
}

/* ---- drawing helpers ---------------------------------------------------------------------- */

double tui_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int tui_attr(const struct tui_app *a, enum tui_style s)
{
    if (a->color) {
        switch (s) {
        case ST_NORMAL:
            return A_NORMAL;
        case ST_TITLE:
            return COLOR_PAIR(1) | A_BOLD;
        case ST_SELECTED:
            return COLOR_PAIR(2);
        case ST_DIM:
            return COLOR_PAIR(3);
        case ST_OK:
            return COLOR_PAIR(4);
        case ST_WARN:
            return COLOR_PAIR(5);
        case ST_ERR:
            return COLOR_PAIR(6) | A_BOLD;
        case ST_ACCENT:
            return COLOR_PAIR(7) | A_BOLD;
        }
    }
    switch (s) {
    case ST_TITLE:
        return A_REVERSE | A_BOLD;
    case ST_SELECTED:
        return A_REVERSE;
    case ST_DIM:
        return A_DIM;
    case ST_ERR:
        return A_BOLD;
    case ST_ACCENT:
        return A_BOLD;
    default:
        return A_NORMAL;
    }
}

int tui_put(int y, int x, const char *s, size_t n, int maxcols)
{
    if (maxcols <= 0 || y < 0 || y >= LINES || x >= COLS)
        return 0;
    if (x + maxcols > COLS)
        maxcols = COLS - x;
    char buf[2048];
    int cols = 0;
    size_t len = tui_fit(s, n, maxcols, buf, sizeof(buf), &cols);
    move(y, x);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = tui_utf8_next(buf + i, len - i, &cp);
        if (tui_cp_replaced(cp))
            addch('?');
        else
            addnstr(buf + i, (int)k);
        i += k;
    }
    return cols;
}

int tui_puts(int y, int x, const char *s, int maxcols)
{
    return tui_put(y, x, s, strlen(s), maxcols);
}

int tui_putf(int y, int x, int maxcols, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return 0;
    return tui_put(y, x, buf, strlen(buf), maxcols);
}

void tui_clear_row(int y, int x, int cols)
{
    for (int i = 0; i < cols && x + i < COLS; i++)
        mvaddch(y, x + i, ' ');
}

void tui_rule(const struct tui_app *a, int y, int x, int w, const char *title)
{
    attron(tui_attr(a, ST_DIM));
    for (int i = 0; i < w && x + i < COLS; i++) {
        if (a->utf8)
            mvaddstr(y, x + i, "\xE2\x94\x80");
        else
            mvaddch(y, x + i, '-');
    }
    attroff(tui_attr(a, ST_DIM));
    if (title && *title) {
        attron(tui_attr(a, ST_ACCENT));
        int c = tui_putf(y, x + 2, w - 4, " %s ", title);
        (void)c;
        attroff(tui_attr(a, ST_ACCENT));
    }
}

void tui_flash(struct tui_app *a, bool error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!a) { /* the chat engine driven without the interface */
        fputs("inferno tui: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        return;
    }
    vsnprintf(a->flash, sizeof(a->flash), fmt, ap);
    va_end(ap);
    a->flash_err = error;
    a->flash_until = tui_now() + (error ? 8.0 : 4.0);
}

void tui_confirm(struct tui_app *a, const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->label, sizeof(a->label), fmt, ap);
    va_end(ap);
    snprintf(a->tag, sizeof(a->tag), "%s", tag);
    a->mode = MODE_CONFIRM;
    a->mode_screen = a->screen;
}

void tui_prompt(struct tui_app *a, const char *tag, const char *label, const char *initial)
{
    snprintf(a->tag, sizeof(a->tag), "%s", tag);
    snprintf(a->label, sizeof(a->label), "%s", label);
    snprintf(a->input, sizeof(a->input), "%s", initial ? initial : "");
    a->input_len = strlen(a->input);
    a->mode = MODE_PROMPT;
    a->mode_screen = a->screen;
}

void tui_switch(struct tui_app *a, enum tui_screen s)
{
    a->screen = s;
    a->help = false;
}

void tui_chat_open_from_models(struct tui_app *a, const char *path)
{
    tui_chat_open(a->chat, path);
    tui_switch(a, SCR_CHAT);
}

bool tui_utf8_ok(const struct tui_app *a)
{
    return a->utf8;
}

const struct inf_tui_options *tui_options(const struct tui_app *a)
{
    return a->opt;
}

/* ---- the frame ---------------------------------------------------------------------------- */

static void draw_tabs(struct tui_app *a)
{
    attron(tui_attr(a, ST_TITLE));
    tui_clear_row(0, 0, COLS);
    int x = tui_puts(0, 0, " inferno ", COLS);
    attroff(tui_attr(a, ST_TITLE));
    for (int s = 0; s < SCR_COUNT; s++) {
        char t[32];
        snprintf(t, sizeof(t), " %d %s ", s + 1, screen_names[s]);
        int st = s == (int)a->screen ? ST_SELECTED : ST_NORMAL;
        attron(tui_attr(a, st));
        x += tui_put(0, x + 1, t, strlen(t), COLS - x - 1) + 1;
        attroff(tui_attr(a, st));
    }
    static const char keys[] = "?:keys q:quit";
    int w = (int)sizeof(keys) - 1;
    if (COLS - x > w + 2) {
        attron(tui_attr(a, ST_DIM));
        tui_put(0, COLS - w - 1, keys, (size_t)w, w);
        attroff(tui_attr(a, ST_DIM));
    }
}

static const char *help_lines[] = {
    "Anywhere",
    "  1-4, F1-F4, Alt-1..4   switch screen (Tab: next)",
    "  ?                      this help          q, Ctrl-C   quit",
    "Models",
    "  Up/Down, PgUp/PgDn     select             Enter, c    open in Chat",
    "  v  validate            b  quick benchmark d  delete   r  rescan",
    "Chat",
    "  Enter  send            Alt-Enter, Ctrl-J  new line",
    "  Esc    stop generating (when idle: leave the input; i or Enter returns)",
    "  PgUp/PgDn  scroll      Ctrl-P  settings   Ctrl-S save  Ctrl-O load",
    "  Ctrl-L  new chat       settings: Up/Down choose, Enter edit",
    "Server / Jobs",
    "  u  attach to a URL     r  refresh now     Up/Down select a batch or job",
    "  c  cancel it           t  retry a queue job (dead, failed or cancelled)",
};

static void draw_help(struct tui_app *a, int y0, int rows)
{
    size_t n = sizeof(help_lines) / sizeof(help_lines[0]);
    int w = COLS > 76 ? 74 : COLS - 2;
    int x = (COLS - w) / 2;
    int h = (int)n + 2 < rows ? (int)n + 2 : rows;
    int y = y0 + (rows - h) / 2;
    for (int i = 0; i < h; i++)
        tui_clear_row(y + i, x, w);
    tui_rule(a, y, x, w, "Keys (any key closes)");
    for (int i = 0; i + 1 < h && i < (int)n; i++) {
        bool head = help_lines[i][0] != ' ';
        if (head)
            attron(tui_attr(a, ST_ACCENT));
        tui_put(y + 1 + i, x + 1, help_lines[i], strlen(help_lines[i]), w - 2);
        if (head)
            attroff(tui_attr(a, ST_ACCENT));
    }
}

static void draw_bottom(struct tui_app *a)
{
    int y = LINES - 1;
    tui_clear_row(y, 0, COLS);
    if (a->mode == MODE_CONFIRM) {
        attron(tui_attr(a, ST_WARN) | A_BOLD);
        tui_putf(y, 0, COLS, "%s (y/N)", a->label);
        attroff(tui_attr(a, ST_WARN) | A_BOLD);
        return;
    }
    if (a->mode == MODE_PROMPT) {
        int x = tui_putf(y, 0, COLS / 2, "%s: ", a->label);
        /* the end of the input when it is longer than the room */
        int room = COLS - x - 1;
        size_t off = 0;
        while (tui_text_width(a->input + off, a->input_len - off) > room) {
            uint32_t cp;
            off += tui_utf8_next(a->input + off, a->input_len - off, &cp);
        }
        int c = tui_put(y, x, a->input + off, a->input_len - off, room);
        move(y, x + c);
        return;
    }
    if (a->flash[0] && tui_now() < a->flash_until) {
        int st = a->flash_err ? ST_ERR : ST_OK;
        attron(tui_attr(a, st));
        tui_put(y, 0, a->flash, strlen(a->flash), COLS);
        attroff(tui_attr(a, st));
        return;
    }
    char buf[512] = "";
    switch (a->screen) {
    case SCR_MODELS:
        tui_models_status(a->models, buf, sizeof(buf));
        break;
    case SCR_CHAT:
        tui_chat_status(a->chat, buf, sizeof(buf));
        break;
    case SCR_SERVER:
    case SCR_JOBS:
        tui_dash_status(a->dash, buf, sizeof(buf));
        break;
    default:
        break;
    }
    attron(tui_attr(a, ST_DIM));
    tui_put(y, 0, buf, strlen(buf), COLS);
    attroff(tui_attr(a, ST_DIM));
}

static void draw(struct tui_app *a)
{
    erase();
    curs_set(0);
    if (COLS < 40 || LINES < 10) {
        tui_putf(0, 0, COLS, "terminal too small (%dx%d; need 40x10)", COLS, LINES);
        refresh();
        return;
    }
    draw_tabs(a);
    int y0 = 1, rows = LINES - 2;
    switch (a->screen) {
    case SCR_MODELS:
        tui_models_draw(a->models, y0, rows, COLS);
        break;
    case SCR_CHAT:
        tui_chat_draw(a->chat, y0, rows, COLS);
        break;
    case SCR_SERVER:
        tui_dash_draw(a->dash, y0, rows, COLS);
        break;
    case SCR_JOBS:
        tui_jobs_draw(a->dash, y0, rows, COLS);
        break;
    default:
        break;
    }
    if (a->help)
        draw_help(a, y0, rows);
    int cy, cx;
    getyx(stdscr, cy, cx);
    draw_bottom(a);
    if (a->mode == MODE_PROMPT) {
        curs_set(1);
    } else if (a->screen == SCR_CHAT && tui_chat_typing(a->chat) && !a->help) {
        move(cy, cx); /* the chat left the cursor in its input */
        curs_set(1);
    }
    refresh();
}

/* ---- keys ----------------------------------------------------------------------------------- */

static void answer(struct tui_app *a, const char *text)
{
    char tag[32];
    snprintf(tag, sizeof(tag), "%s", a->tag);
    enum tui_screen s = a->mode_screen;
    a->mode = MODE_NONE;
    switch (s) {
    case SCR_MODELS:
        tui_models_answer(a->models, tag, text);
        break;
    case SCR_CHAT:
        tui_chat_answer(a->chat, tag, text);
        break;
    default:
        tui_dash_answer(a->dash, tag, text);
        break;
    }
}

static void prompt_key(struct tui_app *a, int key, bool is_char)
{
    if (a->mode == MODE_CONFIRM) {
        if (is_char && (key == 'y' || key == 'Y'))
            answer(a, "y");
        else
            a->mode = MODE_NONE;
        return;
    }
    if (!is_char && key == KEY_BACKSPACE)
        key = 127, is_char = true;
    if (is_char && (key == '\r' || key == '\n')) {
        char text[sizeof(a->input)];
        memcpy(text, a->input, a->input_len + 1);
        answer(a, text);
    } else if (is_char && key == TUI_KEY_ESC) {
        a->mode = MODE_NONE;
    } else if (is_char && (key == 127 || key == 8)) {
        while (a->input_len > 0 && (a->input[a->input_len - 1] & 0xC0) == 0x80)
            a->input_len--;
        if (a->input_len > 0)
            a->input_len--;
        a->input[a->input_len] = '\0';
    } else if (is_char && key >= 0x20 && key < 0x110000 && key != 127) {
        char u[4];
        size_t k = tui_utf8_encode((uint32_t)key, u);
        if (a->input_len + k < sizeof(a->input)) {
            memcpy(a->input + a->input_len, u, k);
            a->input_len += k;
            a->input[a->input_len] = '\0';
        }
    }
}

/* Returns false to quit. */
static bool handle_key(struct tui_app *a, int key, bool is_char)
{
    if (is_char && key == TUI_KEY_CTRL('c'))
        return false;
    if (a->mode != MODE_NONE) {
        prompt_key(a, key, is_char);
        return true;
    }
    if (a->help) {
        a->help = false;
        return true;
    }
    bool typing = a->screen == SCR_CHAT && tui_chat_typing(a->chat);
    if (!is_char && key >= KEY_F(1) && key <= KEY_F(4)) {
        tui_switch(a, (enum tui_screen)(key - KEY_F(1)));
        return true;
    }
    if (key >= TUI_KEY_ALT('1') && key <= TUI_KEY_ALT('4')) {
        tui_switch(a, (enum tui_screen)(key - TUI_KEY_ALT('1')));
        return true;
    }
    if (!typing && is_char) {
        if (key >= '1' && key <= '4') {
            tui_switch(a, (enum tui_screen)(key - '1'));
            return true;
        }
        if (key == '\t') {
            tui_switch(a, (enum tui_screen)((a->screen + 1) % SCR_COUNT));
            return true;
        }
        if (key == '?') {
            a->help = true;
            return true;
        }
        if (key == 'q' || key == 'Q')
            return false;
    }
    switch (a->screen) {
    case SCR_MODELS:
        tui_models_key(a->models, key, is_char);
        break;
    case SCR_CHAT:
        tui_chat_key(a->chat, key, is_char);
        break;
    case SCR_SERVER:
        tui_dash_key(a->dash, key, is_char);
        break;
    case SCR_JOBS:
        tui_jobs_key(a->dash, key, is_char);
        break;
    default:
        break;
    }
    return true;
}

/* Read one key (folding ESC + key into Alt-key); false when none came within a frame. */
static bool read_key(int *key, bool *is_char)
{
    wint_t ch;
    int r = get_wch(&ch);
    if (r == ERR)
        return false;
    *is_char = r == OK;
    *key = (int)ch;
    if (*is_char && ch == TUI_KEY_ESC) {
        timeout(0);
        wint_t c2;
        int r2 = get_wch(&c2);
        timeout(FRAME_MS);
        if (r2 == OK) {
            *key = TUI_KEY_ALT((int)c2);
            *is_char = false;
        }
    }
    return true;
}

static void write_stats(struct tui_app *a, double t0)
{
    const char *path = a->opt->stats_path;
    if (!path)
        return;
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    int64_t toks = 0;
    double gen_s = 0;
    tui_chat_stats(a->chat, &toks, &gen_s);
    fprintf(f,
            "{\"frames\": %llu, \"seconds\": %.3f, \"gen_frames\": %llu, \"gen_seconds\": %.3f, "
            "\"gen_fps\": %.2f, \"worst_frame_gap_ms\": %.1f, \"tokens\": %lld, "
            "\"tokens_per_second\": %.3f}\n",
            (unsigned long long)a->frames, tui_now() - t0, (unsigned long long)a->gen_frames,
            a->gen_time, a->gen_time > 0 ? (double)a->gen_frames / a->gen_time : 0.0,
            a->worst_gap * 1000.0, (long long)toks, gen_s > 0 ? (double)toks / gen_s : 0.0);
    fclose(f);
}

int inf_tui_run(const struct inf_tui_options *opt)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "inferno tui: needs a terminal (stdin and stdout)\n");
        return 1;
    }
    setlocale(LC_ALL, "");
    struct tui_app *a = calloc(1, sizeof(*a));
    if (!a) {
        fprintf(stderr, "inferno tui: out of memory\n");
        return 1;
    }
    a->opt = opt;
    a->utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    have_tio = tcgetattr(STDIN_FILENO, &saved_tio) == 0;
    atexit(at_exit_restore);
    struct sigaction sa = {0};
    sa.sa_handler = on_crash;
    sigemptyset(&sa.sa_mask);
    int crash[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof(crash) / sizeof(crash[0]); i++)
        sigaction(crash[i], &sa, NULL);
    sa.sa_handler = on_quit;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    a->models = tui_models_new(a);
    a->chat = tui_chat_new(a);
    a->dash = tui_dash_new(a, opt->url, opt->api_key);
    if (!a->models || !a->chat || !a->dash) {
        fprintf(stderr, "inferno tui: out of memory\n");
        tui_models_free(a->models);
        tui_chat_free(a->chat);
        tui_dash_free(a->dash);
        free(a);
        return 1;
    }

    if (!initscr()) {
        fprintf(stderr, "inferno tui: cannot initialise the terminal (TERM=%s)\n",
                getenv("TERM") ? getenv("TERM") : "");
        return 1;
    }
    curses_on = 1;
    raw();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    timeout(FRAME_MS);
    const char *nc = getenv("NO_COLOR");
    a->color = has_colors() && !(nc && *nc);
    if (a->color) {
        start_color();
        use_default_colors();
        init_pair(1, COLOR_BLACK, COLOR_CYAN);
        init_pair(2, COLOR_BLACK, COLOR_YELLOW);
        init_pair(3, COLOR_BLUE, -1);
        init_pair(4, COLOR_GREEN, -1);
        init_pair(5, COLOR_YELLOW, -1);
        init_pair(6, COLOR_RED, -1);
        init_pair(7, COLOR_CYAN, -1);
    }

    log_capture_start();
    a->screen = SCR_MODELS;
    if (opt->model) {
        tui_chat_open(a->chat, opt->model);
        a->screen = SCR_CHAT;
    }
    if (opt->screen) {
        for (int s = 0; s < SCR_COUNT; s++)
            if (strcasecmp(opt->screen, screen_names[s]) == 0)
                a->screen = (enum tui_screen)s;
    }

    double t0 = tui_now();
    a->last_frame = t0;
    bool dirty = true;
    for (;;) {
        if (quit_signal)
            break;
        log_capture_poll(a);
        bool generating = tui_chat_generating(a->chat);
        dirty |= tui_chat_poll(a->chat);
        dirty |= tui_dash_poll(a->dash);
        double now = tui_now();
        /* every frame while a reply streams or after a key; else four times a second, which
         * shows the dashboard's snapshots, workers' results and expired messages */
        if (dirty || generating || now - a->last_frame >= 0.25) {
            draw(a);
            now = tui_now();
            a->frames++;
            if (generating) {
                double gap = now - a->last_frame;
                a->gen_frames++;
                a->gen_time += gap;
                if (gap > a->worst_gap)
                    a->worst_gap = gap;
            }
            a->last_frame = now;
            dirty = false;
        }
        int key;
        bool is_char;
        if (!read_key(&key, &is_char))
            continue;
        dirty = true;
        if (!is_char && key == KEY_RESIZE)
            continue;
        if (!handle_key(a, key, is_char))
            break;
    }
    endwin();
    curses_on = 0;
    write_stats(a, t0);
    tui_chat_free(a->chat);
    tui_dash_free(a->dash);
    tui_models_free(a->models);
    log_capture_stop();
    free(a);
    return 0;
}
