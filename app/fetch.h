/* fetch.h - cworker's transfers, all on one curl multi handle on one thread.
 *
 * An executor sets a transfer up on its own struct http (http_setup_fd_transfer, through
 * download_begin), hands it here and blocks until it ends; download_end then judges it on the
 * executor again. Handlers stay ordinary blocking functions, but the state libcurl keeps per
 * multi handle is kept once, not once per thread: the connection cache, the DNS cache and
 * the CA store of https (its certificates parsed once, not once per thread).
 */
#ifndef CQ_FETCH_H
#define CQ_FETCH_H

#include <curl/curl.h>

#include "http.h"

/* Run the transfer set up on h to its end on the transfer thread (started by the first call)
 * and return how libcurl ended it, as http_perform would. Where that thread cannot run (no
 * thread, no multi handle: logged once on stderr) it is http_perform on the caller's
 * thread. Safe to call from many threads at once, each with its own h. */
CURLcode fetch_perform(struct http *h);

/* End the transfer thread (after the transfers in flight) and free its multi handle; later
 * calls of fetch_perform run on their caller's thread. For a program that calls
 * curl_global_cleanup (tests): no fetch_perform may run while it does. */
void fetch_stop(void);

#endif
