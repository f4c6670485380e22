/* cover.h - the cover sheet (see cover.c). */
#ifndef COPEES_COVER_H
#define COPEES_COVER_H

#include <stddef.h>

struct job;

/* Page size in points of a PWG self-describing media name; 0 / -1. */
int cover_media_points(const char *media, double *w, double *h);
/* The cover sheet PDF of j into buf; its length, or -1 when it does not fit. */
int cover_sheet_render(const struct job *j, char *buf, size_t len);
/* The cover sheet in an anonymous memory file, positioned at 0; fd / -1. */
int cover_sheet_fd(const struct job *j);

#endif
