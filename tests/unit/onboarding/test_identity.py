"""Identity checks: GB 11643-1999 resident ids, age window, mainland mobiles, names."""

from __future__ import annotations

from datetime import date

import pytest
from stdnum.cn import ric

from node_api.http.problems import problem_body
from node_api.kernel.errors import CreditNetValueError
from node_api.onboarding.identity import (
    Gender,
    check_age_window,
    check_declared_gender,
    compute_age_years,
    compute_check_character,
    make_resident_id,
    normalize_mobile,
    normalize_name,
    parse_resident_id,
    verify_identity,
)

AS_OF = date(2025, 6, 30)
# The worked example of GB 11643-1999 (Beijing Chaoyang, 1949-12-31, female, check 'X').
STANDARD_EXAMPLE = "11010519491231002X"


def _with_check(body: str) -> str:
    return body + compute_check_character(body)


def _reject(number: str, code: str, as_of: date = AS_OF) -> CreditNetValueError:
    with pytest.raises(CreditNetValueError) as caught:
        parse_resident_id(number, as_of=as_of)
    error = caught.value
    assert error.code == code
    assert error.field == "id_number"
    assert number.strip() not in str(error)
    assert number.strip() not in str(problem_body(error))
    return error


def test_standard_example_with_x_check_character_is_valid() -> None:
    resident = parse_resident_id(STANDARD_EXAMPLE, as_of=AS_OF)
    assert resident.region_code == "110105"
    assert resident.birth_date == date(1949, 12, 31)
    assert resident.sequence == 2
    assert resident.gender == Gender.FEMALE


def test_lowercase_x_and_surrounding_spaces_are_normalised() -> None:
    resident = parse_resident_id("  11010519491231002x ", as_of=AS_OF)
    assert resident.number == STANDARD_EXAMPLE


def test_odd_sequence_decodes_as_male() -> None:
    resident = parse_resident_id("360426199101010071", as_of=AS_OF)
    assert resident.sequence == 7
    assert resident.gender == Gender.MALE


@pytest.mark.parametrize(
    ("body", "check"),
    [("11010519491231002", "X"), ("36042619910101007", "1"), ("44030419850615123", "7")],
)
def test_check_character_follows_iso_7064_mod_11_2(body: str, check: str) -> None:
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    remainder = sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11
    assert "10X98765432"[remainder] == compute_check_character(body) == check
    assert ric.calc_check_digit(body + "0") == check


def test_RevertWhen_check_character_is_wrong() -> None:
    _reject("110105194912310021", "id_number_checksum")


def test_RevertWhen_birth_date_is_after_as_of() -> None:
    number = make_resident_id("110105", date(2025, 7, 1), 11, Gender.MALE)
    _reject(number, "id_number_birth_date_future")


def test_birth_date_on_as_of_is_accepted() -> None:
    number = make_resident_id("110105", AS_OF, 11, Gender.MALE)
    assert parse_resident_id(number, as_of=AS_OF).birth_date == AS_OF


@pytest.mark.parametrize("date_digits", ["19990230", "19991301", "19990000", "18991231"])
def test_RevertWhen_birth_date_is_not_a_valid_calendar_date(date_digits: str) -> None:
    _reject(_with_check(f"110105{date_digits}123"), "id_number_birth_date")


@pytest.mark.parametrize("region", ["990101", "000000", "119999", "200101"])
def test_RevertWhen_region_code_is_unknown(region: str) -> None:
    _reject(_with_check(f"{region}19900101123"), "id_number_region")


def test_RevertWhen_number_is_a_legacy_15_digit_id() -> None:
    _reject("110105491231002", "id_number_legacy_15_digit")


@pytest.mark.parametrize("number", ["1101051949123100", "11010519491231002XX", ""])
def test_RevertWhen_length_is_not_18(number: str) -> None:
    with pytest.raises(CreditNetValueError) as caught:
        parse_resident_id(number, as_of=AS_OF)
    assert caught.value.code == "id_number_length"


@pytest.mark.parametrize(
    "number", ["11010519491231002A", "1101051949123100X2", "１１010519491231002X"]
)
def test_RevertWhen_characters_are_not_digits_and_final_x(number: str) -> None:
    _reject(number, "id_number_format")


def test_declared_gender_must_match_sequence_parity() -> None:
    male = parse_resident_id(
        make_resident_id("310104", date(1990, 1, 1), 101, Gender.MALE), as_of=AS_OF
    )
    check_declared_gender(male, Gender.MALE)
    with pytest.raises(CreditNetValueError) as caught:
        check_declared_gender(male, Gender.FEMALE)
    assert (caught.value.field, caught.value.code) == ("gender", "gender_mismatch")


def test_make_resident_id_refuses_parity_that_contradicts_gender() -> None:
    with pytest.raises(ValueError, match="parity"):
        make_resident_id("110105", date(1990, 1, 1), 2, Gender.MALE)


@pytest.mark.parametrize(
    ("birth", "as_of", "age"),
    [
        (date(2000, 6, 30), date(2018, 6, 30), 18),
        (date(2000, 7, 1), date(2018, 6, 30), 17),
        (date(2000, 2, 29), date(2018, 2, 28), 17),
        (date(2000, 2, 29), date(2018, 3, 1), 18),
    ],
)
def test_age_counts_completed_years_on_as_of(birth: date, as_of: date, age: int) -> None:
    assert compute_age_years(birth, as_of) == age


def test_age_window_is_inclusive_at_both_ends() -> None:
    assert (
        check_age_window(date(2007, 6, 30), as_of=AS_OF, age_years_min=18, age_years_max=55) == 18
    )
    assert check_age_window(date(1969, 7, 1), as_of=AS_OF, age_years_min=18, age_years_max=55) == 55


@pytest.mark.parametrize(
    ("birth", "code"),
    [(date(2007, 7, 1), "age_below_minimum"), (date(1969, 6, 30), "age_above_maximum")],
)
def test_RevertWhen_age_is_outside_window(birth: date, code: str) -> None:
    with pytest.raises(CreditNetValueError) as caught:
        check_age_window(birth, as_of=AS_OF, age_years_min=18, age_years_max=55)
    assert caught.value.code == code


@pytest.mark.parametrize(
    "phone", ["13800138000", "+86 138-0013-8000", "008613800138000", "19912345678"]
)
def test_mainland_mobile_is_normalised_to_e164(phone: str) -> None:
    assert normalize_mobile(phone) in {"+8613800138000", "+8619912345678"}


@pytest.mark.parametrize(
    ("phone", "code"),
    [
        ("01012345678", "phone_not_mobile"),
        ("+86 10 1234 5678", "phone_not_mobile"),
        ("1380013800", "phone_invalid"),
        ("+85291234567", "phone_invalid"),
        ("+14155552671", "phone_invalid"),
        ("not a phone", "phone_unparseable"),
    ],
)
def test_RevertWhen_phone_is_not_a_mainland_mobile(phone: str, code: str) -> None:
    with pytest.raises(CreditNetValueError) as caught:
        normalize_mobile(phone)
    assert (caught.value.field, caught.value.code) == ("phone", code)
    assert phone not in str(caught.value)


def test_name_is_trimmed_and_inner_spaces_collapsed() -> None:
    assert normalize_name("  阿卜杜   热合曼 ") == "阿卜杜 热合曼"
    assert normalize_name("张伟") == "张伟"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("   ", "name_empty"),
        ("张" * 65, "name_too_long"),
        ("张\x00伟", "name_control_character"),
        ("张伟2", "name_digit"),
    ],
)
def test_RevertWhen_name_is_not_sane(name: str, code: str) -> None:
    with pytest.raises(CreditNetValueError) as caught:
        normalize_name(name)
    assert (caught.value.field, caught.value.code) == ("name", code)


def test_verify_identity_returns_normalised_identity() -> None:
    verified = verify_identity(
        name=" 王 芳 ",
        id_number=STANDARD_EXAMPLE.lower(),
        phone="138 0013 8000",
        as_of=AS_OF,
        age_years_min=18,
        age_years_max=80,
    )
    assert verified.name == "王 芳"
    assert verified.resident_id.number == STANDARD_EXAMPLE
    assert verified.mobile_e164 == "+8613800138000"
    assert verified.age_years == 75


def test_RevertWhen_verify_identity_sees_age_outside_product_window() -> None:
    with pytest.raises(CreditNetValueError) as caught:
        verify_identity(
            name="王芳",
            id_number=STANDARD_EXAMPLE,
            phone="13800138000",
            as_of=AS_OF,
            age_years_min=18,
            age_years_max=60,
        )
    assert caught.value.code == "age_above_maximum"
