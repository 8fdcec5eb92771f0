/* proxy.c - not written yet */
typedef int bgw_proxy_placeholder;
