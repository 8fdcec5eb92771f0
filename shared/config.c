/* not written yet */
typedef int bgw_config_placeholder;
