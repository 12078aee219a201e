"""`conveyor run` calls a deploy stage up to date only while its environment's servers answer."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from conveyor.pipeline import Runner, Stage, StageInput
from conveyor.project import Project
from support import free_port

PY = [sys.executable]


@contextmanager
def _server(port: int, body: dict) -> Iterator[None]:
    """A loopback HTTP server answering /ready 200 and /version with ``body``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            payload = json.dumps(body if self.path == "/version" else {"ready": True}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: object) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_deploy_stage_reruns_when_its_server_is_down_or_someone_elses(make_project):
    port = free_port()
    root = make_project(
        f"project: {{name: shop, id: shop-123abc}}\ndeploy:\n  environments:\n    staging: {{port: {port}}}\n"
    )
    # the stage's command: `python deploy --env staging` runs this file in the project folder
    (root / "deploy").write_text("open('order.txt', 'a').write('deployed\\n')\n")
    stages = (Stage("deploy-staging", ("deploy", "--env", "staging"), (), "job", "d", (StageInput.CONFIG,)),)
    project = Project.load(root)

    def run() -> str:
        return Runner(project, stages, program=PY).run().outcomes[0].status

    assert run() == "ok"
    assert run() == "ok"  # nothing answers on the staging port: not up to date, deployed again
    with _server(port, {"project": "another-project", "env": "staging", "primary": "1"}):
        assert run() == "ok"  # another project's server on the port does not count
    with _server(port, {"project": "shop-123abc", "env": "staging", "primary": "1"}):
        assert run() == "skipped"  # the stamp matches and the server is up: up to date
    assert (root / "order.txt").read_text().split() == ["deployed"] * 3


def test_the_monitor_refuses_a_server_of_another_project(make_project):
    from conveyor.monitoring._readiness import readiness_check

    port = free_port()
    config = (
        f"project: {{name: shop, id: shop-123abc}}\ndeploy:\n  environments:\n    staging: {{port: {port}}}\n"
    )
    project = Project.load(make_project(config))
    with _server(port, {"project": "another-project", "env": "staging", "primary": "1"}):
        foreign = readiness_check(project, {"staging": "1"})
    assert foreign.status == "fail"
    assert f"staging (http://127.0.0.1:{port}): answers as project 'another-project', not 'shop-123abc'" in (
        foreign.summary
    )
    with _server(port, {"project": "shop-123abc", "env": "staging", "primary": "1"}):
        assert readiness_check(project, {"staging": "1"}).status == "pass"
