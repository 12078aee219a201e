"""Data: reading tables, schemas and validation, reference profiles and drift."""

from conveyor.data._drift import detect_drift
from conveyor.data._drift_html import write_drift_html
from conveyor.data._drift_result import ColumnDrift, Distribution, DriftReport
from conveyor.data._drift_stats import warm_up
from conveyor.data._drift_stream import stream_drift
from conveyor.data._drift_tests import (
    CategoricalColumn,
    DriftTest,
    DriftTestResult,
    NumericColumn,
    drift_test,
)
from conveyor.data._io import read_table
from conveyor.data._profile import EXACT_MAX_ROWS, ReferenceProfile, build_profile, reference_profile
from conveyor.data._schema import Schema
from conveyor.data._schema_infer import infer_schema
from conveyor.data._shared_profile import fetch_reference_profiles, publish_reference_profile
from conveyor.data._shop import ShopConfig, ShopDrift, ShopWorld
from conveyor.data._sketches import DEFAULT_KLL_K, kll_rank_error, scan_dataset, stream_profile
from conveyor.data._spark_drift import spark_drift
from conveyor.data._spark_sketches import TABLE_PREFIX, read_spark_source, spark_profile
from conveyor.data._spark_validate import spark_validate
from conveyor.data._tabular import generate_classification
from conveyor.data._validate import RuleFailure, ValidationReport, validate_table

__all__ = [
    "DEFAULT_KLL_K",
    "EXACT_MAX_ROWS",
    "TABLE_PREFIX",
    "CategoricalColumn",
    "ColumnDrift",
    "Distribution",
    "DriftReport",
    "DriftTest",
    "DriftTestResult",
    "NumericColumn",
    "ReferenceProfile",
    "RuleFailure",
    "Schema",
    "ShopConfig",
    "ShopDrift",
    "ShopWorld",
    "ValidationReport",
    "build_profile",
    "detect_drift",
    "drift_test",
    "fetch_reference_profiles",
    "generate_classification",
    "infer_schema",
    "kll_rank_error",
    "publish_reference_profile",
    "read_spark_source",
    "read_table",
    "reference_profile",
    "scan_dataset",
    "spark_drift",
    "spark_profile",
    "spark_validate",
    "stream_drift",
    "stream_profile",
    "validate_table",
    "warm_up",
    "write_drift_html",
]
