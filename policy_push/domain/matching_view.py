"""Profiles as the matching engine sees them: flat records with derived values filled in."""

from __future__ import annotations

from typing import Any

from policy_push.refdata import CodeTable

from .profiles import EnterpriseProfile, ResidentProfile

__all__ = ["matcher_record"]


def matcher_record(profile: EnterpriseProfile | ResidentProfile, industries: CodeTable | None = None) -> dict[str, Any]:
    """The plain record ``matchers`` takes: effective size, birth date, gender and hukou region
    resolved; ages and years since founding are left to the engine, which knows the day."""
    if isinstance(profile, EnterpriseProfile):
        return {
            "id": profile.id,
            "region": profile.region,
            "industry": profile.industry,
            "size": profile.effective_size(industries),
            "established_on": profile.established_on,
            "employees": profile.employees,
            "annual_revenue_wan": profile.annual_revenue_wan,
            "total_assets_wan": profile.total_assets_wan,
            "qualifications": profile.qualifications,
            "tax_credit_rating": profile.tax_credit_rating,
            "business_scope": profile.business_scope,
            "interests": profile.interests,
        }
    return {
        "id": profile.id,
        "region": profile.region,
        "hukou_region": profile.effective_hukou_region,
        "birth_date": profile.effective_birth_date,
        "gender": profile.effective_gender,
        "tags": profile.tags,
        "interests": profile.interests,
    }
