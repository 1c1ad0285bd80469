/* fetch.h - cworker's transfers, on one curl multi handle per CPU, each on its own thread.
 *
 * An executor sets a transfer up on a struct http (http_setup_fd_transfer, through
 * download_begin) and hands it here: download_link defers its job (fetch_start), and the
 * transfer's end has an executor run download_end on it. The state libcurl keeps per multi
 * handle is kept once per transfer thread, not once per executor: the connection cache, the
 * DNS cache and the parsed CA bundle of https.
 */
#ifndef CQ_FETCH_H
#define CQ_FETCH_H

#include <curl/curl.h>

#include "http.h"

/* While transfers run, a transfer thread runs them at least this often, so that a transfer
 * given a stop check (http_set_stop) ends within about this long of its job's cancel or
 * stop, though no byte comes. */
#define FETCH_STOP_CHECK_MS 100

/* Start the transfer set up on h on a transfer thread (the threads start with the first
 * call; each call takes the next in turn) and return 0 at once: when it ends, done(rc, arg)
 * runs on that thread with how libcurl ended it, as http_perform would return (done must not
 * block: it hands the end on). -1 where no transfer thread could start (no thread, no multi
 * handle): nothing was started, and the caller runs the transfer itself (http_perform). h is
 * the transfer's until done runs. Safe to call from many threads at once, each with its own
 * h. */
int fetch_start(struct http *h, void (*done)(CURLcode rc, void *arg), void *arg);

/* How many transfer threads run (starting them if that has not been done): one per CPU this
 * process may use, at most 64; 0 when none could start. */
int fetch_threads(void);

/* End the transfer threads (after the transfers in flight, whose ends are told as usual) and
 * free their multi handles; later calls of fetch_start return -1. For a program that calls
 * curl_global_cleanup (tests): no fetch_start may run while it does. */
void fetch_stop(void);

#endif
