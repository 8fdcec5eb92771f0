/*
 * test_yamljson.c - unit tests of bgwctl's YAML <-> JSON conversion (controlplane/ctl/yamljson.h): scalar
 * resolution (core schema, quoted scalars stay strings, tags), collections, anchors and aliases, the
 * errors (with line and column), and the round trip JSON -> YAML -> JSON for values that need quoting.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "yamljson.h"

/* text parsed as YAML must equal want (JSON text). */
static void yaml_is(const char *text, const char *want)
{
    char err[256] = "";
    json_t *got = bgw_yaml_to_json(text, strlen(text), err, sizeof err);
    json_t *exp = json_loads(want, JSON_DECODE_ANY, NULL);

    ck_assert_msg(exp != NULL, "bad expectation %s", want);
    ck_assert_msg(got != NULL, "%s: %s", text, err);
    char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
    ck_assert_msg(json_equal(got, exp), "%s: got %s, want %s", text, g, want);
    free(g);
    json_decref(got);
    json_decref(exp);
}

/* text must fail to parse with an error containing part. */
static void yaml_fails(const char *text, const char *part)
{
    char err[256] = "";
    json_t *got = bgw_yaml_to_json(text, strlen(text), err, sizeof err);

    ck_assert_msg(got == NULL, "%s: accepted", text);
    ck_assert_msg(strstr(err, part) != NULL, "%s: error \"%s\" lacks \"%s\"", text, err, part);
    ck_assert_msg(strchr(err, '\n') == NULL, "error is not one line: %s", err);
}

/* v -> YAML -> JSON gives v back. */
static void round_trip(const char *json_text)
{
    char err[256] = "";
    json_t *v = json_loads(json_text, JSON_DECODE_ANY, NULL);
    ck_assert_ptr_nonnull(v);
    char *yaml = bgw_yaml_from_json(v);
    ck_assert_ptr_nonnull(yaml);
    json_t *back = bgw_yaml_to_json(yaml, strlen(yaml), err, sizeof err);
    ck_assert_msg(back != NULL, "%s -> %s: %s", json_text, yaml, err);
    char *b = json_dumps(back, JSON_COMPACT | JSON_ENCODE_ANY);
    ck_assert_msg(json_equal(v, back), "%s -> YAML:\n%s-> %s", json_text, yaml, b);
    free(b);
    free(yaml);
    json_decref(v);
    json_decref(back);
}

START_TEST(test_plain_scalars)
{
    yaml_is("a: 1", "{\"a\": 1}");
    yaml_is("a: -12", "{\"a\": -12}");
    yaml_is("a: +3", "{\"a\": 3}");
    yaml_is("a: 010", "{\"a\": 10}");
    yaml_is("a: 0x1f", "{\"a\": 31}");
    yaml_is("a: 0o17", "{\"a\": 15}");
    yaml_is("a: 9223372036854775807", "{\"a\": 9223372036854775807}");
    yaml_is("a: 1.5", "{\"a\": 1.5}");
    yaml_is("a: 1e3", "{\"a\": 1000.0}");
    yaml_is("a: .5", "{\"a\": 0.5}");
    yaml_is("a: true\nb: False\nc: TRUE", "{\"a\": true, \"b\": false, \"c\": true}");
    yaml_is("a: null\nb: ~\nc:\nd: NULL", "{\"a\": null, \"b\": null, \"c\": null, \"d\": null}");
    yaml_is("a: yes\nb: no\nc: on\nd: off\ne: y", "{\"a\": \"yes\", \"b\": \"no\", \"c\": \"on\", \"d\": \"off\", \"e\": \"y\"}");
    yaml_is("on: [5xx]", "{\"on\": [\"5xx\"]}");
    yaml_is("a: 1.2.3\nb: 0x\nc: -x\nd: 12abc", "{\"a\": \"1.2.3\", \"b\": \"0x\", \"c\": \"-x\", \"d\": \"12abc\"}");
    yaml_is("a: https://x.example.com/p?q=1", "{\"a\": \"https://x.example.com/p?q=1\"}");
    yaml_is("a: header:x-api-key", "{\"a\": \"header:x-api-key\"}");
}
END_TEST

START_TEST(test_quoted_and_tagged)
{
    yaml_is("a: '1'\nb: \"true\"\nc: 'null'\nd: ''", "{\"a\": \"1\", \"b\": \"true\", \"c\": \"null\", \"d\": \"\"}");
    yaml_is("a: \"tab\\there\\n\"", "{\"a\": \"tab\\there\\n\"}");
    yaml_is("a: 'it''s'", "{\"a\": \"it's\"}");
    yaml_is("a: !!str 1\nb: !!int '7'\nc: !!bool 'true'\nd: !!null ''", "{\"a\": \"1\", \"b\": 7, \"c\": true, \"d\": null}");
    yaml_is("a: !!float 2", "{\"a\": 2.0}");
    yaml_is("a: ! 12", "{\"a\": \"12\"}");
    yaml_is("a: |\n  x\n  y\n", "{\"a\": \"x\\ny\\n\"}");
    yaml_is("a: >-\n  x\n  y\n", "{\"a\": \"x y\"}");
    yaml_is("a: caf\xc3\xa9", "{\"a\": \"caf\\u00e9\"}");
}
END_TEST

START_TEST(test_collections)
{
    yaml_is("- 1\n- [a, {b: c}]\n- {}\n- []", "[1, [\"a\", {\"b\": \"c\"}], {}, []]");
    yaml_is("services:\n  - name: a\n    endpoints:\n    - 127.0.0.1:1\n",
            "{\"services\": [{\"name\": \"a\", \"endpoints\": [\"127.0.0.1:1\"]}]}");
    yaml_is("1: one\ntrue: t", "{\"1\": \"one\", \"true\": \"t\"}");
    yaml_is("a: &x [1, 2]\nb: *x\nc: &y {k: v}\nd: *y", "{\"a\": [1, 2], \"b\": [1, 2], \"c\": {\"k\": \"v\"}, \"d\": {\"k\": \"v\"}}");
    yaml_is("a: &s text\nb: *s", "{\"a\": \"text\", \"b\": \"text\"}");
    yaml_is("# comment only before\n---\na: 1\n...\n", "{\"a\": 1}");
    yaml_is("'quoted key': 1", "{\"quoted key\": 1}");
    yaml_is("x", "\"x\"");
    yaml_is("---\n", "null");
}
END_TEST

START_TEST(test_errors)
{
    yaml_fails("", "the document is empty");
    yaml_fails("# nothing\n", "the document is empty");
    yaml_fails("a: [1,\n", "line ");
    yaml_fails("a: 1\na: 2\n", "line 2, column 1: duplicate key \"a\"");
    yaml_fails("a: 1\n---\nb: 2\n", "a second document");
    yaml_fails("a: *nope\n", "line 1, column 4: unknown alias *nope");
    yaml_fails("<<: {a: 1}\n", "merge keys");
    yaml_fails("[a]: 1\n", "mapping keys must be scalars");
    yaml_fails("{a: 1}: 2\n", "mapping keys must be scalars");
    yaml_fails("a: 99999999999999999999\n", "out of range");
    yaml_fails("a: 0xffffffffffffffffff\n", "out of range");
    yaml_fails("a: .inf\n", "cannot be represented in JSON");
    yaml_fails("a: -.Inf\n", "cannot be represented in JSON");
    yaml_fails("a: .nan\n", "cannot be represented in JSON");
    yaml_fails("a: !!int x\n", "does not match its tag");
    yaml_fails("a: !custom 1\n", "unsupported tag !custom");
    yaml_fails("a: &a [*a]\n", "unknown alias *a");
    yaml_fails("a:\tb: c\n  d", "line ");
}
END_TEST

START_TEST(test_alias_bomb)
{
    /* each level doubles ten times: 10^9 nodes once expanded */
    const char *bomb =
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
        "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
        "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
        "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    yaml_fails(bomb, "beyond");
}
END_TEST

START_TEST(test_deep_nesting)
{
    char text[1200];
    size_t n = 0;
    for (int i = 0; i < 500; i++) text[n++] = '[';
    text[n] = '\0';
    yaml_fails(text, "nested deeper");
}
END_TEST

START_TEST(test_plain_is_string)
{
    static const char *const strings[] = {"abc", "1.2.3", "yes", "on", "0x", "-", "12abc", "a b", ".", "0o8"};
    static const char *const others[] = {"", "~", "null", "true", "False", "1", "-1", "0x1F", "0o7", "1.5", ".5",
                                         "1e3", ".inf", ".NaN"};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        ck_assert_msg(bgw_yaml_plain_is_string(strings[i], strlen(strings[i])), "%s", strings[i]);
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        ck_assert_msg(!bgw_yaml_plain_is_string(others[i], strlen(others[i])), "%s", others[i]);
}
END_TEST

START_TEST(test_emit_shape)
{
    json_t *v = json_loads("{\"name\": \"r\", \"methods\": [\"GET\"], \"n\": 3, \"s\": \"3\", \"e\": [], \"o\": {},"
                           " \"t\": true, \"z\": null, \"f\": 0.5}", 0, NULL);
    char *yaml = bgw_yaml_from_json(v);
    ck_assert_ptr_nonnull(yaml);
    ck_assert_str_eq(yaml, "name: r\nmethods:\n- GET\nn: 3\ns: \"3\"\ne: []\no: {}\nt: true\nz: null\nf: 0.5\n");
    free(yaml);
    json_decref(v);
}
END_TEST

START_TEST(test_round_trips)
{
    round_trip("{\"a\": \"1\", \"b\": \"true\", \"c\": \"null\", \"d\": \"\", \"e\": \"~\", \"f\": \"0x10\", \"g\": \"1e3\"}");
    round_trip("{\"a\": \"two\\nlines\", \"b\": \"tab\\there\", \"c\": \"  padded  \", \"d\": \"a: b\", \"e\": \"#x\"}");
    round_trip("{\"a\": \"- x\", \"b\": \"*x\", \"c\": \"&x\", \"d\": \"!x\", \"e\": \"%x\", \"f\": \"@x\", \"g\": \"`x\"}");
    round_trip("{\"a\": \"[x]\", \"b\": \"{x}\", \"c\": \"x, y\", \"d\": \"'q'\", \"e\": \"\\\"dq\\\"\", \"f\": \"|\", \"g\": \">\"}");
    round_trip("{\"1\": 1, \"true\": true, \"null\": null, \"\": \"empty key\", \"k k\": [1, [2, [3, {}]], {\"x\": []}]}");
    round_trip("{\"unicode\": \"caf\\u00e9 \\u2603 \\ud83d\\ude00\", \"ctl\": \"\\u0001\\u007f\", \"bs\": \"a\\\\b\"}");
    round_trip("{\"i\": -9223372036854775807, \"r\": 0.1, \"big\": 1e300, \"neg\": -2.5, \"whole\": 3.0}");
    round_trip("[\"a\", 1, null, false, [], {}]");
    round_trip("\"just a string\"");
    round_trip("\"123\"");
    round_trip("42");
    round_trip("null");
    round_trip("{\"long\": \"word word word word word word word word word word word word word word word word word "
               "word word word word word word word word word word word word word word word word\"}");
}
END_TEST

static Suite *yamljson_suite(void)
{
    Suite *s = suite_create("ctl_yamljson");
    TCase *tc = tcase_create("yamljson");
    tcase_add_test(tc, test_plain_scalars);
    tcase_add_test(tc, test_quoted_and_tagged);
    tcase_add_test(tc, test_collections);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_alias_bomb);
    tcase_add_test(tc, test_deep_nesting);
    tcase_add_test(tc, test_plain_is_string);
    tcase_add_test(tc, test_emit_shape);
    tcase_add_test(tc, test_round_trips);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(yamljson_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
