/* admin.c - not written yet */
typedef int bgw_admin_placeholder;
