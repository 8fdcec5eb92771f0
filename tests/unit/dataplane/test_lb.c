/* test_lb.c - endpoint choice with outlier detection: ejected endpoints left out, panic mode below half,
 * a retry avoiding the failed endpoint, every policy. */
#include <check.h>
#include <stdlib.h>

#include "lb.h"
#include "outlier.h"
#include "worker.h"

#define N 4

struct fixture {
    struct bgw_worker *w;
    struct bgw_service cfg;
    struct bgw_snap_service ss;
    uint32_t healthy[N];
    struct bgw_pool pools[N];
    struct bgw_pool *pp[N];
    struct bgw_svc_rt rt;
    struct bgw_outlier_svc *od;
};

static struct fixture *fx_new(enum bgw_lb_kind lb, bool detect)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->w = calloc(1, sizeof *f->w);
    f->w->rng[0] = 1;
    f->w->rng[1] = 2;
    f->w->now_ms = 1000;
    f->cfg.lb = lb;
    f->cfg.has_outlier_detection = detect;
    f->ss.cfg = &f->cfg;
    f->ss.n_eps = N;
    f->ss.n_healthy = N;
    f->ss.healthy = f->healthy;
    f->od = bgw_outlier_svc_get("lb");
    const char *names[N] = {"a:1", "b:1", "c:1", "d:1"};
    for (int i = 0; i < N; i++) {
        f->healthy[i] = (uint32_t)i;
        f->pools[i].od = bgw_outlier_ep_get(f->od, names[i]);
        f->pp[i] = &f->pools[i];
    }
    return f;
}

static void fx_free(struct fixture *f)
{
    free(f->w);
    free(f);
    bgw_outlier_registry_free();
}

static void eject(struct fixture *f, int i)
{
    atomic_store(&f->pools[i].od->ejected_until, f->w->now_ms + 5000);
}

/* How often each endpoint is picked in n picks. */
static void count(struct fixture *f, int n, uint32_t avoid, int out[N])
{
    for (int i = 0; i < N; i++) out[i] = 0;
    for (int k = 0; k < n; k++) {
        long ep = bgw_lb_pick_except(f->w, &f->ss, &f->rt, f->pp, avoid);
        ck_assert_int_ge(ep, 0);
        ck_assert_int_lt(ep, N);
        out[ep]++;
    }
}

static const enum bgw_lb_kind kinds[] = {BGW_LB_ROUND_ROBIN, BGW_LB_LEAST_REQUEST, BGW_LB_RANDOM};

START_TEST(ejected_endpoints_are_left_out)
{
    struct fixture *f = fx_new(kinds[_i], true);
    eject(f, 1);
    int got[N];
    count(f, 300, UINT32_MAX, got);
    ck_assert_int_eq(got[1], 0);
    ck_assert_int_gt(got[0], 0);
    ck_assert_int_gt(got[3], 0);
    if (kinds[_i] != BGW_LB_LEAST_REQUEST) ck_assert_int_gt(got[2], 0);
    /* the ejection ends by time alone */
    f->w->now_ms += 5000;
    count(f, 300, UINT32_MAX, got);
    if (kinds[_i] == BGW_LB_ROUND_ROBIN) ck_assert_int_eq(got[1], 75);
    else if (kinds[_i] == BGW_LB_RANDOM) ck_assert_int_gt(got[1], 0);
    fx_free(f);
}
END_TEST

START_TEST(without_detection_ejections_are_ignored)
{
    struct fixture *f = fx_new(BGW_LB_ROUND_ROBIN, false);
    eject(f, 1);
    int got[N];
    count(f, 400, UINT32_MAX, got);
    for (int i = 0; i < N; i++) ck_assert_int_eq(got[i], 100);
    fx_free(f);
}
END_TEST

START_TEST(panic_below_half)
{
    struct fixture *f = fx_new(kinds[_i], true);
    int got[N];
    /* half left: balanced over the two left */
    eject(f, 0);
    eject(f, 1);
    count(f, 200, UINT32_MAX, got);
    ck_assert_int_eq(got[0] + got[1], 0);
    /* fewer than half: every healthy endpoint again */
    eject(f, 2);
    count(f, 400, UINT32_MAX, got);
    if (kinds[_i] != BGW_LB_LEAST_REQUEST)
        for (int i = 0; i < N; i++) ck_assert_int_gt(got[i], 0);
    eject(f, 3);
    count(f, 400, UINT32_MAX, got);
    if (kinds[_i] == BGW_LB_ROUND_ROBIN)
        for (int i = 0; i < N; i++) ck_assert_int_eq(got[i], 100);
    fx_free(f);
}
END_TEST

START_TEST(retry_avoids_the_failed_endpoint)
{
    struct fixture *f = fx_new(kinds[_i], true);
    int got[N];
    count(f, 200, 2, got);
    ck_assert_int_eq(got[2], 0);
    /* avoided unless it is the only candidate */
    eject(f, 0);
    eject(f, 1);
    count(f, 50, 3, got);
    ck_assert_int_eq(got[2], 50);
    f->ss.n_healthy = 1;
    f->healthy[0] = 3;
    count(f, 10, 3, got);
    ck_assert_int_eq(got[3], 10);
    f->ss.n_healthy = 0;
    ck_assert_int_eq(bgw_lb_pick_except(f->w, &f->ss, &f->rt, f->pp, 3), -1);
    fx_free(f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lb");
    TCase *tc = tcase_create("outlier");
    tcase_add_loop_test(tc, ejected_endpoints_are_left_out, 0, 3);
    tcase_add_test(tc, without_detection_ejections_are_ignored);
    tcase_add_loop_test(tc, panic_below_half, 0, 3);
    tcase_add_loop_test(tc, retry_avoids_the_failed_endpoint, 0, 3);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
