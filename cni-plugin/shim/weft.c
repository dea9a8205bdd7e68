/*
 * weft CNI shim: the executable a container runtime runs as /opt/cni/bin/weft.
 *
 * Runtimes exec a plugin for every container operation, so start-up cost is
 * ADD latency. This program therefore does no CNI logic: it reads stdin and
 * the CNI_* environment, forwards them to the warm weft agent over a unix
 * socket, and prints the agent's answer with the agent's exit status. It only
 * answers by itself what must work without an agent: VERSION (podman asks it
 * of every plugin on every command), a missing or unknown CNI_COMMAND, an
 * unreadable stdin, and "agent not reachable" (CNI error 11, try again later).
 *
 * Wire format (all integers unsigned 32-bit big-endian):
 *   request: "WCN1" | env length | env block | stdin length | stdin bytes
 *            env block = "KEY=VALUE\0" for each CNI_* variable that is set
 *   reply:   "WCN1" | exit status | stdout length | stdout bytes
 * The TypeScript side lives in cni-plugin/cni/server.ts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "WCN1"
#define MAX_STDIN (1u << 20)
/* Keep in step with MAX_ENV in cni-plugin/cni/server.ts: the agent reads no more. */
#define MAX_ENV (64u * 1024)
/* An ADD result is a few hundred bytes; anything near this is a broken agent. */
#define MAX_REPLY (4u << 20)
#define DEFAULT_SOCKET "/run/weft/agent.sock"
#define DEFAULT_VERSION "1.1.0"
#define CONNECT_TIMEOUT_MS 2000
/* The runtime has its own, usually longer, deadline; this one only keeps a
 * wedged agent from holding the runtime's thread forever. */
#define REPLY_TIMEOUT_MS 120000

/* Keep in step with SUPPORTED_VERSIONS in cni-plugin/cni/types.ts. */
#define SUPPORTED_JSON "[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]"

/* CNI error codes the shim produces itself (names as in cni/types.ts). */
enum { ERR_INVALID_ENV = 4, ERR_IO_FAILURE = 5, ERR_DECODE_FAILURE = 6, ERR_INVALID_CONFIG = 7, ERR_TRY_AGAIN_LATER = 11 };

static const char *const ENV_KEYS[] = {
    "CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH",
};

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static void die_oom(void) {
  /* No JSON here: building it could need memory too. */
  static const char msg[] = "weft: out of memory\n";
  if (write(2, msg, sizeof msg - 1) < 0) { /* nothing left to report to */ }
  _exit(1);
}

static void buf_reserve(buf_t *b, size_t extra) {
  if (b->len + extra <= b->cap) return;
  size_t cap = b->cap ? b->cap : 1024;
  while (cap < b->len + extra) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) die_oom();
  b->p = p;
  b->cap = cap;
}

static void buf_add(buf_t *b, const void *p, size_t n) {
  buf_reserve(b, n);
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void buf_str(buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_u32(buf_t *b, uint32_t v) {
  unsigned char c[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                        (unsigned char)v};
  buf_add(b, c, 4);
}

static uint32_t get_u32(const unsigned char *c) {
  return ((uint32_t)c[0] << 24) | ((uint32_t)c[1] << 16) | ((uint32_t)c[2] << 8) | (uint32_t)c[3];
}

/* Appends s as a JSON string literal; bytes >= 0x80 pass through unchanged. */
static void buf_json_str(buf_t *b, const char *s) {
  buf_add(b, "\"", 1);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\') {
      char e[2] = {'\\', (char)*c};
      buf_add(b, e, 2);
    } else if (*c < 0x20) {
      char e[8];
      snprintf(e, sizeof e, "\\u%04x", *c);
      buf_str(b, e);
    } else {
      buf_add(b, c, 1);
    }
  }
  buf_add(b, "\"", 1);
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Prints a CNI error object on stdout, where runtimes look for it, and
 * returns the exit status that goes with it. */
static int cni_error(const char *version, int code, const char *msg, const char *details) {
  buf_t b = {0};
  char num[16];
  buf_str(&b, "{\"cniVersion\":");
  buf_json_str(&b, version);
  snprintf(num, sizeof num, "%d", code);
  buf_str(&b, ",\"code\":");
  buf_str(&b, num);
  buf_str(&b, ",\"msg\":");
  buf_json_str(&b, msg);
  if (details && *details) {
    buf_str(&b, ",\"details\":");
    buf_json_str(&b, details);
  }
  buf_str(&b, "}\n");
  write_all(1, b.p, b.len);
  free(b.p);
  return 1;
}

/* ---- a small scanner for one top-level string key of the config ----------
 * Only agentSocket and cniVersion are needed before the agent is reached. It
 * walks the top-level object and skips nested values whole, so a key of the
 * same name inside prevResult or runtimeConfig is never mistaken for it. It
 * does not validate: on anything unexpected it reports "not found" and the
 * agent, which parses properly, gives the real error. */

typedef struct {
  const char *p, *end;
} cur_t;

static void skip_ws(cur_t *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int hexval(char h) {
  if (h >= '0' && h <= '9') return h - '0';
  if (h >= 'a' && h <= 'f') return h - 'a' + 10;
  if (h >= 'A' && h <= 'F') return h - 'A' + 10;
  return -1;
}

static int read_hex4(cur_t *c, unsigned *out) {
  if (c->end - c->p < 4) return 0;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(c->p[i]);
    if (h < 0) return 0;
    v = v * 16 + (unsigned)h;
  }
  c->p += 4;
  *out = v;
  return 1;
}

/* Appends code point cp as UTF-8 to out if it fits; returns 0 if not. */
static int put_utf8(char *out, size_t cap, size_t *n, unsigned cp) {
  char t[4];
  size_t k;
  if (cp < 0x80) {
    t[0] = (char)cp;
    k = 1;
  } else if (cp < 0x800) {
    t[0] = (char)(0xc0 | (cp >> 6));
    t[1] = (char)(0x80 | (cp & 0x3f));
    k = 2;
  } else if (cp < 0x10000) {
    t[0] = (char)(0xe0 | (cp >> 12));
    t[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    t[2] = (char)(0x80 | (cp & 0x3f));
    k = 3;
  } else {
    t[0] = (char)(0xf0 | (cp >> 18));
    t[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    t[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    t[3] = (char)(0x80 | (cp & 0x3f));
    k = 4;
  }
  if (!out) return 1;
  if (*n + k >= cap) return 0;
  memcpy(out + *n, t, k);
  *n += k;
  return 1;
}

/* Reads the string literal at c->p, decoding it into out (NUL-terminated) when
 * out is given. Returns 0 on malformed input, an embedded NUL, or overflow. */
static int scan_string(cur_t *c, char *out, size_t cap) {
  size_t n = 0;
  if (c->p >= c->end || *c->p != '"') return 0;
  c->p++;
  while (c->p < c->end) {
    char ch = *c->p++;
    if (ch == '"') {
      if (out) out[n] = '\0';
      return 1;
    }
    unsigned cp = (unsigned char)ch;
    if (ch == '\\') {
      if (c->p >= c->end) return 0;
      char e = *c->p++;
      switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u': {
          if (!read_hex4(c, &cp)) return 0;
          if (cp >= 0xd800 && cp < 0xdc00) {
            unsigned lo;
            if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u') return 0;
            c->p += 2;
            if (!read_hex4(c, &lo) || lo < 0xdc00 || lo >= 0xe000) return 0;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp < 0xe000) {
            return 0;
          }
          if (cp == 0 && out) return 0; /* would cut a C string short */
          if (!put_utf8(out, cap, &n, cp)) return 0;
          continue;
        }
        default: return 0;
      }
    } else if (ch == '\0') {
      return 0;
    }
    if (out) {
      if (n + 1 >= cap) return 0;
      out[n++] = (char)cp;
    }
  }
  return 0;
}

static int skip_value(cur_t *c) {
  skip_ws(c);
  if (c->p >= c->end) return 0;
  if (*c->p == '"') return scan_string(c, NULL, 0);
  if (*c->p == '{' || *c->p == '[') {
    int depth = 0;
    while (c->p < c->end) {
      char ch = *c->p;
      if (ch == '"') {
        if (!scan_string(c, NULL, 0)) return 0;
        continue;
      }
      if (ch == '{' || ch == '[') depth++;
      if (ch == '}' || ch == ']') {
        if (--depth == 0) {
          c->p++;
          return 1;
        }
      }
      c->p++;
    }
    return 0;
  }
  /* number, true, false, null */
  const char *start = c->p;
  while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ']' && *c->p != ' ' && *c->p != '\t' &&
         *c->p != '\n' && *c->p != '\r')
    c->p++;
  return c->p > start;
}

/* Finds the last top-level string member named key (JSON.parse keeps the
 * last of duplicates, so the agent will too). Returns 1 and fills out if
 * found, 0 if not, -1 if stdin is not even shaped like one JSON object: then
 * the agent socket cannot be known, and the shim answers for itself. */
static int config_string(const char *json, size_t len, const char *key, char *out, size_t cap) {
  cur_t c = {json, json + len};
  char name[64];
  int found = 0;
  skip_ws(&c);
  if (c.p >= c.end || *c.p != '{') return -1;
  c.p++;
  skip_ws(&c);
  if (c.p < c.end && *c.p == '}') {
    c.p++;
  } else {
    for (;;) {
      skip_ws(&c);
      cur_t key_at = c;
      if (!scan_string(&c, name, sizeof name)) {
        /* a key longer than any we look for: skip it */
        c = key_at;
        if (!scan_string(&c, NULL, 0)) return -1;
        name[0] = '\0';
      }
      skip_ws(&c);
      if (c.p >= c.end || *c.p != ':') return -1;
      c.p++;
      skip_ws(&c);
      cur_t val_at = c;
      if (strcmp(name, key) == 0 && c.p < c.end && *c.p == '"' && scan_string(&c, out, cap)) {
        found = 1;
      } else {
        /* not it, or present but not a usable string: the agent judges that */
        if (strcmp(name, key) == 0) found = 0;
        c = val_at;
        if (!skip_value(&c)) return -1;
      }
      skip_ws(&c);
      if (c.p < c.end && *c.p == ',') {
        c.p++;
        continue;
      }
      if (c.p < c.end && *c.p == '}') {
        c.p++;
        break;
      }
      return -1;
    }
  }
  skip_ws(&c);
  return c.p == c.end ? found : -1;
}

/* ---- stdin ---------------------------------------------------------------- */

/* Returns 0 on success, -1 on a read error (errno set), 1 if stdin is larger
 * than MAX_STDIN (b then holds the first MAX_STDIN + 1 bytes). */
static int read_stdin(buf_t *b) {
  for (;;) {
    buf_reserve(b, 64 * 1024);
    size_t room = b->cap - b->len;
    if (b->len + room > MAX_STDIN + 1) room = MAX_STDIN + 1 - b->len;
    ssize_t r = read(0, b->p + b->len, room);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EBADF) return 0; /* no stdin at all: an empty config */
      return -1;
    }
    if (r == 0) return 0;
    b->len += (size_t)r;
    if (b->len > MAX_STDIN) return 1;
  }
}

/* ---- agent connection ----------------------------------------------------- */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline; 0 when ready, -1 with errno set. */
static int wait_fd(int fd, short events, long long deadline) {
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r > 0) return 0;
  }
}

static int connect_agent(const char *path, long long deadline) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  memcpy(sa.sun_path, path, strlen(path));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
  if (errno != EINPROGRESS && errno != EINTR) goto fail;
  if (wait_fd(fd, POLLOUT, deadline) < 0) goto fail;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) goto fail;
  if (err) {
    errno = err;
    goto fail;
  }
  return fd;
fail : {
  int saved = errno;
  close(fd);
  errno = saved;
  return -1;
}
}

static int send_all(int fd, const char *p, size_t n, long long deadline) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        if (wait_fd(fd, POLLOUT, deadline) < 0) return -1;
        continue;
      }
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads exactly n bytes; -1 with errno set, or ECONNRESET for an early EOF. */
static int recv_all(int fd, char *p, size_t n, long long deadline) {
  while (n > 0) {
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        if (wait_fd(fd, POLLIN, deadline) < 0) return -1;
        continue;
      }
      return -1;
    }
    if (r == 0) {
      errno = ECONNRESET;
      return -1;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static long reply_timeout_ms(void) {
  /* Operators (and tests) may shorten or lengthen the wait for the agent. */
  const char *s = getenv("WEFT_CNI_TIMEOUT_MS");
  if (!s || !*s) return REPLY_TIMEOUT_MS;
  char *end;
  long v = strtol(s, &end, 10);
  return (*end == '\0' && v > 0) ? v : REPLY_TIMEOUT_MS;
}

int main(void) {
  buf_t in = {0};
  char version[32] = DEFAULT_VERSION;

  int rs = read_stdin(&in);
  char seen[sizeof version];
  if (rs == 0 && config_string(in.p, in.len, "cniVersion", seen, sizeof seen) == 1 && seen[0])
    memcpy(version, seen, sizeof seen);
  const char *cmd = getenv("CNI_COMMAND");

  /* VERSION needs neither a valid config nor an agent. */
  if (cmd && strcmp(cmd, "VERSION") == 0) {
    buf_t b = {0};
    buf_str(&b, "{\"cniVersion\":\"" DEFAULT_VERSION "\",\"supportedVersions\":" SUPPORTED_JSON "}\n");
    return write_all(1, b.p, b.len) == 0 ? 0 : 1;
  }
  if (!cmd || !*cmd) return cni_error(version, ERR_INVALID_ENV, "CNI_COMMAND is not set", NULL);
  if (strcmp(cmd, "ADD") && strcmp(cmd, "DEL") && strcmp(cmd, "CHECK") && strcmp(cmd, "STATUS") &&
      strcmp(cmd, "GC")) {
    buf_t m = {0};
    buf_str(&m, "unknown CNI_COMMAND ");
    buf_json_str(&m, cmd);
    buf_str(&m, " (must be ADD, DEL, CHECK, STATUS, GC or VERSION)");
    buf_add(&m, "", 1);
    return cni_error(version, ERR_INVALID_ENV, m.p, NULL);
  }
  /* Too large is an I/O failure rather than a decoding one: the config was
   * never read in full, so nothing was decoded. */
  if (rs == 1) return cni_error(version, ERR_IO_FAILURE, "network configuration on stdin is larger than 1 MiB", NULL);
  if (rs < 0) return cni_error(version, ERR_IO_FAILURE, "failed to read the network configuration from stdin", strerror(errno));

  /* As long as stdin, so any agentSocket fits and a too-long one is reported
   * rather than silently replaced by the default. */
  char *sock = malloc(in.len + sizeof DEFAULT_SOCKET);
  if (!sock) die_oom();
  int has_sock = config_string(in.p, in.len, "agentSocket", sock, in.len + 1);
  if (has_sock < 0)
    return cni_error(version, ERR_DECODE_FAILURE, "network configuration on stdin is not a JSON object", NULL);
  if (has_sock == 0) strcpy(sock, DEFAULT_SOCKET);
  /* The agent refuses these too; checked here so the shim never dials a
   * path relative to wherever the runtime happens to run it. */
  if (sock[0] != '/') return cni_error(version, ERR_INVALID_CONFIG, "agentSocket must be an absolute path", sock);
  if (strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path))
    return cni_error(version, ERR_INVALID_CONFIG, "agentSocket is longer than a unix socket path may be", sock);

  buf_t env = {0};
  for (size_t i = 0; i < sizeof ENV_KEYS / sizeof ENV_KEYS[0]; i++) {
    const char *v = getenv(ENV_KEYS[i]);
    if (!v) continue;
    buf_str(&env, ENV_KEYS[i]);
    buf_add(&env, "=", 1);
    buf_add(&env, v, strlen(v) + 1);
  }
  /* A runtime's CNI_ARGS can be long (pod annotations); past what the agent
   * reads it is the runtime's environment that is wrong, so it is refused here
   * as such, with the config's version, rather than as a broken frame. */
  if (env.len > MAX_ENV)
    return cni_error(version, ERR_INVALID_ENV, "the CNI_* environment is larger than 64 KiB", NULL);
  buf_t req = {0};
  buf_add(&req, MAGIC, 4);
  buf_u32(&req, (uint32_t)env.len);
  if (env.len) buf_add(&req, env.p, env.len);
  buf_u32(&req, (uint32_t)in.len);
  if (in.len) buf_add(&req, in.p, in.len);

  buf_t m = {0};
  buf_str(&m, "weft agent is not reachable at ");
  buf_str(&m, sock);
  buf_add(&m, "", 1);

  int fd = connect_agent(sock, now_ms() + CONNECT_TIMEOUT_MS);
  if (fd < 0) return cni_error(version, ERR_TRY_AGAIN_LATER, m.p, strerror(errno));

  m.len = 0;
  buf_str(&m, "weft agent at ");
  buf_str(&m, sock);
  buf_str(&m, " did not answer");
  buf_add(&m, "", 1);
  long long deadline = now_ms() + reply_timeout_ms();
  unsigned char head[12];
  if (send_all(fd, req.p, req.len, deadline) < 0 || recv_all(fd, (char *)head, sizeof head, deadline) < 0) {
    const char *why = errno == ETIMEDOUT ? "no reply before the timeout"
                      : errno == ECONNRESET ? "the agent closed the connection without a reply"
                                            : strerror(errno);
    return cni_error(version, ERR_TRY_AGAIN_LATER, m.p, why);
  }
  if (memcmp(head, MAGIC, 4) != 0)
    return cni_error(version, ERR_TRY_AGAIN_LATER, m.p, "the agent's reply is not in the weft shim protocol");
  uint32_t status = get_u32(head + 4), out_len = get_u32(head + 8);
  if (out_len > MAX_REPLY || status > 255)
    return cni_error(version, ERR_TRY_AGAIN_LATER, m.p, "the agent's reply is malformed");
  char *out = malloc(out_len ? out_len : 1);
  if (!out) die_oom();
  if (recv_all(fd, out, out_len, deadline) < 0)
    return cni_error(version, ERR_TRY_AGAIN_LATER, m.p, "the agent's reply was cut short");
  close(fd);
  if (write_all(1, out, out_len) < 0) return 1;
  return (int)status;
}
