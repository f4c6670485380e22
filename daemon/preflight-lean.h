/* preflight-lean.h - the libraries the preflight children do without. */
#ifndef COPEES_PREFLIGHT_LEAN_H
#define COPEES_PREFLIGHT_LEAN_H

/* In the server, before its filter: mark the code and data of the
 * libraries no check calls as not inherited by children, then fork one
 * child that runs a whole check (pfc_selftest) without them.  If it fails,
 * everything is inherited again.  extra: one more library name prefix to
 * leave out ("libfoo.so."), for the test of that fallback; NULL normally.
 * Returns the number of mappings left out of children (0: none). */
int pfl_setup(const char *extra);
/* How many of this process's mappings are not inherited by children
 * (VmFlags "dc" in /proc/self/smaps); -1 when it cannot tell. */
int pfl_count_dontcopy(void);
#ifdef COPEES_TEST_KNOBS
/* Test builds: the next self-test child hangs, and is given 300 ms. */
void pfl_test_hang(void);
#endif

#endif
