"""lesson_download.py - the lesson's download.py (get_links, download_link, setup_download_dir).

The article's code (/work/shared/lesson/article.txt, written for Python 3.4), changed only
where a local benchmark needs it:
  - the gallery URL comes from $IMGUR_API_URL (the bench's local fake of the Imgur API)
    instead of https://api.imgur.com/3/gallery/; the Client-ID header is sent as before;
  - resp.readall() became resp.read(): HTTPResponse.readall() no longer exists in Python 3.11.
Standard library only, as in the article.
"""
import json
import logging
import os
from pathlib import Path
from urllib.request import urlopen, Request

logger = logging.getLogger(__name__)

API_URL = os.getenv('IMGUR_API_URL', 'https://api.imgur.com/3/gallery/')


def get_links(client_id):
    headers = {'Authorization': 'Client-ID {}'.format(client_id)}
    req = Request(API_URL, headers=headers, method='GET')
    with urlopen(req) as resp:
        data = json.loads(resp.read().decode('utf-8'))
    return map(lambda item: item['link'], data['data'])


def download_link(directory, link):
    logger.info('Downloading %s', link)
    download_path = directory / os.path.basename(link)
    with urlopen(link) as image, download_path.open('wb') as f:
        f.write(image.read())


def setup_download_dir():
    download_dir = Path('images')
    if not download_dir.exists():
        download_dir.mkdir()
    return download_dir
