"""Reports beside the request log: with ``serving.request_log.uri`` in S3, the monitor's and the
pipeline's reports are uploaded under ``<uri>/<env>/reports/<stamp>/`` (a team's runners are
disposable; the reports outlive them). With a local request log they stay where they were written.
"""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.errors import ServiceError
from conveyor.project import Project
from conveyor.requestlog._location import S3Location, request_log_location
from conveyor.requestlog._sink import s3_filesystem

PIPELINE_REPORTS = "pipeline"  # the folder of `conveyor report` (a pipeline spans environments)


def publish_reports(project: Project, env: str, stamp: str, files: Mapping[str, bytes]) -> list[str]:
    """Upload ``files`` (name → content) to ``<uri>/<env>/reports/<stamp>/``; their ``s3://`` URIs
    (none when the request log is local). Raises ServiceError naming the bucket when S3 refuses."""
    location = request_log_location(project, env)
    if not isinstance(location, S3Location):
        return []
    target = location.child(f"reports/{stamp}")
    fs = s3_filesystem(target)
    uploaded = []
    for name, content in files.items():
        key = f"{target.bucket}/{target.key}/{name}"
        try:
            with fs.open_output_stream(key) as stream:  # one PUT: the object appears whole
                stream.write(content)
        except OSError as exc:
            raise ServiceError(f"{target}: uploading {name} failed: {exc}") from exc
        uploaded.append(f"s3://{key}")
    return uploaded
