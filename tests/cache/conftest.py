"""Fixtures of the cache tests: moto's S3 server on 127.0.0.1 (stopped at the end), fresh buckets."""
from __future__ import annotations

import pytest
from cache.moto_s3 import new_bucket, s3_server

from modelbuild import tasks
from modelbuild.cache import stage


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 API: moto's server in a thread on 127.0.0.1, a free port; credentials in the environment."""
    pytest.importorskip("s3fs", reason="the S3 cache tests need s3fs (pip install -e '.[test]')")
    pytest.importorskip("moto.moto_server.threaded_moto_server",
                        reason="the S3 cache tests need moto[server] (pip install -e '.[test]')")
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["folder", "s3"])
def empty_cache(request, tmp_path):
    """(url, storage options) of an empty cache: a local folder, or a bucket on the S3 server."""
    if request.param == "folder":
        return str(tmp_path / "cache-folder"), {}
    endpoint = request.getfixturevalue("s3_endpoint")
    return new_bucket(endpoint), {"endpoint_url": endpoint}


@pytest.fixture(autouse=True)
def fresh_process_state():
    """Forget the stores (and unusable caches) and task dicts a previous test left in this process."""
    stage._STORES.clear()
    stage._UNUSABLE.clear()
    tasks.forget_project()
    yield
    stage._STORES.clear()
    stage._UNUSABLE.clear()
