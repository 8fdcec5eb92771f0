/* lb.c - not written yet */
typedef int bgw_lb_placeholder;
