"""Apache Spark: the session ``model.engine: spark`` and the Spark data checks run on.

PySpark is an optional dependency (the ``spark`` extra); nothing here imports
it until a session is asked for, and a missing PySpark, Java or master is one
line naming the fix (see ``_session``).
"""

from conveyor.spark._databricks import databricks_job, runs_submit_body, secret_reference
from conveyor.spark._databricks_run import RunInterrupted as DatabricksRunInterrupted
from conveyor.spark._databricks_run import RunStatus as DatabricksRunStatus
from conveyor.spark._databricks_run import connect as connect_databricks
from conveyor.spark._databricks_run import follow as follow_databricks_run
from conveyor.spark._databricks_run import submit as submit_databricks_run
from conveyor.spark._databricks_upload import CodeUpload, ProjectCode, project_code
from conveyor.spark._databricks_upload import upload as upload_project_code
from conveyor.spark._session import (
    SparkSetupError,
    active_session,
    check_master,
    find_java,
    java_message,
    preflight,
    require_pyspark,
    spark_failure,
    spark_session,
    start_session,
)
from conveyor.spark._submit import SubmitCommand, run_submit, spark_submit_program, submit_args

__all__ = [
    "CodeUpload",
    "DatabricksRunInterrupted",
    "DatabricksRunStatus",
    "ProjectCode",
    "SparkSetupError",
    "SubmitCommand",
    "active_session",
    "check_master",
    "connect_databricks",
    "databricks_job",
    "find_java",
    "follow_databricks_run",
    "java_message",
    "preflight",
    "project_code",
    "require_pyspark",
    "run_submit",
    "runs_submit_body",
    "secret_reference",
    "spark_failure",
    "spark_session",
    "spark_submit_program",
    "start_session",
    "submit_args",
    "submit_databricks_run",
    "upload_project_code",
]
