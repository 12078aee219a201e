"""The plumbing under benchmarks/: wrk parsing, the environment header, the docs recorder,
the micro-batching switch and the fixed-rate client (against a real loopback server)."""

from __future__ import annotations

import ast
import asyncio
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from benchmarks import __main__ as runner
from benchmarks._env import environment_header, load_line
from benchmarks._servers import median_spread, parse_wrk, write_config
from benchmarks.request_log import fixed_rate

from conveyor.config import load_settings

WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:8080/predict
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    20.10ms    5.00ms  80.00ms   90.00%
  Latency Distribution
     50%   18.80ms
     75%   22.00ms
     90%   26.00ms
     99%    1.25s
  16285 requests in 5.00s, 3.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:   3257.04
Transfer/sec:    634.00KB
"""


def test_wrk_output_is_read_into_throughput_percentiles_and_errors():
    load = parse_wrk(WRK_OUTPUT, 64)
    assert load.connections == 64
    assert load.requests_per_s == pytest.approx(3257.04)
    assert load.p50_ms == pytest.approx(18.8)
    assert load.p99_ms == pytest.approx(1250.0)
    assert load.errors == 7 + 2 + 3


def test_unreadable_wrk_output_is_an_error_not_a_zero():
    with pytest.raises(ValueError, match="Requests/sec"):
        parse_wrk("connection refused\n", 8)


def test_environment_header_names_date_machine_load_commit_and_python():
    header = environment_header("serving", command="python -m benchmarks.serving")
    lines = dict(line.split(": ", 1) for line in header.splitlines())
    assert lines["benchmark"] == "serving"
    assert lines["command"] == "python -m benchmarks.serving"
    assert lines["date"].endswith(" UTC")
    assert f"{os.cpu_count()} cores" in lines["machine"]
    assert "GB RAM" in lines["machine"]
    assert len(lines["load average before"].split()[:3]) == 3
    assert lines["git commit"]
    assert lines["python"].startswith("3.")
    assert load_line("after").startswith("load average after: ")


def test_median_and_spread():
    assert median_spread([3.0, 1.0, 2.0, 10.0]) == (2.5, 1.0, 10.0)
    assert median_spread([4.0]) == (4.0, 4.0, 4.0)


def test_recorder_replaces_only_the_named_block_and_drops_the_json_line(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# B\n\n## Serving\nprose\n<!-- output: benchmarks.serving -->\nold figure 82x\n"
        "<!-- /output: benchmarks.serving -->\nafter\n<!-- output: benchmarks.other -->\nkeep\n"
        "<!-- /output: benchmarks.other -->\n"
    )
    output = '\n# benchmarks.serving\nheader\n| a | b |\n{"benchmark": "serving", "x": 1}\n{"requests": 5}\n'
    assert runner.record(doc, "serving", output)
    text = doc.read_text()
    assert "old figure" not in text
    assert (
        "```text\n# benchmarks.serving\nheader\n| a | b |\n```\n<!-- /output: benchmarks.serving -->" in text
    )
    assert '{"benchmark"' not in text
    assert '{"requests"' not in text
    assert "prose\n" in text
    assert "after\n" in text
    assert "keep\n" in text
    assert not runner.record(doc, "missing", output)


def test_an_unknown_benchmark_name_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        runner.main(["--only", "no_such_benchmark"])
    assert exc.value.code == 2
    assert "no benchmark module no_such_benchmark" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("batching", "size", "wait"), [({}, 64, 2.0), ({"max_batch_size": 1, "max_wait_ms": 0}, 1, 0.0)]
)
def test_micro_batching_switch_is_a_valid_serving_config(tmp_path, batching, size, wait):
    write_config(tmp_path, "classifier", 8123, log=False, **batching)
    settings = load_settings(tmp_path / "conveyor.yaml")
    assert settings.serving.max_batch_size == size
    assert settings.serving.max_wait_ms == wait
    assert settings.serving.request_log.enabled is False


def test_fixed_rate_client_sends_every_request_to_a_real_server():
    seen: list[bytes] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                seen.append(body)
                status = 200 if len(seen) % 10 else 503  # every 10th answer fails
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # the client may open up to 64 connections at once

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/predict"
        answered, failed, elapsed = asyncio.run(fixed_rate(url, {"features": {"f0": 1.0}}, 200.0, 0.2))
    finally:
        server.shutdown()
        server.server_close()
    assert (answered, failed) == (36, 4)
    assert len(seen) == 40
    assert seen[0] == b'{"features":{"f0":1.0}}'
    assert elapsed > 0


@pytest.mark.slow
def test_every_timed_monitor_run_reads_the_whole_log():
    """Known answer: each of the timed `conveyor monitor` processes counts every logged request."""
    from benchmarks.monitoring import run

    result = run(2_000, 2)
    assert result["requests"] == 2_000
    assert result["feedback"] == 600
    assert len(result["seconds_each_run"]) == 2
    assert result["exit_code"] == 0


def test_request_log_verdict_rests_on_an_upper_bound_of_the_paired_cost():
    from benchmarks.request_log import upper_bound

    # mean -37.5, sd 205.2, n 4: -37.5 + t(0.95, 3) 2.3534 * 205.2 / 2
    assert upper_bound([130.0, -270.0, -150.0, 140.0]) == pytest.approx(203.91, abs=0.01)
    assert upper_bound([5.0]) == float("inf")  # one pair: no spread, no verdict


def _outside_blocks(text: str) -> str:
    """The text of a page with every recorder block cut out."""
    return re.sub(r"^<!-- output: (\S+) -->\n.*?^<!-- /output: \1 -->$", "", text, flags=re.S | re.M)


def test_every_output_block_names_a_benchmark_module_and_is_closed():
    names = set(runner.benchmark_names())
    seen: dict[str, list[str]] = {}
    for doc in runner.documents():
        text = doc.read_text()
        for key in runner.markers(doc):
            seen.setdefault(key, []).append(doc.name)
            assert text.count(f"\n<!-- /output: {key} -->\n") == 1, (
                f"{doc.name}: block {key} is not closed once"
            )
            if key != runner.RUNNER:
                assert key.removeprefix("benchmarks.") in names, (
                    f"{doc.name}: {key} names no module of benchmarks/"
                )
    assert all(len(docs) == 1 for docs in seen.values()), f"a block recorded in two places: {seen}"
    # the timings and every statistics table are recorded by make bench
    for name in ("serving", "drift_validation", "drift_sampling", "request_log", "rollback", "training"):
        assert seen[f"benchmarks.{name}"] == ["benchmarks.md"]
    for name in ("drift_calibration", "schema_inference", "ab_calibration", "gate_calibration"):
        assert seen[f"benchmarks.{name}"] == ["statistics.md"]
    assert seen[runner.RUNNER] == ["benchmarks.md"]


def test_no_environment_line_outside_a_block():
    """A date, a load or a machine printed by a script sits in that script's block, never pasted in prose."""
    for doc in runner.documents():
        prose = _outside_blocks(doc.read_text())
        pasted = [
            line for line in prose.splitlines() if re.match(r"(Measured|Run|run) 20\d\d-|load average", line)
        ]
        assert not pasted, f"{doc.name}: {pasted}"


def test_list_names_every_module_and_the_page_it_is_recorded_in():
    listed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--list"],
        cwd=runner.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    rows = dict(line.split("\t") for line in listed.splitlines())
    assert sorted(rows) == runner.benchmark_names()
    for doc in runner.documents():
        for key in runner.markers(doc):
            if key != runner.RUNNER:
                assert rows[key.removeprefix("benchmarks.")] == str(doc.relative_to(runner.ROOT))
    for name in runner.benchmark_names():  # each has the entry point the runner calls
        tree = ast.parse((runner.FOLDER / f"{name}.py").read_text())
        assert any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body), name


def test_a_full_run_summary_names_each_module_its_exit_and_the_total(tmp_path):
    summary = runner._summary([("serving", 0, 75.4), ("training", 1, 3725.0)], started=0.0)
    assert "| serving | 0 | 0:01:15 |" in summary
    assert "| training | 1 | 1:02:05 |" in summary
    assert summary.splitlines()[-1].startswith("total wall time: ")
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "see <!-- output: benchmarks.NAME --> inline\n"
        "<!-- output: benchmarks -->\nold\n<!-- /output: benchmarks -->\n"
    )
    assert runner.record(doc, runner.RUNNER, summary)
    assert "old" not in doc.read_text()
    assert "inline\n" in doc.read_text()
    assert runner.markers(doc) == ["benchmarks"]
