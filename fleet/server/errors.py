"""The fleet server's typed failure: `ApiProblem` becomes a wire `ApiError` response."""

from __future__ import annotations


class ApiProblem(Exception):
    """A request the server refuses: HTTP status, stable code, a sentence for people."""

    def __init__(self, status: int, code: str, detail: str = "", *,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail[:500]
        self.headers = headers or {}  # e.g. Retry-After
