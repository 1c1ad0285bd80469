"""lesson_rq.py - the lesson's RQ version: enqueue one download_link job per .jpg link.

The article's code, plus what a benchmark needs: the Redis URL from $REDIS_URL, the links from
$IMGUR_API_URL (see lesson_download.py), an absolute download directory (the workers run
elsewhere), and a wait until every job has ended (polled every 5 ms), so that "Took" covers
producer and workers end to end, measured from the start of main() as the article does.
Run with /usr/bin/python3 (Debian's python3-rq) and PYTHONPATH=bench; workers: `rq worker`.
"""
import os
import sys
from time import sleep, time

from redis import Redis
from rq import Queue

from lesson_download import setup_download_dir, get_links
from rq_jobs import download_link

WAIT_LIMIT = 120.0   # seconds: a bench must end even with no worker


def main():
    ts = time()
    client_id = os.getenv('IMGUR_CLIENT_ID')
    if not client_id:
        raise Exception("Couldn't find IMGUR_CLIENT_ID environment variable!")
    download_dir = setup_download_dir().resolve()
    links = [l for l in get_links(client_id) if l.endswith('.jpg')]
    redis = Redis.from_url(os.getenv('REDIS_URL', 'redis://localhost:6379'))
    q = Queue(connection=redis)
    jobs = []
    for link in links:
        jobs.append(q.enqueue(download_link, str(download_dir), link))

    # Wait for the end of every job: one pipelined HGET status per unfinished job.
    pending = [j.key for j in jobs]
    failed = 0
    while pending and time() - ts < WAIT_LIMIT:
        with redis.pipeline(transaction=False) as p:
            for key in pending:
                p.hget(key, 'status')
            states = p.execute()
        left = []
        for key, st in zip(pending, states):
            if st == b'failed':
                failed += 1
            elif st != b'finished':
                left.append(key)
        pending = left
        if pending:
            sleep(0.005)
    print('Took {}s'.format(time() - ts))
    print('jobs {} failed {} unfinished {}'.format(len(jobs), failed, len(pending)))
    return 1 if failed or pending else 0


if __name__ == '__main__':
    sys.exit(main())
