/* test_rate_limit.c - token buckets (GCRA) on an injected clock: burst, refill, headers, keys, eviction,
 * buckets shared by name across compiled sets, new numbers applied to existing buckets, and exact counts
 * when threads take from one bucket at once. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "rate_limit.h"

#define SEC 1000000000ull

static uint64_t g_now = 1000 * SEC;
static uint64_t fake_clock(void)
{
    return g_now;
}

static int take(struct bgw_rl_table *t, uint64_t key, uint64_t interval, uint64_t burst, struct bgw_rl_result *r)
{
    bgw_rl_table_take(t, key, interval, burst, g_now, r);
    return r->allowed;
}

START_TEST(burst_then_refill_at_rate)
{
    struct bgw_rl_table *t = bgw_rl_table_new("t", 64);
    struct bgw_rl_result r;
    /* 10 per second (a token every 100 ms), burst 5 */
    for (int i = 0; i < 5; i++) {
        ck_assert(take(t, 7, SEC / 10, 5, &r));
        ck_assert_uint_eq(r.remaining, (uint64_t)(4 - i));
        ck_assert_uint_eq(r.limit, 5);
    }
    ck_assert(!take(t, 7, SEC / 10, 5, &r));
    ck_assert_uint_eq(r.remaining, 0);
    ck_assert_uint_eq(r.retry_ns, SEC / 10);           /* the next token comes in 100 ms */
    ck_assert_uint_eq(r.reset_ns, SEC / 2);            /* full again after 5 tokens */
    g_now += SEC / 10 - 1;
    ck_assert(!take(t, 7, SEC / 10, 5, &r));
    ck_assert_uint_eq(r.retry_ns, 1);
    g_now += 1;
    ck_assert(take(t, 7, SEC / 10, 5, &r));
    ck_assert(!take(t, 7, SEC / 10, 5, &r));
    /* Over 10 s of steady demand, exactly the rate is admitted. */
    int admitted = 0;
    for (int ms = 0; ms < 10000; ms++) {
        g_now += SEC / 1000;
        while (take(t, 7, SEC / 10, 5, &r)) admitted++;
    }
    ck_assert_int_eq(admitted, 100);
    /* Idle long enough: the bucket is full (burst) again, never more. */
    g_now += 3600 * SEC;
    admitted = 0;
    while (take(t, 7, SEC / 10, 5, &r)) admitted++;
    ck_assert_int_eq(admitted, 5);
    bgw_rl_table_free(t);
}
END_TEST

START_TEST(keys_have_their_own_buckets)
{
    struct bgw_rl_table *t = bgw_rl_table_new("t", 64);
    struct bgw_rl_result r;
    ck_assert(take(t, 1, SEC, 1, &r));
    ck_assert(!take(t, 1, SEC, 1, &r));
    ck_assert(take(t, 2, SEC, 1, &r));
    ck_assert(take(t, 65, SEC, 1, &r));   /* same home slot as key 1 */
    ck_assert(!take(t, 65, SEC, 1, &r));
    ck_assert(!take(t, 1, SEC, 1, &r));
    bgw_rl_table_free(t);
}
END_TEST

START_TEST(burst_zero_rejects)
{
    struct bgw_rl_table *t = bgw_rl_table_new("t", 8);
    struct bgw_rl_result r;
    ck_assert(!take(t, 3, SEC, 0, &r));
    g_now += 100 * SEC;
    ck_assert(!take(t, 3, SEC, 0, &r));
    bgw_rl_table_free(t);
}
END_TEST

START_TEST(memory_is_bounded_and_full_buckets_are_evicted_first)
{
    /* 8 slots: every key probes all of them. */
    struct bgw_rl_table *t = bgw_rl_table_new("t", 8);
    struct bgw_rl_result r;
    for (uint64_t k = 1; k <= 8; k++) ck_assert(take(t, k, SEC, 2, &r));   /* 8 keys, one token each */
    ck_assert(take(t, 1, SEC, 2, &r));
    ck_assert(!take(t, 1, SEC, 2, &r));                                    /* key 1 is empty */
    /* A ninth key evicts the bucket that is full soonest (keys 2..8 miss 1 token, key 1 misses 2). */
    ck_assert(take(t, 100, SEC, 2, &r));
    ck_assert(!take(t, 1, SEC, 2, &r));                                    /* key 1 kept its state */
    /* After 1 s, keys 2..8 (those still there) are full: a new key takes one of them, which behaves as
     * a new full bucket when it comes back. */
    g_now += SEC;
    ck_assert(take(t, 200, SEC, 2, &r));
    for (uint64_t k = 2; k <= 8; k++) {
        ck_assert(take(t, k, SEC, 2, &r));
        ck_assert(take(t, k, SEC, 2, &r));
    }
    bgw_rl_table_free(t);
}
END_TEST

START_TEST(headers_of_a_rejection_and_an_admission)
{
    char buf[200];
    struct bgw_rl_result r = {.allowed = false, .limit = 50, .remaining = 0, .reset_ns = 2 * SEC + 1,
                              .retry_ns = SEC / 5};
    size_t n = bgw_rl_format_headers(&r, buf, sizeof buf);
    ck_assert_uint_eq(n, strlen(buf));
    ck_assert_str_eq(buf, "Retry-After: 1\r\nRateLimit-Limit: 50\r\nRateLimit-Remaining: 0\r\nRateLimit-Reset: 3\r\n");
    r = (struct bgw_rl_result){.allowed = true, .limit = 50, .remaining = 49, .reset_ns = SEC};
    bgw_rl_format_headers(&r, buf, sizeof buf);
    ck_assert_str_eq(buf, "RateLimit-Limit: 50\r\nRateLimit-Remaining: 49\r\nRateLimit-Reset: 1\r\n");
    ck_assert_uint_eq(bgw_rl_ceil_s(0), 0);
    ck_assert_uint_eq(bgw_rl_ceil_s(1), 1);
    ck_assert_uint_eq(bgw_rl_ceil_s(SEC), 1);
    ck_assert_uint_eq(bgw_rl_ceil_s(SEC + 1), 2);
}
END_TEST

static const char *lookup(void *ctx, const char *name, size_t name_len, size_t *value_len)
{
    const char *const *kv = ctx;
    for (; kv[0]; kv += 2) {
        if (strlen(kv[0]) == name_len && memcmp(kv[0], name, name_len) == 0) {
            *value_len = strlen(kv[1]);
            return kv[1];
        }
    }
    return NULL;
}

START_TEST(keys_from_ip_route_header_claim)
{
    const char *headers[] = {"x-api-key", "k1", NULL};
    const char *claims[] = {"sub", "alice", NULL};
    struct bgw_rl_request rq = {.client_ip = "127.0.0.2", .route = "orders", .header = lookup,
                                .header_ctx = headers, .claim = lookup, .claim_ctx = claims};
    struct bgw_rate_limit l = {.key_kind = BGW_RL_KEY_CLIENT_IP};
    size_t n;
    ck_assert_str_eq(bgw_rl_key(&l, &rq, &n), "127.0.0.2");
    ck_assert_uint_eq(n, 9);
    l.key_kind = BGW_RL_KEY_ROUTE;
    ck_assert_str_eq(bgw_rl_key(&l, &rq, &n), "orders");
    l.key_kind = BGW_RL_KEY_HEADER;
    l.key_name = "x-api-key";
    ck_assert(strncmp(bgw_rl_key(&l, &rq, &n), "k1", n) == 0 && n == 2);
    l.key_name = "x-missing";
    bgw_rl_key(&l, &rq, &n);
    ck_assert_uint_eq(n, 0);
    l.key_kind = BGW_RL_KEY_CLAIM;
    l.key_name = "sub";
    ck_assert(strncmp(bgw_rl_key(&l, &rq, &n), "alice", n) == 0 && n == 5);
    rq.claim = NULL;                          /* no verified token: the empty key */
    ck_assert_str_eq(bgw_rl_key(&l, &rq, &n), "");
    ck_assert_uint_eq(n, 0);
    /* Claims from the verified token's forwarded claim headers. */
    char *names[] = {"sub", "tenant"}, *hdrs[] = {"x-user-id", "x-tenant"};
    struct bgw_auth_policy pol = {.forward_claim_names = names, .forward_claim_headers = hdrs, .n_forward_claims = 2};
    const char fwd[] = "x-user-id: bob\r\nX-Tenant: t-9\r\n";
    struct bgw_rl_claims cl = {.policy = &pol, .headers = fwd, .len = sizeof fwd - 1};
    rq.claim = bgw_rl_claim_lookup;
    rq.claim_ctx = &cl;
    ck_assert(strncmp(bgw_rl_key(&l, &rq, &n), "bob", n) == 0 && n == 3);
    l.key_name = "tenant";
    ck_assert(strncmp(bgw_rl_key(&l, &rq, &n), "t-9", n) == 0 && n == 3);
    l.key_name = "email";                     /* not forwarded by the policy */
    ck_assert_str_eq(bgw_rl_key(&l, &rq, &n), "");
    ck_assert_uint_ne(bgw_rl_hash(1, "a", 1), bgw_rl_hash(2, "a", 1));
    ck_assert_uint_ne(bgw_rl_hash(1, "", 0), 0);
}
END_TEST

static struct bgw_config *config_of(const char *json)
{
    struct bgw_config *cfg = NULL;
    char err[256];
    int rc = bgw_config_parse(json, strlen(json), &cfg, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    return cfg;
}

#define DOC(REQ, PER, EXTRA)                                                                                      \
    "{\"services\":[{\"name\":\"s\",\"endpoints\":[\"127.0.0.1:1\"]}],"                                          \
    "\"routes\":[{\"name\":\"a\",\"match\":{\"path_prefix\":\"/a\"},\"service\":\"s\",\"rate_limit\":\"lim\"},"     \
    "{\"name\":\"b\",\"match\":{\"path_prefix\":\"/b\"},\"service\":\"s\"}],"                                     \
    "\"rate_limits\":[{\"name\":\"lim\",\"requests\":" REQ ",\"per\":\"" PER "\"" EXTRA ",\"key\":\"route\"}]}"

START_TEST(buckets_survive_a_new_set_and_take_its_numbers)
{
    bgw_rl_set_clock(fake_clock);
    char err[128];
    struct bgw_config *c1 = config_of(DOC("2", "minute", ""));
    struct bgw_rl_set *s1 = bgw_rl_set_build(c1, err, sizeof err);
    ck_assert_ptr_nonnull(s1);
    const struct bgw_rl_limit *l = bgw_rl_for_route(s1, 0);
    ck_assert_ptr_nonnull(l);
    ck_assert_ptr_null(bgw_rl_for_route(s1, 1));
    ck_assert_uint_eq(l->burst, 2);                 /* burst defaults to requests */
    ck_assert_uint_eq(l->interval_ns, 30 * SEC);
    struct bgw_rl_request rq = {.client_ip = "127.0.0.1", .route = "a"};
    struct bgw_rl_result r;
    struct bgw_rl_wait *wait = NULL;
    ck_assert_int_eq(bgw_rl_check(NULL, l, &rq, &r, NULL, NULL, &wait), BGW_RL_CONTINUE);
    ck_assert_int_eq(bgw_rl_check(NULL, l, &rq, &r, NULL, NULL, &wait), BGW_RL_CONTINUE);
    ck_assert_int_eq(bgw_rl_check(NULL, l, &rq, &r, NULL, NULL, &wait), BGW_RL_REJECT);
    ck_assert_uint_eq(bgw_rl_ceil_s(r.retry_ns), 30);
    /* The same limit in a new config: the same (empty) bucket. */
    struct bgw_config *c2 = config_of(DOC("2", "minute", ",\"burst\":4"));
    struct bgw_rl_set *s2 = bgw_rl_set_build(c2, err, sizeof err);
    bgw_rl_set_free(s1);
    bgw_config_free(c1);
    l = bgw_rl_for_route(s2, 0);
    ck_assert_uint_eq(l->burst, 4);
    /* 2 tokens missing out of 4: two more fit now, not four */
    ck_assert_int_eq(bgw_rl_check(NULL, l, &rq, &r, NULL, NULL, &wait), BGW_RL_CONTINUE);
    ck_assert_int_eq(bgw_rl_check(NULL, l, &rq, &r, NULL, NULL, &wait), BGW_RL_CONTINUE);
    ck_assert_int_eq(bgw_rl_check(NULL, l, &rq, &r, NULL, NULL, &wait), BGW_RL_REJECT);
    /* A faster rate: the 4 missing tokens refill at 1 per 100 ms, not 1 per 30 s. */
    struct bgw_config *c3 = config_of(DOC("10", "second", ",\"burst\":4"));
    struct bgw_rl_set *s3 = bgw_rl_set_build(c3, err, sizeof err);
    bgw_rl_set_free(s2);
    bgw_config_free(c2);
    l = bgw_rl_for_route(s3, 0);
    ck_assert_int_eq(bgw_rl_check(NULL, l, &rq, &r, NULL, NULL, &wait), BGW_RL_REJECT);
    ck_assert_uint_le(r.reset_ns, 4 * SEC / 10);
    g_now += SEC / 10;
    ck_assert_int_eq(bgw_rl_check(NULL, l, &rq, &r, NULL, NULL, &wait), BGW_RL_CONTINUE);
    /* Once no set uses a limit name, its buckets go; a later one starts full. */
    bgw_rl_set_free(s3);
    bgw_config_free(c3);
    struct bgw_config *c4 = config_of(DOC("1", "hour", ""));
    struct bgw_rl_set *s4 = bgw_rl_set_build(c4, err, sizeof err);
    l = bgw_rl_for_route(s4, 0);
    ck_assert_int_eq(bgw_rl_check(NULL, l, &rq, &r, NULL, NULL, &wait), BGW_RL_CONTINUE);
    ck_assert_int_eq(bgw_rl_check(NULL, l, &rq, &r, NULL, NULL, &wait), BGW_RL_REJECT);
    bgw_rl_set_free(s4);
    bgw_config_free(c4);
    bgw_rl_set_clock(NULL);
}
END_TEST

struct racer {
    struct bgw_rl_table *t;
    int admitted;
};

static void *race(void *arg)
{
    struct racer *x = arg;
    struct bgw_rl_result r;
    for (int i = 0; i < 200000; i++) {
        bgw_rl_table_take(x->t, 42 + (uint64_t)(i & 1) * 64, SEC, 1000, 5000 * SEC, &r);
        x->admitted += r.allowed;
    }
    return NULL;
}

START_TEST(threads_share_one_bucket_exactly)
{
    struct bgw_rl_table *t = bgw_rl_table_new("t", 64);
    struct racer xs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        xs[i] = (struct racer){.t = t};
        pthread_create(&th[i], NULL, race, &xs[i]);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += xs[i].admitted;
    }
    ck_assert_int_eq(total, 2000);    /* two keys, a burst of 1000 each, no time passing */
    bgw_rl_table_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rate_limit");
    TCase *tc = tcase_create("buckets");
    tcase_add_test(tc, burst_then_refill_at_rate);
    tcase_add_test(tc, keys_have_their_own_buckets);
    tcase_add_test(tc, burst_zero_rejects);
    tcase_add_test(tc, memory_is_bounded_and_full_buckets_are_evicted_first);
    tcase_add_test(tc, headers_of_a_rejection_and_an_admission);
    tcase_add_test(tc, keys_from_ip_route_header_claim);
    tcase_add_test(tc, buckets_survive_a_new_set_and_take_its_numbers);
    tcase_add_test(tc, threads_share_one_bucket_exactly);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
