"""The OpenAI-compatible test server (fault injection, admin routes); not part of the package."""

from .faults import FaultPlan
from .server import OpenAICompatibleServer

__all__ = ["FaultPlan", "OpenAICompatibleServer"]
