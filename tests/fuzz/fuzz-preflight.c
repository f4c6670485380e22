/* fuzz-preflight.c - a libFuzzer target for the preflight helper's
 * document checks (daemon/preflight-checks.c): every input goes through
 * pfc_check() as a document would in a helper child, rendering included.
 * Built and run by tests/fuzz/run.sh, never by make check.
 *
 * The limits are the helper's defaults, applied the way a sanitizer build
 * can: libFuzzer's -malloc_limit_mb and -rss_limit_mb stand for RLIMIT_AS
 * (512M), -timeout for the wall-clock kill; run.sh passes them and runs in
 * fork mode with out-of-memory and timeouts ignored, as the helper turns
 * those into preflight-too-complex and preflight-timeout verdicts.  What
 * counts is a crash: a signal, or a sanitizer report.  The system call
 * filter cannot hold a fuzzer (it writes its findings to files); the
 * filter itself is exercised by tests/preflight.sh.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "preflight-checks.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (pfc_init() < 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct pfc_opts o = {.max_pages = 2000, .render = true, .memory = 512ULL << 20,
                               .out_fd = -1};
    int fd = memfd_create("document", MFD_CLOEXEC);
    size_t done = 0;
    json_t *report;

    if (fd < 0)
        abort();
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0)
            abort();
        done += (size_t)n;
    }
    pfc_diag_reset();
    report = pfc_check(fd, &o);     /* takes fd over */
    if (!report || !json_is_array(json_object_get(report, "findings")))
        abort();                    /* a report, always */
    json_decref(report);
    return 0;
}
