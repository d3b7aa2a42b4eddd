"""ISO 4217 currency codes and their validation.

:data:`ISO_4217` holds the active alphabetic codes of national currencies and
fund codes (precious metals, testing codes and the SDR basket units are left
out: nobody pays for an order in them).  :func:`validate_currency` is the one
check every currency field of the engine goes through.
"""

from __future__ import annotations

from gateway.rules.errors import InvalidCurrency

_CODES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV
BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK
DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL
HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR
MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND
TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD
XCG XOF XPF YER ZAR ZMW ZWG ZWL
"""
ISO_4217: frozenset[str] = frozenset(_CODES.split())


def is_currency(code: str) -> bool:
    """Whether ``code`` is an ISO 4217 currency code (exact, upper case)."""
    return code in ISO_4217


def validate_currency(code: str) -> str:
    """Return ``code`` if it is an ISO 4217 currency code, else raise :class:`InvalidCurrency`."""
    if not is_currency(code):
        raise InvalidCurrency(code)
    return code
