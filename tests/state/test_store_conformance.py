"""One contract, two stores: the same tests run on the local folder and on a real PostgreSQL.

Each test gets a fresh store (``store_spec``: a folder, or a new database); the
tests with two processes start real child processes that open the same store.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conveyor.errors import LockBusy, StateConflict, UsageError
from conveyor.state import ANY, StateStore

# The child processes open the store the same way the fixture does.
_OPEN = """
import sys, json, time
from pathlib import Path
spec = sys.argv[1]
if spec.startswith("postgresql"):
    from conveyor.state import PostgresStore
    store = PostgresStore(spec)
else:
    from conveyor.state import LocalStore
    store = LocalStore(Path(spec))
"""


def _child(
    body: str, *args: str, stdout: int | None = None, stdin: int | None = None
) -> subprocess.Popen[str]:
    script = _OPEN + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", script, *args], stdout=stdout, stdin=stdin, text=True)


def _wait_for_line(proc: subprocess.Popen[str], expected: str) -> None:
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == expected


# -- logs -------------------------------------------------------------------------------
def test_a_log_hands_out_increasing_ids_and_resumes_after_one(store: StateStore):
    assert store.read("ledger") == []
    first = store.append("ledger", {"version": "1"})
    second = store.append("ledger", {"version": "2", "details": {"previous": "1"}})
    store.append("other", {"version": "x"})  # another log is another sequence
    assert second.id > first.id
    assert [(r.id, r.data) for r in store.read("ledger")] == [
        (first.id, {"version": "1"}),
        (second.id, {"version": "2", "details": {"previous": "1"}}),
    ]
    assert [r.data["version"] for r in store.read("ledger", after=first.id)] == ["2"]
    assert store.read("ledger", after=second.id) == []


def test_concurrent_appends_from_two_processes_lose_nothing(store_spec: str, store: StateStore):
    body = """
    for i in range(60):
        store.append("ledger", {"writer": sys.argv[2], "i": i, "pad": "x" * 1500})
    """
    procs = [_child(body, store_spec, writer) for writer in ("a", "b")]
    assert [p.wait(120) for p in procs] == [0, 0]
    records = store.read("ledger")
    assert len(records) == 120
    ids = [r.id for r in records]
    assert ids == sorted(ids)
    assert len(set(ids)) == 120
    for writer in ("a", "b"):  # each writer's records, complete and in its own order
        assert [r.data["i"] for r in records if r.data["writer"] == writer] == list(range(60))
    assert all(r.data["pad"] == "x" * 1500 for r in records)


# -- documents ----------------------------------------------------------------------------
def test_documents_are_replaced_whole_and_compared_and_set(store: StateStore):
    assert store.get("envs/production/ab") is None
    created = store.put("envs/production/ab", {"variant": "7", "ratio": 0.1}, expected=None)
    assert store.get("envs/production/ab") == created
    with pytest.raises(StateConflict, match="changed since it was read"):
        store.put("envs/production/ab", {"variant": "8"}, expected=None)  # it exists now
    updated = store.put("envs/production/ab", {"variant": "7", "ratio": 0.2}, expected=created.version)
    assert updated.version != created.version
    with pytest.raises(StateConflict):
        store.put("envs/production/ab", {"variant": "9"}, expected=created.version)  # stale
    assert store.get("envs/production/ab").data == {"variant": "7", "ratio": 0.2}
    with pytest.raises(StateConflict):
        store.delete("envs/production/ab", expected=created.version)
    assert store.move("envs/production/ab", "envs/production/ab-1.concluded")
    assert store.get("envs/production/ab") is None
    assert store.get("envs/production/ab-1.concluded").data == {"variant": "7", "ratio": 0.2}
    assert not store.move("envs/production/ab", "envs/production/elsewhere")
    assert store.delete("envs/production/ab-1.concluded", expected=ANY)
    assert not store.delete("envs/production/ab-1.concluded")


def test_documents_and_records_read_back_with_their_keys_in_written_order(store: StateStore):
    written = {"version": 3, "model_name": "shop", "a": {"z": 1, "b": 2}}
    store.put("results/register", written)
    store.append("results/history", written)
    assert list(store.get("results/register").data) == ["version", "model_name", "a"]
    assert list(store.get("results/register").data["a"]) == ["z", "b"]
    assert list(store.read("results/history")[0].data) == ["version", "model_name", "a"]


def test_numbers_json_cannot_hold_are_stored_as_null(store: StateStore):
    data = {"p_value": float("nan"), "lift": [1.0, float("inf")], "arms": {"ratio": -float("inf")}}
    assert store.put("ab/decision", data).data == {
        "p_value": None,
        "lift": [1.0, None],
        "arms": {"ratio": None},
    }
    assert store.get("ab/decision").data == {"p_value": None, "lift": [1.0, None], "arms": {"ratio": None}}
    assert store.append("ledger", data).data["p_value"] is None
    assert store.read("ledger")[0].data == {"p_value": None, "lift": [1.0, None], "arms": {"ratio": None}}


def test_keys_lists_the_documents_directly_below_a_prefix(store: StateStore):
    for key in ("results/evaluate", "results/drift", "results/deep/er", "resultsx/no", "other"):
        store.put(key, {"k": key})
    assert store.keys("results") == ["results/drift", "results/evaluate"]
    assert store.keys("nothing") == []


def test_two_processes_incrementing_one_document_never_lose_an_update(store_spec: str, store: StateStore):
    store.put("counter", {"n": 0})
    body = """
    from conveyor.errors import StateConflict
    done = 0
    while done < 40:
        doc = store.get("counter")
        try:
            store.put("counter", {"n": doc.data["n"] + 1}, expected=doc.version)
        except StateConflict:
            continue
        done += 1
    """
    procs = [_child(body, store_spec) for _ in range(2)]
    assert [p.wait(120) for p in procs] == [0, 0]
    assert store.get("counter").data == {"n": 80}


@pytest.mark.parametrize("bad", ["", "/abs", "a/../b", "a//b", "with space", "ends/"])
def test_keys_are_plain_paths(store: StateStore, bad: str):
    with pytest.raises(UsageError, match="state key"):
        store.put(bad, {})


# -- locks ----------------------------------------------------------------------------------
def test_a_held_lock_refuses_a_second_holder_and_names_the_first(store: StateStore):
    with store.lock("envs/production/deploy", record={"pid": 1, "action": "deploy"}) as held:
        assert held.left_behind is None
        state = store.lock_state("envs/production/deploy")
        assert (state.held, state.record) == (True, {"pid": 1, "action": "deploy"})
        with pytest.raises(LockBusy) as refused:
            store.lock("envs/production/deploy")
        assert refused.value.record == {"pid": 1, "action": "deploy"}
        held.update({"pid": 1, "action": "deploy", "weight": 10.0})
        assert store.lock_state("envs/production/deploy").record["weight"] == 10.0
        assert not store.lock_state("envs/staging/deploy").held  # another name, another lock
    state = store.lock_state("envs/production/deploy")
    assert (state.held, state.record) == (False, None)  # a clean release leaves no record
    with store.lock("envs/production/deploy") as again:
        assert again.left_behind is None


def test_two_processes_competing_for_a_lock_one_fails_and_one_waits(store_spec: str, store: StateStore):
    holder = _child(
        """
        with store.lock("envs/production/deploy", record={"who": "first"}):
            print("locked", flush=True)
            sys.stdin.readline()  # holds until the test says so
        print("released", flush=True)
        """,
        store_spec,
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
    )
    try:
        _wait_for_line(holder, "locked")
        impatient = _child(
            """
            from conveyor.errors import LockBusy
            try:
                store.lock("envs/production/deploy", wait=0)
            except LockBusy as exc:
                print("refused", json.dumps(exc.record), flush=True)
            else:
                print("took it", flush=True)
            """,
            store_spec,
            stdout=subprocess.PIPE,
        )
        out, _ = impatient.communicate(timeout=60)
        assert out.strip() == 'refused {"who": "first"}'
        patient = _child(
            """
            store.lock_state("envs/production/deploy")  # connected: what follows is the wait itself
            print("waiting", flush=True)
            with store.lock("envs/production/deploy", wait=60, record={"who": "second"}) as held:
                print("took it after", json.dumps(held.left_behind), flush=True)
            """,
            store_spec,
            stdout=subprocess.PIPE,
        )
        _wait_for_line(patient, "waiting")
        assert store.lock_state("envs/production/deploy").record == {"who": "first"}  # still the first's
        assert holder.stdin is not None
        holder.stdin.write("release\n")
        holder.stdin.flush()
        out, _ = patient.communicate(timeout=90)
        assert out.strip() == "took it after null"  # it waited for a clean release, then took the lock
        _wait_for_line(holder, "released")
        assert holder.wait(30) == 0
    finally:
        holder.kill()
        holder.wait()


def test_a_holder_killed_with_sigkill_releases_the_lock_and_leaves_its_record(
    store_spec: str, store: StateStore
):
    holder = _child(
        """
        held = store.lock("envs/production/deploy", record={"pid": 42, "version": "9"})  # kept: held
        print("locked", flush=True)
        time.sleep(120)
        """,
        store_spec,
        stdout=subprocess.PIPE,
    )
    try:
        _wait_for_line(holder, "locked")
        assert store.lock_state("envs/production/deploy").held
        with pytest.raises(LockBusy):
            store.lock("envs/production/deploy")
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        # PostgreSQL ends the dead client's session as soon as it reads the closed socket
        deadline = time.monotonic() + 20
        while store.lock_state("envs/production/deploy").held and time.monotonic() < deadline:
            time.sleep(0.05)
        state = store.lock_state("envs/production/deploy")
        assert (state.held, state.record) == (False, {"pid": 42, "version": "9"})
        with store.lock("envs/production/deploy", record={"pid": 43}) as taken:
            assert taken.left_behind == {"pid": 42, "version": "9"}
        assert store.lock_state("envs/production/deploy").record is None
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_that_stays_busy_fails_after_its_wait(store: StateStore):
    with store.lock("alerts"), pytest.raises(LockBusy, match="'alerts' is held by another process"):
        store.lock("alerts", wait=0.3)
    with store.lock("alerts", wait=0.3) as held:  # free again
        assert held.name == "alerts"
