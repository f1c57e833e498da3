"""Tool handlers: how the driver calls them, and the context they may ask for.

A handler is called with the request's ``args`` as keyword arguments; a
handler that also wants to know which request it serves declares a
parameter annotated ``ToolContext`` (any name), as pydantic-ai's tools take
a ``RunContext``. Sync handlers run in a worker thread, so a slow one does
not stall the call.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from attrs import field, frozen

if TYPE_CHECKING:
    from blackbox_protocol._call import Call

__all__ = ["ToolContext", "ToolHandler", "call_handler", "context_parameter"]

#: A tool: called with the request's ``args`` as keyword arguments (and a
#: ``ToolContext`` if it asks for one); its return value (any JSON) is the
#: result, an exception an error result. Sync handlers run in a worker thread.
ToolHandler = Callable[..., Any]


@frozen
class ToolContext:
    """What a tool handler may know of the request it serves."""

    #: The request's id, as the service sent it.
    id: str
    #: The tool's name.
    name: str
    #: The conversation (for its transcript, ``conversation_id``, ...).
    call: Call = field(repr=False)


def context_parameter(handler: ToolHandler) -> str | None:
    """The name of ``handler``'s ``ToolContext`` parameter, or ``None`` when it has none."""
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):  # a builtin, or a callable without a signature
        return None
    try:
        hints = typing.get_type_hints(handler)
    except Exception:  # an annotation that does not resolve: read it as written
        hints = {}
    for name, parameter in signature.parameters.items():
        annotation = hints.get(name, parameter.annotation)
        if annotation is ToolContext or (
            isinstance(annotation, str) and annotation.rsplit(".", 1)[-1] == "ToolContext"
        ):
            return name
    return None


async def call_handler(
    handler: ToolHandler, args: Mapping[str, Any], context: tuple[str, ToolContext] | None
) -> Any:
    """Call ``handler`` with ``args`` (and the context under its name), in a thread if sync."""
    kwargs = dict(args)
    if context is not None:
        name, value = context
        kwargs[name] = value
    if inspect.iscoroutinefunction(handler):
        return await handler(**kwargs)
    result = await anyio.to_thread.run_sync(
        functools.partial(handler, **kwargs), abandon_on_cancel=True
    )
    return await result if inspect.isawaitable(result) else result
