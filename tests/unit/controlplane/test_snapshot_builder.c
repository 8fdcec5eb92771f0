/*
 * test_snapshot_builder.c - unit tests of the snapshot builder (controlplane/snapshot_builder.h): store
 * documents published at once under the store's version, Kubernetes references resolved through the
 * lookup, source changes coalesced and published as "N.G", rebuilds that change nothing not published,
 * health results applied, the endpoints view and the snapshot.
 */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapshot_builder.h"

/* ---- a publish sink and a fake Kubernetes source ---- */

struct sink {
    pthread_mutex_t lock;
    int count;
    char version[64];
    json_t *doc;
};

static void sink_publish(void *arg, const char *version, const json_t *doc)
{
    struct sink *s = arg;
    pthread_mutex_lock(&s->lock);
    s->count++;
    snprintf(s->version, sizeof s->version, "%s", version);
    json_decref(s->doc);
    s->doc = json_deep_copy(doc);
    pthread_mutex_unlock(&s->lock);
}

static int sink_count(struct sink *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->count;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* Poll until the sink has seen n publishes (up to 2 s). */
static bool wait_count(struct sink *s, int n)
{
    for (int i = 0; i < 2000; i++) {
        if (sink_count(s) >= n) return true;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return false;
}

static json_t *g_k8s_eps;            /* what the fake API server knows for shop/orders:http */
static pthread_mutex_t g_k8s_lock = PTHREAD_MUTEX_INITIALIZER;

static json_t *fake_lookup(void *arg, const char *ns, const char *service, const char *port)
{
    (void)arg;
    if (strcmp(ns, "shop") != 0 || strcmp(service, "orders") != 0 || strcmp(port, "http") != 0) return NULL;
    pthread_mutex_lock(&g_k8s_lock);
    json_t *out = g_k8s_eps ? json_deep_copy(g_k8s_eps) : NULL;
    pthread_mutex_unlock(&g_k8s_lock);
    return out;
}

static void set_k8s(const char *json)
{
    pthread_mutex_lock(&g_k8s_lock);
    json_decref(g_k8s_eps);
    g_k8s_eps = json ? json_loads(json, 0, NULL) : NULL;
    pthread_mutex_unlock(&g_k8s_lock);
}

static json_t *doc(void)
{
    return json_loads("{\"services\":["
                      "{\"name\":\"static\",\"endpoints\":[{\"address\":\"127.0.0.1:1\",\"healthy\":true},"
                      "{\"address\":\"127.0.0.1:2\",\"healthy\":false}]},"
                      "{\"name\":\"orders\",\"kubernetes\":{\"namespace\":\"shop\",\"service\":\"orders\","
                      "\"port\":\"http\"}}],"
                      "\"routes\":[],\"rate_limits\":[],\"auth_policies\":[]}",
                      0, NULL);
}

static json_t *eps_of(json_t *d, size_t svc)
{
    return json_object_get(json_array_get(json_object_get(d, "services"), svc), "endpoints");
}

struct fixture {
    struct sink sink;
    struct bgw_builder *b;
};

static void setup(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->sink.lock, NULL);
    set_k8s("[\"10.0.0.1:8080\", \"10.0.0.2:8080\"]");
    f->b = bgw_builder_new(sink_publish, &f->sink);
    ck_assert_ptr_nonnull(f->b);
    bgw_builder_set_k8s(f->b, fake_lookup, NULL);
}

static void teardown(struct fixture *f)
{
    bgw_builder_free(f->b);
    json_decref(f->sink.doc);
    set_k8s(NULL);
}

START_TEST(test_document_published_at_once)
{
    struct fixture f;
    setup(&f);
    json_t *d = doc();
    bgw_builder_set_document(f.b, "7", d);
    ck_assert_int_eq(sink_count(&f.sink), 1);
    ck_assert_str_eq(f.sink.version, "7");
    /* static endpoints keep their document health; Kubernetes ones come from the lookup, healthy */
    json_t *want = json_loads("[{\"address\":\"127.0.0.1:1\",\"healthy\":true},"
                              "{\"address\":\"127.0.0.1:2\",\"healthy\":false}]", 0, NULL);
    ck_assert(json_equal(eps_of(f.sink.doc, 0), want));
    json_decref(want);
    want = json_loads("[{\"address\":\"10.0.0.1:8080\",\"healthy\":true},"
                      "{\"address\":\"10.0.0.2:8080\",\"healthy\":true}]", 0, NULL);
    ck_assert(json_equal(eps_of(f.sink.doc, 1), want));
    json_decref(want);
    /* the caller's document is not touched */
    ck_assert_ptr_null(eps_of(d, 1));
    json_decref(d);
    teardown(&f);
}
END_TEST

START_TEST(test_source_changes_coalesced_and_versioned)
{
    struct fixture f;
    setup(&f);
    json_t *d = doc();
    bgw_builder_set_document(f.b, "7", d);
    set_k8s("[\"10.0.0.3:8080\"]");
    for (int i = 0; i < 50; i++) bgw_builder_sources_changed(f.b);
    ck_assert(wait_count(&f.sink, 2));
    ck_assert_str_eq(f.sink.version, "7.1");
    ck_assert_int_eq(json_array_size(eps_of(f.sink.doc, 1)), 1);
    /* a rebuild that changes nothing publishes nothing */
    bgw_builder_sources_changed(f.b);
    nanosleep(&(struct timespec){0, 60 * 1000000}, NULL);  /* several windows: nothing may arrive */
    ck_assert_int_eq(sink_count(&f.sink), 2);
    /* the Service disappears: no endpoints */
    set_k8s(NULL);
    bgw_builder_sources_changed(f.b);
    ck_assert(wait_count(&f.sink, 3));
    ck_assert_str_eq(f.sink.version, "7.2");
    ck_assert_int_eq(json_array_size(eps_of(f.sink.doc, 1)), 0);
    /* a new stored document resets the generation */
    bgw_builder_set_document(f.b, "8", d);
    ck_assert_str_eq(f.sink.version, "8");
    json_decref(d);
    teardown(&f);
}
END_TEST

START_TEST(test_health_applied)
{
    struct fixture f;
    setup(&f);
    json_t *d = doc();
    bgw_builder_set_document(f.b, "1", d);
    json_decref(d);
    bgw_builder_set_health(f.b, "orders", "10.0.0.2:8080", false, 1700000000123, "connection refused");
    ck_assert(wait_count(&f.sink, 2));
    ck_assert(json_is_true(json_object_get(json_array_get(eps_of(f.sink.doc, 1), 0), "healthy")));
    ck_assert(json_is_false(json_object_get(json_array_get(eps_of(f.sink.doc, 1), 1), "healthy")));
    /* a result that does not change health publishes nothing */
    bgw_builder_set_health(f.b, "orders", "10.0.0.2:8080", false, 1700000001000, "connection refused");
    nanosleep(&(struct timespec){0, 60 * 1000000}, NULL);
    ck_assert_int_eq(sink_count(&f.sink), 2);

    json_t *eps = bgw_builder_endpoints(f.b, "orders");
    ck_assert_ptr_nonnull(eps);
    json_t *e = json_array_get(json_object_get(eps, "items"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(e, "source")), "kubernetes");
    ck_assert_str_eq(json_string_value(json_object_get(e, "last_check")), "2023-11-14T22:13:21.000Z");
    ck_assert_str_eq(json_string_value(json_object_get(e, "last_error")), "connection refused");
    e = json_array_get(json_object_get(eps, "items"), 0);
    ck_assert(json_is_null(json_object_get(e, "last_check")));
    json_decref(eps);
    eps = bgw_builder_endpoints(f.b, "static");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(eps, "items"), 0), "source")),
                     "static");
    json_decref(eps);
    ck_assert_ptr_null(bgw_builder_endpoints(f.b, "absent"));

    /* a document "healthy": false stays down whatever the checker says */
    bgw_builder_set_health(f.b, "static", "127.0.0.1:2", true, 1700000000000, "");
    json_t *snap = bgw_builder_snapshot(f.b);
    ck_assert(json_is_false(json_object_get(json_array_get(eps_of(snap, 0), 1), "healthy")));
    ck_assert_str_eq(json_string_value(json_object_get(snap, "version")), "1.1");
    json_decref(snap);
    teardown(&f);
}
END_TEST

static int g_watched;
static void watcher(void *arg, const json_t *resolved)
{
    (void)arg;
    if (json_array_size(json_object_get(resolved, "services")) == 2) g_watched++;
}

START_TEST(test_watchers_and_empty)
{
    struct sink s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct bgw_builder *b = bgw_builder_new(sink_publish, &s);
    ck_assert_ptr_null(bgw_builder_snapshot(b));
    ck_assert_ptr_null(bgw_builder_endpoints(b, "orders"));
    bgw_builder_add_watcher(b, watcher, NULL);
    json_t *d = doc();
    bgw_builder_set_document(b, "3", d);   /* no Kubernetes source: the reference resolves to nothing */
    json_decref(d);
    ck_assert_int_eq(g_watched, 1);
    ck_assert_int_eq(json_array_size(eps_of(s.doc, 1)), 0);
    bgw_builder_free(b);
    json_decref(s.doc);
}
END_TEST

/* ---- fetched keys ---- */

static json_t *g_fetched;            /* what the fake JWKS fetcher has for https://keys.test/jwks */

static json_t *fake_jwks(void *arg, const char *uri)
{
    (void)arg;
    if (strcmp(uri, "https://keys.test/jwks") != 0 || !g_fetched) return NULL;
    return json_deep_copy(g_fetched);
}

START_TEST(test_fetched_keys_merged)
{
    struct fixture f;
    setup(&f);
    bgw_builder_set_jwks(f.b, fake_jwks, NULL);
    json_t *d = json_loads("{\"services\":[],\"routes\":[],\"rate_limits\":[],\"auth_policies\":["
                           "{\"name\":\"a\",\"jwks_uri\":\"https://keys.test/jwks\","
                           "\"jwks\":{\"keys\":[{\"kty\":\"oct\",\"kid\":\"inline\"}]}},"
                           "{\"name\":\"b\",\"jwks_uri\":\"https://other.test/jwks\"},"
                           "{\"name\":\"c\",\"jwks\":{\"keys\":[]}}]}", 0, NULL);
    ck_assert_ptr_nonnull(d);
    json_t *before = json_deep_copy(d);
    bgw_builder_set_document(f.b, "3", d);                   /* nothing fetched yet: as stored */
    ck_assert(json_equal(json_object_get(f.sink.doc, "auth_policies"), json_object_get(d, "auth_policies")));
    g_fetched = json_loads("[{\"kty\":\"RSA\",\"kid\":\"k1\"}]", 0, NULL);
    bgw_builder_sources_changed(f.b);
    ck_assert(wait_count(&f.sink, 2));
    ck_assert_str_eq(f.sink.version, "3.1");
    json_t *want = json_loads("[{\"kty\":\"oct\",\"kid\":\"inline\"},{\"kty\":\"RSA\",\"kid\":\"k1\"}]", 0, NULL);
    json_t *pols = json_object_get(f.sink.doc, "auth_policies");
    ck_assert(json_equal(json_object_get(json_object_get(json_array_get(pols, 0), "jwks"), "keys"), want));
    ck_assert_ptr_null(json_object_get(json_array_get(pols, 1), "jwks"));      /* never fetched */
    ck_assert(json_equal(json_array_get(pols, 2), json_array_get(json_object_get(d, "auth_policies"), 2)));
    ck_assert(json_equal(d, before));                                         /* the stored document as it was */
    /* the same keys again: nothing published */
    bgw_builder_sources_changed(f.b);
    nanosleep(&(struct timespec){0, 50 * 1000000}, NULL);
    ck_assert_int_eq(sink_count(&f.sink), 2);
    json_decref(want);
    json_decref(before);
    json_decref(d);
    json_decref(g_fetched);
    g_fetched = NULL;
    teardown(&f);
}
END_TEST

static Suite *builder_suite(void)
{
    Suite *s = suite_create("snapshot_builder");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_document_published_at_once);
    tcase_add_test(tc, test_source_changes_coalesced_and_versioned);
    tcase_add_test(tc, test_health_applied);
    tcase_add_test(tc, test_watchers_and_empty);
    tcase_add_test(tc, test_fetched_keys_merged);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(builder_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
