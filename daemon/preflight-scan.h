/* preflight-scan.h - what the preflight helper reads in a document's raw
 * bytes, and the test knobs. */
#ifndef COPEES_PREFLIGHT_SCAN_H
#define COPEES_PREFLIGHT_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pfc_scan {
    bool javascript, launch, attachment;   /* the names seen */
    char knob[32];             /* "%copees-knob:NAME[=N]" seen: "NAME[=N]" (test knobs) */
};

/* Scan buf[0..len) into s (adding to what it holds). */
void pfc_scan_chunk(const char *buf, size_t len, bool knobs, struct pfc_scan *s);
/* Scan the whole file on fd (pread: its offset stays) into s, cleared first. */
void pfc_scan_file(int fd, bool knobs, struct pfc_scan *s);

/* Whether a row of n pixels (cairo RGB24: 0x00RRGGBB) has one whose
 * largest channel exceeds its smallest by more than chroma (0-254).
 * _plain: the same, a pixel at a time (the reference the tests compare). */
bool pfc_row_has_color(const uint32_t *row, int n, int chroma);
bool pfc_row_has_color_plain(const uint32_t *row, int n, int chroma);

#ifdef COPEES_TEST_KNOBS
/* Act on a test knob (docs/preflight.md lists them); returns when the knob
 * is one that lets the check go on.  memory: the oom knob's budget. */
void pfc_knob_run(const char *knob, unsigned long long memory);
#endif

#endif
