"""The OpenAPI description of the REST API, served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["OPENAPI"]


def _get(summary: str, params: list[dict[str, Any]], schema: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": params,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{schema}"}
                        }
                    },
                },
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
            },
        }
    }


def _query(name: str, minimum: int, maximum: int, about: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": about,
        "schema": {"type": "integer", "minimum": minimum, "maximum": maximum},
    }


_SYMBOL: Final = {
    "name": "symbol",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}
_SIGNED: Final = [
    {"name": h, "in": "header", "required": True, "schema": {"type": "string"}}
    for h in ("X-Cux-Key", "X-Cux-Timestamp", "X-Cux-Signature")
]
_LEVELS: Final = {
    "type": "array",
    "items": {
        "type": "array",
        "items": {"type": "integer"},
        "minItems": 2,
        "maxItems": 2,
    },
}
_INT: Final = {"type": "integer"}
_INT_OR_NULL: Final = {"type": ["integer", "null"]}

OPENAPI: Final[dict[str, Any]] = {
    "openapi": "3.1.0",
    "info": {
        "title": "cux REST API",
        "version": "1",
        "description": "Reference data, market history and accounts of a cux "
        "exchange. Money is in integer µcr, quantities in lots, prices in µcr per "
        "lot, times in ns since the epoch. Trading is on the websocket /ws.",
    },
    "paths": {
        "/api/v1/instruments": _get("The listed instruments", [], "Instruments"),
        "/api/v1/book/{symbol}": _get(
            "A book snapshot with its seq and checksum",
            [_SYMBOL, _query("depth", 1, 10_000, "levels per side; all if absent")],
            "Book",
        ),
        "/api/v1/trades/{symbol}": _get(
            "Recent trades, oldest first",
            [_SYMBOL, _query("limit", 1, 1000, "how many (default 100)")],
            "Trades",
        ),
        "/api/v1/candles/{symbol}": _get(
            "Recent candles, oldest first",
            [
                _SYMBOL,
                _query("interval", 1, 86_400, "seconds per candle (default 60)"),
                _query("limit", 1, 1000, "how many (default 100)"),
            ],
            "Candles",
        ),
        "/api/v1/account": _get("The signed-in account's balances", _SIGNED, "Account"),
        "/api/v1/orders": _get(
            "The signed-in account's open orders",
            [
                *_SIGNED,
                {
                    "name": "symbol",
                    "in": "query",
                    "required": False,
                    "description": "only the orders of this instrument; one that "
                    "is not listed is UNKNOWN_SYMBOL (404)",
                    "schema": {"type": "string"},
                },
            ],
            "Orders",
        ),
    },
    "components": {
        "responses": {
            "Error": {
                "description": "A coded error",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}
                    }
                },
            }
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
            "Instruments": {
                "type": "object",
                "properties": {
                    "instruments": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "symbol": {"type": "string"},
                                "resource_class": {"type": "string"},
                                "kind": {"enum": ["spot", "future"]},
                                "lot_cu": _INT,
                                "tick": _INT,
                                "taker_fee_bps": _INT,
                                "maker_fee_bps": _INT,
                                "phase": {"type": "string"},
                                "last_price": _INT_OR_NULL,
                                "start": _INT_OR_NULL,
                                "end": _INT_OR_NULL,
                                "gate_at": _INT_OR_NULL,
                                "settlement": _INT_OR_NULL,
                            },
                        },
                    }
                },
            },
            "Book": {
                "type": "object",
                "properties": {
                    "symbol": {"type": "string"},
                    "seq": _INT,
                    "bids": _LEVELS,
                    "asks": _LEVELS,
                    "checksum": _INT,
                },
            },
            "Trades": {
                "type": "object",
                "properties": {
                    "symbol": {"type": "string"},
                    "trades": {"type": "array", "items": {"type": "object"}},
                },
            },
            "Candles": {
                "type": "object",
                "properties": {
                    "symbol": {"type": "string"},
                    "candles": {"type": "array", "items": {"type": "object"}},
                },
            },
            "Account": {
                "type": "object",
                "properties": {
                    "account": {"type": "string"},
                    "roles": {"type": "array", "items": {"type": "string"}},
                    "available": _INT,
                    "held": _INT,
                    "escrow": _INT,
                },
            },
            "Orders": {
                "type": "object",
                "properties": {
                    "orders": {"type": "array", "items": {"type": "object"}}
                },
            },
        },
    },
}
