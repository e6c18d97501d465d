"""A real S3 API for tests and benchmarks: moto's server on 127.0.0.1 (a free port), fake credentials."""
from __future__ import annotations

import contextlib
import logging
import os
import uuid
from typing import Iterator

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
IGNORED = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN")


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """Run moto's S3 server in a thread while the block runs; its endpoint URL (http://127.0.0.1:PORT).
    Credentials go in os.environ meanwhile, as S3 clients (and build subprocesses) read them."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    saved = {name: os.environ.get(name) for name in (*CREDENTIALS, *IGNORED)}
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        os.environ.update(CREDENTIALS)
        for name in IGNORED:
            os.environ.pop(name, None)
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def new_bucket(endpoint: str) -> str:
    """Create an empty bucket; its s3:// URL (with a prefix, as a team would use)."""
    import boto3

    name = f"cache-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return f"s3://{name}/modelbuild"
