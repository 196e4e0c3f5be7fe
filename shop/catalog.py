"""Reading the catalogue: products with the pairs left in each size."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from shop.tables import products, stock


def list_products(conn: Connection) -> list[dict[str, Any]]:
    sizes = _sizes_by_sku(conn)
    rows = conn.execute(select(products).order_by(products.c.position)).mappings()
    return [_product_json(row, sizes.get(row["sku"], [])) for row in rows]


def get_product(conn: Connection, sku: str) -> dict[str, Any] | None:
    row = conn.execute(select(products).where(products.c.sku == sku)).mappings().first()
    if row is None:
        return None
    return _product_json(row, _sizes_by_sku(conn, sku).get(sku, []))


def _sizes_by_sku(conn: Connection, sku: str | None = None) -> dict[str, list[dict[str, Any]]]:
    query = select(stock.c.sku, stock.c.size, stock.c.available)
    if sku is not None:
        query = query.where(stock.c.sku == sku)
    sizes: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(query):
        sizes.setdefault(row.sku, []).append({"size": row.size, "available": row.available})
    for entries in sizes.values():
        entries.sort(key=lambda entry: float(entry["size"]))
    return sizes


def _product_json(row: Any, sizes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "sku": row["sku"],
        "name": row["name"],
        "brand": row["brand"],
        "colour": row["colour"],
        "hex": row["hex"],
        "description": row["description"],
        "price_cents": row["price_cents"],
        "currency": row["currency"],
        "sizes": sizes,
    }
