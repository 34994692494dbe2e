/*
 * test_grammar.c - the GBNF compiler and the matcher.
 *
 * References: PCRE2 (an independent regex engine, with partial matching) says for every
 * regular test grammar which byte strings are complete sentences and which are viable
 * prefixes; random strings over each grammar's alphabet are fed to both. Token masks are
 * checked against committing every token one by one, on the real Llama 3 vocabulary.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/grammar_internal.h"
#include "inferno/grammar.h"
#include "inferno/tokenizer.h"
#include "t.h"

static struct inf_grammar *compile(const char *gbnf)
{
    struct inf_grammar *g = NULL;
    struct inf_error err = {0};
    inf_status rc = inf_grammar_from_gbnf(gbnf, strlen(gbnf), NULL, &g, &err);
    if (rc != INF_OK)
        printf("  compile failed: %s\n", err.msg);
    T_EQ_INT(rc, INF_OK);
    return g;
}

/* 1 complete, 0 viable prefix, -1 rejected */
static int feed(struct inf_grammar *g, const char *s, size_t n)
{
    struct inf_matcher *m = NULL;
    struct inf_error err = {0};
    T_EQ_INT(inf_matcher_new(g, NULL, &m, &err), INF_OK);
    int r = !inf_matcher_accept_bytes(m, s, n) ? -1 : inf_matcher_can_end(m) ? 1 : 0;
    inf_matcher_free(m);
    return r;
}

static void expect(struct inf_grammar *g, const char *s, int want)
{
    int got = feed(g, s, strlen(s));
    if (got != want)
        printf("  '%s': got %d, want %d\n", s, got, want);
    T_EQ_INT(got, want);
}

static void test_basics(void)
{
    struct inf_grammar *g = compile("root ::= \"a\" [b-d]+ \"e\"?\n");
    expect(g, "abcd", 1);
    expect(g, "abcde", 1);
    expect(g, "a", 0);
    expect(g, "ae", -1);
    expect(g, "abcdee", -1);
    expect(g, "", 0);
    inf_grammar_free(g);

    g = compile("root ::= \"x\"{2,4}");
    expect(g, "x", 0);
    expect(g, "xx", 1);
    expect(g, "xxxx", 1);
    expect(g, "xxxxx", -1);
    inf_grammar_free(g);

    g = compile("root ::= \"x\"{3,} # at least three\n");
    expect(g, "xx", 0);
    expect(g, "xxxxxxxxxx", 1);
    inf_grammar_free(g);

    /* newlines inside groups; a line starting with | continues the rule; comments */
    g = compile("# header\nroot ::= (\n  \"ab\"\n  | \"cd\" ) tail\n  | \"z\"\ntail ::= [0-9]?\n");
    expect(g, "ab", 1);
    expect(g, "cd7", 1);
    expect(g, "z", 1);
    expect(g, "z1", -1);
    inf_grammar_free(g);

    /* tail recursion is not left recursion, and nested stars terminate */
    /* an alternative through a rule that can never complete is dropped: nothing enters it */
    g = compile("root ::= \"a\" | dead \"b\"\ndead ::= \"\\x00\" dead\n");
    expect(g, "a", 1);
    T_EQ_INT(feed(g, "\0", 1), -1);
    inf_grammar_free(g);

    g = compile("root ::= \"a\" root | \"\"\n");
    expect(g, "aaaa", 1);
    inf_grammar_free(g);
    g = compile("root ::= (\"a\"*)* \"b\"\n");
    expect(g, "aaab", 1);
    expect(g, "b", 1);
    inf_grammar_free(g);

    /* balanced brackets: not regular */
    g = compile("root ::= item*\nitem ::= \"(\" root \")\" | \"[\" root \"]\"\n");
    expect(g, "([])[()]", 1);
    expect(g, "([)]", -1);
    expect(g, "((", 0);
    inf_grammar_free(g);
}

static void test_unicode(void)
{
    struct inf_grammar *g = compile("root ::= [α-ω]+ \"!\"");
    expect(g, "αβγ!", 1);
    expect(g, "\xCE", 0); /* half of a character is a viable prefix */
    expect(g, "a!", -1);
    inf_grammar_free(g);

    g = compile("root ::= \"\\\"\" [^\"\\\\]* \"\\\"\"");
    expect(g, "\"h\xC3\xA9llo \xF0\x9F\x98\x80\"", 1);
    expect(g, "\"a\"b", -1);
    expect(g, "\"\xED\xA0\x80\"", -1); /* a UTF-8 encoded surrogate is not a character */
    expect(g, "\"\xC0\xAF\"", -1);     /* overlong */
    inf_grammar_free(g);

    g = compile("root ::= . \"\\u00e9\" \"\\x41\"");
    expect(g,
           "\xF4\x8F\xBF\xBF\xC3\xA9"
           "A",
           1);
    expect(g, "\xF4\x90\x80\x80", -1); /* above U+10FFFF */
    inf_grammar_free(g);
}

static void expect_error(const char *gbnf, inf_status code, const char *needle)
{
    struct inf_grammar *g = NULL;
    struct inf_error err = {0};
    inf_status rc = inf_grammar_from_gbnf(gbnf, strlen(gbnf), NULL, &g, &err);
    T_EQ_INT(rc, code);
    T_OK(g == NULL);
    T_CONTAINS(err.msg, needle);
}

static void test_errors(void)
{
    expect_error("root ::= root \"a\" | \"b\"", INF_EPARSE, "left-recursive");
    expect_error("root ::= a \"x\"\na ::= b\nb ::= \"\" root \"y\" | \"z\"", INF_EPARSE,
                 "left-recursive");
    expect_error("root ::= (\"a\"?)* root \"b\" | \"c\"", INF_EPARSE, "left-recursive");
    expect_error("root ::= undefined-rule", INF_EPARSE, "'undefined-rule' is used but not defined");
    expect_error("root ::= \"a\"\nroot ::= \"b\"", INF_EPARSE, "defined twice");
    expect_error("root ::= (\"a\"", INF_EPARSE, "expected ')'");
    expect_error("root ::= \"a\")", INF_EPARSE, "unbalanced ')'");
    expect_error("root ::= \"abc", INF_EPARSE, "unterminated literal");
    expect_error("root ::= [abc", INF_EPARSE, "unterminated character class");
    expect_error("root ::= [z-a]", INF_EPARSE, "end before its start");
    expect_error("root ::= \"a\"{3,2}", INF_EPARSE, "n < m");
    expect_error("root ::= \"a\"{100000}", INF_EPARSE, "above 10000");
    expect_error("root ::= \"\\q\"", INF_EPARSE, "line 1, column 11: unknown escape");
    expect_error("start ::= \"a\"", INF_EPARSE, "no rule named 'root'");
    expect_error("root ::= <think>", INF_EPARSE, "token references");
    expect_error("root := \"a\"", INF_EPARSE, "expected '::='");
    expect_error("root ::= root # no way out", INF_EPARSE, "can never be completed");
    expect_error("root ::= \"a\" x\nx ::= \"b\" x", INF_EPARSE, "can never be completed");
    expect_error("root ::= [^\\x00-\\U0010FFFF]", INF_EPARSE, "matches no character");
    expect_error("root ::= \"\xFF\"", INF_EPARSE, "invalid UTF-8");
    /* deep nesting of groups is bounded, not a stack overflow */
    char *deep = malloc(20000);
    strcpy(deep, "root ::= ");
    size_t n = strlen(deep);
    for (int i = 0; i < 5000; i++)
        deep[n++] = '(';
    deep[n] = '\0';
    expect_error(deep, INF_EPARSE, "nested more than 1024");
    free(deep);
}

/* ---- PCRE2 as the reference for regular grammars ----------------------------------------------
 */

struct regular_case {
    const char *gbnf, *regex, *alphabet;
    int trials; /* 0: 3000 */
};

static const struct regular_case regular[] = {
    {"root ::= \"a\" [b-d]+ \"e\"?", "a[b-d]+e?", "abcde", 0},
    {"root ::= (\"ab\" | \"a\")* \"c\"", "(?:ab|a)*c", "abc", 0},
    {"root ::= [0-9]{2,3} (\".\" [0-9]+)?", "[0-9]{2,3}(?:\\.[0-9]+)?", "019.", 0},
    {"root ::= \"-\"? (\"0\" | [1-9] [0-9]{0,3})", "-?(?:0|[1-9][0-9]{0,3})", "-0159", 0},
    {"root ::= [^a-c]{1,2} \"x\"", "[^a-c]{1,2}x", "abxy\xC3\xA9\xE2\x82\xAC", 0},
    {"root ::= ([αβ] | \"ab\")+", "(?:[αβ]|ab)+", "ab\xCE\xB1\xCE\xB2\xCE", 0},
    {"root ::= \"\\\"\" ([^\"\\\\] | \"\\\\\" [\"\\\\nt])* \"\\\"\"",
     "\"(?:[^\"\\\\]|\\\\[\"\\\\nt])*\"", "\"\\nta\xC3\xA9", 0},
    {"root ::= x y?\nx ::= \"a\"+ | \"b\"\ny ::= (\"c\" x)*", "(?:a+|b)(?:(?:ca+|cb)*)?", "abc", 0},
    /* a bound on an item that may be empty: states of hundreds of positions (radix-sorted);
       on the trials' strings (8 bytes at most) the language of [ab]*c, which PCRE2 matches
       without the backtracking the nested form costs it */
    {"root ::= (\"a\"? \"b\"?){0,130} \"c\"", "[ab]*c", "abc", 200},
};

/* PCRE2 verdict: 1 full match, 0 partial (viable prefix), -1 no match */
static int pcre_verdict(pcre2_code *re, pcre2_match_data *md, const char *s, size_t n)
{
    if (pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL) >= 0)
        return 1;
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, PCRE2_PARTIAL_HARD, md, NULL);
    return rc >= 0 || rc == PCRE2_ERROR_PARTIAL ? 0 : -1;
}

static void test_against_pcre(void)
{
    for (size_t c = 0; c < sizeof(regular) / sizeof(regular[0]); c++) {
        struct inf_grammar *g = compile(regular[c].gbnf);
        char pat[256];
        snprintf(pat, sizeof(pat), "^(?:%s)$", regular[c].regex);
        int ec;
        PCRE2_SIZE eo;
        /* no PCRE2_UTF: bytes, so a partial character is a partial match like ours; the
           classes in these cases are spelled so that byte semantics agree */
        pcre2_code *re =
            pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
        T_OK(re != NULL);
        if (!re || !g) {
            inf_grammar_free(g);
            pcre2_code_free(re);
            continue;
        }
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        const char *alpha = regular[c].alphabet;
        size_t na = strlen(alpha);
        int mismatches = 0;
        for (int trial = 0; trial < (regular[c].trials ? regular[c].trials : 3000); trial++) {
            char s[16];
            size_t n = 1 + (size_t)(t_rng() % 8); /* PCRE2 gives no partial match on "" */
            for (size_t i = 0; i < n; i++)
                s[i] = alpha[t_rng() % na];
            /* PCRE2 in UTF mode refuses invalid UTF-8 subjects (error), except a truncated last
               character, which it treats as partial: compare only where it gives a verdict */
            int rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, PCRE2_PARTIAL_HARD, md, NULL);
            if (rc < 0 && rc != PCRE2_ERROR_PARTIAL && rc != PCRE2_ERROR_NOMATCH)
                continue;
            int want = pcre_verdict(re, md, s, n);
            int got = feed(g, s, n);
            if (got != want && mismatches++ < 5)
                printf("  case %zu: '%.*s' got %d, pcre2 %d\n", c, (int)n, s, got, want);
        }
        T_EQ_INT(mismatches, 0);
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        inf_grammar_free(g);
    }
}

/* ---- token masks on a real vocabulary ----------------------------------------------------------
 */

static bool bit(const uint32_t *mask, int32_t i)
{
    return (mask[i >> 5] >> (i & 31)) & 1u;
}

/* The mask after prefix[0..n) compared with committing each token to a matcher at that prefix:
   every token when full, else about 3000 random ones. */
static bool full_check = true;

static int check_mask(struct inf_grammar *g, struct inf_grammar_vocab *v,
                      const struct inf_tokenizer *tok, struct inf_matcher *m, const char *prefix,
                      size_t n)
{
    int32_t nv = inf_grammar_vocab_size(v);
    uint32_t *mask = calloc(((size_t)nv + 31) / 32, sizeof(uint32_t));
    inf_matcher_mask(m, mask);
    struct inf_matcher *b = NULL;
    T_EQ_INT(inf_matcher_new(g, v, &b, NULL), INF_OK);
    int bad = 0, allowed = 0;
    for (int32_t t = 0; t < nv; t++) {
        if (!full_check && t_rng() % (uint64_t)nv >= 3000)
            continue;
        inf_matcher_reset(b);
        T_OK(inf_matcher_accept_bytes(b, prefix, n));
        bool ok = inf_matcher_accept_token(b, t);
        allowed += ok;
        if (ok != bit(mask, t) && bad++ < 5) {
            size_t pl;
            const char *p = inf_tok_piece(tok, t, false, &pl);
            printf("  after '%.*s': token %d '%.*s' accept %d mask %d\n", (int)n, prefix, t,
                   (int)pl, p ? p : "", ok, bit(mask, t));
        }
    }
    inf_matcher_free(b);
    free(mask);
    T_EQ_INT(bad, 0);
    return allowed;
}

/* Feed text token by token (as the tokenizer splits it), checking every mask against
   committing each token; then the end token. */
static void run_text(struct inf_grammar *g, struct inf_grammar_vocab *v,
                     const struct inf_tokenizer *tok, const char *text)
{
    struct inf_tokens ids = {0};
    struct inf_error err = {0};
    T_EQ_INT(inf_tok_encode(tok, text, strlen(text), 0, &ids, &err), INF_OK);
    struct inf_matcher *m = NULL;
    T_EQ_INT(inf_matcher_new(g, v, &m, &err), INF_OK);
    size_t done = 0;
    uint32_t *mask = calloc(((size_t)inf_grammar_vocab_size(v) + 31) / 32, sizeof(uint32_t));
    for (size_t i = 0; i < ids.n; i++) {
        int allowed = check_mask(g, v, tok, m, text, done);
        T_OK(allowed > 0 || !full_check);
        inf_matcher_mask(m, mask);
        T_OK(bit(mask, ids.ids[i]));
        T_OK(inf_matcher_accept_token(m, ids.ids[i]));
        size_t pl;
        inf_tok_piece(tok, ids.ids[i], false, &pl);
        done += pl;
    }
    T_EQ_INT((int64_t)done, (int64_t)strlen(text));
    T_OK(inf_matcher_can_end(m));
    const struct inf_tok_info *info = inf_tok_info(tok);
    inf_matcher_mask(m, mask);
    T_OK(bit(mask, info->eos));
    T_OK(inf_matcher_accept_token(m, info->eos));
    T_OK(inf_matcher_is_done(m));
    /* a rejected token leaves the state alone */
    inf_matcher_reset(m);
    T_OK(!inf_matcher_accept_token(m, info->eos));
    T_OK(inf_matcher_accept_bytes(m, text, 1));
    inf_tokens_release(&ids);
    free(mask);
    inf_matcher_free(m);
}

static void test_masks(void)
{
    char path[1024];
    t_shared_file(path, sizeof(path), "tokenizers/ggml-vocab-llama-bpe.gguf");
    struct inf_tokenizer *tok = NULL;
    struct inf_error err = {0};
    T_EQ_INT(inf_tokenizer_load_gguf(path, &tok, &err), INF_OK);
    struct inf_grammar_vocab *v = NULL;
    T_EQ_INT(inf_grammar_vocab_new(tok, &v, &err), INF_OK);
    /* the same string rule in two grammars: the second finds the string body's walk in the
       vocabulary's shared cache, under another context; both are checked token by token */
    static const char *a =
        "root ::= \"{\" ws pair (\",\" ws pair)* \"}\"\n"
        "pair ::= str \":\" ws (num | str | \"true\" | \"null\")\n"
        "str ::= \"\\\"\" ([^\"\\\\\\x00-\\x1f] | \"\\\\\" [\"\\\\/nt])* \"\\\"\"\n"
        "num ::= \"-\"? [0-9]+\n"
        "ws ::= \" \"?\n";
    static const char *b =
        "root ::= \"[\" item (\", \" item)* \"]\"\n"
        "item ::= str | \"{\\\"k\\\": \" str \"}\" | [0-9]{1,3}\n"
        "str ::= \"\\\"\" ([^\"\\\\\\x00-\\x1f] | \"\\\\\" [\"\\\\/nt])* \"\\\"\"\n";
    /* recursion: nothing shared, the cut states still apply */
    static const char *c = "root ::= value\n"
                           "value ::= \"[\" (value (\",\" value)*)? \"]\" | str | [0-9]+\n"
                           "str ::= \"\\\"\" [^\"]* \"\\\"\"\n";
    /* counted repetitions: runs of bytes taken whole (x{0,n} counts down) */
    static const char *d =
        "root ::= \"{\\\"s\\\": \\\"\" [a-z ]{0,12} \"\\\", \\\"n\\\": \" [0-9]{1,4} \"}\"\n";
    /* long bounds: counts above the longest token (128 bytes here) share one mask, counts
       below it count down; text with multibyte characters is taken whole where the state
       takes any character (the string loop, the chains of counts) */
    static const char *e =
        "root ::= \"[\" (str (\", \" str){0,200})? \"]\"\n"
        "str ::= \"\\\"\" ([^\"\\\\\\x00-\\x1f] | \"\\\\\" [\"\\\\/nt]){0,300} \"\\\"\"\n";
    static const char *f = "root ::= \"\\\"\" [^\"]{2,10} \"\\\" \" [^\"]* \"!\"\n";
    /* an object key that is not a declared name ("ab..."): after the quote any character but
       'a' goes to the key loop, 'a' goes on with the name; the tokens of the loop's text set
       are taken but for those starting with 'a', which are walked */
    static const char *g = "root ::= \"{\\\"\" k0 \":1}\"\n"
                           "k0 ::= \"\\\"\" | [^\"\\\\\\x00-\\x1fa] kf | \"a\" k1\n"
                           "k1 ::= \"\\\"\" | [^\"\\\\\\x00-\\x1fb] kf | \"b\" k2\n"
                           "k2 ::= [^\"\\\\\\x00-\\x1f] kf\n"
                           "kf ::= [^\"\\\\\\x00-\\x1f]* \"\\\"\"\n";
    /* the same where one part holds both: 'a' goes on to [b-z], and the tokens starting with
       'a' (walked in the main trie) are the only ones that may hold "a" then a non-letter */
    static const char *g2 =
        "root ::= \"{\\\"\" key \":1}\"\n"
        "key ::= ([^\"\\\\\\x00-\\x1fa] | \"a\" [b-z]) [^\"\\\\\\x00-\\x1f]* \"\\\"\"\n";
    /* a cut one byte in (a one-letter item): the continuations are below most of the
       vocabulary, so the state is walked whole */
    static const char *h = "root ::= \"[\" v (\",\" v)* \"]\"\n"
                           "v ::= [a-z] | \"\\\"\" [^\"\\\\]* \"\\\"\"\n";
    struct inf_grammar *ga = compile(a), *gb = compile(b), *gc = compile(c), *gd = compile(d);
    struct inf_grammar *ge = compile(e), *gf = compile(f), *gg = compile(g), *gh = compile(h);
    run_text(gg, v, tok, "{\"xyz ab\":1}");
    run_text(gg, v, tok, "{\"abc\":1}");
    run_text(gg, v, tok, "{\"a\":1}");
    run_text(gh, v, tok, "[a,b,\"xy z\",c]");
    /* a chain of two-byte items longer than a token can span: its links from
       (128 - 1) / 2 + 2 = 65 on share one canonical state; a 64-byte token of '=' spans 32
       items (a canonical link that allowed fewer would reject it) */
    struct inf_grammar *gq = compile("root ::= \"x\" (\"==\"){0,80} \"y\"\n");
    run_text(gq, v, tok,
             "x================================================================"
             "================================y");
    inf_grammar_free(gq);
    /* rules alike are one rule to the matcher (a, b and their chains); rules that differ in
       a byte set only (c) stay apart */
    struct inf_grammar *gu = compile("root ::= \"[\" a \",\" b \",\" c \"]\"\n"
                                     "a ::= [0-9]{1,3} | \"x\"\nb ::= [0-9]{1,3} | \"x\"\n"
                                     "c ::= [0-8]{1,3} | \"x\"\n");
    run_text(gu, v, tok, "[12,345,x]");
    run_text(gu, v, tok, "[x,9,88]");
    {
        struct inf_matcher *m = NULL;
        T_EQ_INT(inf_matcher_new(gu, v, &m, NULL), INF_OK);
        T_OK(inf_matcher_accept_bytes(m, "[1,2,", 5));
        T_OK(!inf_matcher_accept_bytes(m, "9", 1));
        T_OK(inf_matcher_accept_bytes(m, "888", 3));
        T_OK(!inf_matcher_accept_bytes(m, "8", 1));
        inf_matcher_free(m);
    }
    inf_grammar_free(gu);
    {
        /* text loops: an unanchored pattern (JSON Schema's `pattern` matches anywhere) keeps
           its leading loop over all text beside the count in every state, so every text token
           is allowed at once and only tokens with a quote, a backslash or a partial character
           are walked; the masks must still be exact where the count decides (a quote after 8
           hex digits, not before). The second loop takes ASCII only: not a text loop, so
           multibyte tokens must stay out. */
        struct inf_grammar *gl = compile("root ::= \"\\\"\" any* [0-9a-f]{8} any* \"\\\"\"\n"
                                         "any ::= [^\"\\\\\\x00-\\x1f] | \"\\\\\" [\"\\\\/nt]\n");
        run_text(gl, v, tok, "\"x \xC3\xA9 0123abcd\"");
        run_text(gl, v, tok, "\"deadbeef00 \\\"q\\\" \xE4\xB8\xAD\xF0\x9F\x98\x80 z\"");
        run_text(gl, v, tok, "\"ab12345 and 9abcdef01\"");
        {
            struct inf_matcher *m = NULL;
            T_EQ_INT(inf_matcher_new(gl, v, &m, NULL), INF_OK);
            T_OK(inf_matcher_accept_bytes(m, "\"cafe 1234567", 13));
            T_OK(!inf_matcher_accept_bytes(m, "\"", 1));
            T_OK(inf_matcher_accept_bytes(m, "f\"", 2));
            T_OK(inf_matcher_can_end(m));
            inf_matcher_free(m);
        }
        inf_grammar_free(gl);
        struct inf_grammar *ga8 = compile("root ::= \"\\\"\" a8* [0-9a-f]{4} a8* \"\\\"\"\n"
                                          "a8 ::= [\\x20-\\x21\\x23-\\x5b\\x5d-\\x7f]\n");
        run_text(ga8, v, tok, "\"ok 12ab then text\"");
        inf_grammar_free(ga8);
    }
    {
        /* counted items with a comma each: no token of this vocabulary holds more than 8
           commas, so the links from 8 + 2 on are alike (chain_links), far below the bound
           from token length; a token of 8 commas must still be refused where 7 are left */
        struct inf_grammar *gk = compile("root ::= \"[\" (\",\"){0,30} \"]\"\n");
        run_text(gk, v, tok, "[,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,]");
        run_text(gk, v, tok, "[,,,,,,,,,,,,,,,,,,,,,,,]");
        {
            struct inf_matcher *m = NULL;
            T_EQ_INT(inf_matcher_new(gk, v, &m, NULL), INF_OK);
            T_OK(inf_matcher_accept_bytes(m, "[,,,,,,,,,,,,,,,,,,,,,,,", 24));
            T_OK(!inf_matcher_accept_bytes(m, ",,,,,,,,", 8));
            T_OK(inf_matcher_accept_bytes(m, ",,,,,,,]", 8));
            inf_matcher_free(m);
        }
        inf_grammar_free(gk);
        /* the same through a group (X a rule of its own: the bytes every string of it holds
           are found by must_bytes, here ',' and 'a') */
        struct inf_grammar *gka = compile("root ::= \"[\" (\",\" [ ]? \"a\"){0,30} \"]\"\n");
        run_text(gka, v, tok, "[,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a]");
        run_text(gka, v, tok, "[,a, a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a]");
        inf_grammar_free(gka);
        /* counted strings as the values of an object: each string's first character cut at
           its own links pops out after every character, so the cut moves down to the
           string's rule (its end and closing quote inside), the same part for every value */
        struct inf_grammar *gs = compile(
            "root ::= \"{\" ws \"\\\"a\\\":\" ws s ws \",\" ws \"\\\"b\\\":\" ws s ws \"}\"\n"
            "s ::= \"\\\"\" [^\"\\\\\\x00-\\x1f]{1,20} \"\\\"\"\n"
            "ws ::= \" \"?\n");
        run_text(gs, v, tok, "{\"a\": \"x y\", \"b\": \"\xC3\xA9t\xC3\xA9 ok\"}");
        run_text(gs, v, tok, "{ \"a\":\"12345678901234567890\" ,\"b\": \"q\"}");
        inf_grammar_free(gs);
    }
    {
        /* the last characters of a count: a state that takes n more characters of text and
           then none (a closing quote) allows the text set's tokens of at most n characters;
           in a rule of its own the count's end pops into the caller's cut, whose continuation
           (the quote) takes no text, so the longer tokens are refused. Where the continuation
           does take text ([a-z]* after [a-z]{3}), the longer tokens are its: the state is
           walked whole. A count that may end early (c14) holds a cut inside the run. A
           vocabulary of their own: the 16 text sets of the shared one are taken by now. */
        struct inf_grammar_vocab *vr = NULL;
        T_EQ_INT(inf_grammar_vocab_new(tok, &vr, &err), INF_OK);
        struct inf_grammar *gc5 =
            compile("root ::= \"{\\\"a\\\": \\\"\" c5 \"\\\", \\\"b\\\": \\\"\" c5 \"\\\"}\"\n"
                    "c5 ::= [^\"\\\\\\x00-\\x1f]{5}\n");
        run_text(gc5, vr, tok, "{\"a\": \"hello\", \"b\": \"\xC3\xA9t\xC3\xA9s!\"}");
        run_text(gc5, vr, tok, "{\"a\": \"12345\", \"b\": \"a b c\"}");
        inf_grammar_free(gc5);
        struct inf_grammar *gc3 = compile("root ::= \"<\" c3 [^<>]* \">\"\nc3 ::= [^<>]{3}\n");
        run_text(gc3, vr, tok,
                 "<abc d\xC3\xA9"
                 "fghijklmnop>");
        run_text(gc3, vr, tok, "<abc>");
        inf_grammar_free(gc3);
        struct inf_grammar *gc14 =
            compile("root ::= \"[\\\"\" c14 \"\\\",\\\"\" c14 \"\\\"]\"\nc14 ::= [a-z ]{1,4}\n");
        run_text(gc14, vr, tok, "[\"ab\",\"c de\"]");
        inf_grammar_free(gc14);
        /* a count whose end takes text two ways (not one run): its longer tokens go on there
           (classes of any character: a run is text, multibyte characters included) */
        struct inf_grammar *gcx =
            compile("root ::= \"<\" [^<>]{3} ([a-m] \"x\" | [^a-m<>] \"y\") \">\"\n");
        run_text(gcx, vr, tok, "<abcdx>");
        run_text(gcx, vr, tok,
                 "<a\xC3\xA9"
                 "cny>");
        inf_grammar_free(gcx);
        /* a run whose rule may end inside it: the caller's letters take the longer tokens */
        struct inf_grammar *gcm =
            compile("root ::= \"<\" c [^<>!]* \">\"\nc ::= [^<>!] [^<>!] ([^<>!] [^<>!] \"!\")?\n");
        run_text(gcm, vr, tok, "<abcdefghij>");
        run_text(gcm, vr, tok, "<abcd!>");
        inf_grammar_free(gcm);
        inf_grammar_vocab_free(vr);
    }
    struct inf_grammar *gg2 = compile(g2);
    run_text(gg2, v, tok, "{\"ab c\":1}");
    run_text(gg2, v, tok, "{\"xa\":1}");
    inf_grammar_free(gg2);
    run_text(gf, v, tok,
             "\"\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82\" \xE4\xB8\xAD\xE6\x96\x87 ok!");
    run_text(gf, v, tok,
             "\"\xE4\xB8\xAD\xE6\x96\x87\xE4\xB8\xAD\xE6\x96\x87\xE4\xB8\xAD\xE6\x96\x87\xE4\xB8"
             "\xAD\xE6\x96\x87\xE4\xB8\xAD\xE6\x96\x87\" !");
    {
        /* a string of 300 characters exactly (ASCII, Cyrillic, CJK, emoji, escapes), then
           one more is refused */
        char text[2048];
        size_t n = 0;
        const char *unit = "ab \xD0\xB6\xE4\xB8\xAD\xF0\x9F\x98\x80\\n "; /* 8 characters */
        text[n++] = '[';
        text[n++] = '"';
        for (int i = 0; i < 37; i++) {
            memcpy(text + n, unit, strlen(unit));
            n += strlen(unit);
        }
        memcpy(text + n, "xyzw", 4); /* 296 + 4 */
        n += 4;
        const char *tail = "\", \"\xC3\xA9t\xC3\xA9\"]";
        size_t body = n;
        memcpy(text + n, tail, strlen(tail) + 1);
        n += strlen(tail);
        full_check = false;
        run_text(ge, v, tok, text);
        struct inf_matcher *m = NULL;
        T_EQ_INT(inf_matcher_new(ge, v, &m, NULL), INF_OK);
        T_OK(inf_matcher_accept_bytes(m, text, body));
        T_OK(!inf_matcher_accept_bytes(m, "a", 1));
        T_OK(!inf_matcher_accept_bytes(m, "\xC3\xA9", 2));
        T_OK(inf_matcher_accept_bytes(m, "\"]", 2));
        T_OK(inf_matcher_can_end(m));
        inf_matcher_free(m);
        full_check = true;
    }
    run_text(gd, v, tok, "{\"s\": \"hello world\", \"n\": 1234}");
    run_text(gd, v, tok, "{\"s\": \"\", \"n\": 7}");
    run_text(ga, v, tok, "{\"name\": \"Zo\xC3\xAB \\\"x\\\"\", \"age\":-42, \"ok\": true}");
    full_check = false;
    run_text(gb, v, tok, "[\"a b\", {\"k\": \"x\\\\\"}, 12, \"\xE4\xB8\xAD\xE6\x96\x87\"]");
    run_text(ga, v, tok, "{\"k\": \"v\"}");
    run_text(gc, v, tok, "[[\"a\",[1,2]],\"\",[[]]]");
    /* tiny table limits: the matcher rebuilds its tables from the current state as it goes */
    inf__matcher_set_limits(64, 32, 4096, 256);
    run_text(ga, v, tok, "{\"name\": \"Zo\xC3\xAB\", \"n\": 1}");
    run_text(gc, v, tok, "[[\"a\",[1,2]],\"b\"]");
    /* a cache of two cut-state masks: evicted all the time */
    inf__matcher_set_limits(4u << 20, 1u << 20, 64u << 20, 2);
    run_text(ga, v, tok, "{\"name\": \"Zo\xC3\xAB\", \"n\": 1, \"k\": null}");
    run_text(gb, v, tok, "[\"a b\", {\"k\": \"x\"}, 12]");
    inf__matcher_set_limits(4u << 20, 1u << 20, 64u << 20, 256);
    inf_grammar_free(ga);
    inf_grammar_free(gb);
    inf_grammar_free(gc);
    inf_grammar_free(gd);
    inf_grammar_free(ge);
    inf_grammar_free(gf);
    inf_grammar_free(gg);
    inf_grammar_free(gh);
    inf_grammar_vocab_free(v);
    inf_tokenizer_free(tok);
}

int main(void)
{
    T_RUN(test_basics);
    T_RUN(test_unicode);
    T_RUN(test_errors);
    T_RUN(test_against_pcre);
    T_RUN(test_masks);
    T_DONE();
}
