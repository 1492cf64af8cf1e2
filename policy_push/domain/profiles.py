"""Enterprise and resident profiles (formats.md), with the values derived from them."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema

from policy_push.refdata import CodeTable, load_reference_data

from ._types import (
    ISODate,
    RecordId,
    TagList,
    check_code,
    check_region,
    check_short_text,
    context_of,
    short_text_schema,
)
from .canonical import HashedRecord
from .checksums import (
    USCC_ALPHABET,
    id_number_birth_date,
    id_number_check_digit,
    id_number_gender,
    uscc_check_char,
)
from .sme import derive_size

__all__ = ["CHANNELS", "EMPLOYEES_MAX", "PHONE_PATTERN", "Contact", "EnterpriseProfile", "Profile", "ResidentProfile", "full_years"]

CHANNELS = ("sms", "wechat", "app")
Channel = Literal["sms", "wechat", "app"]
Size = Literal["large", "medium", "small", "micro"]

_PHONE_RE = re.compile(r"1[3-9]\d{9}")
_OPENID_RE = re.compile(r"[A-Za-z0-9_-]{6,64}")
_APP_ID_RE = re.compile(r"[A-Za-z0-9_-]{6,64}")
#: what the OpenAPI document promises for a phone: the plain or +86 form (spaces and dashes are also read)
PHONE_PATTERN = r"^(\+86)?1[3-9][0-9]{9}$"
_PHONE_SCHEMA = {"pattern": PHONE_PATTERN}
# formats go inside the string branch of an optional field, where generators look for them; no pattern beside
# a format: schemathesis' coverage phase builds values from a pattern (000000) and would ignore the format
_Region = WithJsonSchema({"anyOf": [{"type": "string", "format": "gb2260-region"},
                                    {"type": "null"}],
                          "description": "A region code of the regions table (GB/T 2260, 6 digits, or 9 for a township)."})


def _json_integer(value: Any) -> Any:
    """A JSON integer: an int, or a float with nothing after the point (JSON Schema's reading); never a bool or text."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a whole number, got {type(value).__name__}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"expected a whole number, got {value!r}")
        return int(value)
    return value


def _matching(value: str | None, pattern: re.Pattern[str], message: str) -> str | None:
    # fullmatch: ``$`` would also let a trailing newline through
    if value is not None and not pattern.fullmatch(value):
        raise ValueError(message)
    return value


#: the most persons an enterprise profile may say it employs (``employees``): ten million, several times the
#: largest employer on earth (about 2-3 million); a larger figure is a slip of the keyboard, not a fact
EMPLOYEES_MAX = 10_000_000
_USCC_RE = re.compile(rf"^[{USCC_ALPHABET}]{{18}}$")


def full_years(start: dt.date, on: dt.date) -> int:
    """Whole years completed from ``start`` to ``on``; a 29 February start counts its
    anniversary on 1 March in common years."""
    years = on.year - start.year
    if (on.month, on.day) < (start.month, start.day):
        years -= 1
    return years


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    phone: str | None = Field(None, json_schema_extra=_PHONE_SCHEMA)
    wechat_openid: str | None = Field(None, json_schema_extra={"pattern": f"^{_OPENID_RE.pattern}$"})
    app_registration_id: str | None = Field(None, json_schema_extra={"pattern": f"^{_APP_ID_RE.pattern}$"})

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, v: Any) -> str | None:
        if v is None:
            return None
        if not isinstance(v, str):
            raise ValueError(f"phone must be a string, got {type(v).__name__}")
        digits = re.sub(r"[\s-]", "", v)
        if digits.startswith("+86"):
            digits = digits[3:]
        if not digits.isdigit():
            raise ValueError("a mainland mobile number has 11 digits and nothing else")
        if len(digits) != 11:
            raise ValueError(f"phone has {len(digits)} digits; a mainland mobile number has 11")
        if not _PHONE_RE.fullmatch(digits):
            raise ValueError("phone is not a mainland mobile number (1[3-9] followed by 9 digits)")
        return digits

    @field_validator("wechat_openid")
    @classmethod
    def _openid(cls, v: str | None) -> str | None:
        return _matching(v, _OPENID_RE, "wechat_openid must be 6-64 characters of A-Z a-z 0-9 _ -")

    @field_validator("app_registration_id")
    @classmethod
    def _app_id(cls, v: str | None) -> str | None:
        return _matching(v, _APP_ID_RE, "app_registration_id must be 6-64 characters of A-Z a-z 0-9 _ -")

    def address_for(self, channel: str) -> str | None:
        return {"sms": self.phone, "wechat": self.wechat_openid, "app": self.app_registration_id}.get(channel)


class _ProfileBase(HashedRecord):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(json_schema_extra=short_text_schema(required=True))
    region: Annotated[str | None, _Region] = None
    interests: str | None = Field(None, json_schema_extra=short_text_schema())
    contact: Contact = Field(default_factory=Contact)
    channels: list[Channel] = Field(default_factory=list, json_schema_extra={"uniqueItems": True})
    categories: list[str] = Field(default_factory=list)
    # strict: the document says boolean, and "false" or 0 read as a yes/no would be a guess
    consent: bool = Field(False, strict=True)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str, info: ValidationInfo) -> str:
        return check_short_text(v, info, required=True)  # type: ignore[return-value]

    # one rule per kind of field, for the kinds' own fields too (hence check_fields=False)
    @field_validator("interests", "business_scope", check_fields=False)
    @classmethod
    def _free_text(cls, v: str | None, info: ValidationInfo) -> str | None:
        return check_short_text(v, info)

    @field_validator("region", "hukou_region", check_fields=False)
    @classmethod
    def _region(cls, v: str | None, info: ValidationInfo) -> str | None:
        return check_region(v, info)

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a channel is listed twice")
        return v

    def reachable_channels(self) -> list[str]:
        """The preferred channels this profile can actually be reached on, in order."""
        return [c for c in self.channels if self.contact.address_for(c)]


class EnterpriseProfile(_ProfileBase):
    # the length beside the format (no pattern: schemathesis builds a patterned string from the pattern, not the format):
    # "" or a 4-character id of another record is then no credit code by the document either
    id: str = Field(json_schema_extra={"format": "gb32100-uscc", "minLength": 18, "maxLength": 18,
                                       "description": "The unified social credit code (GB 32100-2015, its check character right)."})
    industry: Annotated[str | None, WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "gb4754-industry"}, {"type": "null"}],
         "description": "A code of GB/T 4754-2017: a section letter or 2-4 digits."}
    )] = None  # fmt: skip
    size: Size | None = None
    # not after today: "in the past" is no JSON Schema keyword, so the document names a format of its own; its
    # length beside it, not a pattern (schemathesis built "0000-00-00" from the pattern, ignoring the format)
    established_on: Annotated[ISODate | None, WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "past-date", "minLength": 10, "maxLength": 10}, {"type": "null"}],
         "description": "The day the enterprise was established (YYYY-MM-DD, a real date, not after today)."}
    )] = None  # fmt: skip
    # numbers as JSON numbers ("5" and true were read as 5 and 1); 12.0 is JSON Schema's integer too
    employees: Annotated[int | None, BeforeValidator(_json_integer)] = Field(
        None, ge=0, le=EMPLOYEES_MAX,
        description=f"Persons employed (从业人员), 0 to {EMPLOYEES_MAX:,}: several times the workforce of the world's "
        "largest employer (about two to three million), so a larger figure is a typing error.",
    )  # fmt: skip
    annual_revenue_wan: float | None = Field(None, ge=0, strict=True)
    total_assets_wan: float | None = Field(None, ge=0, strict=True)
    qualifications: TagList = None
    tax_credit_rating: Literal["A", "B", "M", "C", "D"] | None = None
    business_scope: str | None = Field(None, json_schema_extra=short_text_schema())

    @field_validator("id")
    @classmethod
    def _uscc(cls, v: str) -> str:
        if len(v) != 18:
            raise ValueError(f"a unified social credit code has 18 characters, got {len(v)}")
        if not _USCC_RE.match(v):
            bad = sorted({c for c in v if c not in USCC_ALPHABET})
            raise ValueError(f"unified social credit code has character(s) outside the standard set: {''.join(bad)}")
        expected = uscc_check_char(v[:17])
        if v[17] != expected:
            raise ValueError(f"unified social credit code check character is {v[17]!r}, expected {expected!r} (GB 32100-2015)")
        return v

    @field_validator("industry")
    @classmethod
    def _industry(cls, v: str | None, info: ValidationInfo) -> str | None:
        return check_code(v, info, pattern=r"[A-T]|\d{2,4}", table="industries",
                          shape="industry must be a GB/T 4754 section letter or a 2-4 digit code",
                          unknown=f"industry code {v!r} (not in GB/T 4754-2017)")  # fmt: skip

    @field_validator("established_on")
    @classmethod
    def _established(cls, v: dt.date | None, info: ValidationInfo) -> dt.date | None:
        ctx = context_of(info)
        if v is not None and not ctx.trusted and v > ctx.today:
            raise ValueError(f"established_on {v.isoformat()} is in the future")
        return v

    # -- derived -------------------------------------------------------------------------------
    def derived_size(self, industries: CodeTable | None = None) -> str | None:
        """Size by the 2011 SME standard from the figures (None when unknown)."""
        industries = industries if industries is not None else load_reference_data().industries
        figures = {
            "employees": self.employees,
            "annual_revenue_wan": self.annual_revenue_wan,
            "total_assets_wan": self.total_assets_wan,
        }
        return derive_size(self.industry, figures, industries)

    def effective_size(self, industries: CodeTable | None = None) -> str | None:
        """The declared size, or else the derived one (formats.md: a declared size wins)."""
        return self.size if self.size is not None else self.derived_size(industries)

    def established_years(self, on: dt.date) -> int | None:
        return None if self.established_on is None else full_years(self.established_on, on)


class ResidentProfile(_ProfileBase):
    # birth_date and gender must agree with an ID number, a rule between fields that JSON Schema cannot state:
    # the document asks for them only without one (the service also accepts values that agree)
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={
        "if": {"required": ["id_number"], "properties": {"id_number": {"type": "string"}}},
        "then": {"properties": {"birth_date": {"type": "null"}, "gender": {"type": "null"}}},
    })  # fmt: skip

    id: RecordId
    id_number: Annotated[str | None, WithJsonSchema(
        # the length beside the format (as for a credit code): "" is no ID number by the document either
        {"anyOf": [{"type": "string", "format": "gb11643-id-number", "minLength": 18, "maxLength": 18}, {"type": "null"}],
         "description": "The resident ID number (GB 11643-1999): its birth date real and past, its check digit right, its "
         "region known; birth_date and gender, when given, agree with it."}
    )] = None  # fmt: skip
    birth_date: ISODate | None = None
    gender: Literal["male", "female"] | None = None
    hukou_region: Annotated[str | None, _Region] = None
    tags: TagList = None

    @field_validator("id_number")
    @classmethod
    def _id_number(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return None
        v = v.upper()
        if len(v) != 18:
            raise ValueError(f"a resident ID number has 18 characters, got {len(v)} (convert a 15-digit number first)")
        if not re.fullmatch(r"\d{17}[\dX]", v):
            raise ValueError("a resident ID number is 17 digits and a digit or X")
        try:
            born = id_number_birth_date(v)
        except ValueError:
            raise ValueError(f"birth date {v[6:10]}-{v[10:12]}-{v[12:14]} in the ID number is not a real date") from None
        expected = id_number_check_digit(v[:17])
        if v[17] != expected:
            raise ValueError(f"ID number check digit is {v[17]!r}, expected {expected!r} (GB 11643-1999)")
        ctx = context_of(info)
        if not ctx.trusted:
            if born > ctx.today:
                raise ValueError(f"birth date {born.isoformat()} in the ID number is in the future")
            if born.year < 1890:
                raise ValueError(f"birth date {born.isoformat()} in the ID number is implausibly early")
            prefix = v[:6]
            # a county code withdrawn since the number was issued still sits in a known city
            if prefix not in ctx.ref.regions and f"{prefix[:4]}00" not in ctx.ref.regions:
                raise ValueError(f"unknown region prefix {prefix!r} in the ID number")
        return v


    @model_validator(mode="after")
    def _agree(self) -> ResidentProfile:
        if self.id_number:
            born = id_number_birth_date(self.id_number)
            if self.birth_date is not None and self.birth_date != born:
                raise ValueError(f"birth_date {self.birth_date.isoformat()} disagrees with the ID number ({born.isoformat()})")
            if self.gender is not None and self.gender != id_number_gender(self.id_number):
                raise ValueError("gender disagrees with the ID number")
        return self

    # -- derived -------------------------------------------------------------------------------
    @property
    def effective_birth_date(self) -> dt.date | None:
        if self.birth_date is not None:
            return self.birth_date
        return id_number_birth_date(self.id_number) if self.id_number else None

    @property
    def effective_gender(self) -> str | None:
        if self.gender is not None:
            return self.gender
        return id_number_gender(self.id_number) if self.id_number else None

    @property
    def effective_hukou_region(self) -> str | None:
        if self.hukou_region is not None:
            return self.hukou_region
        return self.id_number[:6] if self.id_number else None

    def age(self, on: dt.date) -> int | None:
        born = self.effective_birth_date
        return None if born is None else full_years(born, on)


Profile = EnterpriseProfile | ResidentProfile
