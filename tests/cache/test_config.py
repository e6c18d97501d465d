"""The cache configuration: pyproject.toml or modelbuild.toml, the environment's overrides, exact errors."""
from __future__ import annotations

import pytest

from modelbuild.cache.config import CacheConfigError, load_config, parse_size


def _pyproject(root, body: str) -> None:
    (root / "pyproject.toml").write_text(f"[project]\nname = \"x\"\n\n[tool.modelbuild.cache]\n{body}\n")


def test_no_configuration_means_no_cache(tmp_path):
    config = load_config(tmp_path, environ={})
    assert not config.enabled and config.source == "not configured"


def test_pyproject_table_with_storage_options_and_gc_defaults(tmp_path):
    _pyproject(tmp_path, 'url = "s3://bucket/prefix"\nmax_age_days = 30\nmax_size = "2GB"\n'
                         '[tool.modelbuild.cache.storage_options]\nendpoint_url = "http://127.0.0.1:9000"')
    config = load_config(tmp_path, environ={})
    assert (config.url, config.read_only, config.storage_options) == (
        "s3://bucket/prefix", False, {"endpoint_url": "http://127.0.0.1:9000"})
    assert (config.max_age_days, config.max_size) == (30.0, 2_000_000_000)
    assert config.source == "pyproject.toml [tool.modelbuild.cache]"


def test_modelbuild_toml_and_a_relative_folder(tmp_path):
    (tmp_path / "modelbuild.toml").write_text('[cache]\nurl = "../shared-cache"\nread_only = true\n')
    config = load_config(tmp_path, environ={})
    assert config.url == str((tmp_path.parent / "shared-cache").resolve())
    assert config.read_only and config.source == "modelbuild.toml [cache]"


def test_the_environment_overrides_for_ci(tmp_path):
    _pyproject(tmp_path, 'url = "s3://bucket/prefix"')
    config = load_config(tmp_path, environ={"MODELBUILD_CACHE_URL": "gs://other/cache", "MODELBUILD_CACHE_READ_ONLY": "1"})
    assert (config.url, config.read_only) == ("gs://other/cache", True)
    assert config.source == "MODELBUILD_CACHE_URL (over pyproject.toml [tool.modelbuild.cache])"
    assert not load_config(tmp_path, environ={"MODELBUILD_CACHE_URL": "off"}).enabled


def test_an_http_cache_is_read_only(tmp_path):
    assert load_config(tmp_path, environ={"MODELBUILD_CACHE_URL": "https://cache.example.com/mb"}).read_only


@pytest.mark.parametrize("body, message", [
    ('url = "s3://b"\nreadonly = true',
     "pyproject.toml [tool.modelbuild.cache]: unknown key 'readonly'; the keys are url, read_only, storage_options, "
     "max_age_days, max_size"),
    ('url = "s3://b"\nread_only = "yes"',
     "pyproject.toml [tool.modelbuild.cache]: read_only: expected true or false, got 'yes'"),
    ('url = ""', 'pyproject.toml [tool.modelbuild.cache]: url: expected a folder or a URL such as "s3://bucket/prefix", '
                 "got ''"),
    ('url = "s3://b"\nmax_size = "lots"',
     "pyproject.toml [tool.modelbuild.cache]: max_size: expected a size such as 500MB, 20GB or 1.5GiB, got 'lots'"),
])
def test_errors_name_the_file_and_the_key(tmp_path, body, message):
    _pyproject(tmp_path, body)
    with pytest.raises(CacheConfigError) as caught:
        load_config(tmp_path, environ={})
    assert str(caught.value) == message


def test_configured_twice_is_an_error(tmp_path):
    _pyproject(tmp_path, 'url = "s3://a"')
    (tmp_path / "modelbuild.toml").write_text('[cache]\nurl = "s3://b"\n')
    with pytest.raises(CacheConfigError, match=r"^the cache is configured twice, in pyproject.toml "
                                               r"\[tool.modelbuild.cache\] and modelbuild.toml \[cache\]; keep one"):
        load_config(tmp_path, environ={})


def test_a_bad_read_only_variable(tmp_path):
    with pytest.raises(CacheConfigError, match=r"^MODELBUILD_CACHE_READ_ONLY='maybe': expected 1 or 0"):
        load_config(tmp_path, environ={"MODELBUILD_CACHE_URL": "s3://a", "MODELBUILD_CACHE_READ_ONLY": "maybe"})


@pytest.mark.parametrize("text, size", [("500MB", 500_000_000), ("1.5GiB", 1610612736), ("20 gb", 20_000_000_000),
                                        (4096, 4096), ("10kB", 10_000), ("7", 7)])
def test_sizes(text, size):
    assert parse_size(text, "max_size") == size
