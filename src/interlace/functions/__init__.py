"""AI functions: typed, versioned endpoints over models, with validated structured output.

A function (:mod:`~interlace.functions.definition`) is loaded from ``functions:`` in the configuration,
kept by version in the :mod:`~interlace.functions.registry`, run by the
:mod:`~interlace.functions.runner` through the same gate and router as every gateway call (the chat
contract in :mod:`~interlace.functions.structured`), and checked against its golden cases by
:mod:`~interlace.functions.evaluation`.
"""

from interlace.functions.definition import FunctionDefinition
from interlace.functions.registry import FunctionRegistry
from interlace.functions.runner import FunctionResult, FunctionRunner

__all__ = ["FunctionDefinition", "FunctionRegistry", "FunctionResult", "FunctionRunner"]
