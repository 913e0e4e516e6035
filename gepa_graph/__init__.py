"""gepa_graph: GEPA reflective prompt evolution for LangGraph agents."""

from gepa_graph.candidate import Candidate
from gepa_graph.config import OptimizeConfig
from gepa_graph.example import Example
from gepa_graph.metric import Score
from gepa_graph.result import CandidateRecord, Result
from gepa_graph.system import FunctionSystem, Rollout, System, Trace, TraceRecord, Usage

__all__ = [
    "Candidate",
    "CandidateRecord",
    "Example",
    "FunctionSystem",
    "OptimizeConfig",
    "Result",
    "Rollout",
    "Score",
    "System",
    "Trace",
    "TraceRecord",
    "Usage",
]
