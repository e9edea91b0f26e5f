"""PII detection: the validators, each detector's hard cases, and precision and recall on
the labelled synthetic corpus (tests/unit/ml/pii_corpus.py)."""

from __future__ import annotations

import ipaddress
import random
import string
from collections.abc import Callable

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pii_corpus import ROLE_OF, LabelledColumn, corpus, holdout, score

from farpoint.examples import vitals
from farpoint.ml.pii import (
    KINDS,
    Finding,
    card_brand,
    detect_column,
    iban_valid,
    luhn_valid,
    national_id_scheme,
    propose_classification,
)

# -- validators -------------------------------------------------------------------------


def _luhn_reference(number: str) -> bool:
    digits = [int(c) for c in number]
    odd, even = digits[-1::-2], digits[-2::-2]
    return (sum(odd) + sum(sum(divmod(2 * d, 10)) for d in even)) % 10 == 0


@pytest.mark.parametrize(
    "number", ["79927398713", "4111111111111111", "378282246310005", "6011111111111117"]
)
def test_luhn_accepts_known_valid_numbers(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["79927398710", "4111111111111112", "12a4", ""])
def test_luhn_rejects_wrong_check_digits_and_non_digits(number: str) -> None:
    assert not luhn_valid(number)


@given(st.text(alphabet=string.digits, min_size=1, max_size=25))
def test_luhn_agrees_with_a_reference_implementation(number: str) -> None:
    assert luhn_valid(number) == _luhn_reference(number)


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4111 1111 1111 1111", "Visa"),
        ("5555-5555-5555-4444", "Mastercard"),
        ("2223003122003222", "Mastercard"),
        ("3782 822463 10005", "American Express"),
        ("6011111111111117", "Discover"),
        ("3530111333300000", "JCB"),
        ("30569309025904", "Diners Club"),
    ],
)
def test_card_brand_names_the_network(number: str, brand: str) -> None:
    assert card_brand(number) == brand


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111112",  # fails Luhn
        "1234567812345670",  # passes Luhn, no issuer starts with 1
        "378282246310005" + "0",  # an Amex prefix at 16 digits
        "4111 1111 1111 111",  # too short after all
        "4111x1111x1111x1111",
    ],
)
def test_card_brand_rejects_non_cards(number: str) -> None:
    assert card_brand(number) is None


@pytest.mark.parametrize(
    "iban",
    [
        "GB82 WEST 1234 5698 7654 32",
        "DE89370400440532013000",
        "fr1420041010050500013m02606",  # case does not matter
        "NL91ABNA0417164300",
        "CH9300762011623852957",
    ],
)
def test_iban_valid_accepts_published_examples(iban: str) -> None:
    assert iban_valid(iban)


@pytest.mark.parametrize(
    "iban",
    [
        "GB83 WEST 1234 5698 7654 32",  # check digits off by one
        "DE8937040044053201300",  # a digit short for Germany
        "QQ82WEST12345698765432",  # no such country
        "GB82-WEST",
    ],
)
def test_iban_valid_rejects_bad_checks_lengths_and_countries(iban: str) -> None:
    assert not iban_valid(iban)


@given(st.integers(min_value=4, max_value=21), st.sampled_from(string.digits))
def test_iban_mod97_catches_every_single_character_substitution(pos: int, new: str) -> None:
    good = "DE89370400440532013000"
    if good[pos] == new:
        return
    assert not iban_valid(good[:pos] + new + good[pos + 1 :])


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("536-22-1234", "US SSN"),
        ("AB 12 34 56 C", "UK NINO"),
        ("AB123456C", "UK NINO"),
        ("1 84 12 76 451 089 46", "French NIR"),
        ("2 69 05 2A 004 005 35", "French NIR"),  # Corsica: 2A counts as 19
        ("111222333", "Dutch BSN"),
        ("1112.22.333", "Dutch BSN"),
        ("12345678Z", "Spanish DNI/NIE"),
        ("X1234567L", "Spanish DNI/NIE"),
        ("943 476 5919", "UK NHS number"),
    ],
)
def test_national_id_scheme_recognises_valid_ids(text: str, scheme: str) -> None:
    assert national_id_scheme(text) == scheme


@pytest.mark.parametrize(
    "text",
    [
        "000-12-3456",  # area 000 is never issued
        "666-12-3456",
        "912-12-3456",  # 9xx areas are ITINs or unissued
        "536-00-1234",  # group 00
        "536-22-0000",  # serial 0000
        "078-05-1120",  # the Woolworths wallet card
        "BG123456C",  # reserved NINO prefix
        "DA123456A",  # D is not a first NINO letter
        "AB123456E",  # NINO suffixes run A to D
        "1 84 12 76 451 089 47",  # NIR with the wrong key
        "12345678A",  # DNI with the wrong letter
        "943 476 5918",  # NHS number with the wrong check digit
    ],
)
def test_national_id_scheme_rejects_invalid_ids(text: str) -> None:
    assert national_id_scheme(text) is None


# -- detectors on columns -------------------------------------------------------------------

RNG = random.Random(5)


@pytest.fixture(autouse=True)
def _same_values_in_any_order() -> None:
    # Each test draws the same values whichever tests ran before it in its worker (CI once
    # drew a WKT point whose longitude ended in two zeros, 152.77900: three decimals, coarse).
    RNG.seed(5)


def _kind(name: str, values: list[object], dtype: str = "string") -> str | None:
    found = detect_column(name, values, dtype)
    return found.kind if found else None


def test_snake_camel_kebab_and_upper_case_names_read_alike() -> None:
    values = [f"user{i}@example.com" for i in range(50)]
    findings = [detect_column(n, values) for n in ("e_mail", "eMail", "E-Mail", "EMAIL")]
    assert {f.kind for f in findings if f} == {"email"}
    assert all(f is not None and f.source == "both" for f in findings)


def test_a_finding_explains_itself() -> None:
    values: list[object] = [f"user{i}@example.com" for i in range(47)]
    values += ["see notes", "x", "tbc"]
    values += [None, "", "N/A"]  # missing: not counted either way
    found = detect_column("customer_email", values)
    assert found == Finding(
        column="customer_email",
        role="pii",
        kind="email",
        confidence=found.confidence if found else 0.0,
        evidence="47 of 50 sampled values are e-mail addresses; the name says e-mail",
        source="both",
    )
    assert found is not None and 0.9 < found.confidence <= 1.0


def test_numbers_with_seven_or_more_digits_are_not_phones_without_name_or_format() -> None:
    numbers: list[object] = [RNG.randint(10**6, 10**10) for _ in range(200)]
    assert _kind("c_3", numbers, "int64") is None
    assert _kind("amount_cents", numbers, "int64") is None
    assert _kind("mobile", numbers, "int64") == "phone"
    formatted: list[object] = [f"+44 20 {RNG.randint(1000, 9999)} {RNG.randint(1000, 9999)}"]
    assert _kind("c_4", formatted * 20 + [f"(415) 555-{i:04d}" for i in range(30)]) == "phone"


def _isbn13(body: str) -> str:
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10
    return f"{body[:3]}-{body[3]}-{body[4:7]}-{body[7:]}-{check}"


@pytest.mark.parametrize(
    "values",
    [
        [f"2024-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 28)],  # dates
        [f"{d:02d}/{m:02d}/2023" for m in range(1, 13) for d in range(1, 28)],
        [_isbn13(f"978{RNG.randint(10**8, 10**9 - 1)}") for _ in range(100)],
        [
            f"{RNG.randint(1, 999)} {RNG.randint(100, 999)} {RNG.randint(100, 999)}"
            for _ in range(99)
        ],
        [f"{RNG.uniform(1e6, 1e7):.2f}" for _ in range(100)],  # decimals
    ],
)
def test_dates_isbns_thousands_and_decimals_are_not_phones(values: list[object]) -> None:
    found = detect_column("c_9", values)
    assert found is None or found.kind != "phone"


def test_ipv6_compressed_expanded_and_with_ports_are_ip_addresses() -> None:
    values: list[object] = [str(ipaddress.IPv6Address(RNG.getrandbits(128))) for _ in range(40)]
    values += [
        "::1",
        "fe80::1%eth0",
        "[2001:db8::1]:443",
        "2001:0db8:0000:0000:0000:ff00:0042:8329",
    ]
    found = detect_column("c_5", values)
    assert found is not None and found.kind == "ip_address" and "IPv6" in found.evidence


@pytest.mark.parametrize(
    "values",
    [
        [f"{RNG.randint(0, 255):02x}:1a:2b:3c:4d:5e" for _ in range(50)],  # MAC addresses
        [f"{RNG.randint(0, 23):02d}:{RNG.randint(0, 59):02d}:00" for _ in range(50)],  # times
        [
            f"{RNG.randint(1, 3)}.{RNG.randint(0, 9)}.{RNG.randint(0, 9)}.{i % 20}"
            for i in range(50)
        ],
    ],
)
def test_macs_times_and_version_numbers_are_not_ip_addresses(values: list[object]) -> None:
    found = detect_column("c_6", values)
    assert found is None or found.kind != "ip_address"


@pytest.mark.parametrize(
    ("decimals", "precise"), [(6, True), (5, True), (4, True), (3, False), (1, False)]
)
def test_coordinates_are_precise_from_four_decimal_places(decimals: int, precise: bool) -> None:
    values: list[object] = [round(RNG.uniform(51.3, 51.7), decimals) for _ in range(200)]
    assert (_kind("latitude", values, "double") == "coordinates") is precise


def test_coordinates_need_a_coordinate_name_and_range() -> None:
    precise = [round(RNG.uniform(-80, 80), 6) for _ in range(200)]
    assert _kind("angle", list(precise), "double") is None  # any float could be an angle
    assert _kind("lat", [v * 3 for v in precise], "double") is None  # beyond ±90


def test_coordinate_pairs_and_wkt_points_in_one_string_column() -> None:
    pairs: list[object] = [f"{RNG.uniform(-60, 60):.5f}, {RNG.uniform(-170, 170):.5f}"] * 10
    pairs += [f"({RNG.uniform(-60, 60):.6f};{RNG.uniform(-170, 170):.6f})" for _ in range(40)]
    assert _kind("c_7", pairs) == "coordinates"
    points: list[object] = [f"POINT({RNG.uniform(100, 170):.5f} {RNG.uniform(-60, 60):.5f})"] * 9
    assert _kind("c_8", points) == "coordinates"  # x (longitude) first, beyond ±90: fine
    coarse: list[object] = [f"{RNG.uniform(-60, 60):.1f}, {RNG.uniform(-170, 170):.1f}"] * 30
    assert _kind("location", coarse) is None


def test_person_names_from_values_given_family_or_family_comma_given() -> None:
    given = ["Grace", "Omar", "Priya", "Liam", "Sofia", "Kwame", "Yuki", "Elena", "Tadhg"]
    family = ["Chen", "Okafor", "Patel", "O'Brien", "van der Berg", "Nakamura", "Lefèvre"]
    names: list[object] = [f"{RNG.choice(given)} {RNG.choice(family)}" for _ in range(200)]
    assert _kind("assignee_x", names) == "person_name"
    swapped: list[object] = [f"{str(v).split()[-1]}, {str(v).split()[0]}" for v in names]
    assert _kind("c_1", swapped) == "person_name"
    assert _kind("c_2", [str(v).upper() for v in names]) == "person_name"


def test_place_product_and_company_names_are_not_person_names() -> None:
    cities = ["New York", "San Francisco", "Victoria", "Charlotte", "Salt Lake City", "Austin"]
    assert _kind("c_1", [RNG.choice(cities) for _ in range(200)]) is None
    unique_products: list[object] = [f"Widget Model {i} Pro" for i in range(200)]
    assert _kind("name", unique_products) is None
    people: list[object] = [f"Grace Chen{'x' * (i % 7)}" for i in range(200)]
    assert _kind("product_name", people) is None  # the name says it is about a product


def test_age_is_proposed_as_protected_with_lower_confidence() -> None:
    found = detect_column("patient_age", [RNG.randint(0, 99) for _ in range(100)], "int64")
    sex = detect_column("sex", [RNG.choice("MF") for _ in range(100)])
    assert found is not None and sex is not None
    assert found.role == "protected" and found.confidence < sex.confidence
    assert "clinical feature" in found.evidence


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("race_time_s", [round(RNG.uniform(600, 3600), 2) for _ in range(100)]),
        ("vehicle_age", [RNG.randint(0, 20) for _ in range(100)]),
        ("gender_pay_gap", [round(RNG.uniform(-0.2, 0.3), 4) for _ in range(100)]),
        ("size", [RNG.choice(["S", "M", "L", "XL"]) for _ in range(100)]),
        ("room_type", [RNG.choice(["single", "double", "twin"]) for _ in range(100)]),
    ],
)
def test_words_that_only_look_protected(name: str, values: list[object]) -> None:
    assert detect_column(name, values) is None


def test_protected_attributes_from_values_alone() -> None:
    assert _kind("c_1", [RNG.choice(["male", "female"]) for _ in range(100)]) == (
        "protected_attribute"
    )
    race = ["White", "Black", "Asian", "Hispanic", "Other"]
    assert _kind("c_2", [RNG.choice(race) for _ in range(100)]) == "protected_attribute"


def test_a_name_alone_proposes_with_low_confidence_when_there_is_nothing_to_check() -> None:
    found = detect_column("ssn", [None, None, ""])
    assert found is not None and found.source == "name" and found.confidence <= 0.5
    assert detect_column("c_1", []) is None


def test_values_of_the_right_shape_failing_the_check_under_a_pii_name() -> None:
    failing = [f"4{RNG.randint(10**14, 10**15 - 1)}" for _ in range(100)]
    failing = [n for n in failing if not luhn_valid(n)]
    found = detect_column("card_number", failing)
    assert found is not None and found.kind == "card_number" and found.source == "name"
    assert found.confidence < 0.5 and "pass the check" in found.evidence
    assert detect_column("c_1", failing) is None


def test_sampling_is_capped_and_spread_over_the_whole_column() -> None:
    # The first 50,000 rows are ordinary numbers, the rest e-mail addresses: a head-only
    # sample would miss them, an evenly spaced one sees both halves.
    values: list[object] = [str(i) for i in range(50_000)]
    values += [f"u{i}@example.com" for i in range(50_000)]
    found = detect_column("c_1", values)
    assert found is None  # half are e-mails: below the 80% a nameless column needs
    named = detect_column("contact_email", values)
    assert named is not None and "of 1000 sampled values" in named.evidence


# -- tables --------------------------------------------------------------------------------


def _table(columns: list[LabelledColumn]) -> pa.Table:
    arrays = {}
    for c in columns:
        arrow_type = {"string": pa.string(), "int64": pa.int64(), "double": pa.float64()}.get(
            c.dtype
        )
        try:
            arrays[c.name] = pa.array(c.values, type=arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays[c.name] = pa.array([None if v is None else str(v) for v in c.values])
    return pa.table(arrays)


def test_propose_classification_finds_the_demo_datasets_pii_and_protected_columns() -> None:
    table = pa.Table.from_pandas(vitals.generate(n_rows=3000, seed=3), preserve_index=False)
    found = propose_classification(table)
    assert {c: f.role for c, f in found.items()} == {
        "patient_name": "pii",
        "mrn": "pii",
        "sex": "protected",
        "age": "protected",  # the demo keeps age as a feature: the data scientist decides
    }
    assert found["age"].confidence < found["sex"].confidence
    sensitive = {c for c, role in vitals.COLUMN_ROLES.items() if role in ("pii", "protected")}
    assert sensitive <= set(found)


def test_propose_classification_is_deterministic_and_takes_record_batches() -> None:
    table = _table(corpus(seed=3, rows=300)[:60])
    first = propose_classification(table)
    assert first == propose_classification(table)
    assert first == propose_classification(table.combine_chunks().to_batches()[0])
    assert all(f.column == name for name, f in first.items())


def test_propose_classification_reads_dictionary_columns_and_skips_nested_ones() -> None:
    emails = pa.array([f"p{i}@example.org" for i in range(100)]).dictionary_encode()
    nested = pa.array([[1, 2]] * 100)
    found = propose_classification(pa.table({"email": emails, "tags": nested}))
    assert set(found) == {"email"}


# -- precision and recall on the labelled corpus ---------------------------------------------


def _detect(column: LabelledColumn) -> str | None:
    found = detect_column(column.name, column.values, column.dtype)
    if found is not None:
        assert found.role == ROLE_OF[found.kind]
        assert 0.0 <= found.confidence <= 1.0 and found.source in ("name", "values", "both")
    return found.kind if found else None


def test_corpus_has_enough_columns_and_hard_negatives() -> None:
    assert ROLE_OF == KINDS  # the labels use the detector's kinds and roles
    columns = corpus()
    assert len(columns) >= 150 and len({c.name for c in columns}) == len(columns)
    assert sum(1 for c in columns if c.label is None) >= 60
    assert all(c.label is None or c.label in ROLE_OF for c in columns)
    assert corpus() == columns  # seeded


# Floors at what the detector reaches today (see the printed tables): the development
# corpus was used to tune it; the holdout was written afterwards and reached 45 of 48 on
# its first run (ip:port peers and `religious_belief` were then fixed; `family` holding
# bare surnames is still missed).
@pytest.mark.parametrize(
    ("columns", "min_precision", "min_recall"),
    [(corpus, 0.98, 0.97), (holdout, 0.97, 0.95)],
    ids=["development", "holdout"],
)
def test_precision_and_recall_on_the_labelled_corpus(
    columns: Callable[[], list[LabelledColumn]],
    min_precision: float,
    min_recall: float,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scores = score(columns(), _detect)
    with capsys.disabled():
        print(f"\n{scores.columns} columns\n{scores.table()}")
        for name, want, got in scores.mistakes:
            print(f"  {name}: labelled {want}, detected {got}")
    overall = scores.figures()
    assert overall["precision"] >= min_precision
    assert overall["recall"] >= min_recall
    for kind in ROLE_OF:
        per_kind = scores.figures([kind])
        assert per_kind["precision"] >= 0.9, kind
        assert per_kind["recall"] >= 0.8, kind
