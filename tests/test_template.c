/*
 * test_template.c - the chat-template engine (inferno/template.h).
 *
 *   - every case of ../shared/testdata/chat-templates (46 real templates, 434 reference renders
 *     made by an independent Jinja implementation, cross-checked with Python Jinja2) renders to
 *     exactly the expected string, or fails where a case expects an error;
 *   - language features against outputs of Python Jinja2 3.1.6 set up as transformers sets it up
 *     (table below), and hand-written checks of what Python cannot show (generation tag, host
 *     functions, the ChatML default);
 *   - errors carry "line L, column C";
 *   - limits: endless loops, runaway recursion, huge output, memory, nesting, source size;
 *   - garbage and mutated templates never crash (run this under ASan);
 *   - one parsed template rendered from several threads at once.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/log.h"
#include "inferno/template.h"
#include "t.h"

#define FIXED_NOW 1795694400 /* Thursday 26 Nov 2026 12:00:00 UTC, the oracle's clock */

struct py_case {
    const char *tpl, *ctx, *expected;
};

/* Generated from Python Jinja2 3.1.6 (trim_blocks, lstrip_blocks, loopcontrols, do,
 * transformers' tojson): template, context, expected output. */
static const struct py_case PY_CASES[] = {
    {"{{ 1 + 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}|{{ 7 / 2 }}|{{ "
     "1.0 }}|{{ 0.1 + 0.2 }}|{{ 1e-5 }}|{{ 1e16 }}|{{ 123456789.0 }}|{{ -0.0 }}",
     "{}", "3|3|-4|1|2|1024|3.5|1.0|0.30000000000000004|1e-05|1e+16|123456789.0|-0.0"},
    {"{{ 'a' ~ 1 ~ none ~ true }}|{{ undefined_x ~ 'z' }}|{{ [1, 'a', none, true, 1.5] }}|{{ {'a': "
     "1, 'b': [2]} }}|{{ ('x',) }}|{{ (1, 2) }}",
     "{}", "a1NoneTrue|z|[1, 'a', None, True, 1.5]|{'a': 1, 'b': [2]}|('x',)|(1, 2)"},
    {"{{ \"it's\" }}|{{ [\"it's\", 'say \"hi\"', 'both \\' \"', 'tab\\tnl\\n', 'uni \xc3\xbc"
     " \xc3\xa9"
     " \xf0\x9f\x98\x80"
     "', '\\x01\\x7f'] }}",
     "{}",
     "it's|[\"it's\", 'say \"hi\"', 'both \\' \"', 'tab\\tnl\\n', 'uni \xc3\xbc"
     " \xc3\xa9"
     " \xf0\x9f\x98\x80"
     "', '\\x01\\x7f']"},
    {"{% for x in [1,2,3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ "
     "loop.length }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.previtem }}{{ loop.nextitem "
     "}}{{ loop.cycle('a','b') }};{% endfor %}",
     "{}", "10TrueFalse3322a;21FalseFalse32113b;32FalseTrue3102a;"},
    {"{% for x in items if x > 1 %}{{ x }}{{ loop.length }}{% else %}none{% endfor %}|{% for x in "
     "[] %}a{% else %}empty{% endfor %}",
     "{\"items\": [1, 2, 3]}", "2232|empty"},
    {"{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}|{% for k in d %}{{ k }}{% endfor "
     "%}|{% for c in 'h\xc3\xa9"
     "llo' %}[{{ c }}]{% endfor %}",
     "{\"d\": {\"b\": 1, \"a\": 2}}",
     "b=1,a=2,|ba|[h][\xc3\xa9"
     "][l][l][o]"},
    {"{% set ns = namespace(x=0, s='') %}{% for i in range(5) %}{% set ns.x = ns.x + i %}{% set "
     "ns.s = ns.s ~ i %}{% endfor %}{{ ns.x }} {{ ns.s }}",
     "{}", "10 01234"},
    {"{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}{% if true %}{% "
     "set x = 3 %}{% endif %}{{ x }}",
     "{}", "213"},
    {"{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% "
     "endif %}{{ i }}{% endfor %}",
     "{}", "0134"},
    {"{% macro m(a, b=2, c='x') %}[{{ a }}{{ b }}{{ c }}]{% endmacro %}{{ m(1) }}{{ m(1, 3) }}{{ "
     "m(1, c='y') }}{{ m(a=5) }}",
     "{}", "[12x][13x][12y][52x]"},
    {"{% macro outer() %}<{{ caller() }}>{% endmacro %}{% call outer() %}inside{% endcall %}|{% "
     "macro o2(x) %}{{ caller(x * 2) }}{% endmacro %}{% call(v) o2(21) %}v={{ v }}{% endcall %}",
     "{}", "<inside>|v=42"},
    {"{% filter upper %}hello {{ name }}{% endfilter %}|{% set b %}  block {{ 1 }} {% endset %}[{{ "
     "b }}]|{% set t | trim %}  tr  {% endset %}[{{ t }}]",
     "{\"name\": \"bob\"}", "HELLO BOB|[  block 1 ]|[tr]"},
    {"{{ 'abcdef'[1:3] }}|{{ 'abcdef'[::-1] }}|{{ 'abcdef'[::2] }}|{{ 'abcdef'[-2:] }}|{{ "
     "[1,2,3,4,5][1:-1] }}|{{ [1,2,3,4,5][::-2] }}|{{ 'h\xc3\xa9"
     "llo'[1:3] }}|{{ 'abc'[5:] }}|{{ [1,2,3][10:1:-1] }}",
     "{}",
     "bc|fedcba|ace|ef|[2, 3, 4]|[5, 3, 1]|\xc3\xa9"
     "l||[3]"},
    {"{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '  a'.lstrip() }}|{{ 'a  '.rstrip() "
     "}}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b c '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ "
     "'a,b,c'.rsplit(',', 1) }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x','c')) }}|{{ "
     "'aaa'.replace('a','b',2) }}|{{ 'Hello World'.upper() }}{{ 'Hello'.lower() }}|{{ 'hello "
     "world-foo'.title() }}|{{ 'hello'.capitalize() }}|{{ 'abcabc'.find('c') }}{{ 'abc'.find('z') "
     "}}|{{ 'abcabc'.count('b') }}|{{ '-'.join(['a','b']) }}",
     "{}",
     "a b|a|a|a|['a', 'b', '', 'c']|['a', 'b', 'c']|['a', 'b c']|['a,b', 'c']|True|True|bba|HELLO "
     "WORLDhello|Hello World-Foo|Hello|2-1|2|a-b"},
    {"{{ d.get('a') }}|{{ d.get('z') }}|{{ d.get('z', 5) }}|{{ d.keys() | list }}|{{ d.values() | "
     "list }}|{{ d.items() | list }}|{{ d['a'] }}|{{ d.a }}|{{ d.missing is defined }}|{{ "
     "d['items'] is defined }}",
     "{\"d\": {\"a\": 1, \"b\": \"x\"}}",
     "1|None|5|['a', 'b']|[1, 'x']|[('a', 1), ('b', 'x')]|1|1|False|True"},
    {"{{ x | tojson }}|{{ x | tojson(indent=2) }}|{{ '\xc3\xbc"
     "\"\\\\\\n' | tojson }}|{{ '\xc3\xbc"
     "' | tojson(ensure_ascii=True) }}|{{ 1.5 | tojson }}|{{ none | tojson }}|{{ [] | "
     "tojson(indent=2) }}|{{ {} | tojson }}|{{ x | tojson(sort_keys=true) }}",
     "{\"x\": {\"b\": [1, 2.0, null, true, \"s\"], \"a\": {\"c\": {}}}}",
     "{\"b\": [1, 2.0, null, true, \"s\"], \"a\": {\"c\": {}}}|{\n  \"b\": [\n    1,\n    2.0,\n   "
     " null,\n    true,\n    \"s\"\n  ],\n  \"a\": {\n    \"c\": {}\n  }\n}|\"\xc3\xbc"
     "\\\"\\\\\\n\"|\"\\u00fc\"|1.5|null|[]|{}|{\"a\": {\"c\": {}}, \"b\": [1, 2.0, null, true, "
     "\"s\"]}"},
    {"{{ [3,1,2] | sort }}|{{ ['b','A','c'] | sort }}|{{ ['b','A','c'] | sort(case_sensitive=true) "
     "}}|{{ [3,1,2] | sort(reverse=true) }}|{{ items | sort(attribute='n') | map(attribute='n') | "
     "list }}|{{ [1,2,2,3,1] | unique | list }}|{{ ['a','A','b'] | unique | list }}|{{ [3,1,2] | "
     "min }}{{ [3,1,2] | max }}",
     "{\"items\": [{\"n\": 2}, {\"n\": 1}]}",
     "[1, 2, 3]|['A', 'b', 'c']|['A', 'b', 'c']|[3, 2, 1]|[1, 2]|[1, 2, 3]|['a', 'b']|13"},
    {"{{ d | dictsort }}|{{ d | dictsort(reverse=true) }}|{{ d | dictsort(by='value') }}|{{ d | "
     "items | list }}",
     "{\"d\": {\"b\": 2, \"a\": 3, \"C\": 1}}",
     "[('a', 3), ('b', 2), ('C', 1)]|[('C', 1), ('b', 2), ('a', 3)]|[('C', 1), ('b', 2), ('a', "
     "3)]|[('b', 2), ('a', 3), ('C', 1)]"},
    {"{{ xs | selectattr('t', 'equalto', 'a') | map(attribute='v') | join(',') }}|{{ xs | "
     "rejectattr('t', 'equalto', 'a') | list | length }}|{{ xs | selectattr('v') | list | length "
     "}}|{{ [1,2,3,4] | select('odd') | list }}|{{ [1,2,3,4] | reject('even') | list }}|{{ "
     "['a','b'] | map('upper') | join }}|{{ xs | map(attribute='missing', default='d') | list }}",
     "{\"xs\": [{\"t\": \"a\", \"v\": 1}, {\"t\": \"b\", \"v\": 0}, {\"t\": \"a\", \"v\": 3}]}",
     "1,3|1|2|[1, 3]|[1, 3]|AB|['d', 'd', 'd']"},
    {"{{ x is defined }}{{ y is defined }}{{ y is undefined }}{{ none is none }}{{ 's' is string "
     "}}{{ 1 is number }}{{ true is number }}{{ 1.5 is float }}{{ 1 is integer }}{{ true is "
     "boolean }}{{ {} is mapping }}{{ [] is iterable }}{{ 's' is iterable }}{{ 1 is iterable }}{{ "
     "[] is sequence }}{{ true is true }}{{ 1 is true }}{{ false is false }}{{ 3 is odd }}{{ 4 is "
     "even }}{{ 6 is divisibleby 3 }}{{ 'a' is in 'abc' }}{{ 2 is in [1,2] }}{{ 'ab' is lower }}{{ "
     "'AB' is upper }}{{ 1 is eq 1 }}{{ 2 is gt 1 }}{{ none is sameas none }}",
     "{\"x\": 1}",
     "TrueFalseTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueFalseTrueTrueFalseTrueTrueTrueTrueTrueTr"
     "ueTrueTrueTrueTrueTrue"},
    {"{{ 'x' if true else 'y' }}|{{ 'x' if false else 'y' }}|{{ 'x' if false }}|{{ 1 if none is "
     "none }}|{{ (1 if true else 2) + 1 }}",
     "{}", "x|y||1|2"},
    {"{{ 1 < 2 < 3 }}{{ 1 < 3 < 2 }}{{ 'a' in ['a'] }}{{ 'a' not in 'bcd' }}{{ not 1 == 2 }}{{ 1 "
     "== 1.0 }}{{ true == 1 }}{{ [1,2] == [1,2] }}{{ {'a':1} == {'a':1} }}{{ 'a' < 'b' }}{{ [1,2] "
     "< [1,3] }}{{ none == none }}{{ x == y }}",
     "{}", "TrueFalseTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrue"},
    {"{{ 0 or 'a' }}|{{ 1 and 'b' }}|{{ '' or [] }}|{{ none and 1 }}|{{ not none }}|{{ not [] "
     "}}|{{ 'abc' | length }}|{{ 'h\xc3\xa9"
     "llo' | length }}|{{ [1,2] | length }}|{{ {'a':1} | length }}|{{ undefined_v | length }}",
     "{}", "a|b|[]|None|True|True|3|5|2|1|0"},
    {"{{ '  hi  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ 'hello' | upper }}|{{ 'HeLLo' | lower "
     "}}|{{ 'hello world' | title }}|{{ 'hELLO' | capitalize }}|{{ 'a-b' | replace('-', '+') }}|{{ "
     "42 | string }}|{{ '42' | int + 1 }}|{{ '4.7' | int }}|{{ 'x' | int }}|{{ 'x' | int(7) }}|{{ "
     "3.9 | int }}|{{ '2.5' | float }}|{{ -3 | abs }}|{{ 2.5 | round }}|{{ 3.14159 | round(2) "
     "}}|{{ 2.7 | round(0, 'floor') }}",
     "{}", "hi|hi|HELLO|hello|Hello World|Hello|a+b|42|43|4|0|7|3|2.5|3|2.0|3.14|2.0"},
    {"{{ undefined_v | default('d') }}|{{ none | default('d') }}|{{ '' | default('d', true) }}|{{ "
     "'v' | d('x') }}|{{ [1,2,3] | first }}{{ [1,2,3] | last }}|{{ 'abc' | first }}|{{ [1,2,3] | "
     "reverse | list }}|{{ 'abc' | reverse }}|{{ [1,2,3] | sum }}|{{ [1,2,3,4,5] | batch(2) | list "
     "}}|{{ 'a b  c' | wordcount }}",
     "{}", "d|None|d|v|13|a|[3, 2, 1]|cba|6|[[1, 2], [3, 4], [5]]|3"},
    {"{{ 'line1\\nline2\\n\\nline4' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | "
     "indent(2, blank=true) }}|{{ 'a\\nb\\n' | indent }}|{{ 'hello world foo bar' | truncate(9) "
     "}}|{{ 'hello' | center(11) }}|{{ '<a>&\"\\'' | e }}|{{ '%s-%d' | format('a', 3) }}|{{ "
     "'%05.1f|%-4s|%x' % (3.14159, 'ab', 255) }}",
     "{}",
     "line1\n  line2\n\n  line4|  a\n  b|a\n  \n  b|a\n    b\n|hello...|   hello   "
     "|&lt;a&gt;&amp;&#34;&#39;|a-3|003.1|ab  |ff"},
    {"{{ range(3) | list }}|{{ range(1, 10, 3) | list }}|{{ range(5, 0, -2) | list }}|{{ dict(a=1, "
     "b=2) }}|{{ namespace(a=1).a }}",
     "{}", "[0, 1, 2]|[1, 4, 7]|[5, 3, 1]|{'a': 1, 'b': 2}|1"},
    {"{%- if true -%}\n  a\n{%- endif -%}\n|{% if true %}\n  b\n{% endif %}\nc\n  {% if true %}\n  "
     "  d\n  {% endif %}\n{# comment #}\ne  {# c2 #}\nf\n  {%+ if true %}g{% endif %}\n{% if true "
     "+%}\nh{% endif %}",
     "{}", "a|  b\nc\n    d\ne  f\n  g\nh"},
    {"a  {{- ' b ' -}}  c\n{{ 'x' }}\n  {{ 'y' }}\n{% raw %}{{ not }} {% tag %}{% endraw %}\n{%- "
     "raw -%}  r  {%- endraw %}|",
     "{}", "a b c\nx\n  y\n{{ not }} {% tag %}r|"},
    {"{% set a, b = [1, 2] %}{{ a }}{{ b }}|{% for a, b in [[1,2],[3,4]] %}{{ a + b }}{% endfor "
     "%}|{% for (a, b) in [(1,2)] %}{{ a }}{{ b }}{% endfor %}|{% with x = 5 %}{{ x }}{% endwith "
     "%}{{ x }}",
     "{}", "12|37|12|5"},
    {"{{ messages[0]['content'] }}|{{ messages[-1].role }}|{{ messages|length }}|{{ "
     "messages[0].content[:5] }}|{{ messages[5] is defined }}|{{ messages.0.role }}",
     "{\"messages\": [{\"role\": \"user\", \"content\": \"hello world\"}, {\"role\": "
     "\"assistant\", \"content\": \"hi\"}]}",
     "hello world|assistant|2|hello|False|user"},
    {"{{ x.y is defined }}|{{ none.y is defined }}|{{ 'abc'.zz is defined }}|{{ [1].length is "
     "defined }}",
     "{\"x\": {}}", "False|False|False|False"},
    {"{{ 'a' * 3 }}|{{ [1] * 3 }}|{{ 3 * 'b' }}|{{ 'a' + 'b' }}|{{ [1] + [2] }}|{{ 1 + 2.5 }}|{{ "
     "10 / 4 }}|{{ 2 ** -1 }}|{{ 9 // 2.0 }}|{{ 5.5 % 2 }}|{{ -2 ** 2 }}|{{ 2 ** 3 ** 2 }}",
     "{}", "aaa|[1, 1, 1]|bbb|ab|[1, 2]|3.5|2.5|0.5|4.0|1.5|4|64"},
    {"{{ '{}-{}'.format('a', 1) }}|{{ '{0}{name}'.format('x', name='y') }}|{{ 'a\\tb'.splitlines() "
     "}}|{{ 'a\\nb\\r\\nc'.splitlines() }}|{{ 'abc'.zfill(5) }}|{{ 'a=b=c'.partition('=') }}|{{ "
     "'ab'.isalpha() }}{{ '12'.isdigit() }}{{ ' '.isspace() }}",
     "{}", "a-1|xy|['a\\tb']|['a', 'b', 'c']|00abc|('a', '=', 'b=c')|TrueTrueTrue"},
    {"{% set l = [1] %}{% set _ = l.append(2) %}{{ l }}|{% set d = {'a': 1} %}{% set _ = "
     "d.update({'b': 2}) %}{{ d }}|{{ l.pop() }}{{ l }}|{{ d.pop('a') }}{{ d }}",
     "{}", "[1, 2]|{'a': 1, 'b': 2}|2[1]|1{'b': 2}"},
    {"{{ 1e300 * 1e300 }}|{{ 1.5e-7 }}|{{ 100.0 }}|{{ 1e15 }}|{{ 12345678901234567.0 }}|{{ 0.1 "
     "}}|{{ 1/3 }}|{{ 2.0 ** 70 }}|{{ 3.0e-320 }}",
     "{}",
     "inf|1.5e-07|100.0|1000000000000000.0|1.2345678901234568e+16|0.1|0.3333333333333333|1."
     "1805916207174113e+21|3e-320"},
    {"{{ x | tojson }}",
     "{\"x\": [1.0, 0.5, 1e-07, 1e+22, 123456789012.0, -0.0, \"\xe2\x80\xa8"
     "\xc2\xa0"
     "\177\"]}",
     "[1.0, 0.5, 1e-07, 1e+22, 123456789012.0, -0.0, \"\xe2\x80\xa8"
     "\xc2\xa0"
     "\177\"]"},
    {"{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}", "{}",
     "54321"},
    {"{% macro g() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ g(1, 2, a=3) }}", "{}",
     "(1, 2){'a': 3}"},
    {"{{ 'Gr\xc3\xbc"
     "\xc3\x9f"
     "e' | upper }}|{{ '\xce\x91"
     "\xce\x92"
     "\xce\x93"
     "' | lower }}|{{ '\xd0\x9f"
     "\xd0\xa0"
     "\xd0\x98"
     "\xd0\x92"
     "\xd0\x95"
     "\xd0\xa2"
     "' | lower }}|{{ 'stra\xc3\x9f"
     "e'.upper() }}|{{ '\xc3\x80"
     "\xc3\x89"
     "\xc3\x8e"
     "'.lower() }}",
     "{}",
     "GR\xc3\x9c"
     "SSE|\xce\xb1"
     "\xce\xb2"
     "\xce\xb3"
     "|\xd0\xbf"
     "\xd1\x80"
     "\xd0\xb8"
     "\xd0\xb2"
     "\xd0\xb5"
     "\xd1\x82"
     "|STRASSE|\xc3\xa0"
     "\xc3\xa9"
     "\xc3\xae"
     ""},
    {"{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}{% for p in "
     "m.content %}{{ p.text }}{% endfor %}{% endif %};{% endfor %}",
     "{\"messages\": [{\"content\": \"a\"}, {\"content\": [{\"type\": \"text\", \"text\": \"b\"}, "
     "{\"type\": \"text\", \"text\": \"c\"}]}]}",
     "a;bc;"},
    {"{{ '%s' % 'x' }}|{{ '%s and %s' % ('a', 'b') }}|{{ '%(k)s' % {'k': 1} }}|{{ '%d%%' % 50 "
     "}}|{{ '%r' % 'q' }}|{{ '%5s|%-5s|%.2s' % ('ab', 'cd', 'xyz') }}|{{ '%+d %05d' % (3, -42) }}",
     "{}", "x|a and b|1|50%|'q'|   ab|cd   |xy|+3 -0042"},
    {"{{ x }}|{{ x.a }}|{{ x['a'] }}|{{ x is mapping }}",
     "{\"x\": {\"a\": [1, {\"b\": null}], \"c\": true, \"d\": 1.0, \"e\": 10000000000000000}}",
     "{'a': [1, {'b': None}], 'c': True, 'd': 1.0, 'e': 10000000000000000}|[1, {'b': None}]|[1, "
     "{'b': None}]|True"},
    {"{{ 'a\\u00e9\\U0001F600\\x41\\101\\q' }}|{{ 'abc' 'def' }}|{{ \"a\\\"b\" }}", "{}",
     "a\xc3\xa9"
     "\xf0\x9f\x98\x80"
     "AA\\q|abcdef|a\"b"},
    {"{%- set x -%}\n  hi\n{%- endset -%}[{{ x }}]{%- macro m() -%}  M  {%- endmacro -%}[{{ m() "
     "}}]",
     "{}", "[hi][M]"},
    {"{% for i in range(3) %}{% for j in range(2) %}{{ loop.index }}{{ loop.depth }}{% endfor %}{{ "
     "loop.index }}{{ loop.depth }}|{% endfor %}",
     "{}", "112111|112121|112131|"},
    {"{{ [1, [2, 3]] | tojson(indent=1) }}|{{ {'a': [1, {'b': 2}]} | tojson(indent='\\t') }}|{{ "
     "{'a': 1} | tojson(separators=(',', ':')) }}",
     "{}",
     "[\n 1,\n [\n  2,\n  3\n ]\n]|{\n\t\"a\": [\n\t\t1,\n\t\t{\n\t\t\t\"b\": "
     "2\n\t\t}\n\t]\n}|{\"a\":1}"},
    {"  {% if true %}\n  x\n  {% endif %}\n  {#- c #}\n  {{ 'v' }}\n{%- if true %}  y{% endif %}\n "
     "  \t{% if true %}z{% endif %}  \n",
     "{}", "  x\n  v  yz  "},
    {"{% if true %}a{% endif %}   {% if true %}b{% endif %}\n{% if false %}no{% else %}\n  "
     "else\n{% endif %}\n{#\nmulti\n#}\nend\n\n",
     "{}", "a   b  else\nend\n"},
    {"{{ 'x' }}\n{{- 'y' }}\n{{ 'z' -}}\n\n  w\n{% set q = 1 -%}\n   after\n{%- set q = 2 %}\n",
     "{}", "xy\nzw\nafter"},
    {"{% for i in [1,2] -%}\n  item {{ i }}\n{% endfor -%}\ndone", "{}", "item 1\nitem 2\ndone"},
    {"\t{% for i in [1,2] %}\n\t\t{{ i }}\n\t{% endfor %}\n", "{}", "\t\t1\n\t\t2\n"},
    {"{{ (1, 2)[0] }}|{{ [[1]][0][0] }}|{{ {'a': {'b': 'c'}}.a.b }}|{{ 'x'[0] }}|{{ 'h\xc3\xa9"
     "llo'[1] }}|{{ 'abc'[-1] }}",
     "{}",
     "1|1|c|x|\xc3\xa9"
     "|c"},
    {"{% set x = {'k': 'v'} %}{{ x | string }}|{{ x.k | upper }}|{{ [x] | map(attribute='k') | "
     "first }}",
     "{}", "{'k': 'v'}|V|v"},
    {"{{ true | string | lower }}|{{ none | string }}|{{ 1.0 | string }}|{{ [1.0] | string }}|{{ "
     "'a' | list }}|{{ {'a':1} | list }}",
     "{}", "true|None|1.0|[1.0]|['a']|['a']"},
    {"{{ x | join(', ') }}|{{ x | join }}|{{ [1, 'a', none] | join('-') }}|{{ "
     "[{'n':'a'},{'n':'b'}] | join(',', attribute='n') }}",
     "{\"x\": [\"a\", \"b\"]}", "a, b|ab|1-a-None|a,b"},
    {"{{ ['a', 'b'] | tojson }}|{{ ('a', 'b') | tojson }}|{{ {1: 2, true: 3, none: 4} | tojson }}",
     "{}", "[\"a\", \"b\"]|[\"a\", \"b\"]|{\"1\": 3, \"null\": 4}"},
    {"{% set n = none %}{{ n.attr is defined }}|{{ n['x'] is defined }}", "{}", "False|False"},
    {"{{ 'abc' | replace('', '-') }}|{{ 'aXbXc' | replace('X', '') }}|{{ 'a.b.c'.split('.', 1) "
     "}}|{{ '  a  b  '.split(none, 1) }}|{{ 'a b c'.rsplit() }}|{{ ''.split() }}|{{ ''.split(',') "
     "}}",
     "{}", "-a-b-c-|abc|['a', 'b.c']|['a', 'b  ']|['a', 'b', 'c']|[]|['']"},
    {"{{ 'hello'[1:-1:2] }}|{{ [0,1,2,3,4,5,6][-3::-2] }}|{{ 'abc'[::-2] }}|{{ 'abc'[-100:100] "
     "}}|{{ [1,2,3][:-5] }}",
     "{}", "el|[4, 2, 0]|ca|abc|[]"},
    {"{{ '  a  b  c '.split(none, 1) }}|{{ '  a  b  c '.rsplit(none, 1) }}|{{ ' a b '.rsplit(none, "
     "5) }}|{{ 'a,b,c'.rsplit(',') }}|{{ ',a,'.split(',') }}",
     "{}", "['a', 'b  c ']|['  a  b', 'c']|['a', 'b']|['a', 'b', 'c']|['', 'a', '']"},
    {"{{ '%s' | format([1]) }}|{{ 'x' is sequence }}|{{ u is iterable }}|{{ u is sequence }}|{{ {} "
     "is sequence }}|{{ u | list }}|{{ u | join }}|{{ u | string }}|{{ u | trim }}|{{ u | upper }}",
     "{}", "[1]|True|True|True|True|[]||||"},
    {"{{ msgs | selectattr('role', 'in', ['user', 'assistant']) | map(attribute='role') | "
     "join(',') }}|{{ (msgs | last).role }}|{% for m in msgs %}{{ loop.previtem.role if "
     "loop.previtem is defined else '-' }}{% endfor %}",
     "{\"msgs\": [{\"role\": \"system\"}, {\"role\": \"user\"}, {\"role\": \"assistant\"}]}",
     "user,assistant|assistant|-systemuser"},
    {"{{ '%s' % none }}|{{ d | join(',') }}|{{ [true, none] | string }}|{% for k, v in d | "
     "dictsort %}{{ k }}{{ v }}{% endfor %}|{{ '\xc3\xa9"
     "\xf0\x9f\x98\x80"
     "' | tojson }}",
     "{\"d\": {\"b\": 1, \"a\": 2}}",
     "None|b,a|[True, None]|a2b1|\"\xc3\xa9"
     "\xf0\x9f\x98\x80"
     "\""},
    {"{% macro outer() %}{% macro inner(x) %}<{{ x }}{{ g }}>{% endmacro %}{{ inner(1) }}{% set "
     "loc = 5 %}{{ loc }}{% endmacro %}{% set g = 'G' %}{{ outer() }}{{ loc is defined }}",
     "{}", "<1G>5False"},
    {"{% macro m(a=g) %}{{ a }}{% endmacro %}{% set g = 7 %}{{ m() }}|{{ namespace({'a': 1}).a "
     "}}|{{ u | default('a') | upper }}|{{ [1,2,3] | map('string') | join(', ') }}|{{ 'a' if x is "
     "defined else 'b' }}",
     "{}", "7|1|A|1, 2, 3|b"},
    {"{%- for tool in tools if tool.type == 'function' -%}{{ tool.name }}{{ loop.length }}{%- "
     "endfor -%}",
     "{\"tools\": [{\"type\": \"function\", \"name\": \"a\"}, {\"type\": \"x\", \"name\": \"b\"}, "
     "{\"type\": \"function\", \"name\": \"c\"}]}",
     "a2c2"},
    {"{% set x = [] %}{% for i in range(3) %}{% set x = x + [i] %}{{ x }}{% endfor %}{{ x }}|{{ "
     "range(3) | reverse | list }}|{{ [{'a':2},{'a':1}] | sort(attribute='a') | first }}|{{ {'a': "
     "'x'} | tojson | safe }}",
     "{}", "[0][1][2][]|[2, 1, 0]|{'a': 1}|{\"a\": \"x\"}"},
    {"{{ f(1, 2,) if false else [1, 2,] }}|{{ {'a': 1,} }}|{{ 10 | string | length }}|{{ true is "
     "sameas true }}|{% for i in range(3) %}{{ loop.cycle('odd', 'even') }}{% endfor %}",
     "{}", "[1, 2]|{'a': 1}|2|True|oddevenodd"},
    {"{% macro m() %}{{ caller is defined }}{{ varargs | length }}{{ kwargs.x }}{% endmacro %}{{ "
     "m(1, 2, x=3) }}|{{ 'abcde' | batch(2) | list }}|{{ 'a\nb' }}|{{ dict(a=1) | items | list }}",
     "{}", "False23|[['a', 'b'], ['c', 'd'], ['e']]|a\nb|[('a', 1)]"},
    {"{{ -7.5 // 2 }}|{{ 3 * 1.5 }}|{{ 2 ** 0.5 }}|{{ 1 == true }}{{ 0 == false }}{{ 1 in [true] "
     "}}{{ {'a': 1} == {'a': 1.0} }}{{ none is not none }}|{% if '0' %}t{% endif %}|{{ 1e100 }}|{{ "
     "1.0e-10 }}|{{ 5e-324 }}|{{ 1.7976931348623157e308 }}",
     "{}",
     "-4.0|4.5|1.4142135623730951|TrueTrueTrueTrueFalse|t|1e+100|1e-10|5e-324|1.7976931348623157e+"
     "308"},
    {"{{ x | tojson }}|{{ x.a.b }}|{{ x['a']['c'] is defined }}",
     "{\"x\": {\"a\": {\"b\": [1.25, 3, -1e-07, 12345678.9]}}}",
     "{\"a\": {\"b\": [1.25, 3, -1e-07, 12345678.9]}}|[1.25, 3, -1e-07, 12345678.9]|False"},
    {"{% set ns = namespace(items=[]) %}{% for i in range(3) %}{% set ns.items = ns.items + [i * "
     "2] %}{% endfor %}{{ ns.items }}|{{ ns.items | sum }}|{{ ns.items | max }}|{{ ns.items | min "
     "}}",
     "{}", "[0, 2, 4]|6|4|0"},
    {"{%- set system = messages[0].content if messages[0].role == 'system' else '' -%}{{ system | "
     "trim }}|{{ messages[1:] | length }}|{% for m in messages[1:] %}{{ m.role[0] | upper }}{% "
     "endfor %}",
     "{\"messages\": [{\"role\": \"system\", \"content\": \"  sys  \"}, {\"role\": \"user\", "
     "\"content\": \"u\"}, {\"role\": \"assistant\", \"content\": \"a\"}]}",
     "sys|2|UA"},
    {"{{ m.content[0].text }}|{{ m.content | selectattr('type', 'equalto', 'text') | "
     "map(attribute='text') | join(' ') }}|{{ m.content is string }}{{ m.content is sequence }}{{ "
     "m.content is iterable }}",
     "{\"m\": {\"content\": [{\"type\": \"text\", \"text\": \"x\"}, {\"type\": \"image\"}, "
     "{\"type\": \"text\", \"text\": \"y\"}]}}",
     "x|x y|FalseTrueTrue"},
    {"{{ 'Hello World Foo'.split(' ')[1:] | join('_') | lower }}|{{ ('a', 'b') | join }}|{{ 'a "
     "b'.split() | length }}|{{ 'x'.join('abc') }}|{{ '{0}/{1}'.format(1, 'b') }}",
     "{}", "world_foo|ab|2|axbxc|1/b"},
    {"{% set d = {} %}{% set _ = d.update({'k': 1}) %}{{ d }}|{% set l = [3, 1] %}{% set _ = "
     "l.extend([2]) %}{{ l }}{{ l | sort }}{{ l }}|{{ l.index(1) }}|{{ l.count(3) }}",
     "{}", "{'k': 1}|[3, 1, 2][1, 2, 3][3, 1, 2]|1|1"},
    {"a\n{%- if true %}\n  b\n{%- endif %}\nc\n{% for i in [1, 2] %}\n  - {{ i }}\n{% endfor %}\nd",
     "{}", "a  bc\n  - 1\n  - 2\nd"},
    {"{% if x %}A{% elif y %}B{% elif z %}C{% else %}D{% endif %}", "{\"y\": 1}", "B"},
    {"{{ tools | tojson(indent=4) }}",
     "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": "
     "{\"type\": \"object\", \"properties\": {}, \"required\": []}}}]}",
     "[\n    {\n        \"type\": \"function\",\n        \"function\": {\n            \"name\": "
     "\"f\",\n            \"parameters\": {\n                \"type\": \"object\",\n               "
     " \"properties\": {},\n                \"required\": []\n            }\n        }\n    }\n]"},
    {"[{{ 'a\\n' | indent(2, blank=true) }}]|[{{ 'a\\nb\\n' | indent(2) }}]|[{{ '' | indent "
     "}}]|[{{ 'x\\n\\ny' | indent('> ', true) }}]|{{ 5 | round }}|{{ 5 | round(1) }}|{{ 2.675 | "
     "round(2) }}|{{ 0.5 | round }}|{{ 1.5 | round }}|{{ 7 | round(0, 'floor') }}",
     "{}", "[a\n  ]|[a\n  b\n]|[]|[> x\n\n> y]|5|5|2.67|0.0|2.0|7.0"},
    {"{{ '0x1A' | int }}|{{ '0x1A' | int(base=16) }}|{{ ' 12 ' | int }}|{{ '1e3' | int }}|{{ 'inf' "
     "| int }}|{{ 'nan' | float }}|{{ '1_000' | int }}|{{ '-3.9' | int }}|{{ 'abc' | float }}|{{ "
     "'0x10' | float }}|{{ ' 2.5 ' | float }}|{{ true | int }}|{{ none | int }}",
     "{}", "0|26|12|1000|0|nan|1000|-3|0.0|0.0|2.5|1|0"},
};

/* Templates that Python Jinja2 rejects at render time (it raised the error in the comment). */
static const struct py_case PY_ERRORS[] = {
    {"{{ u.attr }}", "{}", NULL},  /* UndefinedError("'u' is undefined") */
    {"{{ 'a' + 1 }}", "{}", NULL}, /* TypeError('can only concatenate str (not "int") to str') */
    {"{{ none + 1 }}", "{}",
     NULL}, /* TypeError("unsupported operand type(s) for +: 'NoneType' and 'int'") */
    {"{{ u() }}", "{}", NULL},                    /* UndefinedError("'u' is undefined") */
    {"{% for x in 5 %}{% endfor %}", "{}", NULL}, /* TypeError("'int' object is not iterable") */
    {"{{ 1 / 0 }}", "{}", NULL},                  /* ZeroDivisionError('division by zero') */
    {"{{ x | nofilter }}", "{}", NULL}, /* TemplateAssertionError("No filter named 'nofilter'.") */
    {"{{ u['a'] }}", "{}", NULL},       /* UndefinedError("'u' is undefined") */
    {"{{ 1 < 'a' }}", "{}",
     NULL}, /* TypeError("'<' not supported between instances of 'int' and 'str'") */
    {"{% set a, b = [1] %}", "{}",
     NULL}, /* ValueError('not enough values to unpack (expected 2, got 1)') */
    {"{{ 'abc'.nomethod() }}", "{}",
     NULL},                      /* UndefinedError("'str object' has no attribute 'nomethod'") */
    {"{{ u + 1 }}", "{}", NULL}, /* UndefinedError("'u' is undefined") */
    {"{{ -u }}", "{}", NULL},    /* UndefinedError("'u' is undefined") */
    {"{% for a, b in [1, 2] %}{% endfor %}", "{}",
     NULL}, /* TypeError('cannot unpack non-iterable int object') */
    {"{{ 5 in 'abc' }}", "{}",
     NULL}, /* TypeError("'in <string>' requires string as left operand, not int") */
    {"{{ 1 in 5 }}", "{}", NULL},   /* TypeError("argument of type 'int' is not iterable") */
    {"{{ {[1]: 2} }}", "{}", NULL}, /* TypeError("unhashable type: 'list'") */
    {"{{ -1 | abs }}|{{ - 2 | abs }}|{{ not true and false }}|{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ "
     "2 * 3 ~ 4 }}|{{ 1 ~ 2 + 3 }}",
     "{}", NULL}, /* TypeError('can only concatenate str (not "int") to str') */
};

/* ---- helpers ---------------------------------------------------------------------------- */

/* Render src with the JSON context ctx; returns the output (malloc'd) or NULL with *rc / err. */
static char *render_opt(const char *src, const char *ctx, const struct inf_template_options *o,
                        inf_status *rc, struct inf_error *err)
{
    struct inf_template *t = NULL;
    char *out = NULL;
    size_t len = 0;
    inf_error_clear(err);
    *rc = inf_template_parse(src, strlen(src), &t, err);
    if (*rc == INF_OK)
        *rc = inf_template_render_json(t, ctx, ctx ? strlen(ctx) : 0, o, &out, &len, err);
    inf_template_free(t);
    return out;
}

static char *render(const char *src, const char *ctx, inf_status *rc, struct inf_error *err)
{
    struct inf_template_options o = {.fixed_now = true, .now = FIXED_NOW};
    return render_opt(src, ctx, &o, rc, err);
}

/* Expect src to render to want. */
#define T_RENDER(src, ctx, want)                                                                   \
    do {                                                                                           \
        inf_status t__rc;                                                                          \
        struct inf_error t__err;                                                                   \
        char *t__out = render((src), (ctx), &t__rc, &t__err);                                      \
        if (t__rc != INF_OK)                                                                       \
            T__FAIL("rendering %s failed: %s", (src), t__err.msg);                                 \
        else                                                                                       \
            T_EQ_STR(t__out, (want));                                                              \
        free(t__out);                                                                              \
    } while (0)

/* Expect src to fail with status code and a message containing needle. */
#define T_RENDER_FAILS(src, ctx, code, needle)                                                     \
    do {                                                                                           \
        inf_status t__rc;                                                                          \
        struct inf_error t__err;                                                                   \
        char *t__out = render((src), (ctx), &t__rc, &t__err);                                      \
        T_EQ_INT(t__rc, (code));                                                                   \
        if (t__rc != INF_OK)                                                                       \
            T_CONTAINS(t__err.msg, (needle));                                                      \
        free(t__out);                                                                              \
    } while (0)

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        if (buf) {
            buf[n] = '\0';
            *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

static const char *shared_dir(void)
{
    static char dir[1024];
    const char *s = getenv("INFERNO_SHARED");
    snprintf(dir, sizeof(dir), "%s/testdata/chat-templates", s && *s ? s : "../shared");
    return dir;
}

static bool have_shared(void)
{
    char path[1200];
    FILE *f;
    snprintf(path, sizeof(path), "%s/manifest.json", shared_dir());
    f = fopen(path, "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

/* ---- the reference corpus --------------------------------------------------------------- */

/* The context of a case, the way the oracle rendered it (tools absent when null). */
static json_t *case_context(const json_t *c)
{
    json_t *ctx = json_object();
    json_object_set(ctx, "messages", json_object_get(c, "messages"));
    json_object_set(ctx, "add_generation_prompt", json_object_get(c, "add_generation_prompt"));
    json_object_set(ctx, "bos_token", json_object_get(c, "bos_token"));
    json_object_set(ctx, "eos_token", json_object_get(c, "eos_token"));
    if (!json_is_null(json_object_get(c, "tools")))
        json_object_set(ctx, "tools", json_object_get(c, "tools"));
    return ctx;
}

/* Offset of the first differing byte. */
static size_t first_diff(const char *a, size_t al, const char *b, size_t bl)
{
    size_t i = 0;
    while (i < al && i < bl && a[i] == b[i])
        i++;
    return i;
}

static void test_reference_corpus(void)
{
    char path[1200];
    int total = 0, passed = 0;

    snprintf(path, sizeof(path), "%s/manifest.json", shared_dir());
    json_t *manifest = json_load_file(path, 0, NULL);
    T_OK(json_is_object(manifest));
    if (!manifest)
        return;
    const char *name;
    json_t *entry;
    json_object_foreach(manifest, name, entry)
    {
        size_t len = 0;
        int n_cases = 0, n_pass = 0;
        snprintf(path, sizeof(path), "%s/%s.jinja", shared_dir(), name);
        char *src = slurp(path, &len);
        snprintf(path, sizeof(path), "%s/%s.cases.json", shared_dir(), name);
        json_t *cases = json_load_file(path, 0, NULL);
        struct inf_template *t = NULL;
        struct inf_error err = {0};
        T_OK(src != NULL && json_is_array(cases));
        if (!src || !cases) {
            free(src);
            json_decref(cases);
            continue;
        }
        if (inf_template_parse(src, len, &t, &err) != INF_OK)
            T__FAIL("%s: parse error: %s", name, err.msg);
        size_t i;
        json_t *c;
        json_array_foreach(cases, i, c)
        {
            const char *id = json_string_value(json_object_get(c, "id"));
            const char *want = json_string_value(json_object_get(c, "expected"));
            const char *want_err = json_string_value(json_object_get(c, "expected_error"));
            json_t *ctx = case_context(c);
            struct inf_template_options o = {.fixed_now = true, .now = FIXED_NOW};
            char *out = NULL;
            size_t out_len = 0;
            inf_status rc = t ? inf_template_render(t, ctx, &o, &out, &out_len, &err) : INF_EPARSE;
            n_cases++;
            if (want_err) {
                if (rc != INF_OK) {
                    n_pass++;
                    t__passed++;
                } else {
                    T__FAIL("%s %s: rendered, but the case expects the error '%s'", name, id,
                            want_err);
                }
            } else if (rc != INF_OK) {
                T__FAIL("%s %s: %s", name, id, err.msg);
            } else if (!want || out_len != strlen(want) || memcmp(out, want, out_len) != 0) {
                size_t d = want ? first_diff(out, out_len, want, strlen(want)) : 0;
                size_t from = d > 40 ? d - 40 : 0;
                T__FAIL("%s %s: output differs at byte %zu (lengths %zu and %zu):\n"
                        "  got:      \"%.80s\"\n  expected: \"%.80s\"",
                        name, id, d, out_len, want ? strlen(want) : 0,
                        from <= out_len ? out + from : "",
                        want && from <= strlen(want) ? want + from : "");
            } else {
                n_pass++;
                t__passed++;
            }
            free(out);
            json_decref(ctx);
        }
        printf("  %-50s %3d/%d\n", name, n_pass, n_cases);
        total += n_cases;
        passed += n_pass;
        inf_template_free(t);
        free(src);
        json_decref(cases);
    }
    printf("%d/%d cases passed\n", passed, total);
    T_EQ_INT(total, 434);
    json_decref(manifest);
}

/* ---- language features ------------------------------------------------------------------ */

static void test_against_python(void)
{
    for (size_t i = 0; i < sizeof(PY_CASES) / sizeof(PY_CASES[0]); i++)
        T_RENDER(PY_CASES[i].tpl, PY_CASES[i].ctx, PY_CASES[i].expected);
    for (size_t i = 0; i < sizeof(PY_ERRORS) / sizeof(PY_ERRORS[0]); i++) {
        inf_status rc;
        struct inf_error err;
        char *out = render(PY_ERRORS[i].tpl, PY_ERRORS[i].ctx, &rc, &err);
        if (rc == INF_OK)
            T__FAIL("%s rendered \"%s\"; Python Jinja2 raises", PY_ERRORS[i].tpl, out);
        else
            T_CONTAINS(err.msg, "line 1, column ");
        free(out);
    }
}

static void test_host_functions(void)
{
    /* raise_exception: the message is exactly the template's */
    T_RENDER_FAILS("a{{ raise_exception('System role not supported') }}b", NULL, INF_EINVAL,
                   "System role not supported");
    inf_status rc;
    struct inf_error err;
    free(render("{{ raise_exception('x' ~ 1) }}", NULL, &rc, &err));
    T_EQ_STR(err.msg, "x1");
    /* strftime_now with the fixed clock */
    T_RENDER("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|"
             "{{ strftime_now('%A %B %-d %j %I%p %y %%') }}",
             NULL, "26 Nov 2026|2026-11-26 12:00:00|Thursday November 26 330 12PM 26 %");
    /* the transformers generation tag renders its body */
    T_RENDER("{% generation %}a{{ 1 }}{% endgeneration %}b", NULL, "a1b");
    /* from_json (llama.cpp's extension, used by DeepSeek templates) */
    T_RENDER("{% set a = '{\"x\": [1, 2.5, null]}' | from_json %}{{ a.x[1] }}{{ a | tojson }}",
             NULL, "2.5{\"x\": [1, 2.5, null]}");
    /* list.append / dict.update mutate (llama.cpp allows them; transformers' sandbox does not) */
    T_RENDER("{% set l = [] %}{% do l.append(1) %}{{ l }}", NULL, "[1]");
    /* variables from the context, absent ones undefined */
    T_RENDER("{{ bos_token }}{{ messages | length }}{{ tools is defined }}",
             "{\"bos_token\": \"<s>\", \"messages\": [{}]}", "<s>1False");
    /* a context variable shadows a global function */
    T_RENDER("{{ range }}", "{\"range\": 5}", "5");
}

static void test_whitespace(void)
{
    /* one trailing newline of the source is dropped, only one */
    T_RENDER("a\n", NULL, "a");
    T_RENDER("a\n\n", NULL, "a\n");
    T_RENDER("a\r\nb\r\n", NULL, "a\nb");
    /* trim_blocks and lstrip_blocks */
    T_RENDER("{% if true %}\nx\n{% endif %}\ny", NULL, "x\ny");
    T_RENDER("  {% if true %}x{% endif %}", NULL, "x");
    T_RENDER("  {%+ if true %}x{% endif %}", NULL, "  x");
    T_RENDER("{% if true +%}\nx{% endif %}", NULL, "\nx");
    T_RENDER("  {{ 'v' }}\n", NULL, "  v");
    T_RENDER("a {#- c -#} b", NULL, "ab");
    T_RENDER("a  {{- 'b' -}}  \n c", NULL, "abc");
    /* a tag's end is found by tokens: strings may hold "%}" */
    T_RENDER("{{ '%}' ~ \"}}\" }}", NULL, "%}}}");
    T_RENDER("{{ {'a': {'b': 1}} }}", NULL, "{'a': {'b': 1}}");
}

static void test_chat_api(void)
{
    struct inf_chat_params p = {
        .messages_json = "[{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", "
                         "\"content\": [{\"type\": \"text\", \"text\": \"Hello\"}]}]",
        .add_generation_prompt = true,
    };
    struct inf_error err = {0};
    char *out = NULL;
    size_t len = 0;
    /* no template: ChatML, and a warning in the log */
    FILE *log = tmpfile();
    inf_log_set_stream(log);
    T_EQ_INT(inf_chat_apply_template(NULL, 0, &p, NULL, &out, &len, &err), INF_OK);
    inf_log_set_stream(NULL);
    if (log) {
        char line[256] = "";
        rewind(log);
        size_t got = fread(line, 1, sizeof(line) - 1, log);
        line[got] = '\0';
        T_CONTAINS(line, "no chat template; using ChatML");
        fclose(log);
    }
    T_EQ_STR(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"
                  "<|im_start|>assistant\n");
    T_EQ_U64(len, strlen(out ? out : ""));
    free(out);
    const char *tpl = "{{ bos_token }}{% for m in messages %}{{ m.role }};{% endfor %}"
                      "{{ tools | length }}{{ enable_thinking }}{{ eos_token }}";
    p.bos_token = "<s>";
    p.eos_token = "</s>";
    p.tools_json = "[{\"type\": \"function\"}]";
    p.extra_json = "{\"enable_thinking\": false, \"bos_token\": \"ignored\"}";
    T_EQ_INT(inf_chat_apply_template(tpl, strlen(tpl), &p, NULL, &out, &len, &err), INF_OK);
    T_EQ_STR(out, "<s>user;assistant;1False</s>");
    free(out);
    p.messages_json = "{\"not\": \"a list\"}";
    T_EQ_INT(inf_chat_apply_template(tpl, strlen(tpl), &p, NULL, &out, &len, &err), INF_EINVAL);
    T_OK(out == NULL);
    p.messages_json = "[";
    T_EQ_INT(inf_chat_apply_template(tpl, strlen(tpl), &p, NULL, &out, &len, &err), INF_EPARSE);
    /* the default template parses and is stable */
    struct inf_template *t = NULL;
    T_EQ_INT(inf_template_parse(inf_template_default_chatml(),
                                strlen(inf_template_default_chatml()), &t, &err),
             INF_OK);
    inf_template_free(t);
    inf_template_free(NULL);
    /* output may contain NUL bytes; the length says where it ends */
    t = NULL;
    T_EQ_INT(inf_template_parse("a{{ x }}b", 9, &t, &err), INF_OK);
    T_EQ_INT(inf_template_render_json(t, "{\"x\": \"\\u0000\"}", 15, NULL, &out, &len, &err),
             INF_OK);
    T_EQ_U64(len, 3);
    T_OK(out && memcmp(out, "a\0b", 3) == 0);
    free(out);
    T_EQ_INT(inf_template_render_json(t, "[1]", 3, NULL, &out, &len, &err), INF_EINVAL);
    T_EQ_INT(inf_template_render_json(t, "{", 1, NULL, &out, &len, &err), INF_EPARSE);
    inf_template_free(t);
}

/* ---- errors ----------------------------------------------------------------------------- */

static void expect_parse_error(const char *src, const char *msg)
{
    struct inf_template *t = NULL;
    struct inf_error err = {0};
    inf_status rc = inf_template_parse(src, strlen(src), &t, &err);
    T_EQ_INT(rc, INF_EPARSE);
    T_OK(t == NULL);
    T_EQ_STR(err.msg, msg);
    inf_template_free(t);
}

/* ---- untrusted text ------------------------------------------------------------------------ */

/* Render src over ctx_json with the members named in untrusted[] untrusted; check the text and
 * the mask of untrusted bytes ('U' untrusted, '.' trusted). */
static void check_taint(const char *src, const char *ctx_json, const char *const *untrusted,
                        size_t n_untrusted, const char *want_text, const char *want_mask)
{
    struct inf_template *t = NULL;
    struct inf_error err = {0};
    struct inf_rendered rd;
    json_error_t je;
    json_t *ctx = json_loads(ctx_json, 0, &je);
    if (!ctx || inf_template_parse(src, strlen(src), &t, &err) != INF_OK) {
        T__FAIL("%s: %s", src, ctx ? inf_error_message(&err) : je.text);
        json_decref(ctx);
        return;
    }
    if (inf_template_render_untrusted(t, ctx, untrusted, n_untrusted, NULL, &rd, &err) != INF_OK) {
        T__FAIL("%s: %s", src, inf_error_message(&err));
    } else {
        char *mask = malloc(rd.len + 1);
        memset(mask, '.', rd.len);
        mask[rd.len] = '\0';
        bool sorted = true;
        for (size_t i = 0; i < rd.n_untrusted; i++) {
            const struct inf_text_span *sp = &rd.untrusted[i];
            sorted = sorted && sp->len > 0 && sp->off + sp->len <= rd.len &&
                     (i == 0 || sp->off > rd.untrusted[i - 1].off + rd.untrusted[i - 1].len);
            for (size_t k = sp->off; k < sp->off + sp->len && k < rd.len; k++)
                mask[k] = 'U';
        }
        T_OK(sorted);
        T_EQ_STR(rd.text, want_text);
        T_EQ_STR(mask, want_mask);
        /* the plain render gives the same text */
        char *plain = NULL;
        size_t plain_len = 0;
        T_EQ_INT(inf_template_render(t, ctx, NULL, &plain, &plain_len, &err), INF_OK);
        T_OK(plain && plain_len == rd.len && memcmp(plain, rd.text, rd.len) == 0);
        free(plain);
        free(mask);
        inf_rendered_release(&rd);
    }
    inf_template_free(t);
    json_decref(ctx);
}

static void test_untrusted_ranges(void)
{
    static const char *const um[] = {"m", "msgs"};
    const char *ctx = "{\"m\": \"<x>\", \"t\": \"<y>\", \"msgs\": [{\"role\": \"user\", "
                      "\"content\": \"c\"}]}";
#define TAINT(src, text, mask) check_taint(src, ctx, um, 2, text, mask)
    /* exact: output, concatenation, captures, macros, join, strip, slicing, iteration */
    TAINT("A{{ m }}B", "A<x>B", ".UUU.");
    TAINT("{{ '<' ~ m ~ '>' }}", "<<x>>", ".UUU.");
    TAINT("{{ t + m }}", "<y><x>", "...UUU");
    TAINT("{{ m ~ 1 }}", "<x>1", "UUU.");
    TAINT("{% set c %}[{{ m }}]{% endset %}{{ c | trim }}", "[<x>]", ".UUU.");
    TAINT("{% set c %}  [{{ m }}]  {% endset %}{{ c.strip() }}|{{ c.lstrip() }}", "[<x>]|[<x>]  ",
          ".UUU...UUU...");
    TAINT("{{ (' ' ~ m ~ ' ').strip() }}", "<x>", "UUU");
    TAINT("{{ m[1:] }}{{ m[0] }}{{ t[0] }}", "x><<", "UUU.");
    TAINT("{% for ch in m %}{{ ch }}-{% endfor %}", "<-x->-", "U.U.U.");
    TAINT("{{ [t, m] | join('|') }}", "<y>|<x>", "....UUU");
    TAINT("{{ '/'.join([m, t]) }}", "<x>/<y>", "UUU....");
    TAINT("{% macro w(s) %}({{ s }}){% endmacro %}{{ w(m) }}", "(<x>)", ".UUU.");
    TAINT("{% for x in msgs %}<{{ x.role }}>{{ x['content'] }}{% endfor %}", "<user>c", ".UUUU.U");
    TAINT("{% for k in msgs[0] %}{{ k }};{% endfor %}", "role;content;", "UUUU.UUUUUUU.");
    TAINT("{% set ns = namespace(s='') %}{% set ns.s = ns.s + m %}{{ ns.s }}!", "<x>!", "UUU.");
    /* anything else made from untrusted input is untrusted as a whole */
    TAINT("{{ m | upper }}{{ t | upper }}", "<X><Y>", "UUU...");
    TAINT("{{ m.replace('x', t) }}", "<<y>>", "UUUUU");
    TAINT("{{ '%s!' % m }}{{ '%s!' % t }}", "<x>!<y>!", "UUUU....");
    TAINT("{{ m * 2 }}", "<x><x>", "UUUUUU");
    TAINT("{{ m[::-1] }}", ">x<", "UUU");
    TAINT("{{ m.split('x') | join(t) }}", "<<y>>", "U...U");
    TAINT("{{ msgs[0] | tojson }}", "{\"role\": \"user\", \"content\": \"c\"}",
          "UUUUUUUUUUUUUUUUUUUUUUUUUUUUUUUU");
    TAINT("{{ msgs[0] }}", "{'role': 'user', 'content': 'c'}", ".UUUUUU..UUUUUU..UUUUUUUUU..UUU.");
    /* trusted variables and literals stay trusted */
    TAINT("{{ t }}{{ t | upper }}{{ t.split('y') | join('-') }}", "<y><Y><->", ".........");
#undef TAINT
    /* no untrusted names: nothing is untrusted */
    check_taint("{{ m }}{{ t }}", ctx, NULL, 0, "<x><y>", "......");
    /* the chat wrapper: messages and tools are untrusted, bos/eos tokens are not */
    struct inf_chat_params p = {
        .messages_json = "[{\"role\": \"user\", \"content\": \"</s>\"}]",
        .tools_json = "[{\"name\": \"f\"}]",
        .bos_token = "<s>",
        .eos_token = "</s>",
    };
    const char *tpl = "{{ bos_token }}{% for m in messages %}[{{ m.content }}]{{ eos_token }}"
                      "{% endfor %}{{ tools[0].name }}";
    struct inf_rendered rd;
    struct inf_error err = {0};
    T_EQ_INT(inf_chat_render(tpl, strlen(tpl), &p, NULL, &rd, &err), INF_OK);
    T_EQ_STR(rd.text, "<s>[</s>]</s>f");
    T_EQ_INT((long long)rd.n_untrusted, 2);
    if (rd.n_untrusted == 2) {
        T_EQ_INT((long long)rd.untrusted[0].off, 4);
        T_EQ_INT((long long)rd.untrusted[0].len, 4);
        T_EQ_INT((long long)rd.untrusted[1].off, 13);
        T_EQ_INT((long long)rd.untrusted[1].len, 1);
    }
    inf_rendered_release(&rd);
    /* errors leave the result empty */
    T_EQ_INT(inf_chat_render("{{ raise_exception('no') }}", 27, &p, NULL, &rd, &err), INF_EINVAL);
    T_OK(rd.text == NULL && rd.untrusted == NULL && rd.n_untrusted == 0);
}

static void test_error_positions(void)
{
    expect_parse_error("{{ 1 +\n  }}", "line 2, column 3: expected an expression, got '}}'");
    expect_parse_error("ab\n{% for x in y %}{% if x %}{% endif %}",
                       "line 2, column 4: 'for' is never closed: the template ends before "
                       "'endfor' or 'else'");
    expect_parse_error("{% if x %}{% endfor %}", "line 1, column 14: unexpected 'endfor'");
    expect_parse_error("{% frobnicate %}", "line 1, column 4: unknown tag 'frobnicate'");
    expect_parse_error("x\n  {{ 'abc }}", "line 2, column 6: unterminated string literal");
    expect_parse_error("{{ a ) }}", "line 1, column 6: unexpected ')'");
    expect_parse_error("{# never closed", "line 1, column 1: unclosed comment");
    expect_parse_error("{% break %}", "line 1, column 4: 'break' outside of a loop");
    expect_parse_error("{{ x", "line 1, column 1: unexpected end of template: missing '}}'");
    expect_parse_error("\xc3\xa9\xc3\xa9 {{ x $ }}", "line 1, column 9: unexpected character '$'");
    expect_parse_error("ok\n\xff", "line 2, column 1: the template is not valid UTF-8");
    expect_parse_error("{% for x in y recursive %}{% endfor %}",
                       "line 1, column 15: recursive loops are not supported");
    expect_parse_error("{% include 'x' %}", "line 1, column 4: the 'include' tag is not "
                                            "supported");

    T_RENDER_FAILS("line one\n{% for m in messages %}\n  {{ m.content.text.x }}{% endfor %}",
                   "{\"messages\": [{\"content\": {}}]}", INF_ETYPE,
                   "line 3, column 21: 'text' is undefined");
    T_RENDER_FAILS("{{ 'a' }}\n\n    {{ 1 + 'a' }}", NULL, INF_ETYPE,
                   "line 3, column 10: unsupported operand type(s) for +: 'int' and 'str'");
    T_RENDER_FAILS("{{ x | frob }}", NULL, INF_ETYPE, "line 1, column 8: no filter named 'frob'");
    T_RENDER_FAILS("{{ x is frob }}", NULL, INF_ETYPE, "line 1, column 9: no test named 'frob'");
    T_RENDER_FAILS("{{ nothing() }}", NULL, INF_ETYPE, "line 1, column 4: 'nothing' is undefined");
    T_RENDER_FAILS("{{ (1).x() }}", NULL, INF_ETYPE, "'x' is undefined");
    T_RENDER_FAILS("{% set ns = 1 %}{% set ns.a = 2 %}", NULL, INF_ETYPE,
                   "cannot assign attribute on non-namespace object");
}

/* ---- limits ----------------------------------------------------------------------------- */

static void test_limits(void)
{
    /* loops: a billion iterations stop at the iteration limit */
    T_RENDER_FAILS("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                   "{% endfor %}",
                   NULL, INF_ELIMIT, "loop iterations");
    T_RENDER_FAILS("{{ range(100000000) | length }}", NULL, INF_ELIMIT, "range()");
    /* runaway recursion */
    T_RENDER_FAILS("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, INF_ELIMIT,
                   "macro calls nested more than 64 deep");
    /* huge output */
    T_RENDER_FAILS("{{ 'x' * 100000000 }}", NULL, INF_ELIMIT, "output limit");
    T_RENDER_FAILS("{% set s = 'x' * 1000000 %}{% for i in range(100) %}{{ s }}{% endfor %}", NULL,
                   INF_ELIMIT, "the output is larger than the limit");
    /* memory: doubling a string */
    T_RENDER_FAILS("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}"
                   "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                   NULL, INF_ELIMIT, "limit");
    T_RENDER_FAILS("{% set ns = namespace(l=[0]) %}{% for i in range(100000) %}"
                   "{% set ns.l = ns.l + ns.l[:1000] %}{% endfor %}",
                   NULL, INF_ELIMIT, "memory");
    /* steps: a long loop of cheap work */
    struct inf_template_options o = {.max_steps = 10000};
    inf_status rc;
    struct inf_error err;
    free(render_opt("{% for i in range(100000) %}{{ i }}{% endfor %}", NULL, &o, &rc, &err));
    T_EQ_INT(rc, INF_ELIMIT);
    T_CONTAINS(err.msg, "steps");
    /* smaller custom limits are honoured */
    struct inf_template_options small = {.max_output = 10, .max_depth = 3};
    free(render_opt("{{ 'abcdefghijk' }}", NULL, &small, &rc, &err));
    T_EQ_INT(rc, INF_ELIMIT);
    free(render_opt("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", NULL, &small, &rc, &err));
    T_CONTAINS(err.msg, "more than 3 deep");
    /* self-containing values do not hang printing or comparison */
    T_RENDER_FAILS("{% set l = [] %}{% do l.append(l) %}{{ l }}", NULL, INF_ELIMIT,
                   "nested too deeply");
    T_RENDER("{% set a = [] %}{% do a.append(a) %}{% set b = [] %}{% do b.append(b) %}"
             "{{ a == b }}{{ a == a }}",
             NULL, "FalseTrue");
    /* shared sub-structures (2^40 paths) do not blow up equality or hashing */
    T_RENDER("{% set ns = namespace(t=(1,), u=(1,)) %}{% for i in range(40) %}"
             "{% set ns.t = (ns.t, ns.t) %}{% set ns.u = (ns.u, ns.u) %}{% endfor %}"
             "{% set d = {ns.t: 1} %}{{ d | length }}{{ ns.t == ns.u }}",
             NULL, "1False");
}

static char *repeat_str(const char *unit, size_t times, const char *prefix, const char *suffix)
{
    size_t ul = strlen(unit), pl = strlen(prefix), sl = strlen(suffix);
    char *s = malloc(pl + ul * times + sl + 1);
    if (!s)
        return NULL;
    memcpy(s, prefix, pl);
    for (size_t i = 0; i < times; i++)
        memcpy(s + pl + i * ul, unit, ul);
    memcpy(s + pl + ul * times, suffix, sl + 1);
    return s;
}

static void test_nesting(void)
{
    struct inf_template *t = NULL;
    struct inf_error err = {0};
    inf_status rc;
    char *src, *out;

    /* deeply nested brackets and blocks are refused by the parser */
    src = repeat_str("(", 5000, "{{ ", "1 }}");
    T_EQ_INT(inf_template_parse(src, strlen(src), &t, &err), INF_ELIMIT);
    T_CONTAINS(err.msg, "nested too deeply");
    free(src);
    src = repeat_str("{% if true %}", 5000, "", "");
    T_EQ_INT(inf_template_parse(src, strlen(src), &t, &err), INF_ELIMIT);
    free(src);
    src = repeat_str("not ", 100000, "{{ ", "1 }}");
    T_EQ_INT(inf_template_parse(src, strlen(src), &t, &err), INF_ELIMIT);
    free(src);
    /* a long flat chain parses; rendering it is bounded by the stack guard, not a crash */
    src = repeat_str(" + 1", 200000, "{{ 1", " }}");
    out = render(src, NULL, &rc, &err);
    T_EQ_INT(rc, INF_ELIMIT);
    T_CONTAINS(err.msg, "nested too deeply");
    free(out);
    free(src);
    src = repeat_str(" + 1", 300, "{{ 1", " }}");
    T_RENDER(src, NULL, "301");
    free(src);
    src = repeat_str("|string", 100000, "{{ 1", " }}");
    out = render(src, NULL, &rc, &err);
    T_EQ_INT(rc, INF_ELIMIT);
    free(out);
    free(src);
    /* a long elif chain is fine in both the parser and the renderer */
    src = repeat_str("{% elif false %}x", 50000, "{% if false %}", "{% else %}end{% endif %}");
    T_RENDER(src, NULL, "end");
    free(src);
    /* the source size limit */
    src = repeat_str("x", INF_TEMPLATE_MAX_SOURCE + 1, "", "");
    T_EQ_INT(inf_template_parse(src, strlen(src), &t, &err), INF_ELIMIT);
    free(src);
    /* deep JSON input is refused, not recursed into */
    src = repeat_str("[", 1500, "{\"x\": ", "");
    char *ctx = malloc(strlen(src) + 1600);
    if (ctx) {
        strcpy(ctx, src);
        for (int i = 0; i < 1500; i++)
            strcat(ctx, "]");
        strcat(ctx, "}");
        out = render("{{ x }}", ctx, &rc, &err);
        T_OK(rc != INF_OK);
        free(out);
        free(ctx);
    }
    free(src);
}

/* ---- robustness ------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static const char *const FRAGMENTS[] = {
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "-",
    "+",
    " ",
    "\n",
    "for",
    "in",
    "if",
    "else",
    "elif",
    "endif",
    "endfor",
    "set",
    "endset",
    "macro",
    "endmacro",
    "call",
    "endcall",
    "filter",
    "endfilter",
    "x",
    "messages",
    "loop",
    ".",
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    ":",
    ",",
    "|",
    "tojson",
    "length",
    "'s'",
    "\"q\"",
    "1",
    "2.5",
    "-1",
    "is",
    "not",
    "defined",
    "none",
    "and",
    "or",
    "~",
    "*",
    "**",
    "//",
    "%",
    "==",
    "<",
    "namespace",
    "ns",
    "=",
    "raise_exception",
    "range",
    "caller",
    "break",
    "continue",
    "items()",
    "\xc3\xa9",
    "\xf0\x9f\x98\x80",
    "\\",
};

static char *mutate(const char *src, size_t len, size_t *out_len)
{
    char *s = malloc(len + 64);
    if (!s)
        return NULL;
    memcpy(s, src, len);
    size_t n = len;
    int edits = 1 + (int)(rng() % 4);
    for (int e = 0; e < edits && n > 0; e++) {
        size_t at = (size_t)(rng() % n);
        switch (rng() % 3) {
        case 0: /* delete a span */ {
            size_t k = 1 + (size_t)(rng() % 8);
            if (at + k > n)
                k = n - at;
            memmove(s + at, s + at + k, n - at - k);
            n -= k;
            break;
        }
        case 1: /* overwrite a byte with ASCII */
            s[at] = (char)(0x20 + rng() % 0x5f);
            break;
        default: /* duplicate a byte */
            if (n + 1 < len + 64) {
                memmove(s + at + 1, s + at, n - at);
                n++;
            }
        }
    }
    *out_len = n;
    return s;
}

static void try_render(const char *src, size_t len)
{
    struct inf_template *t = NULL;
    struct inf_error err = {0};
    static const char ctx[] =
        "{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", "
        "\"content\": [{\"type\": \"text\", \"text\": \"u\"}]}, {\"role\": \"assistant\", "
        "\"content\": null, \"tool_calls\": [{\"function\": {\"name\": \"f\", \"arguments\": "
        "{\"a\": 1}}}]}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": "
        "\"f\"}}], \"add_generation_prompt\": true, \"bos_token\": \"<s>\"}";
    struct inf_template_options o = {.max_output = 1 << 16,
                                     .max_steps = 200000,
                                     .max_iterations = 10000,
                                     .max_memory = 16 << 20,
                                     .fixed_now = true,
                                     .now = FIXED_NOW};
    if (inf_template_parse(src, len, &t, &err) == INF_OK) {
        char *out = NULL;
        size_t out_len = 0;
        inf_status rc = inf_template_render_json(t, ctx, sizeof(ctx) - 1, &o, &out, &out_len, &err);
        T_OK((rc == INF_OK) == (out != NULL));
        free(out);
        inf_template_free(t);
    } else {
        T_OK(t == NULL && err.msg[0] != '\0');
    }
}

static void test_garbage(void)
{
    char buf[512];
    /* random token soup */
    for (int i = 0; i < 3000; i++) {
        size_t n = 0, parts = 1 + (size_t)(rng() % 40);
        for (size_t k = 0; k < parts; k++) {
            const char *f = FRAGMENTS[rng() % (sizeof(FRAGMENTS) / sizeof(FRAGMENTS[0]))];
            size_t fl = strlen(f);
            if (n + fl >= sizeof(buf))
                break;
            memcpy(buf + n, f, fl);
            n += fl;
        }
        try_render(buf, n);
    }
    /* random bytes */
    for (int i = 0; i < 1000; i++) {
        size_t n = (size_t)(rng() % sizeof(buf));
        for (size_t k = 0; k < n; k++)
            buf[k] = (char)(rng() & 0xff);
        try_render(buf, n);
    }
    /* mutations of real templates */
    if (!have_shared())
        return;
    static const char *const names[] = {"Qwen-Qwen3-0.6B", "meta-llama-Llama-3.1-8B-Instruct",
                                        "Kimi-K3", "google-gemma-4-31B-it", "openai-gpt-oss-120b"};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        char path[1200];
        size_t len = 0;
        snprintf(path, sizeof(path), "%s/%s.jinja", shared_dir(), names[k]);
        char *src = slurp(path, &len);
        T_OK(src != NULL);
        for (int i = 0; src && i < 60; i++) {
            size_t ml;
            char *m = mutate(src, len, &ml);
            if (m)
                try_render(m, ml);
            free(m);
        }
        free(src);
    }
}

/* ---- threads ---------------------------------------------------------------------------- */

struct job {
    const struct inf_template *t;
    const char *ctx;
    char *out;
    inf_status rc;
};

static void *render_job(void *arg)
{
    struct job *j = arg;
    struct inf_error err;
    size_t len;
    for (int i = 0; i < 20; i++) {
        free(j->out);
        j->out = NULL;
        j->rc = inf_template_render_json(j->t, j->ctx, strlen(j->ctx), NULL, &j->out, &len, &err);
        if (j->rc)
            break;
    }
    return NULL;
}

static void test_threads(void)
{
    const char *src = "{%- set ns = namespace(n=0) -%}{%- for m in messages -%}"
                      "{%- set ns.n = ns.n + 1 -%}{{ m.role }}:{{ m.content | upper }};"
                      "{%- endfor -%}{{ ns.n }}{{ messages | tojson }}";
    const char *ctx = "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": "
                      "\"assistant\", \"content\": \"b\"}]}";
    struct inf_template *t = NULL;
    struct inf_error err;
    T_EQ_INT(inf_template_parse(src, strlen(src), &t, &err), INF_OK);
    struct job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){t, ctx, NULL, INF_OK};
        T_EQ_INT(pthread_create(&th[i], NULL, render_job, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        T_EQ_INT(jobs[i].rc, INF_OK);
        T_EQ_STR(jobs[i].out, "user:A;assistant:B;2[{\"role\": \"user\", \"content\": \"a\"}, "
                              "{\"role\": \"assistant\", \"content\": \"b\"}]");
        free(jobs[i].out);
    }
    inf_template_free(t);
}

int main(void)
{
    T_RUN(test_against_python);
    T_RUN(test_host_functions);
    T_RUN(test_whitespace);
    T_RUN(test_chat_api);
    T_RUN(test_untrusted_ranges);
    T_RUN(test_error_positions);
    T_RUN(test_limits);
    T_RUN(test_nesting);
    T_RUN(test_garbage);
    T_RUN(test_threads);
    if (!have_shared()) {
        if (t__failed)
            T_DONE();
        T_SKIP_ALL("%s not found (set INFERNO_SHARED); %d unit checks passed", shared_dir(),
                   t__passed);
    }
    T_RUN(test_reference_corpus);
    T_DONE();
}
