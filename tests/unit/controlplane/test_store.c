/*
 * test_store.c - unit tests of bgw-control's store (controlplane/store.h): durability through a fresh
 * reopen, revisions and the version counter, If-Match, apply all or nothing, deletes of referenced
 * objects, error fields, corrupt or invalid state files refused, the state directory lock, bootstrap, and
 * the change listener.
 *
 * Documents are written with single quotes for readability; j() turns them into JSON values.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

/* ---- helpers ---- */

static char g_dir[256];

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

static void make_dir(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/bgw-store-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
}

static void remove_dir(void)
{
    char cmd[400];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static struct bgw_store *open_ok(void)
{
    struct bgw_store_error err = {0};
    struct bgw_store *s = bgw_store_open(g_dir, &err);

    ck_assert_msg(s != NULL, "open: %s", err.message);
    return s;
}

static const char *open_err(void)
{
    static struct bgw_store_error err;
    struct bgw_store *s = bgw_store_open(g_dir, &err);

    ck_assert_ptr_null(s);
    return err.message;
}

static void put_ok(struct bgw_store *s, enum bgw_store_kind k, const char *name, const char *body, bool want_created)
{
    struct bgw_store_error err = {0};
    json_t *b = j(body), *out = NULL;
    bool created = !want_created;

    ck_assert_msg(bgw_store_put(s, k, name, b, NULL, &created, &out, &err) == 0, "put %s: %s", name, err.message);
    ck_assert(created == want_created);
    ck_assert_str_eq(json_string_value(json_object_get(out, "name")), name);
    json_decref(out);
    json_decref(b);
}

static const struct bgw_store_error *put_err(struct bgw_store *s, enum bgw_store_kind k, const char *name,
                                             const char *body, const char *if_match)
{
    static struct bgw_store_error err;
    json_t *b = j(body);

    memset(&err, 0, sizeof err);
    ck_assert_msg(bgw_store_put(s, k, name, b, if_match, NULL, NULL, &err) == -1, "accepted: %s", body);
    json_decref(b);
    return &err;
}

static char *snapshot_text(struct bgw_store *s)
{
    json_t *snap = bgw_store_snapshot(s);
    char *t = json_dumps(snap, JSON_COMPACT);

    json_decref(snap);
    return t;
}

static const char *revision_of(struct bgw_store *s, enum bgw_store_kind k, const char *name)
{
    static char buf[32];
    json_t *o = bgw_store_get(s, k, name, NULL);

    ck_assert_ptr_nonnull(o);
    snprintf(buf, sizeof buf, "%s", json_string_value(json_object_get(o, "revision")));
    json_decref(o);
    return buf;
}

static void write_state(const char *text)
{
    char path[400];
    FILE *f;

    snprintf(path, sizeof path, "%s/state.json", g_dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

#define SVC "{'endpoints': ['127.0.0.1:9001']}"
#define ROUTE(svc) "{'match': {'path_prefix': '/api'}, 'service': '" svc "'}"

/* ---- tests ---- */

START_TEST(test_kinds_and_names)
{
    enum bgw_store_kind k;

    ck_assert_int_eq(bgw_store_kind_parse("routes", &k), 0);
    ck_assert_int_eq(k, BGW_KIND_ROUTES);
    ck_assert_int_eq(bgw_store_kind_parse("route", &k), -1);
    ck_assert_str_eq(bgw_store_kind_name(BGW_KIND_AUTH_POLICIES), "auth_policies");
    ck_assert(bgw_store_name_valid("a.b_c-9"));
    ck_assert(!bgw_store_name_valid(""));
    ck_assert(!bgw_store_name_valid("a/b"));
    ck_assert(!bgw_store_name_valid("a%2Fb"));
    char longname[BGW_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname);
    longname[BGW_NAME_MAX] = '\0';
    ck_assert(bgw_store_name_valid(longname));
    longname[BGW_NAME_MAX] = 'x';
    longname[BGW_NAME_MAX + 1] = '\0';
    ck_assert(!bgw_store_name_valid(longname));
}
END_TEST

START_TEST(test_put_persists_across_reopen)
{
    make_dir();
    struct bgw_store *s = open_ok();
    ck_assert_uint_eq(bgw_store_version(s), 0);
    put_ok(s, BGW_KIND_SERVICES, "orders", SVC, true);
    put_ok(s, BGW_KIND_ROUTES, "api", ROUTE("orders"), true);
    char *before = snapshot_text(s);
    bgw_store_close(s);

    s = open_ok();
    char *after = snapshot_text(s);
    ck_assert_str_eq(before, after);
    ck_assert_uint_eq(bgw_store_version(s), 2);
    ck_assert_str_eq(revision_of(s, BGW_KIND_SERVICES, "orders"), "1");
    ck_assert_str_eq(revision_of(s, BGW_KIND_ROUTES, "api"), "2");
    free(before);
    free(after);
    bgw_store_close(s);
    remove_dir();
}
END_TEST

START_TEST(test_revisions_and_version)
{
    struct bgw_store *s = bgw_store_open(NULL, NULL);
    uint64_t rev = 0;

    put_ok(s, BGW_KIND_SERVICES, "a", SVC, true);
    put_ok(s, BGW_KIND_SERVICES, "b", SVC, true);
    put_ok(s, BGW_KIND_SERVICES, "a", "{'endpoints': ['127.0.0.1:9002']}", false);
    ck_assert_uint_eq(bgw_store_version(s), 3);
    json_t *o = bgw_store_get(s, BGW_KIND_SERVICES, "a", &rev);
    ck_assert_uint_eq(rev, 3);
    ck_assert_str_eq(json_string_value(json_object_get(o, "revision")), "3");
    json_decref(o);
    ck_assert_str_eq(revision_of(s, BGW_KIND_SERVICES, "b"), "2");
    /* The same object again changes nothing: no new version, same revision. */
    put_ok(s, BGW_KIND_SERVICES, "a", "{'endpoints': ['127.0.0.1:9002'], 'revision': '1'}", false);
    ck_assert_uint_eq(bgw_store_version(s), 3);
    ck_assert_str_eq(revision_of(s, BGW_KIND_SERVICES, "a"), "3");
    /* The list: document order, revisions, the version. */
    json_t *l = bgw_store_list(s, BGW_KIND_SERVICES);
    ck_assert_str_eq(json_string_value(json_object_get(l, "version")), "3");
    ck_assert_uint_eq(json_array_size(json_object_get(l, "items")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(l, "items"), 0), "name")), "a");
    json_decref(l);
    ck_assert_ptr_null(bgw_store_get(s, BGW_KIND_SERVICES, "zzz", NULL));
    bgw_store_close(s);
}
END_TEST

START_TEST(test_if_match)
{
    struct bgw_store *s = bgw_store_open(NULL, NULL);
    struct bgw_store_error err;
    json_t *b = j(SVC);

    put_ok(s, BGW_KIND_SERVICES, "a", SVC, true);
    ck_assert_int_eq(put_err(s, BGW_KIND_SERVICES, "a", "{'endpoints': ['127.0.0.1:1']}", "\"7\"")->status,
                     BGW_STORE_PRECONDITION);
    ck_assert_int_eq(put_err(s, BGW_KIND_SERVICES, "nope", SVC, "\"1\"")->status, BGW_STORE_PRECONDITION);
    ck_assert_uint_eq(bgw_store_version(s), 1);
    json_decref(b);
    b = j("{'endpoints': ['127.0.0.1:2']}");
    ck_assert_int_eq(bgw_store_put(s, BGW_KIND_SERVICES, "a", b, "\"1\"", NULL, NULL, &err), 0);   /* quoted */
    json_decref(b);
    b = j("{'endpoints': ['127.0.0.1:3']}");
    ck_assert_int_eq(bgw_store_put(s, BGW_KIND_SERVICES, "a", b, "2", NULL, NULL, &err), 0);       /* bare */
    json_decref(b);
    b = j("{'endpoints': ['127.0.0.1:4']}");
    ck_assert_int_eq(bgw_store_put(s, BGW_KIND_SERVICES, "a", b, "W/\"1\", \"3\"", NULL, NULL, &err), 0);
    json_decref(b);
    b = j("{'endpoints': ['127.0.0.1:5']}");
    ck_assert_int_eq(bgw_store_put(s, BGW_KIND_SERVICES, "a", b, "*", NULL, NULL, &err), 0);
    json_decref(b);
    /* Two writers from the same revision: the second one loses, nothing is overwritten. */
    const char *rev = revision_of(s, BGW_KIND_SERVICES, "a");
    char r[32];
    snprintf(r, sizeof r, "\"%s\"", rev);
    b = j("{'endpoints': ['127.0.0.1:6']}");
    ck_assert_int_eq(bgw_store_put(s, BGW_KIND_SERVICES, "a", b, r, NULL, NULL, &err), 0);
    json_decref(b);
    ck_assert_int_eq(put_err(s, BGW_KIND_SERVICES, "a", "{'endpoints': ['127.0.0.1:7']}", r)->status,
                     BGW_STORE_PRECONDITION);
    json_t *o = bgw_store_get(s, BGW_KIND_SERVICES, "a", NULL);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(o, "endpoints"), 0)), "127.0.0.1:6");
    json_decref(o);
    ck_assert_int_eq(bgw_store_delete(s, BGW_KIND_SERVICES, "a", "\"1\"", &err), -1);
    ck_assert_int_eq(err.status, BGW_STORE_PRECONDITION);
    bgw_store_close(s);
}
END_TEST

START_TEST(test_put_errors_name_the_field)
{
    struct bgw_store *s = bgw_store_open(NULL, NULL);
    const struct bgw_store_error *e;

    put_ok(s, BGW_KIND_SERVICES, "orders", SVC, true);
    char *before = snapshot_text(s);
    e = put_err(s, BGW_KIND_ROUTES, "r", ROUTE("nope"), NULL);
    ck_assert_int_eq(e->status, BGW_STORE_INVALID);
    ck_assert_str_eq(e->field, "service");
    ck_assert_str_eq(e->message, "service: unknown service \"nope\"");
    e = put_err(s, BGW_KIND_ROUTES, "r", "{'match': {'path_prefix': 'api'}, 'service': 'orders'}", NULL);
    ck_assert_str_eq(e->field, "match.path_prefix");
    e = put_err(s, BGW_KIND_ROUTES, "r", "{'match': {'path_prefix': '/'}, 'service': 'orders', 'rate_limit': 'x'}",
                NULL);
    ck_assert_str_eq(e->field, "rate_limit");
    e = put_err(s, BGW_KIND_SERVICES, "orders", "{'endpoints': ['127.0.0.1:1'], 'bogus': 1}", NULL);
    ck_assert_str_eq(e->field, "bogus");
    e = put_err(s, BGW_KIND_SERVICES, "orders", "{'name': 'other', 'endpoints': ['127.0.0.1:1']}", NULL);
    ck_assert_str_eq(e->field, "name");
    e = put_err(s, BGW_KIND_SERVICES, "orders", "[1]", NULL);
    ck_assert_int_eq(e->status, BGW_STORE_INVALID);
    e = put_err(s, BGW_KIND_SERVICES, "bad/name", SVC, NULL);
    ck_assert_str_eq(e->field, "name");
    char *after = snapshot_text(s);
    ck_assert_str_eq(before, after);
    ck_assert_uint_eq(bgw_store_version(s), 1);
    free(before);
    free(after);
    bgw_store_close(s);
}
END_TEST

START_TEST(test_delete_referenced)
{
    struct bgw_store *s = bgw_store_open(NULL, NULL);
    struct bgw_store_error err;
    json_t *doc = j("{'services': [{'name': 'orders', 'endpoints': ['127.0.0.1:1']}],"
                    " 'rate_limits': [{'name': 'rl', 'requests': 10, 'per': 'second', 'key': 'client_ip'}],"
                    " 'auth_policies': [{'name': 'jwt', 'issuer': 'https://i', 'algorithms': ['RS256'],"
                    "                    'jwks': {'keys': []}}],"
                    " 'routes': [{'name': 'r', 'match': {'path_prefix': '/'}, 'service': 'orders',"
                    "             'rate_limit': 'rl', 'auth': 'jwt'}]}");

    ck_assert_msg(bgw_store_apply(s, doc, NULL, &err) == 0, "%s", err.message);
    json_decref(doc);
    ck_assert_int_eq(bgw_store_delete(s, BGW_KIND_SERVICES, "orders", NULL, &err), -1);
    ck_assert_int_eq(err.status, BGW_STORE_CONFLICT);
    ck_assert_str_eq(err.field, "routes[0].service");
    ck_assert_int_eq(bgw_store_delete(s, BGW_KIND_RATE_LIMITS, "rl", NULL, &err), -1);
    ck_assert_int_eq(err.status, BGW_STORE_CONFLICT);
    ck_assert_int_eq(bgw_store_delete(s, BGW_KIND_AUTH_POLICIES, "jwt", NULL, &err), -1);
    ck_assert_int_eq(err.status, BGW_STORE_CONFLICT);
    ck_assert_int_eq(bgw_store_delete(s, BGW_KIND_ROUTES, "nope", NULL, &err), -1);
    ck_assert_int_eq(err.status, BGW_STORE_NOT_FOUND);
    ck_assert_uint_eq(bgw_store_version(s), 1);
    ck_assert_int_eq(bgw_store_delete(s, BGW_KIND_ROUTES, "r", NULL, &err), 0);
    ck_assert_int_eq(bgw_store_delete(s, BGW_KIND_SERVICES, "orders", NULL, &err), 0);
    ck_assert_int_eq(bgw_store_delete(s, BGW_KIND_RATE_LIMITS, "rl", NULL, &err), 0);
    ck_assert_uint_eq(bgw_store_version(s), 4);
    ck_assert_ptr_null(bgw_store_get(s, BGW_KIND_SERVICES, "orders", NULL));
    bgw_store_close(s);
}
END_TEST

START_TEST(test_apply_all_or_nothing)
{
    struct bgw_store *s = bgw_store_open(NULL, NULL);
    struct bgw_store_error err;
    json_t *summary = NULL;

    put_ok(s, BGW_KIND_SERVICES, "keep", SVC, true);
    put_ok(s, BGW_KIND_SERVICES, "orders", SVC, true);
    char *before = snapshot_text(s);
    /* routes[1] refers to a missing service: nothing at all is applied, the field is the document's. */
    json_t *doc = j("{'services': [{'name': 'new', 'endpoints': ['127.0.0.1:5']}],"
                    " 'routes': [{'name': 'a', 'match': {'path_prefix': '/a'}, 'service': 'new'},"
                    "            {'name': 'b', 'match': {'path_prefix': '/b'}, 'service': 'ghost'}]}");
    ck_assert_int_eq(bgw_store_apply(s, doc, NULL, &err), -1);
    ck_assert_int_eq(err.status, BGW_STORE_INVALID);
    ck_assert_str_eq(err.field, "routes[1].service");
    json_decref(doc);
    doc = j("{'routes': [{'name': 'a', 'match': {}, 'service': 'orders'}]}");
    ck_assert_int_eq(bgw_store_apply(s, doc, NULL, &err), -1);
    ck_assert_str_eq(err.field, "routes[0].match");
    json_decref(doc);
    doc = j("{'routes': [{'match': {'path_prefix': '/'}, 'service': 'orders'}]}");
    ck_assert_int_eq(bgw_store_apply(s, doc, NULL, &err), -1);
    ck_assert_str_eq(err.field, "routes[0].name");
    json_decref(doc);
    doc = j("{'routes': [{'name': 'a', 'revision': '9', 'match': {'path_prefix': '/'}, 'service': 'orders'},"
            "            {'revision': '9', 'match': {'path_prefix': '/'}, 'service': 'orders'}]}");
    ck_assert_int_eq(bgw_store_apply(s, doc, NULL, &err), -1);
    ck_assert_str_eq(err.field, "routes[1].name");
    json_decref(doc);
    doc = j("{'servicez': []}");
    ck_assert_int_eq(bgw_store_apply(s, doc, NULL, &err), -1);
    ck_assert_str_eq(err.field, "servicez");
    json_decref(doc);
    doc = j("{'services': [{'name': 'x', 'endpoints': ['127.0.0.1:1']}, {'name': 'x', 'endpoints': ['127.0.0.1:2']}]}");
    ck_assert_int_eq(bgw_store_apply(s, doc, NULL, &err), -1);
    ck_assert_str_eq(err.field, "services[1].name");
    json_decref(doc);
    char *after = snapshot_text(s);
    ck_assert_str_eq(before, after);
    free(after);

    /* A good document: created, replaced, unchanged; others left alone; one new version. */
    doc = j("{'version': 'ignored', 'services': [{'name': 'orders', 'endpoints': ['127.0.0.1:9001']},"
            "  {'name': 'new', 'endpoints': ['127.0.0.1:7']}],"
            " 'routes': [{'name': 'a', 'match': {'path_prefix': '/a'}, 'service': 'new'}]}");
    ck_assert_msg(bgw_store_apply(s, doc, &summary, &err) == 0, "%s", err.message);
    json_decref(doc);
    ck_assert_str_eq(json_string_value(json_object_get(summary, "version")), "3");
    json_t *items = json_object_get(summary, "items");
    ck_assert_uint_eq(json_array_size(items), 3);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 0), "result")), "unchanged");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 1), "result")), "created");
    json_decref(summary);
    ck_assert_str_eq(revision_of(s, BGW_KIND_SERVICES, "keep"), "1");
    ck_assert_str_eq(revision_of(s, BGW_KIND_SERVICES, "orders"), "2");
    ck_assert_str_eq(revision_of(s, BGW_KIND_ROUTES, "a"), "3");
    /* The snapshot applies back as a no-op. */
    json_t *snap = bgw_store_snapshot(s);
    ck_assert_int_eq(bgw_store_apply(s, snap, NULL, &err), 0);
    json_decref(snap);
    ck_assert_uint_eq(bgw_store_version(s), 3);
    free(before);
    bgw_store_close(s);
}
END_TEST

START_TEST(test_corrupt_state_refused)
{
    make_dir();
    write_state("{\"format\": 1, \"version\": 3, \"services\": [");
    ck_assert_ptr_nonnull(strstr(open_err(), "corrupt state file"));
    write_state("");
    ck_assert_ptr_nonnull(strstr(open_err(), "corrupt state file"));
    write_state("{\"format\": 2, \"version\": 0, \"services\": [], \"routes\": [], \"rate_limits\": [],"
                " \"auth_policies\": []}");
    ck_assert_ptr_nonnull(strstr(open_err(), "format"));
    /* Well-formed but invalid as a document: a route to a missing service. */
    write_state("{\"format\": 1, \"version\": 1, \"services\": [], \"rate_limits\": [], \"auth_policies\": [],"
                " \"routes\": [{\"revision\": 1, \"object\": {\"name\": \"r\", \"match\": {\"path_prefix\": \"/\"},"
                " \"service\": \"ghost\"}}]}");
    const char *e = open_err();
    ck_assert_msg(strstr(e, "routes[0].service") != NULL, "%s", e);
    /* A revision above the version. */
    write_state("{\"format\": 1, \"version\": 1, \"routes\": [], \"rate_limits\": [], \"auth_policies\": [],"
                " \"services\": [{\"revision\": 5, \"object\": {\"name\": \"s\", \"endpoints\": []}}]}");
    ck_assert_ptr_nonnull(strstr(open_err(), "services[0]"));
    remove_dir();
}
END_TEST

START_TEST(test_leftover_temp_file_ignored)
{
    make_dir();
    struct bgw_store *s = open_ok();
    put_ok(s, BGW_KIND_SERVICES, "a", SVC, true);
    bgw_store_close(s);
    char path[400];
    snprintf(path, sizeof path, "%s/state.json.tmp", g_dir);
    FILE *f = fopen(path, "w");
    fputs("{garbage", f);
    fclose(f);
    s = open_ok();
    ck_assert_str_eq(revision_of(s, BGW_KIND_SERVICES, "a"), "1");
    ck_assert_int_eq(access(path, F_OK), -1);
    bgw_store_close(s);
    remove_dir();
}
END_TEST

START_TEST(test_directory_locked)
{
    make_dir();
    struct bgw_store *s = open_ok();
    ck_assert_ptr_nonnull(strstr(open_err(), "in use"));
    bgw_store_close(s);
    s = open_ok();
    bgw_store_close(s);
    remove_dir();
}
END_TEST

START_TEST(test_bootstrap)
{
    struct bgw_store_error err;
    char file[400];
    bool applied = false;

    make_dir();
    snprintf(file, sizeof file, "%s/boot.json", g_dir);
    FILE *f = fopen(file, "w");
    fputs("{\"services\": [{\"name\": \"s\", \"endpoints\": [\"127.0.0.1:1\"]}],"
          " \"routes\": [{\"name\": \"r\", \"match\": {\"path_prefix\": \"/\"}, \"service\": \"s\"}]}", f);
    fclose(f);
    struct bgw_store *s = open_ok();
    ck_assert_msg(bgw_store_bootstrap(s, file, &applied, &err) == 0, "%s", err.message);
    ck_assert(applied);
    ck_assert_uint_eq(bgw_store_version(s), 1);
    ck_assert_int_eq(bgw_store_delete(s, BGW_KIND_ROUTES, "r", NULL, &err), 0);
    bgw_store_close(s);
    /* Not again once the state has a history. */
    s = open_ok();
    ck_assert_int_eq(bgw_store_bootstrap(s, file, &applied, &err), 0);
    ck_assert(!applied);
    ck_assert_ptr_null(bgw_store_get(s, BGW_KIND_ROUTES, "r", NULL));
    /* An invalid file: one line naming the file and the field. */
    f = fopen(file, "w");
    fputs("{\"routes\": [{\"name\": \"r\", \"match\": {\"path_prefix\": \"x\"}, \"service\": \"s\"}]}", f);
    fclose(f);
    ck_assert_int_eq(bgw_store_bootstrap(s, file, &applied, &err), -1);
    ck_assert_msg(strstr(err.message, file) && strstr(err.message, "routes[0].match.path_prefix"), "%s",
                  err.message);
    bgw_store_close(s);
    remove_dir();
}
END_TEST

static int g_calls;
static char g_version[32];

static void listener(void *arg, const char *version, json_t *doc)
{
    (void)arg;
    g_calls++;
    snprintf(g_version, sizeof g_version, "%s", version);
    /* The published document is the validated one, endpoints as objects. */
    json_t *svc = json_array_get(json_object_get(doc, "services"), 0);
    if (svc)
        ck_assert(json_is_object(json_array_get(json_object_get(svc, "endpoints"), 0)));
}

START_TEST(test_listener)
{
    struct bgw_store *s = bgw_store_open(NULL, NULL);

    bgw_store_set_listener(s, listener, NULL);
    ck_assert_int_eq(g_calls, 1);
    ck_assert_str_eq(g_version, "0");
    put_ok(s, BGW_KIND_SERVICES, "a", SVC, true);
    ck_assert_int_eq(g_calls, 2);
    ck_assert_str_eq(g_version, "1");
    put_ok(s, BGW_KIND_SERVICES, "a", SVC, false);      /* unchanged: no push */
    ck_assert_int_eq(g_calls, 2);
    put_err(s, BGW_KIND_ROUTES, "r", ROUTE("ghost"), NULL);
    ck_assert_int_eq(g_calls, 2);
    bgw_store_close(s);
}
END_TEST

START_TEST(test_endpoints)
{
    struct bgw_store *s = bgw_store_open(NULL, NULL);

    put_ok(s, BGW_KIND_SERVICES, "a",
           "{'endpoints': ['127.0.0.1:1', {'address': '127.0.0.1:2', 'healthy': false}]}", true);
    json_t *e = bgw_store_endpoints(s, "a");
    ck_assert_ptr_nonnull(e);
    json_t *items = json_object_get(e, "items");
    ck_assert_uint_eq(json_array_size(items), 2);
    ck_assert(json_is_false(json_object_get(json_array_get(items, 1), "healthy")));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 0), "source")), "static");
    json_decref(e);
    ck_assert_ptr_null(bgw_store_endpoints(s, "b"));
    bgw_store_close(s);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_kinds_and_names);
    tcase_add_test(tc, test_put_persists_across_reopen);
    tcase_add_test(tc, test_revisions_and_version);
    tcase_add_test(tc, test_if_match);
    tcase_add_test(tc, test_put_errors_name_the_field);
    tcase_add_test(tc, test_delete_referenced);
    tcase_add_test(tc, test_apply_all_or_nothing);
    tcase_add_test(tc, test_corrupt_state_refused);
    tcase_add_test(tc, test_leftover_temp_file_ignored);
    tcase_add_test(tc, test_directory_locked);
    tcase_add_test(tc, test_bootstrap);
    tcase_add_test(tc, test_listener);
    tcase_add_test(tc, test_endpoints);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
