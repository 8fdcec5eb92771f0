/*
 * test_k8s_endpoints.c - unit tests of the Kubernetes index (controlplane/k8s/k8s_endpoints.h): ready and
 * terminating conditions, port by name and by number (through the Service's ports or the slice's own),
 * slices merged and deduplicated, IPv6, "endpoints": null, deletions, a deleted Service, relist
 * replacement per namespace, label changes.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "k8s_endpoints.h"

static json_t *svc(const char *ns, const char *name, const char *ports_json)
{
    json_t *o = json_pack("{s:{s:s,s:s},s:{s:o}}", "metadata", "namespace", ns, "name", name, "spec", "ports",
                          json_loads(ports_json, 0, NULL));
    ck_assert_ptr_nonnull(o);
    return o;
}

static json_t *slice(const char *ns, const char *name, const char *service, const char *eps_json,
                     const char *ports_json, const char *type)
{
    json_t *o = json_pack("{s:{s:s,s:s,s:{s:s}},s:s,s:o,s:o}", "metadata", "namespace", ns, "name", name, "labels",
                          "kubernetes.io/service-name", service, "addressType", type, "endpoints",
                          json_loads(eps_json, JSON_DECODE_ANY, NULL), "ports", json_loads(ports_json, 0, NULL));
    ck_assert_ptr_nonnull(o);
    return o;
}

/* lookup as a compact JSON text ("null" for NULL). */
static char *look(struct bgw_k8s_index *x, const char *ns, const char *s, const char *port)
{
    json_t *a = bgw_k8s_index_lookup(x, ns, s, port);
    char *t = a ? json_dumps(a, JSON_COMPACT) : strdup("null");
    json_decref(a);
    return t;
}

#define CHECK_LOOKUP(x, ns, s, port, want) do { \
        char *got_ = look(x, ns, s, port); \
        ck_assert_str_eq(got_, want); \
        free(got_); \
    } while (0)

static void apply(struct bgw_k8s_index *x, enum bgw_k8s_kind k, const char *type, json_t *o, int want)
{
    ck_assert_int_eq(bgw_k8s_index_apply(x, k, type, o), want);
    json_decref(o);
}

#define EPS "[{\"addresses\":[\"10.0.0.1\"],\"conditions\":{\"ready\":true}}," \
            "{\"addresses\":[\"10.0.0.2\"]}," \
            "{\"addresses\":[\"10.0.0.3\"],\"conditions\":{\"ready\":false}}," \
            "{\"addresses\":[\"10.0.0.4\"],\"conditions\":{\"ready\":true,\"terminating\":true}}," \
            "{\"addresses\":[\"10.0.0.5\"],\"conditions\":{\"ready\":true,\"terminating\":false}}]"

START_TEST(test_conditions_and_ports)
{
    struct bgw_k8s_index *x = bgw_k8s_index_new();
    CHECK_LOOKUP(x, "shop", "orders", "http", "null");              /* no Service: no endpoints at all */
    apply(x, BGW_K8S_SERVICES, "ADDED",
          svc("shop", "orders", "[{\"name\":\"http\",\"port\":80,\"targetPort\":\"web\"},"
                                "{\"name\":\"metrics\",\"port\":9090,\"targetPort\":9090}]"), 1);
    CHECK_LOOKUP(x, "shop", "orders", "http", "[]");                /* a Service without slices: none */
    apply(x, BGW_K8S_ENDPOINTSLICES, "ADDED",
          slice("shop", "orders-a", "orders", EPS, "[{\"name\":\"http\",\"port\":8080},{\"name\":\"metrics\",\"port\":9091}]",
                "IPv4"), 1);
    CHECK_LOOKUP(x, "shop", "orders", "http", "[\"10.0.0.1:8080\",\"10.0.0.2:8080\",\"10.0.0.5:8080\"]");
    CHECK_LOOKUP(x, "shop", "orders", "metrics", "[\"10.0.0.1:9091\",\"10.0.0.2:9091\",\"10.0.0.5:9091\"]");
    /* a number is the Service port: 80 → the port named http → its target 8080 */
    CHECK_LOOKUP(x, "shop", "orders", "80", "[\"10.0.0.1:8080\",\"10.0.0.2:8080\",\"10.0.0.5:8080\"]");
    /* not a Service port: matched against the slices' port numbers (the target port) */
    CHECK_LOOKUP(x, "shop", "orders", "9091", "[\"10.0.0.1:9091\",\"10.0.0.2:9091\",\"10.0.0.5:9091\"]");
    CHECK_LOOKUP(x, "shop", "orders", "7777", "[]");
    /* the Service changes which port 80 names: the cached result of "80" must not survive */
    apply(x, BGW_K8S_SERVICES, "MODIFIED",
          svc("shop", "orders", "[{\"name\":\"metrics\",\"port\":80,\"targetPort\":9090}]"), 1);
    CHECK_LOOKUP(x, "shop", "orders", "80", "[\"10.0.0.1:9091\",\"10.0.0.2:9091\",\"10.0.0.5:9091\"]");
    apply(x, BGW_K8S_SERVICES, "MODIFIED",
          svc("shop", "orders", "[{\"name\":\"http\",\"port\":80,\"targetPort\":\"web\"},"
                                "{\"name\":\"metrics\",\"port\":9090,\"targetPort\":9090}]"), 1);
    CHECK_LOOKUP(x, "shop", "orders", "grpc", "[]");
    CHECK_LOOKUP(x, "other", "orders", "http", "null");
    bgw_k8s_index_free(x);
}
END_TEST

START_TEST(test_slices_merged_and_deleted)
{
    struct bgw_k8s_index *x = bgw_k8s_index_new();
    apply(x, BGW_K8S_SERVICES, "ADDED", svc("ns", "web", "[{\"port\":80,\"targetPort\":8080}]"), 1);
    apply(x, BGW_K8S_ENDPOINTSLICES, "ADDED",
          slice("ns", "web-1", "web", "[{\"addresses\":[\"10.0.0.1\"]},{\"addresses\":[\"10.0.0.2\"]}]",
                "[{\"port\":8080}]", "IPv4"), 1);
    apply(x, BGW_K8S_ENDPOINTSLICES, "ADDED",
          slice("ns", "web-2", "web", "[{\"addresses\":[\"10.0.0.2\"]},{\"addresses\":[\"10.0.0.0\"]}]",
                "[{\"port\":8080}]", "IPv4"), 1);
    /* unnamed ports: the number 80 names the Service's unnamed port, i.e. the slices' unnamed port */
    CHECK_LOOKUP(x, "ns", "web", "80", "[\"10.0.0.0:8080\",\"10.0.0.1:8080\",\"10.0.0.2:8080\"]");
    /* a change of the only slice of a service */
    apply(x, BGW_K8S_SERVICES, "ADDED", svc("ns", "solo", "[{\"port\":80}]"), 1);
    apply(x, BGW_K8S_ENDPOINTSLICES, "ADDED",
          slice("ns", "solo-1", "solo", "[{\"addresses\":[\"10.0.1.1\"]}]", "[{\"port\":80}]", "IPv4"), 1);
    apply(x, BGW_K8S_ENDPOINTSLICES, "MODIFIED",
          slice("ns", "solo-1", "solo", "[{\"addresses\":[\"10.0.1.2\"]}]", "[{\"port\":80}]", "IPv4"), 1);
    CHECK_LOOKUP(x, "ns", "solo", "80", "[\"10.0.1.2:80\"]");
    /* the same object again changes nothing */
    apply(x, BGW_K8S_ENDPOINTSLICES, "MODIFIED",
          slice("ns", "web-2", "web", "[{\"addresses\":[\"10.0.0.2\"]},{\"addresses\":[\"10.0.0.0\"]}]",
                "[{\"port\":8080}]", "IPv4"), 0);
    apply(x, BGW_K8S_ENDPOINTSLICES, "MODIFIED", slice("ns", "web-2", "web", "null", "[{\"port\":8080}]", "IPv4"), 1);
    CHECK_LOOKUP(x, "ns", "web", "80", "[\"10.0.0.1:8080\",\"10.0.0.2:8080\"]");
    apply(x, BGW_K8S_ENDPOINTSLICES, "DELETED", slice("ns", "web-1", "web", "null", "[]", "IPv4"), 1);
    CHECK_LOOKUP(x, "ns", "web", "80", "[]");
    apply(x, BGW_K8S_ENDPOINTSLICES, "DELETED", slice("ns", "web-1", "web", "null", "[]", "IPv4"), 0);
    ck_assert_uint_eq(bgw_k8s_index_count(x, BGW_K8S_ENDPOINTSLICES), 2);   /* web-2 and solo-1 */
    apply(x, BGW_K8S_SERVICES, "DELETED", svc("ns", "web", "[]"), 1);
    CHECK_LOOKUP(x, "ns", "web", "80", "null");                    /* deleted Service: no endpoints */
    bgw_k8s_index_free(x);
}
END_TEST

START_TEST(test_ipv6_fqdn_and_labels)
{
    struct bgw_k8s_index *x = bgw_k8s_index_new();
    apply(x, BGW_K8S_SERVICES, "ADDED", svc("ns", "v6", "[{\"name\":\"h\",\"port\":80}]"), 1);
    apply(x, BGW_K8S_ENDPOINTSLICES, "ADDED",
          slice("ns", "v6-a", "v6", "[{\"addresses\":[\"fd00::1\"]}]", "[{\"name\":\"h\",\"port\":8080}]", "IPv6"), 1);
    apply(x, BGW_K8S_ENDPOINTSLICES, "ADDED",
          slice("ns", "v6-f", "v6", "[{\"addresses\":[\"a.example\"]}]", "[{\"name\":\"h\",\"port\":8080}]", "FQDN"), 0);
    CHECK_LOOKUP(x, "ns", "v6", "h", "[\"[fd00::1]:8080\"]");
    /* a slice whose service label goes away leaves the Service */
    json_t *o = slice("ns", "v6-a", "v6", "[{\"addresses\":[\"fd00::1\"]}]", "[{\"name\":\"h\",\"port\":8080}]", "IPv6");
    json_object_del(json_object_get(json_object_get(o, "metadata"), "labels"), "kubernetes.io/service-name");
    apply(x, BGW_K8S_ENDPOINTSLICES, "MODIFIED", o, 1);
    CHECK_LOOKUP(x, "ns", "v6", "h", "[]");
    ck_assert_int_eq(bgw_k8s_index_apply(x, BGW_K8S_SERVICES, "BOOKMARK", NULL), 0);
    bgw_k8s_index_free(x);
}
END_TEST

START_TEST(test_replace_per_namespace)
{
    struct bgw_k8s_index *x = bgw_k8s_index_new();
    apply(x, BGW_K8S_SERVICES, "ADDED", svc("a", "s", "[{\"name\":\"h\",\"port\":80}]"), 1);
    apply(x, BGW_K8S_SERVICES, "ADDED", svc("b", "s", "[{\"name\":\"h\",\"port\":80}]"), 1);
    apply(x, BGW_K8S_ENDPOINTSLICES, "ADDED",
          slice("a", "s-1", "s", "[{\"addresses\":[\"10.0.0.1\"]}]", "[{\"name\":\"h\",\"port\":1}]", "IPv4"), 1);
    apply(x, BGW_K8S_ENDPOINTSLICES, "ADDED",
          slice("b", "s-1", "s", "[{\"addresses\":[\"10.0.0.2\"]}]", "[{\"name\":\"h\",\"port\":1}]", "IPv4"), 1);
    /* relist of namespace a: s-1 went away while disconnected, s-2 appeared */
    json_t *items = json_array();
    json_array_append_new(items, slice("a", "s-2", "s", "[{\"addresses\":[\"10.0.0.3\"]}]",
                                       "[{\"name\":\"h\",\"port\":1}]", "IPv4"));
    ck_assert_int_eq(bgw_k8s_index_replace(x, BGW_K8S_ENDPOINTSLICES, "a", items), 0);
    json_decref(items);
    CHECK_LOOKUP(x, "a", "s", "h", "[\"10.0.0.3:1\"]");
    CHECK_LOOKUP(x, "b", "s", "h", "[\"10.0.0.2:1\"]");
    /* relist of all namespaces with no services */
    items = json_array();
    ck_assert_int_eq(bgw_k8s_index_replace(x, BGW_K8S_SERVICES, "", items), 0);
    json_decref(items);
    CHECK_LOOKUP(x, "a", "s", "h", "null");
    CHECK_LOOKUP(x, "b", "s", "h", "null");
    ck_assert_uint_eq(bgw_k8s_index_count(x, BGW_K8S_SERVICES), 0);
    bgw_k8s_index_free(x);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("k8s_endpoints");
    TCase *tc = tcase_create("k8s_endpoints");
    tcase_add_test(tc, test_conditions_and_ports);
    tcase_add_test(tc, test_slices_merged_and_deleted);
    tcase_add_test(tc, test_ipv6_fqdn_and_labels);
    tcase_add_test(tc, test_replace_per_namespace);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
