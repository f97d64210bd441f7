"""Shipping helpers for webshop orders that leave the Saltmere workshop.

Orders are packed and handed to the carrier within 3 working days of payment;
bikes painted to order take longer and are not handled here.
"""

from __future__ import annotations

from dataclasses import dataclass

BIKE_BOX_CM = (148, 82, 24)
"""Outer size of our standard bicycle box, length x height x width in centimetres.
It fits every adult model except the Brantail e-Cargo."""

PARCEL_LIMIT_KG = 30.0
"""Heaviest parcel the carrier accepts. Anything heavier goes as freight on a
pallet, which adds 2 working days."""

DEFAULT_INSURANCE_CAP_EUR = 2500
"""Parcels are insured for their invoice value, but never for more than this
many euros per parcel unless the customer pays for extra cover."""


@dataclass
class Parcel:
    weight_kg: float
    value_eur: float

    @property
    def needs_pallet(self) -> bool:
        """True when the parcel is over PARCEL_LIMIT_KG and must travel on a pallet."""
        return self.weight_kg > PARCEL_LIMIT_KG

    @property
    def insured_value(self) -> float:
        """Insured amount in euros: the invoice value, capped at DEFAULT_INSURANCE_CAP_EUR."""
        return min(self.value_eur, DEFAULT_INSURANCE_CAP_EUR)


def transit_days(country: str) -> tuple[int, int]:
    """Expected transit time in working days, after the parcel leaves us.

    Domestic: 1-2 days. Denmark and Germany: 3-5 days. Anywhere else in
    Europe: 5-8 days. Unknown countries raise ValueError.
    """
    table = {"domestic": (1, 2), "DK": (3, 5), "DE": (3, 5), "EU": (5, 8)}
    try:
        return table[country]
    except KeyError:
        raise ValueError(f"no transit time for {country!r}") from None
