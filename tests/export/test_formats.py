"""One table from a file's extension to its format: a dataset is read, and an export written,
by the same rule (runner.dataset.EXTENSIONS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.dataset import EXTENSIONS
from runner.dataset._files import detect_format
from runner.errors import ConfigError
from runner.export import format_of


@pytest.mark.parametrize("extension", sorted(EXTENSIONS))
def test_an_export_target_has_the_format_its_extension_reads_as(extension: str) -> None:
    path = Path(f"out/tickets{extension.upper()}")
    assert format_of(path) == detect_format([path]) == EXTENSIONS[extension]


def test_no_target_or_no_extension_is_parquet_and_another_extension_is_refused() -> None:
    assert format_of(None) == format_of(Path("out/tickets")) == "parquet"
    with pytest.raises(ConfigError, match=r"--export out/t\.xlsx: .*'\.xlsx'.*\.parquet, \.csv"):
        format_of(Path("out/t.xlsx"), "--export")
