/* bench/upload.c - one benchmark client of copeesd: N uploads of one file,
 * one after the other over one keep-alive HTTP/1.1 connection on the Unix
 * socket, as the web tier keeps its connection.
 *
 *   upload SOCKET FILE ORDER-PREFIX N [EXTRA-QUERY]
 *
 * Upload i (1..N) is POST /v1/jobs?order=ORDER-PREFIX-i&EXTRA-QUERY with
 * the file as an application/pdf body.  One line per answer on stdout:
 * "STATUS SECONDS" (curl's -w '%{http_code} %{time_total}'); status 0
 * when the connection failed, after which it reconnects.
 *
 * Why not curl: curl spends about 0.2 ms of CPU per request here (its
 * transfer set-up, URL globbing, output), a sixth of what copeesd itself
 * spends; on a two-core machine shared with the daemon that is capacity
 * taken from the daemon being measured.  This client does one writev and
 * the reads of the answer.  It parses what copeesd answers (a status line,
 * headers with Content-Length, a body) and nothing more.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char answer[65536];

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int connect_to(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || strlen(path) >= sizeof a.sun_path) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    memcpy(a.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Read one answer: its status, or 0 on a broken connection; *close_after
 * when the server said Connection: close. */
static int read_answer(int fd, int *close_after)
{
    size_t have = 0, head, body = 0;
    char *end = NULL, *p;
    int status;

    while (!end) {
        ssize_t r = read(fd, answer + have, sizeof answer - 1 - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        have += (size_t)r;
        answer[have] = '\0';
        end = strstr(answer, "\r\n\r\n");
        if (!end && have == sizeof answer - 1)
            return 0;
    }
    head = (size_t)(end - answer) + 4;
    if (sscanf(answer, "HTTP/1.%*d %d", &status) != 1)
        return 0;
    *close_after = 0;
    for (p = strstr(answer, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
            body = strtoul(p + 17, NULL, 10);
        else if (strncasecmp(p + 2, "Connection: close", 17) == 0)
            *close_after = 1;
    }
    for (size_t got = have - head; got < body;) {
        ssize_t r = read(fd, answer, sizeof answer < body - got ? sizeof answer : body - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        got += (size_t)r;
    }
    return status;
}

int main(int argc, char **argv)
{
    struct stat st;
    char *doc, head[1024];
    int fd, conn = -1;
    long n;

    if (argc < 5 || argc > 6 || (n = strtol(argv[4], NULL, 10)) <= 0) {
        fputs("usage: upload SOCKET FILE ORDER-PREFIX N [EXTRA-QUERY]\n", stderr);
        return 2;
    }
    if ((fd = open(argv[2], O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0 ||
        !(doc = malloc((size_t)st.st_size + 1))) {
        perror(argv[2]);
        return 1;
    }
    for (off_t got = 0; got < st.st_size;) {
        ssize_t r = read(fd, doc + got, (size_t)(st.st_size - got));
        if (r <= 0 && !(r < 0 && errno == EINTR)) {
            fprintf(stderr, "%s: cannot read it whole\n", argv[2]);
            return 1;
        }
        got += r > 0 ? r : 0;
    }
    close(fd);
    for (long i = 1; i <= n; i++) {
        double t0 = now();
        int status = 0, close_after = 1;
        int len = snprintf(head, sizeof head,
                           "POST /v1/jobs?order=%s-%ld%s%s HTTP/1.1\r\nHost: copees\r\n"
                           "Content-Type: application/pdf\r\nContent-Length: %lld\r\n\r\n",
                           argv[3], i, argc > 5 ? "&" : "", argc > 5 ? argv[5] : "",
                           (long long)st.st_size);
        struct iovec iov[2] = {{head, (size_t)len}, {doc, (size_t)st.st_size}};

        if (conn < 0)
            conn = connect_to(argv[1]);
        if (conn >= 0 && send_all(conn, iov, 2) == 0)
            status = read_answer(conn, &close_after);
        if (conn >= 0 && (status == 0 || close_after)) {
            close(conn);
            conn = -1;
        }
        printf("%d %.6f\n", status, now() - t0);
    }
    if (conn >= 0)
        close(conn);
    return fflush(stdout) != 0;
}
