/* http.c - HTTP GETs over one reusable libcurl easy handle.
 *
 * DESIGN. Each `struct http` owns one easy handle for its whole life. curl_easy_reset()
 * clears the options between requests but keeps the connection cache, the DNS cache and the
 * TLS session cache, so a thread that fetches many files from one host pays for one TCP
 * (and TLS) handshake, not one per job. A transfer driven by a multi handle (cproducer's
 * async mode, cworker's transfer threads: fetch.h) uses the multi handle's caches instead,
 * shared by every transfer on it.
 *
 * What libcurl parses, cq takes from it rather than parsing again: links are checked with its
 * URL API (curl_url, the parser the transfer itself uses, so that the resource fetched and
 * the name a file gets cannot disagree); the status is CURLINFO_RESPONSE_CODE, the final
 * response's headers come from curl_easy_nextheader (request -1: the last hop of a redirect
 * chain) and Retry-After, in both its forms, from CURLINFO_RETRY_AFTER. libcurl follows
 * redirects without handing their bodies to the write callback, so the body that arrives
 * is the final response's. What cq still checks itself is what libcurl 7.88 does not: the
 * total size of the header blocks (it caps one header line, not their sum), a body's size
 * when no Content-Length declared it, and the form of links (absolute http(s) only).
 *
 * Size limits are enforced twice, both in the write callback: at the final response's first
 * body byte, a Content-Length it declares over the cap stops it; and a body that declared
 * none (chunked or close-delimited), or less than it sends, is stopped as soon as it passes
 * the cap. Not with CURLOPT_MAXFILESIZE_LARGE: libcurl 7.88 holds it against the declared
 * length of every response, a 3xx it follows too, whose length is not the file's.
 *
 * Network policy (netpolicy.h). A job names the link, so the places a request may go are
 * checked where libcurl decides them, not where the URL names them. The open-socket hook
 * sees every address libcurl is about to connect to, after DNS, for every hop and for both
 * families of happy eyeballs; a refused address gets no socket, so not a packet is sent to
 * it, and libcurl goes on to the next address. The pre-request hook runs before each request
 * is sent, on a new connection or one reused from the cache (made under another policy,
 * perhaps, by the same handle), and checks the connected address and the hop's host name
 * again; a refusal there aborts the transfer. The first URL's host is checked before
 * anything, so a link to a host not allowed costs no DNS lookup. A request refused so fails
 * permanently: the policy will refuse it the same way next time. When libcurl goes through a
 * proxy (http_proxy and friends), the address connected to is the proxy's: the proxy is
 * checked, and a host that is an IP address is checked before the proxy is asked, but what a
 * host name resolves to is the proxy's business.
 *
 * Content (images_only). The first CONTENT_SNIFF_LEN bytes of a body to keep (a 2xx's, a
 * download's 200 or 203: keeps_body) are kept and judged as soon as they are in (or at the
 * end of a shorter body); a body that is no image stops the transfer there, so an HTML page
 * of 50 MB costs its first piece (libcurl hands a body over 16 KB at a time at most), not
 * 50 MB.
 *
 * A request is two halves around the transfer: begin() sets the options, end() judges how
 * libcurl ended it. perform() joins them with curl_easy_perform; http_setup_fd_transfer and
 * http_finish_fd_transfer export them for GETs into a file, so that a curl multi handle can
 * run many such transfers on one thread with the same callbacks, limits and verdict as
 * http_get_to_fd (which is those two calls around http_perform).
 */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "content.h"
#include "netpolicy.h"
#include "util.h"

#define USER_AGENT "cq/0.1"

/* A header block larger than this is not something a file server sends; refuse it rather
 * than grow without bound on what the network tells us. */
#define HEADERS_MAX (256 * 1024)

/* The body of a response http_get_to_fd does not keep (a 404's, a 206's: keeps_body) is read
 * and dropped so the connection stays reusable, but only up to this much: past it, closing
 * the connection is cheaper. */
#define DISCARD_MAX (64 * 1024)

/* How long a parsed CA bundle is kept for new https connections (see setup()). */
#define CA_CACHE_SECONDS 300

/* A Retry-After further away than this is treated as this: a server must not be able to
 * park a job for weeks. */
#define RETRY_AFTER_MAX 86400.0

/* What the callbacks of one request share. */
struct xfer {
    int to_fd; /* 1: body goes to fd (2xx only); 0: body goes to buf */
    int fd;
    long long max_bytes; /* 0 = no cap */
    long status;         /* the final response's status, read at its first body byte */
    long long bytes;     /* body bytes of the final response: kept (written), or dropped */
    char *buf;           /* memory mode: the body */
    size_t len, cap;
    size_t hlen;      /* header bytes of every response so far */
    int over_cap;     /* stopped: body passed max_bytes */
    int hdr_overflow; /* stopped: header block passed HEADERS_MAX */
    int discarded;    /* stopped: dropped a non-2xx body past DISCARD_MAX */
    int write_errno;  /* stopped: write(2) to fd failed with this errno */
    /* The network policy: what the hooks need, and what they saw on the current redirect
     * hop (so, after a redirect, only the connections of the hop that failed count). */
    const struct netpolicy *policy;
    CURL *curl;         /* for the hooks' curl_easy_getinfo */
    long hop;           /* the redirect hop the counts below are of (CURLINFO_REDIRECT_COUNT) */
    int conns_allowed;  /* addresses the open-socket hook let through */
    int conns_refused;  /* and refused */
    int policy_aborted; /* the pre-request hook stopped the transfer */
    char refused[640];  /* the first refusal's reason, or "" */
    /* images_only: the body's first bytes, and the verdict on them. */
    int images_only;
    unsigned char head[CONTENT_SNIFF_LEN];
    size_t headlen;
    int judged;    /* head was judged */
    int not_image; /* stopped, or failed at the end: the body is no image */
    /* http_set_stop's check, and whether it ended the transfer. */
    enum http_stop (*stop_fn)(void *arg);
    void *stop_arg;
    int stopped; /* the stop check's answer that ended the transfer (enum http_stop) */
};

struct http {
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
    /* The transfer to a file descriptor between http_setup_fd_transfer and
     * http_finish_fd_transfer. It lives here rather than on a stack because, driven by a
     * multi handle, the transfer outlives the call that set it up. */
    struct xfer x;
    char *url; /* the URL of that transfer, for its messages; NULL when idle */
};

void http_limits_default(struct http_limits *lim)
{
    memset(lim, 0, sizeof *lim); /* no policy, any body, and whatever is added later */
    lim->connect_timeout = 10.0;
    lim->timeout = 60.0;
    lim->max_bytes = 50LL * 1024 * 1024;
    lim->max_redirects = 5;
}

int http_global_init(char *err, size_t errlen)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);

    if (rc != CURLE_OK) {
        err_set(err, errlen, "curl_global_init: %s", curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

struct http *http_new(char *err, size_t errlen)
{
    struct http *h = xcalloc(1, sizeof(*h));

    h->curl = curl_easy_init();
    if (h->curl == NULL) {
        err_set(err, errlen, "http_new: curl_easy_init failed");
        free(h);
        return NULL;
    }
    return h;
}

/* Forget a transfer that was set up and never finished. */
static void drop_fd_transfer(struct http *h)
{
    free(h->url);
    memset(&h->x, 0, sizeof(h->x));
    h->url = NULL;
}

void http_free(struct http *h)
{
    if (h == NULL) return;
    curl_easy_cleanup(h->curl);
    drop_fd_transfer(h);
    free(h);
}

void http_set_error(struct http *h, const char *text)
{
    str_copy(h->errbuf, sizeof h->errbuf, text);
}

CURL *http_curl(struct http *h)
{
    return h->curl;
}

CURLcode http_perform(struct http *h)
{
    return curl_easy_perform(h->curl);
}

void http_result_free(struct http_result *res)
{
    if (res == NULL) return;
    free(res->headers);
    res->headers = NULL;
    for (size_t i = 0; i < res->nhdrs; i++) {
        free(res->hdrs[i].name);
        free(res->hdrs[i].value);
    }
    free(res->hdrs);
    res->hdrs = NULL;
    res->nhdrs = 0;
}

static void buf_append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t ncap = *cap ? *cap : 1024;

        while (ncap < *len + n + 1) ncap *= 2;
        *buf = xrealloc(*buf, ncap);
        *cap = ncap;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static int is_2xx(long status)
{
    return status >= 200 && status < 300;
}

/* The statuses whose body a download keeps (http_get_to_fd): the resource itself, whole:
 * 200, and 203 (the same through a transforming proxy). A 206 is a part of it (cq sends no
 * Range, so it answers no request of ours), 204 and 205 have no body, and the other 2xx
 * (201, 202, 207, ...) describe something else than the link's file. */
static int keeps_body(long status)
{
    return status == 200 || status == 203;
}

/* Whether x keeps the body of a response of this status: http_get's (the gallery's) any 2xx
 * (its caller reads the status), http_get_to_fd's only keeps_body's. */
static int body_wanted(const struct xfer *x, long status)
{
    return x->to_fd ? keeps_body(status) : is_2xx(status);
}

/* Headers are only counted here (libcurl parses them; end() reads the final response's):
 * every hop's block counts toward HEADERS_MAX. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct xfer *x = userp;
    size_t n = size * nmemb;

    (void)data;
    if (x->hlen + n > HEADERS_MAX) {
        x->hdr_overflow = 1;
        return 0;
    }
    x->hlen += n;
    return n;
}

/* Write all n bytes, adding each write's to *written, so that a write that fails part way
 * leaves the count at what the file holds. 0, or -1 with errno. */
static int write_all(int fd, const char *data, size_t n, long long *written)
{
    while (n > 0) {
        ssize_t w = write(fd, data, n);

        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        data += w;
        n -= (size_t)w;
        *written += (long long)w;
    }
    return 0;
}

/* images_only: decide about the first bytes. 0, or -1 with x->not_image set. */
static int judge_body(struct xfer *x)
{
    x->judged = 1;
    if (content_image_type(x->head, x->headlen) != NULL) return 0;
    x->not_image = 1;
    return -1;
}

/* At the final response's first body byte: whether the Content-Length it declares is over
 * the cap (it is the final one's: libcurl hands no followed 3xx's body to on_body). 1 when
 * it is. */
static int declared_over_cap(const struct xfer *x)
{
    curl_off_t declared = -1;

    return x->max_bytes > 0 &&
        curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &declared) == CURLE_OK &&
        declared > (curl_off_t)x->max_bytes;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct xfer *x = userp;
    size_t n = size * nmemb;
    int first = x->status == 0;

    if (first) curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->status);
    if (x->to_fd && !keeps_body(x->status)) {
        /* An error page: read it so the connection can be reused, but never keep it. */
        x->bytes += (long long)n;
        if (x->bytes > DISCARD_MAX) {
            x->discarded = 1;
            return 0;
        }
        return n;
    }
    if ((first && declared_over_cap(x)) ||
        (x->max_bytes > 0 && x->bytes + (long long)n > x->max_bytes)) {
        x->over_cap = 1;
        return 0;
    }
    if (x->images_only && !x->judged && body_wanted(x, x->status)) {
        size_t take = CONTENT_SNIFF_LEN - x->headlen;

        if (take > n) take = n;
        memcpy(x->head + x->headlen, data, take);
        x->headlen += take;
        if (x->headlen == CONTENT_SNIFF_LEN && judge_body(x) < 0) {
            x->bytes += (long long)n; /* read, and judged: what the stop cost */
            return 0;
        }
    }
    if (x->to_fd) {
        /* Counted as written, where the chunk was counted before its write: a write that
         * failed (a full disk) left bytes above what the file holds. */
        if (write_all(x->fd, data, n, &x->bytes) < 0) {
            x->write_errno = errno;
            return 0;
        }
    } else {
        buf_append(&x->buf, &x->len, &x->cap, data, n);
        x->bytes += (long long)n;
    }
    return n;
}

/* A URL is echoed in every error message; one with a newline in it could forge log lines,
 * so such URLs are refused and shown with '?' for each control byte. */
static int has_ctl(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    }
    return 0;
}

static void printable(char *dst, size_t len, const char *src)
{
    size_t i = 0;

    for (; src[i] != '\0' && i + 1 < len; i++)
        dst[i] = ((unsigned char)src[i] < 0x20 || src[i] == 0x7f) ? '?' : src[i];
    dst[i] = '\0';
}

/* A hook runs for the hop libcurl is on: when that is a new one (it followed a redirect),
 * what was counted for the previous hop is forgotten, so that only the connections of the
 * hop that failed count. */
static void enter_hop(struct xfer *x)
{
    long hop = 0;

    curl_easy_getinfo(x->curl, CURLINFO_REDIRECT_COUNT, &hop);
    if (hop == x->hop) return;
    x->hop = hop;
    x->conns_allowed = 0;
    x->conns_refused = 0;
    x->refused[0] = '\0';
}

/* Keep the first refusal of the current hop, naming the hop when it is a redirect's. */
static void note_refusal(struct xfer *x, const char *why)
{
    char *eff = NULL, shown[256];

    if (x->refused[0] != '\0') return;
    if (x->hop > 0 && curl_easy_getinfo(x->curl, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK &&
        eff != NULL) {
        printable(shown, sizeof shown, eff);
        err_set(x->refused, sizeof x->refused, "redirect to %s: %s", shown, why);
    } else {
        str_copy(x->refused, sizeof x->refused, why);
    }
}

/* The current hop's host may be asked for: 0, or -1 with the refusal noted. */
static int check_hop_host(struct xfer *x)
{
    char *eff = NULL, why[512];

    if (curl_easy_getinfo(x->curl, CURLINFO_EFFECTIVE_URL, &eff) != CURLE_OK || eff == NULL) {
        note_refusal(x, "refused by network policy: the URL being fetched is unknown");
        return -1;
    }
    if (netpolicy_check_url(x->policy, eff, why, sizeof why) < 0) {
        note_refusal(x, why);
        return -1;
    }
    return 0;
}

/* libcurl is about to connect to a->addr: make the socket, or refuse (no socket, no packet). */
static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct xfer *x = clientp;
    char why[512];

    (void)purpose;
    enter_hop(x);
    if (check_hop_host(x) < 0) {
        x->conns_refused++;
        return CURL_SOCKET_BAD;
    }
    if (netpolicy_check_addr(x->policy, &a->addr, a->addrlen, why, sizeof why) < 0) {
        note_refusal(x, why);
        x->conns_refused++;
        return CURL_SOCKET_BAD;
    }
    x->conns_allowed++;
    /* Close-on-exec: a worker also forks commands, which must not inherit connections. */
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* A request is about to be sent on a connection, new or reused: check both again. */
static int on_prereq(void *clientp, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port)
{
    struct xfer *x = clientp;
    char why[512];

    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    enter_hop(x);
    if (check_hop_host(x) < 0) {
        x->policy_aborted = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    if (netpolicy_check_ip(x->policy, conn_primary_ip, why, sizeof why) < 0) {
        note_refusal(x, why);
        x->policy_aborted = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

/* libcurl's progress callback: where a transfer can be told to stop. */
static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct xfer *x = clientp;
    enum http_stop why;

    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    if (x->stop_fn == NULL || (why = x->stop_fn(x->stop_arg)) == HTTP_GO_ON) return 0;
    x->stopped = (int)why;
    return 1;
}

/* libcurl's milliseconds for a limit of seconds: 0 (libcurl's own) only for 0, so that a
 * limit under half a millisecond is 1 ms, not the 300 s of connect-timeout 0. */
static long to_ms(double seconds)
{
    long ms;

    if (seconds <= 0) return 0;
    if (seconds > 86400.0 * 365) seconds = 86400.0 * 365;
    ms = (long)(seconds * 1000.0 + 0.5);
    return ms > 0 ? ms : 1;
}

/* Set every option of one request; the handle was reset, so nothing is inherited. */
static int setup(struct http *h, const char *url, const struct http_limits *lim,
                 struct curl_slist *hdrs, struct xfer *x)
{
    CURL *c = h->curl;
    CURLcode rc = CURLE_OK;
    char *cainfo = NULL;

    curl_easy_reset(c);
    h->errbuf[0] = '\0';
#define SET(opt, val)                                           \
    do {                                                        \
        if (rc == CURLE_OK) rc = curl_easy_setopt(c, opt, val); \
    } while (0)
    SET(CURLOPT_ERRORBUFFER, h->errbuf);
    SET(CURLOPT_URL, url);
    /* Worker threads: libcurl must not use signals (SIGALRM) for its DNS timeouts. */
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_USERAGENT, USER_AGENT);
    /* https: trust the CA bundle libcurl was built with, without the hashed directory it may
     * name too (Debian's names /etc/ssl/certs, which update-ca-certificates fills with the
     * bundle's certificates). With a directory set, libcurl parses the whole bundle again for
     * every connection (Debian's 144 certificates: 0.9 MB and 40 ms each); without one it
     * keeps the parsed bundle in its multi handle's cache, which cworker's transfers share
     * (fetch.h), for CA_CACHE_SECONDS rather than libcurl's day, so that a bundle updated on
     * disk (a CA withdrawn) counts as soon as it did when each connection read it, near
     * enough. Only when a bundle is built in: never to leave no CA at all. */
    if (curl_easy_getinfo(c, CURLINFO_CAINFO, &cainfo) == CURLE_OK && cainfo != NULL) {
        SET(CURLOPT_CAPATH, (char *)NULL);
        SET(CURLOPT_CA_CACHE_TIMEOUT, (long)CA_CACHE_SECONDS);
    }
    if (lim->max_redirects > 0) {
        SET(CURLOPT_FOLLOWLOCATION, 1L);
        SET(CURLOPT_MAXREDIRS, (long)lim->max_redirects);
    } else {
        SET(CURLOPT_FOLLOWLOCATION, 0L);
    }
    SET(CURLOPT_CONNECTTIMEOUT_MS, to_ms(lim->connect_timeout));
    SET(CURLOPT_TIMEOUT_MS, to_ms(lim->timeout));
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, x);
    if (hdrs != NULL) SET(CURLOPT_HTTPHEADER, hdrs);
    if (x->policy != NULL) {
        SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
        SET(CURLOPT_OPENSOCKETDATA, x);
        SET(CURLOPT_PREREQFUNCTION, on_prereq);
        SET(CURLOPT_PREREQDATA, x);
    }
#undef SET
    return rc == CURLE_OK ? 0 : -1;
}

/* Timeouts, refused or reset connections, cut transfers and DNS failures are the network
 * having a bad moment; everything else libcurl reports (a disallowed scheme, too many
 * redirects, a malformed URL, a certificate that does not verify) will fail the same way
 * next time. */
static int curl_transient(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR: /* mostly a connection reset during the handshake */ return 1;
    default: return 0;
    }
}

static int status_transient(long status)
{
    return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

const char *http_header(const struct http_result *res, const char *name, char *buf, size_t len)
{
    if (res == NULL || len == 0) return NULL;
    for (size_t i = 0; i < res->nhdrs; i++) {
        if (strcasecmp(res->hdrs[i].name, name) == 0) {
            str_copy(buf, len, res->hdrs[i].value);
            return buf;
        }
    }
    return NULL;
}

/* The final response's headers as libcurl parsed them, into res->hdrs, and res->headers: its
 * status line and those headers, one "Name: value" line each. */
static void collect_headers(CURL *c, struct http_result *res)
{
    struct curl_header *hd, *prev = NULL;
    char *block = NULL;
    size_t blen = 0, bcap = 0, cap = 0;
    char line[64];
    long version = 0;
    int n;

    if (res->status == 0) return;
    curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &version);
    n = snprintf(line, sizeof(line), "HTTP/%s %ld\r\n",
                 version == CURL_HTTP_VERSION_1_0       ? "1.0"
                     : version == CURL_HTTP_VERSION_2_0 ? "2"
                     : version == CURL_HTTP_VERSION_3   ? "3"
                                                        : "1.1",
                 res->status);
    buf_append(&block, &blen, &bcap, line, (size_t)n);
    for (hd = curl_easy_nextheader(c, CURLH_HEADER, -1, NULL); hd != NULL;
         hd = curl_easy_nextheader(c, CURLH_HEADER, -1, prev)) {
        if (res->nhdrs == cap) {
            cap = cap ? cap * 2 : 16;
            res->hdrs = xrealloc(res->hdrs, cap * sizeof(*res->hdrs));
        }
        res->hdrs[res->nhdrs].name = xstrdup(hd->name);
        res->hdrs[res->nhdrs].value = xstrdup(hd->value);
        res->nhdrs++;
        buf_append(&block, &blen, &bcap, hd->name, strlen(hd->name));
        buf_append(&block, &blen, &bcap, ": ", 2);
        buf_append(&block, &blen, &bcap, hd->value, strlen(hd->value));
        buf_append(&block, &blen, &bcap, "\r\n", 2);
        prev = hd;
    }
    res->headers = block;
}

/* Retry-After of the final response, delta-seconds or an HTTP-date (RFC 9110 10.2.3), as
 * libcurl read it; capped at RETRY_AFTER_MAX. */
static double retry_after(CURL *c)
{
    struct curl_header *hd;
    curl_off_t secs = 0;

    /* libcurl keeps the value of any hop that sent one; only the final response's counts. */
    if (curl_easy_header(c, "Retry-After", 0, CURLH_HEADER, -1, &hd) != CURLHE_OK) return 0;
    if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &secs) != CURLE_OK || secs <= 0) return 0;
    return secs > (curl_off_t)RETRY_AFTER_MAX ? RETRY_AFTER_MAX : (double)secs;
}

/* The URL gives port 0 (":0", ":00"). */
static int port_zero(CURLU *u)
{
    char *port = NULL;
    int zero = 0;

    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
        zero = port[strspn(port, "0")] == '\0';
    curl_free(port);
    return zero;
}

int http_url_parse(const char *url, char **path, char *err, size_t errlen)
{
    const char *colon = strchr(url, ':');
    char *scheme = NULL;
    CURLUcode uc;
    CURLU *u;
    int rc = -1;

    if (path != NULL) *path = NULL;
    if (has_ctl(url)) {
        char shown[512];

        printable(shown, sizeof(shown), url);
        err_set(err, errlen, "%s: the link contains a control character", shown);
        return -1;
    }
    u = xcheck(curl_url(), "a URL handle");
    uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc == CURLUE_OK) uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (uc == CURLUE_UNSUPPORTED_SCHEME ||
        (uc == CURLUE_OK && strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        err_set(err, errlen, "%s: only http and https links are allowed", url);
    } else if (uc != CURLUE_OK) {
        err_set(err, errlen, "%s: not an absolute http(s) URL (%s)", url, curl_url_strerror(uc));
    } else if (strncmp(colon, "://", 3) != 0) {
        /* libcurl also reads "http:/h/x.jpg" as http://h/x.jpg; cq takes only the form that
         * says what it is, so that a link reads the same to a person as to the worker. */
        err_set(err, errlen, "%s: not an absolute http(s) URL (scheme://host/...)", url);
    } else if (port_zero(u)) {
        /* libcurl takes it, and its connect then fails as a network error, retried. */
        err_set(err, errlen, "%s: port 0 is no server's port (1 to 65535)", url);
    } else if (path != NULL && curl_url_get(u, CURLUPART_PATH, path, 0) != CURLUE_OK) {
        err_set(err, errlen, "%s: no path", url);
    } else {
        rc = 0;
    }
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

static void result_clear(struct http_result *res)
{
    res->status = 0;
    res->bytes = 0;
    res->transient = 0;
    res->retry_after = 0;
    res->write_errno = 0;
    res->headers = NULL;
    res->hdrs = NULL;
    res->nhdrs = 0;
}

/* The first half of a request: check the URL and set every option of h's handle, leaving
 * the request headers (for the caller to pass to end()) in *hdrs. Returns 0, or -1 with err
 * set and nothing to free. */
static int begin(struct http *h, const char *url, const char *const *req_headers,
                 const struct http_limits *lim, struct xfer *x, struct curl_slist **hdrs, char *err,
                 size_t errlen)
{
    struct http_limits defaults;

    *hdrs = NULL;
    if (http_url_parse(url, NULL, err, errlen) < 0) return -1;
    if (lim == NULL) {
        http_limits_default(&defaults);
        lim = &defaults;
    }
    if (lim->policy != NULL) {
        char why[512];

        /* The first hop's host before any DNS; the hooks check the rest. */
        if (netpolicy_check_url(lim->policy, url, why, sizeof why) < 0) {
            err_set(err, errlen, "%s: %s", url, why);
            return -1;
        }
    }
    x->policy = lim->policy;
    x->curl = h->curl;
    x->images_only = lim->images_only;
    for (size_t i = 0; req_headers != NULL && req_headers[i] != NULL; i++) {
        struct curl_slist *next = curl_slist_append(*hdrs, req_headers[i]);

        if (next == NULL) {
            curl_slist_free_all(*hdrs);
            *hdrs = NULL;
            err_set(err, errlen, "%s: out of memory for request headers", url);
            return -1;
        }
        *hdrs = next;
    }
    if (setup(h, url, lim, *hdrs, x) < 0) {
        curl_slist_free_all(*hdrs);
        *hdrs = NULL;
        err_set(err, errlen, "%s: libcurl refused an option", url);
        return -1;
    }
    x->max_bytes = lim->max_bytes;
    return 0;
}

/* The second half: libcurl ended the request with rc (curl_easy_perform's return, or the
 * result a multi handle reported). Fills res; returns 0 when libcurl completed the request
 * (any status), -1 with err set and res->transient decided otherwise. */
static int end(struct http *h, const char *url, CURLcode rc, struct xfer *x,
               struct curl_slist *hdrs, struct http_result *res, char *err, size_t errlen)
{
    /* The handle outlives this call: leave it no pointer into what is freed here. */
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, (void *)NULL);
    curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, (void *)NULL);
    curl_easy_setopt(h->curl, CURLOPT_OPENSOCKETFUNCTION, (curl_opensocket_callback)NULL);
    curl_easy_setopt(h->curl, CURLOPT_OPENSOCKETDATA, (void *)NULL);
    curl_easy_setopt(h->curl, CURLOPT_PREREQFUNCTION, (curl_prereq_callback)NULL);
    curl_easy_setopt(h->curl, CURLOPT_PREREQDATA, (void *)NULL);
    curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, (curl_xferinfo_callback)NULL);
    curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 1L);
    curl_slist_free_all(hdrs);

    result_clear(res);
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &res->status);
    res->bytes = x->bytes;
    if (!x->to_fd) collect_headers(h->curl, res);
    res->retry_after = retry_after(h->curl);

    if (rc == CURLE_OK && x->images_only && body_wanted(x, res->status) && !x->judged)
        judge_body(x);
    if (x->not_image) {
        char what[96], ctype[96];
        struct curl_header *ct = NULL;

        content_describe(x->head, x->headlen, what, sizeof what);
        if (curl_easy_header(h->curl, "Content-Type", 0, CURLH_HEADER, -1, &ct) == CURLHE_OK)
            str_copy(ctype, sizeof ctype, ct->value);
        else
            str_copy(ctype, sizeof ctype, "none");
        printable(ctype, sizeof ctype, ctype);
        err_set(err, errlen, "%s: not an image (%s; Content-Type %s)", url, what, ctype);
        return -1;
    }
    /* Our progress callback's abort, before the policy's verdict on the addresses tried. */
    if (x->stopped && rc == CURLE_ABORTED_BY_CALLBACK) {
        if (x->stopped == HTTP_TIMED_OUT)
            err_set(err, errlen, "%s: timed out (the job's time limit passed)", url);
        else
            err_set(err, errlen,
                    "%s: stopped by the worker (the job was canceled, or the worker is stopping)",
                    url);
        res->transient = 1;
        return -1;
    }
    if (rc != CURLE_OK && (x->policy_aborted || (x->conns_refused > 0 && x->conns_allowed == 0))) {
        err_set(err, errlen, "%s: %s", url,
                x->refused[0] ? x->refused : "refused by network policy");
        return -1;
    }
    if (rc == CURLE_OK || (x->discarded && rc == CURLE_WRITE_ERROR)) return 0;

    if (x->over_cap || rc == CURLE_FILESIZE_EXCEEDED) {
        err_set(err, errlen, "%s: body larger than the %lld-byte limit", url, x->max_bytes);
    } else if (x->hdr_overflow) {
        err_set(err, errlen, "%s: response headers larger than %d bytes", url, HEADERS_MAX);
    } else if (x->write_errno != 0) {
        res->write_errno = x->write_errno;
        err_set(err, errlen, "%s: write: %s", url, strerror(x->write_errno));
    } else {
        size_t n = strlen(h->errbuf);

        /* Some libcurl messages end in a newline; ours are one line. */
        while (n > 0 && (h->errbuf[n - 1] == '\n' || h->errbuf[n - 1] == '\r'))
            h->errbuf[--n] = '\0';
        err_set(err, errlen, "%s: %s", url, n > 0 ? h->errbuf : curl_easy_strerror(rc));
        res->transient = curl_transient(rc);
    }
    return -1;
}

/* Run one request to its end and fill res (see end()). */
static int perform(struct http *h, const char *url, const char *const *req_headers,
                   const struct http_limits *lim, struct xfer *x, struct http_result *res,
                   char *err, size_t errlen)
{
    struct curl_slist *hdrs;

    result_clear(res);
    if (begin(h, url, req_headers, lim, x, &hdrs, err, errlen) < 0) return -1;
    return end(h, url, curl_easy_perform(h->curl), x, hdrs, res, err, errlen);
}

int http_get(struct http *h, const char *url, const char *const *req_headers,
             const struct http_limits *lim, char **body, size_t *len, struct http_result *res,
             char *err, size_t errlen)
{
    struct xfer x;

    memset(&x, 0, sizeof(x));
    *body = NULL;
    *len = 0;
    if (perform(h, url, req_headers, lim, &x, res, err, errlen) < 0) {
        /* Nothing to free for a caller that only looks at err and res->transient. */
        free(x.buf);
        http_result_free(res);
        return -1;
    }
    if (x.buf == NULL) x.buf = xstrdup("");
    *body = x.buf;
    *len = x.len;
    return 0;
}

int http_setup_fd_transfer(struct http *h, const char *url, int fd, const struct http_limits *lim,
                           char *err, size_t errlen)
{
    struct curl_slist *hdrs;

    drop_fd_transfer(h);
    h->x.to_fd = 1;
    h->x.fd = fd;
    if (begin(h, url, NULL, lim, &h->x, &hdrs, err, errlen) < 0) return -1;
    h->url = xstrdup(url);
    return 0;
}

void http_set_stop(struct http *h, enum http_stop (*stop)(void *arg), void *arg)
{
    h->x.stop_fn = stop;
    h->x.stop_arg = arg;
    curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION,
                     stop != NULL ? on_progress : (curl_xferinfo_callback)NULL);
    curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, (void *)&h->x);
    curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, stop != NULL ? 0L : 1L);
}

int http_finish_fd_transfer(struct http *h, CURLcode rc, struct http_result *res, char *err,
                            size_t errlen)
{
    char *url = h->url;
    int ret, stopped, unwanted_2xx;

    if (url == NULL) {
        result_clear(res);
        err_set(err, errlen, "http_finish_fd_transfer: no transfer was set up");
        return -1;
    }
    h->url = NULL;
    stopped = h->x.stopped == HTTP_STOP && rc == CURLE_ABORTED_BY_CALLBACK;
    ret = end(h, url, rc, &h->x, NULL, res, err, errlen);
    /* The header block is only promised by http_get; the caller of this one has no reason to
     * free it. Retry-After was already read out of it. */
    http_result_free(res);
    memset(&h->x, 0, sizeof(h->x));
    /* An error status is the fact worth reporting even when its body then broke off, ran
     * over the cap or timed out (by libcurl's clock or the stop check's), unless the worker
     * stopped the transfer: that is why it ended. 3xx is not: a redirect that could not be
     * followed is explained better by libcurl's own message. A 2xx whose body is not kept
     * (206, 204) is said as such, its body dropped however it ended. */
    unwanted_2xx = is_2xx(res->status) && !keeps_body(res->status);
    if (ret < 0 && ((res->status < 400 && !unwanted_2xx) || stopped)) {
        free(url);
        return -1;
    }
    if (!keeps_body(res->status)) {
        res->transient = status_transient(res->status);
        if (res->status == 0)
            err_set(err, errlen, "%s: no HTTP response", url);
        else if (res->status == 206)
            err_set(err, errlen,
                    "%s: HTTP 206 Partial Content to a request without Range: not the whole file",
                    url);
        else if (res->status == 204 || res->status == 205)
            err_set(err, errlen, "%s: HTTP %ld: no body", url, res->status);
        else
            err_set(err, errlen, "%s: HTTP %ld", url, res->status);
        free(url);
        return -1;
    }
    free(url);
    return 0;
}

int http_get_to_fd(struct http *h, const char *url, int fd, const struct http_limits *lim,
                   struct http_result *res, char *err, size_t errlen)
{
    if (http_setup_fd_transfer(h, url, fd, lim, err, errlen) < 0) {
        result_clear(res);
        return -1;
    }
    return http_finish_fd_transfer(h, http_perform(h), res, err, errlen);
}
