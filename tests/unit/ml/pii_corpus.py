"""A labelled synthetic corpus for measuring PII detection: columns with names, values and
the kind a careful person would assign (None: nothing to flag).

Seeded and offline: the values are generated here with their own check-digit code, not
with the detector's, so a bug in one does not hide in the other. Each column says why it
is in the corpus; hard negatives are the columns a naive detector gets wrong (prices,
dates, 16-digit numbers failing Luhn, IBANs failing mod-97, coarse coordinates, version
strings, city and product names, `phone_count`, `race_time_s`, `vehicle_age`).

    from pii_corpus import corpus
    for column in corpus():
        column.name, column.values, column.label
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import random
import string
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["KINDS", "ROLE_OF", "LabelledColumn", "Scores", "corpus", "holdout", "score"]

ROLE_OF = {
    "email": "pii",
    "phone": "pii",
    "national_id": "pii",
    "card_number": "pii",
    "iban": "pii",
    "ip_address": "pii",
    "coordinates": "pii",
    "person_name": "pii",
    "person_identifier": "pii",
    "birth_date": "pii",
    "protected_attribute": "protected",
    "identifier": "id",
}
KINDS = tuple(ROLE_OF)


@dataclass(frozen=True)
class LabelledColumn:
    name: str
    values: list[object]
    label: str | None  # the expected Finding.kind; None when nothing should be flagged
    dtype: str  # the Arrow type name the column would have
    why: str


def _split(text: str, sep: str | None = None) -> list[str]:
    return text.split(sep)


@dataclass
class Scores:
    """Counts per kind: a finding of the right kind is a true positive; a finding of the
    wrong kind is a false positive for it and a false negative for the right one."""

    tp: dict[str, int] = field(default_factory=dict)
    fp: dict[str, int] = field(default_factory=dict)
    fn: dict[str, int] = field(default_factory=dict)
    columns: int = 0
    mistakes: list[tuple[str, str | None, str | None]] = field(default_factory=list)

    def add(self, name: str, want: str | None, got: str | None) -> None:
        self.columns += 1
        if want == got:
            if want is not None:
                self.tp[want] = self.tp.get(want, 0) + 1
            return
        self.mistakes.append((name, want, got))
        if got is not None:
            self.fp[got] = self.fp.get(got, 0) + 1
        if want is not None:
            self.fn[want] = self.fn.get(want, 0) + 1

    def figures(self, kinds: Iterable[str] | None = None) -> dict[str, float | int]:
        """precision, recall, f1 and support over `kinds` (all by default), micro-averaged."""
        chosen = set(KINDS if kinds is None else kinds)
        tp = sum(v for k, v in self.tp.items() if k in chosen)
        fp = sum(v for k, v in self.fp.items() if k in chosen)
        fn = sum(v for k, v in self.fn.items() if k in chosen)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}

    def table(self) -> str:
        lines = [f"{'kind':<22}{'support':>8}{'precision':>11}{'recall':>8}{'f1':>7}"]
        rows = [(k, self.figures([k])) for k in KINDS]
        rows.append(("overall", self.figures()))
        sensitive = [k for k in KINDS if ROLE_OF[k] != "id"]
        rows.append(("pii + protected", self.figures(sensitive)))
        for kind, f in rows:
            lines.append(
                f"{kind:<22}{f['support']:>8}{f['precision']:>11.3f}{f['recall']:>8.3f}"
                f"{f['f1']:>7.3f}"
            )
        return "\n".join(lines)


def score(
    columns: Iterable[LabelledColumn], detect: Callable[[LabelledColumn], str | None]
) -> Scores:
    """Run `detect` (column -> predicted kind or None) over labelled columns."""
    scores = Scores()
    for column in columns:
        scores.add(column.name, column.label, detect(column))
    return scores


# Given names: about half are common enough to be on the detector's list, half are not,
# so person-name recall is not measured against the detector's own vocabulary.
_GIVEN = _split(
    "Grace Omar Priya Liam Sofia Kwame Yuki Elena Mateo Fatima Lars Chloe Arjun Nadia Hugo "
    "Aisha Tomasz Ingrid Diego Mei Saoirse Oisin Tadhg Niamh Ragnhild Kaito Yerlan Aigerim "
    "Temitope Nkechi Dalia Ilse Bartholomew Eadric Ximena Thiago Anouk Wiebke Jolanta Radek "
    "Siobhan Cormac Ifeoma Babajide Linnea Oskar Soren Mirela Bogdan Anahita Kaveh Ngaio "
    "Tama Keanu Leilani Haruki Sung Minh Thanh Amaru Citlali Xochitl Ayelen Jaroslav Vesna"
)
_FAMILY = _split(
    "Chen|Okafor|Patel|Garcia|Novak|Tanaka|Rossi|Silva|Fischer|Haddad|Mensah|Kowalski|Dubois|"
    "Andersen|Walker|Lopez|Jensen|Ito|Evans|Baker|Nguyen|Kim|Murphy|O'Brien|McAllister|"
    "van der Berg|De Luca|Abernathy|Nakamura|Oyelaran|Petrovic|Szabo|Lindqvist|Horvath|"
    "Achterberg|Quispe|Mamani|Tuilagi|Whitfield|Ferreira|Castillo|Brennan|Kaur|Banerjee",
    "|",
)
_CITIES = _split(
    "London|Paris|New York|San Francisco|Los Angeles|Berlin|Madrid|Lagos|Nairobi|Sydney|"
    "Florence|Victoria|Charlotte|Austin|Jackson|Salt Lake City|Rio de Janeiro|Buenos Aires|"
    "Cape Town|Kuala Lumpur|Mexico City|Tel Aviv|Hong Kong|Abu Dhabi|St Petersburg",
    "|",
)
_COMPANIES = _split(
    "Northwind Traders|Contoso Ltd|Fabrikam Inc|Globex Corporation|Initech|Umbrella Group|"
    "Acme Foods|Stark Industries|Wayne Enterprises|Blue Harbor Systems|Red Oak Partners|"
    "Silver Line Motors|Green Valley Farms|Sunrise Technologies|Atlas Logistics",
    "|",
)
_PRODUCTS = _split(
    "Ultra Widget Pro|Compact Blender|Trail Runner|Desk Lamp|Wireless Charger|Coffee Grinder|"
    "Yoga Mat|Rain Jacket|Travel Mug|Smart Plug|Noise Cancelling Headphones|Garden Hose",
    "|",
)
_DISHES = _split("Victoria Sponge|Margherita Pizza|Caesar Salad|Beef Wellington|Eggs Benedict", "|")
_COUNTRIES = _split(
    "France|Germany|Nigeria|India|Brazil|Japan|Canada|Mexico|Kenya|Poland|Italy|Spain|"
    "Vietnam|Egypt|Peru|Sweden|Ireland|Ghana|Turkey|Philippines",
    "|",
)
_DOMAINS = ("example.com", "mail.example.org", "corp.example.net", "uni.example.edu", "ex.io")
_WORDS = _split(
    "great service quick delivery item arrived damaged would order again the staff were "
    "friendly waited too long for the results please call back about my appointment thanks"
)


# -- check digits (written independently of farpoint.ml.pii) -------------------------------


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return str((10 - total % 10) % 10)


def _mod97(text: str) -> int:
    return int("".join(str(int(c, 36)) for c in text)) % 97


def _iban(rng: random.Random, spaced: bool) -> str:
    def digits(k: int) -> str:
        return "".join(rng.choices(string.digits, k=k))

    def letters(k: int) -> str:
        return "".join(rng.choices(string.ascii_uppercase, k=k))

    country, bban = rng.choice(
        [
            ("GB", letters(4) + digits(14)),
            ("DE", digits(18)),
            ("FR", digits(23)),
            ("NL", letters(4) + digits(10)),
            ("ES", digits(20)),
            ("IT", letters(1) + digits(22)),
            ("BE", digits(12)),
        ]
    )
    check = 98 - _mod97(bban + country + "00")
    iban = f"{country}{check:02d}{bban}"
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)) if spaced else iban


def _bad_iban(rng: random.Random) -> str:
    good = _iban(rng, spaced=False)
    wrong = (int(good[2:4]) + rng.randint(1, 90)) % 97 + 2  # any other check pair
    return f"{good[:2]}{wrong:02d}{good[4:]}"


_CARD_PREFIXES = (
    ("4", 16), ("4", 16), ("51", 16), ("55", 16), ("2223", 16), ("34", 15), ("37", 15),
    ("6011", 16), ("3530", 16),
)  # fmt: skip


def _card(rng: random.Random) -> str:
    prefix, length = rng.choice(_CARD_PREFIXES)
    body = prefix + "".join(rng.choices(string.digits, k=length - len(prefix) - 1))
    return body + _luhn_digit(body)


def _grouped_card(number: str) -> str:
    if len(number) == 15:
        return f"{number[:4]} {number[4:10]} {number[10:]}"
    return " ".join(number[i : i + 4] for i in range(0, 16, 4))


def _not_luhn(rng: random.Random) -> str:
    body = "4" + "".join(rng.choices(string.digits, k=14))
    return body + str((int(_luhn_digit(body)) + rng.randint(1, 9)) % 10)


def _ssn(rng: random.Random, sep: str = "-") -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}{sep}{rng.randint(1, 99):02d}{sep}{rng.randint(1, 9999):04d}"


def _nino(rng: random.Random, spaced: bool) -> str:
    first = rng.choice("ABCEGHJKLMNOPRSTWXYZ")
    second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    while first + second in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
        second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    d = "".join(rng.choices(string.digits, k=6))
    suffix = rng.choice("ABCD")
    if spaced:
        return f"{first}{second} {d[:2]} {d[2:4]} {d[4:]} {suffix}"
    return f"{first}{second}{d}{suffix}"


def _nir(rng: random.Random) -> str:
    dept = rng.choice([f"{rng.randint(1, 95):02d}", "2A", "2B", "75", "13"])
    body = (
        f"{rng.choice('12')}{rng.randint(0, 99):02d}{rng.randint(1, 12):02d}{dept}"
        f"{rng.randint(1, 990):03d}{rng.randint(1, 999):03d}"
    )
    key = 97 - int(body.replace("2A", "19").replace("2B", "18")) % 97
    return f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:13]} {key:02d}"


def _bsn(rng: random.Random) -> str:
    while True:
        body = f"{rng.randint(10_000_000, 99_999_999)}"
        total = sum(int(d) * w for d, w in zip(body, range(9, 1, -1), strict=True))
        last = total % 11
        if last < 10:
            return body + str(last)


def _dni(rng: random.Random) -> str:
    if rng.random() < 0.2:
        lead = rng.choice("XYZ")
        number = int(str("XYZ".index(lead)) + f"{rng.randint(0, 9_999_999):07d}")
        return f"{lead}{number % 10_000_000:07d}{'TRWAGMYFPDXBNJZSQVHLCKE'[number % 23]}"
    number = rng.randint(10_000_000, 99_999_999)
    return f"{number}{'TRWAGMYFPDXBNJZSQVHLCKE'[number % 23]}"


def _nhs(rng: random.Random) -> str:
    while True:
        body = f"{rng.randint(400_000_000, 999_999_999)}"
        check = 11 - sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            n = body + str(check)
            return f"{n[:3]} {n[3:6]} {n[6:]}"


# -- value makers ----------------------------------------------------------------------------


def _person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(_GIVEN), rng.choice(_FAMILY)


def _email(rng: random.Random) -> str:
    given, family = _person(rng)
    local = rng.choice(
        [f"{given}.{family}", f"{given[0]}{family}", f"{given}{rng.randint(1, 99)}",
         f"{given}+news", f"{family}_{given}"]
    ).lower().replace(" ", "").replace("'", "")  # fmt: skip
    return f"{local}@{rng.choice(_DOMAINS)}"


def _phone(rng: random.Random, style: str) -> str:
    d = "".join(rng.choices(string.digits, k=10))
    return {
        "e164": f"+1{rng.randint(201, 989)}{d[:7]}",
        "us": f"({rng.randint(201, 989)}) {d[:3]}-{d[3:7]}",
        "us_dash": f"{rng.randint(201, 989)}-{d[:3]}-{d[3:7]}",
        "uk": f"+44 20 {d[:4]} {d[4:8]}",
        "uk_mobile": f"07{d[:3]} {d[3:9]}",
        "fr": f"0{rng.randint(1, 7)} {d[:2]} {d[2:4]} {d[4:6]} {d[6:8]}",
        "fr_intl": f"+33 6 {d[:2]} {d[2:4]} {d[4:6]} {d[6:8]}",
        "de": f"+49 30 {d[:8]}",
        "ext": f"+1 {rng.randint(201, 989)} {d[:3]} {d[3:7]} ext. {rng.randint(10, 999)}",
    }[style]


def _ipv4(rng: random.Random, private: bool = False) -> str:
    if private:
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return ".".join(str(rng.randint(1, 223) if i == 0 else rng.randint(0, 255)) for i in range(4))


def _ipv6(rng: random.Random) -> str:
    return str(ipaddress.IPv6Address(rng.getrandbits(128)))


def _date(rng: random.Random, start: int = 1940, end: int = 2005) -> dt.date:
    return dt.date(start, 1, 1) + dt.timedelta(days=rng.randint(0, (end - start) * 365))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=rng.randint(3, 12))
    return " ".join(words).capitalize() + rng.choice([".", "!", "", "..."])


# -- the corpus ------------------------------------------------------------------------------


def corpus(seed: int = 7, rows: int = 200) -> list[LabelledColumn]:
    """The labelled columns, the same for the same seed."""
    rng = random.Random(seed)
    out: list[LabelledColumn] = []

    def add(
        name: str,
        label: str | None,
        make: Callable[[], object],
        why: str,
        dtype: str = "string",
        nulls: float = 0.0,
        junk: tuple[str, ...] = (),
        junk_rate: float = 0.0,
    ) -> None:
        values: list[object] = []
        for _ in range(rows):
            r = rng.random()
            if r < nulls:
                values.append(None)
            elif junk and r < nulls + junk_rate:
                values.append(rng.choice(junk))
            else:
                values.append(make())
        out.append(LabelledColumn(name, values, label, dtype, why))

    def pick(options: list[str] | tuple[str, ...]) -> Callable[[], object]:
        return lambda: rng.choice(options)

    dirt = ("n/a", "", "unknown", "TBD", "test", "-", "0")

    # e-mail
    add("email", "email", lambda: _email(rng), "plain name")
    add("e_mail", "email", lambda: _email(rng), "split name", nulls=0.1)
    add("EmailAddress", "email", lambda: _email(rng), "PascalCase")
    add("contact-email", "email", lambda: _email(rng).upper(), "kebab, upper case values")
    add("customerEmail", "email", lambda: _email(rng), "camelCase", junk=dirt, junk_rate=0.15)
    add("courriel", "email", lambda: _email(rng), "French name")
    add("col_7", "email", lambda: _email(rng), "unhelpful name")
    add("field_12", "email", lambda: f"mailto:{_email(rng)}", "mailto: prefix, no name")
    add("recipient", "email", lambda: f"{' '.join(_person(rng))} <{_email(rng)}>", "display")
    add("x3", "email", lambda: _email(rng), "unhelpful name, many nulls", nulls=0.6)
    add("Correo_Electronico", "email", lambda: _email(rng), "Spanish")
    add("user_mail", "email", lambda: _email(rng), "dirty", junk=dirt, junk_rate=0.3)

    # phone
    for i, (name, style) in enumerate(
        [("phone", "us"), ("mobile", "uk_mobile"), ("tel", "fr"), ("phoneNumber", "e164"),
         ("telefono", "fr_intl"), ("Handynummer", "de"), ("contact_number", "us_dash"),
         ("col_phone_like", "uk"), ("c_19", "us"), ("c_20", "e164"), ("work-phone", "ext")]
    ):  # fmt: skip
        label_why = "unhelpful name, formatted values" if name.startswith("c") else "named"
        add(name, "phone", functools.partial(_phone, rng, style), label_why, nulls=0.05 * (i % 3))
    add(
        "mobile_no",
        "phone",
        lambda: rng.randint(7_000_000_000, 7_999_999_999),
        "digits without formatting, the name says phone",
        dtype="int64",
    )

    # national identifiers
    add("ssn", "national_id", lambda: _ssn(rng), "US SSN")
    add("col_ssn_like", "national_id", lambda: _ssn(rng), "dashed SSNs, no helpful name")
    add("social_security_number", "national_id", lambda: _ssn(rng, ""), "digits, named")
    add("nino", "national_id", lambda: _nino(rng, spaced=True), "UK NINO, spaced")
    add("ref_a", "national_id", lambda: _nino(rng, spaced=False), "NINO, unhelpful name")
    add("numero_secu", "national_id", lambda: _nir(rng), "French NIR")
    add("c_nir", "national_id", lambda: _nir(rng), "NIR, unhelpful name", nulls=0.1)
    add("bsn", "national_id", lambda: _bsn(rng), "Dutch BSN")
    add("c_41", "national_id", lambda: int(_bsn(rng)), "BSN as integers", dtype="int64")
    add("dni", "national_id", lambda: _dni(rng), "Spanish DNI/NIE")
    add("documento", "national_id", lambda: _dni(rng), "DNI, unhelpful name")
    add("nhs_number", "national_id", lambda: _nhs(rng), "UK NHS number", junk=dirt, junk_rate=0.1)

    # payment cards
    add("card_number", "card_number", lambda: _grouped_card(_card(rng)), "grouped")
    add("cc", "card_number", lambda: _card(rng), "digits")
    add("pan", "card_number", lambda: int(_card(rng)), "integers", dtype="int64")
    add("c_88", "card_number", lambda: _card(rng), "unhelpful name")
    add("payment_info", "card_number", lambda: _card(rng), "neutral name")
    add("CreditCard", "card_number", lambda: _card(rng), "dirty", junk=dirt, junk_rate=0.2)
    add("c_89", "card_number", lambda: _grouped_card(_card(rng)), "grouped, no name", nulls=0.3)
    add("tarjeta", "card_number", lambda: _card(rng), "Spanish")

    # IBAN
    add("iban", "iban", lambda: _iban(rng, spaced=False), "compact")
    add("IBAN_Number", "iban", lambda: _iban(rng, spaced=True), "print format")
    add("c_51", "iban", lambda: _iban(rng, spaced=True), "unhelpful name")
    add("payee_account", "iban", lambda: _iban(rng, spaced=False), "neutral name")
    add("bankAccount", "iban", lambda: _iban(rng, spaced=False), "dirty", junk=dirt, junk_rate=0.2)
    add("kontonummer", "iban", lambda: _iban(rng, spaced=True), "German name")
    add("c_52", "iban", lambda: _iban(rng, spaced=False), "unhelpful name, nulls", nulls=0.4)
    add("rekeningnummer", "iban", lambda: _iban(rng, spaced=False), "Dutch name")

    # IP addresses
    add("ip", "ip_address", lambda: _ipv4(rng), "public IPv4")
    add("client_ip", "ip_address", lambda: _ipv4(rng, private=True), "private 10.x")
    add("ipAddress", "ip_address", lambda: _ipv6(rng), "IPv6")
    add("remote_addr", "ip_address", lambda: rng.choice([_ipv4(rng), _ipv6(rng)]), "mixed")
    add("c_61", "ip_address", lambda: _ipv4(rng), "unhelpful name")
    add("c_62", "ip_address", lambda: _ipv6(rng), "IPv6, unhelpful name")
    add("src_ip", "ip_address", lambda: _ipv4(rng), "dirty", junk=dirt, junk_rate=0.2)
    add("ipv4", "ip_address", lambda: _ipv4(rng, private=True), "name with a digit")

    # precise coordinates
    add("latitude", "coordinates", lambda: round(rng.uniform(-60, 70), 6), "6 decimals", "double")
    add("lng", "coordinates", lambda: round(rng.uniform(-180, 180), 5), "5 decimals", "double")
    add(
        "pickupLatitude", "coordinates", lambda: round(rng.uniform(40.5, 40.9), 4), "4 dp", "double"
    )
    add("geo_lon", "coordinates", lambda: round(rng.uniform(-74.2, -73.7), 6), "NYC", "double")
    add(
        "location",
        "coordinates",
        lambda: f"{rng.uniform(-60, 70):.5f}, {rng.uniform(-180, 180):.5f}",
        "lat, lon pairs",
    )
    add(
        "c_71",
        "coordinates",
        lambda: f"{rng.uniform(48.8, 48.9):.6f},{rng.uniform(2.2, 2.4):.6f}",
        "pairs, unhelpful name",
    )
    add(
        "geom",
        "coordinates",
        lambda: f"POINT ({rng.uniform(-0.2, 0.1):.6f} {rng.uniform(51.4, 51.6):.6f})",
        "WKT points",
    )
    add(
        "home_lat",
        "coordinates",
        lambda: f"{rng.uniform(51, 52):.5f}",
        "numeric strings",
        nulls=0.2,
    )

    # person names
    add("patient_name", "person_name", lambda: " ".join(_person(rng)), "as in the demo")
    add(
        "full_name",
        "person_name",
        lambda: " ".join(_person(rng)),
        "dirty",
        junk=dirt,
        junk_rate=0.1,
    )
    add("first_name", "person_name", lambda: _person(rng)[0], "given names only")
    add("surname", "person_name", lambda: _person(rng)[1], "family names only")
    add("customer", "person_name", lambda: " ".join(_person(rng)), "an id-like column of names")
    add("patient", "person_name", lambda: "{1}, {0}".format(*_person(rng)), "Family, Given")
    add("c_90", "person_name", lambda: " ".join(_person(rng)), "unhelpful name")
    add("assigned_to", "person_name", lambda: " ".join(_person(rng)).upper(), "upper case")
    add(
        "c_91",
        "person_name",
        lambda: f"{_person(rng)[0]} {rng.choice('ABCDEFGHJK')}. {_person(rng)[1]}",
        "middle initials, unhelpful name",
    )
    add("Nachname", "person_name", lambda: _person(rng)[1], "German 'surname'", nulls=0.1)
    add("owner", "person_name", lambda: " ".join(_person(rng)), "owner of an account")
    add("nom_complet", "person_name", lambda: " ".join(_person(rng)), "French", nulls=0.3)

    # identifiers of people
    add("mrn", "person_identifier", lambda: rng.randint(1_000_000, 9_999_999), "MRN", "int64")
    add("patient_id", "person_identifier", lambda: f"P{rng.randint(0, 999_999):06d}", "codes")
    add("customer_id", "person_identifier", lambda: rng.randint(1, 60), "repeats", "int64")
    add("userId", "person_identifier", lambda: _uuid(rng), "UUIDs of users")
    add(
        "username",
        "person_identifier",
        lambda: f"{_person(rng)[0].lower()}{rng.randint(1, 999)}",
        "handles",
    )
    add("employee_number", "person_identifier", lambda: f"E-{rng.randint(1000, 9999)}", "codes")
    add("member_no", "person_identifier", lambda: rng.randint(10_000, 99_999), "ints", "int64")
    add("client", "person_identifier", lambda: f"C{rng.randint(100, 999)}", "bare entity name")

    # dates of birth
    add("dob", "birth_date", lambda: _date(rng).isoformat(), "ISO dates")
    add("date_of_birth", "birth_date", lambda: _date(rng), "dates", dtype="date32[day]")
    add("birthDate", "birth_date", lambda: _date(rng).strftime("%d/%m/%Y"), "dd/mm/yyyy")
    add("birth_year", "birth_date", lambda: rng.randint(1935, 2010), "years", dtype="int64")
    add("geburtsdatum", "birth_date", lambda: _date(rng).strftime("%d.%m.%Y"), "German", nulls=0.2)

    # protected attributes
    add("sex", "protected_attribute", pick(["M", "F"]), "M/F")
    add("gender", "protected_attribute", pick(["Male", "Female", "Non-binary"]), "words")
    add("c_95", "protected_attribute", pick(["male", "female"]), "values only")
    add("race", "protected_attribute", pick(["White", "Black", "Asian", "Other"]), "US style")
    add(
        "ethnicity",
        "protected_attribute",
        pick(["White British", "Asian or Asian British", "Black African", "Mixed", "Other"]),
        "UK census style",
    )
    add("religion", "protected_attribute", pick(["Christian", "Muslim", "Hindu", "None"]), "")
    add(
        "marital_status",
        "protected_attribute",
        pick(["Single", "Married", "Divorced", "Widowed"]),
        "",
        nulls=0.1,
    )
    add("nationality", "protected_attribute", pick(_COUNTRIES), "country names")
    add("has_disability", "protected_attribute", lambda: rng.random() < 0.1, "", dtype="bool")
    add("isPregnant", "protected_attribute", lambda: rng.random() < 0.05, "", dtype="bool")
    add(
        "sexual_orientation",
        "protected_attribute",
        pick(["Heterosexual", "Gay", "Lesbian", "Bisexual"]),
        "",
    )
    add("age", "protected_attribute", lambda: rng.randint(18, 95), "protected or feature", "int64")
    add("age_group", "protected_attribute", pick(["18-29", "30-39", "40-49", "50-64", "65+"]), "")
    add("is_female", "protected_attribute", lambda: rng.random() < 0.5, "", dtype="bool")
    add("Geschlecht", "protected_attribute", pick(["männlich", "weiblich", "divers"]), "German")
    add("c_96", "protected_attribute", pick(["Single", "Married", "Divorced"]), "values only")
    add("patient_age", "protected_attribute", lambda: rng.randint(0, 99), "qualified", "int64")

    # identifiers that are not about a person: role "id"
    add("order_id", "identifier", lambda: rng.randint(1, 10**9), "numeric ids", "int64")
    add("transaction_uuid", "identifier", lambda: _uuid(rng), "UUIDs")
    add("c_97", "identifier", lambda: _uuid(rng), "UUIDs, unhelpful name")
    add("invoice_no", "identifier", lambda: f"INV-2024-{rng.randint(0, 99_999):05d}", "codes")
    add("tracking_number", "identifier", lambda: _not_luhn(rng), "16 digits failing Luhn")
    add("serial_number", "identifier", lambda: f"SN{rng.randint(0, 16**8):08X}", "hex codes")
    add("orderId", "identifier", lambda: rng.randint(10**5, 10**6), "camelCase", "int64")
    add("session_id", "identifier", lambda: f"{rng.getrandbits(128):032x}", "hex tokens")

    # hard negatives: measurements and money
    add("heart_rate", None, lambda: rng.randint(45, 140), "measurement", "int64")
    add("heartRate", None, lambda: rng.randint(45, 140), "camelCase measurement", "int64")
    add("resp_rate", None, lambda: rng.randint(8, 30), "measurement", "int64")
    add("spo2", None, lambda: rng.randint(85, 100), "measurement", "int64")
    add("temperature", None, lambda: round(rng.gauss(37, 0.6), 1), "measurement", "double")
    add("systolic_bp", None, lambda: rng.randint(80, 190), "measurement", "int64")
    add("price", None, lambda: round(rng.uniform(1, 500), 2), "money", "double")
    add("unitPrice", None, lambda: round(rng.uniform(1, 50), 2), "money, camelCase", "double")
    add("amount_cents", None, lambda: rng.randint(10**6, 10**9), "big integers", "int64")
    add("quantity", None, lambda: rng.randint(10_000, 99_999), "zip-like integers", "int64")
    add("population", None, lambda: rng.randint(10**6, 10**9), "7-9 digit counts", "int64")
    add("revenue", None, lambda: f"{rng.randint(10**6, 10**9):,}", "formatted numbers")
    add("balance_eur", None, lambda: f"EUR {rng.uniform(0, 9999):,.2f}", "money text")
    add("probability", None, lambda: rng.random(), "many decimals in [0, 1]", "double")
    add("angle_deg", None, lambda: rng.uniform(-90, 90), "in latitude range, unnamed", "double")
    add("weight_kg", None, lambda: round(rng.uniform(40, 140), 3), "3 decimals", "double")
    add("rating", None, lambda: rng.randint(1, 5), "small integers", "int64")
    add("discount_pct", None, lambda: f"{rng.randint(0, 60)}%", "percent text")
    add("x_coord", None, lambda: rng.uniform(0, 1000), "plot coordinates", "double")
    add("n_visits", None, lambda: rng.randint(0, 40), "counts", "int64")

    # hard negatives: dates, times and codes
    add("created_at", None, lambda: f"{_date(rng, 2020, 2024).isoformat()}T10:00:00Z", "ts")
    add("order_date", None, lambda: _date(rng, 2020, 2024).isoformat(), "ISO dates")
    add("createdAt", None, lambda: _date(rng, 2020, 2024).strftime("%d/%m/%Y"), "dd/mm/yyyy")
    add("visit_day", None, lambda: _date(rng, 2020, 2024).strftime("%Y%m%d"), "yyyymmdd")
    add("admitted", None, lambda: _date(rng, 2020, 2024), "dates", dtype="date32[day]")
    add("duration", None, lambda: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00", "hms")
    add(
        "product_code",
        None,
        lambda: f"{rng.choice('ABCDEFG')}{rng.choice('XYZ')}-{rng.randint(1000, 9999)}-Q",
        "codes",
    )
    add("zip_code", None, lambda: f"{rng.randint(1000, 99999):05d}", "postcodes (not flagged)")
    add("isbn", None, lambda: _isbn(rng), "ISBN-13 with hyphens")
    add("ean", None, lambda: rng.randint(4_000_000_000_000, 4_400_000_000_000), "", "int64")
    add("firmware_version", None, pick(["1.4.2", "1.4.3", "2.0.0", "2.0.1"]), "versions")
    add(
        "build",
        None,
        lambda: (
            f"{rng.randint(1, 4)}.{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}"
        ),
        "4-part versions that parse as IPv4",
    )
    add("content_sha256", None, lambda: f"{rng.getrandbits(256):064x}", "digests")
    add("url", None, lambda: f"https://shop.example.com/p/{rng.randint(1, 9999)}", "URLs")
    add("hostname", None, lambda: f"web-{rng.randint(1, 40):02d}.example.com", "host names")
    add("col_16", None, lambda: _not_luhn(rng), "16 digits failing Luhn, unnamed")
    add("payment_reference", None, lambda: _bad_iban(rng), "IBAN-shaped, failing mod-97")
    add("c_53", None, lambda: _bad_iban(rng), "IBAN-shaped, failing mod-97, unnamed")
    add(
        "sort_code",
        None,
        lambda: f"{rng.randint(10, 99)}-{rng.randint(10, 99)}-{rng.randint(10, 99)}",
        "",
    )
    add("ward_id", None, lambda: rng.randint(1, 6), "low-cardinality id", "int64")
    add(
        "batch",
        None,
        lambda: f"{rng.randint(900, 999)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
        "SSN-shaped lot numbers in the 9xx range, which the SSA never issues",
    )

    # hard negatives: coarse locations
    add("lat", None, lambda: round(rng.uniform(-60, 70), 1), "1 decimal: ~11 km", "double")
    add("lon", None, lambda: round(rng.uniform(-180, 180), 1), "1 decimal", "double")
    add("latitude_approx", None, lambda: round(rng.uniform(40, 41), 2), "2 decimals", "double")
    add(
        "store_location",
        None,
        lambda: f"{rng.uniform(40, 41):.1f}, {rng.uniform(-74, -73):.1f}",
        "coarse pairs",
    )

    # hard negatives: words that look like names or categories
    add("city", None, pick(_CITIES), "city names, some of them given names")
    add("c_city", None, pick(_CITIES), "city names, unhelpful name")
    add("product_name", None, pick(_PRODUCTS), "capitalised words")
    add("vendor", None, pick(_COMPANIES), "company names")
    add("c_co", None, pick(_COMPANIES), "company names, unhelpful name")
    add("dish", None, pick(_DISHES), "dishes named after people")
    add("country", None, pick(_COUNTRIES), "countries (not nationality)")
    add("ward", None, pick(["cardiology", "oncology", "respiratory", "surgical"]), "categories")
    add("status", None, pick(["active", "inactive", "pending"]), "enum")
    add("room_type", None, pick(["single", "double", "twin", "suite"]), "'single' only")
    add("size", None, pick(["S", "M", "L", "XL"]), "'M' only")
    add("direction", None, pick(["N", "S", "E", "W"]), "compass")
    add("comment", None, lambda: _sentence(rng), "free text")
    add("notes", None, lambda: _sentence(rng), "free text", nulls=0.5)
    add("is_active", None, lambda: rng.random() < 0.7, "flags", dtype="bool")
    add("team", None, pick(["Red Falcons", "Blue Otters", "Green Herons"]), "capitalised words")

    # hard negatives: names that mention a PII word but hold something else
    add("phone_count", None, lambda: rng.randint(0, 4), "name says phone", "int64")
    add("headphonePrice", None, lambda: round(rng.uniform(20, 300), 2), "phone inside", "double")
    add("email_opened", None, lambda: rng.random() < 0.3, "name says e-mail", dtype="bool")
    add("email_domain", None, pick(list(_DOMAINS)), "domains, not addresses")
    add("ip_count", None, lambda: rng.randint(0, 9), "name says IP", "int64")
    add("race_time_s", None, lambda: round(rng.uniform(600, 3600), 2), "a race", "double")
    add("vehicle_age", None, lambda: rng.randint(0, 25), "not a person's age", "int64")
    add("gender_pay_gap", None, lambda: round(rng.uniform(-0.2, 0.3), 4), "a measure", "double")
    add("screen_orientation", None, pick(["portrait", "landscape"]), "orientation")
    add("phone_model", None, pick(["iPhone 14", "Pixel 8", "Galaxy S23"]), "devices")
    add("card_type", None, pick(["Visa", "Mastercard", "Amex"]), "networks, not numbers")
    add("masked_pan", None, lambda: f"**** **** **** {rng.randint(0, 9999):04d}", "masked")
    add("user_agent", None, pick(["Mozilla/5.0 (X11)", "curl/8.4.0"]), "client software")
    add("account_balance", None, lambda: round(rng.uniform(0, 1e5), 2), "money", "double")
    add("page_views", None, lambda: rng.randint(0, 10**6), "counts", "int64")
    add("cell_count", None, lambda: rng.randint(0, 10**7), "biology, not mobile", "int64")
    return out


def _isbn(rng: random.Random) -> str:
    body = "978" + "".join(rng.choices(string.digits, k=9))
    check = (10 - sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body)) % 10) % 10
    return f"{body[:3]}-{body[3]}-{body[4:7]}-{body[7:12]}-{check}"


def holdout(seed: int = 1009, rows: int = 200) -> list[LabelledColumn]:
    """A second labelled set, written after the detector's thresholds were set and not
    used to tune them: other formats, other countries, other names. Its figures are the
    ones to quote; `corpus()` is the development set."""
    rng = random.Random(seed)
    out: list[LabelledColumn] = []

    def add(name: str, label: str | None, make: Callable[[], object], dtype: str = "string",
            nulls: float = 0.0) -> None:  # fmt: skip
        values = [None if rng.random() < nulls else make() for _ in range(rows)]
        out.append(LabelledColumn(name, values, label, dtype, "holdout"))

    def pick(options: list[str] | tuple[str, ...]) -> Callable[[], object]:
        return lambda: rng.choice(options)

    accented = ["José Álvarez", "Zoë Brontë", "Søren Kierkegaard", "Ångström Lund",
                "François Müller", "Łukasz Żółć", "Chloé Lefèvre", "Nuño Peña"]  # fmt: skip

    def person() -> str:
        given, family = _person(rng)
        return rng.choice([f"{given} {family}", rng.choice(accented), f"{given} {family}"])

    def cc_other() -> str:
        prefix, length = rng.choice([("36", 14), ("6200", 16), ("3566", 16), ("6500", 16)])
        body = prefix + "".join(rng.choices(string.digits, k=length - len(prefix) - 1))
        return body + _luhn_digit(body)

    def iban_other() -> str:
        country, bban = rng.choice(
            [("CH", "".join(rng.choices(string.digits, k=17))),
             ("PL", "".join(rng.choices(string.digits, k=24))),
             ("AT", "".join(rng.choices(string.digits, k=16)))]
        )  # fmt: skip
        return f"{country}{98 - _mod97(bban + country + '00'):02d}{bban}"

    add("Email_Addr", "email", lambda: _email(rng))
    add("kontakt", "email", lambda: _email(rng), nulls=0.2)
    add("notify_to", "email", lambda: _email(rng).replace("@", "@eu."))
    add("Telephone No.", "phone", lambda: _phone(rng, "uk_mobile"))
    add("phone1", "phone", lambda: _phone(rng, rng.choice(["us", "us_dash", "e164"])))
    add("emergency_contact_phone", "phone", lambda: _phone(rng, "fr"), nulls=0.3)
    add("c_a1", "phone", lambda: _phone(rng, "fr_intl"))
    add("msisdn", "phone", lambda: f"44{rng.randint(7_000_000_000, 7_999_999_999)}")
    add("SSN", "national_id", lambda: _ssn(rng, " "))
    add("ni_number", "national_id", lambda: _nino(rng, spaced=rng.random() < 0.5))
    add("c_a2", "national_id", lambda: _dni(rng))
    add("burgerservicenummer", "national_id", lambda: _bsn(rng))
    add("nhs_no", "national_id", lambda: _nhs(rng).replace(" ", ""))
    add("card", "card_number", cc_other)
    add("c_a3", "card_number", lambda: "-".join(_grouped_card(_card(rng)).split()))
    add("billing_iban", "iban", iban_other)
    add("c_a4", "iban", iban_other)
    add("client_addr", "ip_address", lambda: _ipv4(rng))
    add("c_a5", "ip_address", lambda: str(ipaddress.IPv6Address(rng.getrandbits(64))))
    add("peer", "ip_address", lambda: f"{_ipv4(rng)}:{rng.randint(1024, 65535)}")
    add("y_lat", "coordinates", lambda: round(rng.uniform(-33.9, -33.8), 5), "double")
    add("x_long", "coordinates", lambda: round(rng.uniform(151.1, 151.3), 5), "double")
    add("gps", "coordinates", lambda: f"({rng.uniform(35, 36):.6f}; {rng.uniform(139, 140):.6f})")
    add("Latitude (WGS84)", "coordinates", lambda: f"{rng.uniform(-10, 10):.4f}")
    add("customer_full_name", "person_name", person)
    add("attending_physician", "person_name", person)
    add("c_a6", "person_name", person)
    add("given_name", "person_name", lambda: _person(rng)[0], nulls=0.1)
    add("family", "person_name", lambda: _person(rng)[1])
    add("reviewer", "person_name", lambda: " ".join(_person(rng)))
    add("patient_number", "person_identifier", lambda: f"{rng.randint(0, 10**8):08d}")
    add("subscriber_id", "person_identifier", lambda: rng.randint(1, 10**6), "int64")
    add("login", "person_identifier", lambda: f"{_person(rng)[1].lower()}.{rng.randint(1, 99)}")
    add("birthday", "birth_date", lambda: _date(rng).strftime("%m/%d/%Y"))
    add("yob", "birth_date", lambda: rng.randint(1930, 2008), "int64")
    add("Gender", "protected_attribute", pick(["M", "F", "U"]))
    add("c_a7", "protected_attribute", pick(["Man", "Woman"]))
    add("ethnic_group", "protected_attribute", pick(["Asian", "Black", "White", "Mixed"]))
    add("religious_belief", "protected_attribute", pick(["Catholic", "Protestant", "None"]))
    add("citizenship", "protected_attribute", pick(["FR", "DE", "NG", "IN", "US"]))
    add("disabled", "protected_attribute", lambda: rng.random() < 0.1, "bool")
    add("pregnancy_status", "protected_attribute", pick(["pregnant", "not pregnant"]))
    add("age_years", "protected_attribute", lambda: rng.randint(1, 100), "int64")
    add("civil_status", "protected_attribute", pick(["Single", "Married"]))
    add("id", "identifier", lambda: rng.randint(1, 10**7), "int64")
    add("request_id", "identifier", lambda: f"req_{rng.getrandbits(48):012x}")
    add("parent_uuid", "identifier", lambda: _uuid(rng))
    add("shipment_no", "identifier", lambda: f"SH{rng.randint(0, 10**7):07d}")
    add("latency_ms", None, lambda: round(rng.uniform(1, 500), 3), "double")
    add("tip_amount", None, lambda: round(rng.uniform(0, 20), 2), "double")
    add("zip", None, lambda: f"{rng.randint(501, 99950):05d}")
    add("model_version", None, pick(["1.0.0", "1.1.0", "2.0.3"]))
    add("colour", None, pick(["Red", "Blue", "Green", "Black", "White"]))
    add("score", None, lambda: rng.gauss(0, 1), "double")
    add("customer_segment", None, pick(["Gold", "Silver", "Bronze"]))
    add("patient_count", None, lambda: rng.randint(0, 300), "int64")
    add("age_of_account_days", None, lambda: rng.randint(0, 3000), "int64")
    add("dept_phone_ext", None, lambda: rng.randint(100, 999), "int64")
    add("c_b1", None, lambda: rng.randint(10**9, 10**10 - 1), "int64")
    add("c_b2", None, lambda: f"{rng.uniform(-90, 90):.1f}, {rng.uniform(-180, 180):.1f}")
    add("timestamp_ms", None, lambda: 1_700_000_000_000 + rng.randint(0, 10**10), "int64")
    add("sku", None, lambda: f"SKU{rng.randint(10**5, 10**6)}")
    add("street", None, lambda: f"{rng.randint(1, 200)} {_person(rng)[1]} Road")
    add("brand", None, pick(["Acme", "Globex", "Initech"]))
    add("species", None, pick(["Homo sapiens", "Mus musculus", "Danio rerio"]))
    add("iso_country", None, pick(["FR", "DE", "NG", "IN", "US"]))
    add("mac", None, lambda: ":".join(f"{rng.randint(0, 255):02x}" for _ in range(6)))
    add("gtin", None, lambda: f"0{rng.randint(10**12, 10**13 - 1)}")
    add("elapsed", None, lambda: f"{rng.randint(0, 99)}:{rng.randint(0, 59):02d}")
    add("invoice_total", None, lambda: f"{rng.uniform(10, 10_000):.2f}")
    add("grade", None, pick(["A", "B", "C", "D", "F"]))
    add("temperature_f", None, lambda: round(rng.uniform(95, 104), 1), "double")
    add("sex_ratio", None, lambda: round(rng.uniform(0.9, 1.1), 3), "double")
    add("title", None, pick(["War and Peace", "Jane Eyre", "Moby Dick", "Emma", "Dracula"]))
    add("phone_plan", None, pick(["Basic", "Unlimited", "Family"]))
    add("lat_bucket", None, lambda: rng.randint(-9, 9), "int64")
    return out
