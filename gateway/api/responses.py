"""``FastJSONResponse``: JSON bodies rendered by pydantic-core's serializer.

The event routes answer with dicts already in JSON form (stored answers, dumped
models); ``pydantic_core.to_json`` writes them a few times faster than the
standard library's encoder that Starlette's ``JSONResponse`` uses, with the same
compact separators and UTF-8 output.
"""

from __future__ import annotations

from typing import Any

import pydantic_core
from fastapi.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    """A ``JSONResponse`` whose body pydantic-core serializes (a non-finite float, which
    no stored answer holds, is written as ``null`` rather than as invalid JSON)."""

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content, inf_nan_mode="null")
