"""The run-directory lock, with real processes: a second writer is refused, a dead owner's lock is taken over."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys

import pytest

from advdistill.errors import RunDirectoryError
from advdistill.rundir import LOCK_NAME, ensure_writable_dir, read_lock_owner, run_dir_lock

HOLD = (
    "import sys, time\n"
    "from advdistill.rundir import run_dir_lock\n"
    "with run_dir_lock(sys.argv[1], 'study'):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(60)\n"
)


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of tmp_path/run (killed with SIGKILL at the end)."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    yield run, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_second_process_is_refused_with_the_owner_named(holder):
    run, proc = holder
    with pytest.raises(RunDirectoryError) as err, run_dir_lock(run, "train"):
        pass
    message = str(err.value)
    assert f"pid {proc.pid} on host {socket.gethostname()}" in message and "advdistill study" in message
    assert str(run / LOCK_NAME) in message


def test_lock_of_a_killed_process_is_taken_over_with_a_warning(holder, caplog):
    run, proc = holder
    proc.kill()  # SIGKILL: no clean-up, the lock file with the dead owner stays
    proc.wait()
    assert read_lock_owner(run)["pid"] == proc.pid
    with caplog.at_level(logging.WARNING), run_dir_lock(run, "train"):
        assert read_lock_owner(run)["pid"] == os.getpid()
    assert f"left by pid {proc.pid}" in caplog.text and "no longer running" in caplog.text
    assert not (run / LOCK_NAME).exists(), "a released lock leaves no file behind"


def test_lock_is_reentrant_within_a_process(tmp_path):
    with run_dir_lock(tmp_path / "run", "train"), run_dir_lock(tmp_path / "run", "eval"):
        owner = json.loads((tmp_path / "run" / LOCK_NAME).read_text())
        assert owner["command"] == "train" and owner["pid"] == os.getpid()
    assert not (tmp_path / "run" / LOCK_NAME).exists()


def test_unusable_directory_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirectoryError, match="exists and is not a directory"):
        ensure_writable_dir(tmp_path / "file")
    with pytest.raises(RunDirectoryError, match="cannot be created"):
        ensure_writable_dir(tmp_path / "file" / "run")
