/* metrics.h - counters and histograms for GET /metrics (Prometheus text
 * format, names prefixed copees_).  Loop thread only. */
#ifndef COPEES_METRICS_H
#define COPEES_METRICS_H

#include <stdint.h>

/* Bytes of upload bodies received (streamed to the spool). */
void metrics_bytes_received(uint64_t n);
/* An upload refused, by reason: a preflight code or an HTTP error code
 * ("bad-ticket", "too-large", ...). */
void metrics_upload_rejected(const char *reason);
/* A preflight took ms milliseconds. */
void metrics_preflight_ms(int64_t ms);
/* A job reached CUPS ms milliseconds after it was queued. */
void metrics_dispatch_latency(int64_t ms);
/* The whole exposition (malloc'd text). */
char *metrics_render(void);

#endif
