/* worker.c - not written yet */
typedef int bgw_worker_placeholder;
