"""Where a project's cache is: `[tool.modelbuild.cache]` in pyproject.toml or `[cache]` in modelbuild.toml,
overridden by the environment (for CI).

    [tool.modelbuild.cache]
    url = "s3://team-bucket/modelbuild"     # a folder, file://, s3://, gs://, az://, https:// (read-only)
    read_only = false                        # true: restore, never upload (untrusted CI)
    max_age_days = 30                        # `modelbuild cache gc` defaults
    max_size = "50GB"
    [tool.modelbuild.cache.storage_options]  # passed to the fsspec filesystem
    endpoint_url = "https://minio.example.com"

Credentials come from the environment as each filesystem expects them (AWS_ACCESS_KEY_ID, ...).
MODELBUILD_CACHE_URL replaces the url ("off" turns the cache off), MODELBUILD_CACHE_READ_ONLY=1
makes it read-only. A relative folder is relative to the file that names it.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

URL_VARIABLE = "MODELBUILD_CACHE_URL"
READ_ONLY_VARIABLE = "MODELBUILD_CACHE_READ_ONLY"
OFF_VALUES = ("off", "none")
KNOWN_KEYS = ("url", "read_only", "storage_options", "max_age_days", "max_size")
READ_ONLY_PROTOCOLS = ("http://", "https://")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


class CacheConfigError(ValueError):
    """The cache configuration cannot be used (one line naming the file and the key)."""


@dataclass(frozen=True)
class CacheConfig:
    """The project's cache settings; `url` None means no cache."""

    url: str | None = None
    read_only: bool = False
    storage_options: dict[str, Any] = field(default_factory=dict)
    max_age_days: float | None = None
    max_size: int | None = None
    source: str = "not configured"

    @property
    def enabled(self) -> bool:
        return self.url is not None


def load_config(root: Path, environ: Mapping[str, str] = os.environ) -> CacheConfig:
    """The cache configuration of the project at `root`, with the environment's overrides applied."""
    table, source, folder = _table(Path(root))
    settings = _settings(table, source, folder)
    url = environ.get(URL_VARIABLE)
    if url is not None:
        url = url.strip()
        settings["url"] = None if url.lower() in OFF_VALUES else _absolute(url, Path(root))
        settings["source"] = f"{URL_VARIABLE}" + (f" (over {source})" if table else "")
    read_only = environ.get(READ_ONLY_VARIABLE)
    if read_only is not None:
        settings["read_only"] = _flag(read_only, READ_ONLY_VARIABLE)
    if settings.get("url") and settings["url"].startswith(READ_ONLY_PROTOCOLS):
        settings["read_only"] = True  # fsspec's HTTP filesystem cannot write
    return CacheConfig(**settings)


def _table(root: Path) -> tuple[dict[str, Any], str, Path]:
    """The cache table, where it came from, and the folder relative paths are relative to."""
    found = []
    for name, path_in_file in (("pyproject.toml", ("tool", "modelbuild", "cache")), ("modelbuild.toml", ("cache",))):
        file = root / name
        if not file.is_file():
            continue
        try:
            document = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise CacheConfigError(f"{name}: cannot be read as TOML ({err}); the cache configuration is in it") from None
        table: Any = document
        for part in path_in_file:
            table = table.get(part) if isinstance(table, dict) else None
        if table is not None:
            where = f"{name} [{'.'.join(path_in_file)}]"
            if not isinstance(table, dict):
                raise CacheConfigError(f"{where}: expected a table with url = \"...\", got {type(table).__name__}")
            found.append((table, where))
    if len(found) > 1:
        raise CacheConfigError(f"the cache is configured twice, in {found[0][1]} and {found[1][1]}; keep one of them")
    return (found[0][0], found[0][1], root) if found else ({}, "not configured", root)


def _settings(table: dict[str, Any], source: str, folder: Path) -> dict[str, Any]:
    unknown = sorted(set(table) - set(KNOWN_KEYS))
    if unknown:
        raise CacheConfigError(f"{source}: unknown key {unknown[0]!r}; the keys are {', '.join(KNOWN_KEYS)}")
    settings: dict[str, Any] = {"source": source}
    if "url" in table:
        if not isinstance(table["url"], str) or not table["url"].strip():
            raise CacheConfigError(f"{source}: url: expected a folder or a URL such as \"s3://bucket/prefix\", "
                                   f"got {table['url']!r}")
        settings["url"] = _absolute(table["url"].strip(), folder)
    if "read_only" in table:
        if not isinstance(table["read_only"], bool):
            raise CacheConfigError(f"{source}: read_only: expected true or false, got {table['read_only']!r}")
        settings["read_only"] = table["read_only"]
    if "storage_options" in table:
        if not isinstance(table["storage_options"], dict):
            raise CacheConfigError(f"{source}: storage_options: expected a table of fsspec options "
                                   f"(endpoint_url = \"...\"), got {table['storage_options']!r}")
        settings["storage_options"] = dict(table["storage_options"])
    if "max_age_days" in table:
        days = table["max_age_days"]
        if isinstance(days, bool) or not isinstance(days, (int, float)) or days <= 0:
            raise CacheConfigError(f"{source}: max_age_days: expected a positive number of days, got {days!r}")
        settings["max_age_days"] = float(days)
    if "max_size" in table:
        settings["max_size"] = parse_size(table["max_size"], f"{source}: max_size")
    return settings


def _absolute(url: str, folder: Path) -> str:
    """A URL as it is, a folder made absolute (relative to `folder`)."""
    if "://" in url:
        return url
    return str((folder / Path(url).expanduser()).resolve())


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise CacheConfigError(f"{name}={value!r}: expected 1 or 0 (true/false, yes/no)")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)


def parse_size(value: Any, where: str) -> int:
    """Bytes from 123, "500MB", "20 GB" (powers of 1000) or "1.5GiB" (powers of 1024)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise CacheConfigError(f"{where}: expected a size such as 500MB, 20GB or 1.5GiB, got {value!r}")
    power = " kmgt".index(match.group(2).lower() or " ")
    return int(float(match.group(1)) * (1024 if match.group(3) else 1000) ** power)
