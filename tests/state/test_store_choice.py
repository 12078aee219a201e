"""Which store a project uses, and a team store that cannot be used: one line, exit 2, no password."""

from __future__ import annotations

import pytest

from services import Postgres
from support import free_port

SERVICES = [pytest.mark.services, pytest.mark.xdist_group("services")]


def test_without_the_variable_the_state_stays_in_the_local_folder(cli, make_project, monkeypatch):
    monkeypatch.delenv("CONVEYOR_STATE_URI", raising=False)
    root = make_project("project: {name: shop}\n")
    result = cli("config", "check", "--project", root)
    assert result.exit_code == 0
    assert f"state: the local folder {root.resolve() / '.conveyor'} (CONVEYOR_STATE_URI is not set)" in (
        result.stderr + result.stdout
    )


def test_state_uri_in_the_file_is_refused_naming_the_variable_to_use(cli, make_project):
    root = make_project("state: {uri: 'postgresql://u:pw@h/db'}\n")
    result = cli("config", "check", "--project", root)
    assert result.exit_code == 2
    assert "state.uri: not accepted: a URI carries the database password" in result.stderr
    assert "pw@" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("mysql://u:pw-9f3@127.0.0.1/db", "has scheme 'mysql'; expected postgresql://"),
        ("not a uri pw-9f3", "is not a URI"),
        ("postgresql+psycopg2://u:pw-9f3@127.0.0.1/db", "names driver 'postgresql+psycopg2'"),
    ],
)
def test_a_wrong_uri_is_one_line_and_exit_2(cli, make_project, monkeypatch, uri, says):
    monkeypatch.setenv("CONVEYOR_STATE_URI", uri)
    root = make_project("project: {name: shop}\n")
    result = cli("status", "--project", root, "--json")
    assert result.exit_code == 2
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "pw-9f3" not in result.stderr + result.stdout


@pytest.mark.parametrize("kind", ["refused", "wrong-password", "no-database"])
@pytest.mark.parametrize("command", [("config", "check"), ("status",), ("rollback", "--env", "staging")])
@pytest.mark.services
@pytest.mark.xdist_group("services")
def test_an_unusable_server_is_one_line_exit_2_and_never_shows_the_password(
    cli, make_project, monkeypatch, postgres: Postgres, kind, command
):
    uri = {
        "refused": f"postgresql://{postgres.user}:{postgres.password}@127.0.0.1:{free_port()}/x",
        "wrong-password": f"postgresql://{postgres.user}:not-{postgres.password}@{postgres.host}:{postgres.port}/x",
        "no-database": postgres.uri("no_such_database"),
    }[kind]
    secret = uri.split(":")[2].split("@")[0]
    monkeypatch.setenv("CONVEYOR_STATE_URI", uri)
    root = make_project("project: {name: shop}\n")
    result = cli(*command, "--project", root, "--json")
    assert result.exit_code == 2, result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "StateStoreError: state store postgresql://conveyor@" in line
    assert result.json()["error"]["type"] == "StateStoreError"
    assert secret not in result.stderr + result.stdout
    assert postgres.password not in result.stderr + result.stdout


@pytest.mark.services
@pytest.mark.xdist_group("services")
def test_config_check_names_the_postgresql_store_without_its_password(
    cli, make_project, monkeypatch, postgres: Postgres
):
    monkeypatch.setenv("TEAM_STATE", postgres.create_database("state_choice"))
    root = make_project("state: {uri_env: TEAM_STATE}\n")
    result = cli("config", "check", "--project", root, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["state"] == {
        "kind": "postgresql",
        "location": f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/state_choice",
        "chosen_by": "set by TEAM_STATE, named in state.uri_env",
    }
    assert postgres.password not in result.stdout + result.stderr


@pytest.mark.services
@pytest.mark.xdist_group("services")
def test_a_store_written_by_a_newer_conveyor_is_refused(postgres: Postgres):
    import psycopg

    from conveyor.errors import StateStoreError
    from conveyor.state import PostgresStore

    uri = postgres.create_database("state_newer")
    PostgresStore(uri).check()
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("UPDATE conveyor_state_schema SET version = 99")
    with pytest.raises(StateStoreError, match="schema version 99 is newer than this Conveyor's"):
        PostgresStore(uri).check()
