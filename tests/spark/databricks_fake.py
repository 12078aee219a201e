"""A Databricks workspace on 127.0.0.1 that speaks the Jobs API subset ``conveyor spark databricks-run`` uses.

``runs/submit`` checks the body against the fields Databricks' published API defines for a one-time
run (``run_name``, ``tasks[]`` with ``task_key``, one compute — ``new_cluster`` with
``spark_version``, ``node_type_id``, ``num_workers`` — one task type such as ``python_wheel_task``
or ``spark_python_task``, ``libraries``), and every task must survive the round trip through the
Databricks SDK's model of a task (``SubmitTask``): a key the API does not know is refused with 400,
as a node type the workspace does not offer is. ``runs/get`` answers the states of ``script`` one
call after the other (the last one repeats); ``runs/cancel`` ends the run as CANCELED. Every
request needs ``Authorization: Bearer <token>`` (401 otherwise; 403 for ``powerless_token``, a
user's who may not create clusters), except the host-metadata probe, which answers 404 as a
workspace without it does.

The workspace API the code upload uses keeps its folders and files in memory (``files``, ``dirs``,
paths as the API names them, without ``/Workspace``): ``workspace/mkdirs`` (JSON ``{path}``, makes the
parents), ``workspace/import`` (the SDK's multipart post: form fields ``path``, ``format``,
``language``, ``overwrite`` and the file ``content``; a missing parent folder is 404, an existing file
without ``overwrite`` 400 RESOURCE_ALREADY_EXISTS, content over 10 MB 400 MAX_NOTEBOOK_SIZE_EXCEEDED),
and ``workspace/export`` (``direct_download``: the bytes). Unknown fields are
refused with 400 as the Jobs endpoints refuse them; ``fail_import_after`` answers 500 to every import
after that many, an upload cut half-way.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

State = tuple[str, str | None, str]  # life_cycle_state, result_state, state_message

SUCCESS: list[State] = [
    ("PENDING", None, "Waiting for cluster"),
    ("RUNNING", None, ""),
    ("TERMINATED", "SUCCESS", ""),
]
_TASK_KEY = re.compile(r"[\w-]{1,100}")
_TASK_TYPES = {
    "python_wheel_task": ("package_name", "entry_point"),
    "spark_python_task": ("python_file",),
    "notebook_task": ("notebook_path",),
    "spark_jar_task": ("main_class_name",),
}
_SUBMIT_KEYS = {"run_name", "tasks", "idempotency_token", "timeout_seconds", "git_source", "queue"}
_IMPORT_FIELDS = {"path", "format", "language", "overwrite", "content"}
_IMPORT_FORMATS = {"AUTO", "DBC", "HTML", "JUPYTER", "RAW", "R_MARKDOWN", "SOURCE"}
MAX_IMPORT_BYTES = 10 * 1024 * 1024


class Refused(Exception):
    """A 4xx of the API: its message, error_code and status."""

    def __init__(self, message: str, code: str = "INVALID_PARAMETER_VALUE", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def _absolute(path: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/") or posixpath.normpath(path) != path:
        raise Refused(f"path must be an absolute, normal workspace path (got {path!r})")
    return path


def parse_import(content_type: str, raw: bytes) -> tuple[dict[str, str], bytes]:
    """The form fields and the file of a multipart ``workspace/import``; Refused for any other body."""
    from python_multipart import parse_form

    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}

    def on_field(f: Any) -> None:
        fields[f.field_name.decode()] = (f.value or b"").decode()

    def on_file(f: Any) -> None:
        f.file_object.seek(0)
        files[f.field_name.decode()] = f.file_object.read()

    if not content_type.startswith("multipart/form-data"):
        raise Refused("workspace/import takes the SDK's multipart form (a file named content)")
    headers = {"Content-Type": content_type.encode(), "Content-Length": str(len(raw)).encode()}
    parse_form(headers, io.BytesIO(raw), on_field, on_file)
    unknown = (set(fields) | set(files)) - _IMPORT_FIELDS
    if unknown:
        raise Refused(f"unknown field(s) {sorted(unknown)}")
    if set(files) != {"content"}:
        raise Refused("workspace/import needs the file content")
    if fields.get("format", "SOURCE") not in _IMPORT_FORMATS:
        raise Refused(f"format {fields['format']!r} is not one of {sorted(_IMPORT_FORMATS)}")
    if fields.get("overwrite", "false") not in ("true", "false"):
        raise Refused("overwrite must be true or false")
    _absolute(fields.get("path"))
    return fields, files["content"]


def _check_strings(where: str, mapping: Any) -> None:
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise Refused(f"{where} must map strings to strings")


def check_submit(body: Any, node_types: frozenset[str]) -> None:
    """Refuse, as Databricks would, a runs/submit body outside the published API."""
    from databricks.sdk.service.jobs import SubmitTask

    if not isinstance(body, dict):
        raise Refused("the body must be a JSON object")
    unknown = set(body) - _SUBMIT_KEYS
    if unknown:
        raise Refused(f"unknown field(s) {sorted(unknown)}")
    if not isinstance(body.get("run_name", ""), str):
        raise Refused("run_name must be a string")
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise Refused("tasks must be a non-empty list")
    keys: list[str] = []
    for task in tasks:
        if not isinstance(task, dict) or not _TASK_KEY.fullmatch(str(task.get("task_key", ""))):
            raise Refused("every task needs a task_key of letters, digits, _ and - (at most 100)")
        keys.append(task["task_key"])
        if SubmitTask.from_dict(task).as_dict() != task:
            raise Refused(f"task {task['task_key']}: a field the API does not define")
        types = [t for t in _TASK_TYPES if t in task]
        if len(types) != 1:
            raise Refused(f"task {task['task_key']}: exactly one task type, e.g. python_wheel_task")
        for required in _TASK_TYPES[types[0]]:
            if not isinstance(task[types[0]].get(required), str):
                raise Refused(f"{types[0]}.{required} is required")
        params = task[types[0]].get("parameters", [])
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise Refused(f"{types[0]}.parameters must be a list of strings")
        cluster = task.get("new_cluster")
        if not isinstance(cluster, dict):
            raise Refused(f"task {task['task_key']}: new_cluster is required (or existing_cluster_id)")
        for required in ("spark_version", "node_type_id"):
            if not isinstance(cluster.get(required), str):
                raise Refused(f"new_cluster.{required} is required")
        if cluster["node_type_id"] not in node_types:
            raise Refused(f"Node type {cluster['node_type_id']} is not supported")
        workers = cluster.get("num_workers")
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
            raise Refused("new_cluster.num_workers must be an integer >= 0")
        for mapping in ("spark_conf", "spark_env_vars", "custom_tags"):
            if mapping in cluster:
                _check_strings(f"new_cluster.{mapping}", cluster[mapping])
        for library in task.get("libraries", []):
            if not isinstance(library, dict) or len(library) != 1:
                raise Refused("each library is one of pypi, whl, jar, maven, requirements")
    if len(set(keys)) != len(keys):
        raise Refused("task_key must be unique")


@dataclass
class FakeDatabricks:
    token: str
    script: list[State] = field(default_factory=lambda: list(SUCCESS))
    node_types: frozenset[str] = frozenset({"i3.xlarge", "m5d.large"})
    powerless_token: str = "dapi-powerless-0042"
    submitted: list[dict[str, Any]] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    gets: int = 0
    running: threading.Event = field(default_factory=threading.Event)  # a get answered RUNNING
    files: dict[str, bytes] = field(default_factory=dict)  # the workspace's files, by API path
    dirs: set[str] = field(default_factory=lambda: {"/"})
    imports: list[dict[str, str]] = field(default_factory=list)  # the form fields of each import taken
    fail_import_after: int | None = None
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}"

    def state(self, run_id: int) -> State:
        if run_id in self.cancelled:
            return ("TERMINATED", "CANCELED", "Run cancelled.")
        state = self.script[min(self.gets, len(self.script) - 1)]
        self.gets += 1
        if state[0] == "RUNNING":
            self.running.set()
        return state

    def mkdirs(self, body: Any) -> None:
        if not isinstance(body, dict) or set(body) != {"path"}:
            raise Refused("workspace/mkdirs takes exactly {path}")
        path = _absolute(body["path"])
        while path not in self.dirs:
            if path in self.files:
                raise Refused(f"{path} is a file", "RESOURCE_ALREADY_EXISTS")
            self.dirs.add(path)
            path = posixpath.dirname(path)

    def import_file(self, fields: dict[str, str], content: bytes) -> None:
        if self.fail_import_after is not None and len(self.imports) >= self.fail_import_after:
            raise Refused("the workspace broke down", "INTERNAL_ERROR", 500)
        path = fields["path"]
        if posixpath.dirname(path) not in self.dirs:
            raise Refused(f"The parent folder of {path} does not exist", "RESOURCE_DOES_NOT_EXIST", 404)
        if path in self.dirs or (path in self.files and fields.get("overwrite") != "true"):
            raise Refused(f"{path} already exists", "RESOURCE_ALREADY_EXISTS")
        if len(content) > MAX_IMPORT_BYTES:
            raise Refused("File size imported is too large", "MAX_NOTEBOOK_SIZE_EXCEEDED")
        self.imports.append(fields)
        self.files[path] = content

    def _lookup(self, query: dict[str, list[str]], allowed: set[str]) -> str:
        unknown = set(query) - allowed
        if unknown:
            raise Refused(f"unknown field(s) {sorted(unknown)}")
        path = _absolute(query.get("path", [""])[0])
        if path not in self.files and path not in self.dirs:
            raise Refused(f"Path ({path}) doesn't exist.", "RESOURCE_DOES_NOT_EXIST", 404)
        return path

    def start(self) -> FakeDatabricks:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, code: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                given = self.headers.get("Authorization")
                if given == f"Bearer {fake.token}":
                    return True
                if given == f"Bearer {fake.powerless_token}":  # a valid token of a user who may not
                    message = "User is not allowed to create clusters."
                    self._send(403, {"error_code": "PERMISSION_DENIED", "message": message})
                    return False
                self._send(401, {"error_code": "401", "message": "Invalid access token."})
                return False

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/.well-known/databricks-config":
                    self._send(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": "no metadata"})
                    return
                if not self._authorized():
                    return
                query = parse_qs(url.query)
                try:
                    if url.path == "/api/2.0/workspace/export":
                        path = fake._lookup(query, {"path", "format", "direct_download"})
                        if query.get("direct_download") != ["true"] or path not in fake.files:
                            raise Refused("this stand-in exports files, with direct_download=true")
                        self._send_bytes(fake.files[path])
                        return
                except Refused as exc:
                    self._send(exc.status, {"error_code": exc.code, "message": str(exc)})
                    return
                if re.fullmatch(r"/api/2\.[12]/jobs/runs/get", url.path):
                    run_id = int(parse_qs(url.query)["run_id"][0])
                    if run_id != len(fake.submitted):
                        self._send(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no run"})
                        return
                    life, result, message = fake.state(run_id)
                    state: dict[str, Any] = {"life_cycle_state": life, "state_message": message}
                    if result:
                        state["result_state"] = result
                    page = f"{fake.url}/#job/0/run/{run_id}"
                    self._send(200, {"run_id": run_id, "run_page_url": page, "state": state})
                    return
                self._send(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": self.path})

            def _send_bytes(self, data: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _workspace(self, path: str, raw: bytes) -> bool:
                """Answer a workspace/mkdirs or workspace/import; False for another path."""
                try:
                    if path == "/api/2.0/workspace/mkdirs":
                        fake.mkdirs(json.loads(raw or b"{}"))
                    elif path == "/api/2.0/workspace/import":
                        fake.import_file(*parse_import(self.headers.get("Content-Type", ""), raw))
                    else:
                        return False
                except Refused as exc:
                    self._send(exc.status, {"error_code": exc.code, "message": str(exc)})
                    return True
                self._send(200, {})
                return True

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not self._authorized():
                    return
                path = urlsplit(self.path).path
                if self._workspace(path, raw):
                    return
                body = json.loads(raw or b"{}")
                if re.fullmatch(r"/api/2\.[12]/jobs/runs/submit", path):
                    try:
                        check_submit(body, fake.node_types)
                    except Refused as exc:
                        self._send(exc.status, {"error_code": exc.code, "message": str(exc)})
                        return
                    fake.submitted.append(body)
                    self._send(200, {"run_id": len(fake.submitted)})
                elif re.fullmatch(r"/api/2\.[12]/jobs/runs/cancel", path):
                    fake.cancelled.append(int(body["run_id"]))
                    self._send(200, {})
                else:
                    self._send(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": self.path})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
