"""SME size derivation at the edge of every threshold of every industry group."""

import pytest

from policy_push.domain import derive_size
from policy_push.domain.sme import SME_GROUPS, sme_group_for
from policy_push.refdata import load_reference_data

INDUSTRIES = load_reference_data().industries
FIELD = {"X": "employees", "Y": "annual_revenue_wan", "Z": "total_assets_wan"}

# one industry code per group, as finely coded as a real profile would be
EXAMPLE_CODE = {
    "agriculture": "0111",
    "industry": "3512",
    "construction": "4710",
    "wholesale": "5111",
    "retail": "5211",
    "transport": "5411",
    "warehousing": "5910",
    "postal": "6010",
    "accommodation": "6110",
    "catering": "6210",
    "telecom": "6311",
    "software": "65",
    "real_estate": "7010",
    "property_mgmt": "7020",
    "leasing": "7111",
    "other": "7310",
}


def test_every_group_has_an_example() -> None:
    assert set(EXAMPLE_CODE) == set(SME_GROUPS)
    for key, code in EXAMPLE_CODE.items():
        assert code in INDUSTRIES, code
        assert sme_group_for(code, INDUSTRIES) is SME_GROUPS[key]


def _cases() -> list[tuple[str, str, dict[str, float], str]]:
    cases = []
    order = ["large", "medium", "small", "micro"]
    for key, group in SME_GROUPS.items():
        for i, (size, bounds) in enumerate(group.bounds):
            at = {FIELD[k]: v for k, v in bounds.items()}
            cases.append((key, f"{size}-at-bound", at, size))
            # one indicator just short of the bound: one size smaller
            for k in bounds:
                short = dict(at)
                short[FIELD[k]] = bounds[k] - 1 if k == "X" else bounds[k] - 0.01
                cases.append((key, f"{size}-short-{k}", short, order[i + 1]))
    return cases


@pytest.mark.parametrize(("group", "label", "figures", "expected"), _cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_threshold_edges(group: str, label: str, figures: dict[str, float], expected: str) -> None:
    # figures the group does not use are irrelevant; give them anyway to prove it
    full = {"employees": 0, "annual_revenue_wan": 0, "total_assets_wan": 0, **figures}
    assert derive_size(EXAMPLE_CODE[group], full, INDUSTRIES) == expected


def test_sample_edges_from_the_readme() -> None:
    assert derive_size("3512", {"employees": 20, "annual_revenue_wan": 300}, INDUSTRIES) == "small"
    assert derive_size("3512", {"employees": 19, "annual_revenue_wan": 300}, INDUSTRIES) == "micro"


@pytest.mark.parametrize(
    ("industry", "figures"),
    [
        ("3512", {"employees": 50}),  # industry needs revenue too
        ("4710", {"annual_revenue_wan": 500}),  # construction needs assets
        ("F", {"employees": 50, "annual_revenue_wan": 5000}),  # wholesale or retail?
        ("70", {"employees": 50, "annual_revenue_wan": 5000, "total_assets_wan": 9000}),
        (None, {"employees": 50}),
    ],
)
def test_unknown_when_a_figure_or_the_group_is_missing(industry: str | None, figures: dict[str, float]) -> None:
    assert derive_size(industry, figures, INDUSTRIES) is None


def test_rail_is_not_transport_and_section_codes_resolve() -> None:
    assert sme_group_for("5311", INDUSTRIES) is SME_GROUPS["other"]
    assert sme_group_for("C", INDUSTRIES) is SME_GROUPS["industry"]
    assert sme_group_for("7030", INDUSTRIES) is SME_GROUPS["other"]
    assert sme_group_for("L", INDUSTRIES) is SME_GROUPS["leasing"]
