/*
 * test_store_backend.c - unit tests of the store over a persistence backend (store.h, struct
 * bgw_store_backend) with a fake backend in memory: one stored text with a generation counter as token,
 * shared by two stores that play two bgw-control replicas. Covers: creation of a missing state, a stale
 * writer's change loaded and re-applied on top of the newer state, If-Match and references checked anew
 * after a conflict (412, 400, 404), retries exhausted (409), save failures and the size limit leaving
 * everything as it was, bootstrap racing, and bgw_store_reload() (newer, same, older, invalid).
 *
 * Documents are written with single quotes for readability; j() turns them into JSON values.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

/* ---- the fake backend ---- */

struct fake {
    char *text;             /* NULL: nothing stored */
    unsigned gen;           /* the token is its decimal text; 0 with no text */
    int saves, loads;       /* calls so far */
    int fail_saves;         /* the next n saves fail with BGW_STORE_IO */
    bool always_stale;      /* someone else writes before every save */
    size_t max;             /* longest text accepted (0: no limit) */
};

static void fake_set(struct fake *f, const char *text)
{
    char *copy = text ? strdup(text) : NULL;     /* text may be f->text */

    free(f->text);
    f->text = copy;
    f->gen++;
}

static int fake_load(void *impl, char **text, char token[BGW_STORE_TOKEN_MAX], struct bgw_store_error *err)
{
    struct fake *f = impl;
    (void)err;
    f->loads++;
    *text = f->text ? strdup(f->text) : NULL;
    token[0] = '\0';
    if (f->text)
        snprintf(token, BGW_STORE_TOKEN_MAX, "%u", f->gen);
    return 0;
}

static int fake_save(void *impl, const char *text, char token[BGW_STORE_TOKEN_MAX], struct bgw_store_error *err)
{
    struct fake *f = impl;
    char cur[32] = "";

    f->saves++;
    if (f->fail_saves > 0) {
        f->fail_saves--;
        err->status = BGW_STORE_IO;
        snprintf(err->message, sizeof err->message, "fake: the server answered 500");
        return -1;
    }
    if (f->max && strlen(text) > f->max) {
        err->status = BGW_STORE_TOO_LARGE;
        snprintf(err->message, sizeof err->message, "fake: too large");
        return -1;
    }
    if (f->always_stale && f->text)
        fake_set(f, f->text);               /* the same text, a new token: another writer */
    if (f->text)
        snprintf(cur, sizeof cur, "%u", f->gen);
    if (strcmp(cur, token) != 0)
        return 1;
    fake_set(f, text);
    snprintf(token, BGW_STORE_TOKEN_MAX, "%u", f->gen);
    return 0;
}

static struct bgw_store *open_on(struct fake *f)
{
    struct bgw_store_backend b = {.impl = f, .load = fake_load, .save = fake_save, .close = NULL};
    struct bgw_store_error err = {0};
    struct bgw_store *s = bgw_store_open_backend(&b, &err);

    ck_assert_msg(s != NULL, "open: %s", err.message);
    return s;
}

/* ---- helpers ---- */

static json_t *j(const char *s)
{
    char buf[8192];
    json_error_t jerr;
    size_t n = strlen(s);
    json_t *v;

    ck_assert_uint_lt(n, sizeof buf);
    for (size_t i = 0; i <= n; i++)
        buf[i] = s[i] == '\'' ? '"' : s[i];
    v = json_loads(buf, 0, &jerr);
    ck_assert_msg(v != NULL, "bad test JSON %s: %s", s, jerr.text);
    return v;
}

#define ROUTE(svc, prefix) "{'match': {'path_prefix': '" prefix "'}, 'service': '" svc "'}"
#define SERVICE "{'endpoints': ['127.0.0.1:9']}"

static int put(struct bgw_store *s, enum bgw_store_kind k, const char *name, const char *body, const char *if_match,
               struct bgw_store_error *err)
{
    json_t *b = j(body);
    int rc;

    memset(err, 0, sizeof *err);
    rc = bgw_store_put(s, k, name, b, if_match, NULL, NULL, err);
    json_decref(b);
    return rc;
}

static void put_ok(struct bgw_store *s, enum bgw_store_kind k, const char *name, const char *body)
{
    struct bgw_store_error err;
    ck_assert_msg(put(s, k, name, body, NULL, &err) == 0, "put %s: %s", name, err.message);
}

/* Names of kind k in the store, comma-separated. */
static char *names(struct bgw_store *s, enum bgw_store_kind k)
{
    static char buf[1024];
    json_t *l = bgw_store_list(s, k), *it;
    size_t i;

    buf[0] = '\0';
    json_array_foreach(json_object_get(l, "items"), i, it) {
        if (i)
            strcat(buf, ",");
        strcat(buf, json_string_value(json_object_get(it, "name")));
    }
    json_decref(l);
    return buf;
}

/* Names of kind k in the fake's stored text. */
static char *stored_names(struct fake *f, const char *kind)
{
    static char buf[1024];
    json_t *st = json_loads(f->text, 0, NULL), *e;
    size_t i;

    ck_assert_ptr_nonnull(st);
    buf[0] = '\0';
    json_array_foreach(json_object_get(st, kind), i, e) {
        if (i)
            strcat(buf, ",");
        strcat(buf, json_string_value(json_object_get(json_object_get(e, "object"), "name")));
    }
    json_decref(st);
    return buf;
}

static char *revision_of(struct bgw_store *s, enum bgw_store_kind k, const char *name)
{
    static char buf[32];
    uint64_t rev = 0;
    json_t *o = bgw_store_get(s, k, name, &rev);

    ck_assert_ptr_nonnull(o);
    json_decref(o);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)rev);
    return buf;
}

static void fake_free(struct fake *f)
{
    free(f->text);
    f->text = NULL;
}

/* ---- tests ---- */

START_TEST(test_missing_state_created)
{
    struct fake f = {0};
    struct bgw_store_error err;
    struct bgw_store *s = open_on(&f);

    ck_assert_uint_eq(bgw_store_version(s), 0);
    ck_assert_ptr_null(f.text);
    ck_assert_int_eq(bgw_store_ensure_saved(s, &err), 0);
    ck_assert_ptr_nonnull(f.text);
    ck_assert_int_eq(f.saves, 1);
    ck_assert_int_eq(bgw_store_ensure_saved(s, &err), 0);     /* only once */
    ck_assert_int_eq(f.saves, 1);
    put_ok(s, BGW_KIND_SERVICES, "orders", SERVICE);
    ck_assert_str_eq(stored_names(&f, "services"), "orders");
    bgw_store_close(s);

    s = open_on(&f);                                            /* a restart loads it */
    ck_assert_uint_eq(bgw_store_version(s), 1);
    ck_assert_str_eq(names(s, BGW_KIND_SERVICES), "orders");
    bgw_store_close(s);
    fake_free(&f);
}
END_TEST

START_TEST(test_stale_writer_reapplies_on_top)
{
    struct fake f = {0};
    struct bgw_store *a = open_on(&f), *b;

    put_ok(a, BGW_KIND_SERVICES, "orders", SERVICE);
    b = open_on(&f);
    put_ok(a, BGW_KIND_ROUTES, "ra", ROUTE("orders", "/a"));   /* b has not seen this */
    ck_assert_str_eq(names(b, BGW_KIND_ROUTES), "");
    int saves = f.saves;
    put_ok(b, BGW_KIND_ROUTES, "rb", ROUTE("orders", "/b"));   /* conflict, reload, again */
    ck_assert_int_eq(f.saves - saves, 2);
    ck_assert_str_eq(stored_names(&f, "routes"), "ra,rb");
    ck_assert_str_eq(names(b, BGW_KIND_ROUTES), "ra,rb");
    ck_assert_uint_eq(bgw_store_version(b), 3);
    ck_assert_str_eq(revision_of(b, BGW_KIND_ROUTES, "rb"), "3");

    /* the same for delete and apply */
    put_ok(a, BGW_KIND_ROUTES, "ra2", ROUTE("orders", "/a2"));
    struct bgw_store_error err = {0};
    ck_assert_msg(bgw_store_delete(b, BGW_KIND_ROUTES, "ra", NULL, &err) == 0, "%s", err.message);
    ck_assert_str_eq(stored_names(&f, "routes"), "rb,ra2");
    put_ok(a, BGW_KIND_ROUTES, "ra3", ROUTE("orders", "/a3"));
    json_t *doc = j("{'routes': [{'name': 'rb2', 'match': {'path_prefix': '/b2'}, 'service': 'orders'}]}");
    ck_assert_msg(bgw_store_apply(b, doc, NULL, &err) == 0, "%s", err.message);
    json_decref(doc);
    ck_assert_str_eq(stored_names(&f, "routes"), "rb,ra2,ra3,rb2");
    ck_assert_str_eq(names(b, BGW_KIND_ROUTES), "rb,ra2,ra3,rb2");
    ck_assert_uint_eq(bgw_store_version(b), 7);
    bgw_store_close(a);
    bgw_store_close(b);
    fake_free(&f);
}
END_TEST

START_TEST(test_conflict_checks_again)
{
    struct fake f = {0};
    struct bgw_store_error err;
    struct bgw_store *a = open_on(&f), *b;
    char rev[32];

    put_ok(a, BGW_KIND_SERVICES, "orders", SERVICE);
    put_ok(a, BGW_KIND_SERVICES, "spare", SERVICE);
    put_ok(a, BGW_KIND_ROUTES, "r", ROUTE("orders", "/"));
    b = open_on(&f);
    snprintf(rev, sizeof rev, "\"%s\"", revision_of(a, BGW_KIND_ROUTES, "r"));

    /* both replicas write r with If-Match of the same revision: the second one gets 412 */
    ck_assert_int_eq(put(a, BGW_KIND_ROUTES, "r", ROUTE("orders", "/one"), rev, &err), 0);
    ck_assert_int_eq(put(b, BGW_KIND_ROUTES, "r", ROUTE("orders", "/two"), rev, &err), -1);
    ck_assert_int_eq(err.status, BGW_STORE_PRECONDITION);
    ck_assert_ptr_nonnull(strstr(f.text, "/one"));
    ck_assert_ptr_null(strstr(f.text, "/two"));

    /* b routes to spare while a deleted it: invalid on the newer state */
    ck_assert_msg(bgw_store_delete(a, BGW_KIND_SERVICES, "spare", NULL, &err) == 0, "%s", err.message);
    ck_assert_int_eq(put(b, BGW_KIND_ROUTES, "r2", ROUTE("spare", "/s"), NULL, &err), -1);
    ck_assert_int_eq(err.status, BGW_STORE_INVALID);
    ck_assert_str_eq(err.field, "service");
    ck_assert_str_eq(stored_names(&f, "routes"), "r");
    ck_assert_str_eq(names(b, BGW_KIND_SERVICES), "orders");

    /* b deletes what a deleted meanwhile: 404; b deletes a service a started to use: 409 */
    put_ok(a, BGW_KIND_SERVICES, "gone", SERVICE);
    put_ok(b, BGW_KIND_SERVICES, "used", SERVICE);              /* b is current again */
    ck_assert_msg(bgw_store_delete(a, BGW_KIND_SERVICES, "gone", NULL, &err) == 0, "%s", err.message);
    ck_assert_int_eq(bgw_store_delete(b, BGW_KIND_SERVICES, "gone", NULL, &err), -1);
    ck_assert_int_eq(err.status, BGW_STORE_NOT_FOUND);
    put_ok(a, BGW_KIND_ROUTES, "ru", ROUTE("used", "/u"));
    ck_assert_int_eq(bgw_store_delete(b, BGW_KIND_SERVICES, "used", NULL, &err), -1);
    ck_assert_int_eq(err.status, BGW_STORE_CONFLICT);
    ck_assert_ptr_nonnull(strstr(err.message, "ru"));
    ck_assert_str_eq(stored_names(&f, "services"), "orders,used");
    bgw_store_close(a);
    bgw_store_close(b);
    fake_free(&f);
}
END_TEST

START_TEST(test_retries_exhausted)
{
    struct fake f = {0};
    struct bgw_store_error err;
    struct bgw_store *s = open_on(&f);

    put_ok(s, BGW_KIND_SERVICES, "orders", SERVICE);
    f.always_stale = true;
    int saves = f.saves;
    ck_assert_int_eq(put(s, BGW_KIND_SERVICES, "x", SERVICE, NULL, &err), -1);
    ck_assert_int_eq(err.status, BGW_STORE_CONFLICT);
    ck_assert_ptr_nonnull(strstr(err.message, "try again"));
    ck_assert_int_eq(f.saves - saves, BGW_STORE_RETRIES + 1);
    ck_assert_str_eq(names(s, BGW_KIND_SERVICES), "orders");
    ck_assert_str_eq(stored_names(&f, "services"), "orders");
    f.always_stale = false;
    put_ok(s, BGW_KIND_SERVICES, "x", SERVICE);
    ck_assert_str_eq(stored_names(&f, "services"), "orders,x");
    bgw_store_close(s);
    fake_free(&f);
}
END_TEST

static int g_calls;
static char g_version[32];

static void listener(void *arg, const char *version, json_t *doc)
{
    (void)arg;
    (void)doc;
    g_calls++;
    snprintf(g_version, sizeof g_version, "%s", version);
}

START_TEST(test_save_failures_change_nothing)
{
    struct fake f = {0};
    struct bgw_store_error err;
    struct bgw_store *s = open_on(&f);

    put_ok(s, BGW_KIND_SERVICES, "orders", SERVICE);
    bgw_store_set_listener(s, listener, NULL);
    g_calls = 0;
    f.fail_saves = 1;
    ck_assert_int_eq(put(s, BGW_KIND_SERVICES, "x", SERVICE, NULL, &err), -1);
    ck_assert_int_eq(err.status, BGW_STORE_IO);
    ck_assert_str_eq(names(s, BGW_KIND_SERVICES), "orders");
    ck_assert_uint_eq(bgw_store_version(s), 1);
    ck_assert_int_eq(g_calls, 0);
    f.max = 10;
    ck_assert_int_eq(put(s, BGW_KIND_SERVICES, "x", SERVICE, NULL, &err), -1);
    ck_assert_int_eq(err.status, BGW_STORE_TOO_LARGE);
    ck_assert_str_eq(names(s, BGW_KIND_SERVICES), "orders");
    f.max = 0;
    put_ok(s, BGW_KIND_SERVICES, "x", SERVICE);
    ck_assert_int_eq(g_calls, 1);
    ck_assert_str_eq(g_version, "2");
    bgw_store_set_listener(s, NULL, NULL);
    bgw_store_close(s);
    fake_free(&f);
}
END_TEST

START_TEST(test_reload)
{
    struct fake f = {0};
    struct bgw_store_error err;
    struct bgw_store *a = open_on(&f), *b;
    char tok[32];

    put_ok(a, BGW_KIND_SERVICES, "orders", SERVICE);
    b = open_on(&f);
    bgw_store_set_listener(b, listener, NULL);
    g_calls = 0;
    char *old = strdup(f.text);
    unsigned old_gen = f.gen;
    put_ok(a, BGW_KIND_SERVICES, "new", SERVICE);
    snprintf(tok, sizeof tok, "%u", f.gen);
    ck_assert_int_eq(bgw_store_reload(b, f.text, tok, &err), 1);           /* newer: loaded, published */
    ck_assert_int_eq(g_calls, 1);
    ck_assert_str_eq(g_version, "2");
    ck_assert_str_eq(names(b, BGW_KIND_SERVICES), "orders,new");
    ck_assert_int_eq(bgw_store_reload(b, f.text, tok, &err), 0);           /* the same token: nothing */
    snprintf(tok, sizeof tok, "%u", old_gen);
    ck_assert_int_eq(bgw_store_reload(b, old, tok, &err), 0);              /* older: ignored */
    ck_assert_str_eq(names(b, BGW_KIND_SERVICES), "orders,new");
    ck_assert_int_eq(bgw_store_reload(b, "{'format': 1}", "99", &err), -1);   /* invalid: kept */
    ck_assert_int_eq(bgw_store_reload(b, "{\"format\": 1, \"version\": 9, \"services\": [], \"routes\": "
                                      "[{\"revision\": 9, \"object\": {\"name\": \"r\", \"service\": \"nope\", "
                                      "\"match\": {\"path_prefix\": \"/\"}}}], \"rate_limits\": [], "
                                      "\"auth_policies\": []}", "100", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "nope"));
    ck_assert_str_eq(names(b, BGW_KIND_SERVICES), "orders,new");
    ck_assert_int_eq(g_calls, 1);
    put_ok(b, BGW_KIND_SERVICES, "more", SERVICE);                          /* b is current: one save */
    ck_assert_str_eq(stored_names(&f, "services"), "orders,new,more");
    free(old);
    bgw_store_set_listener(b, NULL, NULL);
    bgw_store_close(a);
    bgw_store_close(b);
    fake_free(&f);
}
END_TEST

START_TEST(test_bootstrap_race)
{
    struct fake f = {0};
    struct bgw_store_error err;
    struct bgw_store *a = open_on(&f), *b = open_on(&f);     /* both saw nothing stored */
    char file[] = "/tmp/bgw-store-backend-XXXXXX";
    int fd = mkstemp(file);
    const char *doc = "{\"services\": [{\"name\": \"orders\", \"endpoints\": [\"127.0.0.1:9\"]}]}";
    bool applied = false;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, doc, strlen(doc)), (int)strlen(doc));
    close(fd);
    ck_assert_msg(bgw_store_bootstrap(a, file, &applied, &err) == 0, "%s", err.message);
    ck_assert(applied);
    ck_assert_int_eq(bgw_store_ensure_saved(a, &err), 0);
    ck_assert_msg(bgw_store_bootstrap(b, file, &applied, &err) == 0, "%s", err.message);
    ck_assert(!applied);                                        /* a's state has a history now */
    ck_assert_int_eq(bgw_store_ensure_saved(b, &err), 0);
    ck_assert_uint_eq(bgw_store_version(b), 1);
    ck_assert_str_eq(names(b, BGW_KIND_SERVICES), "orders");
    unlink(file);
    bgw_store_close(a);
    bgw_store_close(b);
    fake_free(&f);
}
END_TEST

static Suite *store_backend_suite(void)
{
    Suite *s = suite_create("store_backend");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_missing_state_created);
    tcase_add_test(tc, test_stale_writer_reapplies_on_top);
    tcase_add_test(tc, test_conflict_checks_again);
    tcase_add_test(tc, test_retries_exhausted);
    tcase_add_test(tc, test_save_failures_change_nothing);
    tcase_add_test(tc, test_reload);
    tcase_add_test(tc, test_bootstrap_race);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_backend_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
