"""``conveyor judge``: Conveyor's canary verdict over HTTP for Argo Rollouts and Flagger."""

from conveyor.judge._app import create_judge_app
from conveyor.judge._verdict import Judgement, judge_canary

__all__ = ["Judgement", "create_judge_app", "judge_canary"]
