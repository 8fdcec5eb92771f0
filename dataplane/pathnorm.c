/* pathnorm.c - not written yet */
typedef int bgw_pathnorm_placeholder;
