/* preflight-proto.c - one packet in, one packet out (see preflight-proto.h). */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "preflight-proto.h"

int pfp_send(int sock, const struct pfp_msg *m, const void *payload, size_t len, int passfd)
{
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
    struct pfp_msg h = *m;
    struct iovec iov[2] = {{&h, sizeof h}, {(void *)payload, len}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    ssize_t n;

    if (len > PFP_PAYLOAD_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    h.len = (uint32_t)len;
    if (passfd >= 0) {
        memset(&ctl, 0, sizeof ctl);
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof ctl.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &passfd, sizeof(int));
    }
    do
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if ((size_t)n != sizeof h + len) {     /* a packet goes whole or not at all */
        errno = EIO;
        return -1;
    }
    return 0;
}

int pfp_recv(int sock, struct pfp_msg *m, void *buf, size_t cap, int *fd)
{
    union { char buf[CMSG_SPACE(4 * sizeof(int))]; struct cmsghdr align; } ctl;
    struct iovec iov[2] = {{m, sizeof *m}, {buf, cap}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2,
                        .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    int got = -1;
    ssize_t n;

    if (fd)
        *fd = -1;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n == 0 ? 0 : -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int f;
            memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
            if (got < 0)
                got = f;
            else
                close(f);              /* one fd per message, no more */
        }
    }
    if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n < sizeof *m ||
        (size_t)n != sizeof *m + m->len) {
        if (got >= 0)
            close(got);
        errno = EBADMSG;
        return -1;
    }
    if (fd)
        *fd = got;
    else if (got >= 0)
        close(got);
    return 1;
}
