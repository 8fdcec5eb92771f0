/* http1.c - not written yet */
typedef int bgw_http1_placeholder;
