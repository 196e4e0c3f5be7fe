"""The JSON API's error shape: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

from flask import Response, jsonify


def error_response(
    status: int, code: str, message: str, fields: dict[str, str] | None = None
) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message, "fields": fields or {}}}), status
