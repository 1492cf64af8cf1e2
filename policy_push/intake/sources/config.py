"""How a source is described in the settings (``intake_sources``)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["SourceConfig", "check_sources", "parse_sources"]


class SourceConfig(BaseModel):
    """One place policies are published.

    ``kind = "rss"``: an RSS or Atom feed; each entry's link is a policy page (its content is
    read with ``content`` when given, else the entry's own summary and content are the text).
    ``kind = "html"``: a list page whose links (``links``, a CSS selector of ``<a>`` elements)
    lead to detail pages; ``title``, ``content`` and ``date`` select parts of a detail page."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="Short name, shown in the review queue.")
    kind: Literal["rss", "html"]
    url: str = Field(pattern=r"^https?://", description="The feed or list page.")
    links: str | None = Field(None, description="CSS selector of the links on an html list page.")
    title: str = Field("h1", description="CSS selector of a detail page's title.")
    content: str | None = Field(None, description="CSS selector of a detail page's text (default: the <body>).")
    date: str | None = Field(None, description="CSS selector of a detail page's publication date.")
    encoding: str | None = Field(None, description="Force a character set (gbk, utf-8) when a site declares a wrong one.")
    city: str | None = Field(None, pattern=r"^\d{6}(\d{3})?$", description="Region code the texts are read in.")
    max_items: int = Field(50, ge=1, le=500, description="Most links read from the list per poll.")
    audience: Literal["enterprise", "resident"] | None = Field(None, description="When the source only publishes one kind.")

    @field_validator("links")
    @classmethod
    def _links(cls, v: str | None) -> str | None:
        return v.strip() if v else v

    def model_post_init(self, __context: Any) -> None:
        if self.kind == "html" and not self.links:
            raise ValueError(f"source {self.name!r}: an html source needs `links`, the CSS selector of its list's links")
        for selector in (self.links, self.title, self.content, self.date):
            if selector:
                _check_selector(selector, self.name)


def _check_selector(selector: str, name: str) -> None:
    from cssselect import GenericTranslator, SelectorError

    try:
        GenericTranslator().css_to_xpath(selector)
    except SelectorError as exc:
        raise ValueError(f"source {name!r}: {selector!r} is not a CSS selector ({exc})") from None


def parse_sources(raw: list[dict[str, Any]]) -> list[SourceConfig]:
    return [SourceConfig.model_validate(item) for item in raw]


def check_sources(raw: list[dict[str, Any]]) -> None:
    """Raise ValueError naming the source and the field when a source is misconfigured."""
    names: set[str] = set()
    for i, item in enumerate(raw):
        try:
            source = SourceConfig.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or "(source)"
            msg = re.sub(r"^Value error, ", "", first["msg"])
            raise ValueError(f"intake_sources[{i}].{where}: {msg}") from None
        if source.name in names:
            raise ValueError(f"intake_sources[{i}].name: {source.name!r} is used twice")
        names.add(source.name)
