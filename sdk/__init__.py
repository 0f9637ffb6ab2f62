"""jan.sdk: the public, typed surface for extension and assistant authors.

It depends on nothing else of this project. Extensions import from here and only here.
"""

from .errors import ApiError, Conflict, InvalidRequest, NotFound, Overloaded, Unavailable
from .extension import Context, Disposable, EventBus, Extension, Services
from .hookspecs import hookimpl
from .storage import Folder, check_id

__all__ = [
    "ApiError", "Conflict", "InvalidRequest", "NotFound", "Overloaded", "Unavailable",
    "Context", "Disposable", "EventBus", "Extension", "Services", "hookimpl",
    "Folder", "check_id",
]

__version__ = "0.1.0"
