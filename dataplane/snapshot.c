/* snapshot.c - not written yet */
typedef int bgw_snapshot_placeholder;
