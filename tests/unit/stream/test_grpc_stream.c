/*
 * test_grpc_stream.c - the gRPC stream wrapper end to end in one process: a client stream to a server on
 * a loopback port 0, messages both ways, the latest-pending send slot, a server-side close seen by the
 * client, an unreachable server seen as UNAVAILABLE, and clean shutdown with streams still open.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grpc_stream.h"

#define METHOD "/bgw.v1.ConfigDiscovery/StreamConfig"

struct side {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int messages;
    char last[64];
    int closed;
    int status;
    struct bgw_grpc_stream *st;   /* server side: the accepted stream */
};

static void side_init(struct side *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
}

/* Wait up to 5 s until *field >= want. */
static int wait_for(struct side *s, const int *field, int want)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    pthread_mutex_lock(&s->lock);
    while (*field < want && pthread_cond_timedwait(&s->cond, &s->lock, &dl) == 0) {
    }
    int v = *field;
    pthread_mutex_unlock(&s->lock);
    return v;
}

static void on_message(struct bgw_grpc_stream *st, void *ud, const uint8_t *data, size_t len)
{
    struct side *s = ud;
    pthread_mutex_lock(&s->lock);
    s->messages++;
    snprintf(s->last, sizeof s->last, "%.*s", (int)len, (const char *)data);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (s->st == st && len && data[0] == 'e') {   /* server: echo "e..." messages */
        bgw_grpc_stream_send(st, data, len);
    }
}

static void on_close(struct bgw_grpc_stream *st, void *ud, int status, const char *detail)
{
    struct side *s = ud;
    (void)detail;
    pthread_mutex_lock(&s->lock);
    s->closed++;
    s->status = status;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (s->st == st) bgw_grpc_stream_release(st);   /* the server's streams are released on close */
}

static const struct bgw_grpc_handler handler = {NULL, on_message, on_close};

static void *on_accept(struct bgw_grpc_stream *st, void *server_ud, const char *peer)
{
    struct side *s = server_ud;
    ck_assert(strncmp(peer, "ipv4:127.0.0.1:", 15) == 0);
    s->st = st;
    return s;
}

START_TEST(echo_and_close)
{
    struct side srv, cli;
    side_init(&srv);
    side_init(&cli);
    char err[256];
    struct bgw_grpc_server *server = bgw_grpc_server_start("127.0.0.1:0", NULL, METHOD, on_accept, &handler, &srv, err, sizeof err);
    ck_assert_msg(server != NULL, "%s", err);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", bgw_grpc_server_port(server));
    struct bgw_grpc_client *client = bgw_grpc_client_new(target, NULL, err, sizeof err);
    ck_assert_msg(client != NULL, "%s", err);
    struct bgw_grpc_stream *st = bgw_grpc_client_open(client, METHOD, &handler, &cli);
    ck_assert_ptr_nonnull(st);
    ck_assert_int_eq(bgw_grpc_stream_send(st, "e1", 2), 0);
    ck_assert_int_ge(wait_for(&cli, &cli.messages, 1), 1);
    ck_assert_str_eq(cli.last, "e1");
    /* a burst: the latest always arrives, older pending ones may be replaced */
    for (int i = 0; i < 50; i++) {
        char m[16];
        snprintf(m, sizeof m, "x%d", i);
        ck_assert_int_eq(bgw_grpc_stream_send(st, m, strlen(m)), 0);
    }
    bgw_grpc_stream_send(st, "e-last", 6);
    for (int i = 0; i < 100 && strcmp(cli.last, "e-last") != 0; i++) wait_for(&cli, &cli.messages, cli.messages + 1);
    ck_assert_str_eq(cli.last, "e-last");
    /* the server ends the stream: the client sees the status */
    bgw_grpc_stream_close(srv.st, 9, "go away");
    ck_assert_int_eq(wait_for(&cli, &cli.closed, 1), 1);
    ck_assert_int_eq(cli.status, 9);
    ck_assert_int_eq(bgw_grpc_stream_send(st, "late", 4), -1);
    bgw_grpc_stream_release(st);
    ck_assert_int_eq(wait_for(&srv, &srv.closed, 1), 1);
    /* a second stream is left open across shutdown */
    side_init(&cli);
    srv.closed = 0;
    st = bgw_grpc_client_open(client, METHOD, &handler, &cli);
    bgw_grpc_stream_send(st, "e2", 2);
    ck_assert_int_ge(wait_for(&cli, &cli.messages, 1), 1);
    bgw_grpc_server_stop(server);
    ck_assert_int_eq(wait_for(&cli, &cli.closed, 1), 1);
    bgw_grpc_stream_release(st);
    bgw_grpc_client_free(client);
}
END_TEST

START_TEST(unreachable_is_unavailable)
{
    struct side cli;
    side_init(&cli);
    char err[256];
    struct bgw_grpc_client *client = bgw_grpc_client_new("127.0.0.1:1", NULL, err, sizeof err);
    ck_assert_ptr_nonnull(client);
    struct bgw_grpc_stream *st = bgw_grpc_client_open(client, METHOD, &handler, &cli);
    bgw_grpc_stream_send(st, "hello", 5);
    ck_assert_int_eq(wait_for(&cli, &cli.closed, 1), 1);
    ck_assert_int_eq(cli.status, 14);
    bgw_grpc_stream_release(st);
    /* a stream still open when the client is freed is cancelled */
    side_init(&cli);
    st = bgw_grpc_client_open(client, METHOD, &handler, &cli);
    bgw_grpc_stream_release(st);
    bgw_grpc_client_free(client);
}
END_TEST

START_TEST(unknown_method_is_unimplemented)
{
    struct side srv, cli;
    side_init(&srv);
    side_init(&cli);
    char err[256];
    struct bgw_grpc_server *server = bgw_grpc_server_start("127.0.0.1:0", NULL, METHOD, on_accept, &handler, &srv, err, sizeof err);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", bgw_grpc_server_port(server));
    struct bgw_grpc_client *client = bgw_grpc_client_new(target, NULL, err, sizeof err);
    struct bgw_grpc_stream *st = bgw_grpc_client_open(client, "/other.Service/Call", &handler, &cli);
    ck_assert_int_eq(wait_for(&cli, &cli.closed, 1), 1);
    ck_assert_int_eq(cli.status, 12);
    bgw_grpc_stream_release(st);
    bgw_grpc_client_free(client);
    bgw_grpc_server_stop(server);
    ck_assert_int_eq(srv.messages, 0);
}
END_TEST

START_TEST(port_in_use)
{
    struct side srv;
    side_init(&srv);
    char err[256];
    struct bgw_grpc_server *a = bgw_grpc_server_start("127.0.0.1:0", NULL, METHOD, on_accept, &handler, &srv, err, sizeof err);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", bgw_grpc_server_port(a));
    ck_assert_ptr_null(bgw_grpc_server_start(addr, NULL, METHOD, on_accept, &handler, &srv, err, sizeof err));
    ck_assert_msg(strstr(err, "cannot listen") != NULL, "%s", err);
    bgw_grpc_server_stop(a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("grpc_stream");
    TCase *tc = tcase_create("grpc_stream");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, echo_and_close);
    tcase_add_test(tc, unreachable_is_unavailable);
    tcase_add_test(tc, unknown_method_is_unimplemented);
    tcase_add_test(tc, port_in_use);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
