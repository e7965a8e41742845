"""Applicant identity checks: PRC resident id (GB 11643-1999), mobile number, name.

Every check is pure: it takes the raw value plus an explicit business date and
returns normalised plain data, or raises `CreditNetValueError` with `field=` and a
stable code. Messages name the field and the rule, never the value, because the
values are personal data and errors end up in logs and problem+json bodies.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date

import phonenumbers
from stdnum import numdb

from node_api.kernel.errors import CreditNetValueError
from node_api.risk.fraud_facts import Gender

ID_NUMBER_LENGTH = 18
LEGACY_ID_NUMBER_LENGTH = 15
NAME_LENGTH_MAX = 64

# ISO 7064 MOD 11-2 weights are 2**(17 - i) mod 11 for positions 0..16.
_CHECK_WEIGHTS = tuple(pow(2, 17 - position, 11) for position in range(17))

# Province-level codes (first two digits) of GB/T 2260, including Taiwan (71),
# Hong Kong (81) and Macao (82), which appear on mainland-issued cards.
PROVINCE_CODES = frozenset(
    {
        *("11", "12", "13", "14", "15"),
        *("21", "22", "23"),
        *("31", "32", "33", "34", "35", "36", "37"),
        *("41", "42", "43", "44", "45", "46"),
        *("50", "51", "52", "53", "54"),
        *("61", "62", "63", "64", "65"),
        *("71", "81", "82"),
    }
)


@dataclass(frozen=True, slots=True)
class ResidentId:
    """A resident id number that passed every structural check, with what it encodes."""

    number: str
    region_code: str
    birth_date: date
    sequence: int
    gender: Gender


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """The normalised identity of an applicant, ready for hashing and encryption."""

    name: str
    resident_id: ResidentId
    mobile_e164: str
    age_years: int


def _invalid(field: str, code: str, detail: str) -> CreditNetValueError:
    return CreditNetValueError(detail, field=field, code=code)


def compute_check_character(first_17: str) -> str:
    """The ISO 7064 MOD 11-2 check character ('0'..'9' or 'X') for 17 body digits."""
    if len(first_17) != 17 or not first_17.isascii() or not first_17.isdigit():
        raise ValueError("the body of a resident id is exactly 17 ASCII digits")
    weighted = sum(
        int(digit) * weight for digit, weight in zip(first_17, _CHECK_WEIGHTS, strict=True)
    )
    check_value = (12 - weighted % 11) % 11
    return "X" if check_value == 10 else str(check_value)


def compute_age_years(birth_date: date, as_of: date) -> int:
    """Completed years of age on `as_of` (a 29 February birthday counts from 1 March)."""
    before_birthday = (as_of.month, as_of.day) < (birth_date.month, birth_date.day)
    return as_of.year - birth_date.year - (1 if before_birthday else 0)


def is_known_region(region_code: str) -> bool:
    """True when the 6-digit code has a valid province and is in python-stdnum's table.

    The table lists every county code GB/T 2260 ever assigned; retired codes stay
    valid because cards issued under them remain in use.
    """
    if len(region_code) != 6 or not region_code.isascii() or not region_code.isdigit():
        return False
    if region_code[:2] not in PROVINCE_CODES:
        return False
    parts = numdb.get("cn/loc").info(region_code)
    return any("county" in properties for _, properties in parts)


def _parse_birth_date(number: str) -> date:
    try:
        birth_date = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise _invalid(
            "id_number", "id_number_birth_date", "identity number encodes no valid date"
        ) from None
    if birth_date.year < 1900:
        raise _invalid(
            "id_number", "id_number_birth_date", "identity number birth year is before 1900"
        )
    return birth_date


def _check_shape(number: str) -> None:
    if len(number) == LEGACY_ID_NUMBER_LENGTH and number.isascii() and number.isdigit():
        raise _invalid(
            "id_number", "id_number_legacy_15_digit", "15-digit identity numbers are not accepted"
        )
    if len(number) != ID_NUMBER_LENGTH:
        raise _invalid("id_number", "id_number_length", "identity number must have 18 characters")
    body, check = number[:17], number[17]
    if not (body.isascii() and body.isdigit() and (check.isdigit() or check == "X")):
        raise _invalid(
            "id_number", "id_number_format", "identity number must be 17 digits and a digit or X"
        )


def parse_resident_id(number: str, *, as_of: date) -> ResidentId:
    """Validate an 18-character resident id and decode region, birth date and gender.

    Checks, in order: length (15-digit legacy numbers get their own code), format,
    check character, calendar birth date not after `as_of`, region code.
    """
    normalised = number.strip().upper()
    _check_shape(normalised)
    if compute_check_character(normalised[:17]) != normalised[17]:
        raise _invalid(
            "id_number", "id_number_checksum", "identity number check character is wrong"
        )
    birth_date = _parse_birth_date(normalised)
    if birth_date > as_of:
        raise _invalid(
            "id_number",
            "id_number_birth_date_future",
            "identity number birth date is in the future",
        )
    region_code = normalised[:6]
    if not is_known_region(region_code):
        raise _invalid("id_number", "id_number_region", "identity number region code is unknown")
    sequence = int(normalised[14:17])
    gender = Gender.MALE if sequence % 2 == 1 else Gender.FEMALE
    return ResidentId(normalised, region_code, birth_date, sequence, gender)


def check_declared_gender(resident_id: ResidentId, declared: Gender) -> None:
    """Refuse a declared gender that contradicts the id number's sequence parity."""
    if resident_id.gender != declared:
        raise _invalid(
            "gender", "gender_mismatch", "declared gender does not match identity number"
        )


def check_age_window(
    birth_date: date, *, as_of: date, age_years_min: int, age_years_max: int
) -> int:
    """Return the age on `as_of`, refusing it outside the product's inclusive window."""
    if age_years_min > age_years_max:
        raise ValueError("age window is empty")
    age_years = compute_age_years(birth_date, as_of)
    if age_years < age_years_min:
        raise _invalid(
            "id_number", "age_below_minimum", "applicant is younger than the product allows"
        )
    if age_years > age_years_max:
        raise _invalid(
            "id_number", "age_above_maximum", "applicant is older than the product allows"
        )
    return age_years


def normalize_mobile(phone: str) -> str:
    """Return a mainland-China mobile number in E.164 form ('+86...').

    Landlines, other countries (Hong Kong and Macao included) and malformed input
    are refused with distinct codes.
    """
    try:
        parsed = phonenumbers.parse(phone, "CN")
    except phonenumbers.NumberParseException:
        raise _invalid("phone", "phone_unparseable", "phone number cannot be parsed") from None
    if parsed.country_code != 86 or not phonenumbers.is_valid_number_for_region(parsed, "CN"):
        raise _invalid("phone", "phone_invalid", "phone number is not a valid mainland number")
    if phonenumbers.number_type(parsed) != phonenumbers.PhoneNumberType.MOBILE:
        raise _invalid("phone", "phone_not_mobile", "phone number is not a mobile number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_name(name: str) -> str:
    """Return the name NFC-normalised with outer and repeated inner spaces collapsed."""
    collapsed = " ".join(unicodedata.normalize("NFC", name).split())
    if not collapsed:
        raise _invalid("name", "name_empty", "name must not be empty")
    if len(collapsed) > NAME_LENGTH_MAX:
        raise _invalid(
            "name", "name_too_long", f"name must have at most {NAME_LENGTH_MAX} characters"
        )
    if any(unicodedata.category(character).startswith("C") for character in collapsed):
        raise _invalid("name", "name_control_character", "name must not contain control characters")
    if any(character.isdigit() for character in collapsed):
        raise _invalid("name", "name_digit", "name must not contain digits")
    return collapsed


def verify_identity(
    *,
    name: str,
    id_number: str,
    phone: str,
    as_of: date,
    age_years_min: int,
    age_years_max: int,
) -> VerifiedIdentity:
    """Run the hard identity checks of an application, first failure wins.

    Consistency of declared birth date and gender with the id number is not checked
    here: those are fraud signals (reason codes, manual review), not malformed input.
    """
    clean_name = normalize_name(name)
    resident_id = parse_resident_id(id_number, as_of=as_of)
    age_years = check_age_window(
        resident_id.birth_date,
        as_of=as_of,
        age_years_min=age_years_min,
        age_years_max=age_years_max,
    )
    mobile_e164 = normalize_mobile(phone)
    return VerifiedIdentity(clean_name, resident_id, mobile_e164, age_years)


def make_resident_id(region_code: str, birth_date: date, sequence: int, gender: Gender) -> str:
    """Build a valid 18-character id number (for tests, fixtures and benchmarks).

    `sequence` is the 3-digit order code (0..999); its parity must match `gender`
    (odd for male), so a contradictory request fails loudly instead of silently.
    """
    if not is_known_region(region_code):
        raise ValueError("unknown region code")
    if not 0 <= sequence <= 999:
        raise ValueError("sequence must be within 0..999")
    if (sequence % 2 == 1) != (gender == Gender.MALE):
        raise ValueError("sequence parity must be odd for male, even for female")
    if not 1900 <= birth_date.year <= 9999:
        raise ValueError("birth year must have four digits from 1900")
    body = f"{region_code}{birth_date:%Y%m%d}{sequence:03d}"
    return body + compute_check_character(body)
