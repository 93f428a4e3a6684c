/*
 * Load generator for `deno task bench` (compiled by bench/run.ts with cc).
 * One thread, epoll, non-blocking sockets, and as little work per message as
 * it can: on a machine whose cores it shares with the server, every cycle it
 * spends is one the server does not get (at 1,000 receivers on 2 cores, the
 * rate is partly its limit: docs/benchmark.md says where).
 *
 *   loadgen echo HOST PORT CONNS SIZE SECONDS [raw|line|length] [greeting]
 *     Each connection sends SIZE bytes, waits for SIZE bytes back, repeats
 *     (ping-pong). With line, the SIZE bytes end in "\n"; with length they
 *     start with a 4-byte prefix of SIZE - 4. With greeting, each first
 *     reads one line (the iterative server's hello).
 *     Prints: round_trips bytes p50_us p99_us server_cpu_s
 *
 *   loadgen chat HOST PORT RECEIVERS SECONDS FRAMING
 *     One sender and RECEIVERS receivers join a chat server (each waits for
 *     its first line, the welcome). The sender writes "T<nanoseconds>"
 *     messages (FRAMING: line, or length for 4-byte big-endian prefixes)
 *     while it is at most WINDOW messages ahead of the slowest receiver
 *     (each write of 32 carries the moment it was made). Receivers count
 *     every message carrying a T stamp and sample the latency of every 16th:
 *     from its stamp to the return of the read that brought it.
 *     Prints: sent delivered p50_us p99_us server_cpu_s
 *
 *   server_cpu_s: with SERVER_PID set in the environment, the CPU seconds
 *   that process used during the measured phase only (not while
 *   connecting or joining); else -1.
 *
 *   loadgen --tls CAFILE echo|chat …
 *     The same over TLS: each connection completes its handshake (the
 *     server verified against CAFILE, loaded once, and the IP address)
 *     before the measured phase, then makes one SSL_read or SSL_write
 *     where it would read or write. Built with -DLOADGEN_TLS and
 *     -lssl -lcrypto (bench/run.ts does so where OpenSSL's headers are).
 */
#define _GNU_SOURCE
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
#ifdef LOADGEN_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
typedef SSL *tls_t;
#else
typedef void *tls_t;
#endif

#define MAX_SAMPLES 200000
#define WINDOW 2000

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint32_t samples[MAX_SAMPLES];
static long nsamples = 0, seen_samples = 0;

/* xorshift64: glibc's random() takes a lock on every call */
static uint64_t next_random(void) {
  static uint64_t x = 88172645463325252ull;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

static void sample(uint64_t ns) {
  /* reservoir sampling keeps the percentiles honest over long runs */
  uint32_t us = (uint32_t)(ns / 1000);
  seen_samples++;
  if (nsamples < MAX_SAMPLES) samples[nsamples++] = us;
  else {
    long j = (long)(next_random() % (uint64_t)seen_samples);
    if (j < MAX_SAMPLES) samples[j] = us;
  }
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static uint32_t percentile(double p) {
  if (nsamples == 0) return 0;
  qsort(samples, nsamples, sizeof samples[0], cmp_u32);
  long i = (long)(p * (nsamples - 1));
  return samples[i];
}

static int dial(const char *host, int port) {
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
    fprintf(stderr, "loadgen: bad IPv4 address %s\n", host);
    exit(2);
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("loadgen: connect");
    exit(1);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* ------------------------------------------------------------------- tls */

#ifdef LOADGEN_TLS
static SSL_CTX *tls_ctx; /* set by --tls: every connection speaks TLS */

/* The context every connection shares: the test certificate trusted once;
 * reads ahead into a 64 KiB buffer (one read() for several records, as a
 * plain read takes up to 64 KiB); writes may be partial, as write()'s are. */
static void tls_setup(const char *cafile) {
  tls_ctx = SSL_CTX_new(TLS_client_method());
  if (!tls_ctx || SSL_CTX_load_verify_locations(tls_ctx, cafile, NULL) != 1) {
    fprintf(stderr, "loadgen: cannot load the certificate %s to trust: %s\n", cafile,
            ERR_error_string(ERR_get_error(), NULL));
    exit(2);
  }
  SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
  SSL_CTX_set_options(tls_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF); /* a close without close_notify is a close */
#endif
  SSL_CTX_set_read_ahead(tls_ctx, 1);
  SSL_CTX_set_default_read_buffer_len(tls_ctx, 65536);
}

/* The client's handshake on a blocking socket, the server's certificate
 * checked for `host` (an IP address); NULL without --tls. */
static tls_t tls_handshake(int fd, const char *host) {
  if (!tls_ctx) return NULL;
  SSL *ssl = SSL_new(tls_ctx);
  SSL_set_fd(ssl, fd);
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
  if (SSL_connect(ssl) != 1) {
    long verify = SSL_get_verify_result(ssl);
    fprintf(stderr, "loadgen: TLS handshake with %s failed: %s\n", host,
            verify != X509_V_OK ? X509_verify_cert_error_string(verify)
                                : ERR_error_string(ERR_get_error(), NULL));
    exit(1);
  }
  return ssl;
}

/* SSL_read's or SSL_write's result as read() and write() give theirs:
 * would block is -1 with EAGAIN, a close (with or without close_notify) 0. */
static ssize_t tls_result(SSL *ssl, int n) {
  if (n > 0) return n;
  switch (SSL_get_error(ssl, n)) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE: errno = EAGAIN; return -1;
  case SSL_ERROR_ZERO_RETURN: return 0;
  case SSL_ERROR_SYSCALL: if (errno == 0) return 0; return -1;
  default: errno = EPROTO; return -1;
  }
}
#else
static void tls_setup(const char *cafile) {
  (void)cafile;
  fprintf(stderr, "loadgen: built without OpenSSL, so no --tls (apt install libssl-dev, then rebuild)\n");
  exit(2);
}
static tls_t tls_handshake(int fd, const char *host) { (void)fd; (void)host; return NULL; }
#endif

/* read(), or SSL_read on a TLS connection. */
static ssize_t io_read(int fd, tls_t ssl, void *buf, size_t n) {
#ifdef LOADGEN_TLS
  if (ssl) return tls_result(ssl, SSL_read(ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n));
#endif
  (void)ssl;
  return read(fd, buf, n);
}

/* write(), or SSL_write on a TLS connection. */
static ssize_t io_write(int fd, tls_t ssl, const void *buf, size_t n) {
#ifdef LOADGEN_TLS
  if (ssl) return tls_result(ssl, SSL_write(ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n));
#endif
  (void)ssl;
  return write(fd, buf, n);
}

/* Bytes a TLS connection read ahead and holds: epoll will not announce
 * them, so the reader goes on while there are some. */
static int io_buffered(tls_t ssl) {
#ifdef LOADGEN_TLS
  if (ssl) return SSL_has_pending(ssl);
#endif
  (void)ssl;
  return 0;
}

/* CPU seconds used so far by the process $SERVER_PID (all its threads), from
 * /proc/PID/stat; -1 when unset or unreadable. Read around the measured
 * phase only, so connecting and joining are not counted. */
static double server_cpu(void) {
  const char *pid = getenv("SERVER_PID");
  if (!pid) return -1;
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%s/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  unsigned long long utime, stime;
  /* after ") ": state, then fields 4..13; utime and stime are fields 14, 15 */
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
    return -1;
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* ------------------------------------------------------------------ echo */

struct econn {
  int fd;
  tls_t ssl;
  int out_armed; /* listening for EPOLLOUT: part of the message is unsent */
  size_t sent, got;
  uint64_t start;
};

/* Writes what is left of the message; listens for EPOLLOUT only while some
 * is left, so a round trip costs one write and one read, no epoll_ctl. */
static int send_rest(int ep, struct econn *e, uint32_t id, const char *out, size_t size) {
  while (e->sent < size) {
    ssize_t w = io_write(e->fd, e->ssl, out + e->sent, size - e->sent);
    if (w > 0) e->sent += (size_t)w;
    else if (w < 0 && errno == EAGAIN) break;
    else { perror("loadgen: write"); return -1; }
  }
  int want_out = e->sent < size;
  if (want_out != e->out_armed) {
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.u32 = id};
    epoll_ctl(ep, EPOLL_CTL_MOD, e->fd, &ev);
    e->out_armed = want_out;
  }
  return 0;
}

static int run_echo(const char *host, int port, int conns, size_t size, double seconds,
                    const char *framing, int greeting) {
  int ep = epoll_create1(0);
  struct econn *c = calloc(conns, sizeof *c);
  char *out = malloc(size), *in = malloc(size > 65536 ? size : 65536);
  memset(out, 'x', size);
  if (strcmp(framing, "line") == 0) out[size - 1] = '\n';
  if (strcmp(framing, "length") == 0) {
    uint32_t n = (uint32_t)(size - 4);
    out[0] = (char)(n >> 24); out[1] = (char)(n >> 16); out[2] = (char)(n >> 8); out[3] = (char)n;
  }
  for (int i = 0; i < conns; i++) {
    c[i].fd = dial(host, port);
    c[i].ssl = tls_handshake(c[i].fd, host);
    if (greeting) {
      char ch;
      while (io_read(c[i].fd, c[i].ssl, &ch, 1) == 1 && ch != '\n') {}
    }
    nonblock(c[i].fd);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
    epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
  }
  double cpu0 = server_cpu();
  uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
  for (int i = 0; i < conns; i++) {
    c[i].start = now_ns();
    if (send_rest(ep, &c[i], (uint32_t)i, out, size) < 0) return 1;
  }
  long trips = 0;
  unsigned long long bytes = 0;
  struct epoll_event evs[1024];
  while (now_ns() < end) {
    int n = epoll_wait(ep, evs, 1024, 100);
    for (int k = 0; k < n; k++) {
      uint32_t id = evs[k].data.u32;
      struct econn *e = &c[id];
      if ((evs[k].events & EPOLLOUT) && send_rest(ep, e, id, out, size) < 0) return 1;
      if (!(evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      for (;;) {
        size_t want = size - e->got < 65536 ? size - e->got : 65536;
        ssize_t r = io_read(e->fd, e->ssl, in, want);
        if (r > 0) {
          e->got += (size_t)r;
          bytes += (unsigned long long)r;
          if (e->got == size) {
            uint64_t t = now_ns();
            sample(t - e->start);
            trips++;
            e->got = e->sent = 0;
            e->start = t;
            if (send_rest(ep, e, id, out, size) < 0) return 1;
            break;
          }
          /* emptied: epoll says when more comes */
          if ((size_t)r < want && !io_buffered(e->ssl)) break;
        } else if (r == 0) { fprintf(stderr, "loadgen: server closed\n"); return 1; }
        else if (errno == EAGAIN) break;
        else { perror("loadgen: read"); return 1; }
      }
    }
  }
  double cpu1 = server_cpu();
  printf("%ld %llu %u %u %.2f\n", trips, bytes * 2, percentile(0.5), percentile(0.99),
         cpu0 < 0 || cpu1 < 0 ? -1.0 : cpu1 - cpu0);
  return 0;
}

/* ------------------------------------------------------------------ chat */

struct rconn {
  int fd;
  tls_t ssl;
  int welcomed;
  long count;
  size_t len;         /* bytes of the current message held */
  uint32_t want;      /* length framing: payload size, or UINT32_MAX while reading the prefix */
  char *buf;          /* HELD bytes, apart so that the array of rconn stays small */
};

#define HELD (65536 + 8)

/* When the read that carried the messages being parsed returned: they all
 * arrived then, however long the parsing of those before them takes. */
static uint64_t arrived;

/* A complete message: count it if it carries a T stamp; sample every 16th. */
static void on_message(struct rconn *r, const char *m, size_t n) {
  if (!r->welcomed) { r->welcomed = 1; return; }
  const char *t = memrchr(m, 'T', n);
  if (!t || t + 1 >= m + n || t[1] < '0' || t[1] > '9') return;
  r->count++;
  if (r->count % 16 != 0) return;
  uint64_t stamp = 0;
  for (const char *d = t + 1; d < m + n && *d >= '0' && *d <= '9'; d++) stamp = stamp * 10 + (uint64_t)(*d - '0');
  sample(arrived - stamp);
}

/* Keeps the start of a message cut by the end of a read. */
static int hold(struct rconn *r, const char *p, size_t n) {
  if (r->len + n > HELD) return -1;
  memcpy(r->buf + r->len, p, n);
  r->len += n;
  return 0;
}

/* Splits a read into messages: whole ones are parsed where they lie, only a
 * message cut by the end of the read is copied. */
static int feed(struct rconn *r, const char *p, size_t n, int length) {
  while (n > 0) {
    if (!length) {
      const char *nl = memchr(p, '\n', n);
      if (!nl) return hold(r, p, n);
      size_t k = (size_t)(nl - p);
      if (r->len == 0) on_message(r, p, k);
      else {
        if (hold(r, p, k) < 0) return -1;
        on_message(r, r->buf, r->len);
        r->len = 0;
      }
      p += k + 1; n -= k + 1;
    } else if (r->want == UINT32_MAX) {
      size_t k = 4 - r->len < n ? 4 - r->len : n;
      hold(r, p, k);
      p += k; n -= k;
      if (r->len < 4) return 0;
      r->want = ((uint32_t)(unsigned char)r->buf[0] << 24) | ((uint32_t)(unsigned char)r->buf[1] << 16) |
                ((uint32_t)(unsigned char)r->buf[2] << 8) | (uint32_t)(unsigned char)r->buf[3];
      r->len = 0;
      if (r->want > HELD) return -1;
      if (r->want == 0) { on_message(r, r->buf, 0); r->want = UINT32_MAX; }
    } else if (r->len == 0 && n >= r->want) {
      on_message(r, p, r->want);
      p += r->want; n -= r->want;
      r->want = UINT32_MAX;
    } else {
      size_t k = r->want - r->len < n ? r->want - r->len : n;
      hold(r, p, k);
      p += k; n -= k;
      if (r->len < r->want) return 0;
      on_message(r, r->buf, r->len);
      r->len = 0;
      r->want = UINT32_MAX;
    }
  }
  return 0;
}

/* The count of the receiver furthest behind (index 0 is the sender). */
static long slowest_count(const struct rconn *c, int total) {
  long slowest = -1;
  for (int i = 1; i < total; i++) if (slowest < 0 || c[i].count < slowest) slowest = c[i].count;
  return slowest;
}

/* The sender's side of a chat run. */
struct sender {
  struct rconn *c; /* c[0] sends, c[1..total) receive */
  int total, ep, length;
  int armed;       /* epoll reports c[0] writable */
  long sent;
  char out[64 * 40];
  size_t out_len, out_off;
};

/* Writes the next batch of 32 messages (or what is left of the last one)
 * while the sender is less than WINDOW ahead of the slowest receiver. Past
 * WINDOW, epoll stops reporting the sender writable: else every epoll_wait
 * would return at once, and the generator would spin on the cores it shares
 * with the server. */
static void send_batch(struct sender *s) {
  struct rconn *r = &s->c[0];
  if (s->out_off == s->out_len) {
    long slowest = slowest_count(s->c, s->total);
    int open = s->sent - slowest < WINDOW;
    if (open != s->armed) {
      struct epoll_event ev = {.events = open ? EPOLLIN | EPOLLOUT : EPOLLIN, .data.u32 = 0};
      epoll_ctl(s->ep, EPOLL_CTL_MOD, r->fd, &ev);
      s->armed = open;
    }
    if (!open) return;
    s->out_len = s->out_off = 0;
    /* one write carries them all: one stamp, the moment it is made */
    unsigned long long stamp = (unsigned long long)now_ns();
    for (int m = 0; m < 32 && s->sent - slowest < WINDOW; m++, s->sent++) {
      char msg[32];
      int l = snprintf(msg, sizeof msg, "T%llu", stamp);
      if (s->length) {
        s->out[s->out_len++] = 0; s->out[s->out_len++] = 0; s->out[s->out_len++] = 0; s->out[s->out_len++] = (char)l;
        memcpy(s->out + s->out_len, msg, (size_t)l); s->out_len += (size_t)l;
      } else {
        memcpy(s->out + s->out_len, msg, (size_t)l); s->out_len += (size_t)l;
        s->out[s->out_len++] = '\n';
      }
    }
  }
  ssize_t w = io_write(r->fd, r->ssl, s->out + s->out_off, s->out_len - s->out_off);
  if (w > 0) s->out_off += (size_t)w;
}

static int run_chat(const char *host, int port, int receivers, double seconds, int length) {
  int ep = epoll_create1(0);
  int total = receivers + 1; /* index 0 sends (and reads its own stream) */
  struct rconn *c = calloc(total, sizeof *c);
  for (int i = 0; i < total; i++) {
    c[i].fd = dial(host, port);
    c[i].ssl = tls_handshake(c[i].fd, host);
    c[i].want = UINT32_MAX;
    c[i].buf = malloc(HELD);
    nonblock(c[i].fd);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
    epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
  }
  char in[65536];
  struct epoll_event evs[1024];
  /* every client is welcomed; then the join notices settle for 500 ms */
  uint64_t deadline = now_ns() + 30000000000ull, quiet = 0;
  for (;;) {
    int n = epoll_wait(ep, evs, 1024, 50);
    for (int k = 0; k < n; k++) {
      struct rconn *r = &c[evs[k].data.u32];
      ssize_t got;
      do {
        got = io_read(r->fd, r->ssl, in, sizeof in);
        arrived = now_ns();
        if (got > 0 && feed(r, in, (size_t)got, length) < 0) { fprintf(stderr, "loadgen: a message over 64 KiB\n"); return 1; }
        else if (got == 0) { fprintf(stderr, "loadgen: the server closed a receiver while joining\n"); return 1; }
      } while (got > 0 && io_buffered(r->ssl));
    }
    int all = 1;
    for (int i = 0; i < total; i++) all &= c[i].welcomed;
    if (all && n == 0) { if (!quiet) quiet = now_ns(); if (now_ns() - quiet > 500000000ull) break; }
    else quiet = 0;
    if (now_ns() > deadline) { fprintf(stderr, "loadgen: not every receiver was welcomed within 30 s\n"); return 1; }
  }
  for (int i = 0; i < total; i++) c[i].count = 0;
  nsamples = seen_samples = 0;

  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = 0};
  epoll_ctl(ep, EPOLL_CTL_MOD, c[0].fd, &ev);
  double cpu0 = server_cpu();
  uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
  struct sender snd = {.c = c, .total = total, .ep = ep, .length = length, .armed = 1};
  while (now_ns() < end) {
    int n = epoll_wait(ep, evs, 1024, 10);
    for (int k = 0; k < n; k++) {
      uint32_t i = evs[k].data.u32;
      struct rconn *r = &c[i];
      if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (;;) {
          ssize_t got = io_read(r->fd, r->ssl, in, sizeof in);
          if (got > 0) {
            arrived = now_ns();
            if (i != 0 && feed(r, in, (size_t)got, length) < 0) { fprintf(stderr, "loadgen: a message over 64 KiB\n"); goto done; }
            /* a short read emptied the socket: epoll says when more comes,
             * without a read that fails with EAGAIN */
            if ((size_t)got < sizeof in && !io_buffered(r->ssl)) break;
          }
          else if (got == 0) { fprintf(stderr, "loadgen: the server closed a connection\n"); goto done; }
          else break;
        }
      }
      if (i == 0 && (evs[k].events & EPOLLOUT)) send_batch(&snd);
    }
    /* the receivers just read may have opened the window */
    if (!snd.armed) send_batch(&snd);
  }
done:;
  double cpu1 = server_cpu();
  long delivered = 0;
  for (int i = 1; i < total; i++) delivered += c[i].count;
  printf("%ld %ld %u %u %.2f\n", snd.sent, delivered, percentile(0.5), percentile(0.99),
         cpu0 < 0 || cpu1 < 0 ? -1.0 : cpu1 - cpu0);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "--tls") == 0) {
    tls_setup(argv[2]);
    argv[2] = argv[0];
    argc -= 2;
    argv += 2;
  }
  if (argc >= 7 && strcmp(argv[1], "echo") == 0)
    return run_echo(argv[2], atoi(argv[3]), atoi(argv[4]), (size_t)atol(argv[5]), atof(argv[6]),
                    argc > 7 ? argv[7] : "raw", argc > 8 && strcmp(argv[8], "greeting") == 0);
  if (argc >= 7 && strcmp(argv[1], "chat") == 0)
    return run_chat(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]), strcmp(argv[6], "length") == 0);
  fprintf(stderr, "usage: loadgen [--tls CAFILE] echo HOST PORT CONNS SIZE SECONDS [raw|line|length] [greeting] | chat HOST PORT RECEIVERS SECONDS line|length\n");
  return 2;
}
