#define _GNU_SOURCE
/*
 * The relay's physical anchor for `deno task bench`: a C epoll line-relay
 * chat on one thread, speaking our protocol with our pacing, as c_echo.c is
 * the echo's anchor.
 *
 *   c_relay PORT [MAX_LINE [OUTBOX_LIMIT [STALL_MS]]]
 *     127.0.0.1; prints "listening on 127.0.0.1:PORT".
 *     Defaults: 65536-byte lines, 1 MiB queued per client, 500 ms.
 *
 * The protocol (docs/benchmark.md; PROTOCOLS.md's chat without commands):
 * - a client is named guest-N; it gets "* welcome guest-N (C relay): K
 *   others here", the others "* guest-N has joined";
 * - each complete line goes to every other client as "guest-N: TEXT" (a
 *   "\r" before the "\n" dropped, other control characters but tab shown
 *   in caret notation, ^[ for ESC); a line whose relayed form would pass
 *   MAX_LINE is refused with a notice; an unfinished line past MAX_LINE
 *   closes the connection with a notice;
 * - leaving: "* guest-N has left" (with a reason when the server cut it).
 *
 * The work per read, as in our servers: the complete lines one read()
 * brought become one block, and each receiver gets it with one write (what
 * the kernel does not take waits in that client's queue for EPOLLOUT).
 * Pacing, as lib/outbox.ts: past half its OUTBOX_LIMIT a queue is
 * congested and no client is read until none is; a congested client that
 * takes nothing for STALL_MS, or a queue past OUTBOX_LIMIT, is cut off as too
 * slow. Epoll is edge-triggered, so pausing and resuming costs no
 * epoll_ctl; a client whose read filled the buffer is read again in the
 * next round, after the others.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE 65536

struct client {
  int fd, id, index; /* index: place in `members` */
  char name[24];
  size_t name_len;
  char *held; /* the unfinished line */
  size_t held_len, held_cap;
  char *out; /* queued output: out[off..len) */
  size_t out_off, out_len, out_cap;
  unsigned long long written; /* bytes the kernel took: progress */
  unsigned long long mark;    /* `written` when congestion was last judged */
  uint64_t mark_at;
  int readable; /* edge seen, not yet read dry */
  int dead;
  char why[96]; /* why the server cut it off, for the leave notice */
};

static size_t max_line = 65536, outbox_limit = 1 << 20;
static uint64_t stall_ns = 500000000ull;
static struct client **members;
static int count, cap_members;
static struct client **by_fd;
static int cap_fd;
static int next_id = 1;
static int ep;
static int congestion; /* some queue may be congested: judge() looks */

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void *grow(void *p, size_t *cap, size_t need, size_t unit) {
  if (need <= *cap) return p;
  size_t c = *cap ? *cap : 256;
  while (c < need) c *= 2;
  p = realloc(p, c * unit);
  if (!p) { perror("c_relay"); exit(1); }
  *cap = c;
  return p;
}

static int congested(const struct client *c) {
  return !c->dead && c->out_len - c->out_off > outbox_limit / 2;
}

static void cut_off(struct client *c, const char *why) {
  if (c->dead) return;
  c->dead = 1;
  snprintf(c->why, sizeof c->why, "%s", why);
}

/* One write of what is queued; the rest waits for EPOLLOUT. */
static void flush(struct client *c) {
  while (!c->dead && c->out_off < c->out_len) {
    ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (w > 0) {
      c->out_off += (size_t)w;
      c->written += (unsigned long long)w;
      break;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno != EAGAIN) cut_off(c, "connection lost while sending");
    break;
  }
  if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
}

/* Queues `n` bytes for `c`; with nothing queued before, writes at once. */
static void send_to(struct client *c, const char *p, size_t n) {
  if (c->dead) return;
  size_t queued = c->out_len - c->out_off;
  if (queued + n > outbox_limit) {
    char why[64];
    snprintf(why, sizeof why, "too slow: %zu bytes unread", queued + n);
    cut_off(c, why);
    return;
  }
  if (c->out_off > 0 && c->out_off >= c->out_len / 2) { /* compact */
    memmove(c->out, c->out + c->out_off, queued);
    c->out_len = queued;
    c->out_off = 0;
  }
  c->out = grow(c->out, &c->out_cap, c->out_len + n, 1);
  memcpy(c->out + c->out_len, p, n);
  c->out_len += n;
  if (queued == 0) flush(c);
  if (congested(c)) congestion = 1;
}

static void notice_to(struct client *c, const char *text) {
  char line[256];
  int n = snprintf(line, sizeof line, "* %s\n", text);
  send_to(c, line, (size_t)n);
}

/* To every member but `except`. */
static void broadcast(const struct client *except, const char *p, size_t n) {
  for (int i = 0; i < count; i++)
    if (members[i] != except) send_to(members[i], p, n);
}

static void announce(const struct client *except, const char *text) {
  char line[256];
  int n = snprintf(line, sizeof line, "* %s\n", text);
  broadcast(except, line, (size_t)n);
}

/* Removes every client marked dead (a leave may cut off others: repeat). */
static void reap(void) {
  for (int again = 1; again;) {
    again = 0;
    for (int i = 0; i < count; i++) {
      struct client *c = members[i];
      if (!c->dead) continue;
      if (c->why[0] && c->out_len == 0) { /* its goodbye, if nothing half-sent is in the way */
        char bye[128];
        int n = snprintf(bye, sizeof bye, "* %s; disconnecting\n", c->why);
        send(c->fd, bye, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      members[i] = members[--count];
      members[i]->index = i;
      by_fd[c->fd] = NULL;
      close(c->fd);
      char text[160];
      if (c->why[0]) snprintf(text, sizeof text, "%s has left (%s)", c->name, c->why);
      else snprintf(text, sizeof text, "%s has left", c->name);
      announce(NULL, text);
      free(c->held);
      free(c->out);
      free(c);
      again = 1;
      break;
    }
  }
}

static void join(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (fd >= cap_fd) {
    int old = cap_fd;
    size_t c = (size_t)cap_fd;
    by_fd = grow(by_fd, &c, (size_t)fd + 1, sizeof *by_fd);
    cap_fd = (int)c;
    memset(by_fd + old, 0, (size_t)(cap_fd - old) * sizeof *by_fd);
  }
  struct client *c = calloc(1, sizeof *c);
  c->fd = fd;
  c->id = next_id++;
  c->name_len = (size_t)snprintf(c->name, sizeof c->name, "guest-%d", c->id);
  char text[128];
  snprintf(text, sizeof text, "welcome %s (C relay): %d other%s here", c->name, count,
           count == 1 ? "" : "s");
  notice_to(c, text);
  snprintf(text, sizeof text, "%s has joined", c->name);
  announce(NULL, text);
  size_t cm = (size_t)cap_members;
  members = grow(members, &cm, (size_t)count + 1, sizeof *members);
  cap_members = (int)cm;
  c->index = count;
  members[count++] = c;
  by_fd[fd] = c;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static char *block;
static size_t block_len, block_cap;

/* Appends "NAME: TEXT\n" for one complete line (its "\n" not included). */
static void relay_line(struct client *c, const char *line, size_t n) {
  if (n > 0 && line[n - 1] == '\r') n--;
  size_t need = c->name_len + 2 + 2 * n + 1, start = block_len;
  block = grow(block, &block_cap, block_len + need, 1);
  memcpy(block + block_len, c->name, c->name_len);
  block_len += c->name_len;
  block[block_len++] = ':';
  block[block_len++] = ' ';
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)line[i];
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
      block[block_len++] = '^';
      block[block_len++] = ch == 0x7f ? '?' : (char)(ch + 0x40);
    } else block[block_len++] = (char)ch;
  }
  if (block_len - start > max_line) { /* its relayed form would not fit */
    char text[160];
    snprintf(text, sizeof text, "message not relayed: %zu bytes with your name, over the maximum of %zu",
             block_len - start, max_line);
    block_len = start;
    notice_to(c, text);
    return;
  }
  block[block_len++] = '\n';
}

/* One read(): its complete lines become one block, one write per receiver. */
static void read_once(struct client *c) {
  static char buf[READ_SIZE];
  ssize_t r = read(c->fd, buf, sizeof buf);
  if (r < 0 && errno == EAGAIN) { c->readable = 0; return; }
  if (r <= 0) { c->readable = 0; c->dead = 1; return; } /* end or reset: a plain leave */
  if ((size_t)r < sizeof buf) c->readable = 0; /* read dry: the next edge says when more comes */
  block_len = 0;
  const char *p = buf, *end = buf + r;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t k = (size_t)((nl ? nl : end) - p);
    if (c->held_len + k > max_line + (nl && k > 0 && p[k - 1] == '\r')) {
      char why[96];
      snprintf(why, sizeof why, "line longer than %zu bytes", max_line);
      cut_off(c, why);
      break;
    }
    if (!nl) { /* the start of a line: held for the next read */
      c->held = grow(c->held, &c->held_cap, c->held_len + k, 1);
      memcpy(c->held + c->held_len, p, k);
      c->held_len += k;
      break;
    }
    if (c->held_len == 0) relay_line(c, p, k);
    else {
      c->held = grow(c->held, &c->held_cap, c->held_len + k, 1);
      memcpy(c->held + c->held_len, p, k);
      relay_line(c, c->held, c->held_len + k);
      c->held_len = 0;
    }
    p = nl + 1;
  }
  if (block_len > 0) broadcast(c, block, block_len);
}

/* Cuts off congested clients that took nothing for stall_ns; 1 if any stays congested. */
static int judge(void) {
  int any = 0;
  uint64_t now = now_ns();
  for (int i = 0; i < count; i++) {
    struct client *c = members[i];
    if (!congested(c)) { c->mark_at = 0; continue; }
    if (c->mark_at == 0 || c->written != c->mark) { c->mark = c->written; c->mark_at = now; }
    else if (now - c->mark_at >= stall_ns) {
      char why[64];
      snprintf(why, sizeof why, "too slow: %zu bytes unread", c->out_len - c->out_off);
      cut_off(c, why);
      continue;
    }
    any = 1;
  }
  return any;
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0, one = 1;
  if (argc > 2) max_line = (size_t)atol(argv[2]);
  if (argc > 3) outbox_limit = (size_t)atol(argv[3]);
  if (argc > 4) stall_ns = (uint64_t)atol(argv[4]) * 1000000ull;
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0) {
    perror("c_relay");
    return 1;
  }
  socklen_t len = sizeof a;
  getsockname(ls, (struct sockaddr *)&a, &len);
  printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
  fflush(stdout);
  ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, evs[1024];
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  int paused = 0;
  for (;;) {
    /* clients left readable (a full read, or paused) are served without waiting */
    int pending = 0;
    if (!paused)
      for (int i = 0; i < count && !pending; i++) pending = members[i]->readable;
    int n = epoll_wait(ep, evs, 1024, pending ? 0 : paused ? 100 : -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        int c;
        while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) join(c);
        continue;
      }
      struct client *c = fd < cap_fd ? by_fd[fd] : NULL;
      if (!c) continue;
      if (evs[i].events & EPOLLOUT) flush(c);
      if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->readable = 1;
    }
    paused = congestion = congestion && judge();
    /* one read per readable client per round, in turn */
    for (int i = 0; i < count && !congestion; i++) {
      struct client *c = members[i];
      if (c->readable && !c->dead) read_once(c);
    }
    reap();
    paused = congestion;
  }
}
