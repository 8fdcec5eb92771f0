/*
 * test_views.c - unit tests of bgwctl's tables and views (controlplane/ctl/table.h, views.h): kind names as
 * typed, column alignment, cell clean-up, and the exact rows of each kind, of proxies and of endpoints.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"
#include "views.h"

/* The table printed into a string (static: one at a time); t is freed. */
static const char *render(struct bgw_table *t)
{
    static char out[4096];
    FILE *f = fmemopen(out, sizeof out, "w");
    ck_assert_ptr_nonnull(f);
    bgw_table_print(t, f);
    fclose(f);
    bgw_table_free(t);
    return out;
}

static json_t *items(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, 0, &err);
    ck_assert_msg(v != NULL, "%s: %s", text, err.text);
    return v;
}

START_TEST(test_kind_parse)
{
    static const struct {
        const char *typed;
        enum bgw_ctl_kind kind;
    } ok[] = {
        {"services", BGW_CTL_KIND_SERVICES}, {"service", BGW_CTL_KIND_SERVICES}, {"Services", BGW_CTL_KIND_SERVICES},
        {"routes", BGW_CTL_KIND_ROUTES}, {"route", BGW_CTL_KIND_ROUTES},
        {"rate_limits", BGW_CTL_KIND_RATE_LIMITS}, {"rate-limits", BGW_CTL_KIND_RATE_LIMITS},
        {"rate_limit", BGW_CTL_KIND_RATE_LIMITS}, {"rate-limit", BGW_CTL_KIND_RATE_LIMITS},
        {"auth_policies", BGW_CTL_KIND_AUTH_POLICIES}, {"auth-policy", BGW_CTL_KIND_AUTH_POLICIES},
        {"AUTH_POLICY", BGW_CTL_KIND_AUTH_POLICIES},
    };
    static const char *const bad[] = {"", "svc", "ratelimits", "auth", "routess", "x_routes",
                                      "a-very-long-name-that-is-no-kind-at-all"};
    enum bgw_ctl_kind k;

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ck_assert_msg(bgw_ctl_kind_parse(ok[i].typed, &k) == 0, "%s", ok[i].typed);
        ck_assert_int_eq(k, ok[i].kind);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(bgw_ctl_kind_parse(bad[i], &k) == -1, "%s", bad[i]);
    ck_assert_str_eq(bgw_ctl_kind_name(BGW_CTL_KIND_RATE_LIMITS), "rate_limits");
    ck_assert_str_eq(bgw_ctl_kind_singular(BGW_CTL_KIND_AUTH_POLICIES), "auth_policy");
}
END_TEST

START_TEST(test_table_alignment)
{
    struct bgw_table t;
    static const char *const h[] = {"A", "LONGER", "C"};
    static const char *const r1[] = {"xxxx", "y", "last"};
    static const char *const r2[] = {"caf\xc3\xa9", NULL, "two\nlines"};

    ck_assert_int_eq(bgw_table_init(&t, 3, h), 0);
    ck_assert_int_eq(bgw_table_add_row(&t, r1), 0);
    ck_assert_int_eq(bgw_table_add_row(&t, r2), 0);
    ck_assert_str_eq(render(&t),
                     "A      LONGER   C\n"
                     "xxxx   y        last\n"
                     "caf\xc3\xa9   -        two lines\n");
}
END_TEST

START_TEST(test_table_many_rows)
{
    struct bgw_table t;
    static const char *const h[] = {"N"};
    char cell[16];
    const char *row[1] = {cell};

    ck_assert_int_eq(bgw_table_init(&t, 1, h), 0);
    for (int i = 0; i < 100; i++) {
        snprintf(cell, sizeof cell, "%d", i);
        ck_assert_int_eq(bgw_table_add_row(&t, row), 0);
    }
    ck_assert_uint_eq(t.nrows, 101);
    ck_assert_str_eq(t.cells[100], "99");
    bgw_table_free(&t);
}
END_TEST

START_TEST(test_view_objects)
{
    struct bgw_table t;
    json_t *v;

    v = items("[{\"name\": \"orders\", \"endpoints\": [\"10.0.0.1:80\", {\"address\": \"10.0.0.2:80\", \"healthy\": false}],"
              " \"lb\": \"random\", \"revision\": \"4\"},"
              " {\"name\": \"k\", \"kubernetes\": {\"namespace\": \"shop\", \"service\": \"orders\", \"port\": \"http\"},"
              " \"revision\": 5}, 7]");
    ck_assert_int_eq(bgw_view_objects(BGW_CTL_KIND_SERVICES, v, &t), 0);
    ck_assert_str_eq(render(&t),
                     "NAME     ENDPOINTS                            LB       REVISION\n"
                     "orders   10.0.0.1:80,10.0.0.2:80(unhealthy)   random   4\n"
                     "k        kubernetes:shop/orders:http          -        5\n");
    json_decref(v);

    v = items("[{\"name\": \"r1\", \"match\": {\"path_prefix\": \"/api\", \"methods\": [\"GET\", \"POST\"],"
              " \"hosts\": [\"a.example.com\"], \"headers\": [{\"name\": \"x-a\", \"exact\": \"1\"}, {\"name\": \"x-b\", \"exact\": \"2\"}]},"
              " \"service\": \"s\", \"revision\": \"2\"},"
              " {\"name\": \"r2\", \"match\": {\"path_exact\": \"/x\"}, \"service\": \"s\", \"revision\": \"3\"}]");
    ck_assert_int_eq(bgw_view_objects(BGW_CTL_KIND_ROUTES, v, &t), 0);
    ck_assert_str_eq(render(&t),
                     "NAME   MATCH                                                                  SERVICE   REVISION\n"
                     "r1     prefix /api methods=GET,POST hosts=a.example.com headers=x-a=1,x-b=2   s         2\n"
                     "r2     exact /x                                                               s         3\n");
    json_decref(v);

    v = items("[{\"name\": \"rl\", \"requests\": 100, \"per\": \"second\", \"burst\": 0, \"key\": \"header:x-k\","
              " \"scope\": \"global\", \"revision\": \"1\"}]");
    ck_assert_int_eq(bgw_view_objects(BGW_CTL_KIND_RATE_LIMITS, v, &t), 0);
    ck_assert_str_eq(render(&t),
                     "NAME   RATE         BURST   KEY          SCOPE    REVISION\n"
                     "rl     100/second   0       header:x-k   global   1\n");
    json_decref(v);

    v = items("[{\"name\": \"a\", \"issuer\": \"https://i\", \"algorithms\": [\"RS256\", \"ES256\"], \"jwks\": {\"keys\": []},"
              " \"jwks_uri\": \"https://i/jwks\", \"revision\": \"1\"},"
              " {\"name\": \"b\", \"issuer\": \"https://j\", \"algorithms\": [\"RS256\"], \"jwks_uri\": \"https://j/k\"}]");
    ck_assert_int_eq(bgw_view_objects(BGW_CTL_KIND_AUTH_POLICIES, v, &t), 0);
    ck_assert_str_eq(render(&t),
                     "NAME   ISSUER      ALGORITHMS    JWKS                    REVISION\n"
                     "a      https://i   RS256,ES256   inline,https://i/jwks   1\n"
                     "b      https://j   RS256         https://j/k             -\n");
    json_decref(v);
}
END_TEST

START_TEST(test_view_dataplanes_and_endpoints)
{
    struct bgw_table t;
    json_t *v;

    v = items("[{\"node_id\": \"n1\", \"address\": \"10.0.0.1:5000\", \"status\": \"SYNCED\", \"acked_version\": \"3\","
              " \"connected_since\": 0, \"last_error\": \"\"},"
              " {\"node_id\": \"n2\", \"status\": \"NACKED\", \"acked_version\": \"2\", \"last_change\": \"2026-01-01T00:00:00Z\","
              " \"connected_since\": 1000, \"last_error\": \"bad\"},"
              " {\"node_id\": \"n3\", \"status\": \"DISCONNECTED\", \"connected_since\": 1767225600000}]");
    ck_assert_int_eq(bgw_view_dataplanes(v, &t), 0);
    ck_assert_str_eq(render(&t),
                     "NODE   ADDRESS         STATUS         ACKED VERSION   LAST CHANGE            LAST ERROR\n"
                     "n1     10.0.0.1:5000   SYNCED         3               1970-01-01T00:00:00Z   -\n"
                     "n2     -               NACKED         2               2026-01-01T00:00:00Z   bad\n"
                     "n3     -               DISCONNECTED   -               2026-01-01T00:00:00Z   -\n");
    json_decref(v);

    v = items("[{\"address\": \"10.0.0.1:80\", \"healthy\": true, \"source\": \"static\"},"
              " {\"address\": \"10.0.0.2:80\", \"healthy\": false, \"source\": \"kubernetes\", \"last_check\": \"2026-01-01T00:00:01Z\"}]");
    ck_assert_int_eq(bgw_view_endpoints(v, &t), 0);
    ck_assert_str_eq(render(&t),
                     "ADDRESS       SOURCE       HEALTHY   LAST CHECK\n"
                     "10.0.0.1:80   static       yes       -\n"
                     "10.0.0.2:80   kubernetes   no        2026-01-01T00:00:01Z\n");
    json_decref(v);
}
END_TEST

static Suite *views_suite(void)
{
    Suite *s = suite_create("ctl_views");
    TCase *tc = tcase_create("views");
    tcase_add_test(tc, test_kind_parse);
    tcase_add_test(tc, test_table_alignment);
    tcase_add_test(tc, test_table_many_rows);
    tcase_add_test(tc, test_view_objects);
    tcase_add_test(tc, test_view_dataplanes_and_endpoints);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(views_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
