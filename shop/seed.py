"""The catalogue the shop starts with: twelve shoes, each in a run of sizes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select, text

from shop.tables import products, stock

CURRENCY = "EUR"
SIZES = ("38", "39", "40", "41", "42", "43", "44", "45")
# Enough pairs for demos and load tests, few enough that selling out can be seen.
PAIRS_PER_SIZE = 400


@dataclass(frozen=True)
class Shoe:
    sku: str
    name: str
    brand: str
    colour: str
    hex: str
    price_cents: int
    description: str


CATALOGUE = (
    Shoe(
        "TRL-001",
        "Ridge Runner",
        "Alpenlauf",
        "Moss",
        "#5b7b3a",
        12900,
        "A trail shoe with a lugged sole for wet roots and loose gravel.",
    ),
    Shoe(
        "TRL-002",
        "Scree Dancer",
        "Alpenlauf",
        "Slate",
        "#4a5560",
        13900,
        "Light and nimble, with a rock plate for long alpine days.",
    ),
    Shoe(
        "RUN-001",
        "Tempo One",
        "Velocita",
        "Coral",
        "#ef6f5e",
        11900,
        "A springy road trainer for intervals and race day.",
    ),
    Shoe(
        "RUN-002",
        "Long Haul",
        "Velocita",
        "Midnight",
        "#1f2a44",
        10900,
        "Cushioned for marathon miles, firm enough to stay honest.",
    ),
    Shoe(
        "CAS-001",
        "Canal Walk",
        "Grachten",
        "Oat",
        "#d8c7a3",
        8900,
        "A canvas sneaker for cobbles, bikes and terraces.",
    ),
    Shoe(
        "CAS-002",
        "Harbour Low",
        "Grachten",
        "Navy",
        "#23395d",
        9400,
        "Suede low-top with a gum sole that ages well.",
    ),
    Shoe(
        "BOT-001",
        "Polder Boot",
        "Dijkstra",
        "Tan",
        "#a8713a",
        18900,
        "Waxed leather boot, Goodyear-welted, resoleable for decades.",
    ),
    Shoe(
        "BOT-002",
        "Storm Chelsea",
        "Dijkstra",
        "Black",
        "#202020",
        16900,
        "Elastic-sided, water-resistant, at home in the office and the rain.",
    ),
    Shoe(
        "CRT-001",
        "Baseline",
        "Servé",
        "White",
        "#f2f2ee",
        9900,
        "A clean leather court shoe with a cupsole that grips.",
    ),
    Shoe(
        "CRT-002",
        "Clay Master",
        "Servé",
        "Terracotta",
        "#c0593a",
        11400,
        "Herringbone outsole built for sliding on clay.",
    ),
    Shoe(
        "SAN-001",
        "Dune Strider",
        "Zandvoort",
        "Sand",
        "#e3c996",
        6900,
        "A strappy sandal with a contoured cork footbed.",
    ),
    Shoe(
        "SAN-002",
        "Tide Slide",
        "Zandvoort",
        "Teal",
        "#2a8c88",
        4900,
        "A one-piece foam slide for beach, pool and post-run.",
    ),
    Shoe(
        "HIK-001",
        "Fjell Mid",
        "Nordkam",
        "Rust",
        "#9c4a24",
        15900,
        "A mid-cut hiker with a waterproof membrane and a stiff shank.",
    ),
    Shoe(
        "KID-001",
        "Puddle Jumper",
        "Nordkam",
        "Yellow",
        "#f2c230",
        5900,
        "Rubber-toed and easy to pull on, for small feet and big puddles.",
    ),
)


def seed_if_empty(conn: Connection) -> bool:
    """Fill an empty catalogue; returns True when it did. Runs inside the caller's transaction."""
    if conn.dialect.name == "postgresql":
        # Every gunicorn worker seeds at start: one fills the catalogue, the others wait here
        # and then find it full. (SQLite's write transactions are serialised already.)
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('shoeshop:seed'))"))
    if conn.execute(select(func.count()).select_from(products)).scalar_one() > 0:
        return False
    conn.execute(
        insert(products),
        [
            {
                "sku": shoe.sku,
                "name": shoe.name,
                "brand": shoe.brand,
                "colour": shoe.colour,
                "hex": shoe.hex,
                "description": shoe.description,
                "price_cents": shoe.price_cents,
                "currency": CURRENCY,
                "position": position,
            }
            for position, shoe in enumerate(CATALOGUE)
        ],
    )
    conn.execute(
        insert(stock),
        [
            {"sku": shoe.sku, "size": size, "available": PAIRS_PER_SIZE, "reserved": 0, "sold": 0}
            for shoe in CATALOGUE
            for size in SIZES
        ],
    )
    return True
