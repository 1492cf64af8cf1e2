"""Domain records and their validation: policies, enterprise and resident profiles."""

from .checksums import id_number_check_digit, uscc_check_char
from .context import LOCAL_TZ, ValidationContext, local_today
from .matching_view import matcher_record
from .parse import RECORD_TYPES, RecordKind, parse_enterprise, parse_policy, parse_record, parse_resident
from .policy import RESERVED_POLICY_IDS, Policy
from .profiles import CHANNELS, Contact, EnterpriseProfile, Profile, ResidentProfile, full_years
from .sme import derive_size

__all__ = [
    "CHANNELS",
    "LOCAL_TZ",
    "RECORD_TYPES",
    "RESERVED_POLICY_IDS",
    "Contact",
    "EnterpriseProfile",
    "Policy",
    "Profile",
    "RecordKind",
    "ResidentProfile",
    "ValidationContext",
    "derive_size",
    "full_years",
    "id_number_check_digit",
    "local_today",
    "matcher_record",
    "parse_enterprise",
    "parse_policy",
    "parse_record",
    "parse_resident",
    "uscc_check_char",
]
