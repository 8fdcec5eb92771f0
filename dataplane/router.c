/* router.c - not written yet */
typedef int bgw_router_placeholder;
