"""Choosing a carrier and minting a tracking number: pure functions of the shipment."""

from __future__ import annotations

import hashlib

# Domestic parcels go with the national post, the rest with an international courier.
HOME_COUNTRY = "NL"
DOMESTIC_CARRIER = "PostNL"
INTERNATIONAL_CARRIER = "DHL Express"


def carrier_for(country: str) -> str:
    return DOMESTIC_CARRIER if country.upper() == HOME_COUNTRY else INTERNATIONAL_CARRIER


def tracking_number(carrier: str, shipment_id: str) -> str:
    """A carrier-style number derived from the shipment id, so a retry mints the same one."""
    digest = hashlib.sha256(shipment_id.encode()).hexdigest().upper()
    prefix = "3S" if carrier == DOMESTIC_CARRIER else "JD"
    return f"{prefix}{digest[:14]}"
