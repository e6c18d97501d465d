"""Fixtures of the cache tests: moto's S3 server on 127.0.0.1 (stopped at the end), fresh buckets."""
from __future__ import annotations

import uuid

import pytest

from modelbuild import tasks
from modelbuild.cache import stage


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 API: moto's server in a thread on 127.0.0.1, a free port; credentials in the environment."""
    pytest.importorskip("s3fs", reason="the S3 cache tests need s3fs (pip install -e '.[test]')")
    server_module = pytest.importorskip("moto.moto_server.threaded_moto_server",
                                        reason="the S3 cache tests need moto[server] (pip install -e '.[test]')")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as environment:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": "us-east-1"}.items():
            environment.setenv(name, value)
        environment.delenv("AWS_PROFILE", raising=False)
        environment.delenv("AWS_ENDPOINT_URL", raising=False)
        yield f"http://{host}:{port}"
    server.stop()


def new_bucket(endpoint: str) -> str:
    """Create an empty bucket; its s3:// URL (with a prefix, as a team would use)."""
    import boto3

    name = f"cache-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return f"s3://{name}/modelbuild"


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
