import logging

import pytest

from advdistill.engine.metrics_log import append_record, keep_records, read_records
from advdistill.errors import RunDirectoryError


def test_a_torn_last_line_is_dropped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    append_record(path, {"event": "epoch", "epoch": 1})
    with open(path, "ab") as fh:
        fh.write(b'{"event": "step", "epoch": 2, "lo')  # a kill in the middle of an append
    with caplog.at_level(logging.WARNING):
        assert read_records(path) == [{"event": "epoch", "epoch": 1}]
    assert "damaged last line 2" in caplog.text


def test_damage_before_the_last_line_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\n{"epoch": 2, "lo\n{"epoch": 3}\n')
    with pytest.raises(RunDirectoryError, match=r"damaged at line 2.*Delete or repair that line"):
        read_records(path)


def test_keep_records_rewrites_without_the_torn_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"epoch": 1}\n{"epoch": 2}\n\xff\xfe{"epo')
    assert keep_records(path, lambda r: r["epoch"] <= 1) == 1
    assert path.read_text() == '{"epoch": 1}\n'
    assert read_records(tmp_path / "missing.jsonl") == []
