/* timer.c - not written yet */
typedef int bgw_timer_placeholder;
