/* preflight-proto.h - the protocol between copeesd and the preflight
 * helper server (libexec/copees/preflight --server), shared by both sides
 * and by the test driver.  The full description is in docs/preflight.md.
 *
 * Transport: one SOCK_SEQPACKET socketpair, the server's end on its fd 3.
 * Every message is one packet: a struct pfp_msg, then msg.len payload
 * bytes.  Byte order and layout are the machine's: both ends are built
 * from this header in one tree.
 *
 *   daemon -> server   PFP_CHECK    id, limits; the document fd in SCM_RIGHTS
 *   server -> daemon   PFP_HELLO    a = PFP_VERSION, b = server pid;
 *                                   payload = feature words ("seccomp rlimit-as")
 *                      PFP_STARTED  id, a = pid of the child checking it;
 *                                   its pidfd in SCM_RIGHTS (none before Linux 5.3)
 *                      PFP_DATA     id, payload = the next bytes the child wrote
 *                      PFP_DONE     id, a = the child's wait status, b = PFP_DONE_*
 *
 * The server never interprets what a child writes: it relays the bytes
 * (PFP_DATA) and reports how the child ended (PFP_DONE, always after the
 * last PFP_DATA of that id).  The child's stream is lines of text (see
 * PFC_* below), parsed by the daemon only.
 */
#ifndef COPEES_PREFLIGHT_PROTO_H
#define COPEES_PREFLIGHT_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PFP_VERSION 1
#define PFP_SERVER_FD 3            /* the server's end of the socketpair */
#define PFP_PAYLOAD_MAX 32768      /* bytes after the header in one packet */
#define PFP_STREAM_MAX (8u << 20)  /* a child that writes more is killed */

/* The server's whole environment (nothing of the daemon's): the loader
 * binds every symbol at start-up, so that no child resolves one (and
 * writes a GOT page) again.  Measured in docs/preflight.md.  malloc's
 * settings are the server's own (pfm_malloc_setup). */
#define PFP_SERVER_ENV {"LD_BIND_NOW=1", NULL}

enum pfp_type {
    PFP_HELLO = 1, PFP_CHECK, PFP_STARTED, PFP_DATA, PFP_DONE,
};

/* PFP_DONE's b: why there is no normal wait status, or what went wrong. */
#define PFP_DONE_FORK_FAILED 1u    /* the server could not start a child */
#define PFP_DONE_OVERFLOW 2u       /* the child wrote over PFP_STREAM_MAX and was killed */

/* PFP_CHECK's flags */
#define PFP_CHECK_RENDER 1u        /* render every page (bombs, colour map) */
#define PFP_CHECK_KNOBS 2u         /* honour test knobs in the document (test builds) */

struct pfp_msg {
    uint32_t type;                 /* enum pfp_type */
    uint32_t id;                   /* the daemon's number for one document */
    int32_t a, b;                  /* per type, see above */
    uint64_t memory;               /* CHECK: RLIMIT_AS in bytes (0 = none) */
    uint32_t cpu_s;                /* CHECK: RLIMIT_CPU soft limit, seconds */
    uint32_t max_pages;            /* CHECK: more pages is too-many-pages */
    uint32_t flags;                /* CHECK: PFP_CHECK_* */
    uint32_t len;                  /* payload bytes that follow in the packet */
};

/* Send one message with len payload bytes and, when passfd >= 0, that fd;
 * retries EINTR.  0 / -1 with errno (EAGAIN on a full non-blocking socket). */
int pfp_send(int sock, const struct pfp_msg *m, const void *payload, size_t len, int passfd);

/* Receive one message: header into *m, payload (m->len bytes, at most
 * cap) into buf, a passed fd (close-on-exec) into *fd or -1 (fd may be NULL:
 * a passed fd is then closed).  Returns 1 with a message, 0 at EOF, -1 with
 * errno (EAGAIN: nothing yet; EBADMSG: a malformed packet, dropped). */
int pfp_recv(int sock, struct pfp_msg *m, void *buf, size_t cap, int *fd);

/* ------------------------------------------------------------ the child's stream
 * Lines a child writes (relayed as PFP_DATA, parsed by the daemon):
 *   "pages N\n"          as soon as the page count is known (extends the deadline)
 *   "oom\n"              the PDF library said memory ran out (before it aborts)
 *   "report {JSON}\n"    the findings, last; the child exits 0 after it
 * JSON: {"pages", "page_sizes": [[w, h], ...] (distinct, points after
 * rotation), "size_pages": [first page of each size], "color_pages",
 * "color_page_list", "findings": [{"code", "detail"}], "diagnostics"}. */
#define PFC_PAGES "pages "
#define PFC_OOM "oom"
#define PFC_REPORT "report "

#endif
