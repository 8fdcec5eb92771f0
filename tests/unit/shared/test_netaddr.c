/* test_netaddr.c - listen addresses: IPv4, bracketed IPv6, port 0, and the errors naming the flag. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

START_TEST(ipv4_and_port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char err[128];
    ck_assert_int_eq(bgw_listen_addr("--listen", "127.0.0.1:8080", &ss, &len, err, sizeof err), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_int_eq(len, sizeof(struct sockaddr_in));
    ck_assert_int_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
    ck_assert_uint_eq(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), 0x7f000001u);
    ck_assert_int_eq(bgw_listen_addr("--listen", "0.0.0.0:0", &ss, &len, err, sizeof err), 0);
    ck_assert_int_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 0);
}
END_TEST

START_TEST(ipv6_bracketed)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char err[128];
    ck_assert_int_eq(bgw_listen_addr("--admin", "[::1]:9901", &ss, &len, err, sizeof err), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    ck_assert_int_eq(len, sizeof(struct sockaddr_in6));
    ck_assert_int_eq(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 9901);
    ck_assert(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr));
}
END_TEST

START_TEST(errors_name_the_flag)
{
    static const struct { const char *addr, *msg; } cases[] = {
        {"127.0.0.1", "--x: \"127.0.0.1\" is not ADDR:PORT"},
        {":80", "--x: \":80\" is not ADDR:PORT"},
        {"1.2.3.4:65536", "--x: \"1.2.3.4:65536\" is not ADDR:PORT"},
        {"1.2.3.4:8o", "--x: \"1.2.3.4:8o\" is not ADDR:PORT"},
        {"1.2.3.4:", "--x: \"1.2.3.4:\" is not ADDR:PORT"},
        {"[::1]:", "--x: \"[::1]:\" is not ADDR:PORT"},
        {"localhost:80", "--x: \"localhost\" is not a numeric IP address"},
        {"::1:80", "--x: \"::1:80\" is not ADDR:PORT"},
        {"[nope]:80", "--x: \"nope\" is not a numeric IP address"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        char err[128] = "";
        ck_assert_int_eq(bgw_listen_addr("--x", cases[i].addr, &ss, &len, err, sizeof err), -1);
        ck_assert_str_eq(err, cases[i].msg);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("netaddr");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, ipv4_and_port);
    tcase_add_test(tc, ipv6_bracketed);
    tcase_add_test(tc, errors_name_the_flag);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
