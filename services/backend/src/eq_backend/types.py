"""Value types shared by payloads and routes: ids that fit the database's integer columns.

An id outside PostgreSQL's `integer` range is a 422, never a database error.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.params import PathParameter

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

DbInt = Annotated[int, msgspec.Meta(ge=INT32_MIN, le=INT32_MAX)]
PathId = Annotated[int, PathParameter(ge=INT32_MIN, le=INT32_MAX)]
