"""Security helpers of the application: PII encryption at rest and masking for staff views."""

from .masking import mask_contact, mask_id_number, mask_name, mask_profile_json
from .pii import DEMO_PII_KEY, PII_KINDS, PiiCipher, PiiKind, generate_key

__all__ = [
    "DEMO_PII_KEY",
    "PII_KINDS",
    "PiiCipher",
    "PiiKind",
    "generate_key",
    "mask_contact",
    "mask_id_number",
    "mask_name",
    "mask_profile_json",
]
