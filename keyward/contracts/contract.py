"""What a contract is: a Temporal name and the types that cross it.

Workflows call activities through an :class:`ActivityContract`, activities declare
``@activity.defn(name=CONTRACT.name)`` with the contract's argument and result types, and
starters, schedules and the usage reporter start workflows through a
:class:`WorkflowContract`. Neither side imports the other: both import these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class ActivityContract(Generic[ArgT, ResultT]):
    """An activity as its caller and its implementation both see it: one argument in,
    one result out."""

    #: The activity type name in Temporal (and in every recorded history: never rename).
    name: str
    arg_type: type[ArgT]
    result_type: type[ResultT]


@dataclass(frozen=True)
class WorkflowContract(Generic[ArgT, ResultT]):
    """A workflow as its starters and its definition both see it."""

    #: The workflow type name in Temporal (schedules and histories name it: never rename).
    name: str
    arg_type: type[ArgT]
    result_type: type[ResultT]


@dataclass(frozen=True)
class SignalContract(Generic[ArgT]):
    name: str
    arg_type: type[ArgT]


@dataclass(frozen=True)
class QueryContract(Generic[ResultT]):
    name: str
    result_type: type[ResultT]
