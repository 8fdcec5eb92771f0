/*
 * test_k8s_conn.c - unit tests of the API server address and credentials (controlplane/k8s/k8s_conn.h):
 * a kubeconfig's current-context, -data fields (base64) and files relative to the kubeconfig, errors
 * naming the field, in-cluster from the environment and a service-account directory, token rotation.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "k8s_conn.h"

static char dir[] = "/tmp/bgw-k8s-conn-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
    static char path[4][512];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

START_TEST(test_kubeconfig_current_context)
{
    const char *kc = write_file("config",
        "apiVersion: v1\nkind: Config\ncurrent-context: b\n"
        "clusters:\n"
        "- name: ca\n  cluster:\n    server: https://wrong:1\n"
        "- name: cb\n  cluster:\n    server: https://10.1.2.3:6443/\n"
        "    certificate-authority-data: LS0tLS1CRUdJTg==\n"
        "contexts:\n- name: a\n  context: {cluster: ca, user: ua}\n"
        "- name: b\n  context: {cluster: cb, user: ub, namespace: shop}\n"
        "users:\n- name: ua\n  user: {token: no}\n"
        "- name: ub\n  user:\n    client-certificate: certs/c.pem\n    client-key: /abs/k.pem\n    token: t0k3n\n");
    struct bgw_k8s_conn c;
    char err[512] = "", hdr[256];
    ck_assert_int_eq(bgw_k8s_conn_from_kubeconfig(&c, kc, err, sizeof err), 0);
    ck_assert_str_eq(c.server, "https://10.1.2.3:6443");
    ck_assert_str_eq(c.namespace_, "shop");
    ck_assert_uint_eq(c.ca_pem_len, 10);
    ck_assert(memcmp(c.ca_pem, "-----BEGIN", 10) == 0);
    char want[600];
    snprintf(want, sizeof want, "%s/certs/c.pem", dir);
    ck_assert_str_eq(c.cert_file, want);
    ck_assert_str_eq(c.key_file, "/abs/k.pem");
    ck_assert(bgw_k8s_conn_auth_header(&c, hdr, sizeof hdr));
    ck_assert_str_eq(hdr, "Authorization: Bearer t0k3n");
    bgw_k8s_conn_free(&c);
}
END_TEST

START_TEST(test_kubeconfig_errors)
{
    struct bgw_k8s_conn c;
    char err[512];
    const char *kc = write_file("bad1", "current-context: x\ncontexts: []\n");
    ck_assert_int_eq(bgw_k8s_conn_from_kubeconfig(&c, kc, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "no context named \"x\""));
    kc = write_file("bad2", "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
                            "clusters:\n- name: c\n  cluster: {server: ftp://x}\n");
    ck_assert_int_eq(bgw_k8s_conn_from_kubeconfig(&c, kc, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "server"));
    kc = write_file("bad3", "a: [\n");
    ck_assert_int_eq(bgw_k8s_conn_from_kubeconfig(&c, kc, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "line"));
    ck_assert_int_eq(bgw_k8s_conn_from_kubeconfig(&c, "/nonexistent/kc", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "--kubeconfig /nonexistent/kc"));
}
END_TEST

START_TEST(test_in_cluster)
{
    struct bgw_k8s_conn c;
    char err[512], hdr[256];
    unsetenv("KUBERNETES_SERVICE_HOST");
    ck_assert_int_eq(bgw_k8s_conn_in_cluster(&c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "KUBERNETES_SERVICE_HOST"));
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    setenv("BGW_K8S_SERVICEACCOUNT_DIR", dir, 1);
    ck_assert_int_eq(bgw_k8s_conn_in_cluster(&c, err, sizeof err), -1);      /* no token file yet */
    write_file("token", "first\n");
    write_file("namespace", "gateway");
    ck_assert_int_eq(bgw_k8s_conn_in_cluster(&c, err, sizeof err), 0);
    ck_assert_str_eq(c.server, "https://[fd00::1]:443");
    ck_assert_str_eq(c.namespace_, "gateway");
    ck_assert_ptr_nonnull(strstr(c.ca_file, "/ca.crt"));
    ck_assert(bgw_k8s_conn_auth_header(&c, hdr, sizeof hdr));
    ck_assert_str_eq(hdr, "Authorization: Bearer first");
    write_file("token", "second\n");                /* rotated: read again once old enough */
    ck_assert(bgw_k8s_conn_auth_header(&c, hdr, sizeof hdr));
    ck_assert_str_eq(hdr, "Authorization: Bearer first");
    c.token_read -= BGW_K8S_TOKEN_REFRESH_S;
    ck_assert(bgw_k8s_conn_auth_header(&c, hdr, sizeof hdr));
    ck_assert_str_eq(hdr, "Authorization: Bearer second");
    bgw_k8s_conn_free(&c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("k8s_conn");
    TCase *tc = tcase_create("k8s_conn");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_kubeconfig_current_context);
    tcase_add_test(tc, test_kubeconfig_errors);
    tcase_add_test(tc, test_in_cluster);
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
