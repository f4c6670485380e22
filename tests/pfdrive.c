/* pfdrive.c - drive the preflight helper server directly, without copeesd:
 * the same protocol, limits and deadlines (preflight-proto.h), for the
 * benchmark and for looking at what the helper makes of a file.
 *
 *   pfdrive [-j WORKERS] [-m MEMORY] [-t TIMEOUT_MS] [-P PAGE_TIME_MS]
 *           [-n MAX_PAGES] [-r REPEAT] [-R] [-s] [-K] [-M MEDIA] FILE...
 *
 * Each FILE is checked REPEAT times (default 1), WORKERS at once (default
 * 1).  Without -s, one JSON line per check: {"file", "ms", "end" (how the
 * child ended), "reject", "codes", "preflight" (the verdict under the
 * default policy for a monochrome MEDIA ticket, default A4)}.  With -s,
 * only a summary line: "checks N pages N seconds S ms_per_check M
 * checks_per_s C pages_per_s P".  -R: no render.  -K: honour test knobs.
 * The helper is $COPEES_PREFLIGHT_HELPER (default daemon/preflight).  Exit 0 when every
 * check ended, 1 on a usage or helper error.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "preflight-proto.h"
#include "preflight-verdict.h"
#include "util.h"

#define MAX_J 64

struct slot {
    bool busy;
    uint32_t id;
    const char *file;
    pid_t pid;
    int pages;
    bool timed_out;
    int64_t t0, deadline;
    char *stream;
    size_t len;
};

static struct slot slots[MAX_J];
static int64_t timeout_ms = 30000, page_time_ms = 50;
static int sock;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pid_t helper_start(void)
{
    const char *path = getenv("COPEES_PREFLIGHT_HELPER");
    char *argv[] = {"preflight", "--server", NULL}, *envp[] = PFP_SERVER_ENV;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int sv[2];
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    if (sv[1] == PFP_SERVER_FD) {
        int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, PFP_SERVER_FD + 1);
        close(sv[1]);
        sv[1] = moved;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, sv[1], PFP_SERVER_FD);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    if (posix_spawn(&pid, path && *path ? path : "daemon/preflight", &fa, &attr, argv, envp) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(sv[1]);
    sock = sv[0];
    return pid;
}

/* A finished check: print its line (unless summary), free the slot. */
static void slot_done(struct slot *s, int status, int flags, bool summary, const char *media,
                      int *pages_total)
{
    char end[48];
    json_t *report = NULL, *codes = json_array(), *r;
    const char *fail = NULL;
    bool oom = false, reject;
    size_t i;

    for (char *line = s->stream, *nl; line && line < s->stream + s->len; line = nl + 1) {
        if (!(nl = memchr(line, '\n', (size_t)(s->stream + s->len - line))))
            break;
        *nl = '\0';
        if (strncmp(line, PFC_REPORT, strlen(PFC_REPORT)) == 0)
            report = json_loads(line + strlen(PFC_REPORT), 0, NULL);
        oom |= strcmp(line, PFC_OOM) == 0;
    }
    if (s->timed_out)
        snprintf(end, sizeof end, "timeout"), fail = "preflight-timeout";
    else if (flags)
        snprintf(end, sizeof end, "flags %d", flags), fail = "preflight-crashed";
    else if (WIFSIGNALED(status))
        snprintf(end, sizeof end, "signal %d", WTERMSIG(status)),
            fail = WTERMSIG(status) == SIGXCPU || WTERMSIG(status) == SIGKILL || oom
                   ? "preflight-too-complex" : "preflight-crashed";
    else if (WEXITSTATUS(status) || !report)
        snprintf(end, sizeof end, "exit %d", WEXITSTATUS(status)),
            fail = oom ? "preflight-too-complex" : "preflight-crashed";
    else
        snprintf(end, sizeof end, "exit 0");
    struct pf_ticket t = {.color = false};
    xstrlcpy(t.media, media, sizeof t.media);
    json_t *out = pf_verdict_build(0, report, fail, s->pages, &t, NULL, &reject);
    json_array_foreach(json_object_get(out, "reasons"), i, r)
        json_array_append(codes, json_object_get(r, "code"));
    json_array_foreach(json_object_get(out, "warnings"), i, r)
        json_array_append(codes, json_object_get(r, "code"));
    *pages_total += (int)json_integer_value(json_object_get(out, "pages"));
    if (!summary) {
        json_t *line = json_pack("{s:s, s:I, s:s, s:b, s:o, s:o}", "file", s->file,
                                 "ms", (json_int_t)(now_ms() - s->t0), "end", end, "reject", reject,
                                 "codes", codes, "preflight", out);
        char *txt = json_dumps(line, JSON_COMPACT);
        puts(txt);
        free(txt);
        json_decref(line);
    } else {
        json_decref(codes);
        json_decref(out);
    }
    json_decref(report);
    free(s->stream);
    *s = (struct slot){0};
}

int main(int argc, char **argv)
{
    int jobs = 1, repeat = 1, max_pages = 2000, c, pages_total = 0;
    uint64_t memory = 512ULL << 20;
    bool render = true, summary = false, knobs = false;
    const char *media = "iso_a4_210x297mm";
    static char payload[PFP_PAYLOAD_MAX];

    while ((c = getopt(argc, argv, "j:m:t:P:n:r:RsM:K")) != -1) {
        switch (c) {
        case 'j': jobs = atoi(optarg); break;
        case 'm': if (parse_size(optarg, &memory) < 0) return 1; break;
        case 't': timeout_ms = atoll(optarg); break;
        case 'P': page_time_ms = atoll(optarg); break;
        case 'n': max_pages = atoi(optarg); break;
        case 'r': repeat = atoi(optarg); break;
        case 'R': render = false; break;
        case 's': summary = true; break;
        case 'M': media = optarg; break;
        case 'K': knobs = true; break;
        default: return 1;
        }
    }
    if (optind >= argc || jobs < 1 || jobs > MAX_J || repeat < 1) {
        fputs("usage: pfdrive [-j N] [-m MEM] [-t MS] [-P MS] [-n PAGES] [-r N] [-R] [-s] [-M MEDIA] "
              "FILE...\n", stderr);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    pid_t server = helper_start();
    if (server < 0) {
        perror("pfdrive: helper");
        return 1;
    }
    if (summary) {                     /* the verdict's log lines: not for a summary */
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0 && dup2(null, STDERR_FILENO) >= 0)
            close(null);
    }
    struct pfp_msg hello;              /* the clock starts once the server is ready */
    if (pfp_recv(sock, &hello, payload, sizeof payload, NULL) <= 0 || hello.type != PFP_HELLO) {
        fprintf(stderr, "pfdrive: the helper server did not start\n");
        return 1;
    }
    long total = (long)(argc - optind) * repeat, sent = 0, done = 0;
    uint32_t next_id = 1;
    int64_t t_start = now_ms();
    while (done < total) {
        for (int i = 0; i < jobs && sent < total; i++) {
            if (slots[i].busy)
                continue;
            const char *file = argv[optind + sent % (argc - optind)];
            int fd = open(file, O_RDONLY | O_CLOEXEC);
            struct pfp_msg m = {.type = PFP_CHECK, .id = next_id, .memory = memory,
                                .cpu_s = (uint32_t)((timeout_ms + page_time_ms * max_pages) / 1000 + 2),
                                .max_pages = (uint32_t)max_pages,
                                .flags = (render ? PFP_CHECK_RENDER : 0) | (knobs ? PFP_CHECK_KNOBS : 0)};
            if (fd < 0 || pfp_send(sock, &m, NULL, 0, fd) < 0) {
                perror(file);
                return 1;
            }
            close(fd);
            slots[i] = (struct slot){.busy = true, .id = next_id++, .file = file, .t0 = now_ms()};
            slots[i].deadline = slots[i].t0 + timeout_ms;
            sent++;
        }
        int64_t wait = 1000, now = now_ms();
        for (int i = 0; i < jobs; i++) {
            struct slot *s = &slots[i];
            if (!s->busy)
                continue;
            if (now >= s->deadline && !s->timed_out && s->pid > 0) {
                s->timed_out = true;
                kill(s->pid, SIGKILL);
            }
            if (!s->timed_out && s->deadline - now < wait)
                wait = s->deadline - now;
        }
        struct pollfd pfd = {.fd = sock, .events = POLLIN};
        if (poll(&pfd, 1, (int)(wait < 0 ? 0 : wait)) <= 0)
            continue;
        struct pfp_msg m;
        int r = pfp_recv(sock, &m, payload, sizeof payload, NULL);
        if (r <= 0) {
            fprintf(stderr, "pfdrive: the helper server hung up\n");
            return 1;
        }
        struct slot *s = NULL;
        for (int i = 0; i < jobs; i++)
            if (slots[i].busy && slots[i].id == m.id)
                s = &slots[i];
        if (!s)
            continue;
        if (m.type == PFP_STARTED) {
            s->pid = m.a;
        } else if (m.type == PFP_DATA) {
            s->stream = realloc(s->stream, s->len + m.len + 1);
            memcpy(s->stream + s->len, payload, m.len);
            s->len += m.len;
            s->stream[s->len] = '\0';
            char *p = strstr(s->stream, PFC_PAGES), *rep = strstr(s->stream, "\n" PFC_REPORT);
            if (s->pages == 0 && p && (p == s->stream || p[-1] == '\n') && strchr(p, '\n')) {
                s->pages = atoi(p + strlen(PFC_PAGES));
                s->deadline = s->t0 + timeout_ms + page_time_ms * (s->pages < max_pages ? s->pages : max_pages);
            }
            if ((rep || strncmp(s->stream, PFC_REPORT, strlen(PFC_REPORT)) == 0) &&
                s->stream[s->len - 1] == '\n' && !s->timed_out) {   /* as copeesd does */
                kill(s->pid, SIGKILL);
                slot_done(s, 0, 0, summary, media, &pages_total);
                done++;
            }
        } else if (m.type == PFP_DONE) {
            slot_done(s, m.a, m.b, summary, media, &pages_total);
            done++;
        }
    }
    double secs = (double)(now_ms() - t_start) / 1000;
    if (summary)
        printf("checks %ld pages %d seconds %.3f ms_per_check %.3f checks_per_s %.1f pages_per_s %.1f\n",
               total, pages_total, secs, secs * 1000 / (double)total, (double)total / secs,
               (double)pages_total / secs);
    close(sock);
    waitpid(server, NULL, 0);
    return 0;
}
