"""A real S3-compatible server on 127.0.0.1 for the object-storage tests: moto's server mode, as a process.

The tests talk to it the way a user's cluster talks to S3: the standard AWS environment variables
(AWS_ENDPOINT_URL and the keys), read by pyarrow in the driver, the readers and every Ray worker.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def s3_server(bucket: str):
    """(environment for the clients, bucket) of a fresh moto server with one empty bucket; stopped after."""
    pytest.importorskip("moto.server", reason="moto[server] (the test extra) is not installed")
    boto3 = pytest.importorskip("boto3")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.2)
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                              aws_secret_access_key="testing", region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        yield env, client
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def aws_environment(env: dict):
    """This process's environment with the server's variables, restored after."""
    old = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def keys(client, bucket: str, prefix: str = "") -> list[str]:
    """Every object key under prefix (not the empty "folder/" markers pyarrow leaves behind a deletion)."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []) if not item["Key"].endswith("/"))


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under folder with its size and mtime: what a run must leave unchanged."""
    out = {}
    for path in sorted(folder.rglob("*")):
        stat = path.lstat()
        out[str(path.relative_to(folder))] = (stat.st_size if path.is_file() else -1, stat.st_mtime_ns)
    return out


def copy_tree_without(source: Path, target: Path, *names: str) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*names))
