/* http.h - HTTP GETs over one reusable libcurl easy handle.
 *
 * A `struct http` belongs to one thread and is reused for every request that thread makes,
 * so that connections (and TLS sessions) are kept alive across jobs. Only http and https
 * are allowed, redirects included, with at most `max_redirects` hops.
 *
 * Every failure is classified: `transient` is 1 when trying again later may succeed
 * (timeouts, refused or reset connections, DNS hiccups, HTTP 408, 429 and 5xx) and 0 when it
 * cannot (other 4xx, a disallowed scheme, a body over the size cap, a local write error, a
 * connection the network policy refuses, a body that is not the image it must be).
 */
#ifndef CQ_HTTP_H
#define CQ_HTTP_H

#include <stddef.h>

#include <curl/curl.h>

struct http;
struct netpolicy;

struct http_limits {
    double connect_timeout; /* seconds; 0 = libcurl's default */
    double timeout;         /* whole transfer, seconds; 0 = none */
    long long max_bytes;    /* body size cap; 0 = none */
    int max_redirects;      /* hops allowed; 0 = do not follow */
    /* Where connections may go (netpolicy.h), checked on every address libcurl connects to
     * and on every hop's host; NULL: anywhere. The policy must outlive the request. A
     * refusal fails the request permanently: "<url>: connection to 127.0.0.2 refused by
     * network policy (--deny-networks 127.0.0.2/32)". */
    const struct netpolicy *policy;
    /* 1: a 2xx body must start with an image's signature (content.h), whatever its
     * Content-Type; otherwise the request fails permanently, as soon as the first bytes
     * show it: "<url>: not an image (starts with \"<!DOCTYPE html\"; Content-Type
     * text/html)". */
    int images_only;
};

/* Defaults: connect 10 s, total 60 s, 50 MiB, 5 redirects, no network policy, any body. */
void http_limits_default(struct http_limits *lim);

struct http_result {
    long status;        /* final HTTP status; 0 when no response arrived */
    long long bytes;    /* body bytes received: kept (written to the fd, or in the buffer;
                           where a write failed, what it wrote), or dropped (an error body,
                           the piece that showed it no image) */
    int transient;      /* see above; meaningful when the call returned -1 */
    double retry_after; /* seconds from a Retry-After header (429/503); 0 when absent */
    int write_errno;    /* the body could not be written to the fd: write(2)'s errno; else 0 */
    char *headers;      /* the final response's status line and headers, one "Name: value"
                           line each, as libcurl parsed them (http_get only), or NULL */
    struct http_hdr {
        char *name, *value;
    } * hdrs; /* the same headers, for http_header */
    size_t nhdrs;
};

/* Check that url is an absolute http:// or https:// link as libcurl's URL API parses it (the
 * parser the transfer uses). Returns 0 and, when path is not NULL, sets *path to its path as
 * curl will request it: still percent-encoded, dot segments resolved, without query or
 * fragment (free it with curl_free). Returns -1 with err set otherwise ("URL: only http and
 * https links are allowed", "... not an absolute http(s) URL (Bad hostname)"). */
int http_url_parse(const char *url, char **path, char *err, size_t errlen);

/* A new handle; NULL (with err) if libcurl could not make one. */
struct http *http_new(char *err, size_t errlen);
void http_free(struct http *h);

/* GET url into memory. req_headers is a NULL-terminated list like {"Authorization: ...",
 * NULL} or NULL. On success (any HTTP status: the caller judges it) returns 0, *body is a
 * malloc'ed NUL-terminated buffer of *len bytes and res->headers holds the response headers;
 * free both with http_result_free and free(). On a transfer failure returns -1 with err set
 * ("http://x/y: Connection refused"). */
int http_get(struct http *h, const char *url, const char *const *req_headers,
             const struct http_limits *lim, char **body, size_t *len, struct http_result *res,
             char *err, size_t errlen);

/* GET url and write the body to fd. Returns 0 only when the whole body arrived with status
 * 200 or 203; -1 otherwise, with err set ("https://x/y.jpg: HTTP 404") and res filled. The
 * other 2xx fail for good: a 206 ("HTTP 206 Partial Content to a request without Range: not
 * the whole file"), a 204 or 205 ("HTTP 204: no body"), a 202 ("HTTP 202").
 * It is http_setup_fd_transfer + http_perform + http_finish_fd_transfer. */
int http_get_to_fd(struct http *h, const char *url, int fd, const struct http_limits *lim,
                   struct http_result *res, char *err, size_t errlen);

/* http_get_to_fd in steps, so that one transfer can be driven by a blocking call or by a
 * curl multi handle with the same limits, callbacks and verdict:
 *
 *   http_setup_fd_transfer(h, url, fd, lim, ...)   configure http_curl(h) for a GET of url
 *                                                  into fd; 0, or -1 with err set
 *   then either  rc = http_perform(h)              (blocking)
 *   or           curl_multi_add_handle(m, http_curl(h)), ... until curl_multi_info_read
 *                reports it done with rc = msg->data.result; curl_multi_remove_handle
 *   http_finish_fd_transfer(h, rc, res, ...)       the verdict, exactly as http_get_to_fd
 *
 * One transfer per handle at a time: h keeps its state (and a copy of url) between the two
 * calls. The handle must be out of any multi handle before the next setup. http_setup_fd_
 * transfer resets the handle's options, so set CURLOPT_PRIVATE (or any other option of the
 * driver's) after it. An unfinished transfer is forgotten by the next setup or http_free. */
int http_setup_fd_transfer(struct http *h, const char *url, int fd, const struct http_limits *lim,
                           char *err, size_t errlen);
CURLcode http_perform(struct http *h);
int http_finish_fd_transfer(struct http *h, CURLcode rc, struct http_result *res, char *err,
                            size_t errlen);

/* What a stop check (http_set_stop) answers. */
enum http_stop {
    HTTP_GO_ON = 0,
    HTTP_STOP,     /* the job was canceled, or the worker is stopping */
    HTTP_TIMED_OUT /* the job's time limit passed */
};

/* Give the transfer set up on h (http_setup_fd_transfer; the next setup forgets it) a way
 * to be stopped: libcurl calls stop(arg) as the transfer goes (while it waits too, as often
 * as its driver runs it: fetch.h's threads at least every FETCH_STOP_CHECK_MS), on the thread
 * that drives it, and an answer other than HTTP_GO_ON ends the transfer there. The verdict is
 * then a transient failure: "<url>: stopped by the worker (the job was canceled, or the
 * worker is stopping)" for HTTP_STOP, whatever status the server had sent; for
 * HTTP_TIMED_OUT "<url>: timed out (the job's time limit passed)", or, as for libcurl's own
 * timeout, the error status the server had sent. A NULL stop takes the check away. */
void http_set_stop(struct http *h, enum http_stop (*stop)(void *arg), void *arg);

/* The libcurl easy handle h owns (h keeps ownership), for adding it to a multi handle. */
CURL *http_curl(struct http *h);

/* For a transfer set up on h that a multi handle refused (curl_multi_add_handle), so that
 * it never ran: the text its end says after the URL in place of libcurl's, which there is
 * none of ("curl_multi_add_handle: The easy handle is already added to a multi handle").
 * Between the setup and the end (http_finish_fd_transfer). */
void http_set_error(struct http *h, const char *text);

/* Look up a header of http_get's final response (case-insensitive), copying its value into
 * buf. Returns buf, or NULL when absent. */
const char *http_header(const struct http_result *res, const char *name, char *buf, size_t len);

void http_result_free(struct http_result *res);

/* Call once per process before any thread uses http_new (curl_global_init). */
int http_global_init(char *err, size_t errlen);

#endif
