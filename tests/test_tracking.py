"""The embedded MLflow store: SQLite under .conveyor/, real client, created on first use."""

from __future__ import annotations

from conveyor.project import Project
from conveyor.registry import ensure_experiment, tracking_client


def test_run_logged_and_read_back_through_the_real_client(make_project):
    root = make_project("project:\n  name: shop\n")
    project = Project.load(root)
    assert not (root / ".conveyor").exists()
    experiment_id = ensure_experiment(project)
    client = tracking_client(project)
    run = client.create_run(experiment_id, tags={"conveyor.test": "yes"})
    client.log_param(run.info.run_id, "factors", 128)
    client.log_metric(run.info.run_id, "ndcg_at_10", 0.25)
    client.set_terminated(run.info.run_id)

    again = tracking_client(Project.load(root)).get_run(run.info.run_id)
    assert again.data.params == {"factors": "128"}
    assert again.data.metrics == {"ndcg_at_10": 0.25}
    assert again.data.tags["conveyor.test"] == "yes"
    assert (root / ".conveyor" / "mlflow.db").is_file()
    assert project.tracking_uri == f"sqlite:///{root.resolve() / '.conveyor' / 'mlflow.db'}"
    assert ensure_experiment(project) == experiment_id  # created once


def test_a_remote_tracking_uri_is_used_as_given(make_project):
    root = make_project("registry:\n  tracking_uri: http://127.0.0.1:5999\n")
    project = Project.load(root)
    assert project.tracking_uri == "http://127.0.0.1:5999"
    assert not (root / ".conveyor" / "mlflow.db").exists()


def test_a_password_in_the_tracking_uri_never_shows_in_an_error(make_project, monkeypatch):
    import pytest

    from conveyor.errors import ServiceError
    from conveyor.registry import get_version
    from support import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    uri = f"http://ada:pw-7f3a9c@127.0.0.1:{free_port()}"  # nothing listens there
    project = Project.load(make_project(f"registry:\n  tracking_uri: {uri}\n"))
    assert project.tracking_uri_shown == uri.replace("pw-7f3a9c", "***")
    for action in (lambda: ensure_experiment(project), lambda: get_version(project, 1)):
        with pytest.raises(ServiceError) as info:
            action()
        assert "pw-7f3a9c" not in str(info.value)
        assert "pw-7f3a9c" not in repr(vars(info.value))
        assert "127.0.0.1" in str(info.value)
