/* preflight-lean.h - the libraries the preflight children do without. */
#ifndef COPEES_PREFLIGHT_LEAN_H
#define COPEES_PREFLIGHT_LEAN_H

/* In the server, before its filter: mark the code and data of the
 * libraries no check calls as not inherited by children, then fork one
 * child that runs a whole check (pfc_selftest) without them.  If it fails,
 * everything is inherited again.  Returns the number of mappings left out
 * of children (0: none). */
int pfl_setup(void);

#endif
