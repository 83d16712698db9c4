"""The output lock on shared file systems: a file system without flock is said as such, not as another run."""

from __future__ import annotations

import errno

import pytest

from hacm import locks
from hacm.locks import LockingUnsupported, OutputInUse, OutputLock


def refuse_with(code: int):
    def flock(handle, operation):
        if operation & locks.fcntl.LOCK_UN:
            return None
        raise OSError(code, "simulated")

    return flock


@pytest.mark.parametrize("code", [errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP])
def test_a_file_system_without_locks_is_named_with_what_to_do(tmp_path, monkeypatch, code):
    """Reliability review: on NFS without lockd (ENOLCK) every stage said 'in use by another run'."""
    monkeypatch.setattr(locks.fcntl, "flock", refuse_with(code))
    with pytest.raises(LockingUnsupported) as caught:
        OutputLock(tmp_path / "o.lock", output=tmp_path / "o", hint="wait").__enter__()
    message = str(caught.value)
    assert "does not support locking" in message and "HACM_LOCKS=off" in message and "in use" not in message
    assert "\n" not in message


def test_another_holder_is_still_in_use(tmp_path, monkeypatch):
    monkeypatch.setattr(locks.fcntl, "flock", refuse_with(errno.EWOULDBLOCK))
    with pytest.raises(OutputInUse, match="in use by another run"):
        OutputLock(tmp_path / "o.lock", output=tmp_path / "o", hint="wait").__enter__()


def test_locks_can_be_switched_off_where_the_file_system_has_none(tmp_path, monkeypatch):
    monkeypatch.setattr(locks.fcntl, "flock", refuse_with(errno.ENOLCK))
    monkeypatch.setenv("HACM_LOCKS", "off")
    with OutputLock(tmp_path / "o.lock", output=tmp_path / "o", hint="wait"):
        pass
    assert not (tmp_path / "o.lock").exists()


def test_a_run_stage_says_it_in_one_line(synthetic_stores, tmp_path, monkeypatch, capsys):
    from hacm.evaluate.__main__ import main as evaluate_main
    from tests.conftest import recipe_file

    linear = recipe_file(tmp_path, "evaluate", "ntu60-xsub", "hacm", "linear")
    monkeypatch.setattr(locks.fcntl, "flock", refuse_with(errno.ENOLCK))
    code = evaluate_main(["--protocol", "linear", "--config", str(linear), "--data", str(synthetic_stores / "ntu60-xsub"),
                          "--encoder", "none", "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "does not support locking" in err and len(err.strip().splitlines()) == 1


def test_a_released_lock_leaves_no_file_and_no_empty_folder_of_its_own(tmp_path):
    """Reliability probe 2: `OUT.lock` stayed beside every prepare output, and a failed pretraining left an
    empty --out holding only `.lock`."""
    with OutputLock(tmp_path / "out.lock", output=tmp_path / "out", hint="wait"):
        assert (tmp_path / "out.lock").read_text().startswith("pid ")
    assert not (tmp_path / "out.lock").exists()
    run = tmp_path / "run"
    with OutputLock(run / ".lock", output=run, hint="wait"):
        pass
    assert not run.exists()  # the lock made it, nothing was written there
    with OutputLock(run / ".lock", output=run, hint="wait"):
        (run / "checkpoint.pt").write_text("x")
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt"]


@pytest.mark.parametrize("code", [errno.ENOLCK])
def test_a_failed_lock_leaves_no_folder_of_its_own(tmp_path, monkeypatch, code):
    monkeypatch.setattr(locks.fcntl, "flock", refuse_with(code))
    with pytest.raises(LockingUnsupported):
        OutputLock(tmp_path / "run" / ".lock", output=tmp_path / "run", hint="wait").__enter__()
    assert not (tmp_path / "run").exists()


def test_a_lock_file_unlinked_by_its_releasing_holder_is_not_taken(tmp_path, monkeypatch):
    """A releasing holder unlinks the file, then unlocks it: a process that opened the old file just before
    must not hold a lock on it (it guards nothing; a third process would lock a new file at the path)."""
    path = tmp_path / "out.lock"
    real_flock, calls = locks.fcntl.flock, []

    def flock(handle, operation):
        calls.append(operation)
        if len(calls) == 1:  # the holder releases between this process's open and its flock
            path.unlink()
            path.write_text("")
        return real_flock(handle, operation)

    monkeypatch.setattr(locks.fcntl, "flock", flock)
    with OutputLock(path, output=tmp_path / "out", hint="wait") as lock:
        assert locks.os.fstat(lock.handle.fileno()).st_ino == path.stat().st_ino
    assert len([c for c in calls if c & locks.fcntl.LOCK_EX]) == 2
