/* buf.c - not written yet */
typedef int bgw_buf_placeholder;
