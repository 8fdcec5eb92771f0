/* stats.c - not written yet */
typedef int bgw_stats_placeholder;
