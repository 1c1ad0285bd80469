"""rq_jobs.py - the functions RQ workers run in the benchmark (PYTHONPATH=bench).

noop          the no-op job of the throughput and latency rows (cq's built-in `noop`)
download_link the lesson's download_link (urllib, one file per link), as in download.py
"""
import logging
import os
from pathlib import Path
from urllib.request import urlopen

logger = logging.getLogger(__name__)


def noop(*args):
    return None


def download_link(directory, link):
    logger.info('Downloading %s', link)
    download_path = Path(directory) / os.path.basename(link)
    with urlopen(link) as image, download_path.open('wb') as f:
        f.write(image.read())
