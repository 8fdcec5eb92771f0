/* upstream.c - not written yet */
typedef int bgw_upstream_placeholder;
