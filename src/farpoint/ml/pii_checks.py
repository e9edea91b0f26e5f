"""Checks of one value: is this text a card number, an IBAN, a national identifier, a
phone number, an e-mail or IP address, a precise coordinate pair, a person's name?

Each is a pure function of one string, with no view of the column it came from; how
many values must pass, and what the column's name adds, is decided in `farpoint.ml.pii`.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal, InvalidOperation

from farpoint.ml.pii_words import NOT_NAME_WORDS, PARTICLES, TITLES, fold

__all__ = [
    "PRECISE_DECIMALS",
    "SCHEMES",
    "card_brand",
    "card_digits",
    "decimals",
    "iban_compact",
    "iban_valid",
    "id_shaped",
    "ip_version",
    "is_age",
    "is_code",
    "is_date",
    "is_email",
    "is_uuid",
    "luhn_valid",
    "name_words",
    "national_id_scheme",
    "phone_number",
    "precise_pair",
    "schemes",
]

# -- payment cards, bank accounts, national identifiers ------------------------------------


def luhn_valid(digits: str) -> bool:
    """True when a string of digits passes the Luhn (mod 10) check."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# (prefix length, first prefix, last prefix, allowed lengths, brand)
_IIN: tuple[tuple[int, int, int, tuple[int, ...], str], ...] = (
    (1, 4, 4, (13, 16, 19), "Visa"),
    (2, 51, 55, (16,), "Mastercard"),
    (4, 2221, 2720, (16,), "Mastercard"),
    (2, 34, 34, (15,), "American Express"),
    (2, 37, 37, (15,), "American Express"),
    (4, 6011, 6011, (16, 17, 18, 19), "Discover"),
    (3, 644, 649, (16, 17, 18, 19), "Discover"),
    (2, 65, 65, (16, 17, 18, 19), "Discover"),
    (4, 3528, 3589, (16, 17, 18, 19), "JCB"),
    (3, 300, 305, (14, 15, 16, 17, 18, 19), "Diners Club"),
    (2, 36, 36, (14, 15, 16, 17, 18, 19), "Diners Club"),
    (2, 38, 39, (16, 17, 18, 19), "Diners Club"),
    (2, 62, 62, (16, 17, 18, 19), "UnionPay"),
    (2, 50, 50, (12, 13, 14, 15, 16, 17, 18, 19), "Maestro"),
    (2, 56, 58, (12, 13, 14, 15, 16, 17, 18, 19), "Maestro"),
)
_CARD_TEXT = re.compile(r"\d[\d \-]{11,22}\d")


def card_digits(text: str) -> str | None:
    """The 13 to 19 digits of text written like a card number, spaces and dashes dropped."""
    if not _CARD_TEXT.fullmatch(text):
        return None
    digits = text.replace(" ", "").replace("-", "")
    return digits if 13 <= len(digits) <= 19 else None


def card_brand(text: str) -> str | None:
    """The card network of a valid payment card number (Luhn and issuer prefix), else None."""
    digits = card_digits(text.strip())
    if digits is None or not luhn_valid(digits):
        return None
    for size, first, last, lengths, brand in _IIN:
        if first <= int(digits[:size]) <= last and len(digits) in lengths:
            return brand
    return None


_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN_SHAPE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")


def iban_compact(text: str) -> str | None:
    """Text in upper case without spaces or dashes, if it then has the shape of an IBAN."""
    compact = text.replace(" ", "").replace("-", "").upper()
    return compact if _IBAN_SHAPE.fullmatch(compact) else None


def iban_valid(text: str) -> bool:
    """True for an IBAN with its country's length and a passing mod-97 check."""
    compact = iban_compact(text.strip())
    if compact is None or _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


_SSN = re.compile(r"(\d{3})([- ]?)(\d{2})\2(\d{4})")
_SSN_ADVERTISED = {"078051120", "219099999", "457555462"}  # printed on sample cards
_NINO = re.compile(
    r"(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]"
)
_NIR = re.compile(
    r"([1-478]) ?(\d{2}) ?(0[1-9]|1[0-2]|[2-9]\d) ?(\d{2}|2[AB]) ?(\d{3}) ?(\d{3}) ?(\d{2})"
)
_DNI = re.compile(r"([XYZ]?)(\d{7,8})-?([A-Z])")
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_BSN_DOTTED = re.compile(r"\d{4}\.\d{2}\.\d{3}")
_NHS_SHAPE = re.compile(r"\d{3}([ \-]?)\d{3}\1\d{4}")
SCHEMES = {
    "ssn": "US SSN",
    "ssn_digits": "US SSN",
    "nino": "UK NINO",
    "nir": "French NIR",
    "dni": "Spanish DNI/NIE",
    "bsn": "Dutch BSN",
    "nhs": "UK NHS number",
}


def _ssn(text: str) -> str | None:
    m = _SSN.fullmatch(text)
    if m is None:
        return None
    area, group, serial = int(m[1]), int(m[3]), int(m[4])
    if area == 0 or area == 666 or area >= 900 or group == 0 or serial == 0:
        return None
    if m[1] + m[3] + m[4] in _SSN_ADVERTISED:
        return None
    return "ssn" if m[2] else "ssn_digits"


def _nir(text: str) -> bool:
    m = _NIR.fullmatch(text)
    if m is None:
        return False
    body = "".join(m.groups()[:6]).replace("2A", "19").replace("2B", "18")
    return 97 - int(body) % 97 == int(m[7])


def _bsn(digits: str) -> bool:
    if len(digits) == 8:
        digits = "0" + digits
    if len(digits) != 9 or not digits.isdigit() or int(digits) == 0:
        return False
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True))
    return (total - int(digits[8])) % 11 == 0


def _nhs(digits: str) -> bool:
    if len(digits) != 10 or not digits.isdigit():
        return False
    check = 11 - sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True)) % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def _dni(text: str) -> bool:
    m = _DNI.fullmatch(text)
    if m is None or (m[1] and len(m[2]) != 7) or (not m[1] and len(m[2]) != 8):
        return False
    number = int(str("XYZ".index(m[1])) + m[2]) if m[1] else int(m[2])
    return _DNI_LETTERS[number % 23] == m[3]


def schemes(text: str) -> list[str]:
    """The keys of `SCHEMES` whose check text passes; `national_id_scheme` names the first."""
    upper = text.upper()
    found = []
    if _NINO.fullmatch(upper):
        found.append("nino")
    if _nir(upper):
        found.append("nir")
    if _dni(upper):
        found.append("dni")
    ssn = _ssn(text)
    if _bsn(text.replace(".", "") if _BSN_DOTTED.fullmatch(text) else text):
        found.append("bsn")
    if _NHS_SHAPE.fullmatch(text) and _nhs(re.sub(r"[ \-]", "", text)):
        found.append("nhs")
    if ssn:
        found.append(ssn)
    return found


def national_id_scheme(text: str) -> str | None:
    """Which national identifier a string is a valid instance of, if any.

    US SSN (invalid ranges and advertised numbers excluded), UK NINO, French NIR (key),
    Spanish DNI/NIE (check letter), Dutch BSN (11-test), UK NHS number (mod 11).
    """
    found = schemes(text.strip())
    return SCHEMES[found[0]] if found else None


def id_shaped(text: str) -> bool:
    """True for 7 to 19 letters, digits, spaces or dashes, as national identifiers are written."""
    return re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 \-]{6,18}", text) is not None


_WITH_PORT = re.compile(r"\[([0-9A-Fa-f:.]+)\]:\d{1,5}|(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}")


def ip_version(text: str) -> int | None:
    """4 or 6 for an IP address, bracketed or with a port as servers log it, else None."""
    with_port = _WITH_PORT.fullmatch(text)  # as web servers log peers
    candidate = (with_port[1] or with_port[2]) if with_port else text.strip("[]")
    if ":" not in candidate and "." not in candidate:
        return None
    try:
        return ipaddress.ip_address(candidate).version
    except ValueError:
        return None


# -- contact details, places, people, codes ------------------------------------------------

_EMAIL_VALUE = re.compile(
    r"(?:[^<>@]*<)?(?:mailto:)?[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}>?",
    re.ASCII,
)


def is_email(text: str) -> bool:
    """True for an e-mail address, bare, as `mailto:` or as `Name <address>`."""
    return _EMAIL_VALUE.fullmatch(text) is not None


_PHONE_TEXT = re.compile(r"\+?[\d\s().\-/]{6,}")
_EXTENSION = re.compile(r"\s*(?:x|ext\.?|extension|#)\s*\d{1,6}$", re.IGNORECASE)
_DATE = re.compile(
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[T ][\d:.]+Z?)?|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
    r"|(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
)
_THOUSANDS = re.compile(r"\d{1,3}(?:[ .]\d{3})+")


def is_date(text: str) -> bool:
    """True for a date in digits: 2024-03-01 (a time may follow), 01/03/2024, 20240301."""
    return _DATE.fullmatch(text) is not None


def phone_number(text: str) -> tuple[int, bool] | None:
    """(digit count, formatted) for text that could be a phone number, else None."""
    t = _EXTENSION.sub("", text)
    if not _PHONE_TEXT.fullmatch(t) or _DATE.fullmatch(t) or _SSN.fullmatch(t):
        return None
    digits = sum(c.isdigit() for c in t)
    if not 7 <= digits <= 15 or t.count("(") != t.count(")"):
        return None
    groups = [g for g in re.split(r"[\s.\-/()]+", t.lstrip("+")) if g]
    if "." in t and set(t) <= set("0123456789.") and (len(groups) < 3 or ip_version(t)):
        return None  # a decimal number or an IPv4 address
    if digits == 13 and _isbn13(t):
        return None
    if not t.startswith("+") and _THOUSANDS.fullmatch(t):
        return None  # 12 345 678 is a count, written the French way
    return digits, t.startswith("+") or "(" in t or len(groups) >= 2


def _isbn13(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    if digits[:3] not in ([9, 7, 8], [9, 7, 9]):
        return False
    return sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0


_PAIR = re.compile(r"\(?\s*(-?\d{1,3}\.\d+)\s*[,; ]\s*(-?\d{1,3}\.\d+)\s*\)?")
_WKT_POINT = re.compile(r"POINT\s*\(\s*(-?\d{1,3}\.\d+)\s+(-?\d{1,3}\.\d+)\s*\)", re.IGNORECASE)
PRECISE_DECIMALS = 4  # 1e-4 degree is about 11 m: a building, not a neighbourhood


def decimals(text: str) -> int:
    """How many decimal places a number written as text carries, trailing zeros aside."""
    if "e" in text.lower():
        try:
            text = format(Decimal(text), "f")
        except InvalidOperation:
            return 0
    return len(text.partition(".")[2].rstrip("0")) if "." in text else 0


def precise_pair(text: str) -> bool:
    """True for a latitude, longitude pair (or WKT point) given to about 11 m or finer."""
    m = _PAIR.fullmatch(text)
    lat_first = True
    if m is None:
        m = _WKT_POINT.fullmatch(text)
        lat_first = False  # WKT writes x (longitude) first
    if m is None:
        return False
    a, b = float(m[1]), float(m[2])
    lat, lon = (a, b) if lat_first else (b, a)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return False
    return min(decimals(m[1]), decimals(m[2])) >= PRECISE_DECIMALS


def name_words(text: str) -> list[str] | None:
    """The words of a person's name, given name first, or None if text is not one."""
    if any(c.isdigit() for c in text):
        return None
    family, comma, given = text.partition(",")
    words = (given.split() + family.split()) if comma else text.split()
    if not 1 <= len(words) <= 4:
        return None
    words = [w for w in words if fold(w).rstrip(".") not in TITLES]
    if not words:
        return None
    shouting = text.isupper()
    real = 0
    for w in words:
        low = fold(w)
        if low in PARTICLES or re.fullmatch(r"[A-Z]\.?", w):
            continue
        core = w.replace("-", "").replace("'", "").replace("’", "")
        if not core.isalpha() or not w[0].isupper() or low in NOT_NAME_WORDS:
            return None
        if core.isupper() and not shouting:
            return None  # an acronym, not a name
        real += 1
    return words if real else None


_ID_LIKE = re.compile(r"[^\s]{1,64}")


def is_code(text: str) -> bool:
    """True for one run of up to 64 characters without spaces, as codes are written."""
    return _ID_LIKE.fullmatch(text) is not None


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_uuid(text: str) -> bool:
    """True for a UUID in its canonical 8-4-4-4-12 hex form."""
    return _UUID.fullmatch(text) is not None


_AGE_BAND = re.compile(r"\d{1,3}\s*[-–]\s*\d{1,3}|\d{1,3}\s*\+|[<>]=?\s*\d{1,3}")


def is_age(text: str) -> bool:
    """True for a number from 0 to 120 or an age band (`30-39`, `65+`, `<18`)."""
    try:
        return 0 <= float(text) <= 120
    except ValueError:
        return bool(_AGE_BAND.fullmatch(text))
